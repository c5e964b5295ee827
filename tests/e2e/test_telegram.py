#!/usr/bin/env python3
"""End-to-end: `strigil run` with the Telegram adapter against the fake Bot API.

The fake (tests/fakes/telegram_fake.py) runs in this process on a free port;
the daemon polls it with getUpdates and sends through sendMessage. Every test
ends with the fake's record of spec violations empty: every request was valid,
every 429's retry_after was respected, and no update was confirmed before it
was delivered. Tests wait on the fake with deadlines; they never sleep.

Usage: python3 tests/e2e/test_telegram.py /path/to/strigil
Prints "N passed, N failed" last; exits 1 on a failure.
"""
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from e2e_lib import (DEADLINE, REPO, Proc, Runner, binary, clean_env,  # noqa
                     db_exec, db_query, integrity, mini_protocol, run)
import telegram_fake as tf  # noqa

BIN = binary()
TOKEN = "123456789:AAtest-token_for_strigil"
USER = 5000000001           # beyond 32 bits: ids must stay exact


def setup(tmp, fake, **extra):
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
                    STRIGIL_LOG_LEVEL="debug",
                    STRIGIL_TELEGRAM_TOKEN=TOKEN,
                    STRIGIL_TELEGRAM_API_URL=fake.base_url,
                    STRIGIL_TELEGRAM_POLL_TIMEOUT="20", **extra)
    return env, db


def start(env, name="strigil"):
    p = Proc([BIN, "run"], env=env, name=name)
    p.expect_err(r"event=started mode=run")
    return p


def drained(fake, db):
    """Waits until every outbox row is marked sent."""
    db_wait(db, "SELECT count(*) FROM outbox WHERE sent_at = 0",
            lambda n: n == 0, "the outbox drained")


def db_wait(db, sql, pred, what):
    """Polls the database until pred(first column) holds. (The fake's
    wait_for() wakes on the fake's own events only, so it cannot wait for
    the database.)"""
    end = time.monotonic() + DEADLINE
    while True:
        v = db_query(db, sql)[0][0]
        if pred(v):
            return v
        if time.monotonic() > end:
            raise AssertionError("no %s within %.0fs (last %r)" % (
                what, DEADLINE, v))
        time.sleep(0.05)


def stop(r, p):
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "SIGTERM exits 0")


def texts(fake):
    return [m["text"] for m in fake.sent(USER)]


def wait_text(fake, needle, count=1):
    """Waits until `count` bot messages contain `needle`; returns them."""
    def have():
        got = [m for m in fake.sent(USER) if needle in m["text"]]
        return got if len(got) >= count else None
    return fake.wait_for(have, DEADLINE, "a message with %r" % needle)


def buttons(msg):
    kb = (msg.get("reply_markup") or {}).get("inline_keyboard") or []
    return [[(b["text"], b["callback_data"]) for b in row] for row in kb]


def once(r, fake, needle):
    n = sum(1 for t in texts(fake) if needle in t)
    r.eq(n, 1, "%r sent exactly once" % needle)


def no_violations(r, fake):
    r.eq(fake.violations(), [], "the fake saw no spec violations")


def onboard(r, fake):
    """/start, then consent, zone and reminder time by buttons."""
    fake.start_command(USER)
    consent = wait_text(fake, "Do you agree?")[-1]
    r.eq(buttons(consent), [[("Yes", "a:setup:1:yes"), ("No", "a:setup:1:no")]],
         "consent: yes and no side by side")
    fake.press(USER, data="a:setup:1:yes")
    zone = wait_text(fake, "Which time zone")[-1]
    r.eq(buttons(zone), [[("1", "a:setup:2:1")]], "zone: the suggestion")
    fake.press(USER, data="a:setup:2:1")
    wait_text(fake, "What time of day")
    fake.press(USER, data="a:setup:3:1")
    wait_text(fake, "Thanks! I'll use the time zone UTC")
    return consent


def screening_asked(r, fake, db):
    """Onboarded, the screening's first question out, the outbox empty."""
    onboard(r, fake)
    wait_text(fake, "Is the skin over the area intact?")
    drained(fake, db)


