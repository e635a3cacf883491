-- oidc-jwt: bearer tokens of the organisation's OpenID Connect provider, validated at the gateway.
--
-- Kong OSS has no openid-connect plugin. This one validates the token itself: signature with the
-- provider's current keys (see keys.lua; RS256 or ES256 only), issuer, audience, expiry and
-- not-before (with a small leeway), required scopes and claims. The subject becomes Kong's
-- credential (rate limiting "by consumer" counts per subject), the token's groups become Kong's
-- authenticated groups (the acl plugin allows or denies on them), optionally a Kong consumer named
-- by a claim is loaded, and the upstream gets the identity in X-Authenticated-* headers, which a
-- client can never set itself.
local jwt = require "kong.plugins.oidc-jwt.jwt"
local keys = require "kong.plugins.oidc-jwt.keys"

local OidcJwt = {
  PRIORITY = 1350, -- an authentication plugin: before acl (950) and rate-limiting (910)
  VERSION = "1.0.0",
}

OidcJwt.IDENTITY_HEADERS = {
  subject = "X-Authenticated-Subject",
  issuer = "X-Authenticated-Issuer",
  scopes = "X-Authenticated-Scopes",
  groups = "X-Authenticated-Groups",
}

-- Replaceable in tests.
OidcJwt.now = function() return ngx.now() end

local function reject(status, code, description)
  local challenge = string.format('Bearer error="%s", error_description="%s"', code, description)
  return kong.response.exit(status, { message = status == 401 and "Unauthorized" or "Forbidden" },
    { ["WWW-Authenticate"] = challenge })
end

local function groups_of(claims, claim)
  local value = claims[claim]
  if type(value) == "string" then
    return { value }
  end
  local groups = {}
  for _, group in ipairs(type(value) == "table" and value or {}) do
    groups[#groups + 1] = tostring(group)
  end
  return groups
end

function OidcJwt:access(conf)
  for _, header in pairs(OidcJwt.IDENTITY_HEADERS) do
    kong.service.request.clear_header(header)
  end
  local authorization = kong.request.get_header("authorization")
  local bearer = type(authorization) == "string" and authorization:match("^[Bb]earer +([%w_.-]+) *$")
  if not bearer then
    return reject(401, "invalid_request", "a bearer token is required")
  end
  local token, err = jwt.parse(bearer)
  if not token then
    return reject(401, "invalid_token", err)
  end
  if not jwt.ALGORITHMS[token.header.alg] then
    return reject(401, "invalid_token", "algorithm not accepted")
  end
  local now = OidcJwt.now()
  local key
  key, err = keys.get(conf, token.header.kid, token.header.alg, now)
  if not key then
    kong.log.info("oidc-jwt: ", err)
    return reject(401, "invalid_token", "unknown signing key")
  end
  local verified
  verified, err = jwt.verify_signature(token, key)
  if not verified then
    return reject(401, "invalid_token", err)
  end
  local code, description = jwt.check_claims(token.claims, conf, now)
  if code then
    return reject(code == "insufficient_scope" and 403 or 401, code, description)
  end

  local claims = token.claims
  local consumer
  if conf.consumer_claim and type(claims[conf.consumer_claim]) == "string" then
    consumer = kong.client.load_consumer(claims[conf.consumer_claim], true)
  end
  kong.client.authenticate(consumer, { id = claims.iss .. "|" .. claims.sub })
  local groups = groups_of(claims, conf.groups_claim)
  kong.ctx.shared.authenticated_groups = groups
  if ngx and ngx.ctx then
    ngx.ctx.authenticated_groups = groups
  end
  local set = kong.service.request.set_header
  set(OidcJwt.IDENTITY_HEADERS.subject, claims.sub)
  set(OidcJwt.IDENTITY_HEADERS.issuer, claims.iss)
  set(OidcJwt.IDENTITY_HEADERS.scopes, table.concat(jwt.scopes(claims), " "))
  set(OidcJwt.IDENTITY_HEADERS.groups, table.concat(groups, ","))
end

return OidcJwt
