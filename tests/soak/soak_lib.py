"""soak_lib.py: what the crash soak and the fault soak share (not a test).

Both soaks run the real `strigil run` with the Telegram and the Matrix
adapters at once, against the two fakes (tests/fakes/), on the virtual
clock of `test_clock = true` (POST /test/wait moves it; see tests/e2e/
tg_e2e.py). The patients are a Crowd: a thread that reads the bot's
latest message in every chat and answers it as a patient would (consent,
zone, time, screening, /done on a reminder, the check-in questions), and
now and then asks /progress. Every message a patient writes is recorded,
so the end of a soak can hold the database against the fakes' records:

- inbound: every update / event a fake delivered is in the inbox, once;
- handled once: each /progress got exactly one progress reply queued;
- outbound: every outbox row went out (Telegram: at least once; Matrix:
  exactly one event per transaction id), every due reminder was queued
  and sent, the database passes PRAGMA integrity_check.

Settings (environment): STRIGIL_SOAK_SEED (random by default; printed).
Needs Debian's python3-yaml and python3-jsonschema for the Matrix fake.
"""
import collections
import os
import random
import re
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from e2e_lib import DEADLINE, db_query, integrity  # noqa: E402
from tg_e2e import TOKEN, Daemon, db_wait, setup as tg_setup  # noqa: E402
import matrix_fake as mf  # noqa: E402
import telegram_fake as tf  # noqa: E402

DAY = 86400
TG_USER0 = 5100000001
CLINIC = -1001234567890
# The replies to /progress (LIKE patterns): enrolled, or not yet.
PROGRESS_LIKE = ("Day % of %. Sessions done: %",
                 "You aren't following a course right now.%")


def mx_txn(prefix, row_id, created_at, body):
    """The txnId the Matrix adapter gives an outbox row's message
    (mx_send_part()): its id, creation time and an FNV-1a digest of its
    text."""
    h = 2166136261
    for b in body:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return "s%s-%d-%d-%08x" % (prefix, row_id, created_at, h)


def env_int(name, default):
    return int(os.environ.get(name, str(default)))


def seed():
    s = int(os.environ.get("STRIGIL_SOAK_SEED", str(int(time.time()))))
    print("seed %d (STRIGIL_SOAK_SEED=%d repeats it)" % (s, s))
    sys.stdout.flush()
    return s


def setup(bin_, tmp, tg, mx, **extra):
    """Environment and database path of a daemon on both fakes."""
    # Escalations (a patient's answers can raise one) go to a clinician
    # chat on each adapter.
    tg.add_group(CLINIC, "Clinic")
    clinic_room = mx.invite("@nurse:example.org", is_direct=False)
    pw = os.path.join(tmp, "mx-password")
    with open(pw, "w") as f:
        f.write(mx.password + "\n")
    opts = dict(STRIGIL_TEST_CLOCK="true", STRIGIL_LOG_LEVEL="info",
                STRIGIL_TELEGRAM_RATE_PER_CHAT="50",
                STRIGIL_TELEGRAM_RATE_GLOBAL="1000",
                STRIGIL_MATRIX_HOMESERVER=mx.base_url,
                STRIGIL_MATRIX_USER="bot",
                STRIGIL_MATRIX_PASSWORD_FILE=pw,
                STRIGIL_MATRIX_ALLOWED_INVITERS=":example.org",
                STRIGIL_MATRIX_POLL_TIMEOUT="20",
                STRIGIL_TELEGRAM_CLINICIAN_CHAT=str(CLINIC),
                STRIGIL_MATRIX_CLINICIAN_ROOM=clinic_room)
    opts.update(extra)
    return tg_setup(bin_, tmp, tg, **opts)


def is_asan(bin_):
    """Whether the binary was built with -fsanitize=address."""
    with open(bin_, "rb") as f:
        return b"__asan_init" in f.read()


