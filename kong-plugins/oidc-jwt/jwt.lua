-- Compact JWS tokens (RFC 7515, RFC 7519): parsing, signature verification (RS256 and ES256 only)
-- and claim checks. Every part of a token is the attacker's: nothing is trusted before the
-- signature is verified, and nothing the verifier does not understand is accepted.
local cjson_safe = require "cjson.safe"
local crypto = require "kong.plugins.oidc-jwt.crypto"
local jwk = require "kong.plugins.oidc-jwt.jwk"

local M = {}

-- Never `none`, never HS* (which would take the issuer's public key as an HMAC secret).
M.ALGORITHMS = { RS256 = true, ES256 = true }
local MAX_TOKEN = 16384

-- A JSON decoder of its own: strict numbers (lua-cjson otherwise reads `NaN`, `Infinity` and hex,
-- none of them JSON) and a shallow nesting limit.
local json = cjson_safe.new()
json.decode_invalid_numbers(false)
json.decode_max_depth(16)
M.json = json

local function json_object(part)
  local bytes = jwk.base64url_decode(part)
  local value = bytes and json.decode(bytes)
  if type(value) ~= "table" or value[1] ~= nil then
    return nil -- RFC 7515 §5.2 / RFC 7519 §7.2: a JSON object, not an array or a scalar
  end
  return value
end

-- Header parameters this verifier understands (RFC 7515 §4.1, RFC 7519 §5). `crit` lists
-- extensions a recipient MUST understand or reject (§4.1.11): we understand none, so any `crit`
-- is refused; `b64` (RFC 7797) exists only with `crit`; `cty: JWT` is a nested token (RFC 7519
-- §7.2 step 8), which is not supported. `jku`, `jwk`, `x5u`, `x5c` are never used to find a key:
-- keys come only from the issuer's JWKS.
local function check_header(header)
  if type(header.alg) ~= "string" then
    return "no alg"
  end
  if header.crit ~= nil then
    return "critical header extensions are not supported"
  end
  if header.b64 ~= nil then
    return "unencoded payloads are not supported"
  end
  if type(header.cty) == "string" and header.cty:upper():gsub("^APPLICATION/", "") == "JWT" then
    return "nested tokens are not supported"
  end
  if header.kid ~= nil and type(header.kid) ~= "string" then
    return "kid is not a string"
  end
  return nil
end

-- { header, claims, signing_input, signature } of a compact JWS; nil and why not.
function M.parse(token)
  if type(token) ~= "string" or #token > MAX_TOKEN then
    return nil, "malformed token"
  end
  local header_part, claims_part, signature_part = string.match(token, "^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
  if not header_part then
    return nil, "not a signed JWT"
  end
  local header, claims = json_object(header_part), json_object(claims_part)
  local signature = jwk.base64url_decode(signature_part)
  if not header or not claims or not signature then
    return nil, "malformed token"
  end
  local problem = check_header(header)
  if problem then
    return nil, problem
  end
  return {
    header = header,
    claims = claims,
    signing_input = header_part .. "." .. claims_part,
    signature = signature,
  }
end

-- Whether the token is signed by `key` ({ alg, key }) with the algorithm its header names.
function M.verify_signature(token, key)
  local alg = token.header.alg
  if not M.ALGORITHMS[alg] then
    return false, "algorithm not accepted"
  end
  if key.alg ~= alg then
    return false, "the signing key is for " .. key.alg .. ", the token says " .. alg
  end
  local signature = token.signature
  if alg == "ES256" then
    signature = jwk.ecdsa_der(signature)
    if not signature then
      return false, "malformed ES256 signature"
    end
  end
  if not crypto.verify_sha256(key.key, token.signing_input, signature) then
    return false, "bad signature"
  end
  return true
end

local function list(value)
  if type(value) == "string" then
    return { value }
  end
  return type(value) == "table" and value or {}
end

local function contains(values, wanted)
  for _, value in ipairs(values) do
    if value == wanted then
      return true
    end
  end
  return false
end

-- A NumericDate (RFC 7519 §2): a JSON number, and a finite one.
local function numeric_date(value)
  return type(value) == "number" and value == value and value > -math.huge and value < math.huge
end

-- RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
local function scope_token(value)
  if type(value) ~= "string" or value == "" then
    return false
  end
  for i = 1, #value do
    local b = value:byte(i)
    if b < 33 or b > 126 or b == 34 or b == 92 then
      return false
    end
  end
  return true
end

-- The token's scopes: `scope` (space-separated, RFC 8693) or `scp` (a list or a string). Only
-- valid scope tokens count: an `scp` item "read admin" is neither "read" nor "admin".
function M.scopes(claims)
  local scopes = {}
  local source = claims.scope
  if source == nil then
    source = claims.scp
  end
  if type(source) == "string" then
    for scope in source:gmatch("[^ ]+") do
      if scope_token(scope) then
        scopes[#scopes + 1] = scope
      end
    end
  elseif type(source) == "table" then
    for _, scope in ipairs(source) do
      if scope_token(scope) then
        scopes[#scopes + 1] = scope
      end
    end
  end
  return scopes
end

-- nil when the claims satisfy the configuration at time `now`; else the OAuth error code
-- (invalid_token or insufficient_scope) and a description.
function M.check_claims(claims, conf, now)
  local leeway = conf.leeway_seconds or 0
  if claims.iss ~= conf.issuer then -- RFC 7519 §4.1.1, OIDC Core §3.1.3.7 (2): exact match
    return "invalid_token", "wrong issuer"
  end
  local audience_matched = false -- §4.1.3: a principal not named in aud MUST reject
  for _, audience in ipairs(list(claims.aud)) do
    if type(audience) == "string" and contains(conf.audiences, audience) then
      audience_matched = true
      break
    end
  end
  if not audience_matched then
    return "invalid_token", "wrong audience"
  end
  if not numeric_date(claims.exp) then -- §4.1.4 (required here)
    return "invalid_token", "no valid expiry"
  end
  if now > claims.exp + leeway then
    return "invalid_token", "token expired"
  end
  if claims.nbf ~= nil and (not numeric_date(claims.nbf) or now + leeway < claims.nbf) then -- §4.1.5
    return "invalid_token", "token not yet valid"
  end
  if claims.iat ~= nil and (not numeric_date(claims.iat) or claims.iat > now + leeway) then -- §4.1.6
    return "invalid_token", "token issued in the future"
  end
  if type(claims.sub) ~= "string" or claims.sub == "" then -- §4.1.2
    return "invalid_token", "no subject"
  end
  for name, value in pairs(conf.required_claims or {}) do
    if not contains(list(claims[name]), value) then
      return "insufficient_scope", "claim " .. name .. " does not match"
    end
  end
  local scopes = M.scopes(claims)
  for _, scope in ipairs(conf.required_scopes or {}) do
    if not contains(scopes, scope) then
      return "insufficient_scope", "scope " .. scope .. " is missing"
    end
  end
  return nil
end

return M
