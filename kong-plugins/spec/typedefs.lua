-- kong.db.schema.typedefs, as far as the platform's plugin schemas use it (the rules Kong's
-- typedefs give these fields). Installed under Kong's module name by requiring this file.
local function typedef(base)
  return function(overrides)
    local t = {}
    for k, v in pairs(base) do t[k] = v end
    for k, v in pairs(overrides or {}) do t[k] = v end
    return t
  end
end

local typedefs = {
  no_consumer = { type = "foreign" },
  protocols_http = { type = "set", elements = { type = "string" }, default = { "http", "https" } },
  host = typedef({ type = "string", match = "^[%w%.%-]+$" }),
  port = typedef({ type = "integer", between = { 0, 65535 } }),
}
package.loaded["kong.db.schema.typedefs"] = typedefs
return typedefs
