-- plantar_fasciitis.lua: home IASTM for plantar fasciitis (heel, sole, calf).
--
-- This protocol shows how a clinic customises the default protocol
-- (iastm_home.lua): it started as a copy of that file, and every change is
-- marked "CHANGED" below. A protocol cannot load another file, so a
-- customised protocol is a full copy with its own id; the engine keeps the
-- two apart, and a patient stays on the protocol they enrolled on.
--
-- What is different from iastm_home.lua:
--   * the tracked pain is the heel pain of the first steps in the morning,
--     the typical sign of plantar fasciitis (screening baseline and check-in);
--   * a possible blood clot in the calf is asked about on its own, at
--     screening (absolute contraindication) and at every check-in (pause,
--     alert, and an urgent "see a doctor today" message);
--   * three sessions a week (gaps of 2, 2 and 3 days) instead of 2-3;
--   * 30 seconds per tender spot, as this clinic's physiotherapists teach;
--   * session steps for the sole of the foot and the calf;
--   * the red-flag list without the calf (asked separately).
-- The safety rules themselves (screening, postponing while sore or red,
-- lighter pressure on bruising, pause on pain or red flags, finishing) are
-- the same.
--
-- After any change, raise `version` and run
--   strigil check scripts/protocols/plantar_fasciitis.lua
--   strigil simulate scripts/protocols/plantar_fasciitis.lua --answers my.txt --json
-- The API is described in docs/protocols.md.

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
  bruise_tell_days = 7,        -- a bruise still there after this many days:
                               -- tell the clinician
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

-- The pressure levels, lightest first.
local LEVELS = { "light", "moderate" }

local function level_index(name)
  for i, n in ipairs(LEVELS) do
    if n == name then return i end
  end
  return #LEVELS
end

-- ---------------------------------------------------------------------------
-- Screening questions. Each is a yes/no question; "no" is the all-clear.
-- `label` is the short wording used in the alert to the clinician.
-- ---------------------------------------------------------------------------

-- Absolute contraindications: any "yes" means no home treatment.
local ABSOLUTE = {
  { id = "wound", label = "open wound or incision < 12 weeks at the site",
    text = "Is there an open or unhealed wound at the area to be treated, or an operation scar there that is less than 12 weeks old?" },
  { id = "infection", label = "skin infection or cellulitis",
    text = "Is the skin there infected, hot, or has a doctor told you it is cellulitis?" },
  { id = "dvt", label = "deep vein thrombosis or thrombophlebitis",
    text = "Do you have, or are you being treated for, a blood clot in a vein (DVT) or an inflamed vein (thrombophlebitis)?" },
  { id = "fracture", label = "unhealed fracture",
    text = "Do you have a broken bone near the area that hasn't fully healed yet?" },
  { id = "bleeding_disorder", label = "bleeding disorder",
    text = "Do you have a bleeding disorder, such as haemophilia?" },
  { id = "high_blood_pressure", label = "uncontrolled high blood pressure",
    text = "Do you have high blood pressure that isn't under control?" },
  { id = "fresh_injury", label = "fresh injury or existing bruise at the site",
    text = "Have you injured your foot or calf recently, or is there a bruise on it right now?" },
  -- CHANGED: calf work can disturb a clot; a hot, swollen calf must be seen
  -- by a doctor first.
  { id = "calf_now", label = "swollen, warm, red calf (possible thrombosis)",
    text = "Is either of your calves swollen, warm and red right now, or painful to touch?" },
}

