-- oidc-jwt against the RFCs' MUST and MUST NOT, and against an attacker. Organised by the section
-- each requirement comes from; the plugin's README maps every requirement to its spec here.
-- Keys and tokens are made by the openssl command line, as in oidc_jwt_spec.lua.
package.path = "./spec/?.lua;" .. package.path
local helpers = require "helpers"
local handler = require "kong.plugins.oidc-jwt.handler"
local keys = require "kong.plugins.oidc-jwt.keys"
local jwk = require "kong.plugins.oidc-jwt.jwk"
local cjson = require "cjson"

local ISSUER = "https://login.example.com/realms/platform"
local NOW = 1800000000

local rsa = helpers.rsa_key("rsa-1")
local ec = helpers.ec_key("ec-1")

local function conf(overrides)
  local config = {
    issuer = ISSUER, audiences = { "inference-api" }, required_scopes = { "inference:invoke" },
    groups_claim = "groups", leeway_seconds = 60, jwks_cache_seconds = 3600, min_refresh_seconds = 30,
    hide_credentials = false,
  }
  for name, value in pairs(overrides or {}) do
    config[name] = value
  end
  return config
end

local function claims(overrides)
  local values = {
    iss = ISSUER, aud = "inference-api", sub = "user-42", exp = NOW + 300, iat = NOW - 10, nbf = NOW - 10,
    scope = "openid inference:invoke", groups = { "ml-engineers", "staff" },
  }
  return helpers.merged(values, overrides)
end

local provider

-- The plugin's access phase for a request with `headers` (a map, or { {name, value}, ... }).
local function request(headers, config, at)
  return helpers.access(handler, headers, config or conf(), at or NOW)
end

local function bearer(token, scheme)
  return { { "Authorization", (scheme or "Bearer") .. " " .. token } }
end

local function with(headers, ...)
  for _, field in ipairs({ ... }) do
    table.insert(headers, field)
  end
  return headers
end

local function status(calls)
  return calls.exit and calls.exit.status
end

local function challenge(calls)
  return calls.exit and calls.exit.headers["WWW-Authenticate"] or ""
end

local function refused(calls, code, text)
  assert.equal(({ invalid_request = 400, invalid_token = 401, insufficient_scope = 403 })[code], status(calls))
  assert.truthy(challenge(calls):find('error="' .. code .. '"', 1, true), challenge(calls))
  if text then
    assert.truthy(challenge(calls):find(text, 1, true), challenge(calls))
  end
  assert.is_nil(calls.credential)
end

local function accepted(calls)
  assert.is_nil(calls.exit, calls.exit and challenge(calls))
  assert.same({ id = ISSUER .. "|user-42" }, calls.credential)
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do
    out[k] = v
  end
  return out
end

-- A JWK of `key` with members changed (nil values removed).
local function variant(key, changes)
  local out = copy(key.jwk)
  for k, v in pairs(changes) do
    out[k] = v
  end
  return out
end

local function b64(bytes)
  return jwk.base64url_encode(bytes)
end

before_each(function()
  keys.cache, keys.flights, keys.fetches = {}, {}, 0
  keys.semaphore = helpers.semaphore
  keys.log = function() end
  provider = helpers.provider(ISSUER, { rsa, ec })
  keys.fetch = provider.fetch
end)

