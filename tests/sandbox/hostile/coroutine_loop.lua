-- An endless loop inside a coroutine, resumed under pcall.
-- expect: instruction budget exceeded
-- when: message
return {
  id = "coroutine_loop", version = 1, title = "Hostile coroutine_loop",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      local co = coroutine.create(function() while true do end end) --> here
      while true do pcall(coroutine.resume, co) end
    end,
  },
}
