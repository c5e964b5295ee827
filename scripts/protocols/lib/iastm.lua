-- lib/iastm.lua: the rules of home IASTM ("muscle scraping") that the
-- shipped protocols share: iastm_home.lua (the default) and
-- plantar_fasciitis.lua each `require("iastm")` and pass what is theirs.
--
-- The rules encode the seed rules of the clinic's domain brief:
--
--   * screening before the first session: absolute contraindications stop
--     home treatment; relative ones wait for the clinician's go-ahead and
--     then allow light pressure only;
--   * pressure starts light, goes up to moderate after two well-tolerated
--     sessions, and never beyond moderate;
--   * at least 48 hours between sessions, aiming at 2-3 sessions a week;
--   * a check-in about 24 hours after each session; the next session waits
--     while the area is still sore, red or bruised, and while the check-in
--     is unanswered (asked again each day); the clinician hears when either
--     lasts a week, or three days without an answer;
--   * lighter pressure when soreness lasts or bruising appears; a pause and
--     an alert to the clinician for severe or rising pain, any red flag
--     (also one the patient reports between check-ins), or a bruise that is
--     spreading or lasts a week;
--   * the course ends after 6 weeks, or once the pain has been 0 twice in a
--     row.
--
-- A protocol calls iastm.protocol{ ... } with (required) id, version,
-- title, params (the tunable numbers, `P` in iastm_home.lua) and steps,
-- and (optional):
--   upgrade         as in any protocol: the versions it takes patients from
--   absolute, relative   the screening lists (default M.ABSOLUTE,
--                   M.RELATIVE; M.list() makes a changed copy)
--   screening_pain  the last screening question, the baseline pain
--   checkin_pain    the check-in's pain question
--   checkin_extra   questions asked after it, before the red flags
--   red_flags       the red-flag options, "none" first (M.RED_FLAGS)
--   concerns        the options offered when the patient writes between
--                   check-ins, "none" first (default red_flags)
--   messages        texts that replace or add to M.MESSAGES
--   next_gap        function(n): hours from session n to the next
--                   (default params.target_hours)
--   check_first     function(ctx, answers): runs first at each check-in;
--                   true when it has dealt with it (M.hold is at hand)
--
-- Editing this file changes every protocol that requires it: raise the
-- `version` of each, as for an edit of the protocol itself. The API is
-- described in docs/protocols.md.

local M = {}

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

-- Absolute contraindications: any "yes" means no home treatment. An entry
-- may name a message (`say`) sent as well when it is answered "yes".
M.ABSOLUTE = {
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
    text = "Have you injured that area recently, or is there a bruise on it right now?" },
}

