#!/usr/bin/env python3
"""End-to-end tests of `strigil run` and the command line: signals, reload,
configuration errors, `strigil check`, `strigil --version`.

Usage: python3 tests/e2e/test_daemon.py /path/to/strigil
Each test has its own temp dir with a config file, a protocol folder and a
database. Prints "N passed, N failed" last; exits 1 on a failure.
"""
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (REPO, Proc, Runner, binary, clean_env, db_query,  # noqa
                     integrity, mini_protocol, run)

BIN = binary()
SECRET = "my knee hums like a fridge 5512"
LOG_LINE = re.compile(r"^ts=\S+ level=(debug|info|warn|error) ")

CONFIG = '''-- e2e test config
database = "{tmp}/config.db"
protocols = "{tmp}/nowhere"
default_protocol = "mini"
lang_dir = "{repo}/scripts/lang"
language = "en"
timezone = "UTC"
reminder_time = "18:00"
quiet_hours = {{ from = "00:00", to = "00:00" }}
log_level = "info"
console = true
'''


def setup(tmp, **extra):
    """A config file, a protocol folder with mini.lua; the environment."""
    conf = os.path.join(tmp, "strigil.conf.lua")
    with open(conf, "w") as f:
        f.write(CONFIG.format(tmp=tmp, repo=REPO))
    pdir = os.path.join(tmp, "protocols")
    os.mkdir(pdir)
    mini_protocol(os.path.join(pdir, "mini.lua"))
    env = dict(STRIGIL_CONFIG=conf,
               STRIGIL_DATABASE=os.path.join(tmp, "s.db"),
               STRIGIL_PROTOCOLS=pdir,
               STRIGIL_DEFAULT_PROTOCOL="mini",
               STRIGIL_CONSOLE="true")
    env.update(extra)
    return clean_env(**env)


def subdir(tmp, name):
    path = os.path.join(tmp, name)
    os.mkdir(path)
    return path


def start(tmp, env, name="strigil run"):
    p = Proc([BIN, "run"], env=env, name=name)
    p.expect_err(r"event=started mode=run")
    return p


def enrol(r, p):
    out = p.say("/start")
    r.contains(out, r'^bot> Hello! .*"Mini course', "welcome")
    p.say("yes")
    p.say("1")
    out = p.say("1")
    r.contains(out, r"^bot> Thanks! I'll use the time zone UTC", "setup done")
    p.say("yes")
    out = p.say(SECRET)
    r.contains(out, r"^bot> Thank you, I've noted that\.$", "screening done")


def db_consistent(r, db, what):
    r.eq(integrity(db), "ok", "integrity_check " + what)
    r.eq(db_query(db, "SELECT count(*) FROM inbox WHERE status != 'done'"),
         [(0,)], "every inbox message handled " + what)
    r.eq(db_query(db, "SELECT count(*) FROM outbox WHERE sent_at = 0"),
         [(0,)], "every outbox message sent " + what)


def check_stderr(r, p):
    err = p.stderr_text()
    r.check(SECRET not in err, "patient text never in the log")
    bad = [l for l in p.err if not LOG_LINE.match(l)]
    r.check(not bad, "every stderr line is a key=value log line", bad[:5])


# ---- signals ------------------------------------------------------------------

def stop_by(r, tmp, sig, name):
    env = setup(tmp)
    db = os.path.join(tmp, "s.db")
    p = start(tmp, env)
    enrol(r, p)
    out = p.say("/today")
    r.contains(out, r"^bot> Your next session is planned for", "/today")
    out = p.say("/wait 1h")
    r.contains(out, r"^-- /wait works in `strigil chat`", "/wait needs chat")
    # A question left open when the signal comes.
    p.say("/stop")
    p.signal(sig)
    r.eq(p.finish(), 0, "%s exits 0" % name)
    r.contains(p.err, r"event=stopping reason=%s" % name, "logged the signal")
    r.contains(p.err, r"event=stopped", "logged the stop")
    check_stderr(r, p)
    db_consistent(r, db, "after " + name)
    r.eq(db_query(db, "SELECT status FROM enrolments"), [("active",)],
         "the course is active")
    r.eq(db_query(db, "SELECT ask_q FROM patients"), [("stop",)],
         "the open question is kept")
    r.eq(db_query(db, "SELECT count(*) FROM jobs WHERE status = 'pending' "
                  "AND kind = 'session'"), [(1,)], "one session planned")
    r.check(not os.path.exists(os.path.join(tmp, "config.db")),
            "STRIGIL_DATABASE overrides the config file")
    # The next start carries on with the open question.
    p = start(tmp, env, "strigil run 2")
    out = p.say("no")
    r.contains(out, r"^bot> Good, your course carries on\.$",
               "the answer after a restart")
    p.close_stdin()
    r.eq(p.finish(), 0, "end of input exits 0")
    r.contains(p.err, r"event=stopping reason=end_of_input", "logged")
    db_consistent(r, db, "after end of input")


