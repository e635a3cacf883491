-- For the specs: the plugin's modules under their Kong names, a recording stand-in for the part of
-- Kong's PDK the handler calls, and keys and tokens made by the openssl command line: every
-- signature in the specs is real, and verified by libcrypto.
package.path = "../spec/?.lua;" .. package.path
require "plugin" ("oidc-jwt")
require "typedefs"

local cjson = require "cjson"
local jwk = require "kong.plugins.oidc-jwt.jwk"

local M = {}

-- A claim override that deletes the claim.
M.REMOVE = setmetatable({}, { __tostring = function() return "REMOVE" end })

-- ---- Kong -----------------------------------------------------------------------------------------

local pdk = require "pdk"
M.install, M.received = pdk.install, pdk.received

local CONSUMERS = { ["known-app"] = { id = "c-1", username = "known-app", custom_id = "app-7" } }

-- The PDK for a request with `headers` (see spec/pdk.lua); the consumers Kong knows.
function M.kong(headers)
  return pdk.new({ headers = headers, consumers = CONSUMERS })
end

-- `values` with `overrides` applied (M.REMOVE takes a member out): a token's claims, a config.
function M.merged(values, overrides)
  for name, value in pairs(overrides or {}) do
    if value == M.REMOVE then
      values[name] = nil
    else
      values[name] = value -- false included
    end
  end
  return values
end

-- The plugin's access phase for a request with `headers` (a map, or { {name, value}, ... }) at
-- time `at`: the stand-in's record of what it did.
function M.access(handler, headers, config, at)
  local kong, calls = M.kong(headers)
  M.install(kong)
  handler.now = function() return at end
  handler:access(config)
  return calls
end

-- ---- keys and tokens ---------------------------------------------------------------------------------

local directory = os.tmpname()
os.remove(directory)
assert(os.execute("mkdir -p " .. directory))

local function run(command)
  local pipe = assert(io.popen(command .. " 2>/dev/null", "r"))
  local output = pipe:read("*a")
  assert(pipe:close(), "failed: " .. command)
  return output
end

local function write(name, content)
  local path = directory .. "/" .. name
  local file = assert(io.open(path, "wb"))
  file:write(content)
  file:close()
  return path
end

local generated = 0

-- A new key file (key ids may repeat: a forger reuses the provider's).
local function key_path()
  generated = generated + 1
  return directory .. "/key-" .. generated .. ".pem"
end

local function from_hex(hex)
  return (hex:gsub("%x%x", function(pair) return string.char(tonumber(pair, 16)) end))
end

function M.rsa_key(kid, bits)
  local path = key_path()
  run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:" .. (bits or 2048) .. " -out " .. path)
  local modulus = run("openssl rsa -in " .. path .. " -noout -modulus"):match("Modulus=(%x+)")
  local public = run("openssl pkey -in " .. path .. " -pubout")
  return {
    kid = kid, alg = "RS256", path = path, public_pem = public,
    jwk = { kty = "RSA", kid = kid, use = "sig", alg = "RS256", n = jwk.base64url_encode(from_hex(modulus)), e = "AQAB" },
  }
end

function M.ec_key(kid)
  local path = key_path()
  run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. path)
  local point = run("openssl pkey -in " .. path .. " -pubout -outform DER"):sub(-64) -- X || Y
  return {
    kid = kid, alg = "ES256", path = path,
    jwk = { kty = "EC", crv = "P-256", kid = kid, x = jwk.base64url_encode(point:sub(1, 32)),
            y = jwk.base64url_encode(point:sub(33, 64)) },
  }
end

