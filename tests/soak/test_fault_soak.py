#!/usr/bin/env python3
"""Fault soak: weeks of virtual time with a fifth of all requests failing.

The daemon runs both adapters against the two fakes on the virtual clock
(test_clock). STRIGIL_SOAK_PATIENTS patients on each adapter (default 3)
go through STRIGIL_SOAK_WEEKS weeks of their course (default 6), a virtual
day at a time, answering whatever the bot asks (soak_lib.Crowd). All the
while about a fifth of all requests to the fakes fail
(STRIGIL_SOAK_FAULT_RATE, default 0.2), chosen at random (seeded:
STRIGIL_SOAK_SEED, printed) from every way the fakes know:

- Telegram: 429 with retry_after (from the fake's per-chat rate limit,
  which the daemon is set up to run into after a jump of virtual time),
  500, 502, a dropped connection, a slow answer, a body that is not JSON
  (not on sends), and a dropped connection, 500 or malformed body after
  the request was carried out (the answer is lost); with
  STRIGIL_SOAK_TG_STRICT=1 also the faults the adapter does not survive
  yet (see TG_STRICT below);
- Matrix: 429 M_LIMIT_EXCEEDED (retry_after_ms, or a Retry-After header),
  500, a dropped connection before or after the request was handled, a
  slow answer, a 200 garbled into a body that is not an object; and the
  access tokens expire every few seconds (soft logouts, now and then a
  hard one).

At the end, with the faults off: every message the patients wrote is
stored once and handled once; the outbox is empty and nothing was given
up; Telegram got every message, repeated only where an answer was lost;
Matrix got exactly one event per outbox row; the fakes saw no violation
(every retry_after respected); the database passes integrity_check.

Memory stays flat: the daemon's VmRSS is sampled all along, and the peak
of the second half of the run may exceed the peak of the first by at most
20% or 4 MiB, whichever is more. Under ASan (its quarantine holds freed
memory) the numbers are printed but not checked; LeakSanitizer checks
the clean exit instead.

Usage: python3 tests/soak/test_fault_soak.py /path/to/strigil
"""
import json
import math
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak_lib import *  # noqa: E402,F401,F403
from e2e_lib import Runner, binary  # noqa: E402

BIN = binary()
PATIENTS = env_int("STRIGIL_SOAK_PATIENTS", 3)
WEEKS = env_int("STRIGIL_SOAK_WEEKS", 6)
RATE = float(os.environ.get("STRIGIL_SOAK_FAULT_RATE", "0.2"))
STEP_S = 1.2        # real seconds a virtual day may take to settle


# (kind, carried out before the answer is lost)
TG_KINDS = (("429", False), ("500", False), ("502", False),
            ("malformed", False), ("drop", False), ("slow", False),
            ("drop", True), ("500", True), ("malformed", True))
# Two things the Telegram adapter does not (yet) survive;
# STRIGIL_SOAK_TG_STRICT=1 tests them anyway:
# - an injected 429 bans the whole method in the fake, while the adapter
#   waits out a 429 in that chat only and goes on with the others: sends
#   and edits get their 429s from the fake's own per-chat rate limit
#   instead (a jump of virtual time lets the adapter send twice in a
#   second to a chat);
# - the adapter times a retry_after on the virtual clock, so a jump of
#   virtual time ends it at once: the soak moves time on only when no
#   retry_after is running at the fake, and a retry in one set while it
#   jumps (the crowd keeps writing) is answered 429 but no violation.
# (A send whose 200 answer is not {"ok":true} is retried, and a 429 on
# getUpdates waits its retry_after: both were found by this soak.)
TG_STRICT = os.environ.get("STRIGIL_SOAK_TG_STRICT") == "1"
TG_SEND_KINDS = tuple(k for k in TG_KINDS if TG_STRICT or k[0] != "429")
TG_OTHER_KINDS = tuple(k for k in TG_KINDS if TG_STRICT or
                       k != ("429", False))
MX_KINDS = ("429", "429h", "500", "drop", "drop_after", "slow", "malformed")


