-- The engine's own texts in English. Parameters appear as {name}.
-- A protocol's `messages` table can override any of these for its patients;
-- a translation is a file like this one named after its language (de.lua).
return {
  help = [[Here is what I understand:
/today - what is planned for today
/done - you finished today's session
/snooze - remind me again in an hour
/skip - skip today's session
/progress - how your course is going
/pause and /resume - take a break from reminders
/stop - end the course
/erase - delete everything stored about you
/help - this list]],

  unknown_patient = "Hello! To begin, send /start (or open the link your clinic gave you).",
  unknown_command = "I don't know that command. Send /help to see what I can do.",
  not_understood = "I didn't catch that. Send /help to see what I can do.",
  invite_unknown = "That invite code isn't valid. Please ask your clinic for a new link.",
  invite_expired = "That invite code has expired. Please ask your clinic for a new link.",
  invite_used = "That invite code has already been used. Please ask your clinic for a new link.",
  invite_unavailable = "Your invite code is fine, but I can't start this course right now. Your clinic's team has been told; please try the same link again later.",
  already_enrolled = "You're already signed up. Send /today to see what's planned.",
  not_enrolled = "You aren't following a course right now. Send /start to begin one.",

  welcome = "Hello! I'm your home-treatment coach for \"{title}\". I'll remind you of your sessions, guide you through them, and check in afterwards so your clinic can adjust the plan.",
  q_setup_consent = "Your answers are stored securely for your clinic and used only to guide this treatment. You can stop at any time with /stop. Do you agree?",
  q_setup_timezone = "Which time zone are you in? Reply 1 for {default}, or write it like Europe/Berlin or America/New_York.",
  q_setup_reminder = "What time of day suits you for reminders? Reply 1 for {default}, or write a time like 07:30 or 18:00.",
  consent_declined = "No problem. Nothing more will be stored. If you change your mind, send /start.",
  setup_done = "Thanks! I'll use the time zone {zone} and remind you around {time}.",

  yes = "Yes",
  no = "No",
  thanks = "Thank you, I've noted that.",
  hint_integer = "Please answer with a number from {min} to {max}.",
  hint_yesno = "Please answer yes or no (1 or 2).",
  hint_choice = "Please answer with one of the numbers shown (1 to {count}).",
  hint_text = "Please write a short answer in plain text.",
  hint_timezone = "I don't know that time zone. Please write it like Europe/Berlin or America/New_York, or reply 1 for the suggested one.",
  hint_time = "Please write a time like 07:30 or 18:00, or reply 1 for the suggested one.",
  hint_time_quiet = "I don't send messages between {from} and {to}. Please pick a time outside those hours.",

  session_reminder = "Time for session {session}, at {pressure} pressure:",
  session_reminder_end = "Send /done when you've finished, /snooze to be reminded in an hour, or /skip to skip today.",
  session_reminder_private = "Time for your session. Open the chat for details.",
  session_reminder_details = "Show details",
  welcome_back = "Welcome back! While I couldn't reach you I held your reminders. Sessions done so far: {done}; your course is {status}. Send /today to see what's planned.",
  session_done = "Well done! Session noted.",
  session_skipped = "Okay, today's session is skipped.",
  snoozed = "I'll remind you again at {when}.",
  next_session = "Your next session is planned for {when}, at {pressure} pressure.",
  next_question = "No session yet: I'll check in with you again on {when}, and plan your next session from your answers.",
  no_session_planned = "There's no session planned right now.",
  pressure_changed = "From your next session on, please use {pressure} pressure.",
  progress = "Day {day} of {days}. Sessions done: {done}. Current pressure: {pressure}. Status: {status}.",

  paused = "Your reminders are paused. Send /resume whenever you're ready to carry on.",
  resumed = "Welcome back! Your reminders are on again.",
  not_paused = "Your course isn't paused.",
  status_paused = "Your course is paused. Send /resume to carry on.",
  status_hold = "Your plan is on hold until your clinician has been in touch. If things get worse, please contact your clinic directly.",
  paused_hold = "I've paused your plan and told your clinician. Please stop the treatment for now and contact your clinic. If it's urgent, call them or seek medical help.",
  cleared = "Good news: your clinician has cleared you to continue. Your reminders are on again.",
  course_finished = "Your course is complete. Thank you for sticking with it! Your clinic can see how it went.",

  q_stop_confirm = "Do you want to end your course? Your reminders will stop.",
  stop_cancelled = "Good, your course carries on.",
  stopped = "Your course has ended and you won't get more reminders. Send /start if you want to begin again.",

  q_erase_confirm = "Do you want me to delete everything I have stored about you: your answers, your course and our messages? This can't be undone, and your reminders will stop.",
  erase_cancelled = "Okay, nothing has been deleted.",
  erased = "Done: everything I had stored about you has been deleted. If you write again, I'll treat you as someone new.",

  holding = "Thanks, I've saved that. Something went wrong on my side, so your clinic's team will look into it. If you feel worse, please contact your clinic directly.",
  holding_job = "Your treatment plan is held up by a problem on my side, and your clinic's team has been told. Please wait for my next message before your next session. If you feel worse, please contact your clinic directly.",
  protocol_failed = "Patient #{patient}: the protocol {protocol} failed on a scheduled step, so their course is stalled. The error is in the log; it runs again once the protocol is fixed and reloaded.",
  escalation = "Patient #{patient} ({protocol}, day {day}): {reason}",

  -- Said by the chat adapters themselves (bots/): to the clinician in the
  -- configured language, to a patient in theirs.
  clinician_clear_usage = "Usage: /clear <patient number>, as in the alerts (e.g. /clear 12).",
  clinician_clear_unknown = "There is no patient #{patient}.",
  clinician_clear_done = "Patient #{patient}: hold lifted; the course goes on.",
  clinician_clear_failed = "Patient #{patient}: their protocol failed, so the hold stays. The error is in the log; send /clear again once the protocol is fixed and reloaded.",
  clinician_clear_not_held = "Patient #{patient} is not on hold: nothing changed.",
  summary = [[Daily summary for {day}
Patients on an active course: {active}
Sessions done: {sessions}
Check-ins asked: {checkins}, answers given: {answers}
Escalations: {escalations}
On hold, awaiting you: {holds}]],
  summary_holds = " ({patients})\nSend /clear <number> to lift a hold.",
  button_stale = "That question was already answered. Please answer the latest one.",
  matrix_welcome = "Hello! I am your clinic's home treatment assistant. Write /start to begin (or /start CODE with the code your clinic gave you).",
  matrix_encrypted = "This room is end-to-end encrypted, and I cannot read encrypted messages yet. I have invited you to a new, unencrypted room on your clinic's server: please accept that invite and write to me there.",
  matrix_encrypted_alone = "This room is end-to-end encrypted, and I cannot read encrypted messages yet. Please invite me to a room without encryption.",
  matrix_declined = "This assistant only joins rooms its clinic set up.",
}
