-- plantar_fasciitis.lua: home IASTM for plantar fasciitis (heel, sole, calf).
--
-- This protocol shows how a clinic customises the default protocol
-- (iastm_home.lua): both run the shared rules of lib/iastm.lua, and this
-- file passes only what is different, each change marked "CHANGED" below.
-- It has its own id; the engine keeps the two apart, and a patient stays
-- on the protocol they enrolled on.
--
-- What is different from iastm_home.lua:
--   * the tracked pain is the heel pain of the first steps in the morning,
--     the typical sign of plantar fasciitis (screening baseline and check-in);
--   * a possible blood clot in the calf is asked about on its own, at
--     screening (absolute contraindication) and at every check-in (pause and
--     alert), each time with an urgent "see a doctor today" message;
--   * three sessions a week (gaps of 2, 2 and 3 days) instead of 2-3;
--   * 30 seconds per tender spot, as this clinic's physiotherapists teach;
--   * session steps for the sole of the foot and the calf;
--   * the red-flag list without the calf (asked separately).
-- The safety rules themselves (screening, postponing while sore or red,
-- lighter pressure on bruising, pause on pain or red flags, finishing) are
-- the same.
--
-- After any change (here or in lib/iastm.lua), raise `version` and run
--   strigil check scripts/protocols/plantar_fasciitis.lua
--   strigil simulate scripts/protocols/plantar_fasciitis.lua --answers my.txt --json
-- The API is described in docs/protocols.md.

local iastm = require("iastm")

-- ---------------------------------------------------------------------------
-- Tunable numbers.
-- ---------------------------------------------------------------------------
local P = {
  seconds_per_spot = "30",     -- CHANGED: time on one tender spot
  -- CHANGED: three sessions a week. Sessions land on the patient's reminder
  -- time, so the gaps are whole days: 2, 2, then 3 days (7 in all). The
  -- engine's 48 h floor may push a session a day later (a session done late
  -- in the evening, or a daylight-saving change).
  gaps_hours = { 48, 48, 72 },
  target_hours = 48,           -- the shortest gap (declared in `interval`)
  checkin_after_hours = 24,    -- the check-in comes this long after a session
  recheck_hours = 24,          -- while sore or red: ask again after this long
  soreness_ok = 2,             -- soreness 0-10 above this postpones the session
  soreness_step_down_hours = 48, -- soreness still there this long after the
                               -- session: one level lighter and a rest day
  rest_day_hours = 24,         -- the extra rest before the next session
  bruising_ok = 1,             -- bruising grade above this: one level lighter
  bruising_tell_after = 2,     -- sessions with bruising before the clinician
                               -- is told
  bruising_hold = 3,           -- bruising grade at or above this (a bigger or
                               -- spreading bruise): pause and alert
  bruise_hold_days = 7,        -- a bruise still there this many days after it
                               -- was first reported: pause and alert
  wait_tell_days = 7,          -- the next session held back this long for
                               -- soreness, redness or a bruise: tell the
                               -- clinician
  silent_tell_days = 3,        -- a check-in still unanswered this long after
                               -- the next session came due: tell the clinician
  tolerated_to_step_up = 2,    -- well-tolerated sessions in a row before the
                               -- pressure goes up one level
  max_pressure = "moderate",   -- never above this level
  step_up_again = false,       -- after a step down, may the pressure go up
                               -- again by itself? (false: the clinician
                               -- decides)
  pain_pause = 7,              -- pain 0-10 at or above this: pause and alert
  pain_rise = 2,               -- pain this much above the baseline: pause
                               -- and alert (2 points = the smallest change
                               -- that matters clinically on this scale)
  pain_free_checkins = 2,      -- pain 0 on this many check-ins in a row ends
                               -- the course
}

