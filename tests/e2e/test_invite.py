#!/usr/bin/env python3
"""End-to-end tests of invite codes: `strigil invite`, then /start CODE.

Usage: python3 tests/e2e/test_invite.py /path/to/strigil

`strigil invite` writes to the database and reads the protocol folder of
the configuration (here STRIGIL_DATABASE and STRIGIL_PROTOCOLS, temp files);
`strigil chat --db` on the same database then enrols the console patient
through the code. The config file is a one-line temp file (defaults plus
the environment), so the working tree's config does not matter. A second
use of a single-use code by another patient is covered by the unit tests
(the console has one patient).
"""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (REPO, Proc, Runner, binary, clean_env, db_exec,  # noqa
                     db_query, mini_protocol, run)

BIN = binary()
START = "2026-03-02T08:00:00Z"
CODE_RE = re.compile(r"^invite code: ([A-Za-z0-9_-]{16})$", re.M)


def setup(tmp):
    """A protocol folder with "mini" (the default) and "knee", a database
    path and a config file; the environment for both commands."""
    folder = os.path.join(tmp, "protocols")
    os.mkdir(folder)
    mini_protocol(os.path.join(folder, "mini.lua"))
    mini_protocol(os.path.join(folder, "knee.lua"), pid="knee",
                  title="Knee course")
    # A config file of our own: the defaults, then the environment.
    conf = os.path.join(tmp, "strigil.conf.lua")
    with open(conf, "w") as f:
        f.write('language = "en"\n')
    db = os.path.join(tmp, "strigil.db")
    env = clean_env(STRIGIL_CONFIG=conf, STRIGIL_DATABASE=db,
                    STRIGIL_PROTOCOLS=folder, STRIGIL_DEFAULT_PROTOCOL="mini",
                    STRIGIL_TIMEZONE="UTC", STRIGIL_LANGUAGE="en",
                    STRIGIL_LANG_DIR="scripts/lang", STRIGIL_LOG_LEVEL="debug")
    return db, env


def invite(r, env, *args):
    rc, out, err = run([BIN, "invite"] + list(args), env=env)
    r.eq(rc, 0, "strigil invite %s" % " ".join(args))
    m = CODE_RE.search(out)
    r.check(m is not None, "prints a 16-character code", out + err)
    code = m.group(1) if m else "none"
    r.check("/start %s" % code in out, "says to send /start CODE", out)
    if "STRIGIL_TELEGRAM_USERNAME" in env:
        r.check("https://t.me/%s?start=%s" % (
                env["STRIGIL_TELEGRAM_USERNAME"].lstrip("@"), code) in out,
                "shows the bot's Telegram deep link", out)
    else:
        r.check("https://t.me/<bot>?start=%s" % code in out,
                "shows the Telegram deep link", out)
    r.check(re.search(r"^expires: +20\d\d-\d\d-\d\dT", out, re.M),
            "prints the expiry", out)
    r.check(code not in err, "the code is never logged", err)
    r.check(re.search(r"event=invite_created protocol=\S+ uses=-?\d+ "
                      r"expires=\S+$", err, re.M), "logs invite_created", err)
    return code


def chat(env, db):
    p = Proc([BIN, "chat", "--db", db, "--start", START], env=env,
             name="strigil chat")
    p.expect(r"^Send /start to begin")
    return p


def test_invite_enrols(r, tmp):
    db, env = setup(tmp)
    code = invite(r, env, "--protocol", "knee", "--clinician", "Dr Who",
                  "--note", "ward 3")
    rows = db_query(db, "SELECT protocol, clinician, note, uses_left,"
                    " expires_at - created_at FROM invites WHERE code = ?",
                    (code,))
    r.eq(rows, [("knee", "Dr Who", "ward 3", 1, 14 * 86400)],
         "the invite row: single use, 14 days")

    p = chat(env, db)
    out = p.say("/start %s" % code)
    r.contains(out, r'^bot> Hello! .*"Knee course"',
               "the code enrols on its protocol, not the default")
    p.say("1")
    p.say("1")
    out = p.say("1")
    r.contains(out, r"^bot> Thanks! I'll use the time zone UTC", "setup done")
    out = p.say("/start %s" % code)
    r.contains(out, r"^bot> You're already signed up", "already enrolled")
    p.close_stdin()
    p.finish()
    r.check(code not in p.stderr_text(), "the code is not in the chat's log",
            p.tail("err"))
    r.eq(db_query(db, "SELECT uses_left FROM invites WHERE code = ?",
                  (code,)), [(0,)], "one use taken")
    r.eq(db_query(db, "SELECT protocol, invite FROM enrolments"),
         [("knee", code)], "the course records its code")


def test_invite_refused(r, tmp):
    db, env = setup(tmp)
    rc, out, err = run([BIN, "invite", "--protocol", "nope"], env=env)
    r.eq(rc, 1, "an unknown protocol is refused")
    r.check("no protocol nope" in err, "says which protocol", err)
    rc, out, err = run([BIN, "invite", "--uses", "0"], env=env)
    r.eq(rc, 2, "--uses 0 is refused")
    # With the bot's username set, the real link.
    code = invite(r, dict(env, STRIGIL_TELEGRAM_USERNAME="@clinic_bot"),
                  "--unlimited", "--days", "3")   # default: mini
    rc, out, err = run([BIN, "invite"], env=dict(
        env, STRIGIL_TELEGRAM_USERNAME="bad name"))
    r.eq(rc, 2, "a username that is not one is refused")
    r.check("STRIGIL_TELEGRAM_USERNAME: must be a bot username" in err,
            "says why", err)
    r.eq(db_query(db, "SELECT protocol, uses_left, expires_at - created_at"
                  " FROM invites"), [("mini", -1, 3 * 86400)],
         "unlimited, 3 days, the default protocol")

    p = chat(env, db)
    out = p.say("/start not-a-code")
    r.contains(out, r"^bot> That invite code isn't valid", "unknown code")
    out = p.say("/start bad/code")
    r.contains(out, r"^bot> That invite code isn't valid", "wrong form")
    # The chat's virtual clock starts at START, before the code was made;
    # expire the code behind the daemon's back (WAL: a second writer).
    db_exec(db, "UPDATE invites SET expires_at = 1")
    out = p.say("/start %s" % code)
    r.contains(out, r"^bot> That invite code has expired", "expired code")
    p.close_stdin()
    p.finish()
    r.eq(db_query(db, "SELECT count(*) FROM enrolments"), [(0,)],
         "no course from a refused code")
    r.eq(db_query(db, "SELECT uses_left FROM invites"), [(-1,)],
         "nothing consumed")


def test_invite_while_running(r, tmp):
    """A code issued beside the running daemon (WAL, busy timeout) works
    at once in it."""
    db, env = setup(tmp)
    env["STRIGIL_CONSOLE"] = "true"
    p = Proc([BIN, "run"], env=env, name="strigil run")
    p.expect_err(r"event=started mode=run")
    code = invite(r, env, "--protocol", "knee", "--uses", "2")
    out = p.say("/start %s" % code)
    r.contains(out, r'^bot> Hello! .*"Knee course"', "enrolled while running")
    p.close_stdin()
    p.signal(signal.SIGTERM)
    p.finish()
    r.eq(db_query(db, "SELECT uses_left FROM invites"), [(1,)],
         "one of two uses taken")
    r.check(code not in p.stderr_text(), "the code is not in the daemon's log",
            p.tail("err"))


if __name__ == "__main__":
    sys.exit(Runner().run([
        test_invite_enrols,
        test_invite_refused,
        test_invite_while_running,
    ]))
