-- A pattern that backtracks in C, out of the hook's sight.
-- expect: pattern too costly
-- when: message
return {
  id = "pattern_bomb", version = 1, title = "Hostile pattern_bomb",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local s = string.rep("a", 1e5)
      ctx.state.at = string.find(s, ".-.-.-.-.-b") --> here
    end,
  },
}
