#!/usr/bin/env python3
"""End-to-end crash recovery of `strigil run` (real clock, file database).

Jobs are made to come due while the daemon is down by moving jobs.due_at
into the past with sqlite3 while it is stopped; the daemon is killed with
SIGKILL mid-run and restarted. Every overdue reminder must be sent exactly
once, every job closed once, every outbox row sent, every inbox message
handled once; integrity_check after each kill.

Usage: python3 tests/e2e/test_restart.py /path/to/strigil
Prints "N passed, N failed" last; exits 1 on a failure.
"""
import os
import re
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (REPO, Proc, Runner, binary, clean_env, db_exec,  # noqa
                     db_query, integrity, mini_protocol)

BIN = binary()
SECRET = "the bruise looks like a tiny otter 8826"


def setup(tmp):
    pdir = os.path.join(tmp, "protocols")
    os.mkdir(pdir)
    mini_protocol(os.path.join(pdir, "mini.lua"))
    db = os.path.join(tmp, "s.db")
    env = clean_env(STRIGIL_CONFIG=os.path.join(REPO, "config",
                                                "strigil.conf.lua"),
                    STRIGIL_DATABASE=db, STRIGIL_PROTOCOLS=pdir,
                    STRIGIL_DEFAULT_PROTOCOL="mini", STRIGIL_CONSOLE="true",
                    STRIGIL_TIMEZONE="UTC", STRIGIL_REMINDER_TIME="18:00",
                    STRIGIL_LANG_DIR=os.path.join(REPO, "scripts", "lang"),
                    # No quiet hours: the test runs at any time of day.
                    STRIGIL_QUIET_HOURS_FROM="00:00",
                    STRIGIL_QUIET_HOURS_TO="00:00",
                    STRIGIL_LOG_LEVEL="debug")
    return env, db


def start(env, name):
    p = Proc([BIN, "run"], env=env, name=name)
    p.expect_err(r"event=started mode=run")
    return p


def reminder_time():
    """A reminder time six hours from now (UTC), so nothing comes due on
    its own while the test runs."""
    t = time.gmtime(time.time() + 6 * 3600)
    return "%02d:%02d" % (t.tm_hour, t.tm_min)


def crash(r, p, db, what):
    """kill -9, then the database must be sound."""
    p.kill()
    r.eq(p.p.returncode, -signal.SIGKILL, "killed by SIGKILL " + what)
    r.eq(integrity(db), "ok", "integrity_check after kill " + what)


def overdue(db, kind, ago=3600):
    """Moves the pending jobs of `kind` `ago` seconds into the past."""
    return db_exec(db, "UPDATE jobs SET due_at = ?1 WHERE kind = ?2 AND "
                   "status = 'pending'", (int(time.time()) - ago, kind))


def count(lines, pattern):
    rx = re.compile(pattern)
    return sum(1 for l in lines if rx.search(l))


def db_sound(r, db, what):
    r.eq(integrity(db), "ok", "integrity_check " + what)
    r.eq(db_query(db, "SELECT count(*) FROM inbox WHERE status != 'done'"),
         [(0,)], "no inbox message left unhandled " + what)
    r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE sent_at = 0"),
         [(0,)], "every outbox row sent " + what)
    r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE attempts != 1"),
         [(0,)], "every outbox row sent once " + what)
    r.eq(db_query(db, "SELECT count(*) FROM jobs WHERE status = 'pending' "
                  "AND due_at <= strftime('%s', 'now')"), [(0,)],
         "no overdue job left pending " + what)
    r.eq(db_query(db, "SELECT kind, count(*) FROM jobs WHERE status = "
                  "'pending' GROUP BY enrolment_id, kind HAVING count(*) > 1"),
         [], "no job pending twice " + what)
    r.eq(db_query(db, "SELECT count(*) FROM jobs WHERE status != 'pending' "
                  "AND closed_at = 0"), [(0,)], "closed jobs have a time")


