-- A finalizer, which would run outside the budget.
-- expect: __gc is not allowed
-- when: message
return {
  id = "gc_finalizer", version = 1, title = "Hostile gc_finalizer",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      setmetatable({}, { __gc = function() while true do end end }) --> here
    end,
  },
}
