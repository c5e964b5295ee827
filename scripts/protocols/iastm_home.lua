-- iastm_home.lua: the default home IASTM ("muscle scraping") protocol.
--
-- This file is read by the Strigil engine, which coaches a patient through a
-- course of home treatment that a clinician prescribed. The rules (the seed
-- rules of the clinic's domain brief: screening, pressure, intervals,
-- check-ins, when to pause and alert, when to finish) are in lib/iastm.lua,
-- which plantar_fasciitis.lua shares; this file gives them their numbers,
-- the session steps and the protocol's identity.
--
-- How to tune it: the numbers a clinician is most likely to change are in
-- `P` just below (and visible to the handlers as `params`). The questions,
-- texts and rules are in lib/iastm.lua; iastm.protocol{} there lists what a
-- protocol may pass to change them. After any change here or there, raise
-- `version` and run
--
--   strigil check scripts/protocols/iastm_home.lua
--   strigil simulate scripts/protocols/iastm_home.lua --answers my.txt --json
--
-- The API is described in docs/protocols.md.

local iastm = require("iastm")

-- ---------------------------------------------------------------------------
-- Tunable numbers.
-- ---------------------------------------------------------------------------
local P = {
  seconds_per_spot = "10-15",  -- time on one tender spot (clinics often use 30-60)
  target_hours = 60,           -- aim: next session ~60 h after the last one
                               -- (it lands on the patient's reminder time, so
                               -- in practice every 3 days: 2-3 a week)
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

return iastm.protocol{
  id = "iastm_home",
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
  title = "Home IASTM (muscle scraping)",
  params = P,

  -- What the patient is guided through at each session (sent with the
  -- reminder, numbered).
  steps = {
    "Put a little lotion or oil (coconut oil works well) on the area.",
    "Glide the tool lightly over the area to find spots that feel tender, hard or tight.",
    "Stroke in one direction only, along the muscle.",
    -- {seconds_per_spot} is filled in from params (see P at the top).
    "On a tender spot, work for about {seconds_per_spot} seconds, then move on to the next one.",
    "Stop when the skin feels warm and looks slightly pink. You don't need to get to every spot in one go.",
    "Afterwards the area should feel lighter and looser. Some redness or tiny red dots are normal.",
  },
}
