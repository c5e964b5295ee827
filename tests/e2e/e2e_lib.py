"""e2e_lib.py: helpers for the end-to-end tests of the real strigil binary.

Python 3 standard library only. Not a test itself (ctest runs test_*.py).

A Proc runs the binary with pipes on stdin, stdout and stderr; two reader
threads collect the output lines as they come. Tests never sleep and hope:
they wait, with a deadline, until an expected line appears. Deadlines are
generous (CI is a loaded 2-core machine) and only matter when a test fails.

In the console, "/time" is a barrier: lines are handled in order, so once
"-- it is now ..." is printed every reply to the lines sent before it has
been printed too. Proc.say() sends one line and returns exactly its replies.
"""
import datetime
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEADLINE = float(os.environ.get("STRIGIL_E2E_TIMEOUT", "60"))  # seconds
TIME_RE = re.compile(r"^-- it is now (\S+)$")
# The line that ends the console's answer to a /wait.
WAIT_END_RE = re.compile(r"^-- (it is now (\S+)|nothing is planned|usage: /wait.*"
                         r"|/wait works in .*)$")
_procs = []     # every Proc started, so a failed test leaves none running


def iso_ts(s):
    """Seconds since the epoch of "2026-03-02T08:00:00Z"."""
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())


def binary():
    if len(sys.argv) < 2:
        sys.exit("usage: %s /path/to/strigil" % sys.argv[0])
    return os.path.abspath(sys.argv[1])


