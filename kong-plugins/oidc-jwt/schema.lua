-- Configuration of the oidc-jwt plugin (validated by Kong and by the controller's admission).
local typedefs = require "kong.db.schema.typedefs"

local strings = { type = "array", elements = { type = "string" } }

return {
  name = "oidc-jwt",
  fields = {
    { consumer = typedefs.no_consumer },
    { protocols = typedefs.protocols_http },
    { config = {
        type = "record",
        fields = {
          { issuer = { type = "string", required = true, match = "^https://" } },
          { audiences = { type = "array", elements = { type = "string" }, required = true, len_min = 1 } },
          { required_scopes = strings },
          { required_claims = { type = "map", keys = { type = "string" }, values = { type = "string" } } },
          { groups_claim = { type = "string", required = true, default = "groups" } },
          { consumer_claim = { type = "string" } },
          -- Remove the bearer token from the request the upstream receives (the platform turns
          -- it on for external upstreams: the organisation's tokens never reach a third party).
          { hide_credentials = { type = "boolean", required = true, default = false } },
          { leeway_seconds = { type = "integer", required = true, default = 60, between = { 0, 300 } } },
          { jwks_cache_seconds = { type = "integer", required = true, default = 3600, between = { 60, 86400 } } },
          { min_refresh_seconds = { type = "integer", required = true, default = 30, between = { 1, 3600 } } },
        },
    } },
  },
}
