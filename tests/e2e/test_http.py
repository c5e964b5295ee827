#!/usr/bin/env python3
"""End-to-end tests of the daemon's HTTP server: /healthz, /metrics, junk
requests, and `strigil health`.

Usage: python3 tests/e2e/test_http.py /path/to/strigil
Each test runs `strigil run` with the HTTP server on port 0 (a free port,
read back from the event=http_listening log line) and its own temp dir.
Prints "N passed, N failed" last; exits 1 on a failure.
"""
import http.client
import json
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (DEADLINE, REPO, Proc, Runner, binary, clean_env,  # noqa
                     db_query, mini_protocol, run)

BIN = binary()
SECRET = "my knee hums like a fridge 5512"
LISTENING = r"event=http_listening addr=127\.0\.0\.1 port=(\d+)"


def setup(tmp, **extra):
    pdir = os.path.join(tmp, "protocols")
    os.mkdir(pdir)
    mini_protocol(os.path.join(pdir, "mini.lua"))
    env = dict(STRIGIL_DATABASE=os.path.join(tmp, "s.db"),
               STRIGIL_PROTOCOLS=pdir,
               STRIGIL_DEFAULT_PROTOCOL="mini",
               STRIGIL_LANG_DIR=os.path.join(REPO, "scripts", "lang"),
               STRIGIL_QUIET_HOURS_FROM="00:00",
               STRIGIL_QUIET_HOURS_TO="00:00",
               STRIGIL_CONSOLE="true",
               STRIGIL_HTTP_PORT="0")
    env.update(extra)
    # No config file: the defaults, then these.
    return clean_env(**env), pdir


def start(env, name="strigil run"):
    """Starts the daemon; (Proc, port)."""
    p = Proc([BIN, "run"], env=env, name=name, cwd=REPO)
    m = p.expect_err(LISTENING, consume=False)
    p.expect_err(r"event=started mode=run")
    return p, int(m.group(1))


