-- A table that grows without end.
-- expect: memory limit exceeded|instruction budget exceeded
-- when: message
return {
  id = "table_bomb", version = 1, title = "Hostile table_bomb",
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
      local i = 0
      while true do i = i + 1; t[i] = { i, i } end --> here
    end,
  },
}
