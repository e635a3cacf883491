-- The part of Kong's PDK the plugin calls, recording what the plugin does to the request.
local stub = {}

function stub.new(request)
  request = request or {}
  local headers = {}
  for name, value in pairs(request.headers or {}) do
    headers[name:lower()] = value
  end
  local calls = { target = nil, upstream_headers = {}, response_headers = {}, logs = {} }
  local kong = {
    request = {
      get_header = function(name) return headers[name:lower()] end,
      get_raw_body = function() return request.body end,
    },
    service = {
      set_target = function(host, port) calls.target = { host = host, port = port } end,
      request = { set_header = function(name, value) calls.upstream_headers[name] = value end },
    },
    response = { set_header = function(name, value) calls.response_headers[name] = value end },
    log = { debug = function(...) table.insert(calls.logs, table.concat({ ... })) end },
  }
  return kong, calls
end

-- kong.db.schema.typedefs, as far as schema.lua uses it.
package.loaded["kong.db.schema.typedefs"] = {
  no_consumer = { type = "foreign", eq = ngx and ngx.null or "null" },
  protocols_http = { type = "set", default = { "http", "https" } },
  host = function(overrides) local t = { type = "string", kind = "host" } for k, v in pairs(overrides or {}) do t[k] = v end return t end,
  port = function(overrides) local t = { type = "integer", between = { 0, 65535 } } for k, v in pairs(overrides or {}) do t[k] = v end return t end,
}

return stub
