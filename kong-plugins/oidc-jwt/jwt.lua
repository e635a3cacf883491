-- Compact JWS tokens: parsing, signature verification (RS256 and ES256 only) and claim checks.
local cjson = require "cjson.safe"
local crypto = require "kong.plugins.oidc-jwt.crypto"
local jwk = require "kong.plugins.oidc-jwt.jwk"

local M = {}

-- Never `none`, never HS* (which would take the issuer's public key as an HMAC secret).
M.ALGORITHMS = { RS256 = true, ES256 = true }
local MAX_TOKEN = 16384

local function json_part(part)
  local bytes = jwk.base64url_decode(part)
  local value = bytes and cjson.decode(bytes)
  return type(value) == "table" and value or nil
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
  local header, claims = json_part(header_part), json_part(claims_part)
  local signature = jwk.base64url_decode(signature_part)
  if not header or not claims or not signature then
    return nil, "malformed token"
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
    return false, "algorithm " .. tostring(alg) .. " is not accepted"
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

-- The token's scopes: `scope` (space-separated, RFC 8693) or `scp` (a list or a string).
function M.scopes(claims)
  local scopes = {}
  local source = claims.scope or claims.scp
  if type(source) == "string" then
    for scope in source:gmatch("%S+") do
      scopes[#scopes + 1] = scope
    end
  elseif type(source) == "table" then
    for _, scope in ipairs(source) do
      scopes[#scopes + 1] = tostring(scope)
    end
  end
  return scopes
end

-- nil when the claims satisfy the configuration at time `now`; else the OAuth error code
-- (invalid_token or insufficient_scope) and a description.
function M.check_claims(claims, conf, now)
  local leeway = conf.leeway_seconds or 0
  if claims.iss ~= conf.issuer then
    return "invalid_token", "wrong issuer"
  end
  local audience_matched = false
  for _, audience in ipairs(list(claims.aud)) do
    if contains(conf.audiences, audience) then
      audience_matched = true
      break
    end
  end
  if not audience_matched then
    return "invalid_token", "wrong audience"
  end
  if type(claims.exp) ~= "number" then
    return "invalid_token", "no expiry"
  end
  if now > claims.exp + leeway then
    return "invalid_token", "token expired"
  end
  if claims.nbf ~= nil and (type(claims.nbf) ~= "number" or now + leeway < claims.nbf) then
    return "invalid_token", "token not yet valid"
  end
  if claims.iat ~= nil and (type(claims.iat) ~= "number" or claims.iat > now + leeway) then
    return "invalid_token", "token issued in the future"
  end
  if type(claims.sub) ~= "string" or claims.sub == "" then
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