-- DER ECDSA-Sig-Value -> the r || s a JWS carries.
local function ecdsa_raw(der)
  local function integer(offset)
    assert(der:byte(offset) == 0x02)
    local length = der:byte(offset + 1)
    local value = der:sub(offset + 2, offset + 1 + length):gsub("^%z+", "")
    return string.rep("\0", 32 - #value) .. value, offset + 2 + length
  end
  local r, next_offset = integer(3)
  local s = integer(next_offset)
  return r .. s
end

-- A part of a token: a table as JSON, a string as it is (for JSON cjson would not write).
local function json_text(value)
  return type(value) == "string" and value or cjson.encode(value)
end

function M.encode(header, claims)
  return jwk.base64url_encode(json_text(header)) .. "." .. jwk.base64url_encode(json_text(claims))
end

-- A token signed by `key` (its algorithm and key id unless the header says otherwise).
function M.token(key, claims, header)
  header = header or { alg = key.alg, kid = key.kid, typ = "JWT" }
  local input = M.encode(header, claims)
  local signature = run("openssl dgst -sha256 -sign " .. key.path .. " " .. write("input", input))
  if key.alg == "ES256" then
    signature = ecdsa_raw(signature)
  end
  return input .. "." .. jwk.base64url_encode(signature)
end

-- SHA-256 of `data`, raw.
function M.sha256(data)
  return run("openssl dgst -sha256 -binary " .. write("digest-input", data))
end

-- The DER ECDSA-Sig-Value openssl makes, before the JWS conversion.
function M.der_signature(key, input)
  return run("openssl dgst -sha256 -sign " .. key.path .. " " .. write("input", input))
end

-- HS256 with `secret` as the HMAC key (the algorithm-confusion attack uses the public key).
function M.hmac_token(secret, claims, kid)
  local input = M.encode({ alg = "HS256", kid = kid, typ = "JWT" }, claims)
  local hex = run("openssl dgst -sha256 -hmac '" .. secret:gsub("'", "") .. "' -r " .. write("input", input))
  return input .. "." .. jwk.base64url_encode(from_hex(hex:match("^(%x+)")))
end

-- Kong's acl plugin's decision, as Kong documents it (3.8+; our stand-in: Kong itself is not
-- installable here): the authenticated groups an authentication plugin set decide when no
-- consumer is authenticated, or always with `always_use_authenticated_groups` (falling back to
-- the consumer's ACL groups only when none were set); otherwise the consumer's own ACL groups.
function M.acl_allows(config, authenticated_groups, consumer, consumer_acl_groups)
  local groups
  if type(authenticated_groups) == "table" and (consumer == nil or config.always_use_authenticated_groups) then
    groups = authenticated_groups
  elseif consumer then
    groups = consumer_acl_groups[consumer.id] or {}
  else
    return false
  end
  for _, group in ipairs(groups) do
    for _, allowed in ipairs(config.allow) do
      if group == allowed then
        return true
      end
    end
  end
  return false
end

-- ---- concurrency -----------------------------------------------------------------------------------------

-- Requests of one nginx worker, as coroutines: a fetch "waits on the network" by yielding, and
-- the semaphore below yields until it is posted, as ngx.semaphore does.
function M.semaphore()
  local semaphore = { resources = 0, waited = 0 }
  function semaphore:wait()
    assert(coroutine.running(), "wait outside a request")
    self.waited = self.waited + 1
    while self.resources == 0 do
      coroutine.yield()
    end
    self.resources = self.resources - 1
    return true
  end
  function semaphore:post(n)
    self.resources = self.resources + (n or 1)
  end
  return semaphore
end

-- Runs `count` requests (each `request(i)`) interleaved until all are done; their results.
function M.concurrently(count, request)
  local threads, results = {}, {}
  for i = 1, count do
    threads[i] = coroutine.create(function() results[i] = request(i) end)
  end
  for _ = 1, 10000 do
    local alive = false
    for i = 1, count do
      if coroutine.status(threads[i]) ~= "dead" then
        alive = true
        assert(coroutine.resume(threads[i]))
      end
    end
    if not alive then
      return results
    end
  end
  error("the requests never finished (a deadlock)")
end

-- ---- the identity provider ------------------------------------------------------------------------------

-- A fake of the provider's two documents, counting requests; `keys` can be changed (rotation).
function M.provider(issuer, keys)
  local provider = { issuer = issuer, keys = keys, requests = {} }
  function provider.fetch(url)
    table.insert(provider.requests, url)
    if coroutine.running() then
      coroutine.yield() -- the network
    end
    if url == issuer .. "/.well-known/openid-configuration" then
      return 200, cjson.encode({ issuer = issuer, jwks_uri = issuer .. "/keys" })
    elseif url == issuer .. "/keys" then
      local set = {}
      for _, key in ipairs(provider.keys) do
        table.insert(set, key.jwk or key) -- a key of ours, or a raw (hostile) JWK
      end
      return 200, cjson.encode({ keys = set })
    end
    return 404, "not found"
  end
  return provider
end

return M