def test_onboarding_by_buttons(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        p = start(env)
        consent = onboard(r, fake)
        skin = wait_text(fake, "Is the skin over the area intact?")[-1]
        r.eq([len(row) for row in buttons(skin)], [2], "screening yes/no")
        # Answered by typing: the buttons stay, and are stale from now.
        fake.message(USER, "yes")
        wait_text(fake, "Anything your clinic should know?")
        fake.message(USER, "all fine")
        n_answers = 3
        fake.wait_for(lambda: len(fake.callback_answers()) >= n_answers,
                      DEADLINE, "answerCallbackQuery for every press")
        # Each pressed question shows the answer chosen, without buttons.
        edited = fake.wait_for(
            lambda: [m for m in fake.sent(USER) if m.get("edit_date")]
            if len([m for m in fake.sent(USER) if m.get("edit_date")]) >= 3
            else None, DEADLINE, "three questions edited")
        first = [m for m in fake.sent(USER)
                 if m["message_id"] == consent["message_id"]][0]
        r.check(first["text"].endswith("\u2713 Yes"),
                "the consent question shows the answer", first["text"])
        r.eq(buttons(first), [], "and its keyboard is gone")
        r.eq(len(edited), 3, "only the pressed questions were edited")
        # A press on the old screening button: answered, not handled.
        wait_text(fake, "noted that")
        drained(fake, db)
        before = len(texts(fake))
        fake.press(USER, message_id=skin["message_id"],
                   data="a:screening:1:yes")
        a = fake.wait_for(lambda: len(fake.callback_answers()) > n_answers
                          and fake.callback_answers(), DEADLINE,
                          "the stale press answered")
        r.check("already answered" in (a[-1].get("text") or ""),
                "a stale button is told so", a[-1])
        for q in ("Do you agree?", "Which time zone", "What time of day",
                  "Is the skin over the area intact?",
                  "Anything your clinic should know?"):
            once(r, fake, q)
        drained(fake, db)
        stop(r, p)
        r.eq(len(texts(fake)), before, "the stale press sent nothing")
        r.eq(db_query(db, "SELECT count(*) FROM inbox"), [(6,)],
             "the stale press never reached the engine")
        r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE sent_at = 0"),
             [(0,)], "the outbox is empty")
        r.eq(db_query(db, "SELECT chat FROM patients"), [(str(USER),)],
             "the patient's 64-bit chat id kept exact")
        no_violations(r, fake)
        r.eq(integrity(db), "ok", "integrity_check")


