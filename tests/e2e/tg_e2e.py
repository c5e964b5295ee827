"""Helpers for the Telegram end-to-end tests (not a test itself).

The daemon runs `strigil run` against the fake Bot API
(tests/fakes/telegram_fake.py) with `test_clock = true`: virtual time that
POST /test/wait?seconds=N on its HTTP server moves on, running each job at
its own due time (as the console's /wait does). Tests wait on the fake or
the database with deadlines; they never sleep for a fixed time to let
something happen.
"""
import json
import os
import re
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from e2e_lib import (DEADLINE, REPO, Proc, clean_env, db_query,  # noqa
                     mini_protocol, run)
import telegram_fake as tf  # noqa

TOKEN = "123456789:AAtest-token_for_strigil"
CLINIC = -1001234567890
LISTENING = r"event=http_listening addr=127\.0\.0\.1 port=(\d+)"


def setup(bin_, tmp, fake, **extra):
    """Protocol folder, database and environment for one daemon."""
    pdir = os.path.join(tmp, "protocols")
    if not os.path.isdir(pdir):
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
                    STRIGIL_LOG_LEVEL="debug",
                    STRIGIL_TELEGRAM_TOKEN=TOKEN,
                    STRIGIL_TELEGRAM_API_URL=fake.base_url,
                    STRIGIL_TELEGRAM_POLL_TIMEOUT="20")
    env.update({k: str(v) for k, v in extra.items()})
    return env, db


class Daemon:
    """`strigil run`, its HTTP port, and the virtual clock."""

    def __init__(self, bin_, env, name="strigil"):
        self.p = Proc([bin_, "run"], env=env, name=name)
        m = self.p.expect_err(LISTENING, consume=False)
        self.port = int(m.group(1))
        self.p.expect_err(r"event=started mode=run")

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait(self, seconds):
        """Moves virtual time on; returns (now, jobs run)."""
        req = urllib.request.Request(
            self.url("/test/wait?seconds=%d" % seconds), data=b"",
            method="POST")
        with urllib.request.urlopen(req, timeout=DEADLINE) as res:
            v = json.loads(res.read())
        return v["now"], v["jobs"]

    def post(self, path, body, headers=None):
        """POSTs to the daemon; returns (status, body)."""
        req = urllib.request.Request(self.url(path), data=body,
                                     method="POST", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=DEADLINE) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def invite(bin_, env, *args):
    rc, out, err = run([bin_, "invite"] + list(args), env=env)
    if rc != 0:
        raise AssertionError("strigil invite failed: %s" % err)
    return re.search(r"^invite code: ([A-Za-z0-9_-]+)$", out, re.M).group(1)


def db_wait(db, sql, pred, what, args=()):
    """Polls the database until pred(first column) holds."""
    end = time.monotonic() + DEADLINE
    while True:
        v = db_query(db, sql, args)[0][0]
        if pred(v):
            return v
        if time.monotonic() > end:
            raise AssertionError("no %s within %.0fs (last %r)" % (
                what, DEADLINE, v))
        time.sleep(0.05)


def drained(db):
    db_wait(db, "SELECT count(*) FROM outbox WHERE sent_at = 0",
            lambda n: n == 0, "the outbox drained")


def wait_text(fake, chat, needle, count=1):
    """Waits until `count` bot messages in `chat` contain `needle`."""
    def have():
        got = [m for m in fake.sent(chat) if needle in m["text"]]
        return got if len(got) >= count else None
    return fake.wait_for(have, DEADLINE, "%d message(s) with %r" % (
        count, needle))


def count_text(fake, chat, needle):
    return sum(1 for m in fake.sent(chat) if needle in m["text"])


def buttons(msg):
    kb = (msg.get("reply_markup") or {}).get("inline_keyboard") or []
    return [[(b["text"], b["callback_data"]) for b in row] for row in kb]
