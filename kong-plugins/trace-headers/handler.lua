-- trace-headers: puts the request's ids on the span Kong's opentelemetry plugin exports, so a
-- request found in the logs (X-Request-ID, X-Correlation-ID) is found in Jaeger by the same ids.
--
-- Kong's request span carries its own request id (kong.request.id) but no request header. This
-- plugin runs after correlation-id and request-transformer have set the ids and copies each
-- configured header onto the active span as `http.request.header.<name>` (the OpenTelemetry
-- semantic convention's name; a string, as Kong's span attributes are scalars). The values come
-- from clients too (correlation-id keeps a client's id): a header given more than once, in any
-- spelling, or holding anything but printable ASCII is left out, and a value is cut at
-- max_value_bytes, so a client cannot make the span carry what the log would not.
local headers = require "api_platform.headers"

local TraceHeaders = {
  PRIORITY = 800, -- after correlation-id (100001) and request-transformer (801), in access
  VERSION = "1.0.0",
}

-- The attribute a header becomes.
function TraceHeaders.attribute(name)
  return "http.request.header." .. headers.canonical(name)
end

function TraceHeaders:access(conf)
  local span = kong.tracing.active_span()
  if not span then
    return -- not traced (tracing off, or the request not sampled)
  end
  local request_headers = headers.read()
  if not request_headers then
    return -- over the header limit: the other plugins refuse the request
  end
  for _, name in ipairs(conf.headers) do
    local values = headers.values(request_headers, name)
    local value = values[1]
    if #values == 1 and type(value) == "string" and value ~= "" and not value:find("[^\32-\126]") then
      span:set_attribute(TraceHeaders.attribute(name), value:sub(1, conf.max_value_bytes))
    end
  end
end

return TraceHeaders