class FaultyTelegram(tf.Fake):
    """The Telegram fake, failing a share of all requests at random."""

    def __init__(self, rng, **kw):
        super().__init__(**kw)
        self.frng, self.rate, self.injected = rng, 0.0, []
        self.violation_times = []
        self.tl = threading.local()
        self.jumping, self.cut = False, set()

    def _take_fault(self, method):
        f = super()._take_fault(method)
        with self.cond:
            if f is None and self.frng.random() < self.rate:
                kind, after = self.frng.choice(
                    TG_SEND_KINDS if method in ("sendMessage",
                                                "editMessageText")
                    else TG_OTHER_KINDS)
                self.injected.append((method, kind, after))
                f = {"kind": kind, "count": 1, "method": method,
                     "retry_after": self.frng.randint(1, 2),
                     "delay": self.frng.uniform(0.2, 1.5), "after": after}
        self.tl.f = f
        return f

    def _flood_check(self, method, chat_id, group):
        """A 429 of the rate limit whose answer is then lost (a fault
        "after") sets no retry_after: the client never heard of it, and
        its retry is no violation. (The fake itself counts it as one.)
        One set while the soak jumps virtual time is cut short by the
        jump (see TG_STRICT above): _ban_check() forgives a retry in it."""
        f = getattr(self.tl, "f", None)
        with self.cond:
            bans = dict(self.bans)
            try:
                return super()._flood_check(method, chat_id, group)
            except tf.ApiError:
                if f is not None and f["after"]:
                    self.bans.clear()
                    self.bans.update(bans)
                elif self.jumping:
                    self.cut.update(s for s, u in self.bans.items()
                                    if bans.get(s) != u)
                raise

    def _ban_check(self, scopes, method, chat_id):
        """A request under a retry_after a jump of virtual time cut short
        is answered 429 again, but is no violation."""
        now = self.clock()
        for scope in scopes:
            until = self.bans.get(scope)
            if scope in self.cut and until is not None and now < until - 0.05:
                self.cut.discard(scope)
                ra = max(1, int(math.ceil(until - now)))
                raise tf.ApiError(429, "Too Many Requests: retry after %d"
                                  % ra, {"retry_after": ra})
        return super()._ban_check(scopes, method, chat_id)

    def jump(self, fn):
        """Runs fn, which jumps the daemon's virtual time: a retry_after
        set meanwhile (after the soak saw none running) is cut short by
        it, on the adapter's virtual clock."""
        with self.cond:
            self.jumping = True
        try:
            return fn()
        finally:
            with self.cond:
                self.jumping = False

    def _violate(self, kind, method, description, params=None):
        self.violation_times.append(time.time())
        super()._violate(kind, method, description, params)

    def lost_sends(self):
        """sendMessage requests carried out whose answer was lost."""
        with self.cond:
            return sum(1 for m, k, after in self.injected
                       if after and m == "sendMessage")


class FaultyMatrix(mf.Fake):
    """The Matrix fake, failing a share of all requests at random: the
    fake's own faults, plus a slow answer and a body that is no object."""

    def __init__(self, rng, **kw):
        super().__init__(**kw)
        self.frng, self.rate, self.injected = rng, 0.0, []
        self.tl = threading.local()

    def handle(self, h, method, raw_path, body):
        with self.cond:
            kind = None
            if self.frng.random() < self.rate:
                kind = self.frng.choice(MX_KINDS)
                self.injected.append(kind)
                ms = self.frng.randint(100, 1500)
        self.tl.f = None
        if kind in ("429", "500", "drop", "drop_after"):
            self.tl.f = dict(kind=kind, endpoint=None, room=None,
                             retry_after_ms=ms if kind == "429" else None,
                             header=None)
        elif kind == "429h":
            self.tl.f = dict(kind="429", endpoint=None, room=None,
                             retry_after_ms=None, header=1)
        elif kind == "slow":
            time.sleep(ms / 1000.0)
        out = super().handle(h, method, raw_path, body)
        if kind == "malformed" and out[0] == 200:
            # Carried out, and the answer garbled on its way back.
            return 200, "<html>502 Bad Gateway</html>", {}
        return out

    def _take_fault(self, endpoint, room):
        f = getattr(self.tl, "f", None)
        if f is not None:
            self.tl.f = None
            return f
        return super()._take_fault(endpoint, room)


class Sampler:
    """VmRSS of the daemon every 0.2 s, and the tokens' expiry every few
    seconds, until stopped."""

    def __init__(self, pid, mx, rng):
        self.pid, self.mx, self.rng = pid, mx, rng
        self.rss, self.expired = [], 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        next_expiry = time.monotonic() + self.rng.uniform(1, 4)
        while not self.stop.wait(0.2):
            v = rss_kib(self.pid)
            if v is not None:
                self.rss.append(v)
            if time.monotonic() >= next_expiry:
                self.mx.expire_tokens(soft=self.rng.random() < 0.75)
                self.expired += 1
                next_expiry = time.monotonic() + self.rng.uniform(1, 4)

    def end(self):
        self.stop.set()
        self.t.join(DEADLINE)


def settle_day(d, db, crowd):
    """Gives the patients and the outbox up to STEP_S real seconds to
    finish the day (not an assertion: the faults may hold things up)."""
    end = time.monotonic() + STEP_S
    while time.monotonic() < end:
        if crowd.idle() and db_query(db, "SELECT count(*) FROM outbox "
                                     "WHERE sent_at = 0")[0][0] == 0:
            return True
        time.sleep(0.05)
    return False


