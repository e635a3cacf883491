-- Configuration of the trace-headers plugin (validated by Kong and by the controller's admission).
local typedefs = require "kong.db.schema.typedefs"

return {
  name = "trace-headers",
  fields = {
    { consumer = typedefs.no_consumer },
    { protocols = typedefs.protocols_http },
    { config = {
        type = "record",
        fields = {
          -- The request headers copied onto the span, as http.request.header.<name>.
          { headers = { type = "array", required = true, len_min = 1,
                        default = { "x-request-id", "x-correlation-id" },
                        elements = { type = "string", match = "^[%w_-]+$" } } },
          { max_value_bytes = { type = "integer", required = true, default = 128, between = { 16, 1024 } } },
        },
      },
    },
  },
}
