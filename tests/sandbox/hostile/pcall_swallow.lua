-- pcall around an endless loop, to swallow the budget error.
-- expect: instruction budget exceeded
-- when: message
return {
  id = "pcall_swallow", version = 1, title = "Hostile pcall_swallow",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      for i = 1, 1e9 do
        pcall(function() while true do end end) --> here
      end
    end,
  },
}
