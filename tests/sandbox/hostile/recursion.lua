-- Unbounded recursion: Lua's stack limit or the memory cap, whichever comes first.
-- expect: stack overflow|memory limit exceeded
-- when: message
return {
  id = "recursion", version = 1, title = "Hostile recursion",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local function f(n) return 1 + f(n + 1) end --> here
      return f(1)
    end,
  },
}
