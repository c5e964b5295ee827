-- Reading a file.
-- expect: attempt to index a nil value (global 'io')
-- when: message
return {
  id = "io", version = 1, title = "Hostile io",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local f = io.open("/etc/passwd") --> here
      ctx.state.x = f:read("a")
    end,
  },
}