-- CHANGED: the gap after session n, from the weekly pattern.
local function next_gap(n)
  local gaps = P.gaps_hours
  return gaps[(n - 1) % #gaps + 1]
end

-- CHANGED: screening in words for the foot and calf, and calf work can
-- disturb a clot: a hot, swollen calf must be seen by a doctor first.
local ABSOLUTE = iastm.list(iastm.ABSOLUTE, {
  fresh_injury = { text = "Have you injured your foot or calf recently, or is there a bruise on it right now?" },
})
ABSOLUTE[#ABSOLUTE + 1] = { id = "calf_now", label = "swollen, warm, red calf (possible thrombosis)",
  text = "Is either of your calves swollen, warm and red right now?",
  say = "calf_urgent" }       -- the urgent advice, besides the refusal

-- CHANGED: wording for feet (diabetic feet bruise and heal poorly).
local RELATIVE = iastm.list(iastm.RELATIVE, {
  diabetes_numbness = { text = "Do you have diabetes, or numbness or reduced feeling in your feet?" },
})

-- CHANGED: the calf has its own check-in question (calf below), so it
-- leaves the red-flag list; a patient who writes between check-ins picks
-- from the whole list, where the calf also brings the urgent advice.
local RED_FLAGS = iastm.list(iastm.RED_FLAGS, { calf = false })
local CONCERNS = iastm.list(iastm.RED_FLAGS, { calf = { say = "calf_urgent" } })

return iastm.protocol{
  id = "plantar_fasciitis",             -- CHANGED: every protocol needs its own id
  -- Version 2 moved version 1's rules to lib/iastm.lua word for word.
  -- Version 3: a patient back from a pause taken before the screening was
  -- finished is asked the screening again, not sent a session. Patients
  -- on 1 and 2 move to it.
  -- Version 4: the next session also waits for a bruise to fade; a bigger
  -- or spreading bruise, or one that lasts a week, pauses the plan; a week
  -- of waiting, or three days of an unanswered check-in (asked again
  -- daily), is told to the clinician; a patient who writes between
  -- check-ins is asked about the red flags; a hold the clinician lifts
  -- lets the next session come. Patients on 1 to 3 move to it.
  version = 4,
  upgrade = { from = { 1, 2, 3 } },
  title = "Plantar fasciitis: home scraping for the foot and calf",
  params = P,
  next_gap = next_gap,

  absolute = ABSOLUTE,
  relative = RELATIVE,
  red_flags = RED_FLAGS,
  concerns = CONCERNS,
  -- CHANGED: first-step pain in the morning is the pain tracked.
  screening_pain = "Last question: think of your first steps out of bed this morning. How bad was the heel pain, from 0 (none) to 10 (the worst you can imagine)?",
  checkin_pain = "How bad was the heel pain with your first steps this morning, from 0 (none) to 10 (the worst you can imagine)?",
  -- CHANGED: the thrombosis warning sign, asked every time.
  checkin_extra = {
    { id = "calf", type = "yesno", clear = false,
      text = "Is either calf swollen, warm and red? (Some soreness after scraping the calf is normal.)" },
  },

  -- CHANGED: a swollen, warm, red calf may be a clot: the patient is told to
  -- see a doctor today, not only to wait for the clinic.
  check_first = function(ctx, a)
    if a.calf then
      ctx.say("calf_urgent")
      iastm.hold(ctx, "red flag: swollen, warm, red calf (possible thrombosis)")
      return true
    end
    return false
  end,

  messages = {
    intro_screening = "Before we start, a few safety questions about your foot and calf. Please answer each one honestly; it only takes a minute.",
    pain_free = "That's great news: no heel pain two check-ins in a row! We'll stop the sessions here. Keep up your calf stretches.",
    calf_urgent = "A swollen, warm, red calf can be a sign of a blood clot. Please don't scrape, and see a doctor today. If you are short of breath or have chest pain, call emergency services now.",
  },

  -- What the patient is guided through at each session (sent with the
  -- reminder, numbered).
  steps = {
    "Sit with your foot resting on the opposite knee. Put a little lotion or oil on the sole and the calf.",
    "Glide the tool lightly from the heel towards the toes to find spots that feel tender, hard or tight. Keep clear of the inner ankle bones.",
    "Stroke in one direction only: along the sole from heel to toes, and on the calf from the ankle up towards the knee.",
    "On a tender spot, work for about {seconds_per_spot} seconds, then move on to the next one.",
    "Stop when the skin feels warm and looks slightly pink. You don't need to get to every spot in one go.",
    "Finish with a gentle calf stretch against a wall, 3 times 30 seconds. Some redness or tiny red dots are normal.",
  },
}
