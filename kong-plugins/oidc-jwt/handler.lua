-- oidc-jwt: bearer tokens of the organisation's OpenID Connect provider, validated at the gateway.
--
-- Kong OSS has no openid-connect plugin. This one validates the token itself: signature with the
-- provider's current keys (see keys.lua; RS256 or ES256 only), header parameters it must
-- understand, issuer, audience, expiry and not-before (with a small leeway), required scopes and
-- claims. The subject becomes Kong's credential (rate limiting "by consumer" counts per subject),
-- the token's groups become Kong's authenticated groups (the acl plugin allows or denies on them;
-- the platform configures it with always_use_authenticated_groups, so they decide even when a
-- consumer is attached), optionally a Kong consumer named by a claim is attached, and the upstream
-- gets the identity in headers no client can set: every spelling of every header the plugin owns
-- is removed from the request first. With hide_credentials the token itself does not go upstream.
local headers = require "api_platform.headers"
local jwt = require "kong.plugins.oidc-jwt.jwt"
local keys = require "kong.plugins.oidc-jwt.keys"

local OidcJwt = {
  PRIORITY = 1350, -- an authentication plugin: before acl (950) and rate-limiting (910)
  VERSION = "1.1.0",
}

OidcJwt.IDENTITY_HEADERS = {
  subject = "X-Authenticated-Subject",
  issuer = "X-Authenticated-Issuer",
  scopes = "X-Authenticated-Scopes",
  groups = "X-Authenticated-Groups",
}

-- What Kong's own authentication plugins tell the upstream about the consumer and credential.
OidcJwt.CONSUMER_HEADERS = {
  id = "X-Consumer-ID",
  custom_id = "X-Consumer-Custom-ID",
  username = "X-Consumer-Username",
  credential = "X-Credential-Identifier",
  anonymous = "X-Anonymous-Consumer",
}

-- Every header the plugin owns: removed from each request in every spelling, then set by it.
OidcJwt.OWNED_HEADERS = {}
for _, set in ipairs({ OidcJwt.IDENTITY_HEADERS, OidcJwt.CONSUMER_HEADERS }) do
  for _, name in pairs(set) do
    table.insert(OidcJwt.OWNED_HEADERS, name)
  end
end
table.sort(OidcJwt.OWNED_HEADERS)

-- Replaceable in tests.
OidcJwt.now = function() return ngx.now() end

-- RFC 6750 §3: error_description holds %x20-21 / %x23-5B / %x5D-7E only.
local function description_of(text)
  return (tostring(text):gsub(".", function(c)
    local b = string.byte(c)
    if b < 32 or b > 126 or c == '"' or c == "\\" then
      return "?"
    end
  end))
end

-- RFC 6750 §3.1: invalid_request 400, invalid_token 401, insufficient_scope 403; and no error at
-- all when the request carried no bearer credentials (the client did not know it needed one).
local STATUS = { invalid_request = 400, invalid_token = 401, insufficient_scope = 403 }
local MESSAGE = { [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden" }

local function reject(code, description)
  local status, challenge = STATUS[code] or 401, "Bearer"
  if code then
    challenge = string.format('Bearer error="%s", error_description="%s"', code, description_of(description))
  end
  return kong.response.exit(status, { message = MESSAGE[status] }, { ["WWW-Authenticate"] = challenge })
end

-- RFC 6750 §2.1 (b64token) and RFC 7235 §2.1 (the scheme is case-insensitive):
-- credentials = "Bearer" 1*SP 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
-- The token, or nil and whether the header was a Bearer one at all.
local function bearer_token(value)
  local scheme, rest = tostring(value):match("^(%S+)(.*)$")
  if not scheme or scheme:lower() ~= "bearer" then
    return nil, false
  end
  return rest:match("^ +([%w%-%._~%+/]+=*) *$"), true
end

local function groups_of(claims, claim)
  local value = claims[claim]
  local groups = {}
  for _, group in ipairs(type(value) == "table" and value or { value }) do
    if type(group) == "string" and group ~= "" then
      groups[#groups + 1] = group
    end
  end
  return groups
end

function OidcJwt:access(conf)
  local request_headers, err = headers.read()
  if not request_headers then
    return reject("invalid_request", err)
  end
  headers.clear(request_headers, OidcJwt.OWNED_HEADERS)
  local authorization = headers.values(request_headers, "authorization")
  if conf.hide_credentials then
    headers.clear(request_headers, { "Authorization" })
  end
  if #authorization == 0 then
    return reject(nil)
  end
  if #authorization > 1 then
    return reject("invalid_request", "more than one Authorization header")
  end
  local bearer, is_bearer = bearer_token(authorization[1])
  if not is_bearer then
    return reject(nil) -- another scheme: no bearer credentials
  end
  if not bearer then
    return reject("invalid_request", "malformed bearer credentials")
  end
  local token
  token, err = jwt.parse(bearer)
  if not token then
    return reject("invalid_token", err)
  end
  if not jwt.ALGORITHMS[token.header.alg] then
    return reject("invalid_token", "algorithm not accepted")
  end
  local now = OidcJwt.now()
  local key
  key, err = keys.get(conf, token.header.kid, token.header.alg, now)
  if not key then
    kong.log.info("oidc-jwt: ", err)
    return reject("invalid_token", err:find("^ambiguous") and "ambiguous signing key" or "unknown signing key")
  end
  local verified
  verified, err = jwt.verify_signature(token, key)
  if not verified then
    return reject("invalid_token", err)
  end
  local code, description = jwt.check_claims(token.claims, conf, now)
  if code then
    return reject(code, description)
  end

  local claims = token.claims
  local consumer
  if conf.consumer_claim and type(claims[conf.consumer_claim]) == "string" then
    consumer = kong.client.load_consumer(claims[conf.consumer_claim], true)
  end
  local credential = claims.iss .. "|" .. claims.sub
  kong.client.authenticate(consumer, { id = credential })
  -- What later plugins may know of the verified token (opa-authz puts it in its input).
  kong.ctx.shared.authenticated_token = { iss = claims.iss, sub = claims.sub, scopes = jwt.scopes(claims), claims = claims }
  -- A table even when empty: the acl plugin then decides on the token's groups, never falling
  -- back to a consumer's.
  local groups = groups_of(claims, conf.groups_claim)
  kong.ctx.shared.authenticated_groups = groups
  if ngx and ngx.ctx then
    ngx.ctx.authenticated_groups = groups
  end
  local set = kong.service.request.set_header
  set(OidcJwt.IDENTITY_HEADERS.subject, headers.value(claims.sub))
  set(OidcJwt.IDENTITY_HEADERS.issuer, headers.value(claims.iss))
  set(OidcJwt.IDENTITY_HEADERS.scopes, headers.list(jwt.scopes(claims), " "))
  set(OidcJwt.IDENTITY_HEADERS.groups, headers.list(groups, ","))
  set(OidcJwt.CONSUMER_HEADERS.credential, headers.value(credential))
  if consumer then
    set(OidcJwt.CONSUMER_HEADERS.id, headers.value(consumer.id))
    set(OidcJwt.CONSUMER_HEADERS.username, headers.value(consumer.username or ""))
    if consumer.custom_id then
      set(OidcJwt.CONSUMER_HEADERS.custom_id, headers.value(consumer.custom_id))
    end
  end
end

return OidcJwt
