-- Configuration of the opa-authz plugin (validated by Kong and by the controller's admission).
local typedefs = require "kong.db.schema.typedefs"

local header_name = { type = "string", match = "^[%w_-]+$" }

return {
  name = "opa-authz",
  fields = {
    { consumer = typedefs.no_consumer },
    { protocols = typedefs.protocols_http },
    { config = {
        type = "record",
        fields = {
          -- Which API asks: the policy of package apis.<catalogue>.<api> decides for it.
          { catalogue = { type = "string", required = true, match = "^[a-z0-9-]+$" } },
          { api = { type = "string", required = true, match = "^[a-z0-9-]+$" } },
          { decision_path = { type = "string", required = true, default = "platform/gateway/decision",
                              match = "^[%w_-]+[%w_/-]*$" } },
          -- OPA listens on 127.0.0.1 only, beside Kong in the same pod.
          { port = typedefs.port { required = true, default = 8181 } },
          { timeout_ms = { type = "integer", required = true, default = 100, between = { 1, 5000 } } },
          { fail_open = { type = "boolean", required = true, default = false } },
          { send_body = { type = "boolean", required = true, default = false } },
          { max_body_bytes = { type = "integer", required = true, default = 65536, between = { 1024, 1048576 } } },
          { headers = { type = "array", required = true, default = {}, elements = header_name } },
          { claims = { type = "array", required = true, default = {}, elements = { type = "string" } } },
        },
    } },
  },
}
