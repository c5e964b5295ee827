-- Bytecode through load (binary is refused whatever the mode).
-- expect: load: mode 'b' not allowed
-- when: message
return {
  id = "bytecode", version = 1, title = "Hostile bytecode",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      assert(not load(string.char(27) .. "LuaT\0"))
      load(string.char(27) .. "LuaT\0", "x", "b") --> here
    end,
  },
}
