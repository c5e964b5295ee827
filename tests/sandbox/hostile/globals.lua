-- Tricks on _G: a new global, then its metatable.
-- expect: cannot change a protected metatable
-- when: message
return {
  id = "globals", version = 1, title = "Hostile globals",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      assert(not pcall(function() _G.sneaky = true end))
      assert(getmetatable(_G) == "locked")
      setmetatable(_G, {}) --> here
    end,
  },
}
