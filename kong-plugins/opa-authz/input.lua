-- The input document opa-authz sends Open Policy Agent: what the request is and what
-- authentication established about its caller.
--
-- Identity comes only from what Kong's authentication recorded (the consumer, the credential,
-- the authenticated groups, the token the oidc-jwt plugin verified), never from request headers:
-- a client can send any X-Consumer-* or X-Authenticated-* header, and headers an API selects
-- into the input go under `request.headers` only, identity headers excepted. Lists and maps are
-- omitted when empty (a policy reads an absent `input.groups` as no groups).
local cjson_safe = require "cjson.safe"
local headers = require "api_platform.headers"

local M = {}

-- Headers that carry credentials or identity: never copied into the input (the schema check and
-- the platform's configuration validation refuse them too).
M.IDENTITY_HEADERS = {
  "authorization", "proxy-authorization", "cookie", "x-api-key", "apikey",
  "x-authenticated-subject", "x-authenticated-issuer", "x-authenticated-scopes", "x-authenticated-groups",
  "x-authenticated-userid", "x-consumer-id", "x-consumer-custom-id", "x-consumer-username",
  "x-consumer-groups", "x-credential-identifier", "x-anonymous-consumer",
}
local identity = {}
for _, name in ipairs(M.IDENTITY_HEADERS) do
  identity[name] = true
end

local json = cjson_safe.new()
json.decode_invalid_numbers(false)
json.decode_max_depth(32)

local function non_empty(t)
  return next(t) ~= nil and t or nil
end

local function strings(list)
  local out = {}
  for _, item in ipairs(type(list) == "table" and list or {}) do
    if type(item) == "string" then
      out[#out + 1] = item
    end
  end
  return non_empty(out)
end

local function selected_headers(conf, request_headers)
  local selected = {}
  for _, name in ipairs(conf.headers or {}) do
    local canonical = headers.canonical(name)
    if not identity[canonical] then
      local values = headers.values(request_headers, canonical)
      if #values == 1 then
        selected[canonical] = values[1]
      elseif #values > 1 then
        selected[canonical] = values -- several fields or spellings: the policy sees them all
      end
    end
  end
  return non_empty(selected)
end

-- The JSON body, when the API sends it and it fits; else nil and why it was left out.
local function body_of(conf, request_headers)
  local content_type = headers.values(request_headers, "content-type")[1]
  local media_type = type(content_type) == "string" and content_type:lower():match("^%s*([^;%s]+)")
  if media_type ~= "application/json" and not (media_type or ""):match("^application/[%w.+-]+%+json$") then
    return nil, "not JSON"
  end
  local lengths = headers.values(request_headers, "content-length")
  local length = #lengths == 1 and tonumber(lengths[1]) or nil
  if not length or length > conf.max_body_bytes then
    return nil, "larger than " .. conf.max_body_bytes .. " bytes or of unknown length"
  end
  local decoded = json.decode(kong.request.get_raw_body(conf.max_body_bytes) or "")
  if decoded == nil then
    return nil, "not valid JSON"
  end
  return decoded
end

local function token_of(conf)
  local verified = kong.ctx.shared.authenticated_token -- set by oidc-jwt after it verified the token
  if type(verified) ~= "table" then
    return nil
  end
  local claims = {}
  for _, name in ipairs(conf.claims or {}) do
    claims[name] = verified.claims and verified.claims[name]
  end
  return { iss = verified.iss, sub = verified.sub, scopes = strings(verified.scopes), claims = non_empty(claims) }
end

-- The input for this request (given the request's headers, as api_platform.headers.read gives
-- them) at time `now` (seconds).
function M.build(conf, request_headers, now)
  local consumer = kong.client.get_consumer()
  local credential = kong.client.get_credential()
  local groups = kong.ctx.shared.authenticated_groups
  if groups == nil and ngx and ngx.ctx then
    groups = ngx.ctx.authenticated_groups
  end
  local request = {
    id = headers.values(request_headers, "x-request-id")[1],
    correlation_id = headers.values(request_headers, "x-correlation-id")[1],
    method = kong.request.get_method(),
    host = kong.request.get_host(),
    path = kong.request.get_path(),
    headers = selected_headers(conf, request_headers),
  }
  if conf.send_body then
    request.body, request.body_omitted = body_of(conf, request_headers)
  end
  return {
    api = { catalogue = conf.catalogue, name = conf.api },
    request = request,
    client = { ip = kong.client.get_forwarded_ip() },
    consumer = consumer and { id = consumer.id, username = consumer.username, custom_id = consumer.custom_id } or nil,
    credential = credential and { id = credential.id } or nil,
    groups = strings(groups),
    ["token"] = token_of(conf),
    time = { unix = now, rfc3339 = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(now)) },
  }
end

function M.encode(input)
  return json.encode(input)
end

return M
