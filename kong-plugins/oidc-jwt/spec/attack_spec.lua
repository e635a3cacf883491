-- oidc-jwt against what an attacker sends besides a token: spoofed identity headers in every
-- spelling, floods of headers and of key ids, concurrent cold requests, hostile claim values.
package.path = "./spec/?.lua;" .. package.path
local helpers = require "helpers"
local handler = require "kong.plugins.oidc-jwt.handler"
local keys = require "kong.plugins.oidc-jwt.keys"

local ISSUER = "https://login.example.com/realms/platform"
local NOW = 1800000000

local rsa = helpers.rsa_key("rsa-1")

local function conf(overrides)
  local config = {
    issuer = ISSUER, audiences = { "inference-api" }, required_scopes = {}, groups_claim = "groups",
    leeway_seconds = 60, jwks_cache_seconds = 3600, min_refresh_seconds = 30, hide_credentials = false,
  }
  for name, value in pairs(overrides or {}) do
    config[name] = value
  end
  return config
end

local function claims(overrides)
  local values = { iss = ISSUER, aud = "inference-api", sub = "user-42", exp = NOW + 300, iat = NOW - 10,
    scope = "openid inference:invoke", groups = { "ml-engineers" } }
  return helpers.merged(values, overrides)
end

local provider

local function request(headers, config, at)
  return helpers.access(handler, headers, config or conf(), at or NOW)
end

local function authorized(token, ...)
  return { { "Authorization", "Bearer " .. token }, ... }
end

before_each(function()
  keys.cache, keys.flights, keys.fetches = {}, {}, 0
  keys.semaphore = helpers.semaphore
  keys.log = function() end
  provider = helpers.provider(ISSUER, { rsa })
  keys.fetch = provider.fetch
end)

describe("identity headers cannot be spoofed", function()
  local spellings = {
    "X-Authenticated-Subject", "x-authenticated-subject", "X_Authenticated_Subject", "x_authenticated_subject",
    "X-Authenticated_Subject", "X_AUTHENTICATED-SUBJECT", "X-AUTHENTICATED-SUBJECT",
  }

  it("in any case or -/_ spelling: the upstream reads only the token's subject", function()
    local sent = {}
    for _, name in ipairs(spellings) do
      table.insert(sent, { name, "admin" })
    end
    local calls = request(authorized(helpers.token(rsa, claims()), table.unpack(sent)))
    assert.is_nil(calls.exit)
    assert.same({ "user-42" }, helpers.received(calls, "X-Authenticated-Subject"))
  end)

  it("every header the plugin owns, on every request, also refused ones", function()
    local sent = {}
    for _, name in ipairs(handler.OWNED_HEADERS) do
      table.insert(sent, { name:gsub("-", "_"), "spoofed" })
      table.insert(sent, { name:upper(), "spoofed" })
    end
    for _, calls in ipairs({ request(sent), request(authorized(helpers.token(rsa, claims()), table.unpack(sent))) }) do
      for _, name in ipairs(handler.OWNED_HEADERS) do
        for _, value in ipairs(helpers.received(calls, name)) do
          assert.are_not.equal("spoofed", value, name)
        end
      end
    end
  end)

  it("X-Consumer-* describe the consumer the token names, or nothing", function()
    local spoofed = { { "X-Consumer-Username", "admin" }, { "x_consumer_id", "c-admin" } }
    local calls = request(authorized(helpers.token(rsa, claims()), table.unpack(spoofed)))
    assert.same({}, helpers.received(calls, "X-Consumer-Username"))
    assert.same({}, helpers.received(calls, "X-Consumer-ID"))
    assert.same({ ISSUER .. "|user-42" }, helpers.received(calls, "X-Credential-Identifier"))
    calls = request(authorized(helpers.token(rsa, claims({ azp = "known-app" })), table.unpack(spoofed)),
      conf({ consumer_claim = "azp" }))
    assert.same({ "known-app" }, helpers.received(calls, "X-Consumer-Username"))
    assert.same({ "c-1" }, helpers.received(calls, "X-Consumer-ID"))
    assert.same({ "app-7" }, helpers.received(calls, "X-Consumer-Custom-ID"))
  end)

  it("a request with more headers than Kong parses is refused, not half-cleared", function()
    local flood = {}
    for i = 1, 1000 do
      flood[i] = { "X-Padding-" .. i, "x" }
    end
    table.insert(flood, { "X_Authenticated_Subject", "admin" })
    local calls = request(authorized(helpers.token(rsa, claims()), table.unpack(flood)))
    assert.equal(400, calls.exit.status)
    assert.is_nil(calls.credential)
  end)
end)

