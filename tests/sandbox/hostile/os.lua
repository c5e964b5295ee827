-- Running a command.
-- expect: attempt to index a nil value (global 'os')
-- when: message
return {
  id = "os", version = 1, title = "Hostile os",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      os.execute("touch /tmp/strigil-pwned") --> here
    end,
  },
}
