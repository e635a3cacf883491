package.path = "../spec/?.lua;" .. package.path
require "plugin" ("ai-router")
local pdk = require "pdk"
require "typedefs"
local handler = require "kong.plugins.ai-router.handler"

local conf = {
  header = "x-model",
  body_field = "model",
  max_body_bytes = 1024 * 1024,
  routes = {
    { model = "gpt-large", host = "gpt.ai-services.svc", port = 8080 },
    { model = "llama", host = "llama.ai-services.svc", port = 9000 },
  },
  fallback = {
    { host = "small-a.ai-services.svc", port = 8080, weight = 3 },
    { host = "small-b.ai-services.svc", port = 8080, weight = 1 },
  },
}

-- A JSON request whose body is `body`, with its Content-Length, plus `extra` header fields.
local function json_request(body, extra)
  local headers = { { "Content-Type", "application/json; charset=utf-8" }, { "Content-Length", tostring(#body) } }
  for _, field in ipairs(extra or {}) do
    headers[#headers + 1] = field
  end
  return { headers = headers, body = body }
end

local function run(request, random)
  local kong, calls = pdk.new(request)
  pdk.install(kong)
  handler.random = random or function() return 1 end
  handler:access(conf)
  return calls
end

local configured = {}
for _, target in ipairs(conf.routes) do configured[target.host] = true end
for _, target in ipairs(conf.fallback) do configured[target.host] = true end

describe("ai-router", function()
  it("routes by the model header", function()
    local calls = run({ headers = { ["X-Model"] = "llama" } })
    assert.same({ host = "llama.ai-services.svc", port = 9000 }, calls.target)
    assert.same({ "model:llama" }, pdk.received(calls, "X-AI-Route"))
    assert.equal("model:llama", calls.response_headers["X-AI-Route"])
  end)

  it("routes by the JSON body field when there is no header", function()
    local calls = run(json_request('{"model": "gpt-large", "messages": []}'))
    assert.same({ host = "gpt.ai-services.svc", port = 8080 }, calls.target)
  end)

  it("accepts a header and a body that agree", function()
    local calls = run(json_request('{"model": "llama"}', { { "x-model", "llama" } }))
    assert.equal("llama.ai-services.svc", calls.target.host)
  end)

  it("ignores the body of non-JSON requests", function()
    local calls = run({ headers = { { "content-type", "text/plain" }, { "content-length", "17" } },
      body = '{"model": "llama"}' })
    assert.same({ "fallback:-" }, pdk.received(calls, "X-AI-Route"))
    assert.is_nil(calls.body_read)
  end)

  it("reads application/*+json bodies, not application/jsonx ones", function()
    local body = '{"model": "llama"}'
    local vendor = run({ headers = { { "Content-Type", "application/vnd.api+json" }, { "Content-Length", #body .. "" } },
      body = body })
    assert.equal("llama.ai-services.svc", vendor.target.host)
    local other = run({ headers = { { "Content-Type", "application/jsonx" }, { "Content-Length", #body .. "" } },
      body = body })
    assert.equal("small-a.ai-services.svc", other.target.host)
  end)

  it("falls back on an unknown model, a broken body or no model", function()
    for _, request in ipairs({
      { headers = { ["x-model"] = "unknown-model" } },
      json_request("{not json"),
      json_request('{"model": 42}'),
      json_request('{"model": NaN}'),
      {},
    }) do
      local calls = run(request)
      assert.equal("small-a.ai-services.svc", calls.target.host)
      assert.truthy(pdk.received(calls, "X-AI-Route")[1]:find("^fallback:"))
    end
  end)

  it("splits fallback traffic by weight", function()
    -- tickets 1..3 land on the weight-3 target, ticket 4 on the weight-1 target
    local seen = {}
    for ticket = 1, 4 do
      local calls = run({}, function(total) assert.equal(4, total) return ticket end)
      seen[ticket] = calls.target.host
    end
    assert.same({ "small-a.ai-services.svc", "small-a.ai-services.svc", "small-a.ai-services.svc",
                  "small-b.ai-services.svc" }, seen)
  end)

  it("keeps the weighted split over many requests", function()
    math.randomseed(7)
    local counts = { ["small-a.ai-services.svc"] = 0, ["small-b.ai-services.svc"] = 0 }
    for _ = 1, 4000 do
      local calls = run({}, math.random)
      counts[calls.target.host] = counts[calls.target.host] + 1
    end
    local share = counts["small-a.ai-services.svc"] / 4000
    assert.is_true(share > 0.70 and share < 0.80, "share of the weight-3 target: " .. share)
  end)

  it("runs after authentication and rate limiting", function()
    assert.is_true(handler.PRIORITY < 910)
  end)
end)

describe("ai-router against a client playing tricks", function()
  it("refuses a header and a body that name different models (the upstream reads the body)", function()
    local calls = run(json_request('{"model": "gpt-large"}', { { "x-model", "llama" } }))
    assert.equal(400, calls.exit.status)
    assert.is_nil(calls.target)
  end)

  it("refuses the model header given twice, in any spelling", function()
    for _, second in ipairs({ "x-model", "X_Model", "x_MODEL" }) do
      local calls = run({ headers = { { "x-model", "llama" }, { second, "gpt-large" } } })
      assert.equal(400, calls.exit.status, second)
    end
  end)

  it("never buffers a body over max_body_bytes, nor one of unknown length, to find a model", function()
    local big = '{"model": "llama", "pad": "' .. string.rep("x", conf.max_body_bytes) .. '"}'
    local calls = run(json_request(big))
    assert.is_nil(calls.body_read)
    assert.equal("small-a.ai-services.svc", calls.target.host)
    local chunked = run({ headers = { { "Content-Type", "application/json" }, { "Transfer-Encoding", "chunked" } },
      body = '{"model": "llama"}' })
    assert.is_nil(chunked.body_read)
    -- the header still routes a large request
    calls = run(json_request(big, { { "x-model", "llama" } }))
    assert.equal("llama.ai-services.svc", calls.target.host)
    assert.is_nil(calls.body_read)
  end)

  it("only ever picks a target the configuration names, whatever the model string", function()
    for _, model in ipairs({ "LLAMA", "llama ", " llama", "llama\0", "gpt-large,llama", "%s", "..", "__index",
                             string.rep("m", 5000), "small-b.ai-services.svc" }) do
      local calls = run({ headers = { { "x-model", model } } })
      assert.is_true(configured[calls.target.host], model)
      assert.equal("small-a.ai-services.svc", calls.target.host, model)
    end
  end)

  it("never echoes a client's model name, and X-AI-Route cannot be spoofed in any spelling", function()
    local calls = run({ headers = { { "x-model", "evil\r\nSet-Cookie: x=y" }, { "X_AI_Route", "model:gpt-large" },
                                    { "x-ai-route", "model:llama" } } })
    assert.same({ "fallback:unlisted" }, pdk.received(calls, "X-AI-Route"))
    assert.equal("fallback:unlisted", calls.response_headers["X-AI-Route"])
  end)

  it("refuses a request with more headers than Kong parses", function()
    local flood = {}
    for i = 1, 1001 do
      flood[i] = { "x-padding-" .. i, "1" }
    end
    assert.equal(400, run({ headers = flood }).exit.status)
  end)
end)

describe("ai-router schema", function()
  local schema = require "schema"

  local function config_field(name)
    for _, field in ipairs(schema.fields) do
      if field.config then
        for _, f in ipairs(field.config.fields) do
          if f[name] then return f[name] end
        end
      end
    end
  end

  it("is named like the plugin", function()
    assert.equal("ai-router", schema.name)
  end)

  it("requires at least one fallback target with a weight", function()
    local fallback = config_field("fallback")
    assert.equal(1, fallback.len_min)
    assert.same({ 1, 1000 }, fallback.elements.fields[3].weight.between)
  end)

  it("defaults to the x-model header, the model body field and a 1 MiB body bound", function()
    assert.equal("x-model", config_field("header").default)
    assert.equal("model", config_field("body_field").default)
    assert.equal(1048576, config_field("max_body_bytes").default)
    assert.same({ 1024, 8388608 }, config_field("max_body_bytes").between)
  end)
end)