describe("claim values cannot smuggle identities into the headers", function()
  it("a group containing a comma stays one group", function()
    local calls = request(authorized(helpers.token(rsa, claims({ groups = { "staff,admin", "ml" } }))))
    assert.same({ "staff%2Cadmin,ml" }, helpers.received(calls, "X-Authenticated-Groups"))
    assert.same({ "staff,admin", "ml" }, calls.ctx.authenticated_groups)
  end)

  it("only string groups count", function()
    local calls = request(authorized(helpers.token(rsa, claims({ groups = { "ml", 7, { "admin" }, true } }))))
    assert.same({ "ml" }, calls.ctx.authenticated_groups)
  end)

  it("a scope item with a space is no scope, and not two", function()
    local token = helpers.token(rsa, claims({ scope = helpers.REMOVE, scp = { "read admin", "inference:invoke" } }))
    local calls = request(authorized(token), conf({ required_scopes = { "admin" } }))
    assert.equal(403, calls.exit.status)
    calls = request(authorized(token))
    assert.same({ "inference:invoke" }, helpers.received(calls, "X-Authenticated-Scopes"))
  end)

  it("control characters and non-ASCII bytes in the subject are percent-encoded", function()
    local calls = request(authorized(helpers.token(rsa, claims({ sub = "user\r\nX-Admin: 1 é%" }))))
    assert.same({ "user%0D%0AX-Admin: 1 %C3%A9%25" }, helpers.received(calls, "X-Authenticated-Subject"))
  end)
end)

describe("one fetch per issuer at a time", function()
  it("50 concurrent requests on a cold worker fetch discovery and keys once", function()
    local token = helpers.token(rsa, claims())
    local results = helpers.concurrently(50, function()
      return request(authorized(token))
    end)
    for _, calls in ipairs(results) do
      assert.is_nil(calls.exit)
    end
    assert.equal(2, keys.fetches)
  end)

  it("50 made-up key ids after the floor make one fetch, and known keys are served meanwhile", function()
    request(authorized(helpers.token(rsa, claims())))
    local later = NOW + 31
    local good = helpers.token(rsa, claims())
    local results = helpers.concurrently(51, function(i)
      if i == 26 then
        return request(authorized(good), nil, later)
      end
      return request(authorized(helpers.token(rsa, claims(), { alg = "RS256", kid = "made-up-" .. i })), nil, later)
    end)
    assert.equal(3, keys.fetches, "discovery and keys once, then the keys once more")
    for i, calls in ipairs(results) do
      if i == 26 then
        assert.is_nil(calls.exit, "the known key is served while the fetch waits")
      else
        assert.equal(401, calls.exit.status)
      end
    end
  end)

  it("counts the floor from the start of a fetch, and a request during it waits instead of fetching", function()
    request(authorized(helpers.token(rsa, claims())), nil, NOW)
    local function made_up(kid, at)
      return request(authorized(helpers.token(rsa, claims(), { alg = "RS256", kid = kid })), nil, at)
    end
    helpers.concurrently(2, function(i)
      return made_up("during-" .. i, NOW + 31 + (i - 1) * 9) -- the second arrives 9 s into the first's fetch
    end)
    assert.equal(3, keys.fetches, "one refresh for both")
    assert.equal(NOW + 31, keys.cache[ISSUER].attempted)
    made_up("x", NOW + 60)
    assert.equal(3, keys.fetches, "29 s after the refresh started: within the floor")
    made_up("y", NOW + 62)
    assert.equal(4, keys.fetches)
  end)

  it("a fetch that died with its request is taken over", function()
    keys.flights[ISSUER] = { waiting = 0, started = NOW - 60, semaphore = helpers.semaphore() }
    assert.is_nil(request(authorized(helpers.token(rsa, claims()))).exit)
    assert.is_nil(keys.flights[ISSUER])
  end)
end)

describe("Kong's acl decides on the token's groups", function()
  -- The ACL configuration the platform renders for an API with auth oidc and allowedGroups
  -- (components/kong_apis.py; tests/test_identity.py checks the rendered object).
  local acl = { allow = { "ml-engineers" }, hide_groups_header = true, always_use_authenticated_groups = true }
  local consumer_acl_groups = { ["c-1"] = { "partners" } } -- known-app's own Kong ACL groups

  local function decide(calls, config)
    return helpers.acl_allows(config, calls.ctx.authenticated_groups, calls.consumer, consumer_acl_groups)
  end

  it("with a consumer attached by consumer_claim, the token's groups still decide", function()
    local with_consumer = conf({ consumer_claim = "azp" })
    local member = request(authorized(helpers.token(rsa, claims({ azp = "known-app" }))), with_consumer)
    assert.equal("c-1", member.consumer.id)
    assert.is_true(decide(member, acl))
    local outsider = request(authorized(helpers.token(rsa, claims({ azp = "known-app", groups = { "partners" } }))),
      with_consumer)
    assert.is_false(decide(outsider, acl))
    local no_groups = request(authorized(helpers.token(rsa, claims({ azp = "known-app", groups = helpers.REMOVE }))),
      with_consumer)
    assert.is_false(decide(no_groups, acl), "no groups in the token: an empty set, never the consumer's")
  end)

  it("without always_use_authenticated_groups the consumer's groups would decide (why the platform sets it)", function()
    local member = request(authorized(helpers.token(rsa, claims({ azp = "known-app" }))), conf({ consumer_claim = "azp" }))
    assert.is_false(decide(member, { allow = { "ml-engineers" } }))
  end)
end)
