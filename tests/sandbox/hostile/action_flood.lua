-- More actions than one event may take.
-- expect: more than 64 actions
-- when: message
return {
  id = "action_flood", version = 1, title = "Hostile action_flood",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light" } },
  questionnaires = {
    checkin = { { id = "x", type = "integer", min = 0, max = 10, text = "X?" } },
  },
  steps = { "Nothing." },
  on = {
    message = function(ctx, ev)
      for i = 1, 1e6 do ctx.say("thanks") end --> here
    end,
  },
}