describe("RFC 7515 (JWS)", function()
  it("§4.1.1 alg is case-sensitive: rs256 is not RS256", function()
    refused(request(bearer(helpers.token(rsa, claims(), { alg = "rs256", kid = "rsa-1" }))),
      "invalid_token", "algorithm not accepted")
  end)

  it("§4.1.1 a header without alg is refused", function()
    refused(request(bearer(helpers.token(rsa, claims(), { kid = "rsa-1" }))), "invalid_token", "no alg")
  end)

  it("§4.1.4 kid must be a string: a numeric kid is refused", function()
    refused(request(bearer(helpers.token(rsa, claims(), { alg = "RS256", kid = 1 }))),
      "invalid_token", "kid is not a string")
  end)

  it("§4.1.11 crit: extensions the recipient does not understand MUST make the JWS invalid", function()
    local header = { alg = "RS256", kid = "rsa-1", crit = { "exp" }, exp = NOW + 300 }
    refused(request(bearer(helpers.token(rsa, claims(), header))), "invalid_token", "critical header")
  end)

  it("RFC 7797 §6 b64 (with or without crit) is refused: the payload is always base64url", function()
    local header = { alg = "RS256", kid = "rsa-1", b64 = false }
    refused(request(bearer(helpers.token(rsa, claims(), header))), "invalid_token", "unencoded payloads")
  end)

  it("§4.1.2-§4.1.6 a key carried by the token (jwk, jku, x5c) is never trusted", function()
    local attacker = helpers.rsa_key("attacker")
    local header = { alg = "RS256", kid = "attacker", jwk = attacker.jwk, jku = "https://evil.example.com/keys",
      x5c = { "MIIB" } }
    refused(request(bearer(helpers.token(attacker, claims(), header))), "invalid_token", "unknown signing key")
  end)

  it("§5.2 the header and the payload must be JSON objects, not arrays", function()
    refused(request(bearer(helpers.token(rsa, '["sub", "admin"]'))), "invalid_token", "malformed token")
    local array_header = b64('["RS256"]') .. "." .. b64(cjson.encode(claims())) .. ".AAAA"
    refused(request(bearer(array_header)), "invalid_token", "malformed token")
  end)

  it("§2 base64url without padding, and canonical: a re-spelt signature is not the signature", function()
    local token = helpers.token(rsa, claims())
    accepted(request(bearer(token)))
    -- 256 signature octets end on a character carrying 4 unused bits: set one, same octets
    local last = token:sub(-1)
    local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    local index = alphabet:find(last, 1, true)
    local respelt = token:sub(1, -2) .. alphabet:sub(index + 1, index + 1)
    refused(request(bearer(respelt)), "invalid_token", "malformed token")
    -- b64token allows trailing "=" (RFC 6750 §2.1): a valid header, but no JWT
    refused(request(bearer(token .. "==")), "invalid_token", "not a signed JWT")
  end)

  it("§7.1 a JWE (five parts) or an unsigned JWT (two parts) is not a signed JWT", function()
    refused(request(bearer("a.b.c.d.e")), "invalid_token", "not a signed JWT")
    refused(request(bearer(helpers.encode({ alg = "none" }, claims()) .. ".")), "invalid_token")
  end)
end)