-- Relative contraindications: any "yes" means the clinician must clear the
-- patient first, and the course then stays at light pressure.
local RELATIVE = {
  { id = "anticoagulants", label = "takes blood thinners or antiplatelets",
    text = "Do you take blood thinners or medicine against clotting (for example warfarin, apixaban, clopidogrel or daily aspirin)?" },
  { id = "pregnant", label = "pregnancy",
    text = "Are you pregnant, or could you be?" },
  { id = "cancer", label = "cancer",
    text = "Do you have cancer, or are you being treated for it?" },
  { id = "varicose_veins", label = "varicose veins",
    text = "Do you have varicose veins near the area?" },
  { id = "diabetes_numbness", label = "diabetes or numbness (neuropathy)",
    -- CHANGED: wording for feet (diabetic feet bruise and heal poorly).
    text = "Do you have diabetes, or numbness or reduced feeling in your feet?" },
  { id = "osteoporosis", label = "osteoporosis",
    text = "Do you have osteoporosis (brittle bones)?" },
  { id = "autoimmune", label = "autoimmune disease",
    text = "Do you have an autoimmune condition, such as rheumatoid arthritis or lupus?" },
  { id = "lymphoedema", label = "lymphoedema",
    text = "Do you have lymphoedema (long-lasting swelling from the lymph system)?" },
  { id = "recent_injection", label = "recent injection at the site",
    text = "Have you had an injection into that area in the last few weeks?" },
  { id = "implant", label = "implanted device near the site",
    text = "Is there an implanted device near the area, such as a pacemaker, pump or port?" },
}

