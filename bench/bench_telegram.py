#!/usr/bin/env python3
"""Benchmark: the Telegram adapter end to end, the real daemon against the
fake Bot API (tests/fakes/telegram_fake.py). Prints numbers only.

  python3 bench/bench_telegram.py build-rel/strigil [patients [messages]]

1. Enrolment: `patients` (10,000) patients each send /start and their
   five setup and screening answers (six updates each), all through
   getUpdates: each update is stored in the inbox with the offset in one
   transaction, and the replies are queued in the outbox.
2. Throughput: `messages` (20,000) more updates from enrolled patients
   (/progress), timed from the first delivery until the stored offset
   (kv telegram.offset) passes the last one. Sending is throttled
   (telegram.rate_global = 1) so the figure is receiving: durably
   stored, replies queued. Reported per wall second and per CPU second
   of the daemon (the fake, in Python, runs on the other core and is the
   slower side of the two).
3. Peak RSS (VmHWM) of the daemon with those patients enrolled.
4. Idle: a new daemon on the same database, the outbox marked sent,
   60 s of nothing but a held long poll; its user+system CPU seconds.
"""
import http.server
import json
import os
import socket
import sqlite3
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import telegram_fake as tf  # noqa
from e2e_lib import Proc, clean_env, mini_protocol  # noqa

TOKEN = "123456789:AAbench-token"
BASE_USER = 5000000001
PENDING_MAX = 3000          # updates queued in the fake at a time
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def kv_offset(db):
    con = sqlite3.connect(db, timeout=60)
    try:
        row = con.execute("SELECT value FROM kv WHERE key = "
                          "'telegram.offset'").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def feed(fake, items, pending_max=PENDING_MAX):
    """Queues (user, text) pairs, keeping the fake's queue short (its
    getUpdates scans the whole queue). Returns the last update_id."""
    last = 0
    for i, (user, text) in enumerate(items):
        while i % 500 == 0 and len(fake.updates) > pending_max:
            time.sleep(0.002)
        last = fake.message(user, text)["update_id"]
    return last


def wait_offset(db, last):
    while kv_offset(db) <= last:
        time.sleep(0.05)


def start(env, name, fake):
    p = Proc([BIN, "run"], env=env, name=name)
    fake.wait_polling(120)
    return p


def phase(fake, db, p, items, label):
    """Feeds `items` and times them until the offset passes the last."""
    done = {}

    def run():
        done["last"] = feed(fake, items)
    th = threading.Thread(target=run)
    c0, t0 = cpu_seconds(p.p.pid), time.monotonic()
    th.start()
    th.join()
    wait_offset(db, done["last"])
    wall, cpu = time.monotonic() - t0, cpu_seconds(p.p.pid) - c0
    n = len(items)
    print("%-12s %7d updates  %6.2f s wall  %6.0f updates/s  "
          "%6.2f s CPU  %7.0f updates/CPU-s" % (label, n, wall, n / wall,
                                                cpu, n / max(cpu, 1e-9)))
    return n / wall, n / max(cpu, 1e-9)


