#!/usr/bin/env python3
"""End-to-end: the Telegram adapter in webhook mode.

The fake Bot API POSTs updates to the daemon's own HTTP server at
/telegram/webhook (as Telegram would through the clinic's TLS proxy). A
request without the secret, or with a wrong one, is refused and nothing is
stored; a flood of refused requests is counted in /metrics and logged a few
lines a minute, not one each; a redelivered update is answered 200 and
ignored; going back to polling deletes the webhook.

Usage: python3 tests/e2e/test_telegram_webhook.py /path/to/strigil
"""
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import Proc, Runner, binary, db_query, integrity, run  # noqa
from tg_e2e import (DEADLINE, TOKEN, Daemon, db_wait, drained,  # noqa
                    setup, tf, wait_text)

BIN = binary()
USER = 5000000001
SECRET = "s3cret_Token-for-the-hook"
HOOK = "/telegram/webhook"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def hook_env(tmp, fake, port):
    secret_file = os.path.join(tmp, "secret")
    with open(secret_file, "w") as f:
        f.write(SECRET + "\n")
    return setup(BIN, tmp, fake, STRIGIL_HTTP_PORT=port,
                 STRIGIL_TELEGRAM_WEBHOOK_URL="http://127.0.0.1:%d%s" % (
                     port, HOOK),
                 STRIGIL_TELEGRAM_WEBHOOK_SECRET_FILE=secret_file)


def stop(r, d):
    d.p.signal(signal.SIGTERM)
    r.eq(d.p.finish(), 0, "SIGTERM exits 0")


