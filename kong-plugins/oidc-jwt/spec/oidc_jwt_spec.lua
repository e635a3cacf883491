-- The oidc-jwt plugin against real signatures: tokens signed by the openssl command line, verified
-- by libcrypto through the plugin's FFI code, keys served by a fake identity provider.
package.path = "./spec/?.lua;" .. package.path
local helpers = require "helpers"
local handler = require "kong.plugins.oidc-jwt.handler"
local keys = require "kong.plugins.oidc-jwt.keys"
local jwk = require "kong.plugins.oidc-jwt.jwk"
local jwt = require "kong.plugins.oidc-jwt.jwt"
local schema = require "kong.plugins.oidc-jwt.schema"

local ISSUER = "https://login.example.com/realms/platform"
local NOW = 1800000000
local REMOVE = helpers.REMOVE -- a claim override that deletes the claim

local rsa = helpers.rsa_key("rsa-1")
local ec = helpers.ec_key("ec-1")
local rotated = helpers.rsa_key("rsa-2")
local stranger = helpers.rsa_key("rsa-1") -- same key id, different key: a forger's

local function conf(overrides)
  local config = {
    issuer = ISSUER,
    audiences = { "inference-api" },
    required_scopes = { "inference:invoke" },
    groups_claim = "groups",
    leeway_seconds = 60,
    jwks_cache_seconds = 3600,
    min_refresh_seconds = 30,
  }
  for name, value in pairs(overrides or {}) do
    config[name] = value
  end
  return config
end

local function claims(overrides)
  local values = {
    iss = ISSUER,
    aud = "inference-api",
    sub = "user-42",
    exp = NOW + 300,
    iat = NOW - 10,
    nbf = NOW - 10,
    scope = "openid inference:invoke",
    groups = { "ml-engineers", "staff" },
  }
  return helpers.merged(values, overrides)
end

local provider

-- Runs the plugin's access phase for a request with `headers`; the stub's record of what it did.
local function request(headers, config, at)
  return helpers.access(handler, headers, config or conf(), at or NOW)
end

local function bearer(token)
  return { Authorization = "Bearer " .. token }
end

local function challenge(calls)
  return calls.exit and calls.exit.headers["WWW-Authenticate"]
end

before_each(function()
  keys.cache, keys.flights = {}, {}
  keys.fetches = 0
  keys.semaphore = helpers.semaphore
  provider = helpers.provider(ISSUER, { rsa, ec })
  keys.fetch = provider.fetch
end)

describe("oidc-jwt accepts", function()
  it("an RS256 token from the provider and hands the identity to Kong and the upstream", function()
    local calls = request(bearer(helpers.token(rsa, claims())))
    assert.is_nil(calls.exit)
    assert.same({ id = ISSUER .. "|user-42" }, calls.credential)
    assert.is_nil(calls.consumer)
    assert.same({ "ml-engineers", "staff" }, calls.ctx.authenticated_groups)
    assert.equal("user-42", calls.set["X-Authenticated-Subject"])
    assert.equal(ISSUER, calls.set["X-Authenticated-Issuer"])
    assert.equal("openid inference:invoke", calls.set["X-Authenticated-Scopes"])
    assert.equal("ml-engineers,staff", calls.set["X-Authenticated-Groups"])
  end)

  it("an ES256 token", function()
    local calls = request(bearer(helpers.token(ec, claims())))
    assert.is_nil(calls.exit)
    assert.same({ id = ISSUER .. "|user-42" }, calls.credential)
  end)

  it("an audience list that names this API among others, and scp as a list", function()
    local token = helpers.token(rsa, claims({ aud = { "billing", "inference-api" },
      scope = REMOVE, scp = { "inference:invoke" } }))
    assert.is_nil(request(bearer(token)).exit)
  end)

  it("a token that expired within the leeway", function()
    local token = helpers.token(rsa, claims({ exp = NOW - 30 }))
    assert.is_nil(request(bearer(token)).exit)
  end)

  it("and loads the Kong consumer the consumer claim names", function()
    local token = helpers.token(rsa, claims({ azp = "known-app" }))
    local calls = request(bearer(token), conf({ consumer_claim = "azp" }))
    assert.is_nil(calls.exit)
    assert.same({ id = "c-1", username = "known-app", custom_id = "app-7" }, calls.consumer)
  end)

  it("fetching discovery and keys once, then from the cache", function()
    request(bearer(helpers.token(rsa, claims())))
    request(bearer(helpers.token(ec, claims())))
    assert.same({ ISSUER .. "/.well-known/openid-configuration", ISSUER .. "/keys" }, provider.requests)
  end)
end)

