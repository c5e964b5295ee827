-- The well-behaved neighbour: it must keep serving its patients while the
-- hostile protocols next door fail. Says "thanks" to every message.
return {
  id = "mini", version = 1, title = "Mini",
  course = { weeks = 2 },
  interval = { min_hours = 48, target_hours = 60 },
  pressure = { levels = { "light", "moderate" } },
  questionnaires = {
    checkin = {
      { id = "soreness", type = "integer", min = 0, max = 10, text = "Soreness 0-10?" },
    },
  },
  steps = { "Apply oil.", "Glide lightly." },
  on = {
    message = function(ctx, ev)
      ctx.say("thanks")
      ctx.state.n = (ctx.state.n or 0) + 1
    end,
  },
}