def test_429_and_500(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        p = start(env)
        fake.wait_polling(DEADLINE)
        fake.fault("429", method="sendMessage", retry_after=2)
        fake.start_command(USER)
        wait_text(fake, "Do you agree?")
        sends = fake.requests("sendMessage")
        r.eq([q["status"] for q in sends[:2]], [429, 200],
             "a 429, then the message after retry_after")
        fake.fault("500", method="sendMessage")
        fake.press(USER, data="a:setup:1:yes")
        wait_text(fake, "Which time zone")
        r.check(any(q["status"] == 500 for q in
                    fake.requests("sendMessage")), "a 500 was injected")
        once(r, fake, "Do you agree?")
        once(r, fake, "Which time zone")
        stop(r, p)
        no_violations(r, fake)
        r.check(TOKEN.split(":")[1] not in p.stderr_text(),
                "the token is never logged")


def test_restart_loses_and_repeats_nothing(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        p = start(env, "first")
        fake.start_command(USER)
        wait_text(fake, "Do you agree?")
        fake.press(USER, data="a:setup:1:yes")
        wait_text(fake, "Which time zone")
        drained(fake, db)
        stop(r, p)
        # While the daemon is down the patient goes on.
        fake.press(USER, data="a:setup:2:1")
        fake.message(USER, "/help")
        last = fake.message(USER, "/help")["update_id"]
        p2 = start(env, "second")
        wait_text(fake, "What time of day")
        fake.wait_confirmed(last, DEADLINE)
        fake.press(USER, data="a:setup:3:1")
        wait_text(fake, "Thanks! I'll use the time zone UTC")
        drained(fake, db)
        stop(r, p2)
        # Once more: updates confirmed or not, none is handled twice.
        p3 = start(env, "third")
        fake.message(USER, "/help")
        db_wait(db, "SELECT count(*) FROM inbox", lambda n: n >= 7,
                "the last message stored")
        drained(fake, db)
        stop(r, p3)
        r.eq(db_query(db, "SELECT count(*), count(DISTINCT external_id) "
                      "FROM inbox WHERE adapter = 'telegram'"), [(7, 7)],
             "every update stored once")
        for q in ("Do you agree?", "Which time zone", "What time of day",
                  "Thanks! I'll use"):
            once(r, fake, q)
        r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE sent_at = 0"),
             [(0,)], "the outbox is empty")
        no_violations(r, fake)
        r.eq(integrity(db), "ok", "integrity_check")


def help_meets(r, fake, env, db, kind, **fault):
    """A daemon with the screening asked, whose reply to /help has just
    met the fault `kind` at the fake's sendMessage."""
    p = start(env, "first")
    screening_asked(r, fake, db)
    n = len(fake.requests("sendMessage"))
    fake.fault(kind, method="sendMessage", **fault)
    fake.message(USER, "/help")
    fake.wait_requests("sendMessage", n + 1, DEADLINE)
    return p


def test_term_mid_send(r, tmp):
    """SIGTERM while a sendMessage is in flight waits for its answer: the
    row is marked sent, and the next start does not send it again."""
    help_text = "Here is what I understand"
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        p = help_meets(r, fake, env, db, "slow", delay=1.5)
        p.signal(signal.SIGTERM)
        p.expect_err(r"event=telegram_draining")
        r.eq(p.finish(), 0, "SIGTERM exits 0")
        r.check("event=telegram_drained" in p.stderr_text(),
                "the send in flight finished before the exit")
        r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE sent_at = 0"),
             [(0,)], "the reply in flight is marked sent")
        p2 = start(env, "second")
        fake.message(USER, "/help")
        wait_text(fake, help_text, 2)
        drained(fake, db)
        stop(r, p2)
        r.eq(sum(1 for t in texts(fake) if help_text in t), 2,
             "each /help answered once: nothing sent again after the stop")
        no_violations(r, fake)


def test_sent_but_not_recorded(r, tmp):
    """Telegram took a message but the database refused to record it (held
    by another writer past busy_timeout): the message is not sent again
    while the record waits, sending holds until it is recorded, and then
    goes on."""
    import sqlite3
    help_text = "Here is what I understand"

    def helps():
        return sum(1 for t in texts(fake) if help_text in t)

    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        p = help_meets(r, fake, env, db, "slow", delay=1.0)
        side = sqlite3.connect(db, isolation_level=None)
        side.execute("BEGIN EXCLUSIVE")
        try:
            # The record fails after busy_timeout (5 s); the old code then
            # took the row again at once and sent it a second time.
            end = time.monotonic() + DEADLINE
            while ("event=telegram_record_failed" not in p.stderr_text()
                   and helps() < 2 and time.monotonic() < end):
                time.sleep(0.05)
            r.check("event=telegram_record_failed" in p.stderr_text(),
                    "the failed record is logged")
            fake.message(USER, "/progress")
            r.eq(helps(), 1, "not sent again while the record waits")
        finally:
            side.execute("ROLLBACK")
            side.close()
        p.expect_err(r"event=telegram_recorded row=")
        wait_text(fake, "Day 1 of")
        drained(fake, db)
        stop(r, p)
        r.eq(helps(), 1, "the reply went once")
        r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE sent_at = 0"),
             [(0,)], "every row recorded as sent")
        no_violations(r, fake)


def test_429_kept_across_restart(r, tmp):
    """A chat under a 429's retry_after when the daemon stops still waits
    after the start: a reply queued meanwhile neither reaches Telegram
    before the retry_after runs out nor overtakes the one put off."""
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        p = help_meets(r, fake, env, db, "429", retry_after=4)
        db_wait(db, "SELECT count(*) FROM outbox WHERE sent_at = 0 AND "
                "not_before > created_at", lambda v: v == 1,
                "the reply put off")
        stop(r, p)
        fake.message(USER, "/progress")
        p2 = start(env, "second")
        wait_text(fake, "Day 1 of")
        drained(fake, db)
        stop(r, p2)
        t = texts(fake)
        first = [i for i, x in enumerate(t) if "Here is what I understand"
                 in x]
        then = [i for i, x in enumerate(t) if "Day 1 of" in x]
        r.check(len(first) == 1 and len(then) == 1 and first[0] < then[0],
                "the reply put off goes first", t[-3:])
        no_violations(r, fake)


