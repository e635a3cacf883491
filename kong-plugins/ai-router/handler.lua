-- ai-router: routes an AI request to the upstream serving the requested model.
--
-- The model comes from a request header (conf.header) or, for JSON requests, from a body field
-- (conf.body_field). A model listed in conf.routes goes to its host and port; any other request
-- (no model, unknown model, unreadable body) goes to one of conf.fallback, chosen at random in
-- proportion to the weights. The choice is passed upstream and back to the client in X-AI-Route.
local cjson = require "cjson.safe"

local AiRouter = {
  PRIORITY = 750, -- after authentication (jwt 1450, key-auth 1250, oauth2 1400) and rate limiting (910)
  VERSION = "1.0.0",
}

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

function AiRouter.requested_model(conf)
  local model = kong.request.get_header(conf.header)
  if model and model ~= "" then
    return model, "header"
  end
  if not conf.body_field then
    return nil
  end
  local content_type = kong.request.get_header("content-type") or ""
  if not content_type:find("application/json", 1, true) then
    return nil
  end
  local body = kong.request.get_raw_body()
  if not body then
    return nil
  end
  local decoded = cjson.decode(body)
  if type(decoded) == "table" and type(decoded[conf.body_field]) == "string" and decoded[conf.body_field] ~= "" then
    return decoded[conf.body_field], "body"
  end
  return nil
end

function AiRouter:access(conf)
  local model, source = AiRouter.requested_model(conf)
  local target, decision
  if model then
    for _, route in ipairs(conf.routes or {}) do
      if route.model == model then
        target, decision = route, "model"
        break
      end
    end
  end
  if not target then
    target, decision = AiRouter.pick_weighted(conf.fallback, AiRouter.random), "fallback"
  end
  kong.service.set_target(target.host, target.port)
  local route = decision .. ":" .. (model or "-")
  kong.service.request.set_header("X-AI-Route", route)
  kong.response.set_header("X-AI-Route", route)
  kong.log.debug("ai-router ", route, " from ", source or "none", " to ", target.host, ":", target.port)
end

return AiRouter
