-- Configuration of the ai-router plugin (validated by Kong and by the controller's admission).
local typedefs = require "kong.db.schema.typedefs"

local target_fields = {
  { host = typedefs.host { required = true } },
  { port = typedefs.port { required = true } },
}

return {
  name = "ai-router",
  fields = {
    { consumer = typedefs.no_consumer },
    { protocols = typedefs.protocols_http },
    { config = {
        type = "record",
        fields = {
          { header = { type = "string", required = true, default = "x-model" } },
          { body_field = { type = "string", required = false, default = "model" } },
          -- The largest body read for its model field: larger (or chunked) bodies are routed on
          -- the header alone, so routing never makes nginx buffer more than this.
          { max_body_bytes = { type = "integer", required = true, default = 1048576, between = { 1024, 8388608 } } },
          { routes = {
              type = "array", required = true, default = {},
              elements = { type = "record", fields = {
                { model = { type = "string", required = true } },
                target_fields[1], target_fields[2],
              } },
          } },
          { fallback = {
              type = "array", required = true, len_min = 1,
              elements = { type = "record", fields = {
                target_fields[1], target_fields[2],
                { weight = { type = "integer", required = true, between = { 1, 1000 } } },
              } },
          } },
        },
    } },
  },
}
