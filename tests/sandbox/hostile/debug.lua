-- Turning the hook off.
-- expect: attempt to index a nil value (global 'debug')
-- when: message
return {
  id = "debug", version = 1, title = "Hostile debug",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      debug.sethook() --> here
      while true do end
    end,
  },
}