def get(port, path, method="GET", headers=None):
    """(status, headers dict lower-cased, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        c.request(method, path, headers=headers or {})
        res = c.getresponse()
        body = res.read().decode("utf-8")
        return (res.status, {k.lower(): v for k, v in res.getheaders()},
                body)
    finally:
        c.close()


def healthz(r, port, want_status=200):
    status, hdrs, body = get(port, "/healthz")
    r.eq(status, want_status, "/healthz status")
    r.eq(hdrs.get("content-type"), "application/json", "/healthz type")
    return json.loads(body), body


# ---- Prometheus text format ---------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise ValueError("bad labels %r" % text)
        labels[m.group(1)] = m.group(2)
        pos = m.end()
    return labels


def parse_metrics(r, text):
    """Checks the exposition format; returns ({(name, labels): value},
    {family: type}). labels is a sorted tuple of (key, value)."""
    samples, types, helps = {}, {}, set()
    r.check(text.endswith("\n"), "the exposition ends with a newline")
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            r.check(name not in helps, "one HELP per family", name)
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            r.check(len(parts) == 4 and parts[3] in TYPES, "a TYPE line",
                    line)
            r.check(parts[2] not in types, "one TYPE per family", line)
            types[parts[2]] = parts[3]
            continue
        r.check(not line.startswith("#"), "a known comment", line)
        m = SAMPLE_RE.match(line)
        if not r.check(m is not None, "a sample line", line):
            continue
        name, labels, value = m.group(1), parse_labels(m.group(2) or ""), \
            float(m.group(3))
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in types and \
                    types[name[:-len(suffix)]] == "histogram":
                family = name[:-len(suffix)]
        r.check(family in types, "TYPE before samples", line)
        if types.get(family) == "counter":
            r.check(name.endswith("_total"), "counters end in _total", name)
            r.check(value >= 0, "counters are not negative", line)
        key = (name, tuple(sorted(labels.items())))
        r.check(key not in samples, "each series once", line)
        samples[key] = value
    # Histograms: cumulative buckets, +Inf equal to _count.
    for family, t in types.items():
        if t != "histogram":
            continue
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in
                          samples.items() if k[0] == family + "_bucket"))
        counts = [v for _, v in buckets]
        r.check(counts == sorted(counts), "buckets are cumulative", buckets)
        r.check(buckets and buckets[-1][0] == float("inf"), "a +Inf bucket")
        r.eq(buckets[-1][1], samples.get((family + "_count", ())),
             family + " +Inf == _count")
        r.check((family + "_sum", ()) in samples, family + "_sum")
    return samples, types


def metrics(r, port):
    status, hdrs, body = get(port, "/metrics")
    r.eq(status, 200, "/metrics status")
    r.check(hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"),
            "/metrics content type", hdrs.get("content-type"))
    samples, types = parse_metrics(r, body)
    return samples, types, body


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


# ---- the tests ------------------------------------------------------------------

def no_paths(r, body, pdir):
    """/healthz may face a load balancer: no file system detail in it."""
    r.check("/" not in body, "no path in /healthz", body)
    r.check(".lua" not in body, "no file name in /healthz", body)
    r.check(pdir not in body, "not the protocol folder", body)


def test_healthz(r, tmp):
    env, pdir = setup(tmp)
    p, port = start(env)
    h, body = healthz(r, port)
    r.eq(h["status"], "ok", "status")
    r.eq(h["database"], "ok", "database")
    r.eq(h["scheduler"], "ok", "scheduler")
    r.eq(h["adapters"], [{"name": "console", "connected": True}], "adapters")
    r.eq(h["protocols"], [{"id": "mini", "version": 1, "error": None}],
         "protocols")
    no_paths(r, body, pdir)
    # HEAD, 404, 405.
    status, hdrs, body = get(port, "/healthz", method="HEAD")
    r.eq((status, body), (200, ""), "HEAD /healthz")
    r.eq(get(port, "/nope")[0], 404, "unknown path")
    status, hdrs, _ = get(port, "/healthz", method="POST")
    r.eq((status, hdrs.get("allow")), (405, "GET, HEAD"), "POST /healthz")
    # The health check's write leaves nothing behind.
    h, _ = healthz(r, port)
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "exit 0")
    r.eq(db_query(env["STRIGIL_DATABASE"],
                  "SELECT count(*) FROM events WHERE kind = 'health_probe'"),
         [(0,)], "no probe rows left")


def test_database_locked(r, tmp):
    """A database that refuses writes makes /healthz 503 "failing"; once it
    takes writes again (the probe is cached for a second) it is 200."""
    import sqlite3
    env, _ = setup(tmp)
    p, port = start(env)
    healthz(r, port)
    time.sleep(1.1)
    side = sqlite3.connect(env["STRIGIL_DATABASE"], isolation_level=None)
    side.execute("BEGIN EXCLUSIVE")
    try:
        h, _ = healthz(r, port, want_status=503)
        r.eq((h["status"], h["database"]), ("failing", "failing"),
             "locked database")
    finally:
        side.execute("ROLLBACK")
        side.close()
    time.sleep(1.1)
    h, _ = healthz(r, port)
    r.eq(h["database"], "ok", "writable again")
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "exit 0")


def test_metrics_move(r, tmp):
    env, _ = setup(tmp)
    p, port = start(env)
    before, types, _ = metrics(r, port)
    for name, t in (("strigil_updates_received_total", "counter"),
                    ("strigil_duplicates_total", "counter"),
                    ("strigil_messages_sent_total", "counter"),
                    ("strigil_retries_total", "counter"),
                    ("strigil_rate_limited_total", "counter"),
                    ("strigil_outbox_depth", "gauge"),
                    ("strigil_jobs_pending", "gauge"),
                    ("strigil_jobs_due", "gauge"),
                    ("strigil_jobs_run_total", "counter"),
                    ("strigil_lua_calls_total", "counter"),
                    ("strigil_lua_errors_total", "counter"),
                    ("strigil_lua_limit_hits_total", "counter"),
                    ("strigil_protocol_eval_seconds", "histogram"),
                    ("strigil_protocols_loaded", "gauge"),
                    ("strigil_protocol_reload_failures", "gauge"),
                    ("process_start_time_seconds", "gauge")):
        r.eq(types.get(name), t, "type of " + name)
    r.eq(value(before, "strigil_updates_received_total"), 0, "nothing yet")
    r.eq(value(before, "strigil_messages_sent_total", adapter="console"), 0,
         "console present at 0")
    r.eq(value(before, "strigil_rate_limited_total", adapter="console"), 0,
         "429s present at 0")
    r.eq(value(before, "strigil_lua_limit_hits_total", limit="memory"), 0,
         "memory limit hits")
    r.eq(value(before, "strigil_lua_limit_hits_total", limit="instructions"),
         0, "instruction limit hits")
    r.eq(value(before, "strigil_protocols_loaded"), 1, "protocols loaded")
    started = value(before, "process_start_time_seconds")
    r.check(started and abs(started - time.time()) < 600, "start time",
            started)

    # Enrol, consent, zone, time, screening: each line one inbound message.
    said = 0
    for line in ("/start", "yes", "1", "1", "yes", SECRET):
        out = p.say(line)
        said += 1
    r.contains(out, r"^bot> Thank you, I've noted that\.$", "screening done")
    bot_lines = len([l for l in p.out if l.startswith("bot> ")])
    after, _, text = metrics(r, port)
    r.eq(value(after, "strigil_updates_received_total"), said,
         "updates received counts each message")
    sent = value(after, "strigil_messages_sent_total", adapter="console")
    r.check(sent is not None and sent >= bot_lines > 0,
            "messages sent counted", (sent, bot_lines))
    r.check(value(after, "strigil_lua_calls_total") >= 1, "a handler ran")
    r.eq(value(after, "strigil_lua_errors_total"), 0, "no handler failed")
    r.eq(value(after, "strigil_protocol_eval_seconds_count"),
         value(after, "strigil_lua_calls_total"), "every call timed")
    r.check(value(after, "strigil_jobs_pending") >= 1, "a session planned", value(after, "strigil_jobs_pending"))
    r.eq(value(after, "strigil_jobs_due"), 0, "nothing due yet")
    r.eq(value(after, "strigil_outbox_depth"), 0, "all delivered")
    r.check(SECRET not in text, "no patient text in /metrics")
    h, body = healthz(r, port)
    r.check(SECRET not in body and "patient" not in body,
            "no patient data in /healthz", body)
    p.close_stdin()
    r.eq(p.finish(), 0, "exit 0 at the end of input")


def test_degraded(r, tmp):
    env, pdir = setup(tmp)
    p, port = start(env)
    path = os.path.join(pdir, "mini.lua")
    with open(path, "w") as f:
        f.write("return {\n  id = 'mini',\n  version = = 2,\n}\n")
    p.signal(signal.SIGHUP)
    p.expect_err(r"event=reloaded failed=1")
    h, body = healthz(r, port, 200)
    r.eq(h["status"], "degraded", "a failed reload degrades")
    r.eq(h["database"], "ok", "database still ok")
    r.eq(h["protocols"][0]["error"], "failed to load; see the log",
         "a neutral error")
    no_paths(r, body, pdir)
    r.check(re.search(r"event=protocol_reload_failed .*" + re.escape(path) +
                      r":3: ", p.stderr_text()), "file:line in the log")
    r.eq(h["protocols"][0]["version"], 1, "the old version runs on")
    samples, _, _ = metrics(r, port)
    r.eq(value(samples, "strigil_protocol_reload_failures"), 1,
         "reload failures gauge")
    # The patient is still served by the old version.
    out = p.say("/start")
    r.contains(out, r'^bot> Hello! .*"Mini course', "still serving")
    # Fixed: ok again.
    mini_protocol(path, version=2)
    p.signal(signal.SIGHUP)
    p.expect_err(r"event=reloaded failed=0")
    h, _ = healthz(r, port, 200)
    r.eq(h["status"], "ok", "fixed")
    r.eq(h["protocols"][0]["version"], 2, "the new version")
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "exit 0")


def raw(port, data, read=True, shut=False):
    """Sends bytes on a fresh connection; returns what comes back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if not read:
            return b""
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


