-- An endless loop.
-- expect: instruction budget exceeded
-- when: message
return {
  id = "loop", version = 1, title = "Hostile loop",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      while true do end --> here
    end,
  },
}
