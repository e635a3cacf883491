-- opa-authz: asks Open Policy Agent, beside the gateway on loopback, whether this caller may do
-- this now, and enforces the answer.
--
-- The third layer of authorization after the ACL groups and the token's scopes: the plugin builds
-- its input (input.lua) from the request and from what authentication established, posts it to
-- OPA's Data API (/v1/data/<decision_path>), and lets the request through when the decision is
-- {"allow": true}; {"allow": false} is refused with the decision's status (401, 403 or 429; 403 by
-- default) and reason. When OPA cannot answer (down, slow past timeout_ms, an undefined or broken
-- decision) the request is refused with 503: fail-closed, unless the API chose fail_open (which
-- the platform refuses in prod).
local headers = require "api_platform.headers"
local input = require "kong.plugins.opa-authz.input"
local cjson_safe = require "cjson.safe"

local OpaAuthz = {
  PRIORITY = 850, -- after authentication (1250-1450), acl (950) and rate limiting (910); before ai-router (750)
  VERSION = "1.0.0",
}

local DENY_STATUSES = { [401] = true, [403] = true, [429] = true }
local MESSAGES = { [401] = "Unauthorized", [403] = "Forbidden", [429] = "Too Many Requests" }

-- Replaceable in tests.
OpaAuthz.now = function() return ngx.now() end

-- POST body to OPA on loopback -> status, body; nil and an error when it cannot answer in time.
-- In Kong, lua-resty-http with a keepalive pool; replaceable (the specs and the nginx test).
function OpaAuthz.post(port, path, body, timeout_ms)
  local http = require "resty.http"
  local client = http.new()
  client:set_timeouts(timeout_ms, timeout_ms, timeout_ms)
  local response, err = client:request_uri("http://127.0.0.1:" .. port .. "/v1/data/" .. path, {
    method = "POST",
    body = body,
    headers = { ["Content-Type"] = "application/json" },
    keepalive_timeout = 60000,
    keepalive_pool = 64,
  })
  if not response then
    return nil, err
  end
  return response.status, response.body
end

-- The decision in OPA's answer ({"result": {...}}), or nil and why there is none.
function OpaAuthz.decision_of(status, body)
  if status ~= 200 then
    return nil, "OPA answered " .. tostring(status)
  end
  local answer = cjson_safe.decode(body or "")
  local decision = type(answer) == "table" and answer.result
  if type(decision) ~= "table" or type(decision.allow) ~= "boolean" then
    return nil, "no decision (the policy is not loaded, or its decision is not {allow: boolean})"
  end
  return decision, nil, type(answer.decision_id) == "string" and answer.decision_id or nil
end

local function unavailable(conf, reason)
  if conf.fail_open then
    kong.log.warn("opa-authz: ", reason, "; failing open for API ", conf.api)
    return
  end
  kong.log.err("opa-authz: ", reason)
  return kong.response.exit(503, { message = "Service Unavailable", reason = "the policy engine did not answer" })
end

function OpaAuthz:access(conf)
  local request_headers, err = headers.read()
  if not request_headers then
    return kong.response.exit(400, { message = "Bad Request", reason = err })
  end
  local document = input.encode({ input = input.build(conf, request_headers, OpaAuthz.now()) })
  local status, body = OpaAuthz.post(conf.port, conf.decision_path, document, conf.timeout_ms)
  if not status then
    return unavailable(conf, "OPA is unreachable: " .. tostring(body))
  end
  local decision, problem, decision_id = OpaAuthz.decision_of(status, body)
  if not decision then
    return unavailable(conf, problem)
  end
  kong.ctx.shared.policy_decision_id = decision_id
  if decision.allow then
    return
  end
  local deny_status = DENY_STATUSES[decision.status] and decision.status or 403
  local reason = type(decision.reason) == "string" and headers.value(decision.reason):sub(1, 200) or "denied by policy"
  return kong.response.exit(deny_status, { message = MESSAGES[deny_status], reason = reason })
end

return OpaAuthz
