-- For the specs: the plugin's modules under their Kong names, a recording stand-in for the part of
-- Kong's PDK the handler calls, and keys and tokens made by the openssl command line: every
-- signature in the specs is real, and verified by libcrypto.
package.path = "./?.lua;./spec/?.lua;" .. package.path
table.insert(package.searchers or package.loaders, 2, function(name)
  local module = name:match("^kong%.plugins%.oidc%-jwt%.(.+)$")
  if module then
    return assert(loadfile("./" .. module .. ".lua"))
  end
end)
package.loaded["kong.db.schema.typedefs"] = {
  no_consumer = { type = "foreign" },
  protocols_http = { type = "set", default = { "http", "https" } },
}

local cjson = require "cjson"
local jwk = require "kong.plugins.oidc-jwt.jwk"

local M = {}

-- ---- Kong -----------------------------------------------------------------------------------------

function M.kong(headers)
  local lowered = {}
  for name, value in pairs(headers or {}) do
    lowered[name:lower()] = value
  end
  local calls = { upstream = {}, cleared = {}, logs = {} }
  local kong = {
    request = { get_header = function(name) return lowered[name:lower()] end },
    response = {
      exit = function(status, body, response_headers)
        calls.exit = { status = status, body = body, headers = response_headers }
        return calls.exit
      end,
    },
    service = {
      request = {
        set_header = function(name, value) calls.upstream[name] = value end,
        clear_header = function(name) calls.cleared[name] = true end,
      },
    },
    client = {
      authenticate = function(consumer, credential) calls.consumer, calls.credential = consumer, credential end,
      load_consumer = function(name, by_username)
        assert(by_username, "consumers are looked up by username")
        return name == "known-app" and { id = "c-1", username = name } or nil
      end,
    },
    ctx = { shared = {} },
    log = { info = function(...) table.insert(calls.logs, table.concat({ ... })) end },
  }
  calls.ctx = kong.ctx.shared
  return kong, calls
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

function M.encode(header, claims)
  return jwk.base64url_encode(cjson.encode(header)) .. "." .. jwk.base64url_encode(cjson.encode(claims))
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

-- HS256 with `secret` as the HMAC key (the algorithm-confusion attack uses the public key).
function M.hmac_token(secret, claims, kid)
  local input = M.encode({ alg = "HS256", kid = kid, typ = "JWT" }, claims)
  local hex = run("openssl dgst -sha256 -hmac '" .. secret:gsub("'", "") .. "' -r " .. write("input", input))
  return input .. "." .. jwk.base64url_encode(from_hex(hex:match("^(%x+)")))
end

-- ---- the identity provider ------------------------------------------------------------------------------

-- A fake of the provider's two documents, counting requests; `keys` can be changed (rotation).
function M.provider(issuer, keys)
  local provider = { issuer = issuer, keys = keys, requests = {} }
  function provider.fetch(url)
    table.insert(provider.requests, url)
    if url == issuer .. "/.well-known/openid-configuration" then
      return 200, cjson.encode({ issuer = issuer, jwks_uri = issuer .. "/keys" })
    elseif url == issuer .. "/keys" then
      local set = {}
      for _, key in ipairs(provider.keys) do
        table.insert(set, key.jwk)
      end
      return 200, cjson.encode({ keys = set })
    end
    return 404, "not found"
  end
  return provider
end

return M