def rss_kib(pid):
    """VmRSS of a process in KiB, or None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---- the patients ----------------------------------------------------------

def answer_for(text, rng):
    """What a patient answers to the bot's message, None if it asks
    nothing. Answers stay in range and never raise a red flag, so the
    courses go on."""
    table = (
        ("Write /start", "/start"),
        ("Do you agree?", "yes"),
        ("Which time zone", "1"),
        ("What time of day", "1"),
        ("Is the skin over the area intact?", "yes"),
        ("Anything your clinic should know?", "all fine"),
        ("Time for session", "/done"),
        ("How sore is the area today", str(rng.randint(0, 3))),
        ("How much bruising", str(rng.randint(0, 1))),
        ("Is the skin still red?", rng.choice(("yes", "no"))),
        ("How much pain", str(rng.randint(0, 3))),
        ("Do you have any of these?", "1"),
    )
    for needle, answer in table:
        if needle in text:
            return answer
    return None


class TgPatient:
    adapter = "telegram"

    def __init__(self, fake, user):
        self.fake, self.user = fake, user
        self.chat = str(user)
        self.written = []       # (external id, text)

    def write(self, text):
        u = self.fake.message(self.user, text)
        self.written.append(("u%d" % u["update_id"], text))

    def messages(self):
        """[(id, text)] of the bot's messages, oldest first."""
        return [(m["message_id"], m["text"]) for m in
                self.fake.sent(self.user) if not m["deleted"]]


class MxPatient:
    adapter = "matrix"

    def __init__(self, fake, user):
        self.fake, self.user = fake, user
        self.chat = fake.invite(user)   # the room is the patient's chat
        self.written = []

    def write(self, text):
        ev = self.fake.say(self.user, self.chat, text)
        self.written.append((ev["event_id"], text))

    def messages(self):
        return [(e["event_id"], e["content"].get("body", "")) for e in
                self.fake.bot_events(self.chat, "m.room.message")]


class Crowd:
    """A thread that reads the bot's new messages in every chat: it
    answers the newest question among them, and when none asks anything
    it asks /progress with probability `progress`."""

    def __init__(self, patients, rng, progress=0.3):
        self.patients, self.rng, self.progress = patients, rng, progress
        self.seen = {}          # chat -> id of the newest message read
        self.stop = threading.Event()
        self.error = None
        self.t = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.t.start()
        return self

    def unread(self, p):
        msgs = p.messages()
        ids = [m for m, _ in msgs]
        last = self.seen.get(p.chat)
        return msgs[ids.index(last) + 1:] if last in ids else msgs

    def step(self, p):
        new = self.unread(p)
        if not new:
            return
        self.seen[p.chat] = new[-1][0]
        for _, text in reversed(new):
            a = answer_for(text, self.rng)
            if a is not None:
                p.write(a)
                return
        if self.rng.random() < self.progress:
            p.write("/progress")

    def run(self):
        try:
            while not self.stop.is_set():
                for p in self.patients:
                    self.step(p)
                self.stop.wait(0.02)
        except Exception as e:      # raised again by end()
            self.error = e
            traceback.print_exc()
            sys.stdout.flush()

    def idle(self):
        """Every chat's messages read."""
        return all(p.chat in self.seen and not self.unread(p)
                   for p in self.patients)

    def end(self):
        self.stop.set()
        self.t.join(DEADLINE)
        if self.error is not None:
            raise self.error


def make_patients(tg, mx, n):
    tgs = [TgPatient(tg, TG_USER0 + i) for i in range(n)]
    mxs = [MxPatient(mx, "@p%d:example.org" % i) for i in range(n)]
    return tgs, mxs


def start_courses(tgs, mxs):
    """Telegram patients write first; Matrix patients invite the bot and
    the Crowd answers its welcome with /start."""
    for p in tgs:
        p.write("/start")


def wait_matrix_ready(db, mx, mxs):
    """The bot joined every room and stored its first sync token: from
    then on a restart resumes the stream (a first sync skips history)."""
    mx.wait_for(lambda: all(mx.membership(p.chat) == "join" for p in mxs),
                DEADLINE, "the bot joined every room")
    db_wait(db, "SELECT count(*) FROM kv WHERE key = 'matrix.next_batch'",
            lambda n: n == 1, "the first sync stored")


