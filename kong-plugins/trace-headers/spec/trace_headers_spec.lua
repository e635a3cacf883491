-- trace-headers: which request ids reach the span, and which client-sent values do not.
package.path = "../spec/?.lua;" .. package.path
require "plugin" ("trace-headers")
local pdk = require "pdk"
require "typedefs"
local handler = require "kong.plugins.trace-headers.handler"

local CONF = { headers = { "x-request-id", "x-correlation-id" }, max_value_bytes = 128 }

-- The span attributes the plugin sets for a request with `headers`.
local function attributes(headers, conf, request)
  request = request or {}
  request.headers = headers
  local kong, calls = pdk.new(request)
  pdk.install(kong)
  handler:access(conf or CONF)
  return calls.span and calls.span.attributes, calls
end

describe("trace-headers", function()
  it("puts the request and correlation ids on the span, under the semantic convention's names", function()
    local set = attributes({ { "X-Request-ID", "req-1" }, { "X-Correlation-ID", "7f1c-42#1" } })
    assert.same({
      ["http.request.header.x-request-id"] = "req-1",
      ["http.request.header.x-correlation-id"] = "7f1c-42#1",
    }, set)
  end)

  it("names the attribute in lower case with dashes whatever the configuration's spelling", function()
    local set = attributes({ { "x-request-id", "req-1" } }, { headers = { "X_Request_ID" }, max_value_bytes = 128 })
    assert.same({ ["http.request.header.x-request-id"] = "req-1" }, set)
  end)

  it("does nothing on a request that is not traced", function()
    local set, calls = attributes({ { "X-Request-ID", "req-1" } }, CONF, { traced = false })
    assert.is_nil(set)
    assert.is_nil(calls.exit)
  end)

  it("leaves out an id given twice, in any spelling: the span must not pick one for the attacker", function()
    local set = attributes({ { "X-Request-ID", "mine" }, { "X_Request_ID", "theirs" }, { "X-Correlation-ID", "c" } })
    assert.same({ ["http.request.header.x-correlation-id"] = "c" }, set)
    set = attributes({ { "X-Request-ID", "a" }, { "x-request-id", "b" } })
    assert.same({}, set)
  end)

  it("leaves out values with control characters, non-ASCII bytes or nothing in them", function()
    for _, value in ipairs({ "a\r\nforged: yes", "tab\there", "caf\195\169", "nul\0", "" }) do
      local set = attributes({ { "X-Request-ID", value } })
      assert.same({}, set, value)
    end
  end)

  it("cuts a long value at max_value_bytes", function()
    local set = attributes({ { "X-Request-ID", string.rep("a", 5000) } })
    assert.equal(128, #set["http.request.header.x-request-id"])
  end)

  it("sets nothing when the request has more headers than are read", function()
    local flood = {}
    for i = 1, 1001 do
      flood[i] = { "X-Filler-" .. i, "x" }
    end
    flood[#flood + 1] = { "X-Request-ID", "req-1" }
    local set = attributes(flood)
    assert.same({}, set)
  end)

  it("runs after the plugins that set the ids (correlation-id 100001, request-transformer 801)", function()
    assert.is_true(handler.PRIORITY < 801)
  end)
end)
