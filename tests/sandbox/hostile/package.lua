-- Loading a C library: require() only runs helper files, and only while
-- the protocol loads, never in a handler.
-- expect: require is only allowed while the protocol loads
-- when: message
return {
  id = "package", version = 1, title = "Hostile package",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local ffi = require("ffi") --> here
      ctx.state.x = ffi
    end,
  },
}