def main():
    patients = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    messages = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    tmp = tempfile.mkdtemp(prefix="strigil-bench-tg-")
    pdir = os.path.join(tmp, "protocols")
    os.mkdir(pdir)
    mini_protocol(os.path.join(pdir, "mini.lua"))
    db = os.path.join(tmp, "s.db")
    with tf.Fake(token=TOKEN, rate_limits=False) as fake:
        env = clean_env(
            STRIGIL_CONFIG=os.path.join(REPO, "config", "strigil.conf.lua"),
            STRIGIL_DATABASE=db, STRIGIL_PROTOCOLS=pdir,
            STRIGIL_DEFAULT_PROTOCOL="mini", STRIGIL_CONSOLE="false",
            STRIGIL_TIMEZONE="UTC", STRIGIL_QUIET_HOURS_FROM="00:00",
            STRIGIL_QUIET_HOURS_TO="00:00",
            STRIGIL_LANG_DIR=os.path.join(REPO, "scripts", "lang"),
            STRIGIL_LOG_LEVEL="warn", STRIGIL_TELEGRAM_TOKEN=TOKEN,
            STRIGIL_TELEGRAM_API_URL=fake.base_url,
            STRIGIL_TELEGRAM_POLL_TIMEOUT="30",
            STRIGIL_TELEGRAM_RATE_GLOBAL="1")
        p = start(env, "bench", fake)
        users = [BASE_USER + i for i in range(patients)]
        enrol = [(u, t) for u in users for t in
                 ("/start", "yes", "1", "1", "yes", "fine")]
        phase(fake, db, p, enrol, "enrolment")
        # Queued while the daemon is down, so the fake (Python) need not
        # keep up: the daemon takes them 100 a poll as fast as it can.
        hwm0 = status_kib(p.p.pid, "VmHWM")
        p.signal(15)
        p.finish()
        msgs = [(users[i % patients], "/progress") for i in range(messages)]
        last = feed(fake, msgs, PENDING_MAX + messages)
        t0 = time.monotonic()
        p = Proc([BIN, "run"], env=env, name="bench2")
        wait_offset(db, last)
        wall, cpu = time.monotonic() - t0, cpu_seconds(p.p.pid)
        print("%-12s %7d updates  %6.2f s wall  %6.0f updates/s  "
              "%6.2f s CPU  %7.0f updates/CPU-s (queued beforehand; "
              "start-up included)" % ("messages", messages, wall,
                                      messages / wall, cpu,
                                      messages / max(cpu, 1e-9)))
        hwm = max(hwm0, status_kib(p.p.pid, "VmHWM"))
        rss = status_kib(p.p.pid, "VmRSS")
        con = sqlite3.connect(db, timeout=60)
        active = con.execute("SELECT count(*) FROM enrolments WHERE "
                             "status = 'active'").fetchone()[0]
        inbox = con.execute("SELECT count(*) FROM inbox").fetchone()[0]
        queued = con.execute("SELECT count(*) FROM outbox").fetchone()[0]
        con.close()
        p.kill()
        print("enrolled     %d active courses, %d updates in the inbox, "
              "%d replies queued" % (active, inbox, queued))
        print("peak RSS     %.1f MiB (VmHWM; %.1f MiB at the end)" % (
            hwm / 1024, rss / 1024))
        # Idle: nothing to send, nothing to receive.
        con = sqlite3.connect(db, timeout=60)
        con.execute("UPDATE outbox SET sent_at = 1 WHERE sent_at = 0")
        con.commit()
        con.close()
        p = start(env, "idle", fake)
        c0 = cpu_seconds(p.p.pid)
        time.sleep(60)
        idle = cpu_seconds(p.p.pid) - c0
        idle_rss = status_kib(p.p.pid, "VmHWM")
        p.kill()
        print("idle         %.2f CPU s over 60 s (%.3f%% of a core); "
              "peak RSS %.1f MiB" % (idle, idle / 60 * 100, idle_rss / 1024))
        print("database     %.1f MiB" % (os.path.getsize(db) / 1048576))
        burst(env, db, users, messages)


class Burst(http.server.ThreadingHTTPServer):
    """A Bot API that does nothing but hand out prepared updates, 100 a
    getUpdates, and say ok to everything else: the upper bound of what the
    daemon takes when the other side is not the limit."""
    daemon_threads = True

    def __init__(self, updates):
        self.updates = updates          # pre-encoded JSON, by update_id
        self.first = updates[0][0]
        super().__init__(("127.0.0.1", 0), BurstHandler)


class BurstHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.endswith("/getUpdates"):
            off = json.loads(body or b"{}").get("offset", 0)
            ups = self.server.updates
            i = max(0, off - self.server.first)
            got = [u for _, u in ups[i:i + 100]]
            if not got:
                time.sleep(0.5)
            out = b'{"ok":true,"result":[' + b",".join(got) + b"]}"
        else:
            out = (b'{"ok":true,"result":{"message_id":1,"date":0,'
                   b'"chat":{"id":1,"type":"private"},"text":"x"}}')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def burst(env, db, users, messages):
    """The same /progress messages from the same enrolled patients, from
    the Burst server instead of the fake."""
    first = kv_offset(db) + 1000
    ups = []
    for i in range(messages):
        uid, user = first + i, users[i % len(users)]
        ups.append((uid, json.dumps({"update_id": uid, "message": {
            "message_id": i + 1, "date": 0, "text": "/progress",
            "from": {"id": user, "is_bot": False, "first_name": "P"},
            "chat": {"id": user, "type": "private"}}}).encode()))
    srv = Burst(ups)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    env = dict(env, STRIGIL_TELEGRAM_API_URL="http://127.0.0.1:%d" %
               srv.server_address[1])
    t0 = time.monotonic()
    p = Proc([BIN, "run"], env=env, name="burst")
    wait_offset(db, first + messages - 1)
    wall, cpu = time.monotonic() - t0, cpu_seconds(p.p.pid)
    hwm = status_kib(p.p.pid, "VmHWM")
    p.kill()
    srv.shutdown()
    print("burst        %7d updates  %6.2f s wall  %6.0f updates/s  "
          "%6.2f s CPU  %7.0f updates/CPU-s  peak RSS %.1f MiB (a bare "
          "Bot API; start-up included)" % (messages, wall, messages / wall,
                                          cpu, messages / max(cpu, 1e-9),
                                          hwm / 1024))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: bench_telegram.py /path/to/strigil "
                 "[patients [messages]]")
    BIN = os.path.abspath(sys.argv[1])
    main()
