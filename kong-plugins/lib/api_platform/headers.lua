-- Request headers as an attacker sends them.
--
-- Kong's nginx runs with `underscores_in_headers on`, and nginx keeps every spelling of a header
-- as its own field: `X_Authenticated_Subject` and `x-authenticated_subject` reach the upstream
-- beside `X-Authenticated-Subject`, and a WSGI/Rack/CGI application folds them all into one
-- variable (HTTP_X_AUTHENTICATED_SUBJECT). Clearing a header by its canonical name removes only
-- its case variants. So a header a plugin owns is found and removed in every spelling: names are
-- compared lower-cased with `_` read as `-`.
--
-- Shipped with the platform's plugins as `api_platform.headers` (KONG_LUA_PACKAGE_PATH /opt/?.lua).
local M = {}

-- Kong's PDK parses at most 1000 request headers; a request with more cannot be vouched for.
M.MAX_HEADERS = 1000

-- The name every spelling of a header shares.
function M.canonical(name)
  return (string.lower(name):gsub("_", "-"))
end

-- The request's headers ({ raw lower-cased name -> value or list }), or nil and an error when
-- there are more than MAX_HEADERS of them (the rest would go unseen).
function M.read()
  local headers, err = kong.request.get_headers(M.MAX_HEADERS)
  if err == "truncated" then
    return nil, "more than " .. M.MAX_HEADERS .. " request headers"
  end
  return headers or {}
end

local function set_of(names)
  local set = {}
  for _, name in ipairs(names) do
    set[M.canonical(name)] = true
  end
  return set
end

-- Removes every spelling of `names` from the request the upstream receives.
function M.clear(headers, names)
  local owned = set_of(names)
  for raw in pairs(headers) do
    if type(raw) == "string" and owned[M.canonical(raw)] then
      kong.service.request.clear_header(raw)
    end
  end
  for _, name in ipairs(names) do
    kong.service.request.clear_header(name) -- case variants of the canonical spelling, always
  end
end

-- Every value the request carries for `name`, in any spelling (spellings in a stable order).
function M.values(headers, name)
  local wanted, spellings, values = M.canonical(name), {}, {}
  for raw in pairs(headers) do
    if type(raw) == "string" and M.canonical(raw) == wanted then
      spellings[#spellings + 1] = raw
    end
  end
  table.sort(spellings)
  for _, raw in ipairs(spellings) do
    local value = headers[raw]
    for _, v in ipairs(type(value) == "table" and value or { value }) do
      values[#values + 1] = v
    end
  end
  return values
end

-- A value safe to put in a header: printable ASCII only; `%`, control and non-ASCII bytes (and,
-- for an item of a list header, `,`) percent-encoded, so what the upstream reads is exactly what
-- the plugin meant, never a second field or a second list item.
function M.value(text, list_item)
  return (tostring(text):gsub(".", function(c)
    local b = string.byte(c)
    if b < 32 or b > 126 or c == "%" or (list_item and c == ",") then
      return string.format("%%%02X", b)
    end
  end))
end

-- A list header from items, each encoded as a list item.
function M.list(items, separator)
  local encoded = {}
  for i, item in ipairs(items) do
    encoded[i] = M.value(item, true)
  end
  return table.concat(encoded, separator or ",")
end

return M
