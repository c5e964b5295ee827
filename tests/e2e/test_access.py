#!/usr/bin/env python3
"""Access and erasure: a patient's /erase removes them for good, and one
patient never sees or changes another's data.

- /erase asks first; "No" changes nothing; "Yes" deletes the patient from
  every table (patients, enrolments, protocol_state, sessions, answers,
  jobs, events, inbox, outbox), leaves one "erased" event holding only the
  internal id and the time, logs it without data, and no byte of what the
  patient wrote is left in the database file or its WAL (secure_delete and
  a WAL wipe). The id is never given to a new patient.
- Two Telegram patients (through the fake Bot API) interleave their
  onboarding and answers: each hears only their own conversation, the
  database keeps each one's answers apart, one's /erase leaves the other
  untouched and served, and a patient cannot use the clinician's commands.

Usage: python3 tests/e2e/test_access.py /path/to/strigil
"""
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from e2e_lib import (DEADLINE, REPO, Proc, Runner, binary, clean_env,  # noqa
                     db_query, integrity, mini_protocol, run)
import telegram_fake as tf  # noqa

BIN = binary()
START = "2026-03-02T08:00:00Z"
SECRET = "purple giraffes under the left knee 7391"
ENV = dict(STRIGIL_TIMEZONE="UTC", STRIGIL_REMINDER_TIME="18:00",
           STRIGIL_QUIET_HOURS_FROM="21:00", STRIGIL_QUIET_HOURS_TO="08:00",
           STRIGIL_LANGUAGE="en", STRIGIL_LANG_DIR="scripts/lang",
           STRIGIL_LOG_LEVEL="info")
ERASE_Q = r"^bot> Do you want me to delete everything I have stored"
ERASED = r"^bot> Done: everything I had stored about you has been deleted\."
PATIENT_TABLES = ("patients", "enrolments", "protocol_state", "sessions",
                  "answers", "jobs", "events", "inbox", "outbox")


def chat(tmp):
    proto = mini_protocol(os.path.join(tmp, "mini.lua"))
    db = os.path.join(tmp, "strigil.db")
    p = Proc([BIN, "chat", "--protocol", proto, "--db", db, "--start", START],
             env=clean_env(**ENV), name="strigil chat")
    p.expect(r"^Send /start to begin")
    return p, db


def counts(db):
    return {t: db_query(db, "SELECT count(*) FROM %s" % t)[0][0]
            for t in PATIENT_TABLES}


def raw_has(db, needle):
    """Whether the bytes of the database file or its WAL hold `needle`."""
    found = []
    for path in (db, db + "-wal"):
        if os.path.exists(path):
            with open(path, "rb") as f:
                if needle.encode() in f.read():
                    found.append(os.path.basename(path))
    return found


def enrol_with_history(r, p):
    """Enrols, answers screening with SECRET, does a session and its
    check-in: rows in every table."""
    p.say("/start")
    p.say("1")
    p.say("1")
    p.say("1")
    p.say("yes")
    out = p.say(SECRET)
    r.contains(out, r"^bot> Thank you, I've noted that\.$", "screening done")
    out, t = p.wait()
    r.contains(out, r"^bot> Time for session 1", "reminder")
    p.say("/done")
    out, t = p.wait("26h")
    r.contains(out, r"^bot> How sore is the area today", "check-in")
    for a in ("2", "0", "2", "1", "1"):
        p.say(a)


# ---- erasure on the console ----------------------------------------------------

