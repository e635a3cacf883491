-- opa-authz: its input builder and its decision handling, with OPA faked behind the plugin's HTTP
-- function (tests/test_opa.py runs it against the real OPA on loopback).
package.path = "../spec/?.lua;" .. package.path
require "plugin" ("opa-authz")
local pdk = require "pdk"
require "typedefs"
local cjson = require "cjson"
local handler = require "kong.plugins.opa-authz.handler"
local input = require "kong.plugins.opa-authz.input"

local NOW = 1800000000

local function conf(overrides)
  local config = {
    catalogue = "platform", api = "assistant", decision_path = "platform/gateway/decision", port = 8181,
    timeout_ms = 100, fail_open = false, send_body = false, max_body_bytes = 65536, headers = {}, claims = {},
  }
  for name, value in pairs(overrides or {}) do
    config[name] = value
  end
  return config
end

-- OPA behind the plugin's HTTP function: records what it was sent, answers `answer(document)`.
local opa
local function fake_opa(answer)
  opa = { sent = {} }
  handler.post = function(port, path, body, timeout_ms)
    table.insert(opa.sent, { port = port, path = path, document = cjson.decode(body), timeout_ms = timeout_ms })
    return answer(cjson.decode(body))
  end
end

local function allow(reason)
  return function() return 200, cjson.encode({ result = { allow = true, reason = reason }, decision_id = "d-1" }) end
end

local function run(request, config)
  local kong, calls = pdk.new(request)
  pdk.install(kong)
  handler.now = function() return NOW end
  handler:access(config or conf())
  return calls
end

-- The input the plugin sends for a request.
local function input_for(request, config)
  fake_opa(allow())
  run(request, config)
  return opa.sent[1].document.input
end