def test_overdue_jobs(r, tmp):
    env, db = setup(tmp)
    outs = []           # the console output of every run
    errs = []
    sent = 0            # patient lines sent (each one inbox row)

    def say(p, line):
        nonlocal sent
        sent += 1
        return p.say(line)

    # Run 1: enrol, then crash.
    p = start(env, "run 1")
    out = say(p, "/start")
    r.contains(out, r'^bot> Hello! ', "welcome")
    say(p, "yes")
    say(p, "1")
    out = say(p, reminder_time())
    r.contains(out, r"^bot> Thanks! I'll use the time zone UTC", "setup")
    say(p, "yes")
    out = say(p, SECRET)
    r.contains(out, r"^bot> Thank you, I've noted that\.$", "screening done")
    r.eq(db_query(db, "SELECT count(*) FROM jobs WHERE kind = 'session' AND "
                  "status = 'pending'"), [(1,)], "one session planned")
    crash(r, p, db, "after enrolment")
    outs += p.out
    errs += p.err

    # Down: the session comes due. Run 2 sends its reminder once.
    r.eq(overdue(db, "session"), 1, "session moved into the past")
    p = start(env, "run 2")
    m = p.expect(r"^bot> Time for session (\d+), at (\w+) pressure:$")
    r.eq(m.group(1), "1", "the overdue session's reminder")
    out, t = p.sync()
    r.eq(count(p.out, r"^bot> Time for session"), 1, "reminded once")
    r.eq(db_query(db, "SELECT status, count(*) FROM jobs WHERE kind = "
                  "'session' GROUP BY status"), [("done", 1)],
         "the session job closed once")
    r.eq(db_query(db, "SELECT number, status FROM sessions"), [(1, "due")],
         "one open session")
    r.eq(db_query(db, "SELECT count(*) FROM jobs WHERE kind = 'missed' AND "
                  "status = 'pending'"), [(1,)], "its missed job pending")
    db_sound(r, db, "after the overdue reminder")
    # 1 = /done: the check-in is planned a day later. Crash.
    out = say(p, "1")
    r.contains(out, r"^bot> Well done! Session noted\.$", "1 = /done")
    crash(r, p, db, "after /done")
    outs += p.out
    errs += p.err

    # Down: the check-in comes due. Run 3 asks it once; crash mid-way.
    r.eq(overdue(db, "ask"), 1, "check-in moved into the past")
    p = start(env, "run 3")
    p.expect(r"^bot> How sore is the area today")
    p.sync()
    r.eq(count(p.out, r"^bot> How sore"), 1, "check-in asked once")
    r.eq(count(p.out, r"^bot> Time for session"), 0, "no reminder again")
    out = say(p, "2")
    r.contains(out, r"^bot> How much bruising", "second question")
    crash(r, p, db, "mid check-in")
    outs += p.out
    errs += p.err

    # Run 4: nothing is sent again; the check-in goes on where it was.
    p = start(env, "run 4")
    out, t = p.sync()
    r.lacks(out, r"^bot> ", "nothing re-sent after a restart")
    out = say(p, "/today")
    r.contains(out, r"^bot> How much bruising", "/today re-asks the open one")
    say(p, "0")
    say(p, "no")
    say(p, "1")
    out = say(p, "1")
    r.contains(out, r"^bot> Thank you, I've noted that\.$", "check-in done")
    out = say(p, "/today")
    r.contains(out, r"^bot> Your next session is planned for", "planned")
    r.eq(db_query(db, "SELECT question, count(*) FROM answers WHERE "
                  "questionnaire = 'checkin' GROUP BY question ORDER BY "
                  "question"),
         [("bruising", 1), ("flags", 1), ("pain", 1), ("redness", 1),
          ("soreness", 1)], "each check-in answer stored once")
    db_sound(r, db, "after the check-in")
    crash(r, p, db, "after the check-in")
    outs += p.out
    errs += p.err

    # Down: session 2 comes due. Run 5 reminds once, then crashes; while
    # down the session is missed. Run 6 closes it as missed, reminds no one
    # twice, and plans the next one.
    r.eq(overdue(db, "session"), 1, "session 2 moved into the past")
    p = start(env, "run 5")
    m = p.expect(r"^bot> Time for session (\d+)")
    r.eq(m.group(1), "2", "session 2 reminded")
    # The console marks a message sent after printing it (a crash may repeat
    # a message, never lose it): wait for that before the kill.
    p.sync()
    crash(r, p, db, "after reminder 2")
    outs += p.out
    errs += p.err
    r.eq(overdue(db, "missed", 60), 1, "missed job moved into the past")
    p = start(env, "run 6")
    out, t = p.sync()
    r.lacks(out, r"^bot> Time for session", "no reminder again after a miss")
    r.eq(db_query(db, "SELECT number, status FROM sessions ORDER BY id"),
         [(1, "done"), (2, "missed")], "session 2 missed")
    r.eq(db_query(db, "SELECT count(*) FROM jobs WHERE kind = 'session' AND "
                  "status = 'pending'"), [(1,)], "the next session planned")
    db_sound(r, db, "after the miss")
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "SIGTERM exits 0")
    outs += p.out
    errs += p.err

    r.eq(count(outs, r"^bot> Time for session 1,"), 1,
         "session 1 reminded once over all runs")
    r.eq(count(outs, r"^bot> Time for session 2,"), 1,
         "session 2 reminded once over all runs")
    r.eq(count(outs, r"^bot> How sore"), 1, "check-in asked once in all")
    r.eq(db_query(db, "SELECT count(*) FROM inbox"), [(sent,)],
         "one inbox row per line sent")
    r.eq(db_query(db, "SELECT count(*) FROM (SELECT DISTINCT adapter, "
                  "external_id FROM inbox)"), [(sent,)],
         "inbox ids unique across runs")
    printed = count(outs, r"^(bot> |\[to the clinician\] )")
    r.eq(db_query(db, "SELECT count(*) FROM outbox"), [(printed,)],
         "every outbox row printed exactly once")
    # The inbox's unique key refuses a replayed message.
    row = db_query(db, "SELECT adapter, external_id, chat, body, received_at "
                   "FROM inbox LIMIT 1")[0]
    try:
        db_exec(db, "INSERT INTO inbox (adapter, external_id, chat, body, "
                "received_at) VALUES (?, ?, ?, ?, ?)", row)
        r.check(False, "the inbox refuses a duplicate (adapter, external_id)")
    except sqlite3.IntegrityError:
        pass
    err = "\n".join(errs)
    r.check(SECRET not in err, "patient text never in the log")
    r.check(not re.search(r"level=error", err), "no errors logged",
            [l for l in errs if "level=error" in l][:5])