def test_erase(r, tmp):
    p, db = chat(tmp)
    enrol_with_history(r, p)
    c = counts(db)
    for t in PATIENT_TABLES:
        r.check(c[t] > 0 or t == "protocol_state", "rows in %s before" % t, c)
    pid = db_query(db, "SELECT id FROM patients")[0][0]

    # Asked first; "No" (and a bad answer) delete nothing.
    out = p.say("/erase")
    r.contains(out, ERASE_Q, "/erase asks first")
    out = p.say("perhaps")
    r.contains(out, r"^bot> Please answer yes or no", "bad answer: hint")
    out = p.say("2")
    r.contains(out, r"^bot> Okay, nothing has been deleted\.$", "cancelled")
    r.eq(db_query(db, "SELECT count(*) FROM answers WHERE value = ?",
                  (SECRET,))[0][0], 1, "nothing deleted after No")
    r.eq(db_query(db, "SELECT status FROM enrolments"), [("active",)],
         "the course goes on after No")

    out = p.say("/erase")
    r.contains(out, ERASE_Q, "/erase asks again")
    out = p.say("1")
    r.contains(out, ERASED, "erased")
    # Everything about the patient is gone.
    for t in ("patients", "enrolments", "protocol_state", "sessions",
              "answers", "jobs", "inbox"):
        r.eq(db_query(db, "SELECT count(*) FROM %s" % t)[0][0], 0,
             "%s empty after erasure" % t)
    r.eq(db_query(db, "SELECT patient_id, enrolment_id, kind, data FROM "
                  "events"), [(pid, 0, "erased", None)],
         "one audit event: the id, the time, no data")
    r.eq(db_query(db, "SELECT patient_id, body FROM outbox"),
         [(0, "Done: everything I had stored about you has been deleted. "
           "If you write again, I'll treat you as someone new.")],
         "only the goodbye is left, under no patient")
    # Not a byte of it in the file or the WAL, while the daemon runs.
    r.eq(raw_has(db, SECRET), [], "the secret is not in the files")
    r.eq(raw_has(db, "giraffes"), [], "nor any part of it")
    # The erasure is logged without data.
    p.expect_err(r"event=patient_erased patient=%d$" % pid)

    # Writing again: a stranger. Starting again: a new id.
    out = p.say("/today")
    r.contains(out, r"^bot> Hello! To begin, send /start", "a stranger now")
    p.say("/start")
    new = db_query(db, "SELECT id FROM patients")[0][0]
    r.check(new > pid, "a new patient never gets an erased id",
            "new %d, erased %d" % (new, pid))
    p.send("/quit")
    r.eq(p.finish(), 0, "exit 0")
    r.lacks(p.stderr_text(), "giraffe", "the log never holds the text")
    r.eq(raw_has(db, SECRET), [], "the secret is not in the files at exit")
    r.eq(integrity(db), "ok", "integrity")


def test_erase_edge_cases(r, tmp):
    p, db = chat(tmp)
    out = p.say("/erase")
    r.contains(out, r"^bot> Hello! To begin, send /start",
               "a stranger has nothing to erase")
    r.eq(counts(db)["patients"], 0, "no patient made by /erase")
    # Erasing in the middle of setup, and after declining consent.
    p.say("/start")
    out = p.say("/erase")
    r.contains(out, ERASE_Q, "/erase interrupts setup")
    out = p.say("1")
    r.contains(out, ERASED, "erased during setup")
    r.eq(counts(db)["patients"], 0, "gone")
    p.say("/start")
    p.say("2")
    out = p.say("/erase")
    r.contains(out, ERASE_Q, "/erase after declining consent")
    out = p.say("yes")
    r.contains(out, ERASED, "erased after declining")
    c = counts(db)
    r.eq((c["patients"], c["enrolments"], c["answers"]), (0, 0, 0),
         "nothing left")
    r.eq(db_query(db, "SELECT count(*) FROM events WHERE kind <> 'erased'"),
         [(0,)], "only erasure events")
    p.close_stdin()
    r.eq(p.finish(), 0, "exit 0")


