-- The identity provider's signing keys: from its discovery document's jwks_uri, cached per issuer
-- (in each nginx worker) for jwks_cache_seconds. A token signed with a key id the cache does not
-- know refreshes it at once, so the provider's key rotation needs no redeploy; but at most once
-- per min_refresh_seconds, so tokens with made-up key ids cannot hammer the provider. A failed
-- refresh keeps the keys already known.
local cjson = require "cjson.safe"
local jwk = require "kong.plugins.oidc-jwt.jwk"

local M = {}

M.cache = {} -- issuer -> { keys = { kid -> key }, fetched = t, expires = t, jwks_uri = url }
M.fetches = 0

-- GET url -> status, body. Replaceable (the tests serve fixtures); in Kong, lua-resty-http with
-- certificate verification against the gateway's trusted CAs.
function M.fetch(url)
  local http = require "resty.http"
  local client = http.new()
  client:set_timeout(3000)
  local response, err = client:request_uri(url, { ssl_verify = true, headers = { Accept = "application/json" } })
  if not response then
    return nil, err
  end
  return response.status, response.body
end

local function get_json(url)
  if type(url) ~= "string" or not url:match("^https://") then
    return nil, "not an https URL: " .. tostring(url)
  end
  M.fetches = M.fetches + 1
  local status, body = M.fetch(url)
  if status ~= 200 then
    return nil, "GET " .. url .. ": " .. tostring(status or body)
  end
  local document = cjson.decode(body)
  if type(document) ~= "table" then
    return nil, "GET " .. url .. ": not JSON"
  end
  return document
end

local function load(conf, entry)
  local jwks_uri = entry and entry.jwks_uri
  if not jwks_uri then
    local discovery, err = get_json(conf.issuer:gsub("/$", "") .. "/.well-known/openid-configuration")
    if not discovery then
      return nil, err
    end
    if discovery.issuer ~= conf.issuer then
      return nil, "the discovery document names issuer " .. tostring(discovery.issuer)
    end
    jwks_uri = discovery.jwks_uri
  end
  local jwks, err = get_json(jwks_uri)
  if not jwks then
    return nil, err
  end
  local keys, count = {}, 0
  for _, entry_jwk in ipairs(type(jwks.keys) == "table" and jwks.keys or {}) do
    local key = jwk.key(entry_jwk)
    if key then
      keys[entry_jwk.kid or ""] = key
      count = count + 1
    end
  end
  return { keys = keys, count = count, jwks_uri = jwks_uri }
end

local function pick(entry, kid, alg)
  if not entry then
    return nil
  end
  if kid ~= nil then
    return entry.keys[kid]
  end
  -- No key id: acceptable only when the provider publishes a single key for the algorithm.
  local found
  for _, key in pairs(entry.keys) do
    if key.alg == alg then
      if found then
        return nil
      end
      found = key
    end
  end
  return found
end

-- The key that verifies a token with header `kid` and `alg` at time `now`; nil and why not.
function M.get(conf, kid, alg, now)
  local entry = M.cache[conf.issuer]
  local fresh = entry and now < entry.expires
  local key = pick(entry, kid, alg)
  if key and fresh then
    return key
  end
  if entry and now - entry.fetched < conf.min_refresh_seconds then
    return key, key == nil and "unknown signing key (the key set was refreshed moments ago)" or nil
  end
  local loaded, err = load(conf, entry)
  if loaded then
    loaded.fetched, loaded.expires = now, now + conf.jwks_cache_seconds
    M.cache[conf.issuer] = loaded
    entry = loaded
  elseif entry then
    entry.fetched = now -- keep the known keys; try again after the floor
  else
    M.cache[conf.issuer] = { keys = {}, count = 0, fetched = now, expires = now }
    return nil, "the identity provider's keys are unavailable: " .. tostring(err)
  end
  key = pick(entry, kid, alg)
  if not key then
    return nil, "unknown signing key"
  end
  return key
end

return M
