-- Kong's PDK over lua-nginx-module, for the functions the platform's plugins call, as Kong
-- implements them (kong/pdk/request.lua, service/request.lua, response.lua: thin wrappers over
-- ngx.req.get_headers, ngx.req.clear_header, ngx.req.set_header, ngx.exit). Used by
-- tests/test_plugins_nginx.py to run the plugins in a real nginx; never shipped to Kong.
local cjson = require "cjson.safe"

local M = {}

M.consumers = {} -- username -> consumer, for kong.client.load_consumer

local function log(level)
  return function(...) ngx.log(level, ...) end
end

_G.kong = {
  request = {
    get_headers = function(max) return ngx.req.get_headers(max) end,
    get_header = function(name)
      local value = ngx.req.get_headers()[name]
      return type(value) == "table" and value[1] or value
    end,
    get_raw_body = function()
      ngx.req.read_body()
      return ngx.req.get_body_data()
    end,
    get_method = function() return ngx.req.get_method() end,
    get_host = function() return ngx.var.host end,
    get_path = function() return ngx.var.uri end,
  },
  service = {
    request = {
      set_header = function(name, value) ngx.req.set_header(name, value) end,
      clear_header = function(name) ngx.req.clear_header(name) end,
    },
    -- The location proxies to $target.
    set_target = function(host, port) ngx.var.target = host .. ":" .. port end,
  },
  response = {
    set_header = function(name, value) ngx.header[name] = value end,
    exit = function(status, body, headers)
      for name, value in pairs(headers or {}) do
        ngx.header[name] = value
      end
      ngx.status = status
      ngx.header["Content-Type"] = "application/json"
      ngx.say(cjson.encode(body or {}))
      return ngx.exit(status)
    end,
  },
  client = {
    authenticate = function(consumer, credential)
      ngx.ctx.authenticated_consumer, ngx.ctx.authenticated_credential = consumer, credential
    end,
    load_consumer = function(name) return M.consumers[name] end,
    get_consumer = function() return ngx.ctx.authenticated_consumer end,
    get_credential = function() return ngx.ctx.authenticated_credential end,
    get_forwarded_ip = function() return ngx.var.remote_addr end,
  },
  ctx = setmetatable({}, { __index = function(_, field)
    if field == "shared" then
      return ngx.ctx
    end
  end }),
  log = { debug = log(ngx.DEBUG), info = log(ngx.INFO), warn = log(ngx.WARN), err = log(ngx.ERR) },
}

-- keys.fetch for the tests: a plain HTTP/1.0 GET over a cosocket to the fake identity provider
-- on loopback (<issuer>/... -> http://127.0.0.1:port/...). It yields like lua-resty-http.
function M.loopback_fetch(issuer, port)
  return function(url)
    if url:sub(1, #issuer) ~= issuer then
      return nil, "not the test provider: " .. url
    end
    local path = url:sub(#issuer + 1)
    local socket = ngx.socket.tcp()
    socket:settimeout(5000)
    local ok, err = socket:connect("127.0.0.1", port)
    if not ok then
      return nil, err
    end
    socket:send("GET " .. path .. " HTTP/1.0\r\nHost: idp.test\r\n\r\n")
    local response = socket:receive("*a")
    socket:close()
    if not response then
      return nil, "no response"
    end
    return tonumber(response:match("^HTTP/1%.%d (%d+)")), response:match("\r\n\r\n(.*)$")
  end
end

-- opa-authz's post for the tests: a plain HTTP/1.0 POST over a cosocket to OPA on loopback, with
-- the plugin's timeout (lua-resty-http does the same with a keepalive pool in Kong).
function M.loopback_post(port, path, body, timeout_ms)
  local socket = ngx.socket.tcp()
  socket:settimeout(timeout_ms)
  local ok, err = socket:connect("127.0.0.1", port)
  if not ok then
    return nil, err
  end
  ok, err = socket:send("POST /v1/data/" .. path .. " HTTP/1.0\r\nHost: opa\r\nContent-Type: application/json\r\n"
    .. "Content-Length: " .. #body .. "\r\n\r\n" .. body)
  if not ok then
    return nil, err
  end
  local response
  response, err = socket:receive("*a")
  socket:close()
  if not response then
    return nil, err
  end
  return tonumber(response:match("^HTTP/1%.%d (%d+)")), response:match("\r\n\r\n(.*)$")
end

return M