describe("opa-authz input", function()
  it("names the API, the request and the caller authentication established", function()
    local request = {
      method = "POST", host = "assistant.api.example.com", path = "/v1/assistant", ip = "198.51.100.4",
      headers = { { "X-Request-ID", "req-1" }, { "X-Correlation-ID", "corr-1" } },
      consumer = { id = "c-1", username = "known-app", custom_id = "app-7" }, credential = { id = "iss|user-42" },
    }
    local kong, calls = pdk.new(request)
    calls.ctx.authenticated_groups = { "ml-engineers" }
    calls.ctx.authenticated_token = { iss = "https://idp", sub = "user-42", scopes = { "openid", "assistant:invoke" },
                                      claims = { tenant = "acme", email = "u@example.com" } }
    pdk.install(kong)
    fake_opa(allow())
    handler.now = function() return NOW end
    handler:access(conf({ claims = { "tenant" } }))
    assert.same({
      api = { catalogue = "platform", name = "assistant" },
      request = { id = "req-1", correlation_id = "corr-1", method = "POST", host = "assistant.api.example.com",
                  path = "/v1/assistant" },
      client = { ip = "198.51.100.4" },
      consumer = { id = "c-1", username = "known-app", custom_id = "app-7" },
      credential = { id = "iss|user-42" },
      groups = { "ml-engineers" },
      token = { iss = "https://idp", sub = "user-42", scopes = { "openid", "assistant:invoke" },
                claims = { tenant = "acme" } },
      time = { unix = NOW, rfc3339 = "2027-01-15T08:00:00Z" },
    }, opa.sent[1].document.input)
    assert.same({ port = 8181, path = "platform/gateway/decision", timeout_ms = 100 },
      { port = opa.sent[1].port, path = opa.sent[1].path, timeout_ms = opa.sent[1].timeout_ms })
  end)

  it("never takes identity from request headers, in any spelling", function()
    local spoofed = {}
    for _, name in ipairs(input.IDENTITY_HEADERS) do
      table.insert(spoofed, { name, "spoofed" })
      table.insert(spoofed, { name:gsub("-", "_"):upper(), "spoofed" })
    end
    local document = input_for({ headers = spoofed }, conf({ headers = input.IDENTITY_HEADERS }))
    assert.is_nil(document.consumer)
    assert.is_nil(document.credential)
    assert.is_nil(document.groups)
    assert.is_nil(document.token)
    assert.is_nil(document.request.headers, "identity headers are never selected, even when configured")
    assert.falsy(cjson.encode(document):find("spoofed", 1, true))
  end)

  it("copies the selected headers, every spelling of one under its canonical name", function()
    local document = input_for({ headers = { { "X-Model", "llama" }, { "x_tenant", "a" }, { "X-Tenant", "b" },
                                             { "X-Other", "not selected" } } },
      conf({ headers = { "x-model", "X-Tenant" } }))
    assert.same({ ["x-model"] = "llama", ["x-tenant"] = { "b", "a" } }, document.request.headers) -- x-tenant, then x_tenant
  end)

  it("sends a JSON body only when asked, within max_body_bytes and of a known length", function()
    local body = '{"model": "gpt-large", "messages": []}'
    local json_request = { headers = { { "Content-Type", "application/json" }, { "Content-Length", #body .. "" } },
                           body = body }
    assert.is_nil(input_for(json_request).request.body, "send_body is off by default")
    local document = input_for(json_request, conf({ send_body = true }))
    assert.equal("gpt-large", document.request.body.model)
    local big = conf({ send_body = true, max_body_bytes = 1024 })
    local padded = '{"model": "x", "pad": "' .. string.rep("p", 2000) .. '"}'
    local large = input_for({ headers = { { "Content-Type", "application/json" },
                                          { "Content-Length", #padded .. "" } }, body = padded }, big)
    assert.is_nil(large.request.body)
    assert.truthy(large.request.body_omitted:find("larger than 1024", 1, true))
    local chunked = input_for({ headers = { { "Content-Type", "application/json" } }, body = body },
      conf({ send_body = true }))
    assert.is_nil(chunked.request.body)
    local text = input_for({ headers = { { "Content-Type", "text/plain" }, { "Content-Length", "5" } }, body = "hello" },
      conf({ send_body = true }))
    assert.equal("not JSON", text.request.body_omitted)
    local nan = '{"model": NaN}'
    local invalid = input_for({ headers = { { "Content-Type", "application/json" }, { "Content-Length", #nan .. "" } },
                                body = nan }, conf({ send_body = true }))
    assert.equal("not valid JSON", invalid.request.body_omitted)
  end)

  it("leaves out a body whose length is given twice, or that nests deeper than 32 levels", function()
    local body = '{"model": "x"}'
    local twice = input_for({ headers = { { "Content-Type", "application/json" }, { "Content-Length", #body .. "" },
                                          { "Content_Length", "1" } }, body = body }, conf({ send_body = true }))
    assert.is_nil(twice.request.body)
    local deep = string.rep("[", 40) .. string.rep("]", 40)
    local nested = input_for({ headers = { { "Content-Type", "application/json" }, { "Content-Length", #deep .. "" } },
                               body = deep }, conf({ send_body = true }))
    assert.is_nil(nested.request.body)
    assert.equal("not valid JSON", nested.request.body_omitted)
  end)

  it("omits empty lists and maps (an absent input.groups is no groups)", function()
    local document = input_for({})
    assert.is_nil(document.groups)
    assert.is_nil(document.request.headers)
    assert.falsy(cjson.encode(document):find("{}", 1, true))
  end)
end)

describe("opa-authz decisions", function()
  it("lets an allowed request through and keeps the decision id for the logs", function()
    fake_opa(allow("fine"))
    local calls = run({})
    assert.is_nil(calls.exit)
    assert.equal("d-1", calls.ctx.policy_decision_id)
  end)

  it("refuses a denied request with the policy's status and reason", function()
    fake_opa(function() return 200, cjson.encode({ result = { allow = false, status = 429, reason = "budget spent" } }) end)
    local calls = run({})
    assert.same({ status = 429, body = { message = "Too Many Requests", reason = "budget spent" }, headers = {} },
      calls.exit)
  end)

  it("answers 403 when the policy names another status, and keeps the reason printable", function()
    fake_opa(function()
      return 200, cjson.encode({ result = { allow = false, status = 200, reason = "no\r\nX-Evil: 1 " .. string.rep("r", 300) } })
    end)
    local calls = run({})
    assert.equal(403, calls.exit.status)
    assert.equal(200, #calls.exit.body.reason)
    assert.falsy(calls.exit.body.reason:find("[\r\n]"))
  end)

  for name, answer in pairs({
    ["OPA is down"] = function() return nil, "connection refused" end,
    ["OPA times out"] = function() return nil, "timeout" end,
    ["OPA fails"] = function() return 500, '{"code": "internal_error"}' end,
    ["the decision is undefined (policy not loaded)"] = function() return 200, "{}" end,
    ["the decision is not {allow: boolean}"] = function() return 200, '{"result": {"allow": "yes"}}' end,
    ["OPA answers garbage"] = function() return 200, "<html>" end,
  }) do
    it("fails closed (503) when " .. name, function()
      fake_opa(answer)
      local calls = run({})
      assert.equal(503, calls.exit.status)
    end)

    it("fails open when the API chose it and " .. name, function()
      fake_opa(answer)
      local calls = run({}, conf({ fail_open = true }))
      assert.is_nil(calls.exit)
      assert.truthy(calls.logs[1]:find("failing open", 1, true))
    end)
  end

  it("refuses a request with more headers than Kong parses before asking OPA", function()
    fake_opa(allow())
    local flood = {}
    for i = 1, 1001 do
      flood[i] = { "x-padding-" .. i, "1" }
    end
    assert.equal(400, run({ headers = flood }).exit.status)
    assert.same({}, opa.sent)
  end)

  it("runs after authentication, the ACL and rate limiting, before the AI router", function()
    assert.is_true(handler.PRIORITY < 910 and handler.PRIORITY > 750)
  end)
end)

describe("opa-authz schema", function()
  local schema = require "kong.plugins.opa-authz.schema"
  local fields = {}
  for _, entry in ipairs(schema.fields) do
    if entry.config then
      for _, field in ipairs(entry.config.fields) do
        local name, spec = next(field)
        fields[name] = spec
      end
    end
  end

  it("is fail-closed and quiet about bodies by default, with a bounded timeout", function()
    assert.is_false(fields.fail_open.default)
    assert.is_false(fields.send_body.default)
    assert.same({ 1, 5000 }, fields.timeout_ms.between)
    assert.same({ 1024, 1048576 }, fields.max_body_bytes.between)
    assert.equal(8181, fields.port.default)
  end)
end)
