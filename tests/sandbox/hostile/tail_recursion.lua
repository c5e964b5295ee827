-- A tail call loops without growing the stack: only the budget stops it.
-- expect: instruction budget exceeded
-- when: message
return {
  id = "tail_recursion", version = 1, title = "Hostile tail_recursion",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local function f(n) return f(n + 1) end --> here
      return f(1)
    end,
  },
}
