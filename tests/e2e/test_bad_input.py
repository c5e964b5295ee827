#!/usr/bin/env python3
"""Bad input from patients, through the console adapter in virtual time.

Empty and blank lines, huge texts (past 4096 characters), raw binary and
invalid UTF-8, right-to-left and emoji text, answers out of range, and
commands in the wrong state: each gets a clear reply, and the database
(read from the side with the sqlite3 module) changes only where it should.
Every stored and outgoing text is valid UTF-8.

Usage: python3 tests/e2e/test_bad_input.py /path/to/strigil
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (Proc, Runner, binary, clean_env, db_query,  # noqa
                     integrity, mini_protocol)

BIN = binary()
START = "2026-03-02T08:00:00Z"
ENV = dict(STRIGIL_TIMEZONE="UTC", STRIGIL_REMINDER_TIME="18:00",
           STRIGIL_QUIET_HOURS_FROM="21:00", STRIGIL_QUIET_HOURS_TO="08:00",
           STRIGIL_LANGUAGE="en", STRIGIL_LANG_DIR="scripts/lang",
           STRIGIL_LOG_LEVEL="warn")

HINT_YESNO = r"^bot> Please answer yes or no \(1 or 2\)\.$"
HINT_INT = r"^bot> Please answer with a number from 0 to 10\.$"
HINT_TEXT = r"^bot> Please write a short answer in plain text\.$"
TO_START = r"^bot> Hello! To begin, send /start"
RTL_EMOJI = "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \U0001F600\U0001F44D\U0001F3FD"

# The tables that hold a patient's course; inbox, outbox and events are
# expected to grow with every message.
COURSE_TABLES = ("patients", "enrolments", "protocol_state", "sessions",
                 "answers", "jobs", "invites")


def chat(tmp):
    proto = mini_protocol(os.path.join(tmp, "mini.lua"))
    db = os.path.join(tmp, "strigil.db")
    p = Proc([BIN, "chat", "--protocol", proto, "--db", db, "--start", START],
             env=clean_env(**ENV), name="strigil chat")
    p.expect(r"^Send /start to begin")
    return p, db


def snapshot(db):
    return {t: db_query(db, "SELECT * FROM %s ORDER BY 1" % t)
            for t in COURSE_TABLES}


def send_raw(p, data):
    """Sends bytes as one line, whatever they are, then syncs."""
    p.p.stdin.write(data + b"\n")
    p.p.stdin.flush()
    return p.sync()[0]


def unchanged(r, db, before, what):
    after = snapshot(db)
    for t in COURSE_TABLES:
        r.eq(after[t], before[t], "%s: table %s unchanged" % (what, t))


def all_utf8(r, db):
    """Every text the database holds decodes as strict UTF-8."""
    con_rows = []
    for table, col in (("inbox", "body"), ("outbox", "body"),
                       ("outbox", "meta"), ("answers", "value"),
                       ("events", "data")):
        for (v,) in db_query(db, "SELECT CAST(%s AS BLOB) FROM %s WHERE %s "
                             "IS NOT NULL" % (col, table, col)):
            try:
                bytes(v).decode("utf-8", "strict")
            except UnicodeDecodeError as e:
                con_rows.append("%s.%s: %r (%s)" % (table, col, v[:60], e))
    r.check(not con_rows, "all stored texts are valid UTF-8",
            "\n".join(con_rows[:5]))


def enrol(r, p, note="nothing"):
    p.say("/start")
    p.say("1")
    p.say("1")
    out = p.say("1")
    r.contains(out, r"^bot> Is the skin over the area intact\?$", "screening")
    p.say("yes")
    out = p.say(note)
    r.contains(out, r"^bot> Thank you, I've noted that\.$", "screening done")


def to_checkin(r, p):
    """/wait for the reminder, /done, then /wait to the check-in."""
    out, t = p.wait()
    r.contains(out, r"^bot> Time for session 1", "reminder")
    out = p.say("/done")
    r.contains(out, r"^bot> Well done! Session noted\.$", "/done")
    out, t = p.wait("26h")
    r.contains(out, r"^bot> How sore is the area today, from 0 to 10\?$",
               "check-in asked")


# ---- the tests ---------------------------------------------------------------

def test_before_start(r, tmp):
    """A stranger's empty, blank, huge, binary and command lines: told how
    to start; nobody is created."""
    p, db = chat(tmp)
    before = snapshot(db)
    r.eq(p.say(""), [], "an empty line is not a message")
    for line in ("   ", "\t", "x" * 5000, RTL_EMOJI, "/done", "/stop",
                 "/resume", "/", "//", "/123"):
        out = p.say(line)
        r.contains(out, TO_START, "stranger %r told to /start" % line[:20])
    out = send_raw(p, b"\xff\xfe\x00\x01binary\xc3\x28\xed\xa0\x80")
    r.contains(out, TO_START, "binary from a stranger")
    unchanged(r, db, before, "before /start")
    r.eq(db_query(db, "SELECT count(*) FROM patients")[0][0], 0,
         "no patient row for a stranger")
    all_utf8(r, db)
    p.close_stdin()
    r.eq(p.finish(), 0, "exit 0")


def test_setup_bad_answers(r, tmp):
    """Consent and setup questions re-asked after bad answers; nothing
    about the patient changes until a good one."""
    p, db = chat(tmp)
    p.say("/start")
    before = snapshot(db)
    for bad in ("5", "-1", "x" * 5000, RTL_EMOJI, "yesno", "1 2"):
        out = p.say(bad)
        r.contains(out, HINT_YESNO, "consent hint for %r" % bad[:20])
        r.contains(out, r"^bot> .*Do you agree\?$", "consent asked again")
    out = send_raw(p, b"\xc3\x28\xff")
    r.contains(out, HINT_YESNO, "consent hint for invalid UTF-8")
    unchanged(r, db, before, "bad consent answers")
    p.say("1")
    before = snapshot(db)
    for bad in ("x" * 5000, "Mars/Olympus", "../../etc/passwd",
                "Europe/Berlin\x01"):
        out = p.say(bad)
        r.contains(out, r"^bot> I don't know that time zone|" + HINT_TEXT,
                   "zone hint for %r" % bad[:20])
    unchanged(r, db, before, "bad zones")
    p.close_stdin()
    r.eq(p.finish(), 0, "exit 0")


def test_text_answers(r, tmp):
    """A free-text answer: RTL and emoji kept exactly; too long refused
    with a hint; broken bytes stored as U+FFFD, never as they came."""
    p, db = chat(tmp)
    p.say("/start")
    p.say("1")
    p.say("1")
    p.say("1")
    p.say("yes")
    before = snapshot(db)
    out = p.say("y" * 5000)
    r.contains(out, HINT_TEXT, "a 5000-character answer gets the hint")
    r.contains(out, r"^bot> Anything your clinic should know", "asked again")
    unchanged(r, db, before, "too long an answer")
    out = p.say(RTL_EMOJI)
    r.contains(out, r"^bot> Thank you, I've noted that\.$", "RTL+emoji ok")
    vals = db_query(db, "SELECT value FROM answers WHERE question = 'note'")
    r.eq(vals, [(RTL_EMOJI,)], "RTL and emoji stored exactly")
    # The same answer with broken bytes, after a /stop 2 round trip does
    # not reach a question: check it as a free message instead.
    out = send_raw(p, b"caf\xc3 \xff\xfe end")
    r.contains(out, r"^bot> I didn't catch that", "free text with bad bytes")
    body = db_query(db, "SELECT CAST(body AS BLOB) FROM inbox ORDER BY id "
                    "DESC LIMIT 1")[0][0]
    r.eq(bytes(body).decode("utf-8"), "caf\ufffd \ufffd\ufffd end",
         "invalid bytes stored as U+FFFD")
    # Overlong forms, surrogates, past U+10FFFF, a cut-off emoji: none is
    # stored as sent; the ASCII around them is.
    for raw in (b"a\xc0\xafb", b"a\xed\xa0\x80b", b"a\xf4\x90\x80\x80b",
                b"a\xf0\x9f\x98", b"a\xe2\x82b", b"\x80\xbfab"):
        send_raw(p, raw)
        body = bytes(db_query(db, "SELECT CAST(body AS BLOB) FROM inbox "
                              "ORDER BY id DESC LIMIT 1")[0][0])
        r.check(raw not in body and body.startswith(b"a") or
                body.endswith(b"ab"), "%r repaired" % raw, body)
        r.check("\ufffd" in body.decode("utf-8", "replace"),
                "%r: U+FFFD in its place" % raw, body)
    all_utf8(r, db)
    p.close_stdin()
    r.eq(p.finish(), 0, "exit 0")


def test_out_of_range(r, tmp):
    """Integer answers out of range or not numbers: the hint, the question
    again, and no answer stored; then a good one is."""
    p, db = chat(tmp)
    enrol(r, p)
    to_checkin(r, p)
    before = snapshot(db)
    for bad in ("11", "-1", "7.5", "1e3", "99999999999999999999", "0x3",
                "\u0663", "three", "", "x" * 5000, RTL_EMOJI, "3 4"):
        if bad == "":
            r.eq(p.say(bad), [], "an empty line is not a message")
            continue
        out = p.say(bad)
        r.contains(out, HINT_INT, "hint for %r" % bad[:20])
        r.contains(out, r"^bot> How sore is the area today", "asked again")
    out = send_raw(p, b"\xff5")
    r.contains(out, HINT_INT, "hint for binary")
    unchanged(r, db, before, "out-of-range answers")
    out = p.say(" 3 ")
    r.contains(out, r"^bot> How much bruising", "a good answer moves on")
    r.eq(db_query(db, "SELECT count(*) FROM answers WHERE question = "
                  "'soreness' AND value = '3'")[0][0], 1, "stored once")
    # The next question has its own range: 0 to 3.
    before = snapshot(db)
    out = p.say("4")
    r.contains(out, r"^bot> Please answer with a number from 0 to 3\.$",
               "range of the second question")
    unchanged(r, db, before, "second question out of range")
    all_utf8(r, db)
    p.close_stdin()
    r.eq(p.finish(), 0, "exit 0")


def test_commands_in_wrong_state(r, tmp):
    """Session and course commands that do not fit say why and change
    nothing."""
    p, db = chat(tmp)
    p.say("/start")
    before = snapshot(db)
    out = p.say("/done")
    r.contains(out, r"^bot> .*Do you agree\?$", "/done in setup re-asks")
    out = p.say("/pause")
    r.contains(out, r"^bot> .*Do you agree\?$", "/pause in setup re-asks")
    unchanged(r, db, before, "commands in setup")
    p.say("1")
    p.say("1")
    p.say("1")
    p.say("yes")
    p.say("fine")
    before = snapshot(db)
    for cmd, want in (("/done", r"^bot> Your next session is planned for"),
                      ("/skip", r"^bot> Your next session is planned for"),
                      ("/snooze", r"^bot> Your next session is planned for"),
                      ("/resume", r"^bot> Your course isn't paused\.$"),
                      ("/start", r"^bot> You're already signed up\."),
                      ("/start SOMECODE", r"^bot> You're already signed up\."),
                      ("/frobnicate", r"^bot> I don't know that command\."),
                      ("/DONE@other_bot", r"^bot> Your next session is planned")):
        out = p.say(cmd)
        r.contains(out, want, "%s when no session is due" % cmd)
    unchanged(r, db, before, "session commands before a session is due")
    # /stop asks first; a bad answer re-asks; "No" keeps the course.
    out = p.say("/stop")
    r.contains(out, r"^bot> Do you want to end your course\?", "/stop asks")
    out = p.say("x" * 5000)
    r.contains(out, HINT_YESNO, "bad /stop answer gets the hint")
    out = p.say("2")
    r.contains(out, r"^bot> Good, your course carries on\.$", "stop cancelled")
    after = snapshot(db)
    r.eq(after["enrolments"], before["enrolments"], "course unchanged")
    r.eq(after["jobs"], before["jobs"], "plan unchanged")
    # Paused, session commands say so.
    p.say("/pause")
    before = snapshot(db)
    for cmd in ("/done", "/skip", "/snooze", "/today", "/pause"):
        out = p.say(cmd)
        r.contains(out, r"^bot> Your course is paused\. Send /resume",
                   "%s while paused" % cmd)
    unchanged(r, db, before, "commands while paused")
    r.eq(integrity(db), "ok", "database integrity")
    p.close_stdin()
    r.eq(p.finish(), 0, "exit 0")


def test_huge_lines(r, tmp):
    """Past the console's line limit the line is refused by the adapter;
    below it, a huge free message is stored valid and bounded."""
    p, db = chat(tmp)
    enrol(r, p)
    before = snapshot(db)
    n = db_query(db, "SELECT count(*) FROM inbox")[0][0]
    out = p.say("z" * 9000)
    r.contains(out, r"^-- that line was too long", "overlong line refused")
    r.eq(db_query(db, "SELECT count(*) FROM inbox")[0][0], n,
         "an overlong line never reaches the engine")
    out = p.say("\U0001F600" * 2000)      # 8000 bytes, 2000 characters
    r.contains(out, r"^bot> I didn't catch that", "a long emoji line")
    unchanged(r, db, before, "huge free text")
    all_utf8(r, db)
    p.close_stdin()
    r.eq(p.finish(), 0, "exit 0")


if __name__ == "__main__":
    sys.exit(Runner().run([test_before_start, test_setup_bad_answers,
                           test_text_answers, test_out_of_range,
                           test_commands_in_wrong_state, test_huge_lines]))