def test_kill_during_burst(r, tmp):
    """kill -9 while a burst of messages is being handled: no message is
    handled twice, none is marked sent without being printed."""
    env, db = setup(tmp)
    p = start(env, "burst 1")
    p.say("/start")
    n = 300
    p.p.stdin.write(b"/help\n" * n)
    p.p.stdin.flush()
    p.expect(r"^bot> Here is what I understand:")
    crash(r, p, db, "mid-burst")
    handled = db_query(db, "SELECT count(*) FROM inbox")[0][0]
    print("    burst: %d of %d handled before the kill" % (handled - 1, n))
    r.check(2 <= handled <= n + 1, "some of the burst handled", handled)
    r.eq(db_query(db, "SELECT count(*) FROM inbox WHERE status != 'done'"),
         [(0,)], "every stored message handled in the same transaction")
    marked = db_query(db, "SELECT count(*) FROM outbox WHERE body LIKE "
                      "'Here is what I understand%' AND sent_at > 0")[0][0]
    printed1 = count(p.out, r"^bot> Here is what I understand:")
    r.check(marked <= printed1, "no reply marked sent before it was "
            "printed", "marked %d, printed %d" % (marked, printed1))
    p2 = start(env, "burst 2")
    out, t = p2.sync()
    printed2 = count(out, r"^bot> Here is what I understand:")
    total = db_query(db, "SELECT count(*) FROM outbox WHERE body LIKE "
                     "'Here is what I understand%'")[0][0]
    r.eq(total, handled - 1, "one reply per handled /help")
    r.check(total <= printed1 + printed2 <= total + 1,
            "every reply printed, at most one twice",
            "rows %d, printed %d + %d" % (total, printed1, printed2))
    r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE sent_at = 0"),
         [(0,)], "all sent after the restart")
    p2.signal(signal.SIGTERM)
    r.eq(p2.finish(), 0, "SIGTERM exits 0")
    r.eq(integrity(db), "ok", "integrity_check at the end")


if __name__ == "__main__":
    sys.exit(Runner().run([
        test_overdue_jobs,
        test_kill_during_burst,
    ]))