describe("oidc-jwt refuses with 401", function()
  local cases = {
    { "no token", {} },
    { "a Basic header", { Authorization = "Basic dXNlcjpwYXNz" } },
    { "an expired token", bearer(helpers.token(rsa, claims({ exp = NOW - 61 }))), "token expired" },
    { "a token without expiry", bearer(helpers.token(rsa, claims({ exp = REMOVE }))), "no valid expiry" },
    { "a token not yet valid", bearer(helpers.token(rsa, claims({ nbf = NOW + 61 }))), "not yet valid" },
    { "a token issued in the future", bearer(helpers.token(rsa, claims({ iat = NOW + 120 }))), "in the future" },
    { "another audience", bearer(helpers.token(rsa, claims({ aud = "billing" }))), "wrong audience" },
    { "another issuer", bearer(helpers.token(rsa, claims({ iss = "https://evil.example.com" }))), "wrong issuer" },
    { "no subject", bearer(helpers.token(rsa, claims({ sub = REMOVE }))), "no subject" },
    { "a key the provider does not have", bearer(helpers.token(stranger, claims())), "bad signature" },
    { "an unknown key id", bearer(helpers.token(rotated, claims())), "unknown signing key" },
    { "a malformed token", bearer("abc.def"), "not a signed JWT" },
  }
  for _, case in ipairs(cases) do
    local name, headers, reason = case[1], case[2], case[3]
    it(name, function()
      local calls = request(headers)
      assert.equal(401, calls.exit and calls.exit.status)
      assert.is_nil(calls.credential)
      assert.same({}, calls.set)
      if reason then
        assert.truthy(challenge(calls):find(reason, 1, true), challenge(calls))
      end
    end)
  end

  it("a tampered payload", function()
    local header, _, signature = helpers.token(rsa, claims()):match("^([^.]+)%.([^.]+)%.([^.]+)$")
    local forged = header .. "." .. jwk.base64url_encode(require("cjson").encode(claims({ sub = "admin" })))
      .. "." .. signature
    local calls = request(bearer(forged))
    assert.equal(401, calls.exit.status)
    assert.truthy(challenge(calls):find("bad signature", 1, true))
  end)

  it("alg none", function()
    local token = helpers.encode({ alg = "none", kid = "rsa-1" }, claims()) .. ".AA"
    local calls = request(bearer(token))
    assert.equal(401, calls.exit.status)
    assert.truthy(challenge(calls):find("algorithm not accepted", 1, true))
  end)

  it("HS256 keyed with the provider's public key (algorithm confusion)", function()
    local calls = request(bearer(helpers.hmac_token(rsa.public_pem, claims(), "rsa-1")))
    assert.equal(401, calls.exit.status)
    assert.truthy(challenge(calls):find("algorithm not accepted", 1, true))
    assert.equal(0, keys.fetches, "an unaccepted algorithm never reaches the provider")
  end)

  it("an EC signature under an RS256 header naming the EC key", function()
    -- a key is chosen by its id and the token's algorithm together: the EC key is no RS256 key
    local token = helpers.token(ec, claims(), { alg = "RS256", kid = "ec-1" })
    local calls = request(bearer(token))
    assert.equal(401, calls.exit.status)
    assert.truthy(challenge(calls):find("unknown signing key", 1, true))
    local key = jwk.key(ec.jwk)
    assert.same({ false, "the signing key is for ES256, the token says RS256" },
      { jwt.verify_signature(jwt.parse(token), key) })
  end)

  it("when the provider is down and nothing is cached", function()
    keys.fetch = function() return 503, "unavailable" end
    local calls = request(bearer(helpers.token(rsa, claims())))
    assert.equal(401, calls.exit.status)
  end)

  it("a discovery document that names another issuer", function()
    keys.fetch = function(url)
      if url:find("openid%-configuration") then
        return 200, '{"issuer": "https://evil.example.com", "jwks_uri": "https://evil.example.com/keys"}'
      end
      return provider.fetch(url)
    end
    assert.equal(401, request(bearer(helpers.token(rsa, claims()))).exit.status)
    assert.equal(1, keys.fetches, "the other issuer's keys are never fetched")
  end)
end)

describe("oidc-jwt refuses with 403", function()
  it("a token without the required scope", function()
    local calls = request(bearer(helpers.token(rsa, claims({ scope = "openid" }))))
    assert.equal(403, calls.exit.status)
    assert.truthy(challenge(calls):find('error="insufficient_scope"', 1, true))
    assert.truthy(challenge(calls):find("inference:invoke", 1, true))
    assert.is_nil(calls.credential)
  end)

  it("a token whose required claim does not match", function()
    local config = conf({ required_claims = { tenant = "acme" } })
    assert.equal(403, request(bearer(helpers.token(rsa, claims({ tenant = "other" }))), config).exit.status)
    assert.is_nil(request(bearer(helpers.token(rsa, claims({ tenant = "acme" }))), config).exit)
  end)
end)

