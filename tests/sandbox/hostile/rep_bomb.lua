-- string.rep asking for a gigabyte.
-- expect: memory limit exceeded
-- when: message
return {
  id = "rep_bomb", version = 1, title = "Hostile rep_bomb",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local s = string.rep("x", 1 << 30) --> here
      ctx.state.s = #s
    end,
  },
}