def test_escalation_and_blocked(r, tmp):
    clinic = -1001234567890
    with tf.Fake(token=TOKEN) as fake:
        fake.add_group(clinic, "Clinic")
        env, db = setup(tmp, fake, STRIGIL_TELEGRAM_CLINICIAN_CHAT=clinic)
        p = start(env)
        onboard(r, fake)
        wait_text(fake, "Is the skin over the area intact?")
        fake.press(USER, data="a:screening:1:no")
        wait_text(fake, "Anything your clinic should know?")
        fake.message(USER, "it is scratched")
        esc = fake.wait_sent(clinic, 1, DEADLINE)
        r.check("skin not intact" in esc[0]["text"],
                "the escalation reaches the clinician chat", esc[0]["text"])
        drained(fake, db)
        # The patient blocks the bot while a reply waits out a 429.
        fake.fault("429", method="sendMessage", retry_after=2)
        n = len(fake.requests("sendMessage"))
        fake.message(USER, "/help")
        fake.wait_requests("sendMessage", n + 1, DEADLINE)
        fake.block(USER, notify=False)
        drained(fake, db)
        r.eq([q["status"] for q in fake.requests("sendMessage")[n:]],
             [429, 403], "429, then 403 once, and no more tries")
        r.eq(db_query(db, "SELECT unreachable FROM patients"), [(1,)],
             "a blocked bot marks the patient unreachable")
        r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE failed = "
                      "'blocked'"), [(1,)],
             "the message is recorded as not delivered, not as sent")
        stop(r, p)
        no_violations(r, fake)


def test_conflict_and_migration(r, tmp):
    import json
    import urllib.request
    clinic = -4001234567
    with tf.Fake(token=TOKEN) as fake:
        fake.add_group(clinic, "Clinic")
        env, db = setup(tmp, fake, STRIGIL_TELEGRAM_CLINICIAN_CHAT=clinic)
        p = start(env)
        fake.wait_polling(DEADLINE)
        # Another getUpdates for the same bot (a second daemon): the held
        # poll ends 409, and the adapter backs off, then polls again.
        req = urllib.request.Request(
            "%s/bot%s/getUpdates" % (fake.base_url, TOKEN),
            data=json.dumps({"timeout": 0, "limit": 1}).encode(),
            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=DEADLINE).read()
        p.expect_err(r"event=telegram_poll_failed reason=conflict "
                     r"status=409 retry_ms=\d+")
        fake.wait_polling(DEADLINE)
        # The clinic's group becomes a supergroup: alerts follow it.
        new = fake.migrate(clinic)
        p.expect_err(r"event=telegram_clinician_chat_migrated")
        onboard(r, fake)
        wait_text(fake, "Is the skin over the area intact?")
        fake.press(USER, data="a:screening:1:no")
        wait_text(fake, "Anything your clinic should know?")
        fake.message(USER, "it is scratched")
        esc = fake.wait_sent(new, 1, DEADLINE)
        r.check("skin not intact" in esc[0]["text"],
                "the escalation reaches the migrated chat", esc[0]["text"])
        r.eq(fake.sent(clinic), [], "nothing to the old id")
        drained(fake, db)
        stop(r, p)
        no_violations(r, fake)