def wait_enrolled(db, n):
    db_wait(db, "SELECT count(*) FROM enrolments WHERE status = 'active'",
            lambda v: v >= n, "every patient enrolled")


def settle(db, tg, mx, tgs, mxs):
    """Everything the patients wrote is stored and the outbox is empty."""
    tg_ids = [int(e[1:]) for p in tgs for e, _ in p.written]
    if tg_ids:
        tg.wait_confirmed(max(tg_ids), DEADLINE)
    n_mx = sum(len(p.written) for p in mxs)
    db_wait(db, "SELECT count(*) FROM inbox WHERE adapter = 'matrix'",
            lambda v: v >= n_mx, "every Matrix message stored")
    db_wait(db, "SELECT count(*) FROM outbox WHERE sent_at = 0",
            lambda v: v == 0, "the outbox drained")


# ---- the checks ----------------------------------------------------------------

def check_inbound(r, db, patients, adapter):
    """Every message a patient wrote (and the fake delivered) is stored
    once, nothing else is, and each was handled once: one progress reply
    per /progress."""
    want = {e for p in patients for e, _ in p.written}
    got = db_query(db, "SELECT external_id, count(*) FROM inbox WHERE "
                   "adapter = ? GROUP BY 1", (adapter,))
    stored = {e: n for e, n in got}
    r.eq(sorted(want - set(stored))[:20], [],
         "%s: no message lost" % adapter)
    r.eq(sorted(set(stored) - want)[:20], [],
         "%s: no message made up" % adapter)
    r.eq([e for e, n in stored.items() if n != 1], [],
         "%s: none stored twice" % adapter)
    bad = []
    for p in patients:
        asked = sum(1 for _, t in p.written if t == "/progress")
        told = db_query(db, "SELECT count(*) FROM outbox WHERE adapter = ? "
                        "AND chat = ? AND (body LIKE ? OR body LIKE ?)",
                        (adapter, p.chat) + PROGRESS_LIKE)[0][0]
        if asked != told:
            bad.append((p.chat, asked, told))
    r.eq(bad, [], "%s: each /progress handled exactly once" % adapter)
    return sum(1 for p in patients for _, t in p.written
               if t == "/progress")


def check_outbox(r, db):
    """Every row went out, none was given up, every due job ran, and one
    reminder row per reminder event."""
    r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE sent_at = 0 OR "
                  "failed IS NOT NULL"), [(0,)],
         "every outbox row delivered, none given up")
    now = db_query(db, "SELECT value FROM kv WHERE key = 'test.clock'")
    now = int(now[0][0]) if now else 0
    r.eq(db_query(db, "SELECT count(*) FROM jobs WHERE status = 'pending' "
                  "AND due_at <= ?", (now,)), [(0,)],
         "no job left behind its due time")
    r.eq(db_query(db, "SELECT count(*) FROM jobs WHERE status = 'failed'"),
         [(0,)], "no job failed")
    rows = db_query(db, "SELECT count(*) FROM outbox WHERE meta LIKE "
                    "'%\"type\":\"reminder\"%'")[0][0]
    events = db_query(db, "SELECT count(*) FROM events WHERE kind = "
                      "'session_reminder'")[0][0]
    r.eq(rows, events, "one outbox row per reminder event")
    return rows


def reminder_rows(db, adapter):
    """{chat: [session number of each reminder row]}."""
    out = {}
    for chat, meta in db_query(db, "SELECT chat, meta FROM outbox WHERE "
                               "adapter = ? AND meta LIKE "
                               "'%\"type\":\"reminder\"%'", (adapter,)):
        n = int(re.search(r'"session":([0-9]+)', meta).group(1))
        out.setdefault(chat, []).append(n)
    return out


