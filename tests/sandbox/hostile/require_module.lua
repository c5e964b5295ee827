-- Loading a C module or a Lua library by its usual name: only lib/*.lua
-- files beside the protocol are helpers.
-- expect: require: tests/sandbox/hostile/lib/socket.lua: No such file
-- when: load
local socket = require("socket") --> here
return {
  id = "require_module", version = 1, title = "Hostile require module",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  steps = { "Nothing." },
}