def test_offset_kept(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        p = start(env, "first")
        fake.start_command(USER)
        last = fake.message(USER, "/help")["update_id"]
        wait_text(fake, "Here is what I understand")
        drained(fake, db)
        stop(r, p)
        r.eq(db_query(db, "SELECT value FROM kv WHERE key = "
                      "'telegram.offset'"), [(str(last + 1),)],
             "the offset past the last update, in the database")
        fake.clear_log()
        p = start(env, "second")
        fake.message(USER, "/help")
        wait_text(fake, "Here is what I understand", 2)
        polls = [q for q in fake.requests("getUpdates")
                 if q["status"] == 200]
        r.eq(polls[0]["params"].get("offset"), last + 1,
             "the first poll after a restart starts there")
        stop(r, p)
        no_violations(r, fake)


def test_numbers_out_of_range_refused(r, tmp):
    """A clinician chat id or a stored offset that is no 64-bit number
    stops the start with a clear message and changes nothing."""
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake, STRIGIL_TELEGRAM_CLINICIAN_CHAT=
                        "-99999999999999999999")
        rc, _, err = run([BIN, "run"], env=env)
        r.check(rc != 0, "a clinician chat out of range stops the start")
        r.check("telegram.clinician_chat: not a chat id" in err,
                "and says why", err[-400:])
        del env["STRIGIL_TELEGRAM_CLINICIAN_CHAT"]
        p = start(env)
        stop(r, p)
    db_exec(db, "INSERT OR REPLACE INTO kv (key, value, updated_at)"
            " VALUES ('telegram.offset', '99999999999999999999', 0)")
    # A fresh fake: the daemon above may have sent its first poll just
    # before its SIGTERM, and that poll is not this start's doing.
    with tf.Fake(token=TOKEN) as fake:
        env["STRIGIL_TELEGRAM_API_URL"] = fake.base_url
        rc, _, err = run([BIN, "run"], env=env)
        r.check(rc != 0, "a stored offset out of range stops the start")
        r.check("stored offset (kv telegram.offset) is not a number" in err,
                "and says why", err[-400:])
        r.eq(db_query(db, "SELECT value FROM kv WHERE key = "
                      "'telegram.offset'"), [("99999999999999999999",)],
             "the stored offset is left as it was")
        r.eq(fake.requests("getUpdates"), [], "nothing was fetched")


def test_update_ids_renumbered(r, tmp):
    """After a week without updates Telegram numbers them anew from a
    lower id: the next message is still handled, without a poll storm."""
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        p = start(env)
        screening_asked(r, fake, db)
        fake.renumber(1000)
        n = len(fake.requests("getUpdates"))
        fake.message(USER, "/help")
        wait_text(fake, "Here is what I understand")
        p.expect_err(r"event=telegram_update_ids_reset")
        fake.wait_confirmed(1000, DEADLINE)
        stop(r, p)
        r.check(len(fake.requests("getUpdates")) - n < 10,
                "polling goes on calmly",
                len(fake.requests("getUpdates")) - n)
        r.eq(db_query(db, "SELECT value FROM kv WHERE key = "
                      "'telegram.offset'"), [("1001",)],
             "the offset follows the new numbering")
        no_violations(r, fake)


def test_refused_message_dropped(r, tmp):
    """A message Telegram refuses for good (400) is recorded as not
    delivered and holds up nothing after it; a text of only white space
    is never sent; trailing white space makes no part of its own."""
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        p = start(env)
        screening_asked(r, fake, db)
        fake.fault("400", method="sendMessage")
        fake.message(USER, "/help")
        fake.message(USER, "/help")
        wait_text(fake, "Here is what I understand")
        drained(fake, db)
        p.expect_err(r"event=telegram_send_rejected")
        chat = db_query(db, "SELECT chat FROM patients")[0][0]
        for body in (" \n ", "x" * 4095 + "\n\n"):
            db_exec(db, "INSERT INTO outbox (patient_id, adapter, chat, "
                    "body, created_at, not_before) VALUES (1, 'telegram', "
                    "?, ?, 0, 0)", (chat, body))
        drained(fake, db)
        stop(r, p)
        r.eq(db_query(db, "SELECT failed, count(*) FROM outbox WHERE "
                      "failed IS NOT NULL GROUP BY 1 ORDER BY 1"),
             [("rejected", 1), ("undeliverable", 1)],
             "the refused one and the blank one, recorded as not delivered")
        r.eq(len([t for t in texts(fake) if "Here is what I understand" in t]),
             1, "the refused help was not sent again; the next one went")
        r.eq([len(t) for t in texts(fake) if t.startswith("xxx")], [4095],
             "trailing white space makes no part of its own")
        no_violations(r, fake)


