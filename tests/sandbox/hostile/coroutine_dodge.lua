-- Many short coroutines, to stay under the hook's count.
-- expect: instruction budget exceeded
-- when: message
return {
  id = "coroutine_dodge", version = 1, title = "Hostile coroutine_dodge",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      while true do
        coroutine.wrap(function() for i = 1, 10 do end end)() --> here
      end
    end,
  },
}
