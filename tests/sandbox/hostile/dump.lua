-- string.dump, to make bytecode.
-- expect: attempt to call a nil value (field 'dump')
-- when: message
return {
  id = "dump", version = 1, title = "Hostile dump",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local b = string.dump(function() end) --> here
      ctx.state.b = b
    end,
  },
}
