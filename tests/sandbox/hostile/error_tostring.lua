-- An error object whose __tostring raises.
-- expect: (error object is a table value)
-- when: message
return {
  id = "error_tostring", version = 1, title = "Hostile error_tostring",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      error(setmetatable({}, { __tostring = function() error("gotcha") end })) --> here
    end,
  },
}