def test_junk(r, tmp):
    env, _ = setup(tmp)
    p, port = start(env)
    status_of = lambda b: b.split(b"\r\n", 1)[0]  # noqa: E731
    r.eq(status_of(raw(port, b"\x00\x01\x02garbage\r\n\r\n")),
         b"HTTP/1.1 400 Bad Request", "garbage")
    r.eq(status_of(raw(port, b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 20000 +
                       b"\r\n\r\n")),
         b"HTTP/1.1 431 Request Header Fields Too Large", "huge header")
    r.eq(status_of(raw(port, b"GET /" + b"u" * 5000 + b" HTTP/1.1\r\n\r\n")),
         b"HTTP/1.1 414 URI Too Long", "huge target")
    r.eq(status_of(raw(port, b"POST /healthz HTTP/1.1\r\nContent-Length: "
                       b"99999999\r\n\r\n")),
         b"HTTP/1.1 413 Payload Too Large", "huge body")
    # Half requests, abrupt closes, a flood of connections.
    raw(port, b"GET /healthz HTTP/1.1\r\nHost:", read=False)
    raw(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 10\r\n\r\nab",
        read=False)
    # Pipelined and a half-closed client still get their answers.
    got = raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
              shut=True)
    r.eq(got.count(b"HTTP/1.1 200 OK"), 2, "two pipelined answers")
    # More connections than the cap (64): the extra ones are closed.
    socks = []
    for _ in range(100):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port),
                                                  timeout=DEADLINE))
        except OSError:
            break
    for s in socks:
        s.close()
    r.check(p.p.poll() is None, "the daemon survived")
    # Once the server has seen them go, there is room again.
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        try:
            if get(port, "/healthz")[0] == 200:
                break
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)
    h, _ = healthz(r, port)
    r.eq(h["status"], "ok", "still healthy")
    out = p.say("/start")
    r.contains(out, r"^bot> Hello!", "still chatting")
    # SIGTERM with connections open still exits promptly, with 0.
    hold = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    hold.sendall(b"GET /healthz HTTP/1.1\r\n")
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "exit 0")
    r.check(time.monotonic() - t0 < 5, "stopped promptly",
            time.monotonic() - t0)
    hold.close()
    r.lacks(p.err, r"level=error", "no errors logged")


