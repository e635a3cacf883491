-- JSON Web Keys (RFC 7517, RFC 7518 §6) to public keys, as strictly as the RFCs allow: an RSA
-- or P-256 key becomes the DER SubjectPublicKeyInfo libcrypto parses. Also base64url (RFC 4648
-- §5, canonical only) and the ECDSA signature conversion JWS needs (RFC 7518 §3.4).
--
-- Any JWK can be hostile or broken: every check returns nil and a reason instead of raising, so
-- one bad key never takes a key set down with it.
local crypto = require "kong.plugins.oidc-jwt.crypto"

local byte, char, concat, sub = string.byte, string.char, table.concat, string.sub

local M = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local DECODE = {}
for i = 1, #ALPHABET do
  DECODE[byte(ALPHABET, i)] = i - 1
end

-- Bytes from base64url without padding; nil for anything else: padding, `+`, `/`, whitespace,
-- and non-canonical encodings (unused trailing bits set), which would give one token several
-- spellings (RFC 4648 §3.5).
function M.base64url_decode(text)
  if type(text) ~= "string" or #text % 4 == 1 then
    return nil
  end
  local out, n = {}, 0
  for i = 1, #text, 4 do
    local a, b, c, d = byte(text, i, i + 3)
    local va, vb = DECODE[a], DECODE[b]
    local vc, vd = c and DECODE[c], d and DECODE[d]
    if not va or not vb or (c and not vc) or (d and not vd) then
      return nil
    end
    if (not c and vb % 16 ~= 0) or (c and not d and vc % 4 ~= 0) then
      return nil -- bits past the last byte must be zero
    end
    local bits = va * 262144 + vb * 4096 + (vc or 0) * 64 + (vd or 0)
    n = n + 1
    out[n] = char(math.floor(bits / 65536) % 256)
    if c then
      n = n + 1
      out[n] = char(math.floor(bits / 256) % 256)
    end
    if d then
      n = n + 1
      out[n] = char(bits % 256)
    end
  end
  return concat(out)
end

function M.base64url_encode(data)
  local out, n = {}, 0
  for i = 1, #data, 3 do
    local a, b, c = byte(data, i, i + 2)
    local bits = a * 65536 + (b or 0) * 256 + (c or 0)
    local function at(shift)
      local index = math.floor(bits / shift) % 64 + 1
      return sub(ALPHABET, index, index)
    end
    n = n + 1
    out[n] = at(262144) .. at(4096) .. (b and at(64) or "") .. (c and at(1) or "")
  end
  return concat(out)
end

-- ---- DER ----------------------------------------------------------------------------------------

local function length(n)
  if n < 128 then
    return char(n)
  elseif n < 256 then
    return char(0x81, n)
  end
  return char(0x82, math.floor(n / 256), n % 256) -- keys are capped far below 64 KiB
end

