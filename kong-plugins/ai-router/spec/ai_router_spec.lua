package.path = "./?.lua;./spec/?.lua;" .. package.path
local stub = require "kong_stub"
local handler = require "handler"

local conf = {
  header = "x-model",
  body_field = "model",
  routes = {
    { model = "gpt-large", host = "gpt.ai-services.svc", port = 8080 },
    { model = "llama", host = "llama.ai-services.svc", port = 9000 },
  },
  fallback = {
    { host = "small-a.ai-services.svc", port = 8080, weight = 3 },
    { host = "small-b.ai-services.svc", port = 8080, weight = 1 },
  },
}

local function run(request, random)
  local kong, calls = stub.new(request)
  _G.kong = kong
  handler.random = random or function() return 1 end
  handler:access(conf)
  return calls
end

describe("ai-router", function()
  it("routes by the model header", function()
    local calls = run({ headers = { ["X-Model"] = "llama" } })
    assert.same({ host = "llama.ai-services.svc", port = 9000 }, calls.target)
    assert.equal("model:llama", calls.upstream_headers["X-AI-Route"])
    assert.equal("model:llama", calls.response_headers["X-AI-Route"])
  end)

  it("routes by the JSON body field when there is no header", function()
    local calls = run({
      headers = { ["Content-Type"] = "application/json; charset=utf-8" },
      body = '{"model": "gpt-large", "messages": []}',
    })
    assert.same({ host = "gpt.ai-services.svc", port = 8080 }, calls.target)
  end)

  it("prefers the header over the body", function()
    local calls = run({
      headers = { ["x-model"] = "llama", ["content-type"] = "application/json" },
      body = '{"model": "gpt-large"}',
    })
    assert.equal("llama.ai-services.svc", calls.target.host)
  end)

  it("ignores the body of non-JSON requests", function()
    local calls = run({ headers = { ["content-type"] = "text/plain" }, body = '{"model": "llama"}' })
    assert.equal("fallback:-", calls.upstream_headers["X-AI-Route"])
  end)

  it("falls back on an unknown model, a broken body or no model", function()
    for _, request in ipairs({
      { headers = { ["x-model"] = "unknown-model" } },
      { headers = { ["content-type"] = "application/json" }, body = "{not json" },
      { headers = { ["content-type"] = "application/json" }, body = '{"model": 42}' },
      {},
    }) do
      local calls = run(request)
      assert.equal("small-a.ai-services.svc", calls.target.host)
      assert.truthy(calls.upstream_headers["X-AI-Route"]:find("^fallback:"))
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
    handler.random = math.random
    local counts = { ["small-a.ai-services.svc"] = 0, ["small-b.ai-services.svc"] = 0 }
    for _ = 1, 4000 do
      local kong, calls = stub.new({})
      _G.kong = kong
      handler:access(conf)
      counts[calls.target.host] = counts[calls.target.host] + 1
    end
    local share = counts["small-a.ai-services.svc"] / 4000
    assert.is_true(share > 0.70 and share < 0.80, "share of the weight-3 target: " .. share)
  end)

  it("runs after authentication and rate limiting", function()
    assert.is_true(handler.PRIORITY < 910)
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

  it("defaults to the x-model header and the model body field", function()
    assert.equal("x-model", config_field("header").default)
    assert.equal("model", config_field("body_field").default)
  end)
end)