def test_sigterm(r, tmp):
    stop_by(r, tmp, signal.SIGTERM, "SIGTERM")


def test_sigint(r, tmp):
    stop_by(r, tmp, signal.SIGINT, "SIGINT")


def test_sighup_reload(r, tmp):
    env = setup(tmp)
    db = os.path.join(tmp, "s.db")
    path = os.path.join(tmp, "protocols", "mini.lua")
    p = start(tmp, env)
    r.contains(p.err, r"event=protocol_loaded protocol=mini version=1",
               "loaded version 1")
    enrol(r, p)
    # A good change: reloaded with the new version.
    mini_protocol(path, version=2, title="Mini course two")
    p.signal(signal.SIGHUP)
    p.expect_err(r"event=protocol_reloaded protocol=mini version=2\b")
    p.expect_err(r"event=reloaded failed=0")
    # A syntax error: reload fails with file:line, the old version stays.
    with open(path) as f:
        lines = f.read().split("\n")
    bad_line = 5
    lines[bad_line - 1] = "  title = \"broken\" ..,"
    with open(path, "w") as f:
        f.write("\n".join(lines))
    p.signal(signal.SIGHUP)
    m = p.expect_err(r"event=protocol_reload_failed path=(\S+) error=(.*)$")
    r.check(path in m.group(1), "the failing path is named", m.group(0))
    r.check(re.search(r"%s:%d: " % (re.escape(path), bad_line), m.group(2)),
            "the error names file:line", m.group(0))
    p.expect_err(r"event=reloaded failed=1")
    out = p.say("/help")
    r.contains(out, r"^bot> Here is what I understand:", "/help still works")
    out = p.say("/progress")
    r.contains(out, r"^bot> Day 1 of 42\.", "/progress still works")
    # A declarative error (an unknown field) is found with its line too.
    mini_protocol(path, version=3, title="Mini course three")
    with open(path) as f:
        text = f.read()
    text = text.replace("  steps = {", "  colour = \"red\",\n  steps = {")
    with open(path, "w") as f:
        f.write(text)
    colour_line = text.split("\n").index("  colour = \"red\",") + 1
    p.signal(signal.SIGHUP)
    m = p.expect_err(r"event=protocol_reload_failed path=\S+ error=(.*)$")
    r.check(re.search(r"mini\.lua:%d: unknown field 'colour'" % colour_line,
                      m.group(1)), "unknown field with file:line", m.group(0))
    # New enrolments still get version 2, the last good one.
    p.say("/stop")
    out = p.say("yes")
    r.contains(out, r"^bot> Your course has ended", "stopped")
    out = p.say("/start")
    r.contains(out, r'^bot> Hello! .*"Mini course two"',
               "the last good version is in use")
    r.eq(db_query(db, "SELECT version FROM enrolments ORDER BY id"),
         [(1,), (2,)], "enrolments record the version they started on")
    # Fixed again: reloaded.
    mini_protocol(path, version=4)
    p.signal(signal.SIGHUP)
    p.expect_err(r"event=protocol_reloaded protocol=mini version=4\b")
    out = p.say("/help")
    r.contains(out, r"^bot> Here is what I understand:", "/help after reload")
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "SIGTERM exits 0")
    r.eq(integrity(db), "ok", "integrity_check")
    check_stderr(r, p)


# ---- configuration errors -----------------------------------------------------