local function tlv(tag, content)
  return char(tag) .. length(#content) .. content
end

-- A non-negative INTEGER from minimal big-endian bytes (a leading zero when the top bit is set).
local function integer(bytes)
  if byte(bytes, 1) >= 0x80 then
    bytes = "\0" .. bytes
  end
  return tlv(0x02, bytes)
end

local function sequence(...)
  return tlv(0x30, concat({ ... }))
end

local RSA_ALGORITHM = sequence("\6\9\42\134\72\134\247\13\1\1\1", "\5\0") -- rsaEncryption, NULL
local EC_P256_ALGORITHM = sequence("\6\7\42\134\72\206\61\2\1", "\6\8\42\134\72\206\61\3\1\7") -- ecPublicKey, P-256

-- ---- RFC 7518 §6.3.1: RSA public keys -------------------------------------------------------------

M.RSA_MIN_BITS = 2048 -- RFC 7518 §3.3: a key of size 2048 bits or larger MUST be used
M.RSA_MAX_BITS = 8192 -- larger keys only make verification slow: a cost an attacker would choose

local function bit_length(bytes)
  local top = byte(bytes, 1)
  local bits = 0
  while top > 0 do
    bits, top = bits + 1, math.floor(top / 2)
  end
  return (#bytes - 1) * 8 + bits
end

-- n and e "MUST utilize the minimum number of octets needed to represent the value" (§6.3.1.1,
-- §6.3.1.2): no empty value, no leading zero octet.
local function unsigned(value, name)
  local bytes = M.base64url_decode(value)
  if not bytes or bytes == "" then
    return nil, "RSA " .. name .. " is not a base64url value"
  end
  if byte(bytes, 1) == 0 then
    return nil, "RSA " .. name .. " is not minimally encoded (leading zero octet)"
  end
  return bytes
end

local function rsa_spki(jwk)
  local n, err = unsigned(jwk.n, "n")
  if not n then
    return nil, err
  end
  local e
  e, err = unsigned(jwk.e, "e")
  if not e then
    return nil, err
  end
  local bits = bit_length(n)
  if bits < M.RSA_MIN_BITS or bits > M.RSA_MAX_BITS then
    return nil, "RSA key of " .. bits .. " bits: " .. M.RSA_MIN_BITS .. " to " .. M.RSA_MAX_BITS .. " are accepted"
  end
  if byte(n, #n) % 2 == 0 then
    return nil, "RSA modulus is even"
  end
  -- e = 1 makes every "signature" its own message; an even e is no RSA exponent.
  if #e > 8 or byte(e, #e) % 2 == 0 or (#e == 1 and byte(e) < 3) then
    return nil, "RSA exponent must be odd, at least 3 and at most 64 bits"
  end
  return sequence(RSA_ALGORITHM, tlv(0x03, "\0" .. sequence(integer(n), integer(e)))), "RS256"
end

-- ---- RFC 7518 §6.2.1: EC public keys ---------------------------------------------------------------

local function ec_spki(jwk)
  if jwk.crv ~= "P-256" then
    return nil, "EC curve " .. tostring(jwk.crv) .. ": only P-256 (ES256) is accepted"
  end
  -- x and y "MUST be the full size of a coordinate for the curve" (§6.2.1.2, §6.2.1.3); that the
  -- point lies on the curve, libcrypto checks when it parses the key.
  local x, y = M.base64url_decode(jwk.x), M.base64url_decode(jwk.y)
  if not x or not y or #x ~= 32 or #y ~= 32 then
    return nil, "P-256 key without 32-octet x and y"
  end
  return sequence(EC_P256_ALGORITHM, tlv(0x03, "\0\4" .. x .. y)), "ES256"
end

-- ---- RFC 7517 §4: what restricts a key's use ---------------------------------------------------------

-- A JWK set is public: a member of a private key in it means the provider leaked its signing key.
local PRIVATE_MEMBERS = { "d", "p", "q", "dp", "dq", "qi", "oth", "k" }

local function check_use(jwk)
  if jwk.use ~= nil and jwk.use ~= "sig" then
    return nil, "use is " .. tostring(jwk.use) .. ", not sig" -- §4.2
  end
  if jwk.key_ops ~= nil then -- §4.3
    if type(jwk.key_ops) ~= "table" then
      return nil, "key_ops is not an array"
    end
    local verify = false
    for _, op in ipairs(jwk.key_ops) do
      verify = verify or op == "verify"
    end
    if not verify then
      return nil, "key_ops does not allow verify" -- and with use=sig, §4.2's consistency
    end
  end
  for _, member in ipairs(PRIVATE_MEMBERS) do
    if jwk[member] ~= nil then
      return nil, "the key carries private member " .. member
    end
  end
  return true
end

-- The DER SubjectPublicKeyInfo of a JWK, and the JWS algorithm it verifies; nil and why not.
function M.spki(jwk)
  if type(jwk) ~= "table" then
    return nil, "not a JSON object"
  end
  local ok, err = check_use(jwk)
  if not ok then
    return nil, err
  end
  local der, alg
  if jwk.kty == "RSA" then
    der, alg = rsa_spki(jwk)
  elseif jwk.kty == "EC" then
    der, alg = ec_spki(jwk)
  else
    return nil, "key type " .. tostring(jwk.kty) .. " is not RSA or EC" -- §4.1: case-sensitive
  end
  if not der then
    return nil, alg
  end
  if jwk.alg ~= nil and jwk.alg ~= alg then -- §4.4
    return nil, "the key is for " .. tostring(jwk.alg) .. ", not " .. alg
  end
  if jwk.kid ~= nil and type(jwk.kid) ~= "string" then -- §4.5
    return nil, "kid is not a string"
  end
  return der, alg
end

-- A verifying key from a JWK: { kid, alg = "RS256"|"ES256", key = EVP_PKEY }; nil and why not.
function M.key(jwk)
  local der, alg = M.spki(jwk)
  if not der then
    return nil, alg
  end
  local key, err = crypto.public_key(der)
  if not key then
    return nil, err
  end
  return { kid = jwk.kid, alg = alg, key = key }
end

-- JWS ES256 signatures are r || s, 32 octets each (RFC 7518 §3.4: anything else fails);
-- libcrypto verifies the DER ECDSA-Sig-Value.
function M.ecdsa_der(raw)
  if #raw ~= 64 then
    return nil
  end
  local function minimal(bytes)
    local first = 1
    while first < #bytes and byte(bytes, first) == 0 do
      first = first + 1
    end
    return sub(bytes, first)
  end
  return sequence(integer(minimal(sub(raw, 1, 32))), integer(minimal(sub(raw, 33, 64))))
end

return M