def test_health_command(r, tmp):
    env, _ = setup(tmp)
    p, port = start(env)
    url = "http://127.0.0.1:%d/healthz" % port
    rc, out, err = run([BIN, "health", "--url", url], env=env)
    r.eq(rc, 0, "healthy: exit 0")
    r.eq(out.split("\n")[0], "HTTP/1.1 200 OK", "prints the status line")
    r.check('"status":"ok"' in out, "prints the body", out)
    # From the config: http.listen and http.port; 0.0.0.0 means loopback.
    cenv = dict(env, STRIGIL_HTTP_PORT=str(port))
    rc, out, _ = run([BIN, "health"], env=cenv)
    r.eq(rc, 0, "from the config")
    rc, out, _ = run([BIN, "health"], env=dict(cenv,
                                               STRIGIL_HTTP_LISTEN="0.0.0.0"))
    r.eq(rc, 0, "0.0.0.0 asks 127.0.0.1")
    rc, out, _ = run([BIN, "health", "--url", "http://127.0.0.1:%d/nope" %
                      port], env=env)
    r.eq((rc, out.split("\n")[0]), (1, "HTTP/1.1 404 Not Found"),
         "not 200: exit 1")
    r.eq(run([BIN, "health", "--bogus"], env=env)[0], 2, "bad usage: 2")
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "exit 0")
    rc, out, err = run([BIN, "health", "--url", url], env=env)
    r.eq(rc, 1, "stopped: exit 1")
    r.check("strigil: health:" in err, "says why", err)


def test_settings(r, tmp):
    # Disabled: no server.
    env, _ = setup(tmp, STRIGIL_HTTP_ENABLED="false")
    p = Proc([BIN, "run"], env=env, name="no http")
    p.expect_err(r"event=started mode=run")
    r.lacks(p.err, r"http_listening", "no server when disabled")
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "exit 0")
    # Not an address: refused at start.
    env["STRIGIL_HTTP_ENABLED"] = "true"
    rc, out, err = run([BIN, "run"], env=dict(env,
                                              STRIGIL_HTTP_LISTEN="localhost"))
    r.eq(rc, 1, "a bad address stops the daemon")
    r.check('http.listen: "localhost" is not an IP address' in err,
            "says which setting", err)
    # A taken port stops the start, saying which port and what to set.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    rc, _, err = run([BIN, "run"], env=dict(env, STRIGIL_HTTP_PORT=str(taken)))
    r.eq(rc, 1, "a taken port stops the daemon")
    r.check("cannot listen on 127.0.0.1 port %d" % taken in err,
            "says which port", err)
    busy.close()
    # A port out of range is a config error.
    rc, _, err = run([BIN, "run"], env=dict(env, STRIGIL_HTTP_PORT="70000"))
    r.eq(rc, 2, "port out of range")
    r.check("STRIGIL_HTTP_PORT" in err, "names the variable", err)


if __name__ == "__main__":
    sys.exit(Runner().run([
        test_healthz,
        test_database_locked,
        test_metrics_move,
        test_degraded,
        test_junk,
        test_health_command,
        test_settings,
    ]))