-- Relative contraindications: any "yes" means the clinician must clear the
-- patient first, and the course then stays at light pressure.
M.RELATIVE = {
  { id = "anticoagulants", label = "takes blood thinners or antiplatelets",
    text = "Do you take blood thinners or medicine against clotting (for example warfarin, apixaban, clopidogrel or daily aspirin)?" },
  { id = "pregnant", label = "pregnancy",
    text = "Are you pregnant, or could you be?" },
  { id = "cancer", label = "cancer",
    text = "Do you have cancer, or are you being treated for it?" },
  { id = "varicose_veins", label = "varicose veins",
    text = "Do you have varicose veins near the area?" },
  { id = "diabetes_numbness", label = "diabetes or numbness (neuropathy)",
    text = "Do you have diabetes, or numbness or reduced feeling in the area?" },
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

-- The last screening question: the baseline pain later check-ins are
-- compared with.
M.SCREENING_PAIN = "Last question: how strong is the pain you're being treated for today, from 0 (none) to 10 (the worst you can imagine)?"

-- The check-in's pain question.
M.CHECKIN_PAIN = "How strong is the pain you're being treated for today, from 0 (none) to 10 (the worst you can imagine)?"

-- Red flags during the course: any answer but "none" pauses the plan. An
-- entry may name a message (`say`) sent before the hold's own.
M.RED_FLAGS = {
  { id = "none", text = "None of these" },
  { id = "sharp_pain", text = "Sharp, shooting or quickly worsening pain" },
  { id = "numbness", text = "Numbness, tingling or weakness" },
  { id = "spreading", text = "Swelling or bruising spreading beyond the treated area" },
  { id = "fever", text = "Fever or chills" },
  { id = "calf", text = "A calf that is swollen, warm and red" },
  { id = "bruise_worse", text = "A bruise that is lasting or getting worse" },
}

-- The protocol's texts for the patient (messages.en).
M.MESSAGES = {
  -- Said when a questionnaire starts (the engine looks up intro_<id>).
  intro_screening = "Before we start, a few safety questions about the area you'll be treating. Please answer each one honestly; it only takes a minute.",
  intro_checkin = "Time for a quick check-in about your last session.",

  screen_ok = "Thanks, that all looks fine. I'll send your first session at your reminder time.",
  screen_refused = "Thank you for answering. From what you've told me, scraping at home isn't safe for you at the moment, so I won't start the reminders. I've let your clinician know, and they'll talk with you about what to do instead.",
  screen_clearance = "Thank you. Some of your answers mean your clinician should give the go-ahead before you start. I've sent them a note. Once they've cleared you, we'll begin with light pressure.",

  wait_soreness = "Let's give the area a little more time to settle before the next session. I'll check in with you again tomorrow.",
  wait_redness = "Let's wait until the redness has faded before the next session. I'll check in with you again tomorrow.",
  wait_bruise = "Let's wait until the bruise has faded before the next session. I'll check in with you again tomorrow.",
  soreness_lighter = "The soreness is lasting a while, so next time we'll go one step lighter and add an extra rest day. I'll check in again tomorrow.",
  soreness_rest = "The soreness is lasting a while, so we'll add an extra rest day before the next session, and keep the pressure light. I'll check in again tomorrow.",
  concern_none = "Thanks. If you have a question about your treatment, please ask your clinic directly. Send /help to see what I can do.",
  concern_not_active = "I can't read messages like this one, and your clinic doesn't see them here. If something is wrong with the treated area, please contact your clinic, or get medical help if it's urgent.",
  bruising_lighter = "Thanks for telling me about the bruise. Next time, please press more gently: firmer isn't better, it only makes recovery slower.",
  pain_free = "That's great news: no pain two check-ins in a row! We'll stop the sessions here.",

  -- Engine texts these protocols word differently (they override
  -- scripts/lang/en.lua for patients on them).
  paused_hold = "I've put your plan on hold and let your clinician know. Please stop the scraping for now and contact your clinic. If you feel unwell or it gets worse, get medical help; if it's urgent, call emergency services.",
  course_finished = "Your course has ended and there will be no more reminders. Thank you for taking part! Your clinic can see how it went.",
}

-- A copy of `list` (of { id = ... } entries) with changes by id:
-- changes[id] is a table of fields to replace in that entry, or false to
-- leave the entry out.
function M.list(list, changes)
  local out = {}
  for _, q in ipairs(list) do
    local change = changes and changes[q.id]
    if change ~= false then
      local copy = {}
      for k, v in pairs(q) do copy[k] = v end
      for k, v in pairs(change or {}) do copy[k] = v end
      out[#out + 1] = copy
    end
  end
  return out
end

-- Labels of the questions answered "yes" in `list`, joined for an alert.
local function yes_labels(list, answers)
  local found = {}
  for _, q in ipairs(list) do
    if answers[q.id] == true then found[#found + 1] = q.label end
  end
  return found
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
--   pain_free       check-ins in a row with pain 0
--   last_pain       pain at the last check-in
--   waiting_since   when the current wait for soreness, redness or a
--                   bruise to go began (seconds)
--   waiting_told    the clinician was told about a lasting wait
--   silent_since    when a session was first held back for want of its
--                   check-in answer (seconds)
--   silent_told     the clinician was told the check-in goes unanswered
-- ---------------------------------------------------------------------------

-- Pause the plan and alert the clinician; the engine tells the patient to
-- stop and contact the clinic (message paused_hold below).
function M.hold(ctx, reason)
  ctx.escalate{ reason = reason }
  ctx.pause{ reason = reason }
end

-- One level lighter than `level` (the level as this handler has left it),
-- unless it is the lightest; the level after. Remembers that the pressure
-- went down so it does not creep back up by itself.
local function lighter(ctx, level)
  ctx.state.stepped_down = true
  ctx.state.tolerated = 0
  if level > 1 then
    ctx.step_pressure(-1)
    return level - 1
  end
  return level
end

-- Numbers protocols written before these rules existed may lack.
M.DEFAULTS = {
  bruising_hold = 3,      -- bruising grade at or above this (a bigger or
                          -- spreading bruise): pause and alert
  bruise_hold_days = 7,   -- a bruise still there this many days after it
                          -- was first reported: pause and alert
  wait_tell_days = 7,     -- the next session held back this long for
                          -- soreness, redness or a bruise: tell the clinician
  silent_tell_days = 3,   -- a check-in unanswered this long after its
                          -- session came due: tell the clinician
}

-- The entry of `list` with id `id`.
local function find(list, id)
  for _, f in ipairs(list) do
    if f.id == id then return f end
  end
  return { id = id, text = id }
end

local hold = M.hold

-- ---------------------------------------------------------------------------
-- The protocol.
-- ---------------------------------------------------------------------------
function M.protocol(spec)
  local P = spec.params
  for k, v in pairs(M.DEFAULTS) do
    if P[k] == nil then P[k] = v end
  end
  local absolute = spec.absolute or M.ABSOLUTE
  local relative = spec.relative or M.RELATIVE
  local red_flags = spec.red_flags or M.RED_FLAGS
  local concerns = spec.concerns or red_flags
  local next_gap = spec.next_gap or function(n) return P.target_hours end

  -- The screening questionnaire: the yes/no questions, then the baseline
  -- pain that later check-ins are compared with.
  local screening = {}
  for _, q in ipairs(absolute) do
    screening[#screening + 1] = { id = q.id, type = "yesno", text = q.text, clear = false }
  end
  for _, q in ipairs(relative) do
    screening[#screening + 1] = { id = q.id, type = "yesno", text = q.text, clear = false }
  end
  screening[#screening + 1] = { id = "pain", type = "integer", min = 0, max = 10, clear = 0,
    text = spec.screening_pain or M.SCREENING_PAIN }

  -- The check-in: how the last session went, then the red flags.
  local checkin = {
    { id = "soreness", type = "integer", min = 0, max = 10, clear = 0,
      text = "How sore is the treated area right now, from 0 (not at all) to 10 (very)?" },
    { id = "bruising", type = "integer", min = 0, max = 3, clear = 0,
      text = "Any marks or bruising? Reply with a number:\n0 - none\n1 - some redness or tiny red dots\n2 - a small bruise (under 1 cm)\n3 - a bigger bruise, or one that is spreading" },
    { id = "redness", type = "yesno", clear = false,
      text = "Is there still redness or are there marks you can see on the area?" },
    { id = "pain", type = "integer", min = 0, max = 10, clear = 0,
      text = spec.checkin_pain or M.CHECKIN_PAIN },
  }
  for _, q in ipairs(spec.checkin_extra or {}) do
    checkin[#checkin + 1] = q
  end
  checkin[#checkin + 1] = { id = "red_flags", type = "choice", options = red_flags, clear = "none",
    text = "Have you noticed any of these since your last session? Pick the number that fits best." }

  -- Asked when the patient writes between check-ins: the bot can't read
  -- free text and the clinic doesn't see it here, so a patient writing
  -- about a problem must not go unheard until the next check-in.
  local concern = {
    { id = "concern", type = "choice", options = concerns, clear = "none",
      text = "Thanks for your message. I can't read messages like this one, and your clinic doesn't see them here. Is it about any of these? Pick the number that fits best." },
  }

  local messages = {}
  for k, v in pairs(M.MESSAGES) do messages[k] = v end
  for k, v in pairs(spec.messages or {}) do messages[k] = v end

  -- A red flag: its own message if it has one, then the hold.
  local function red_flag(ctx, list, id, when)
    local f = find(list, id)
    if f.say then ctx.say(f.say) end
    hold(ctx, "red flag" .. when .. ": " .. f.text)
  end

  -- The screening answers.
  local function on_screening(ctx, a)
    local s = ctx.state
    s.baseline = a.pain

    local refused = yes_labels(absolute, a)
    if #refused > 0 then
      ctx.say("screen_refused")
      for _, q in ipairs(absolute) do
        if a[q.id] == true and q.say then ctx.say(q.say) end
      end
      ctx.escalate{ reason = "screening: home treatment refused: " .. table.concat(refused, "; ") }
      ctx.finish{ reason = "contraindicated" }
      return
    end

    local clearance = yes_labels(relative, a)
    if #clearance > 0 then
      s.light_only = true
      ctx.set_pressure(LEVELS[1])
      ctx.say("screen_clearance")
      ctx.escalate{ reason = "screening: clearance needed (light pressure only): " .. table.concat(clearance, "; ") }
      ctx.pause{ reason = "clearance: " .. table.concat(clearance, "; ") }
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
    s.silent_since, s.silent_told = nil, nil

    -- 0. The protocol's own first check (plantar_fasciitis.lua: the calf).
    if spec.check_first ~= nil and spec.check_first(ctx, a) then
      return
    end

    -- 1. Red flags and pain: stop at once.
    if a.red_flags ~= "none" then
      red_flag(ctx, red_flags, a.red_flags, "")
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

    -- 3. Bruising: one level lighter, and repeated bruising is for the
    -- clinician to hear about. A bigger or spreading bruise, or one that
    -- lasts, is a red flag.
    local level = ctx.level
    local bruised = a.bruising > P.bruising_ok
    if bruised then
      s.bruise_since = s.bruise_since or ctx.now
      if a.bruising >= P.bruising_hold then
        hold(ctx, string.format("red flag: bigger or spreading bruise (grade %d) after session %d",
          a.bruising, ctx.sessions_done))
        return
      end
      if ctx.now - s.bruise_since >= P.bruise_hold_days * 86400 then
        hold(ctx, string.format("red flag: bruise still there after %d days", P.bruise_hold_days))
        return
      end
      if s.bruised ~= ctx.sessions_done then
        s.bruised = ctx.sessions_done
        s.bruise_count = (s.bruise_count or 0) + 1
        level = lighter(ctx, level)
        ctx.say("bruising_lighter")
        if s.bruise_count == P.bruising_tell_after then
          ctx.escalate{ reason = string.format("bruising (grade %d) after %d sessions",
            a.bruising, s.bruise_count) }
        end
      end
    else
      s.bruise_since = nil
    end

    -- 4. Still sore, red or bruised: no session yet; ask again in a day.
    -- Soreness that outlasts 48 hours means the pressure was too much; a
    -- wait that lasts a week is for the clinician to hear about.
    local sore = a.soreness > P.soreness_ok
    if sore or a.redness or bruised then
      local why = sore and "soreness" or (a.redness and "redness" or "bruise")
      s.tolerated = 0
      s.waiting_since = s.waiting_since or ctx.now
      if not s.waiting_told and ctx.now - s.waiting_since >= P.wait_tell_days * 86400 then
        s.waiting_told = true
        ctx.escalate{ reason = string.format("next session held back for %d days: %s after session %d",
          P.wait_tell_days, why, ctx.sessions_done) }
      end
      if sore and (ctx.hours_since_session or 0) >= P.soreness_step_down_hours
          and s.sore_stepped ~= ctx.sessions_done then
        s.sore_stepped = ctx.sessions_done
        s.rest_day = true
        ctx.say(level > 1 and "soreness_lighter" or "soreness_rest")
        level = lighter(ctx, level)
      else
        ctx.say("wait_" .. why)
      end
      ctx.postpone{ hours = P.recheck_hours, reason = why, ask = "checkin" }
      return
    end
    s.waiting_since, s.waiting_told = nil, nil

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

    -- 6. The next session: next_gap() after the last (P.target_hours unless
    -- the protocol says otherwise), or a day from now after a rest day. The
    -- engine never plans it sooner than 48 h after the last.
    s.cleared = ctx.sessions_done
    if s.rest_day then
      s.rest_day = nil
      ctx.schedule{ hours = P.rest_day_hours }
    else
      ctx.schedule{ hours = next_gap(ctx.sessions_done), from = "session" }
    end
  end

  return {
    id = spec.id,
    version = spec.version,
    upgrade = spec.upgrade,
    title = spec.title,
    language = "en",

    course = { weeks = 6 },
    -- min_hours is a hard floor the engine enforces; a session not confirmed
    -- within miss_after_hours of its reminder counts as missed.
    interval = { min_hours = 48, target_hours = P.target_hours, miss_after_hours = 24 },
    pressure = { levels = LEVELS, start = "light" },

    questionnaires = { screening = screening, checkin = checkin, concern = concern },
    -- What the patient is guided through at each session (sent with the
    -- reminder, numbered); {name} is filled in from params.
    steps = spec.steps,
    params = P,
    messages = { en = messages },

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
        elseif ev.questionnaire == "concern" then
          if ev.answers.concern == "none" then
            ctx.say("concern_none")
          else
            red_flag(ctx, concerns, ev.answers.concern, " (between check-ins)")
          end
        end
      end,

      -- Free text that answers no question. While the plan runs, the
      -- patient is asked whether it is about a red flag (`concern`); on a
      -- pause or hold nothing can be asked, so they are told where to turn.
      message = function(ctx, ev)
        if ctx.status == "active" then
          ctx.ask("concern")
        else
          ctx.say("concern_not_active")
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
      -- unanswered, so no session follows one whose effects we don't know.
      -- The check-in is asked again now, and the session comes due again a
      -- day later (asking again) until it is answered or the course ends;
      -- the clinician hears when it goes unanswered for days.
      session_due = function(ctx, ev)
        local s = ctx.state
        if ctx.sessions_done > 0 and (s.cleared or 0) < ctx.sessions_done then
          s.silent_since = s.silent_since or ctx.now
          if not s.silent_told and ctx.now - s.silent_since >= P.silent_tell_days * 86400 then
            s.silent_told = true
            ctx.escalate{ reason = string.format("check-in after session %d unanswered for %d days",
              ctx.sessions_done, P.silent_tell_days) }
          end
          ctx.ask("checkin")
          ctx.postpone{ hours = P.recheck_hours, reason = "checkin_pending" }
        end
      end,

      -- Skipped or missed: try again at the first reminder time at least 12
      -- hours away (for a missed session, the day after it was missed).
      session_skipped = function(ctx, ev)
        ctx.schedule{ hours = 12 }
      end,
      session_missed = function(ctx, ev)
        ctx.schedule{ hours = 12 }
      end,

      -- Back from a pause. After the clinician lifts a hold they have looked at
      -- the patient: a pain rise they cleared becomes the new baseline. A
      -- patient who paused before finishing the screening has no baseline
      -- yet: no session before they finish it.
      resumed = function(ctx, ev)
        local s = ctx.state
        if s.baseline == nil then
          ctx.ask("screening")
          return
        end
        if ev.by == "clinician" then
          if s.last_pain and s.baseline and s.last_pain > s.baseline then
            s.baseline = s.last_pain
          end
          -- They have seen how the last session went: the next one needs
          -- no check-in answer first, and the waits start afresh.
          s.cleared = ctx.sessions_done
          s.bruise_since, s.waiting_since, s.waiting_told = nil, nil, nil
          s.silent_since, s.silent_told = nil, nil
          if s.light_only then
            ctx.set_pressure(LEVELS[1])
          end
        end
        ctx.schedule{}
      end,
    },
  }
end

return M
