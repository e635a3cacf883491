-- Validates a plugin configuration against the plugin's own schema.lua, with the rules of Kong's
-- schema validator that our schemas use: unknown fields are errors; defaults fill what is unset;
-- required, type, elements/keys/values, match (a Lua pattern), between, len_min and one_of.
--
--   luajit check_config.lua PLUGIN_DIR < config.json      prints the errors, exits 1 if any
--
-- The program's tests run it on every custom plugin configuration the stacks declare, so a value
-- Kong would refuse at sync is caught before a deployment.
local cjson = require "cjson"

package.path = "./spec/?.lua;" .. package.path
require "typedefs" -- kong.db.schema.typedefs, as far as our schemas use it

local errors = {}
local function fail(path, message)
  errors[#errors + 1] = path .. ": " .. message
end

local function is_array(value)
  if type(value) ~= "table" then return false end
  local n = 0
  for _ in pairs(value) do n = n + 1 end
  return n == #value
end

local check

local function check_record(fields, value, path)
  if type(value) ~= "table" or (next(value) ~= nil and is_array(value)) then
    return fail(path, "expected a record")
  end
  local known = {}
  for _, entry in ipairs(fields) do
    local name, field = next(entry)
    known[name] = true
    local item = value[name]
    if item == nil or item == cjson.null then
      item = field.default
    end
    if item == nil then
      if field.required then fail(path .. "." .. name, "required field missing") end
    else
      check(field, item, path .. "." .. name)
    end
  end
  for name in pairs(value) do
    if not known[name] then fail(path .. "." .. name, "unknown field") end
  end
end

function check(field, value, path)
  local kind = field.type
  if kind == "record" then
    return check_record(field.fields, value, path)
  elseif kind == "array" or kind == "set" then
    if not is_array(value) then return fail(path, "expected an array") end
    if field.len_min and #value < field.len_min then fail(path, "length must be at least " .. field.len_min) end
    for i, item in ipairs(value) do check(field.elements, item, path .. "[" .. i .. "]") end
  elseif kind == "map" then
    if type(value) ~= "table" or (next(value) ~= nil and is_array(value)) then return fail(path, "expected a map") end
    for key, item in pairs(value) do
      check(field.keys, key, path .. " key")
      check(field.values, item, path .. "." .. tostring(key))
    end
  elseif kind == "string" then
    if type(value) ~= "string" then return fail(path, "expected a string") end
    if field.match and not value:match(field.match) then fail(path, "must match " .. field.match) end
  elseif kind == "integer" or kind == "number" then
    if type(value) ~= "number" or (kind == "integer" and value % 1 ~= 0) then return fail(path, "expected an " .. kind) end
    if field.between and (value < field.between[1] or value > field.between[2]) then
      fail(path, "value should be between " .. field.between[1] .. " and " .. field.between[2])
    end
  elseif kind == "boolean" then
    if type(value) ~= "boolean" then fail(path, "expected a boolean") end
  end
  if field.one_of then
    local found = false
    for _, allowed in ipairs(field.one_of) do found = found or allowed == value end
    if not found then fail(path, "expected one of " .. table.concat(field.one_of, ", ")) end
  end
end

local directory = assert(arg[1], "usage: luajit check_config.lua PLUGIN_DIR < config.json")
local schema = assert(loadfile(directory .. "/schema.lua"))()
local config = cjson.decode(io.read("*a"))
for _, entry in ipairs(schema.fields) do
  if entry.config then
    check(entry.config, config, "config")
  end
end
for _, message in ipairs(errors) do
  print(message)
end
os.exit(#errors == 0 and 0 or 1)
