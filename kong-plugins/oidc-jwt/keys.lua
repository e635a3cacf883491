-- The identity provider's signing keys: from its discovery document's jwks_uri, cached per issuer
-- (in each nginx worker) for jwks_cache_seconds. A token signed with a key id the cache does not
-- know refreshes it at once, so the provider's key rotation needs no redeploy; but at most once
-- per min_refresh_seconds, counted from the start of a fetch, so tokens with made-up key ids
-- cannot hammer the provider. One fetch per issuer at a time: while it waits on the network, the
-- worker's other requests that need it wait for it (bounded) instead of starting their own, and
-- requests the cached keys can serve go on with them. A failed refresh keeps the keys already
-- known; a key the set cannot use is skipped (and logged), never taking the others down.
local jwk = require "kong.plugins.oidc-jwt.jwk"
local jwt = require "kong.plugins.oidc-jwt.jwt"
local json = jwt.json

local M = {}

M.cache = {} -- issuer -> { keys = { {kid, alg, key}... }, attempted = t, expires = t, jwks_uri = url }
M.flights = {} -- issuer -> the fetch under way: { waiting = n, semaphore }
M.fetches = 0
M.FETCH_TIMEOUT = 3 -- seconds, for each of the two documents
M.MAX_DOCUMENT = 512 * 1024 -- bytes; a key set is a few KiB

-- GET url -> status, body. Replaceable (the specs serve fixtures); in Kong, lua-resty-http with
-- certificate verification against the gateway's trusted CAs.
function M.fetch(url)
  local http = require "resty.http"
  local client = http.new()
  client:set_timeout(M.FETCH_TIMEOUT * 1000)
  local response, err = client:request_uri(url, { ssl_verify = true, headers = { Accept = "application/json" } })
  if not response then
    return nil, err
  end
  return response.status, response.body
end

-- A semaphore for the requests waiting on a fetch. Replaceable (the specs run without nginx).
function M.semaphore()
  return require("ngx.semaphore").new()
end

-- Logs what the key set could not use. Replaceable.
function M.log(...)
  if kong and kong.log then
    kong.log.warn("oidc-jwt: ", ...)
  end
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
  if type(body) ~= "string" or #body > M.MAX_DOCUMENT then
    return nil, "GET " .. url .. ": not a document of at most " .. M.MAX_DOCUMENT .. " bytes"
  end
  local document = json.decode(body)
  if type(document) ~= "table" then
    return nil, "GET " .. url .. ": not JSON"
  end
  return document
end

-- The usable keys of a JWK set; each refused key is logged with its reason.
local function usable_keys(jwks)
  local keys = {}
  for index, entry in ipairs(type(jwks.keys) == "table" and jwks.keys or {}) do
    local ok, key, err = pcall(jwk.key, entry)
    if ok and key then
      keys[#keys + 1] = key
    else
      local kid = type(entry) == "table" and type(entry.kid) == "string" and entry.kid or "#" .. index
      M.log("skipping key ", kid, ": ", tostring(ok and err or key))
    end
  end
  return keys
end

local function load(conf, known)
  local jwks_uri = known and known.jwks_uri
  if not jwks_uri then
    local discovery, err = get_json(conf.issuer:gsub("/$", "") .. "/.well-known/openid-configuration")
    if not discovery then
      return nil, err
    end
    -- OIDC Discovery §4.3: an issuer other than the one asked for MUST NOT be used.
    if discovery.issuer ~= conf.issuer then
      return nil, "the discovery document names issuer " .. tostring(discovery.issuer)
    end
    jwks_uri = discovery.jwks_uri
  end
  local jwks, err = get_json(jwks_uri)
  if not jwks then
    return nil, err
  end
  return { keys = usable_keys(jwks), jwks_uri = jwks_uri }
end

-- The keys that may have signed a token with header `kid` and `alg`: with a kid, the keys of
-- that kid for that algorithm (RFC 7517 §4.5 lets a set repeat a kid across key types); without
-- one, every key for the algorithm. The key, or nil and why not.
local function pick(entry, kid, alg)
  local found, count = nil, 0
  for _, key in ipairs(entry and entry.keys or {}) do
    if key.alg == alg and (kid == nil or key.kid == kid) then
      found, count = key, count + 1
    end
  end
  if count > 1 then
    return nil, "ambiguous: " .. count .. " keys match" .. (kid and "" or " and the token names no key id")
  end
  return found, found == nil and "unknown signing key" or nil
end

-- The fetch under way for an issuer, if any. One that outlived its two timeouts belongs to a
-- request that died with it: it is forgotten, and the next request fetches.
local function flight_of(issuer, now)
  local flight = M.flights[issuer]
  if flight and now - flight.started > 2 * M.FETCH_TIMEOUT + 1 then
    M.flights[issuer] = nil
    return nil
  end
  return flight
end

-- Fetches the issuer's keys unless a fetch is already under way, in which case it waits for that
-- one. Returns the cache entry afterwards.
local function refresh(conf, now)
  local issuer = conf.issuer
  local flight = flight_of(issuer, now)
  if flight then
    flight.waiting = flight.waiting + 1
    flight.semaphore:wait(2 * M.FETCH_TIMEOUT + 1)
    return M.cache[issuer]
  end
  flight = { waiting = 0, started = now, semaphore = M.semaphore() }
  M.flights[issuer] = flight
  local known = M.cache[issuer]
  if known then
    known.attempted = now -- the floor counts from the start of the fetch
  end
  local ok, loaded, err = pcall(load, conf, known)
  if ok and loaded then
    loaded.attempted, loaded.expires = now, now + conf.jwks_cache_seconds
    M.cache[issuer] = loaded
  else
    M.log("refreshing the keys of ", issuer, " failed: ", tostring(ok and err or loaded))
    M.cache[issuer] = known or { keys = {}, attempted = now, expires = now }
  end
  if M.flights[issuer] == flight then
    M.flights[issuer] = nil
  end
  if flight.waiting > 0 then
    flight.semaphore:post(flight.waiting)
  end
  return M.cache[issuer]
end

-- The key that verifies a token with header `kid` and `alg` at time `now`; nil and why not.
function M.get(conf, kid, alg, now)
  local issuer = conf.issuer
  local entry, flight = M.cache[issuer], flight_of(issuer, now)
  local key, err = pick(entry, kid, alg)
  local settled = key ~= nil or (entry ~= nil and err ~= "unknown signing key") -- found, or ambiguous
  if settled and (now < entry.expires or flight) then
    return key, err -- fresh, or being refreshed right now: what is known serves
  end
  if entry and not flight and now - entry.attempted < conf.min_refresh_seconds then
    if settled then
      return key, err -- expired, but a refresh started moments ago: keep what is known
    end
    return nil, "unknown signing key (the key set was refreshed moments ago)"
  end
  entry = refresh(conf, now)
  if not entry or #entry.keys == 0 then
    return nil, "the identity provider's keys are unavailable"
  end
  return pick(entry, kid, alg)
end

return M