describe("RFC 7518 (JWA)", function()
  it("§3.1 none MUST NOT be accepted, nor HS256 keyed with the public key", function()
    refused(request(bearer(helpers.encode({ alg = "none", kid = "rsa-1" }, claims()) .. ".AA")),
      "invalid_token", "algorithm not accepted")
    refused(request(bearer(helpers.hmac_token(rsa.public_pem, claims(), "rsa-1"))),
      "invalid_token", "algorithm not accepted")
  end)

  it("§3.3 an RSA key MUST have at least 2048 bits: its real length, not its octet count", function()
    local short = helpers.rsa_key("short", 2041) -- 256 octets, top octet 0x01
    assert.equal(256, #jwk.base64url_decode(short.jwk.n))
    local set = jwk.key(short.jwk)
    assert.is_nil(set)
    provider.keys = { short }
    refused(request(bearer(helpers.token(short, claims()))), "invalid_token", "unknown signing key")
  end)

  it("§6.3.1.1 n MUST use the minimum number of octets: a leading zero octet is refused", function()
    local n = jwk.base64url_decode(rsa.jwk.n)
    local padded = variant(rsa, { n = b64("\0" .. n) })
    assert.is_nil(jwk.key(padded))
    provider.keys = { padded }
    refused(request(bearer(helpers.token(rsa, claims()))), "invalid_token", "unknown signing key")
  end)

  it("§6.3.1.2 e MUST be minimal; e = 1 and an even e are refused", function()
    assert.is_nil(jwk.key(variant(rsa, { e = "AAEAAQ" }))) -- 65537 with a leading zero octet
    assert.is_nil(jwk.key(variant(rsa, { e = "Ag" }))) -- 2
    assert.truthy(jwk.key(variant(rsa, { e = "Aw" }))) -- 3 is an RSA exponent
  end)

  it("§6.3.1.2 an e = 1 key cannot be used to pass off the message itself as its signature", function()
    local one = variant(rsa, { kid = "one", e = "AQ" })
    provider.keys = { one }
    local input = helpers.encode({ alg = "RS256", kid = "one" }, claims({ sub = "admin" }))
    local digest = helpers.sha256(input)
    local info = "\48\49\48\13\6\9\96\134\72\1\101\3\4\2\1\5\0\4\32" .. digest
    local encoded = "\0\1" .. string.rep("\255", 256 - 3 - #info) .. "\0" .. info -- EMSA-PKCS1-v1_5
    refused(request(bearer(input .. "." .. b64(encoded))), "invalid_token", "unknown signing key")
  end)

  it("an even modulus and a modulus over 8192 bits are refused", function()
    local n = jwk.base64url_decode(rsa.jwk.n)
    local even = n:sub(1, -2) .. string.char(n:byte(-1) - n:byte(-1) % 2)
    assert.is_nil(jwk.key(variant(rsa, { n = b64(even) })))
    assert.is_nil(jwk.key(variant(rsa, { n = b64("\1" .. string.rep("\255", 1024)) })))
  end)

  it("§3.4 an ES256 signature MUST be 64 octets: a DER signature is refused", function()
    local token = helpers.token(ec, claims())
    accepted(request(bearer(token)))
    local der = helpers.der_signature(ec, token:match("^(.+)%.[^.]+$"))
    refused(request(bearer(token:match("^(.+)%.[^.]+$") .. "." .. b64(der))), "invalid_token", "malformed ES256")
  end)

  it("§6.2.1 x and y MUST be full-size coordinates, on P-256, on the curve", function()
    local x = jwk.base64url_decode(ec.jwk.x)
    assert.is_nil(jwk.key(variant(ec, { x = b64(x:sub(2)) })))
    assert.is_nil(jwk.key(variant(ec, { crv = "P-384" })))
    local y = jwk.base64url_decode(ec.jwk.y)
    local off_curve = y:sub(1, -2) .. string.char((y:byte(-1) + 1) % 256)
    assert.is_nil(jwk.key(variant(ec, { y = b64(off_curve) })))
  end)
end)

describe("RFC 7517 (JWK)", function()
  it("§4.2 use: a key for encryption never verifies", function()
    provider.keys = { variant(rsa, { use = "enc" }) }
    refused(request(bearer(helpers.token(rsa, claims()))), "invalid_token", "unknown signing key")
  end)

  it("§4.3 key_ops: a key whose operations exclude verify never verifies, nor one inconsistent with use", function()
    assert.is_nil(jwk.key(variant(rsa, { key_ops = { "sign" } })))
    assert.is_nil(jwk.key(variant(rsa, { use = "sig", key_ops = { "encrypt" } })))
    assert.truthy(jwk.key(variant(rsa, { key_ops = { "verify" } })))
    provider.keys = { variant(rsa, { key_ops = { "encrypt" } }) }
    refused(request(bearer(helpers.token(rsa, claims()))), "invalid_token", "unknown signing key")
  end)

  it("§4.4 alg: a key for ES256 does not verify RS256, whatever the token says", function()
    provider.keys = { variant(rsa, { alg = "ES256" }) }
    refused(request(bearer(helpers.token(rsa, claims()))), "invalid_token", "unknown signing key")
  end)

  it("§4.5 the same kid for two key types: the token's algorithm chooses", function()
    local shared_ec = helpers.ec_key("shared")
    local shared_rsa = helpers.rsa_key("shared")
    provider.keys = { shared_ec, shared_rsa }
    accepted(request(bearer(helpers.token(shared_rsa, claims()))))
    accepted(request(bearer(helpers.token(shared_ec, claims()))))
  end)

  it("§4.5 two keys of one type under one kid: ambiguous, refused rather than guessed", function()
    local first, second = helpers.rsa_key("dup"), helpers.rsa_key("dup")
    provider.keys = { first, second }
    refused(request(bearer(helpers.token(first, claims()))), "invalid_token", "ambiguous signing key")
    refused(request(bearer(helpers.token(second, claims()))), "invalid_token", "ambiguous signing key")
  end)

  it("§6 (RFC 7515) no kid: only a single key for the algorithm may verify", function()
    local no_kid = helpers.token(rsa, claims(), { alg = "RS256" })
    accepted(request(bearer(no_kid)))
    keys.cache = {}
    provider.keys = { rsa, helpers.rsa_key("rsa-2"), ec }
    refused(request(bearer(no_kid)), "invalid_token", "ambiguous signing key")
  end)

  it("§5 a key set's bad keys are skipped: the others keep working, and so does the refresh floor", function()
    local logged = {}
    keys.log = function(...) table.insert(logged, table.concat({ ... })) end
    provider.keys = {
      { kty = "RSA", kid = "empty", n = "", e = "" },
      { kty = "RSA", kid = "no-exponent", n = rsa.jwk.n, e = "" },
      { kty = "RSA", kid = "types", n = 42, e = { 1 } },
      { kty = "EC", kid = "short", crv = "P-256", x = "AA", y = "AA" },
      { kty = "oct", kid = "secret", k = "c2VjcmV0" },
      { kty = "RSA", kid = { "table" }, n = rsa.jwk.n, e = "AQAB" },
      variant(rsa, { kid = "private", d = "AQAB" }),
      "not an object",
      rsa,
      ec,
    }
    accepted(request(bearer(helpers.token(rsa, claims()))))
    accepted(request(bearer(helpers.token(ec, claims()))))
    assert.equal(8, #logged, table.concat(logged, "\n"))
    assert.equal(2, keys.fetches)
    for i = 1, 5 do -- made-up key ids within the floor: no fetch
      local forged = helpers.token(rsa, claims(), { alg = "RS256", kid = "made-up-" .. i })
      refused(request(bearer(forged), nil, NOW + i), "invalid_token", "unknown signing key")
    end
    assert.equal(2, keys.fetches)
  end)

  it("a key set whose every key is broken answers 401 and leaves the floor standing", function()
    provider.keys = { { kty = "RSA", kid = "rsa-1", n = rsa.jwk.n, e = "" } } -- an empty exponent
    for i = 1, 5 do
      local ok, calls = pcall(request, bearer(helpers.token(rsa, claims())), nil, NOW + i)
      assert.is_true(ok, "the request raised: " .. tostring(calls))
      refused(calls, "invalid_token")
    end
    assert.equal(2, keys.fetches)
  end)

  it("a key carrying private members is refused: a public key set never holds a private key", function()
    assert.is_nil(jwk.key(variant(ec, { d = "AQAB" })))
  end)
end)

describe("RFC 7519 (JWT) §4.1", function()
  it("§4.1.1 iss is compared exactly: case and a trailing slash matter", function()
    refused(request(bearer(helpers.token(rsa, claims({ iss = ISSUER .. "/" })))), "invalid_token", "wrong issuer")
    refused(request(bearer(helpers.token(rsa, claims({ iss = ISSUER:upper() })))), "invalid_token", "wrong issuer")
  end)

  it("§4.1.2 sub must be a non-empty string", function()
    refused(request(bearer(helpers.token(rsa, claims({ sub = 42 })))), "invalid_token", "no subject")
    refused(request(bearer(helpers.token(rsa, claims({ sub = "" })))), "invalid_token", "no subject")
  end)

  it("§4.1.3 a principal not named in aud MUST reject; aud must be strings", function()
    refused(request(bearer(helpers.token(rsa, claims({ aud = { "billing" } })))), "invalid_token", "wrong audience")
    refused(request(bearer(helpers.token(rsa, claims({ aud = 7 })))), "invalid_token", "wrong audience")
    refused(request(bearer(helpers.token(rsa, claims({ aud = { { "inference-api" } } })))), "invalid_token")
  end)

  it("§4.1.4 exp MUST be a NumericDate: a string, an infinite or a non-JSON number is refused", function()
    refused(request(bearer(helpers.token(rsa, claims({ exp = tostring(NOW + 300) })))), "invalid_token", "no valid expiry")
    local function raw_exp(text)
      return '{"iss":"' .. ISSUER .. '","aud":"inference-api","sub":"user-42","scope":"inference:invoke","exp":'
        .. text .. '}'
    end
    refused(request(bearer(helpers.token(rsa, raw_exp("1e999")))), "invalid_token", "no valid expiry")
    refused(request(bearer(helpers.token(rsa, raw_exp("-1e999")))), "invalid_token")
    refused(request(bearer(helpers.token(rsa, raw_exp("NaN")))), "invalid_token", "malformed token")
    refused(request(bearer(helpers.token(rsa, raw_exp("Infinity")))), "invalid_token", "malformed token")
    refused(request(bearer(helpers.token(rsa, raw_exp("0x7fffffff")))), "invalid_token", "malformed token")
    accepted(request(bearer(helpers.token(rsa, raw_exp(tostring(NOW + 300))))))
  end)

  it("§4.1.5 nbf and §4.1.6 iat MUST be NumericDates when present", function()
    refused(request(bearer(helpers.token(rsa, claims({ nbf = "0" })))), "invalid_token", "not yet valid")
    refused(request(bearer(helpers.token(rsa, claims({ iat = true })))), "invalid_token", "in the future")
    local raw = '{"iss":"' .. ISSUER .. '","aud":"inference-api","sub":"user-42","scope":"inference:invoke","exp":'
      .. (NOW + 300) .. ',"nbf":-1e999}'
    refused(request(bearer(helpers.token(rsa, raw))), "invalid_token", "not yet valid")
  end)

  it("§7.2 step 8: a nested token (cty JWT) is refused", function()
    local header = { alg = "RS256", kid = "rsa-1", cty = "JWT" }
    refused(request(bearer(helpers.token(rsa, claims(), header))), "invalid_token", "nested tokens")
  end)
end)

describe("RFC 6750 (bearer tokens) and RFC 7235", function()
  it("RFC 7235 §2.1 the scheme is case-insensitive", function()
    local token = helpers.token(rsa, claims())
    for _, scheme in ipairs({ "Bearer", "bearer", "BEARER", "bEaReR" }) do
      keys.cache = {}
      accepted(request(bearer(token, scheme)))
    end
  end)

  it("§3 no credentials, or another scheme: 401 with a bare challenge, no error code", function()
    for _, headers in ipairs({ {}, { { "Authorization", "Basic dXNlcjpwYXNz" } } }) do
      local calls = request(headers)
      assert.equal(401, status(calls))
      assert.equal("Bearer", challenge(calls))
    end
  end)

  it("§2.1 malformed bearer credentials are invalid_request (400)", function()
    for _, value in ipairs({ "Bearer", "Bearer ", "Bearer a b", "Bearer\ttoken", "Bearer tok<en>" }) do
      refused(request({ { "Authorization", value } }), "invalid_request", "malformed bearer")
    end
  end)

  it("§3.1 more than one Authorization header is invalid_request (400), in any spelling", function()
    local token = helpers.token(rsa, claims())
    refused(request(with(bearer(token), { "authorization", "Bearer " .. token })), "invalid_request", "more than one")
    refused(request(with(bearer(token), { "AUTHORIZATION", "Basic eDp5" })), "invalid_request", "more than one")
  end)

  it("§3.1 insufficient_scope is 403, invalid_token 401, and the description is a safe quoted string", function()
    refused(request(bearer(helpers.token(rsa, claims({ scope = "openid" })))), "insufficient_scope")
    refused(request(bearer(helpers.token(rsa, claims({ aud = "x" })))), "invalid_token")
    local calls = request(bearer(helpers.token(rsa, claims({ scope = "openid" }))),
      conf({ required_scopes = { 'a"b\\c' } }))
    assert.truthy(challenge(calls):find('error_description="scope a?b?c is missing"', 1, true), challenge(calls))
  end)

  it("§5.3 hide_credentials: the token never reaches the upstream, in any spelling", function()
    local token = helpers.token(rsa, claims())
    local calls = request(with(bearer(token)), conf({ hide_credentials = true }))
    accepted(calls)
    assert.same({}, helpers.received(calls, "Authorization"))
    calls = request(bearer(token))
    assert.same({ "Bearer " .. token }, helpers.received(calls, "Authorization"), "off: forwarded as sent")
  end)
end)

describe("OpenID Connect Core §3.1.3.7 and Discovery", function()
  it("Discovery §4.1 a trailing slash of the issuer is removed before the well-known path", function()
    local slashed = ISSUER .. "/"
    local asked = {}
    keys.fetch = function(url)
      table.insert(asked, url)
      if url == ISSUER .. "/.well-known/openid-configuration" then
        return 200, cjson.encode({ issuer = slashed, jwks_uri = ISSUER .. "/keys" })
      end
      return provider.fetch(url)
    end
    local calls = request(bearer(helpers.token(rsa, claims({ iss = slashed }))), conf({ issuer = slashed }))
    assert.is_nil(calls.exit)
    assert.same({ ISSUER .. "/.well-known/openid-configuration", ISSUER .. "/keys" }, asked)
  end)

  it("Discovery §3 a jwks_uri that is not https is never fetched", function()
    keys.fetch = function(url)
      if url:find("openid%-configuration") then
        return 200, cjson.encode({ issuer = ISSUER, jwks_uri = "http://login.example.com/keys" })
      end
      error("fetched " .. url)
    end
    refused(request(bearer(helpers.token(rsa, claims()))), "invalid_token", "unknown signing key")
  end)

  it("a discovery or key document over 512 KiB is not read", function()
    keys.fetch = function(url)
      if url:find("openid%-configuration") then
        return 200, cjson.encode({ issuer = ISSUER, jwks_uri = ISSUER .. "/keys", padding = string.rep("x", 600000) })
      end
      return provider.fetch(url)
    end
    refused(request(bearer(helpers.token(rsa, claims()))), "invalid_token")
  end)
end)
