-- Huge and cyclic return values: ignored, nothing breaks.
-- expect: ok
-- when: message
return {
  id = "huge_return", version = 1, title = "Hostile huge_return",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local t = {}
      t.t = t
      ctx.say("thanks")
      return string.rep("x", 1e6), t
    end,
  },
}
