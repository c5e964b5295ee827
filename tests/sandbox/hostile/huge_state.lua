-- A state far past the size the store keeps.
-- expect: ctx.state:
-- when: message
return {
  id = "huge_state", version = 1, title = "Hostile huge_state",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      for i = 1, 1e4 do ctx.state["k" .. i] = string.rep("x", 100) end
    end,
  },
}