def dump(tmp, tg, mx):
    """The fakes' records, kept with the test's files when it fails."""
    with open(os.path.join(tmp, "telegram.json"), "w") as f:
        json.dump({"requests": tg.requests(), "events": tg.events(),
                   "injected": tg.injected,
                   "violations": list(zip(tg.violation_times,
                                          tg.violations()))}, f, indent=1, default=str)
    with open(os.path.join(tmp, "matrix.json"), "w") as f:
        json.dump({"requests": mx.requests(), "injected": mx.injected}, f,
                  indent=1, default=str)


def check_memory(r, rss, asan):
    half = len(rss) // 2
    if half < 10:
        r.check(False, "enough RSS samples", len(rss))
        return
    first, second = max(rss[:half]), max(rss[half:])
    bound = first + max(first // 5, 4096)
    print("    VmRSS peak: first half %d KiB, second half %d KiB (bound %d"
          "; %d samples)%s" % (first, second, bound, len(rss),
                               " -- ASan: not checked" if asan else ""))
    if not asan:
        r.check(second <= bound, "memory stays flat", (first, second))


def test_fault_soak(r, tmp):
    rng = random.Random(seed())
    asan = is_asan(BIN)
    with FaultyTelegram(random.Random(rng.random()), token=TOKEN) as tg, \
            FaultyMatrix(random.Random(rng.random())) as mx:
        env, db = setup(BIN, tmp, tg, mx,
                        STRIGIL_TELEGRAM_RATE_PER_CHAT="1",
                        STRIGIL_TELEGRAM_RATE_GLOBAL="30")
        d = Daemon(BIN, env)
        tg.rate = mx.rate = RATE
        sampler = Sampler(d.p.p.pid, mx, random.Random(rng.random()))
        tgs, mxs = make_patients(tg, mx, PATIENTS)
        wait_matrix_ready(db, mx, mxs)
        crowd = Crowd(tgs + mxs, random.Random(rng.random())).start()
        start_courses(tgs, mxs)
        wait_enrolled(db, 2 * PATIENTS)
        late = 0
        for day in range(WEEKS * 7):
            if not TG_STRICT:
                tg.wait_for(lambda: not any(
                    t > tg.clock() for t in tg.bans.values()), DEADLINE,
                    "every retry_after over")
            if TG_STRICT:
                d.wait(DAY)
            else:
                tg.jump(lambda: d.wait(DAY))
            if not settle_day(d, db, crowd):
                late += 1
        sampler.end()
        # Faults off: everything must get through now.
        tg.rate = mx.rate = 0.0
        crowd.end()
        settle(db, tg, mx, tgs, mxs)
        d.p.signal(15)
        r.eq(d.p.finish(), 0, "SIGTERM exits 0")
        dump(tmp, tg, mx)
        n_tg = len(tg.requests())
        n_mx = len(mx.requests())
        limited = sum(1 for q in tg.requests("sendMessage")
                      if q["status"] == 429 and q["fault"] is None)
        print("    %d sends refused by the fake's rate limit" % limited)
        print("    %d virtual days (%d not settled within %.1fs); requests "
              "failed: telegram %d of %d, matrix %d of %d; tokens expired "
              "%d times" % (WEEKS * 7, late, STEP_S, len(tg.injected), n_tg,
                            len(mx.injected), n_mx, sampler.expired))
        r.check(len(tg.injected) >= RATE * n_tg / 2,
                "a share of the Telegram requests failed",
                (len(tg.injected), n_tg))
        r.check(len(mx.injected) >= RATE * n_mx / 2,
                "a share of the Matrix requests failed",
                (len(mx.injected), n_mx))
        asked = check_inbound(r, db, tgs, "telegram")
        asked += check_inbound(r, db, mxs, "matrix")
        reminders = check_outbox(r, db)
        extra = check_tg_delivered(r, db, tg, tgs, tg.lost_sends())
        rows = check_mx_once(r, db, mx, mxs)
        done = db_query(db, "SELECT sum(sessions_done) FROM enrolments")[0][0]
        checkins = db_query(db, "SELECT count(*) FROM answers WHERE "
                            "questionnaire = 'checkin'")[0][0]
        print("    %d reminders, %d sessions done, %d check-in answers, %d "
              "/progress, %d matrix rows; telegram repeats %d (answers "
              "lost: %d)" % (reminders, done, checkins, asked, rows, extra,
                              tg.lost_sends()))
        # How far each course got depends on how fast the patients
        # answered through the faults (a day they had not settled in
        # time, under ASan on a loaded machine, is a missed session): only
        # that every course went on is checked, not how far.
        r.check(done >= PATIENTS and reminders >= 2 * PATIENTS * WEEKS
                // 3, "the courses went on", (done, reminders))
        check_violations(r, tg, mx)
        check_integrity(r, db)
        check_memory(r, sampler.rss, asan)


if __name__ == "__main__":
    sys.exit(Runner().run([test_fault_soak]))
