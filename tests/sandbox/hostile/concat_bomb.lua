-- Doubling a string until something gives.
-- expect: memory limit exceeded
-- when: message
return {
  id = "concat_bomb", version = 1, title = "Hostile concat_bomb",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local s = "x"
      while true do s = s .. s end --> here
    end,
  },
}