-- The screening questionnaire: the yes/no questions above, then the
-- baseline pain that later check-ins are compared with.
local screening = {}
for _, q in ipairs(ABSOLUTE) do
  screening[#screening + 1] = { id = q.id, type = "yesno", text = q.text, clear = false }
end
for _, q in ipairs(RELATIVE) do
  screening[#screening + 1] = { id = q.id, type = "yesno", text = q.text, clear = false }
end
screening[#screening + 1] = { id = "pain", type = "integer", min = 0, max = 10, clear = 0,
  -- CHANGED: the first steps in the morning are the typical heel pain
  text = "Last question: think of your first steps out of bed this morning. How bad was the heel pain, from 0 (none) to 10 (the worst you can imagine)?" }

-- Labels of the questions answered "yes" in `list`, joined for an alert.
local function yes_labels(list, answers)
  local found = {}
  for _, q in ipairs(list) do
    if answers[q.id] == true then found[#found + 1] = q.label end
  end
  return found
end

-- Red flags during the course: any answer but "none" pauses the plan.
local RED_FLAGS = {
  { id = "none", text = "None of these" },
  { id = "sharp_pain", text = "Sharp, shooting or quickly worsening pain" },
  { id = "numbness", text = "Numbness, tingling or weakness" },
  { id = "spreading", text = "Swelling or bruising spreading beyond the treated area" },
  { id = "fever", text = "Fever or chills" },
  -- CHANGED: the calf has its own check-in question (see `calf` below).
  { id = "bruise_worse", text = "A bruise that is lasting or getting worse" },
}

local function flag_text(id)
  for _, f in ipairs(RED_FLAGS) do
    if f.id == id then return f.text end
  end
  return id
end

-- ---------------------------------------------------------------------------
-- Handler helpers. `ctx.state` is the only memory a protocol keeps for a
-- patient between events; these are its fields:
--   baseline        pain at screening (0-10)
--   light_only      true after a relative contraindication
--   checked         number of the session whose first check-in was seen
--   cleared         number of the session after which a next one was allowed
--   tolerated       well-tolerated sessions in a row at this pressure
--   stepped_down    the pressure has been lowered at least once
--   sore_stepped    session for which lasting soreness lowered the pressure
--   rest_day        add a rest day before the next session
--   bruised         last session with bruising >= 2 counted
--   bruise_count    sessions with bruising >= 2
--   bruise_since    when the current bruise was first reported (seconds)
--   bruise_told     the clinician was told about a lasting bruise
--   pain_free       check-ins in a row with pain 0
--   last_pain       pain at the last check-in
-- ---------------------------------------------------------------------------

-- Pause the plan and alert the clinician; the engine tells the patient to
-- stop and contact the clinic (message paused_hold below).
local function hold(ctx, reason)
  ctx.escalate{ reason = reason }
  ctx.pause{ reason = reason }
end

-- One level lighter, at most once per cause; remembers that the pressure
-- went down so it does not creep back up by itself.
local function lighter(ctx)
  if ctx.level > 1 then
    ctx.step_pressure(-1)
  end
  ctx.state.stepped_down = true
  ctx.state.tolerated = 0
end

-- CHANGED: the gap after session n, from the weekly pattern.
local function next_gap(n)
  local gaps = P.gaps_hours
  return gaps[(n - 1) % #gaps + 1]
end

-- The screening answers.
local function on_screening(ctx, a)
  local s = ctx.state
  s.baseline = a.pain

  local absolute = yes_labels(ABSOLUTE, a)
  if #absolute > 0 then
    ctx.say("screen_refused")
    ctx.escalate{ reason = "screening: home treatment refused: " .. table.concat(absolute, "; ") }
    ctx.finish{ reason = "contraindicated" }
    return
  end

  local relative = yes_labels(RELATIVE, a)
  if #relative > 0 then
    s.light_only = true
    ctx.set_pressure(LEVELS[1])
    ctx.say("screen_clearance")
    ctx.escalate{ reason = "screening: clearance needed (light pressure only): " .. table.concat(relative, "; ") }
    ctx.pause{ reason = "clearance: " .. table.concat(relative, "; ") }
    return
  end

  -- Severe pain before the first session is for the clinician to look at.
  if a.pain >= P.pain_pause then
    hold(ctx, string.format("screening: pain %d/10 before the first session", a.pain))
    return
  end

  ctx.say("screen_ok")
  ctx.schedule{}          -- the first session: next reminder time
end

-- A check-in after a session.
local function on_checkin(ctx, a)
  local s = ctx.state
  s.last_pain = a.pain

  -- 1. Red flags and pain: stop at once.
  -- CHANGED: a swollen, warm, red calf may be a clot: the patient is told to
  -- see a doctor today, not only to wait for the clinic.
  if a.calf then
    ctx.say("calf_urgent")
    hold(ctx, "red flag: swollen, warm, red calf (possible thrombosis)")
    return
  end
  if a.red_flags ~= "none" then
    hold(ctx, "red flag: " .. flag_text(a.red_flags))
    return
  end
  if a.pain >= P.pain_pause then
    hold(ctx, string.format("pain %d/10 after session %d", a.pain, ctx.sessions_done))
    return
  end
  if s.baseline ~= nil and a.pain >= s.baseline + P.pain_rise then
    hold(ctx, string.format("pain up from %d to %d/10 after session %d",
      s.baseline, a.pain, ctx.sessions_done))
    return
  end

  -- 2. Pain gone twice in a row: the course has done its job.
  if a.pain == 0 then
    s.pain_free = (s.pain_free or 0) + 1
  else
    s.pain_free = 0
  end
  if s.pain_free >= P.pain_free_checkins then
    ctx.say("pain_free")
    ctx.finish{ reason = "pain_free" }
    return
  end

  -- The first check-in after a session judges how the session went; later
  -- ones (while sore or red) only decide when the next session can be.
  local first = s.checked ~= ctx.sessions_done
  s.checked = ctx.sessions_done
  local tolerated = a.soreness <= P.soreness_ok and a.bruising <= P.bruising_ok

  -- 3. Bruising: one level lighter; repeated or lasting bruising is for the
  -- clinician to hear about.
  if a.bruising > P.bruising_ok then
    if s.bruised ~= ctx.sessions_done then
      s.bruised = ctx.sessions_done
      s.bruise_count = (s.bruise_count or 0) + 1
      lighter(ctx)
      ctx.say("bruising_lighter")
      if s.bruise_count == P.bruising_tell_after then
        ctx.escalate{ reason = string.format("bruising (grade %d) after %d sessions",
          a.bruising, s.bruise_count) }
      end
    end
    s.bruise_since = s.bruise_since or ctx.now
    if not s.bruise_told and ctx.now - s.bruise_since >= P.bruise_tell_days * 86400 then
      s.bruise_told = true
      ctx.escalate{ reason = string.format("bruise still there after %d days", P.bruise_tell_days) }
    end
  else
    s.bruise_since = nil
  end

  -- 4. Still sore or red: no session yet; ask again in a day. Soreness that
  -- outlasts 48 hours means the pressure was too much.
  local sore = a.soreness > P.soreness_ok
  if sore or a.redness then
    s.tolerated = 0
    if sore and (ctx.hours_since_session or 0) >= P.soreness_step_down_hours
        and s.sore_stepped ~= ctx.sessions_done then
      s.sore_stepped = ctx.sessions_done
      s.rest_day = true
      lighter(ctx)
      ctx.say("soreness_lighter")
    else
      ctx.say(sore and "wait_soreness" or "wait_redness")
    end
    ctx.postpone{ hours = P.recheck_hours, reason = sore and "soreness" or "redness",
      ask = "checkin" }
    return
  end

  -- 5. Well tolerated twice in a row: one level firmer, up to the maximum,
  -- and never for patients cleared for light pressure only.
  if first then
    s.tolerated = tolerated and (s.tolerated or 0) + 1 or 0
    local may_rise = not s.light_only and (P.step_up_again or not s.stepped_down)
    if may_rise and s.tolerated >= P.tolerated_to_step_up
        and ctx.level < level_index(P.max_pressure) then
      ctx.step_pressure(1)
      s.tolerated = 0
    end
  end

  -- 6. The next session. CHANGED: the gap follows the weekly pattern in
  -- P.gaps_hours (session 1 -> 2 days, 2 -> 2 days, 3 -> 3 days, 4 -> 2 ...),
  -- or a day from now after a rest day. The engine never plans it sooner
  -- than 48 h after the last.
  s.cleared = ctx.sessions_done
  if s.rest_day then
    s.rest_day = nil
    ctx.schedule{ hours = P.rest_day_hours }
  else
    ctx.schedule{ hours = next_gap(ctx.sessions_done), from = "session" }
  end
end

-- ---------------------------------------------------------------------------
-- The protocol.
-- ---------------------------------------------------------------------------
return {
  id = "plantar_fasciitis",             -- CHANGED: every protocol needs its own id
  version = 1,
  title = "Plantar fasciitis: home scraping for the foot and calf",
  language = "en",

  course = { weeks = 6 },
  -- min_hours is a hard floor the engine enforces; a session not confirmed
  -- within miss_after_hours of its reminder counts as missed.
  interval = { min_hours = 48, target_hours = P.target_hours, miss_after_hours = 24 },
  pressure = { levels = LEVELS, start = "light" },

  questionnaires = {
    screening = screening,
    checkin = {
      { id = "soreness", type = "integer", min = 0, max = 10, clear = 0,
        text = "How sore is the treated area right now, from 0 (not at all) to 10 (very)?" },
      { id = "bruising", type = "integer", min = 0, max = 3, clear = 0,
        text = "Any marks or bruising? Reply with a number:\n0 - none\n1 - some redness or tiny red dots\n2 - a small bruise (under 1 cm)\n3 - a bigger bruise, or one that is spreading" },
      { id = "redness", type = "yesno", clear = false,
        text = "Is there still redness or are there marks you can see on the area?" },
      -- CHANGED: first-step pain in the morning is the pain tracked.
      { id = "pain", type = "integer", min = 0, max = 10, clear = 0,
        text = "How bad was the heel pain with your first steps this morning, from 0 (none) to 10 (the worst you can imagine)?" },
      -- CHANGED: the thrombosis warning sign, asked every time.
      { id = "calf", type = "yesno", clear = false,
        text = "Is either calf swollen, warm and red, or painful to touch?" },
      { id = "red_flags", type = "choice", options = RED_FLAGS, clear = "none",
        text = "Have you noticed any of these since your last session? Pick the number that fits best." },
    },
  },

  -- What the patient is guided through at each session (sent with the
  -- reminder, numbered).
  -- CHANGED: steps for the sole of the foot and the calf.
  steps = {
    "Sit with your foot resting on the opposite knee. Put a little lotion or oil on the sole and the calf.",
    "Glide the tool lightly from the heel towards the toes to find spots that feel tender, hard or tight. Keep clear of the inner ankle bones.",
    "Stroke in one direction only: along the sole from heel to toes, and on the calf from the ankle up towards the knee.",
    "On a tender spot, work for about {seconds_per_spot} seconds, then move on to the next one.",
    "Stop when the skin feels warm and looks slightly pink. You don't need to get to every spot in one go.",
    "Finish with a gentle calf stretch against a wall, 3 times 30 seconds. Some redness or tiny red dots are normal.",
  },

  params = P,

  messages = {
    en = {
      -- Said when a questionnaire starts (the engine looks up intro_<id>).
      intro_screening = "Before we start, a few safety questions about your foot and calf. Please answer each one honestly; it only takes a minute.",
      intro_checkin = "Time for a quick check-in about your last session.",

      screen_ok = "Thanks, that all looks fine. I'll send your first session at your reminder time.",
      screen_refused = "Thank you for answering. From what you've told me, scraping at home isn't safe for you at the moment, so I won't start the reminders. I've let your clinician know, and they'll talk with you about what to do instead.",
      screen_clearance = "Thank you. Some of your answers mean your clinician should give the go-ahead before you start. I've sent them a note. Once they've cleared you, we'll begin with light pressure.",

      wait_soreness = "Let's give the area a little more time to settle before the next session. I'll check in with you again tomorrow.",
      wait_redness = "Let's wait until the redness has faded before the next session. I'll check in with you again tomorrow.",
      soreness_lighter = "The soreness is lasting a while, so next time we'll go one step lighter and add an extra rest day. I'll check in again tomorrow.",
      bruising_lighter = "Thanks for telling me about the bruise. Next time, please press more gently: firmer isn't better, it only makes recovery slower.",
      pain_free = "That's great news: no heel pain two check-ins in a row! We'll stop the sessions here. Keep up your calf stretches.",
      -- CHANGED: the urgent message for a possible clot.
      calf_urgent = "A swollen, warm, red calf can be a sign of a blood clot. Please don't scrape, and see a doctor today. If you are short of breath or have chest pain, call emergency services now.",

      -- Engine texts this protocol words differently (they override
      -- scripts/lang/en.lua for patients on this protocol).
      paused_hold = "I've put your plan on hold and let your clinician know. Please don't do any scraping until they've been in touch. If you feel unwell or it gets worse, contact your clinic, or get medical help if it's urgent.",
      course_finished = "Your course has ended and there will be no more reminders. Thank you for taking part! Your clinic can see how it went.",
    },
  },

  on = {
    -- After consent, time zone and reminder time: the safety questions.
    enrolled = function(ctx, ev)
      ctx.ask("screening")
    end,

    answered = function(ctx, ev)
      if ev.questionnaire == "screening" then
        on_screening(ctx, ev.answers)
      elseif ev.questionnaire == "checkin" then
        on_checkin(ctx, ev.answers)
      end
    end,

    -- A session is done: the check-in comes a day later. The next session is
    -- planned now as well, so the course goes on even if the check-in is
    -- never answered; the check-in answer moves or cancels it.
    session_done = function(ctx, ev)
      ctx.ask("checkin", { hours = P.checkin_after_hours })
      ctx.schedule{ hours = next_gap(ctx.sessions_done), from = "session" }
    end,

    -- A session comes due: hold it back while the last check-in is still
    -- unanswered (and ask again), so no session follows one whose effects
    -- we don't know.
    session_due = function(ctx, ev)
      if ctx.sessions_done > 0 and (ctx.state.cleared or 0) < ctx.sessions_done then
        ctx.postpone{ hours = P.recheck_hours, reason = "checkin_pending", ask = "checkin" }
      end
    end,

    -- Skipped or missed: try again tomorrow at the reminder time.
    session_skipped = function(ctx, ev)
      ctx.schedule{ hours = 12 }
    end,
    session_missed = function(ctx, ev)
      ctx.schedule{ hours = 12 }
    end,

    -- Back from a pause. After the clinician lifts a hold they have looked at
    -- the patient: a pain rise they cleared becomes the new baseline.
    resumed = function(ctx, ev)
      local s = ctx.state
      if ev.by == "clinician" then
        if s.last_pain and s.baseline and s.last_pain > s.baseline then
          s.baseline = s.last_pain
        end
        if s.light_only then
          ctx.set_pressure(LEVELS[1])
        end
      end
      ctx.schedule{}
    end,
  },
}