def check_tg_delivered(r, db, tg, tgs, lost_answers=0):
    """Telegram has no idempotency key: a send whose answer was lost (a
    kill, a dropped connection) may be repeated, never skipped. Each
    reminder row reached the fake; sends beyond the outbox's rows are at
    most `lost_answers` (None: not bounded, as after SIGKILLs)."""
    rem = reminder_rows(db, "telegram")
    missing = []
    extra = 0
    for p in tgs:
        texts = [m["text"] for m in tg.sent(p.user)]
        for n in rem.get(p.chat, []):
            if not any(t.startswith("Time for session %d," % n)
                       for t in texts):
                missing.append((p.chat, n))
        rows = db_query(db, "SELECT count(*) FROM outbox WHERE adapter = "
                        "'telegram' AND chat = ? AND (meta IS NULL OR meta "
                        "NOT LIKE '%\"type\":\"edit\"%')", (p.chat,))[0][0]
        sends = sum(1 for e in tg.events(p.user) if e["kind"] == "send")
        r.check(sends >= rows, "telegram: every row of chat %s sent" %
                p.chat, (sends, rows))
        extra += max(0, sends - rows)
    r.eq(missing, [], "telegram: every reminder reached the fake")
    # Row by row: each row's text reached its chat as often as it was
    # queued (the clinician's rows go to the clinic group).
    sent = collections.Counter((str(e["chat_id"]), e["text"])
                               for e in tg.events() if e["kind"] == "send")
    want = collections.Counter(
        (str(CLINIC) if chat == "@clinician" else chat, body)
        for chat, body in db_query(
            db, "SELECT chat, body FROM outbox WHERE adapter = 'telegram' "
            "AND (meta IS NULL OR meta NOT LIKE '%\"type\":\"edit\"%')"))
    lost = [(k[0], k[1][:40], n, sent[k]) for k, n in want.items()
            if sent[k] < n]
    r.eq(lost[:10], [], "telegram: every row's text reached its chat")
    if lost_answers is not None:
        r.check(extra <= lost_answers, "telegram: repeats only where an "
                "answer was lost", (extra, lost_answers))
    return extra


def check_mx_once(r, db, mx, mxs):
    """Matrix: exactly one event per outbox row (txnId s<prefix>-<row>),
    at most one poll each, no txnId twice, no reminder posted twice."""
    prefix = db_query(db, "SELECT value FROM kv WHERE key = "
                      "'matrix.txn_prefix'")[0][0]
    with mx.cond:
        evs = [e for room in mx.rooms.values() for e in room["events"]
               if e.get("_txn")]
    txns = {}
    for e in evs:
        txns[e["_txn"]] = txns.get(e["_txn"], 0) + 1
    r.eq(sorted(t for t, n in txns.items() if n > 1), [],
         "matrix: no transaction posted twice")
    rows = db_query(db, "SELECT id, created_at, CAST(body AS BLOB) FROM "
                    "outbox WHERE adapter = 'matrix'")
    bad = [i for (i, t, body) in rows
           if txns.get(mx_txn(prefix, i, t, bytes(body))) != 1]
    r.eq(bad[:20], [], "matrix: every outbox row posted exactly once")
    rem = reminder_rows(db, "matrix")
    dup = []
    for p in mxs:
        texts = mx.bot_texts(p.chat)
        for n in set(rem.get(p.chat, [])):
            posted = sum(1 for t in texts
                         if t.startswith("Time for session %d," % n))
            if posted != rem[p.chat].count(n):
                dup.append((p.chat, n, posted, rem[p.chat].count(n)))
    r.eq(dup, [], "matrix: each reminder posted once per row")
    return len(rows)


def check_violations(r, tg, mx):
    r.eq(tg.violations(), [], "telegram fake: no violations")
    r.eq(mx.violations(), [], "matrix fake: no violations")


def check_integrity(r, db):
    r.eq(integrity(db), "ok", "PRAGMA integrity_check")


__all__ = ["DAY", "DEADLINE", "Daemon", "Crowd", "TOKEN", "mf", "tf",
           "db_query", "db_wait", "env_int", "seed", "setup", "is_asan",
           "rss_kib", "make_patients", "start_courses", "wait_matrix_ready",
           "wait_enrolled", "settle", "check_inbound", "check_outbox",
           "check_tg_delivered", "check_mx_once", "check_violations",
           "check_integrity"]