def test_webhook(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        port = free_port()
        env, db = hook_env(tmp, fake, port)
        d = Daemon(BIN, env)
        d.p.expect_err(r"event=telegram_webhook_set")
        info = fake.webhook_info()
        r.eq(info["url"], "http://127.0.0.1:%d%s" % (port, HOOK),
             "setWebhook with the configured URL")
        r.eq(info.get("allowed_updates"), ["message", "callback_query"],
             "and the updates the bot needs")
        fake.start_command(USER)
        wait_text(fake, USER, "Do you agree?")
        fake.press(USER, text="Yes")
        wait_text(fake, USER, "Which time zone")
        r.eq(fake.requests("getUpdates"), [], "no polling in webhook mode")
        r.check(all(x["secret"] == SECRET for x in fake.deliveries()),
                "Telegram sends the secret")
        drained(db)
        inbox = db_query(db, "SELECT count(*) FROM inbox")[0][0]
        sent = len(fake.requests("sendMessage"))
        upd = {"update_id": 999001, "message": {
            "message_id": 50, "date": 1, "text": "/help",
            "from": {"id": USER, "is_bot": False, "first_name": "P"},
            "chat": {"id": USER, "type": "private"}}}
        body = json.dumps(upd).encode()
        ct = {"Content-Type": "application/json"}
        st, _ = d.post(HOOK, body, ct)
        r.eq(st, 401, "no secret: 401")
        st, _ = d.post(HOOK, body, dict(
            ct, **{"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}))
        r.eq(st, 403, "a wrong secret: 403")
        st, _ = d.post(HOOK, body, dict(
            ct, **{"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]}))
        r.eq(st, 403, "a prefix of the secret: 403")
        r.eq(db_query(db, "SELECT count(*) FROM inbox")[0][0], inbox,
             "nothing stored from a refused request")
        # The real thing, then the same update again (a redelivery).
        good = dict(ct, **{"X-Telegram-Bot-Api-Secret-Token": SECRET})
        st, _ = d.post(HOOK, body, good)
        r.eq(st, 200, "the right secret: 200, once stored")
        r.eq(db_query(db, "SELECT count(*) FROM inbox WHERE external_id = "
                          "'u999001'"), [(1,)], "stored before the 200")
        wait_text(fake, USER, "Here is what I understand")
        st, _ = d.post(HOOK, body, good)
        r.eq(st, 200, "a redelivery is answered 200")
        st, _ = d.post(HOOK, b"{not json", good)
        r.eq(st, 400, "a body that is no update: 400")
        # The database cannot take it (another writer holds the lock past
        # the busy timeout): 500, so Telegram delivers it again.
        upd2 = dict(upd, update_id=999002)
        body2 = json.dumps(upd2).encode()
        con = sqlite3.connect(db, timeout=DEADLINE, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        st, _ = d.post(HOOK, body2, good)
        con.execute("ROLLBACK")
        con.close()
        r.eq(st, 500, "not stored: 500")
        st, _ = d.post(HOOK, body2, good)
        r.eq(st, 200, "delivered again: 200")
        wait_text(fake, USER, "Here is what I understand", 2)
        drained(db)
        r.eq(db_query(db, "SELECT count(*) FROM inbox")[0][0], inbox + 2,
             "a redelivered update_id is ignored")
        r.eq(len(fake.requests("sendMessage")), sent + 2,
             "and answered once")
        stop(r, d)
        r.check(SECRET not in d.p.stderr_text(), "the secret is never logged")
        r.check(TOKEN.split(":")[1] not in d.p.stderr_text(),
                "the token is never logged")
        # Back to polling: the webhook is deleted, updates come by poll.
        env2 = dict(env)
        del env2["STRIGIL_TELEGRAM_WEBHOOK_URL"]
        del env2["STRIGIL_TELEGRAM_WEBHOOK_SECRET_FILE"]
        env2["STRIGIL_HTTP_PORT"] = "0"
        d = Daemon(BIN, env2, "polling")
        fake.wait_polling(DEADLINE)
        r.eq(fake.webhook_info()["url"], "", "deleteWebhook before polling")
        fake.press(USER, text="1")
        wait_text(fake, USER, "What time of day")
        drained(db)
        stop(r, d)
        r.eq(fake.violations(), [], "the fake saw no spec violations")
        r.eq(integrity(db), "ok", "integrity_check")


def refused_lines(d):
    return [l for l in d.p.err if "webhook_refused" in l]


def counted(lines):
    return sum(int(m.group(1)) for m in
               (re.search(r" count=(\d+)", l) for l in lines) if m)


def metric(d, name):
    with urllib.request.urlopen(d.url("/metrics"), timeout=DEADLINE) as res:
        text = res.read().decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def test_refused_flood(r, tmp):
    """Anyone can POST to the webhook: what is refused (no secret, a
    wrong one, no such path) is counted, and logged at once for the first
    and then at most once a minute with the count, never once each."""
    with tf.Fake(token=TOKEN) as fake:
        port = free_port()
        env, db = hook_env(tmp, fake, port)
        d = Daemon(BIN, env)
        d.p.expect_err(r"event=telegram_webhook_set")
        guess = "guessed_Secret-4711"
        body = b'{"update_id": 1, "message": {"text": "flood-body-text"}}'
        ct = {"Content-Type": "application/json"}
        n = 0
        for i in range(40):
            st, _ = d.post(HOOK, body, ct)
            r.check(st == 401, "no secret: 401", st)
            st, _ = d.post(HOOK, body, dict(
                ct, **{"X-Telegram-Bot-Api-Secret-Token": guess}))
            r.check(st == 403, "a wrong secret: 403", st)
            st, _ = d.post(HOOK + "x", body, dict(
                ct, **{"X-Telegram-Bot-Api-Secret-Token": SECRET}))
            r.check(st == 404, "no such path: 404", st)
            n += 3
        r.eq(metric(d, "strigil_webhook_refused_total"), n,
             "/metrics counts every refusal")
        lines = refused_lines(d)
        r.check(1 <= len(lines) <= 2, "%d refusals, at most 2 log lines "
                "within the minute" % n, lines[:5])
        r.check(lines and "level=warn" in lines[0] and
                " count=1" in lines[0], "the first logged at once", lines[:1])
        stop(r, d)
        lines = refused_lines(d)
        r.check(len(lines) <= 3, "at most 3 lines in all", lines[:5])
        r.eq(counted(lines), n, "the lines carry every refusal's count")
        err = d.p.stderr_text()
        for needle in (SECRET, guess, "flood-body-text"):
            r.check(needle not in err, "never logged: %s" % needle)
        r.eq(db_query(db, "SELECT count(*) FROM inbox")[0][0], 0,
             "nothing stored")


def test_webhook_in_the_way(r, tmp):
    """Back to polling while a webhook stays set: a deleteWebhook answered
    429 is tried again after its retry_after, and a 409 that says a
    webhook is active deletes it again, until polling works."""
    with tf.Fake(token=TOKEN) as fake:
        port = free_port()
        env, db = hook_env(tmp, fake, port)
        d = Daemon(BIN, env)
        d.p.expect_err(r"event=telegram_webhook_set")
        stop(r, d)
        del env["STRIGIL_TELEGRAM_WEBHOOK_URL"]
        del env["STRIGIL_TELEGRAM_WEBHOOK_SECRET_FILE"]
        env["STRIGIL_HTTP_PORT"] = "0"
        fake.fault("429", method="deleteWebhook", retry_after=1)
        fake.fault("400", method="deleteWebhook")
        d = Daemon(BIN, env, "polling")
        fake.start_command(USER)
        wait_text(fake, USER, "Do you agree?")
        stop(r, d)
        r.eq([q["status"] for q in fake.requests("deleteWebhook")],
             [429, 400, 200], "deleteWebhook until it took")
        r.eq(fake.requests("getUpdates")[0]["status"], 409,
             "the poll the webhook stood in the way of")
        r.eq(fake.webhook_info()["url"], "", "the webhook is gone")
        r.eq(fake.violations(), [], "the fake saw no spec violations")


def test_webhook_config(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(BIN, tmp, fake, STRIGIL_TELEGRAM_WEBHOOK_URL=(
            "https://bot.example.org/telegram/webhook"))
        rc, out, err = run([BIN, "run"], env=env)
        r.check(rc != 0 and "telegram.webhook_secret" in err,
                "a webhook without a secret is refused", err)
        env["STRIGIL_TELEGRAM_WEBHOOK_SECRET"] = "bad secret!"
        rc, out, err = run([BIN, "run"], env=env)
        r.check(rc != 0 and "telegram.webhook_secret" in err and
                "bad secret" not in err,
                "a malformed secret is refused, not echoed", err)
        env["STRIGIL_TELEGRAM_WEBHOOK_SECRET"] = SECRET
        env["STRIGIL_TELEGRAM_WEBHOOK_URL"] = "http://bot.example.org/hook"
        rc, out, err = run([BIN, "run"], env=env)
        r.check(rc != 0 and "https" in err, "plain http only to loopback",
                err)
        r.eq(fake.requests(), [], "nothing was sent to Telegram")
        r.eq(fake.violations(), [], "the fake saw no spec violations")


if __name__ == "__main__":
    sys.exit(Runner().run([
        test_webhook,
        test_refused_flood,
        test_webhook_in_the_way,
        test_webhook_config,
    ]))
