#!/usr/bin/env python3
"""Crash soak: a busy run on Telegram and Matrix at once, killed with
SIGKILL at random moments and restarted, again and again.

The daemon runs both adapters against the two fakes on the virtual clock
(test_clock). STRIGIL_SOAK_PATIENTS patients on each adapter (default 10)
enrol and answer whatever the bot asks (tests/soak/soak_lib.py: Crowd)
while virtual time moves on in random steps of 6-30 hours, so reminders
and check-ins come due; meanwhile the daemon is killed STRIGIL_SOAK_KILLS
times (default 20) at random moments: in the middle of a /test/wait that
runs jobs, of a send, of a poll, of a startup. The random moments come
from a seeded generator (STRIGIL_SOAK_SEED, printed).

Afterwards:
- every update and event the fakes delivered is in the inbox exactly once,
  and each /progress was answered exactly once (none handled twice);
- every outbox row was delivered and none given up; no job is left behind
  its due time; one reminder row per reminder event; Telegram got every
  reminder (at least once: it has no idempotency key); Matrix got exactly
  one event per outbox row (txnId), so no reminder twice;
- the fakes saw no protocol violation (no Telegram update confirmed before
  it was delivered), PRAGMA integrity_check passes after every kill.

Usage: python3 tests/soak/test_crash_soak.py /path/to/strigil
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak_lib import *  # noqa: E402,F401,F403
from e2e_lib import Runner, binary, integrity  # noqa: E402

BIN = binary()
KILLS = env_int("STRIGIL_SOAK_KILLS", 20)
PATIENTS = env_int("STRIGIL_SOAK_PATIENTS", 10)


def wait_quietly(d, seconds, out):
    """POST /test/wait in a thread: the kill may cut it short."""
    try:
        out.append(d.wait(seconds))
    except Exception as e:      # the daemon died under it: expected
        out.append(e)


def test_crash_soak(r, tmp):
    rng = random.Random(seed())
    with tf.Fake(token=TOKEN, rate_limits=False) as tg, mf.Fake() as mx:
        env, db = setup(BIN, tmp, tg, mx)
        d = Daemon(BIN, env, "run0")
        tgs, mxs = make_patients(tg, mx, PATIENTS)
        wait_matrix_ready(db, mx, mxs)
        crowd = Crowd(tgs + mxs, random.Random(rng.random())).start()
        start_courses(tgs, mxs)
        wait_enrolled(db, 2 * PATIENTS)
        kills, waits = 0, []
        for k in range(KILLS):
            w = threading.Thread(target=wait_quietly, args=(
                d, rng.randint(6, 30) * 3600, waits), daemon=True)
            w.start()
            # Some kills land in the jobs the wait runs, most later.
            time.sleep(rng.uniform(0.0, 0.008) if rng.random() < 0.3
                       else rng.uniform(0.05, 2.0))
            d.p.kill()          # SIGKILL
            kills += 1
            w.join(DEADLINE)
            with open(os.path.join(tmp, "run%d.log" % k), "w") as f:
                f.write(d.p.stderr_text())
            r.eq(integrity(db), "ok", "integrity after kill %d" % kills)
            d = Daemon(BIN, env, "run%d" % (k + 1))
        # A last day in one piece: every job due by its end runs.
        d.wait(DAY)
        crowd.end()
        settle(db, tg, mx, tgs, mxs)
        d.p.signal(15)
        r.eq(d.p.finish(), 0, "SIGTERM exits 0")
        cut = sum(1 for x in waits if isinstance(x, Exception))
        print("    %d kills (%d during a /test/wait), %d telegram and %d "
              "matrix messages written" % (
                  kills, cut, sum(len(p.written) for p in tgs),
                  sum(len(p.written) for p in mxs)))
        r.check(kills >= 10 or KILLS < 10, "killed 10 times or more", kills)
        asked = check_inbound(r, db, tgs, "telegram")
        asked += check_inbound(r, db, mxs, "matrix")
        reminders = check_outbox(r, db)
        extra = check_tg_delivered(r, db, tg, tgs, lost_answers=None)
        rows = check_mx_once(r, db, mx, mxs)
        checkins = db_query(db, "SELECT count(*) FROM answers WHERE "
                            "questionnaire = 'checkin'")[0][0]
        print("    %d reminders, %d check-in answers, %d /progress, %d "
              "matrix rows; telegram repeats after kills: %d" % (
                  reminders, checkins, asked, rows, extra))
        r.check(reminders >= 2 * PATIENTS, "reminders came due for all",
                reminders)
        r.check(checkins > 0, "check-ins were answered", checkins)
        check_violations(r, tg, mx)
        check_integrity(r, db)


if __name__ == "__main__":
    sys.exit(Runner().run([test_crash_soak]))
