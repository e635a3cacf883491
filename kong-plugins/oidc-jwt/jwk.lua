-- JSON Web Keys (RFC 7517) to public keys: an RSA or P-256 key's DER SubjectPublicKeyInfo, which
-- libcrypto parses; base64url (RFC 4648 section 5); the ECDSA signature conversion JWS needs.
local crypto = require "kong.plugins.oidc-jwt.crypto"

local byte, char, concat, sub = string.byte, string.char, table.concat, string.sub

local M = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local DECODE = {}
for i = 1, #ALPHABET do
  DECODE[byte(ALPHABET, i)] = i - 1
end

-- Bytes from base64url without padding; nil for anything else (padding, `+`, `/`, whitespace).
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
    local chars = {
      sub(ALPHABET, math.floor(bits / 262144) % 64 + 1, math.floor(bits / 262144) % 64 + 1),
      sub(ALPHABET, math.floor(bits / 4096) % 64 + 1, math.floor(bits / 4096) % 64 + 1),
      b and sub(ALPHABET, math.floor(bits / 64) % 64 + 1, math.floor(bits / 64) % 64 + 1) or "",
      c and sub(ALPHABET, bits % 64 + 1, bits % 64 + 1) or "",
    }
    n = n + 1
    out[n] = concat(chars)
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
  return char(0x82, math.floor(n / 256), n % 256)
end

local function tlv(tag, content)
  return char(tag) .. length(#content) .. content
end

-- A non-negative INTEGER from big-endian bytes: minimal, with a leading zero when the top bit is set.
local function integer(bytes)
  local first = 1
  while first < #bytes and byte(bytes, first) == 0 do
    first = first + 1
  end
  bytes = sub(bytes, first)
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

-- The DER SubjectPublicKeyInfo of a JWK, and the JWS algorithm it verifies; nil and why not.
function M.spki(jwk)
  if type(jwk) ~= "table" then
    return nil, "not a JSON object"
  end
  if jwk.use ~= nil and jwk.use ~= "sig" then
    return nil, "use is " .. tostring(jwk.use) .. ", not sig"
  end
  if jwk.kty == "RSA" then
    local n, e = M.base64url_decode(jwk.n), M.base64url_decode(jwk.e)
    if not n or not e then
      return nil, "RSA key without a valid n and e"
    end
    local bits = #n * 8
    if byte(n, 1) == 0 then
      bits = bits - 8
    end
    if bits < 2048 then
      return nil, "RSA key of " .. bits .. " bits: at least 2048 are needed"
    end
    local public = sequence(integer(n), integer(e))
    return sequence(RSA_ALGORITHM, tlv(0x03, "\0" .. public)), "RS256"
  elseif jwk.kty == "EC" then
    if jwk.crv ~= "P-256" then
      return nil, "EC curve " .. tostring(jwk.crv) .. ": only P-256 (ES256)"
    end
    local x, y = M.base64url_decode(jwk.x), M.base64url_decode(jwk.y)
    if not x or not y or #x ~= 32 or #y ~= 32 then
      return nil, "P-256 key without 32-byte x and y"
    end
    return sequence(EC_P256_ALGORITHM, tlv(0x03, "\0\4" .. x .. y)), "ES256"
  end
  return nil, "key type " .. tostring(jwk.kty) .. " is not RSA or EC"
end

-- A verifying key from a JWK: { alg = "RS256"|"ES256", key = EVP_PKEY }; nil and why not.
function M.key(jwk)
  local der, alg = M.spki(jwk)
  if not der then
    return nil, alg
  end
  if jwk.alg ~= nil and jwk.alg ~= alg then
    return nil, "the key is for " .. tostring(jwk.alg) .. ", not " .. alg
  end
  local key, err = crypto.public_key(der)
  if not key then
    return nil, err
  end
  return { alg = alg, key = key }
end

-- JWS ES256 signatures are r || s (32 bytes each); libcrypto verifies the DER ECDSA-Sig-Value.
function M.ecdsa_der(raw)
  if #raw ~= 64 then
    return nil
  end
  return sequence(integer(sub(raw, 1, 32)), integer(sub(raw, 33, 64)))
end

return M