# Texts over Telegram's 4,096 characters. The question breaks at a line;
# the help text has no line break and two bytes to a letter, so it is cut
# between letters.
LONG_QUESTION = ("Please read this before you answer. " * 30 + "\n") * 4 + \
    "Is the skin over the area intact?"
LONG_HELP = "Ça va très bien, merci. " * 400     # 10,400 bytes


def long_protocol(tmp):
    path = os.path.join(tmp, "protocols", "mini.lua")
    with open(path) as f:
        text = f.read()
    text = text.replace('"Is the skin over the area intact?"',
                        "[[%s]]" % LONG_QUESTION)
    text = text.replace("messages = { en = {",
                        "messages = { en = {\n    help = [[%s]]," % LONG_HELP)
    with open(path, "w") as f:
        f.write(text)


def test_long_text_in_parts(r, tmp):
    """A long text goes out in parts, each within the limit, the buttons
    under the last; a restart between parts sends the rest only."""
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        long_protocol(tmp)
        p = start(env)
        onboard(r, fake)
        wait_text(fake, "Is the skin over the area intact?")
        parts = [m for m in fake.sent(USER)
                 if "Please read this" in m["text"]]
        r.eq(len(parts), 2, "the question in two parts")
        r.eq(("".join(m["text"] for m in parts)), LONG_QUESTION,
             "the parts make up the question")
        r.eq([bool(buttons(m)) for m in parts], [False, True],
             "its buttons under the last part")
        drained(fake, db)
        # The second part of the help meets a 429; the daemon stops while
        # it waits, and the next one sends what is left.
        n = len(fake.requests("sendMessage"))
        fake.fault("429", method="sendMessage", retry_after=5, skip=1)
        fake.message(USER, "/help")
        fake.wait_requests("sendMessage", n + 2, DEADLINE)
        # The fake logs a request as it comes: wait for the daemon to
        # have taken the 429 (and stored the wait) before stopping it.
        p.expect_err(r"event=telegram_rate_limited")
        stop(r, p)
        r.eq([q["status"] for q in fake.requests("sendMessage")[n:]],
             [200, 429], "the first part went, the second met a 429")
        upto = db_query(db, "SELECT sent_upto, sent_at FROM outbox "
                        "WHERE body LIKE 'Ça va%'")
        r.check(len(upto) == 1 and 0 < upto[0][0] < len(LONG_HELP.encode())
                and upto[0][1] == 0, "the store knows where it stopped",
                upto)
        p = start(env)
        drained(fake, db)
        stop(r, p)
        got = [m["text"] for m in fake.sent(USER) if "Ça va" in m["text"]]
        r.eq(len(got), 3, "the help in three parts, none twice")
        r.eq("".join(got).strip(), LONG_HELP.strip(),
             "the parts make up the help")
        r.check(all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in got),
                "each within 4,096 characters")
        no_violations(r, fake)


def test_wrong_token(r, tmp):
    with tf.Fake(token=TOKEN) as fake:
        env, db = setup(tmp, fake)
        env["STRIGIL_TELEGRAM_TOKEN"] = "987654321:AAwrong-token"
        p = start(env)
        p.expect_err(r"event=telegram_unauthorized")
        stop(r, p)
        r.eq(p.stderr_text().count("event=telegram_unauthorized"), 1,
             "one clear log line")
        r.lacks(p.stderr_text(), "telegram_poll_failed",
                "no retrying after a 401")
        r.check("AAwrong-token" not in p.stderr_text(),
                "the token is never logged")
        no_violations(r, fake)


if __name__ == "__main__":
    sys.exit(Runner().run([
        test_onboarding_by_buttons,
        test_429_and_500,
        test_restart_loses_and_repeats_nothing,
        test_term_mid_send,
        test_sent_but_not_recorded,
        test_429_kept_across_restart,
        test_escalation_and_blocked,
        test_conflict_and_migration,
        test_offset_kept,
        test_numbers_out_of_range_refused,
        test_long_text_in_parts,
        test_update_ids_renumbered,
        test_refused_message_dropped,
        test_wrong_token,
    ]))
