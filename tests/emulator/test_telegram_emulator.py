#!/usr/bin/env python3
"""Smoke test: the Telegram adapter against telegram-test-api.

telegram-test-api is an independent Bot API emulator (an npm package,
installed into tests/emulator/ by `npm ci`; scripts/install-deps.sh does
it when npm is there). Unlike our fake it answers getUpdates at once, so
this also shows the adapter does not poll in a tight loop. Without node
or node_modules the test SKIPs (exit 77, which ctest reports as skipped)
and says why.

Usage: python3 tests/emulator/test_telegram_emulator.py /path/to/strigil
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from e2e_lib import DEADLINE, REPO, Proc, Runner, binary, clean_env  # noqa
from e2e_lib import mini_protocol  # noqa

TOKEN = "123456789:AAemulator-token"


def skip(why):
    print("SKIP: %s" % why)
    sys.exit(77)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_emulator(r, tmp):
    port = free_port()
    node = subprocess.Popen(["node", os.path.join(HERE, "emulator.js"),
                             str(port), TOKEN], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=HERE)
    d = None
    try:
        r.eq(node.stdout.readline().strip(), "listening %d" % port,
             "the emulator is up")
        pdir = os.path.join(tmp, "protocols")
        os.mkdir(pdir)
        mini_protocol(os.path.join(pdir, "mini.lua"))
        env = clean_env(
            STRIGIL_CONFIG=os.path.join(REPO, "config", "strigil.conf.lua"),
            STRIGIL_DATABASE=os.path.join(tmp, "s.db"),
            STRIGIL_PROTOCOLS=pdir, STRIGIL_DEFAULT_PROTOCOL="mini",
            STRIGIL_CONSOLE="false", STRIGIL_TIMEZONE="UTC",
            STRIGIL_LANG_DIR=os.path.join(REPO, "scripts", "lang"),
            STRIGIL_QUIET_HOURS_FROM="00:00", STRIGIL_QUIET_HOURS_TO="00:00",
            STRIGIL_TELEGRAM_TOKEN=TOKEN,
            STRIGIL_TELEGRAM_API_URL="http://127.0.0.1:%d" % port)
        d = Proc([BIN, "run"], env=env)
        d.expect_err(r"event=started mode=run")
        node.stdin.write("go\n")
        node.stdin.flush()
        out, _ = node.communicate(timeout=DEADLINE)
        print(out)
        m = re.search(r"^ok polls (\d+) seconds ([\d.]+)$", out, re.M)
        r.check(m is not None, "the patient got through /start, a button "
                "and /help", out[-500:])
        if m:
            polls, secs = int(m.group(1)), float(m.group(2))
            # Empty answers at once: the adapter waits a second before
            # the next poll, so a few a second at most (not thousands).
            r.check(polls <= 4 * (secs + 2), "no tight polling loop",
                    (polls, secs))
        d.signal(signal.SIGTERM)
        r.eq(d.finish(), 0, "SIGTERM exits 0")
        r.lacks(d.stderr_text(), r"level=error", "no errors logged")
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        if d is not None:
            d.kill()


if __name__ == "__main__":
    BIN = binary()
    if shutil.which("node") is None:
        skip("node is not installed (scripts/install-deps.sh installs it)")
    if not os.path.isdir(os.path.join(HERE, "node_modules",
                                      "telegram-test-api")):
        skip("tests/emulator/node_modules is missing: run `npm ci` in "
             "tests/emulator (scripts/install-deps.sh does)")
    sys.exit(Runner().run([test_emulator]))
