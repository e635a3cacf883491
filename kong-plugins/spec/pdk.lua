-- For the plugins' specs: a recording stand-in for the part of Kong's PDK the plugins call, over a
-- request as an attacker can send it. Headers are given as { {name, value}, ... } (every spelling
-- and repetition kept, as nginx keeps them) or as a map. What lua-nginx-module does is modelled on
-- what it was seen to do, and what tests/test_plugins_nginx.py runs for real: get_headers
-- lower-cases names but keeps `_`, and reports "truncated" past its limit; clear_header removes
-- the fields whose name equals its argument ignoring case only; set_header replaces those and adds
-- one. `calls.upstream` is the request the upstream receives, as { {name, value}, ... }.
local M = {}

-- Installs a request's PDK as the global `kong`. Kong's PDK is per request; with requests
-- interleaved as coroutines, the global resolves to the running request's.
local by_thread = setmetatable({}, { __mode = "k" })
local main = {}
_G.kong = setmetatable({}, { __index = function(_, field)
  return (by_thread[coroutine.running() or main] or {})[field]
end })

function M.install(kong)
  by_thread[coroutine.running() or main] = kong
end

local function fields_of(headers)
  local fields = {}
  for name, value in pairs(headers or {}) do
    if type(name) == "number" then
      fields[#fields + 1] = { value[1], value[2] }
    else
      fields[#fields + 1] = { name, value }
    end
  end
  return fields
end

-- request = { headers = ..., body = "...", consumers = { username -> consumer }, method, host, path,
-- ip, consumer, credential (what an authentication plugin set before) }.
function M.new(request)
  request = request or {}
  local fields = fields_of(request.headers)
  local calls = { set = {}, cleared = {}, logs = {}, upstream = fields, response_headers = {} }
  local function remove(name)
    local kept = {}
    for _, field in ipairs(calls.upstream) do
      if field[1]:lower() ~= name:lower() then
        kept[#kept + 1] = field
      end
    end
    calls.upstream = kept
  end
  local function log(...)
    table.insert(calls.logs, table.concat({ ... }))
  end
  local kong
  kong = {
    request = {
      get_headers = function(max)
        local parsed, count = {}, 0
        for _, field in ipairs(fields) do
          count = count + 1
          if count > (max or 100) then
            return parsed, "truncated"
          end
          local name = field[1]:lower()
          local existing = parsed[name]
          if existing == nil then
            parsed[name] = field[2]
          elseif type(existing) == "table" then
            existing[#existing + 1] = field[2]
          else
            parsed[name] = { existing, field[2] }
          end
        end
        return parsed
      end,
      -- Kong: the first value of get_headers()[name], whose lookup lower-cases the name and reads
      -- `_` as `-` (lua-nginx-module's metamethod) for names not stored as given.
      get_header = function(name)
        local parsed = kong.request.get_headers()
        local value = parsed[name:lower()]
        if value == nil then
          value = parsed[(name:lower():gsub("_", "-"))]
        end
        return type(value) == "table" and value[1] or value
      end,
      get_method = function() return request.method or "GET" end,
      get_host = function() return request.host or "api.example.com" end,
      get_path = function() return request.path or "/" end,
      get_raw_body = function(max)
        calls.body_read = true
        local body = request.body
        if body and max and max > 0 and #body > max then
          return nil, "request body is larger than " .. max .. " bytes"
        end
        return body
      end,
    },
    response = {
      exit = function(status, body, response_headers)
        calls.exit = { status = status, body = body, headers = response_headers or {} }
        return calls.exit
      end,
      set_header = function(name, value) calls.response_headers[name] = value end,
    },
    service = {
      set_target = function(host, port) calls.target = { host = host, port = port } end,
      request = {
        set_header = function(name, value)
          assert(type(value) == "string", "header values are strings")
          remove(name)
          table.insert(calls.upstream, { name, value })
          calls.set[name] = value
        end,
        clear_header = function(name)
          remove(name)
          calls.cleared[name:lower()] = true
        end,
      },
    },
    client = {
      authenticate = function(consumer, credential) calls.consumer, calls.credential = consumer, credential end,
      get_consumer = function() return calls.consumer end,
      get_credential = function() return calls.credential end,
      get_forwarded_ip = function() return request.ip or "203.0.113.7" end,
      load_consumer = function(name, by_username)
        assert(by_username, "consumers are looked up by username")
        return (request.consumers or {})[name]
      end,
    },
    ctx = { shared = {} },
    log = { debug = log, info = log, warn = log, err = log },
    -- Kong's request span, recording its attributes; none for a request that is not traced.
    tracing = { active_span = function() return calls.span end },
  }
  if request.traced ~= false then
    calls.span = { attributes = {} }
    function calls.span:set_attribute(name, value)
      assert(type(value) == "string" or type(value) == "number" or type(value) == "boolean", "span attributes are scalars")
      self.attributes[name] = value
    end
  end
  calls.ctx = kong.ctx.shared
  calls.consumer, calls.credential = request.consumer, request.credential
  return kong, calls
end

-- The values of every field the upstream receives whose name, in any case and `-`/`_`
-- spelling, is `name`.
function M.received(calls, name)
  local wanted, values = (name:lower():gsub("_", "-")), {}
  for _, field in ipairs(calls.upstream) do
    if field[1]:lower():gsub("_", "-") == wanted then
      values[#values + 1] = field[2]
    end
  end
  return values
end

return M
