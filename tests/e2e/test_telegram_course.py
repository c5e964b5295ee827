#!/usr/bin/env python3
"""End-to-end: a whole course on Telegram, in virtual time.

A patient enrols from `/start CODE` (an invite made with `strigil invite`),
goes through consent and screening by buttons, gets session reminders,
answers check-ins by pressing buttons, earns a pressure change, and then
reports pain that escalates to the clinician chat; the clinician lifts the
hold with /clear <patient id>; the clinician gets one daily summary a day.
Also: private reminders, and a patient who blocks the bot and comes back.

The daemon runs with test_clock = true; POST /test/wait moves time.
Usage: python3 tests/e2e/test_telegram_course.py /path/to/strigil
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import Runner, binary, db_query, integrity  # noqa
from tg_e2e import (CLINIC, DEADLINE, TOKEN, Daemon, buttons,  # noqa
                    count_text, db_wait, drained, invite, setup, tf,
                    wait_text)

BIN = binary()
USER = 5000000001
DOC = 7000000001                # the clinician, writing in the clinic group
DAY = 86400


def stop(r, d):
    d.p.signal(signal.SIGTERM)
    r.eq(d.p.finish(), 0, "SIGTERM exits 0")


def onboard(r, fake, code):
    fake.start_command(USER, code)
    wait_text(fake, USER, "Do you agree?")
    fake.press(USER, text="Yes")
    wait_text(fake, USER, "Which time zone")
    fake.press(USER, text="1")
    wait_text(fake, USER, "What time of day")
    fake.press(USER, text="1")
    wait_text(fake, USER, "Is the skin over the area intact?")
    fake.press(USER, text="Yes")
    wait_text(fake, USER, "Anything your clinic should know?")
    fake.message(USER, "all fine")
    wait_text(fake, USER, "noted that")


def until(d, fake, needle, count, step=4 * 3600, limit=5 * DAY):
    """Moves virtual time on in steps until `count` messages with `needle`
    came: the patient then answers within `step` of virtual time, whatever
    the time of day the test runs at."""
    waited = 0
    while count_text(fake, USER, needle) < count:
        if waited >= limit:
            raise AssertionError("no %r within %d s of virtual time" %
                                 (needle, limit))
        d.wait(step)
        waited += step
        drained(d.db)
    return wait_text(fake, USER, needle, count)


def session(r, d, fake, n, pressure):
    """Waits for reminder n and presses /done on it."""
    rem = until(d, fake, "Time for session %d," % n, 1)[-1]
    r.check("at %s pressure" % pressure in rem["text"],
            "session %d at %s pressure" % (n, pressure), rem["text"])
    r.eq([b[0] for b in buttons(rem)[0]], ["/done", "/snooze", "/skip"],
         "the reminder's buttons")
    fake.press(USER, message_id=rem["message_id"], data="c:/done")
    wait_text(fake, USER, "Well done!", n)


def checkin(r, d, fake, pain, n):
    """The check-in a day after a session, answered by buttons."""
    q = until(d, fake, "How sore is the area today", n)[-1]
    r.eq(len(buttons(q)), 2, "a 0-10 scale in two rows")
    fake.press(USER, text="2")
    wait_text(fake, USER, "How much bruising", n)
    fake.press(USER, text="0")
    wait_text(fake, USER, "Is the skin still red?", n)
    fake.press(USER, text="No")
    wait_text(fake, USER, "How much pain", n)
    fake.press(USER, text=str(pain))
    wait_text(fake, USER, "Do you have any of these?", n)
    fake.press(USER, text="None of these")
    # Time moves on only once the answers are in.
    db_wait(d.db, "SELECT count(*) FROM patients WHERE ask_q = ''",
            lambda v: v == 1, "the check-in complete")


def test_course(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        fake.add_group(CLINIC, "Clinic")
        env, db = setup(BIN, tmp, fake, STRIGIL_TEST_CLOCK="true",
                        STRIGIL_TELEGRAM_CLINICIAN_CHAT=CLINIC,
                        STRIGIL_TELEGRAM_SUMMARY_TIME="07:00")
        code = invite(BIN, env, "--protocol", "mini", "--clinician", "Dr A")
        d = Daemon(BIN, env)
        d.db = db
        onboard(r, fake, code)
        r.eq(db_query(db, "SELECT e.invite, e.status FROM enrolments e"),
             [(code, "active")], "enrolled from the invite, screened")
        session(r, d, fake, 1, "light")
        checkin(r, d, fake, 1, 1)
        session(r, d, fake, 2, "light")
        checkin(r, d, fake, 1, 2)
        wait_text(fake, USER, "please use moderate pressure")
        session(r, d, fake, 3, "moderate")
        checkin(r, d, fake, 8, 3)
        wait_text(fake, CLINIC, "pain 8")
        drained(db)
        alerts = [m for m in fake.sent(CLINIC) if "pain 8" in m["text"]]
        r.eq(len(alerts), 1, "the escalation reaches the clinician chat once")
        pid = db_query(db, "SELECT id FROM patients")[0][0]
        r.check(alerts and "Patient #%d" % pid in alerts[0]["text"],
                "it names the patient by number only", alerts)
        wait_text(fake, USER, "told your clinician")
        r.eq(db_query(db, "SELECT status FROM enrolments"), [("hold",)],
             "the course is on hold")
        # Someone else's /clear is refused; the clinician's works.
        fake.message(USER, "/clear %d" % pid)
        wait_text(fake, USER, "don't know that command")
        r.eq(db_query(db, "SELECT status FROM enrolments"), [("hold",)],
             "a patient cannot /clear")
        fake.message(DOC, "/clear %d" % pid, chat_id=CLINIC)
        wait_text(fake, CLINIC, "hold lifted")
        wait_text(fake, USER, "cleared you to continue")
        r.eq(db_query(db, "SELECT status FROM enrolments"), [("active",)],
             "/clear from the clinician chat lifts the hold")
        fake.message(DOC, "/clear %d" % pid, chat_id=CLINIC)
        wait_text(fake, CLINIC, "not on hold")
        drained(db)
        # One summary per day, whatever the restarts.
        stop(r, d)
        d = Daemon(BIN, env, "second")
        now, _ = d.wait(DAY)
        drained(db)
        stop(r, d)
        sums = [m["text"] for m in fake.sent(CLINIC)
                if m["text"].startswith("Daily summary for")]
        days = [s.splitlines()[0] for s in sums]
        r.eq(len(days), len(set(days)), "no day summarised twice")
        # A jump of virtual time over a summary time with no job in
        # between sends only the latest day (as after downtime), so not
        # every day need appear; but a summary went out on most days.
        sent_days = db_query(db, "SELECT value FROM kv WHERE key = "
                                 "'telegram.summary_day'")
        r.check(len(sums) >= 10 and sent_days, "a summary every day",
                (len(sums), sent_days))
        r.check(any("Escalations: 1" in s for s in sums),
                "a summary counts the escalation", sums[-3:])
        r.check(all("Dr A" not in s for s in sums),
                "no names in the summaries")
        r.eq(fake.violations(), [], "the fake saw no spec violations")
        r.eq(integrity(db), "ok", "integrity_check")


def test_private_reminders(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(BIN, tmp, fake, STRIGIL_TEST_CLOCK="true",
                        STRIGIL_TELEGRAM_PRIVATE_REMINDERS="true")
        d = Daemon(BIN, env)
        onboard(r, fake, None)
        d.wait(3 * DAY)
        rem = wait_text(fake, USER, "Time for your session.")[-1]
        r.eq(rem["text"], "Time for your session. Open the chat for "
             "details.", "a reminder with no clinical detail")
        r.eq(buttons(rem), [[("Show details", "c:/today")]],
             "one button asks for the details")
        r.eq(count_text(fake, USER, "pressure"), 0,
             "no pressure level on the screen")
        fake.press(USER, message_id=rem["message_id"], data="c:/today")
        full = wait_text(fake, USER, "Time for session 1, at light")[-1]
        r.check("Warm up the area" in full["text"],
                "the details once asked for", full["text"])
        fake.press(USER, message_id=full["message_id"], data="c:/done")
        wait_text(fake, USER, "Well done!")
        drained(db)
        stop(r, d)
        r.eq(fake.violations(), [], "the fake saw no spec violations")


def test_blocked_and_back(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(BIN, tmp, fake, STRIGIL_TEST_CLOCK="true")
        d = Daemon(BIN, env)
        onboard(r, fake, None)
        drained(db)
        fake.block(USER, notify=False)
        fake.message(USER, "/progress")
        db_wait(db, "SELECT unreachable FROM patients", lambda v: v == 1,
                "the patient marked unreachable")
        n = len(fake.requests("sendMessage"))
        d.wait(10 * DAY)
        drained(db)
        r.eq(len(fake.requests("sendMessage")), n,
             "no reminder tried while unreachable")
        withheld = db_query(db, "SELECT count(*) FROM events WHERE kind = "
                                "'reminder_withheld'")[0][0]
        r.check(withheld >= 1, "withheld reminders are recorded", withheld)
        r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE failed = "
                          "'blocked'"), [(1,)],
             "the one message refused is recorded as not delivered")
        fake.unblock(USER, notify=False)
        fake.message(USER, "hello")
        back = wait_text(fake, USER, "Welcome back!")[-1]
        r.check("Sessions done so far: 0" in back["text"],
                "they hear where they are", back["text"])
        r.eq(db_query(db, "SELECT unreachable FROM patients"), [(0,)],
             "writing again clears unreachable")
        d.wait(3 * DAY)
        wait_text(fake, USER, "Time for session")
        drained(db)
        stop(r, d)
        r.eq(fake.violations(), [], "the fake saw no spec violations")


if __name__ == "__main__":
    sys.exit(Runner().run([
        test_course,
        test_private_reminders,
        test_blocked_and_back,
    ]))
