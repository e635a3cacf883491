-- The span attributes trace-headers sets for given requests, by the plugin's own handler over the
-- specs' PDK stand-in (tests/test_traces.py puts them on the span it sends the collector).
--
--   luajit spec/span_attributes.lua < cases.json     cases: [{conf, headers: [[name, value], ...]}]
package.path = "../spec/?.lua;" .. package.path
require "plugin" ("trace-headers")
local cjson = require "cjson"
local pdk = require "pdk"
local handler = require "kong.plugins.trace-headers.handler"

local set = {}
for _, case in ipairs(cjson.decode(io.read("*a"))) do
  local kong, calls = pdk.new({ headers = case.headers })
  pdk.install(kong)
  handler:access(case.conf)
  set[#set + 1] = calls.span.attributes
end
print(cjson.encode(set))
