#!/usr/bin/env python3
"""End-to-end tests of `strigil backup FILE` and of restoring a backup.

A backup taken while the daemon is busy writing (a stream of console
messages) passes integrity_check and holds every row committed before it
started; the daemon is not disturbed. Restored as the database of a fresh
data folder, the daemon knows the patient (/today answers, no /start). An
existing FILE is refused without --force.

Usage: python3 tests/e2e/test_backup.py /path/to/strigil
Prints "N passed, N failed" last; exits 1 on a failure.
"""
import os
import re
import shutil
import signal
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (REPO, Proc, Runner, binary, clean_env, db_query,  # noqa
                     integrity, mini_protocol, run)

BIN = binary()
SUMMARY = re.compile(r"^backup: \S+ -> (\S+): (\d+) bytes, (\d+) pages, "
                     r"(\d+) tables, (\d+) rows, integrity ok$")


def setup(tmp, data):
    pdir = os.path.join(tmp, "protocols")
    if not os.path.isdir(pdir):
        os.mkdir(pdir)
        mini_protocol(os.path.join(pdir, "mini.lua"))
    db = os.path.join(tmp, data, "strigil.db")
    env = clean_env(STRIGIL_CONFIG=os.path.join(REPO, "config",
                                                "strigil.conf.lua"),
                    STRIGIL_DATABASE=db, STRIGIL_PROTOCOLS=pdir,
                    STRIGIL_DEFAULT_PROTOCOL="mini", STRIGIL_CONSOLE="true",
                    STRIGIL_TIMEZONE="UTC", STRIGIL_REMINDER_TIME="18:00",
                    STRIGIL_LANG_DIR=os.path.join(REPO, "scripts", "lang"),
                    STRIGIL_QUIET_HOURS_FROM="00:00",
                    STRIGIL_QUIET_HOURS_TO="00:00",
                    STRIGIL_LOG_LEVEL="info")
    return env, db


def start(env, name="strigil run"):
    p = Proc([BIN, "run"], env=env, name=name)
    p.expect_err(r"event=started mode=run")
    return p


def stop(r, p):
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "SIGTERM exits 0")


def enrol(r, p):
    r.contains(p.say("/start"), r"^bot> Hello! ", "welcome")
    p.say("yes")
    p.say("1")
    r.contains(p.say("1"), r"^bot> Thanks! I'll use the time zone", "setup")
    p.say("yes")
    r.contains(p.say("nothing special"), r"^bot> Thank you, I've noted",
               "screening done")
    r.contains(p.say("/today"), r"^bot> Your next session is planned for",
               "a session is planned")


def filler(db, n=3000):
    """Makes the database a few MB (audit rows of no patient), so the
    backup takes many steps while the daemon writes."""
    con = sqlite3.connect(db, timeout=60)
    try:
        with con:
            con.executemany("INSERT INTO events (patient_id, enrolment_id, "
                            "t, kind, data) VALUES (0, 0, 0, 'filler', ?)",
                            [("x" * 1000,) for _ in range(n)])
    finally:
        con.close()


