-- Tricks on the string metatable and library.
-- expect: attempt to modify read-only table 'string' (field 'upper')
-- when: message
return {
  id = "string_mt", version = 1, title = "Hostile string_mt",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      assert(getmetatable("") == "locked")
      string.upper = function() return "pwned" end --> here
    end,
  },
}
