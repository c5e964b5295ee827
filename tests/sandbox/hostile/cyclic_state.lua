-- A state that refers to itself.
-- expect: ctx.state:
-- when: message
return {
  id = "cyclic_state", version = 1, title = "Hostile cyclic_state",
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
      t.self = t
      ctx.state.loop = t
    end,
  },
}