def test_erase_keeps_invite_used(r, tmp):
    """Erasing does not give back the invite's use: the code was the
    clinic's, and a used single-use code stays used."""
    folder = os.path.join(tmp, "protocols")
    os.mkdir(folder)
    mini_protocol(os.path.join(folder, "mini.lua"))
    mini_protocol(os.path.join(folder, "knee.lua"), pid="knee",
                  title="Knee course")
    conf = os.path.join(tmp, "strigil.conf.lua")
    with open(conf, "w") as f:
        f.write('language = "en"\n')
    db = os.path.join(tmp, "strigil.db")
    env = clean_env(STRIGIL_CONFIG=conf, STRIGIL_DATABASE=db,
                    STRIGIL_PROTOCOLS=folder, STRIGIL_DEFAULT_PROTOCOL="mini",
                    **ENV)
    rc, out, err = run([BIN, "invite", "--protocol", "knee"], env=env)
    r.eq(rc, 0, "strigil invite")
    code = out.split("invite code: ")[1].split()[0] if "invite code: " in out \
        else "none"
    p = Proc([BIN, "chat", "--db", db, "--start", START], env=env,
             name="strigil chat")
    p.expect(r"^Send /start to begin")
    out = p.say("/start " + code)
    r.contains(out, r'"Knee course"', "the code enrols")
    p.say("/erase")
    out = p.say("1")
    r.contains(out, ERASED, "erased")
    r.eq(db_query(db, "SELECT uses_left FROM invites"), [(0,)],
         "the use is not given back")
    out = p.say("/start " + code)
    r.contains(out, r"^bot> That invite code has already been used",
               "the same code is refused afterwards")
    r.eq(counts(db)["patients"], 0, "and enrols nobody")
    p.close_stdin()
    r.eq(p.finish(), 0, "exit 0")
    r.check(code not in p.stderr_text(), "the code is never logged")


# ---- two patients on Telegram --------------------------------------------------

TOKEN = "123456789:AAtest-token_for_strigil"
ALICE = 5000000001
BOB = 5000000002
ALICE_NOTE = "alice: the left calf 8842"
BOB_NOTE = "bob: nothing special 1177"


def tg_setup(tmp, fake):
    pdir = os.path.join(tmp, "protocols")
    os.mkdir(pdir)
    mini_protocol(os.path.join(pdir, "mini.lua"))
    db = os.path.join(tmp, "s.db")
    env = clean_env(STRIGIL_CONFIG=os.path.join(REPO, "config",
                                                "strigil.conf.lua"),
                    STRIGIL_DATABASE=db, STRIGIL_PROTOCOLS=pdir,
                    STRIGIL_DEFAULT_PROTOCOL="mini", STRIGIL_CONSOLE="false",
                    STRIGIL_TIMEZONE="UTC", STRIGIL_REMINDER_TIME="18:00",
                    STRIGIL_LANG_DIR=os.path.join(REPO, "scripts", "lang"),
                    STRIGIL_QUIET_HOURS_FROM="00:00",
                    STRIGIL_QUIET_HOURS_TO="00:00",
                    STRIGIL_LOG_LEVEL="info",
                    STRIGIL_TELEGRAM_TOKEN=TOKEN,
                    STRIGIL_TELEGRAM_API_URL=fake.base_url,
                    STRIGIL_TELEGRAM_POLL_TIMEOUT="20")
    return env, db


def wait_text(fake, user, needle, count=1):
    def have():
        got = [m for m in fake.sent(user) if needle in m["text"]]
        return got if len(got) >= count else None
    return fake.wait_for(have, DEADLINE, "%d: a message with %r" % (
        user, needle))


def texts(fake, user):
    return [m["text"] for m in fake.sent(user)]