def test_bad_config(r, tmp):
    env = setup(tmp)
    conf = env["STRIGIL_CONFIG"]
    with open(conf) as f:
        good = f.read()
    lines = good.split("\n")
    lines.insert(2, 'colour = "red"')      # line 3
    with open(conf, "w") as f:
        f.write("\n".join(lines))
    rc, out, err = run([BIN, "run"], env=env)
    r.eq(rc, 2, "unknown setting: exit 2")
    r.check(re.search(r"%s:3: unknown setting 'colour'" % re.escape(conf),
                      err), "unknown setting with file:line", err)
    rc, out, err = run([BIN, "check", os.path.join(tmp, "protocols",
                                                   "mini.lua")], env=env)
    r.eq(rc, 2, "a bad config stops `check` too")
    lines = good.split("\n")
    lines[1] = "database = 5"
    with open(conf, "w") as f:
        f.write("\n".join(lines))
    rc, out, err = run([BIN, "run"], env=env)
    r.eq(rc, 2, "wrong type: exit 2")
    r.check(re.search(r"%s:2: " % re.escape(conf), err),
            "wrong type with file:line", err)
    with open(conf, "w") as f:
        f.write("database = \n")
    rc, out, err = run([BIN, "run"], env=env)
    r.eq(rc, 2, "syntax error: exit 2")
    r.check(re.search(r"%s:\d+: " % re.escape(conf), err),
            "syntax error with file:line", err)
    # -c beats STRIGIL_CONFIG.
    with open(conf, "w") as f:
        f.write(good)
    other = os.path.join(tmp, "other.conf.lua")
    with open(other, "w") as f:
        f.write("nonsense = 1\n")
    rc, out, err = run([BIN, "-c", other, "check",
                        os.path.join(tmp, "protocols", "mini.lua")], env=env)
    r.eq(rc, 2, "-c picks the file")
    r.check("other.conf.lua:1: unknown setting 'nonsense'" in err,
            "-c file named", err)
    rc, out, err = run([BIN, "-c", os.path.join(tmp, "missing.lua"), "run"],
                       env=env)
    r.eq(rc, 2, "missing config file: exit 2")
    r.check("missing.lua" in err, "missing config file named", err)


def test_env_errors(r, tmp):
    env = setup(tmp, STRIGIL_FOO="1")
    rc, out, err = run([BIN, "run"], env=env)
    r.eq(rc, 2, "unknown STRIGIL_FOO: exit 2")
    r.check("STRIGIL_FOO" in err and "unknown" in err,
            "unknown variable named", err)
    env = setup(subdir(tmp, "b"), STRIGIL_LOG_LEVEL="loud")
    rc, out, err = run([BIN, "run"], env=env)
    r.eq(rc, 2, "bad STRIGIL_LOG_LEVEL: exit 2")
    r.check("STRIGIL_LOG_LEVEL" in err, "bad variable named", err)
    env["STRIGIL_LOG_LEVEL"] = "warn"
    env["STRIGIL_QUIET_HOURS_FROM"] = "25:00"
    rc, out, err = run([BIN, "run"], env=env)
    r.eq(rc, 2, "bad STRIGIL_QUIET_HOURS_FROM: exit 2")
    r.check("STRIGIL_QUIET_HOURS_FROM" in err, "named", err)


def test_start_failures(r, tmp):
    env = setup(tmp)
    # A broken protocol at start: the daemon does not start.
    path = os.path.join(tmp, "protocols", "mini.lua")
    with open(path, "a") as f:
        f.write("\nthis is not lua\n")
    rc, out, err = run([BIN, "run"], env=env)
    r.check(rc != 0, "a broken protocol stops the start", rc)
    r.check(re.search(r"mini\.lua:\d+: ", err), "with file:line", err)
    mini_protocol(path)
    # A default protocol that is not there, with two loaded.
    mini_protocol(os.path.join(tmp, "protocols", "other.lua"), pid="other")
    env["STRIGIL_DEFAULT_PROTOCOL"] = "nope"
    rc, out, err = run([BIN, "run"], env=env)
    r.check(rc != 0, "an unknown default protocol stops the start", rc)
    r.check("nope" in err, "the default protocol is named", err)
    env["STRIGIL_PROTOCOLS"] = os.path.join(tmp, "missing")
    rc, out, err = run([BIN, "run"], env=env)
    r.check(rc != 0, "a missing protocol folder stops the start", rc)
    r.check("missing" in err, "the folder is named", err)
    # The database folder is created.
    env = setup(subdir(tmp, "c"))
    db = os.path.join(tmp, "c", "data", "x.db")
    env["STRIGIL_DATABASE"] = db
    rc, out, err = run([BIN, "run"], env=env, input_text="/start\n")
    r.eq(rc, 0, "run with input from a pipe ends at its end")
    r.contains(out, r'^bot> Hello! ', "answered /start")
    r.check(os.path.exists(db), "database folder created")
    r.eq(integrity(db), "ok", "integrity_check")
    # Input from a regular file works as well.
    inp = os.path.join(tmp, "input.txt")
    with open(inp, "w") as f:
        f.write("/help\n/today")            # no newline at the end
    with open(inp) as fin:
        res = subprocess.run([BIN, "run"], stdin=fin, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=REPO,
                             timeout=60)
    out = res.stdout.decode()
    r.eq(res.returncode, 0, "run with input from a file")
    r.contains(out, r"^bot> Here is what I understand", "/help from a file")
    r.contains(out, r"^bot> Hello! To begin, send /start|^bot> You're|"
               r"^bot> .*Do you agree", "the last line without a newline")