def clean_env(**extra):
    """The environment without the caller's STRIGIL_* settings, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIGIL_")}
    # Tests run in parallel: each daemon takes a free port for its HTTP
    # server (it logs which) unless the test asks for another.
    env["STRIGIL_HTTP_PORT"] = "0"
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Timeout(AssertionError):
    pass


class Proc:
    def __init__(self, argv, env=None, cwd=REPO, name="strigil"):
        self.name = name
        self.argv = argv
        self.out = []
        self.err = []
        self.pos = 0        # stdout lines before this one are consumed
        self.errpos = 0
        self.cond = threading.Condition()
        self.closed = {"out": False, "err": False}
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env, cwd=cwd)
        _procs.append(self)
        self.threads = [
            threading.Thread(target=self._reader,
                             args=(self.p.stdout, self.out, "out"),
                             daemon=True),
            threading.Thread(target=self._reader,
                             args=(self.p.stderr, self.err, "err"),
                             daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _reader(self, f, lines, key):
        for raw in iter(f.readline, b""):
            with self.cond:
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.closed[key] = True
            self.cond.notify_all()

    # ---- input ----------------------------------------------------------

    def send(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass

    # ---- waiting for output ----------------------------------------------

    def _wait_line(self, lines, start, pattern, timeout, key):
        """Index and match of the first line from `start` matching."""
        rx = re.compile(pattern)
        end = time.monotonic() + (timeout or DEADLINE)
        i = start
        with self.cond:
            while True:
                while i < len(lines):
                    m = rx.search(lines[i])
                    if m:
                        return i, m
                    i += 1
                if self.closed[key]:
                    raise Timeout("%s: output ended without /%s/; last "
                                  "lines:\n%s" % (self.name, pattern,
                                                  self.tail(key)))
                left = end - time.monotonic()
                if left <= 0:
                    raise Timeout("%s: no /%s/ within %.0fs; last lines:\n%s"
                                  % (self.name, pattern, timeout or DEADLINE,
                                     self.tail(key)))
                self.cond.wait(left)

    def expect(self, pattern, timeout=None):
        """Waits for a stdout line matching; consumes up to it. The match."""
        i, m = self._wait_line(self.out, self.pos, pattern, timeout, "out")
        self.pos = i + 1
        return m

    def expect_err(self, pattern, timeout=None, consume=True):
        """Waits for a stderr line matching (from the last consumed)."""
        i, m = self._wait_line(self.err, self.errpos, pattern, timeout, "err")
        if consume:
            self.errpos = i + 1
        return m

    def sync(self, timeout=None):
        """Sends /time; returns (lines printed before its answer, time)."""
        start = self.pos
        self.send("/time")
        i, m = self._wait_line(self.out, start, TIME_RE.pattern, timeout,
                               "out")
        self.pos = i + 1
        with self.cond:
            return list(self.out[start:i]), m.group(1)

    def say(self, line, timeout=None):
        """Sends a line; returns the lines printed in reply to it."""
        self.send(line)
        return self.sync(timeout)[0]

    def wait(self, arg="", timeout=None):
        """Sends /wait [arg]; returns (lines printed, the time after), the
        time None if nothing was planned."""
        start = self.pos
        self.send(("/wait " + arg).strip())
        i, m = self._wait_line(self.out, start, WAIT_END_RE.pattern, timeout,
                               "out")
        self.pos = i + 1
        with self.cond:
            lines = list(self.out[start:i])
        if m.group(0).startswith("-- usage"):
            raise AssertionError("/wait %s: %s" % (arg, m.group(0)))
        if m.group(2) is None:
            lines.append(m.group(0))
        return lines, m.group(2)

    def tail(self, key="out", n=25):
        lines = self.out if key == "out" else self.err
        return "\n".join("    " + l for l in lines[-n:])

    def stdout_text(self):
        with self.cond:
            return "\n".join(self.out)

    def stderr_text(self):
        with self.cond:
            return "\n".join(self.err)

    # ---- ending -----------------------------------------------------------

    def signal(self, sig):
        self.p.send_signal(sig)

    def finish(self, timeout=None):
        """Waits for exit and for the readers; returns the exit code."""
        try:
            rc = self.p.wait(timeout=timeout or DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Timeout("%s did not exit within %.0fs" %
                          (self.name, timeout or DEADLINE))
        for t in self.threads:
            t.join(timeout or DEADLINE)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        for t in self.threads:
            t.join(DEADLINE)
        self.close_stdin()
        return self.p.returncode


def run(argv, env=None, timeout=None, input_text=None):
    """Runs to completion; (exit code, stdout, stderr)."""
    r = subprocess.run(argv, input=(input_text or "").encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, cwd=REPO, timeout=timeout or DEADLINE)
    return (r.returncode, r.stdout.decode("utf-8", "replace"),
            r.stderr.decode("utf-8", "replace"))


# ---- the database ----------------------------------------------------------

def db_query(path, sql, args=()):
    con = sqlite3.connect(path, timeout=DEADLINE)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def db_exec(path, sql, args=()):
    con = sqlite3.connect(path, timeout=DEADLINE)
    try:
        with con:
            cur = con.execute(sql, args)
            return cur.rowcount
    finally:
        con.close()


def integrity(path):
    """PRAGMA integrity_check and foreign_key_check; "ok" if both pass."""
    con = sqlite3.connect(path, timeout=DEADLINE)
    try:
        rows = con.execute("PRAGMA integrity_check").fetchall()
        res = ",".join(r[0] for r in rows)
        fk = con.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            res += " foreign keys: %r" % (fk,)
        return res
    finally:
        con.close()


# ---- protocols for the tests -------------------------------------------------

MINI = r'''-- A small protocol for the end-to-end tests.
return {
  id = "{ID}",
  version = {VERSION},
  title = "{TITLE}",
  course = { weeks = 6 },
  interval = { min_hours = 48, target_hours = 72 },
  pressure = { levels = { "light", "moderate", "firm" }, start = "light" },
  questionnaires = {
    screening = {
      { id = "skin", type = "yesno", text = "Is the skin over the area intact?", clear = "yes" },
      { id = "note", type = "text", text = "Anything your clinic should know? Write a few words." },
    },
    checkin = {
      { id = "soreness", type = "integer", min = 0, max = 10, text = "How sore is the area today, from 0 to 10?" },
      { id = "bruising", type = "integer", min = 0, max = 3, text = "How much bruising, from 0 to 3?" },
      { id = "redness", type = "yesno", text = "Is the skin still red?" },
      { id = "pain", type = "integer", min = 0, max = 10, text = "How much pain, from 0 to 10?" },
      { id = "flags", type = "choice", text = "Do you have any of these?", options = {
          { id = "none", text = "None of these" },
          { id = "numbness", text = "Numbness or tingling" },
          { id = "swelling", text = "Swelling that gets worse" } } },
    },
  },
  messages = { en = {
    rest_days = "Your skin needs a rest: your next session moves back by {days} days.",
  } },
  steps = { "Warm up the area for five minutes.", "Stroke along the muscle, 10 times." },
  on = {
    answered = function(ctx, ev)
      local a = ev.answers
      if ev.questionnaire == "screening" then
        if a.skin ~= true then
          ctx.escalate{ reason = "skin not intact at screening" }
          ctx.pause{ reason = "screening" }
          return
        end
        ctx.schedule{}
        return
      end
      if a.pain >= 7 or a.flags ~= "none" then
        ctx.escalate{ reason = "pain " .. a.pain .. ", flags " .. a.flags }
        ctx.pause{ reason = "red flag" }
        return
      end
      if a.soreness >= 6 or a.bruising >= 3 then
        ctx.state.tolerated = 0
        ctx.say("rest_days", { days = 3 })
        ctx.postpone{ hours = 72, reason = "soreness" }
        return
      end
      ctx.state.tolerated = (ctx.state.tolerated or 0) + 1
      if ctx.state.tolerated >= 2 then
        ctx.state.tolerated = 0
        ctx.step_pressure(1)
      end
      ctx.schedule{ hours = 72, from = "session" }
    end,
  },
}
'''


def mini_protocol(path, pid="mini", version=1, title="Mini course"):
    text = (MINI.replace("{ID}", pid).replace("{VERSION}", str(version))
            .replace("{TITLE}", title))
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- a tiny test runner -------------------------------------------------------

class Runner:
    """Runs test functions; each gets a fresh temp dir. Prints the summary
    line "N passed, N failed" and returns the exit code."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.current_failed = False

    def check(self, cond, what, detail=None):
        """A soft assertion: records a failure and carries on."""
        if not cond:
            self.current_failed = True
            print("    FAIL: %s" % what)
            if detail:
                print("      " + str(detail).replace("\n", "\n      "))
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, what, "got %r, want %r" % (got, want))

    def contains(self, lines, pattern, what=None):
        """Some line matches `pattern` (a regex); the match or None."""
        if isinstance(lines, str):
            lines = lines.split("\n")
        rx = re.compile(pattern)
        for l in lines:
            m = rx.search(l)
            if m:
                return m
        self.check(False, what or "expected /%s/" % pattern,
                   "in:\n" + "\n".join(lines[-30:]))
        return None

    def lacks(self, lines, pattern, what=None):
        if isinstance(lines, str):
            lines = lines.split("\n")
        rx = re.compile(pattern)
        bad = [l for l in lines if rx.search(l)]
        return self.check(not bad, what or "unexpected /%s/" % pattern,
                          "\n".join(bad[:10]))

    def run(self, tests):
        only = os.environ.get("STRIGIL_E2E_ONLY")
        for fn in tests:
            if only and only not in fn.__name__:
                continue
            tmp = tempfile.mkdtemp(prefix="strigil-e2e-")
            self.current_failed = False
            t0 = time.monotonic()
            try:
                fn(self, tmp)
            except Exception:
                self.current_failed = True
                print("    FAIL: exception")
                print("      " + traceback.format_exc().replace(
                    "\n", "\n      "))
            dt = time.monotonic() - t0
            while _procs:
                _procs.pop().kill()
            if self.current_failed:
                self.failed += 1
                print("FAIL %s (%.1fs; files kept in %s)" % (fn.__name__,
                                                              dt, tmp))
            else:
                self.passed += 1
                print("ok   %s (%.1fs)" % (fn.__name__, dt))
                shutil.rmtree(tmp, ignore_errors=True)
            sys.stdout.flush()
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0