describe("oidc-jwt identity headers", function()
  it("are cleared before anything else, so a client cannot set them", function()
    local calls = request({ ["X-Authenticated-Subject"] = "admin" })
    assert.equal(401, calls.exit.status)
    for _, header in pairs(handler.IDENTITY_HEADERS) do
      assert.is_true(calls.cleared[header:lower()], header)
    end
  end)
end)

describe("oidc-jwt key rotation", function()
  it("refreshes on an unknown key id and accepts the provider's new key without a redeploy", function()
    assert.is_nil(request(bearer(helpers.token(rsa, claims()))).exit)
    provider.keys = { rsa, rotated }
    local calls = request(bearer(helpers.token(rotated, claims())), nil, NOW + 31)
    assert.is_nil(calls.exit)
    -- discovery, keys, then the keys again: the jwks_uri is remembered
    assert.same({ ISSUER .. "/.well-known/openid-configuration", ISSUER .. "/keys", ISSUER .. "/keys" },
      provider.requests)
  end)

  it("refreshes at most once per min_refresh_seconds for made-up key ids", function()
    request(bearer(helpers.token(rsa, claims())))
    for i = 1, 20 do
      local forged = helpers.token(rsa, claims(), { alg = "RS256", kid = "made-up-" .. i })
      assert.equal(401, request(bearer(forged), nil, NOW + i).exit.status)
    end
    assert.equal(2, keys.fetches, "only the first lookup fetched")
    request(bearer(helpers.token(rsa, claims(), { alg = "RS256", kid = "made-up" })), nil, NOW + 31)
    assert.equal(3, keys.fetches, "after the floor one more")
  end)

  it("keeps the known keys when a refresh fails", function()
    request(bearer(helpers.token(rsa, claims())))
    keys.fetch = function() return 500, "boom" end
    local later = NOW + 3601 -- the cache has expired
    local token = helpers.token(rsa, claims({ exp = later + 300 }))
    assert.is_nil(request(bearer(token), nil, later).exit)
  end)

  it("retires a key the provider no longer publishes once the cache expires", function()
    request(bearer(helpers.token(rsa, claims())))
    provider.keys = { rotated }
    local later = NOW + 3601
    local calls = request(bearer(helpers.token(rsa, claims({ exp = later + 300 }))), nil, later)
    assert.equal(401, calls.exit.status)
  end)
end)

describe("oidc-jwt keys", function()
  it("refuses RSA keys under 2048 bits", function()
    local small = helpers.rsa_key("small", 1024)
    assert.is_nil(jwk.key(small.jwk))
    assert.truthy(jwk.key(rsa.jwk))
  end)

  it("refuses curves other than P-256 and keys not for signing", function()
    assert.is_nil(jwk.key({ kty = "EC", crv = "P-384", x = ec.jwk.x, y = ec.jwk.y }))
    local encryption = {}
    for name, value in pairs(rsa.jwk) do
      encryption[name] = value
    end
    encryption.use = "enc"
    assert.is_nil(jwk.key(encryption))
  end)

  it("round-trips base64url and refuses padding and the standard alphabet", function()
    for _, bytes in ipairs({ "", "a", "ab", "abc", "\255\254\253\0" }) do
      assert.equal(bytes, jwk.base64url_decode(jwk.base64url_encode(bytes)))
    end
    assert.is_nil(jwk.base64url_decode("YQ=="))
    assert.is_nil(jwk.base64url_decode("+/+/"))
  end)

  it("parses nothing but three base64url parts", function()
    assert.is_nil(jwt.parse("a.b"))
    assert.is_nil(jwt.parse("a.b.c.d"))
    assert.is_nil(jwt.parse(string.rep("a", 20000)))
  end)
end)

describe("oidc-jwt schema", function()
  local function field(name)
    for _, entry in ipairs(schema.fields) do
      if entry.config then
        for _, config_field in ipairs(entry.config.fields) do
          if config_field[name] then
            return config_field[name]
          end
        end
      end
    end
  end

  it("requires an https issuer and at least one audience", function()
    assert.is_true(field("issuer").required)
    assert.equal("^https://", field("issuer").match)
    assert.equal(1, field("audiences").len_min)
  end)

  it("bounds the leeway and the refresh floor", function()
    assert.same({ 0, 300 }, field("leeway_seconds").between)
    assert.same({ 1, 3600 }, field("min_refresh_seconds").between)
  end)
end)
