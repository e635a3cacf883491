-- Loads a plugin's modules the way Kong does, for its specs and tools (run in the plugin's
-- directory): `require "kong.plugins.<name>.<module>"` reads ./<module>.lua, and the shared
-- stand-ins (../spec: Kong's PDK, typedefs) and libraries (../lib) are on the path.
--
--   package.path = "../spec/?.lua;" .. package.path
--   require "plugin" ("opa-authz")
return function(name)
  package.path = "./?.lua;./spec/?.lua;../spec/?.lua;../lib/?.lua;" .. package.path
  local pattern = "^kong%.plugins%." .. name:gsub("%p", "%%%0") .. "%.(.+)$"
  table.insert(package.searchers or package.loaders, 2, function(module_name)
    local module = module_name:match(pattern)
    if module then
      return assert(loadfile("./" .. module .. ".lua"))
    end
  end)
end