def test_backup_while_writing(r, tmp):
    env, db = setup(tmp, "data")
    p = start(env)
    enrol(r, p)
    filler(db)
    p.sync()
    before = db_query(db, "SELECT count(*) FROM inbox")[0][0]
    patients = db_query(db, "SELECT id, chat FROM patients")

    # A stream of messages, running before, during and after the backup.
    stop_stream = threading.Event()
    sent = [0]

    def stream():
        while not stop_stream.is_set() and sent[0] < 5000:
            p.send("note %d" % sent[0])
            sent[0] += 1
            time.sleep(0.001)

    th = threading.Thread(target=stream, daemon=True)
    th.start()
    while sent[0] < 50:
        time.sleep(0.01)
    at_start = sent[0]
    out_file = os.path.join(tmp, "backups", "b1.db")
    os.mkdir(os.path.dirname(out_file))
    rc, out, err = run([BIN, "backup", out_file], env=env)
    at_end = sent[0]
    stop_stream.set()
    th.join()
    r.eq(rc, 0, "backup exits 0")
    m = r.contains(out.strip().split("\n"), SUMMARY.pattern, "summary line")
    if m:
        r.eq(m.group(1), out_file, "the summary names FILE")
        r.check(int(m.group(3)) > 64, "many pages, so many steps",
                m.group(0))
        tables = db_query(db, "SELECT count(*) FROM sqlite_master"
                          " WHERE type = 'table'")[0][0]
        r.check(tables >= 12, "the schema has its tables", tables)
        r.eq(m.group(4), str(tables), "every table")
        r.eq(int(m.group(2)), os.path.getsize(out_file), "size in bytes")
    r.check(at_end > at_start, "the daemon was fed while the backup ran",
            "%d -> %d" % (at_start, at_end))
    r.eq(err, "", "nothing on stderr")
    r.check(not os.path.exists(out_file + ".tmp"), "no FILE.tmp left")
    r.check(not os.path.exists(out_file + "-wal"), "one file, no -wal")
    r.eq(integrity(out_file), "ok", "the backup passes integrity_check")
    got = db_query(out_file, "SELECT count(*) FROM inbox")[0][0]
    r.check(got >= before, "every message committed before the backup "
            "is in it", "%d < %d" % (got, before))
    r.eq(db_query(out_file, "SELECT id, chat FROM patients"), patients,
         "the patient is in it")
    r.eq(db_query(out_file, "SELECT count(*) FROM events WHERE kind = "
                  "'filler'"), [(3000,)], "all of it")

    # The daemon carried on: it answers, and handled every line.
    out, t = p.sync()
    r.contains(p.say("/today"), r"^bot> ", "the daemon still answers")
    r.eq(db_query(db, "SELECT count(*) FROM inbox")[0][0],
         before + sent[0] + 1, "every streamed message handled")
    stop(r, p)
    r.lacks(p.err, r"event=db_error", "no database error in the daemon")
    r.eq(integrity(db), "ok", "the live database is sound")

    # Restore: a fresh data folder with the backup as its database.
    env2, db2 = setup(tmp, "restored")
    os.mkdir(os.path.dirname(db2))
    shutil.copy(out_file, db2)
    p = start(env2, "restored")
    out = p.say("/today")
    r.contains(out, r"^bot> Your next session is planned for",
               "the restored daemon knows the patient")
    r.lacks(out, r"/start", "no /start needed")
    stop(r, p)
    r.eq(integrity(db2), "ok", "the restored database is sound")


def test_existing_file(r, tmp):
    env, db = setup(tmp, "data")
    p = start(env)
    enrol(r, p)
    stop(r, p)
    out_file = os.path.join(tmp, "b.db")
    with open(out_file, "w") as f:
        f.write("precious\n")
    rc, out, err = run([BIN, "backup", out_file], env=env)
    r.eq(rc, 1, "an existing FILE: exit 1")
    r.check(re.search(r"b\.db exists: .*--force", err), "says why", err)
    with open(out_file) as f:
        r.eq(f.read(), "precious\n", "FILE untouched")
    r.check(not os.path.exists(out_file + ".tmp"), "no FILE.tmp")
    # --force overwrites it, and stale -wal/-shm of FILE go too.
    with open(out_file + "-wal", "w") as f:
        f.write("stale")
    rc, out, err = run([BIN, "backup", "--force", out_file], env=env)
    r.eq(rc, 0, "--force: exit 0")
    r.contains(out.split("\n"), SUMMARY.pattern, "summary")
    r.check(not os.path.exists(out_file + "-wal"), "the stale -wal is gone")
    r.eq(integrity(out_file), "ok", "integrity_check")
    r.eq(db_query(out_file, "SELECT count(*) FROM patients"), [(1,)],
         "the patient")
    # Health data: the copy and the database are for the owner only.
    r.eq(os.stat(out_file).st_mode & 0o077, 0, "the backup is private")
    r.eq(os.stat(db).st_mode & 0o077, 0, "the database is private")
    # Never the live database itself, not even with --force: the running
    # daemon would go on writing into deleted files.
    rc, out, err = run([BIN, "backup", "--force", db], env=env)
    r.eq(rc, 1, "the database itself: exit 1")
    r.check("is the database itself" in err, "says why", err)
    r.eq(integrity(db), "ok", "the database untouched")
    # Usage errors.
    rc, out, err = run([BIN, "backup"], env=env)
    r.eq(rc, 2, "no FILE: exit 2")
    rc, out, err = run([BIN, "backup", "a", "b"], env=env)
    r.eq(rc, 2, "two FILEs: exit 2")
    # No database: exit 1, nothing created.
    env_none = dict(env, STRIGIL_DATABASE=os.path.join(tmp, "none.db"))
    rc, out, err = run([BIN, "backup", os.path.join(tmp, "c.db")],
                       env=env_none)
    r.eq(rc, 1, "no database: exit 1")
    r.check(not os.path.exists(os.path.join(tmp, "none.db")),
            "the missing database is not created")
    r.check(not os.path.exists(os.path.join(tmp, "c.db")), "no backup")


if __name__ == "__main__":
    sys.exit(Runner().run([test_backup_while_writing, test_existing_file]))
