#!/usr/bin/env python3
"""End-to-end tests of hot reload: `strigil run` watches its protocols folder.

No SIGHUP anywhere here: editing a protocol file reloads it within a few
seconds (the daemon waits until the folder has been quiet for 300 ms); a
broken file is logged with file:line and the old version keeps running; a
new file is loaded; a deleted file keeps its protocol running. A patient
enrolled on version 1 keeps version 1 after version 2 lands (each version
answers with its own text), while a new enrolment gets version 2.

Usage: python3 tests/e2e/test_reload.py /path/to/strigil
Prints "N passed, N failed" last; exits 1 on a failure.
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (REPO, Proc, Runner, binary, clean_env, db_query,  # noqa
                     integrity, mini_protocol)

BIN = binary()
SOON = 10       # seconds: "within a few seconds", with room for a slow CI

# A protocol whose message handler answers with this version's own text.
TALK = '''-- talk: says which version is speaking
return {
  id = "talk",
  version = %(version)d,
  title = "Talk",
  course = { weeks = 6 },
  interval = { min_hours = 48 },
  pressure = { levels = { "light" } },
  steps = { "Rest." },
  messages = { en = { hi = "%(hi)s" } },
%(extra)s  on = {
    message = function(ctx, ev) ctx.say("hi") end,
  },
}
'''


def talk(path, version, hi, extra=""):
    with open(path, "w") as f:
        f.write(TALK % {"version": version, "hi": hi, "extra": extra})


def setup(tmp, default="mini"):
    pdir = os.path.join(tmp, "protocols")
    os.mkdir(pdir)
    db = os.path.join(tmp, "s.db")
    env = clean_env(STRIGIL_CONFIG=os.path.join(REPO, "config",
                                                "strigil.conf.lua"),
                    STRIGIL_DATABASE=db, STRIGIL_PROTOCOLS=pdir,
                    STRIGIL_DEFAULT_PROTOCOL=default, STRIGIL_CONSOLE="true",
                    STRIGIL_TIMEZONE="UTC", STRIGIL_REMINDER_TIME="18:00",
                    STRIGIL_LANG_DIR=os.path.join(REPO, "scripts", "lang"),
                    STRIGIL_QUIET_HOURS_FROM="00:00",
                    STRIGIL_QUIET_HOURS_TO="00:00",
                    STRIGIL_LOG_LEVEL="info")
    return env, db, pdir


def start(env, name="strigil run"):
    p = Proc([BIN, "run"], env=env, name=name)
    p.expect_err(r"event=watching path=")
    p.expect_err(r"event=started mode=run")
    return p


def stop(r, p, db):
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "SIGTERM exits 0")
    r.check(time.monotonic() - t0 < 5, "SIGTERM exits promptly",
            "%.1fs" % (time.monotonic() - t0))
    r.eq(integrity(db), "ok", "integrity_check")
    r.lacks(p.err, r"SIGHUP|event=reloaded ", "no SIGHUP reload happened")


def enrol(r, p):
    out = p.say("/start")
    r.contains(out, r"^bot> Hello! ", "welcome")
    p.say("yes")
    p.say("1")
    out = p.say("1")
    r.contains(out, r"^bot> Thanks! I'll use the time zone UTC", "set up")


def test_edit_reloads(r, tmp):
    env, db, pdir = setup(tmp)
    path = mini_protocol(os.path.join(pdir, "mini.lua"))
    p = start(env)
    r.contains(p.err, r"event=protocol_loaded protocol=mini version=1",
               "version 1 loaded")
    # A good edit, no signal: reloaded.
    t0 = time.monotonic()
    mini_protocol(path, version=2, title="Mini course two")
    p.expect_err(r"event=protocol_reloaded protocol=mini version=2\b",
                 timeout=SOON)
    r.check(time.monotonic() - t0 < SOON, "reloaded within a few seconds")
    out = p.say("/start")
    r.contains(out, r'^bot> Hello! .*"Mini course two"', "version 2 in use")

    # A broken edit: file:line in the log, version 2 stays.
    with open(path) as f:
        lines = f.read().split("\n")
    bad_line = 5
    lines[bad_line - 1] = "  title = \"broken\" ..,"
    with open(path, "w") as f:
        f.write("\n".join(lines))
    m = p.expect_err(r"event=protocol_reload_failed path=(\S+) error=(.*)$",
                     timeout=SOON)
    r.check(path in m.group(1), "the failing path is named", m.group(0))
    r.check(re.search(r"%s:%d: " % (re.escape(path), bad_line), m.group(2)),
            "the error names file:line", m.group(0))
    out = p.say("/help")
    r.contains(out, r"^bot> Here is what I understand:", "still answers")
    out = p.say("yes")
    r.contains(out, r"^bot> ", "the setup goes on on version 2")

    # A lower version is refused with a clear message.
    mini_protocol(path, version=1)
    m = p.expect_err(r"event=protocol_reload_failed path=\S+ error=(.*)$",
                     timeout=SOON)
    r.check("below version 2" in m.group(1), "version 1 after 2 refused",
            m.group(0))
    # The same version with another text, too.
    mini_protocol(path, version=2, title="Mini course two, edited")
    m = p.expect_err(r"event=protocol_reload_failed path=\S+ error=(.*)$",
                     timeout=SOON)
    r.check("raise `version`" in m.group(1), "changed text refused",
            m.group(0))
    # Fixed: reloaded, and the error is gone.
    mini_protocol(path, version=3, title="Mini course three")
    p.expect_err(r"event=protocol_reloaded protocol=mini version=3\b",
                 timeout=SOON)
    stop(r, p, db)
    r.eq(db_query(db, "SELECT version FROM protocol_versions WHERE "
                  "protocol = 'mini' ORDER BY version"), [(1,), (2,), (3,)],
         "each version's source is kept once")


def test_new_and_deleted_files(r, tmp):
    env, db, pdir = setup(tmp)
    mini_protocol(os.path.join(pdir, "mini.lua"))
    p = start(env)
    # Editors' temporary files are not protocols.
    with open(os.path.join(pdir, ".talk.lua.swp"), "w") as f:
        f.write("not lua")
    talk(os.path.join(pdir, "talk.lua"), 1, "Talk one here.")
    p.expect_err(r"event=protocol_loaded protocol=talk version=1\b",
                 timeout=SOON)
    # A new file that is broken: logged, nothing else changes.
    with open(os.path.join(pdir, "zz.lua"), "w") as f:
        f.write("return 42\n")
    m = p.expect_err(r"event=protocol_load_failed path=(\S+) error=(.*)$",
                     timeout=SOON)
    r.check("zz.lua" in m.group(1), "the broken new file is named",
            m.group(0))
    # Deleted: still running, and said so.
    os.unlink(os.path.join(pdir, "mini.lua"))
    p.expect_err(r"event=protocol_file_deleted protocol=mini .*"
                 r"keeps_running=1", timeout=SOON)
    enrol(r, p)
    out = p.say("/today")
    r.contains(out, r"^bot> Is the skin over the area intact\?",
               "the deleted file's protocol still runs (its screening)")
    stop(r, p, db)
    r.lacks(p.err, r"\.swp", "the swap file was never read")


def test_symlink_swap(r, tmp):
    """A Kubernetes ConfigMap updates its files by swapping a "..data"
    symlink: the change names no protocol file, and is still seen."""
    env, db, pdir = setup(tmp)
    v1 = os.path.join(pdir, "..v1")
    os.mkdir(v1)
    mini_protocol(os.path.join(v1, "mini.lua"))
    os.symlink("..v1", os.path.join(pdir, "..data"))
    os.symlink(os.path.join("..data", "mini.lua"),
               os.path.join(pdir, "mini.lua"))
    p = start(env)
    r.contains(p.err, r"event=protocol_loaded protocol=mini version=1",
               "version 1 loaded through the links")
    v2 = os.path.join(pdir, "..v2")
    os.mkdir(v2)
    mini_protocol(os.path.join(v2, "mini.lua"), version=2,
                  title="Mini course two")
    os.symlink("..v2", os.path.join(pdir, "..data_tmp"))
    os.rename(os.path.join(pdir, "..data_tmp"), os.path.join(pdir, "..data"))
    p.expect_err(r"event=protocol_reloaded protocol=mini version=2\b",
                 timeout=SOON)
    out = p.say("/start")
    r.contains(out, r'^bot> Hello! .*"Mini course two"', "version 2 in use")
    stop(r, p, db)


def test_patient_keeps_version(r, tmp):
    env, db, pdir = setup(tmp, default="talk")
    path = os.path.join(pdir, "talk.lua")
    talk(path, 1, "Talk one here.")
    p = start(env)
    enrol(r, p)
    out = p.say("hello")
    r.contains(out, r"^bot> Talk one here\.$", "version 1 speaks")

    talk(path, 2, "Talk two, the new one.")
    p.expect_err(r"event=protocol_reloaded protocol=talk version=2\b",
                 timeout=SOON)
    out = p.say("hello")
    r.contains(out, r"^bot> Talk one here\.$",
               "the patient enrolled on version 1 keeps version 1")
    # Logs come on another pipe than the replies: wait for them.
    p.expect_err(r"event=protocol_version_loaded protocol=talk version=1\b",
                 consume=False)

    # A new enrolment gets version 2.
    p.say("/stop")
    out = p.say("yes")
    r.contains(out, r"^bot> Your course has ended", "stopped")
    enrol(r, p)
    out = p.say("hello")
    r.contains(out, r"^bot> Talk two, the new one\.$", "new enrolment: v2")
    r.eq(db_query(db, "SELECT version FROM enrolments ORDER BY id"),
         [(1,), (2,)], "enrolments keep their versions")
    stop(r, p, db)

    r.eq(db_query(db, "SELECT count(*) FROM protocol_versions WHERE "
                  "protocol = 'talk'"), [(2,)], "both versions stored")


def helper(pdir, hi):
    with open(os.path.join(pdir, "lib", "words.lua"), "w") as f:
        f.write('return { hi = "%s" }\n' % hi)


def test_helper_edit(r, tmp):
    """A protocol's text is its file and its helpers (lib/): an edited
    helper is seen by the watch, refused under the same version, and with a
    higher version it speaks to new enrolments only."""
    env, db, pdir = setup(tmp, default="talk")
    os.mkdir(os.path.join(pdir, "lib"))
    path = os.path.join(pdir, "talk.lua")
    helper(pdir, "Words one.")
    talk(path, 1, '" .. require("words").hi .. "')
    p = start(env)
    r.contains(p.err, r"event=watching path=\S*/lib\b", "lib/ watched")
    enrol(r, p)
    out = p.say("hello")
    r.contains(out, r"^bot> Words one\.$", "the helper speaks")

    helper(pdir, "Words changed.")
    p.expect_err(r"event=protocol_reload_failed path=\S+talk\.lua "
                 r"error=.*version 1 of 'talk' was loaded before with a "
                 r"different text \(of the file or a helper", timeout=SOON)
    out = p.say("hello")
    r.contains(out, r"^bot> Words one\.$", "version 1 runs on")

    talk(path, 2, '" .. require("words").hi .. "')
    p.expect_err(r"event=protocol_reloaded protocol=talk version=2\b",
                 timeout=SOON)
    out = p.say("hello")
    r.contains(out, r"^bot> Words one\.$",
               "the patient on version 1 keeps its helper")
    p.say("/stop")
    p.say("yes")
    enrol(r, p)
    out = p.say("hello")
    r.contains(out, r"^bot> Words changed\.$", "a new enrolment: version 2")
    stop(r, p, db)
    r.eq(db_query(db, "SELECT version, source FROM protocol_helpers "
                  "ORDER BY version"),
         [(1, 'return { hi = "Words one." }\n'),
          (2, 'return { hi = "Words changed." }\n')],
         "each version's helper stored")


def test_lib_made_later(r, tmp):
    """A lib/ made after the start (or removed and made again) is watched
    from then on: an edit of a helper in it is seen without a signal."""
    env, db, pdir = setup(tmp, default="talk")
    path = os.path.join(pdir, "talk.lua")
    lib = os.path.join(pdir, "lib")
    talk(path, 1, "Talk one.")
    p = start(env)
    r.check(re.search(r"event=watching path=\S*/lib\b", p.stderr_text())
            is None, "no lib/ yet: not watched")
    os.mkdir(lib)
    p.expect_err(r"event=watching path=\S*/lib\b", timeout=SOON)
    helper(pdir, "Words one.")
    talk(path, 2, '" .. require("words").hi .. "')
    p.expect_err(r"event=protocol_reloaded protocol=talk version=2\b",
                 timeout=SOON)
    helper(pdir, "Words changed.")
    p.expect_err(r"event=protocol_reload_failed path=\S+talk\.lua "
                 r"error=.*version 2 of 'talk' was loaded before with a "
                 r"different text", timeout=SOON)
    os.remove(os.path.join(lib, "words.lua"))
    os.rmdir(lib)
    os.mkdir(lib)
    p.expect_err(r"event=watching path=\S*/lib\b", timeout=SOON)
    # The folder's own watch saw lib/ go and come: let its rescan pass,
    # so what follows can only be seen through lib/'s new watch.
    time.sleep(1)
    helper(pdir, "Words again.")
    p.expect_err(r"event=protocol_reload_failed path=\S+talk\.lua "
                 r"error=.*version 2 of 'talk'", timeout=SOON)
    stop(r, p, db)


def test_upgrade_declared(r, tmp):
    env, db, pdir = setup(tmp, default="talk")
    path = os.path.join(pdir, "talk.lua")
    talk(path, 1, "Talk one here.")
    p = start(env)
    enrol(r, p)
    talk(path, 2, "Talk two takes over.",
         extra="  upgrade = { from = { 1 } },\n")
    p.expect_err(r"event=protocol_reloaded protocol=talk version=2\b",
                 timeout=SOON)
    out = p.say("hello")
    r.contains(out, r"^bot> Talk two takes over\.$",
               "the patient moved to version 2")
    p.expect_err(r"event=protocol_upgraded protocol=talk patient=\d+ "
                 r"from=1 to=2", consume=False)
    stop(r, p, db)
    r.eq(db_query(db, "SELECT version FROM enrolments"), [(2,)],
         "the enrolment is on version 2")
    r.eq(db_query(db, "SELECT data FROM events WHERE kind = "
                  "'protocol_upgraded'"),
         [('{"protocol":"talk","from":1,"to":2}',)], "audit event")


if __name__ == "__main__":
    sys.exit(Runner().run([test_edit_reloads, test_new_and_deleted_files,
                           test_symlink_swap,
                           test_patient_keeps_version,
                           test_helper_edit, test_lib_made_later,
                           test_upgrade_declared]))