def test_two_patients(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        env, db = tg_setup(tmp, fake)
        p = Proc([BIN, "run"], env=env, name="strigil run")
        p.expect_err(r"event=started mode=run")
        # Interleaved onboarding: each step of one between the other's.
        fake.start_command(ALICE)
        fake.start_command(BOB)
        wait_text(fake, ALICE, "Do you agree?")
        wait_text(fake, BOB, "Do you agree?")
        fake.message(BOB, "yes")
        fake.message(ALICE, "yes")
        wait_text(fake, ALICE, "Which time zone")
        wait_text(fake, BOB, "Which time zone")
        fake.message(ALICE, "Asia/Kolkata")
        fake.message(BOB, "Pacific/Auckland")
        wait_text(fake, BOB, "What time of day")
        wait_text(fake, ALICE, "What time of day")
        fake.message(BOB, "09:15")
        fake.message(ALICE, "19:45")
        wait_text(fake, ALICE, "Is the skin over the area intact?")
        wait_text(fake, BOB, "Is the skin over the area intact?")
        fake.message(ALICE, "yes")
        fake.message(BOB, "yes")
        wait_text(fake, BOB, "Anything your clinic should know?")
        wait_text(fake, ALICE, "Anything your clinic should know?")
        fake.message(BOB, BOB_NOTE)
        fake.message(ALICE, ALICE_NOTE)
        wait_text(fake, ALICE, "noted that")
        wait_text(fake, BOB, "noted that")

        # Each heard only their own settings, never the other's words.
        a, b = texts(fake, ALICE), texts(fake, BOB)
        r.check(any("Asia/Kolkata" in t and "19:45" in t for t in a),
                "Alice's own settings confirmed to her", a)
        r.check(any("Pacific/Auckland" in t and "09:15" in t for t in b),
                "Bob's own settings confirmed to him", b)
        for t in a:
            r.check("Pacific/Auckland" not in t and BOB_NOTE not in t and
                    "09:15" not in t, "nothing of Bob's sent to Alice", t)
        for t in b:
            r.check("Asia/Kolkata" not in t and ALICE_NOTE not in t and
                    "19:45" not in t, "nothing of Alice's sent to Bob", t)
        rows = db_query(db, "SELECT p.chat, p.tz, a.value FROM answers a "
                        "JOIN patients p ON p.id = a.patient_id WHERE "
                        "a.question = 'note' ORDER BY p.chat")
        r.eq(rows, [(str(ALICE), "Asia/Kolkata", ALICE_NOTE),
                    (str(BOB), "Pacific/Auckland", BOB_NOTE)],
             "each answer stored with its own patient")

        # A patient cannot reach the clinician's commands.
        n = len(texts(fake, BOB))
        for cmd in ("/clinic clear", "/clear", "/invite"):
            fake.message(BOB, cmd)
        fake.wait_for(lambda: len(texts(fake, BOB)) >= n + 3 or None,
                      DEADLINE, "Bob's three replies")
        for t in texts(fake, BOB)[n:]:
            r.check("I don't know that command" in t,
                    "clinician command refused to a patient", t)
        r.eq(db_query(db, "SELECT count(*) FROM invites"), [(0,)],
             "no invite made by a patient")

        # Bob erases himself; Alice is untouched and still served.
        before = db_query(db, "SELECT * FROM answers a JOIN patients p ON "
                          "p.id = a.patient_id WHERE p.chat = ?",
                          (str(ALICE),))
        fake.message(BOB, "/erase")
        wait_text(fake, BOB, "Do you want me to delete everything")
        fake.message(BOB, "yes")
        wait_text(fake, BOB, "has been deleted")
        fake.message(ALICE, "/progress")
        wait_text(fake, ALICE, "Sessions done: 0")
        r.eq(db_query(db, "SELECT * FROM answers a JOIN patients p ON "
                      "p.id = a.patient_id WHERE p.chat = ?",
                      (str(ALICE),)), before, "Alice's answers untouched")
        r.eq(db_query(db, "SELECT chat FROM patients"), [(str(ALICE),)],
             "only Alice is left")
        r.eq(db_query(db, "SELECT count(*) FROM inbox WHERE chat = ?",
                      (str(BOB),)), [(0,)], "none of Bob's messages kept")
        r.eq(db_query(db, "SELECT count(*) FROM answers WHERE value = ?",
                      (BOB_NOTE,)), [(0,)], "Bob's note gone")
        p.signal(signal.SIGTERM)
        r.eq(p.finish(), 0, "SIGTERM exits 0")
        r.eq(raw_has(db, BOB_NOTE), [], "Bob's note not in the files")
        r.check(raw_has(db, ALICE_NOTE) != [], "Alice's note still is")
        r.eq(fake.violations(), [], "no Bot API violations")
        r.eq(integrity(db), "ok", "integrity")


if __name__ == "__main__":
    sys.exit(Runner().run([test_erase, test_erase_edge_cases,
                           test_erase_keeps_invite_used, test_two_patients]))
