-- The input documents opa-authz sends for given requests, built by the plugin's own input builder
-- over the specs' PDK stand-in (benchmarks/policy.py feeds them to `opa bench`).
--
--   luajit spec/build_inputs.lua < cases.json     cases: [{name, conf, request, groups, token, now}]
package.path = "../spec/?.lua;" .. package.path
require "plugin" ("opa-authz")
local cjson = require "cjson"
local pdk = require "pdk"
local input = require "kong.plugins.opa-authz.input"
local headers = require "api_platform.headers"

local built = {}
for _, case in ipairs(cjson.decode(io.read("*a"))) do
  local kong, calls = pdk.new(case.request)
  calls.ctx.authenticated_groups = case.groups
  calls.ctx.authenticated_token = case.token
  pdk.install(kong)
  built[#built + 1] = { name = case.name, input = input.build(case.conf, assert(headers.read()), case.now) }
end
print(cjson.encode(built))