# ---- the command line -----------------------------------------------------------

def test_check(r, tmp):
    env = setup(tmp)
    good = os.path.join(tmp, "protocols", "mini.lua")
    rc, out, err = run([BIN, "check", good], env=env)
    r.eq(rc, 0, "check a good protocol: exit 0")
    r.check(re.search(r"mini\.lua: ok: mini version 1, 2 questionnaire\(s\), "
                      r"3 pressure level\(s\), 42-day course", out),
            "check says what it found", out)
    bad = os.path.join(tmp, "bad.lua")
    with open(bad, "w") as f:
        f.write("return {\n  id = \"bad\",\n  version = \n}\n")
    rc, out, err = run([BIN, "check", good, bad], env=env)
    r.eq(rc, 1, "check with a bad protocol: exit 1")
    r.check("mini.lua: ok" in out, "the good one still checked", out)
    r.check(re.search(r"bad\.lua:\d+: ", err), "the bad one with file:line",
            err)
    noversion = os.path.join(tmp, "nov.lua")
    with open(good) as f:
        text = f.read()
    with open(noversion, "w") as f:
        f.write(text.replace("  version = 1,\n", ""))
    rc, out, err = run([BIN, "check", noversion], env=env)
    r.eq(rc, 1, "a protocol without a version: exit 1")
    r.check("version is required" in err, "says why", err)
    rc, out, err = run([BIN, "check", os.path.join(tmp, "missing.lua")],
                       env=env)
    r.eq(rc, 1, "a missing file: exit 1")
    r.check("missing.lua" in err, "the missing file named", err)
    rc, out, err = run([BIN, "check"], env=env)
    r.eq(rc, 2, "check without a file: exit 2 (usage)")
    r.check("usage" in err, "usage", err)
    default = os.path.join(REPO, "scripts", "protocols", "iastm_home.lua")
    if os.path.exists(default):
        rc, out, err = run([BIN, "check", default], env=clean_env())
        r.eq(rc, 0, "the default protocol checks clean")


def test_version_and_usage(r, tmp):
    for arg in ("--version", "version"):
        rc, out, err = run([BIN, arg], env=clean_env())
        r.eq(rc, 0, "%s: exit 0" % arg)
        r.check(re.match(r"^strigil \d+\.\d+\.\d+ \(Lua 5\.4\.\d+, libuv "
                         r"\d+\.\d+\.\d+, SQLite 3\.\d+\.\d+\)$", out.strip()),
                "%s output" % arg, out)
    rc, out, err = run([BIN, "--help"], env=clean_env())
    r.eq(rc, 0, "--help: exit 0")
    r.check("usage: strigil" in out, "--help prints usage", out)
    rc, out, err = run([BIN], env=clean_env())
    r.eq(rc, 2, "no command: exit 2")
    r.check("usage: strigil" in err, "usage on stderr", err)
    rc, out, err = run([BIN, "frobnicate"], env=clean_env())
    r.eq(rc, 2, "unknown command: exit 2")
    r.check("unknown command 'frobnicate'" in err, "named", err)
    rc, out, err = run([BIN, "chat", "--bogus"], env=clean_env())
    r.eq(rc, 2, "chat with an unknown option: exit 2")
    rc, out, err = run([BIN, "chat", "--start", "yesterday"],
                       env=clean_env())
    r.eq(rc, 2, "chat with a bad --start: exit 2")
    r.check("ISO-8601" in err, "says what --start wants", err)


if __name__ == "__main__":
    sys.exit(Runner().run([
        test_sigterm,
        test_sigint,
        test_sighup_reload,
        test_bad_config,
        test_env_errors,
        test_start_failures,
        test_check,
        test_version_and_usage,
    ]))
