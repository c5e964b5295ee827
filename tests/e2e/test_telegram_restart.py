#!/usr/bin/env python3
"""End-to-end: SIGKILL at random moments of a busy Telegram run.

Several patients write all the time while virtual time brings their
reminders due; the daemon is killed with SIGKILL at random moments and
started again, six times. Afterwards the fake's record and the database
must show: every update stored exactly once (none lost, none handled
twice), the stored getUpdates offset past the last one, no update
confirmed before it was delivered (the fake's `offset` check), and every
reminder the engine queued delivered.

The kill times are random (seeded, and the seed is printed): what is
checked holds whatever the moment.
Usage: python3 tests/e2e/test_telegram_restart.py /path/to/strigil
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import Runner, binary, db_query, integrity  # noqa
from tg_e2e import (DEADLINE, TOKEN, Daemon, db_wait, drained,  # noqa
                    setup, tf, wait_text)

BIN = binary()
USERS = [5000000001 + i for i in range(5)]
DAY = 86400
KILLS = 6


def enrol(fake, user):
    """Typed answers, queued at once: the daemon takes them in order."""
    ids = []
    for text in ("/start", "yes", "1", "1", "yes", "fine"):
        ids.append(fake.message(user, text)["update_id"])
    return ids


class Writers:
    """Patients writing /progress and /help until stopped."""

    def __init__(self, fake, rng):
        self.fake, self.rng = fake, rng
        self.ids, self.stop = [], threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            u = self.rng.choice(USERS)
            text = self.rng.choice(("/progress", "/help", "/today"))
            self.ids.append(self.fake.message(u, text)["update_id"])
            self.stop.wait(0.02)


def test_kill_restart(r, tmp):
    seed = int(os.environ.get("STRIGIL_TEST_SEED", time.time()))
    print("seed %d" % seed)
    rng = random.Random(seed)
    with tf.Fake(token=TOKEN, rate_limits=False) as fake:
        env, db = setup(BIN, tmp, fake, STRIGIL_TEST_CLOCK="true",
                        STRIGIL_TELEGRAM_RATE_PER_CHAT="50",
                        STRIGIL_TELEGRAM_RATE_GLOBAL="1000",
                        STRIGIL_LOG_LEVEL="info")
        ids = []
        d = Daemon(BIN, env, "run0")
        for u in USERS:
            ids += enrol(fake, u)
        db_wait(db, "SELECT count(*) FROM enrolments WHERE status = "
                    "'active'", lambda n: n == len(USERS), "all enrolled")
        w = Writers(fake, rng)
        w.t.start()
        for k in range(KILLS):
            # Reminders come due while the patients write.
            d.wait(DAY)
            time.sleep(rng.uniform(0.0, 1.5))
            d.p.kill()
            d = Daemon(BIN, env, "run%d" % (k + 1))
        w.stop.set()
        w.t.join()
        ids += w.ids
        d.wait(DAY)
        fake.wait_confirmed(max(ids), DEADLINE)
        drained(db)
        d.p.kill()
        got = db_query(db, "SELECT external_id, count(*) FROM inbox "
                           "WHERE adapter = 'telegram' GROUP BY 1")
        stored = {e: n for e, n in got}
        want = {"u%d" % i for i in ids}
        r.eq(sorted(want - set(stored)), [], "no update lost")
        r.eq(sorted(set(stored) - want), [], "no update made up")
        r.eq([e for e, n in stored.items() if n != 1], [],
             "none stored twice")
        r.eq(db_query(db, "SELECT value FROM kv WHERE key = "
                          "'telegram.offset'"), [(str(max(ids) + 1),)],
             "the offset stored is past the last update")
        r.check(len(ids) > 60, "a busy run", len(ids))
        rows = db_query(db, "SELECT count(*), sum(sent_at > 0), "
                            "sum(failed IS NOT NULL) FROM outbox WHERE "
                            "meta LIKE '%\"type\":\"reminder\"%'")[0]
        events = db_query(db, "SELECT count(*) FROM events WHERE kind = "
                              "'session_reminder'")[0][0]
        r.check(rows[0] >= len(USERS), "reminders came due", rows)
        r.eq(rows[0], events, "one outbox row per reminder event")
        r.eq((rows[1], rows[2]), (rows[0], 0), "every reminder delivered")
        told = sum(1 for u in USERS for m in fake.sent(u)
                   if m["text"].startswith("Time for session"))
        r.check(told >= rows[0], "the fake got every reminder",
                (told, rows[0]))
        r.eq([v for v in fake.violations() if v["kind"] == "offset"], [],
             "no update confirmed before it was delivered")
        r.eq(fake.violations(), [], "the fake saw no spec violations")
        r.eq(integrity(db), "ok", "integrity_check")


if __name__ == "__main__":
    sys.exit(Runner().run([test_kill_restart]))
