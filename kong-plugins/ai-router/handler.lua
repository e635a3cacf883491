-- ai-router: routes an AI request to the upstream serving the requested model.
--
-- The model comes from a request header (conf.header) or, for JSON requests, from a body field
-- (conf.body_field). A model listed in conf.routes goes to its host and port; any other request
-- (no model, a model not listed, an unreadable body) goes to one of conf.fallback, chosen at
-- random in proportion to the weights: only targets the configuration names are ever picked. The
-- choice is passed upstream and back to the client in X-AI-Route, naming only configured models.
--
-- Against a client playing tricks: the model header in several fields or spellings, or a header
-- and a body that name different models (the gateway would route on one while the upstream reads
-- the other), is refused with 400; a body is read only when its declared length is at most
-- conf.max_body_bytes (nginx then buffers at most that much), otherwise the request is routed on
-- the header alone; X-AI-Route is removed from the request in every spelling before it is set.
local cjson_safe = require "cjson.safe"
local headers = require "api_platform.headers"

local AiRouter = {
  PRIORITY = 750, -- after authentication (jwt 1450, key-auth 1250, oauth2 1400) and rate limiting (910)
  VERSION = "1.1.0",
}

AiRouter.ROUTE_HEADER = "X-AI-Route"

local json = cjson_safe.new()
json.decode_invalid_numbers(false)
json.decode_max_depth(64)

-- Replaceable in tests; returns an integer in [1, n].
AiRouter.random = math.random

function AiRouter.pick_weighted(targets, random)
  local total = 0
  for _, target in ipairs(targets) do
    total = total + target.weight
  end
  local ticket = random(total)
  for _, target in ipairs(targets) do
    ticket = ticket - target.weight
    if ticket <= 0 then
      return target
    end
  end
  return targets[#targets]
end

local function is_json(content_type)
  local media_type = type(content_type) == "string" and content_type:lower():match("^%s*([^;%s]+)")
  return media_type == "application/json" or (media_type and media_type:match("^application/[%w.+-]+%+json$")) ~= nil
end

-- The model a JSON body names, or nil; a body is read only when its declared length fits.
local function body_model(conf, request_headers)
  if not conf.body_field or not is_json(headers.values(request_headers, "content-type")[1]) then
    return nil
  end
  local lengths = headers.values(request_headers, "content-length")
  local length = #lengths == 1 and tonumber(lengths[1]) or nil
  if not length or length > conf.max_body_bytes then
    return nil -- chunked or too large: not buffered for routing
  end
  local body = kong.request.get_raw_body(conf.max_body_bytes)
  local decoded = body and json.decode(body)
  if type(decoded) == "table" and type(decoded[conf.body_field]) == "string" and decoded[conf.body_field] ~= "" then
    return decoded[conf.body_field]
  end
  return nil
end

-- The requested model and where it came from; or nil, nil and why the request is refused.
function AiRouter.requested_model(conf, request_headers)
  local named = headers.values(request_headers, conf.header)
  if #named > 1 then
    return nil, nil, "more than one " .. conf.header .. " header"
  end
  local from_header = named[1] ~= "" and named[1] or nil
  local from_body = body_model(conf, request_headers)
  if from_header and from_body and from_header ~= from_body then
    return nil, nil, "the " .. conf.header .. " header and the body's " .. conf.body_field .. " name different models"
  end
  if from_header then
    return from_header, "header"
  end
  return from_body, from_body and "body" or nil
end

function AiRouter:access(conf)
  local request_headers, err = headers.read()
  if not request_headers then
    return kong.response.exit(400, { message = err })
  end
  headers.clear(request_headers, { AiRouter.ROUTE_HEADER })
  local model, source, problem = AiRouter.requested_model(conf, request_headers)
  if problem then
    return kong.response.exit(400, { message = problem })
  end
  local target, route
  for _, candidate in ipairs(model and conf.routes or {}) do
    if candidate.model == model then
      target, route = candidate, "model:" .. candidate.model
      break
    end
  end
  if not target then
    target = AiRouter.pick_weighted(conf.fallback, AiRouter.random)
    route = model and "fallback:unlisted" or "fallback:-" -- a client's model name is never echoed
  end
  kong.service.set_target(target.host, target.port)
  route = headers.value(route)
  kong.service.request.set_header(AiRouter.ROUTE_HEADER, route)
  kong.response.set_header(AiRouter.ROUTE_HEADER, route)
  kong.log.debug("ai-router ", route, " from ", source or "none", " to ", target.host, ":", target.port)
end

return AiRouter
