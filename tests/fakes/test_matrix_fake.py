#!/usr/bin/env python3
"""Tests of the fake homeserver and its spec checker (matrix_fake.py,
matrix_spec.py): that they accept what the spec allows, refuse what it does
not, and keep the semantics the adapter's tests rely on (since/next_batch,
limited timelines, txnId replay, token expiry, faults).

Usage: python3 tests/fakes/test_matrix_fake.py [ignored: the strigil path]
Prints "N passed, N failed" last; exits 1 on a failure.
"""
import json
import os
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import matrix_fake as mf  # noqa: E402
import matrix_spec as ms  # noqa: E402

PAT = "@p:example.org"


def q(s):
    return urllib.parse.quote(s, safe="")


class Client:
    def __init__(self, fake):
        self.fake = fake
        self.token = None

    def call(self, method, path, body=None, auth=True, raw=None):
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json"}
        if auth and self.token:
            h["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(self.fake.base_url + mf.PREFIX + path,
                                     data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read()), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), e.headers

    def login(self, device=None):
        b = {"type": "m.login.password", "identifier": {
            "type": "m.id.user", "user": "bot"},
            "password": self.fake.password, "refresh_token": True}
        if device:
            b["device_id"] = device
        s, out, _ = self.call("POST", "/login", b, auth=False)
        assert s == 200, out
        self.token = out["access_token"]
        return out


def test_spec_checker(t):
    sp = ms.spec()
    h = {"Authorization": "Bearer x"}
    ok = sp.check_request("GET", mf.PREFIX + "/sync", {
        "timeout": ["30000"], "set_presence": ["offline"]}, h, None)
    t.eq(ok, [], "a good /sync")
    t.check(sp.check_request("GET", mf.PREFIX + "/sync", {
        "timeout": ["soon"]}, h, None), "timeout must be an integer")
    t.check(sp.check_request("GET", mf.PREFIX + "/sync", {
        "set_presence": ["away"]}, h, None), "set_presence enum")
    t.check(sp.check_request("GET", mf.PREFIX + "/sync", {}, {}, None),
            "a token is required")
    t.check(sp.check_request("GET", mf.PREFIX + "/sync", {
        "access_token": ["x"]}, h, None), "no token in the query")
    t.check(sp.check_request("POST", mf.PREFIX + "/sync", {}, h, b"{}"),
            "POST /sync does not exist")
    t.check(sp.check_request("GET", mf.PREFIX + "/nonsense", {}, h, None),
            "an unknown path")
    t.check(sp.check_request("GET", mf.PREFIX + "/rooms/%21a%3Ax/messages",
                             {"from": ["s1"]}, h, None), "dir is required")
    t.check(sp.check_request("POST", mf.PREFIX + "/login", {}, {},
                             b'{"identifier":{}}'), "login needs a type")
    t.check(sp.check_request("POST", mf.PREFIX + "/login", {}, {},
                             b'{"type":"m.login.password","pasword":"x"}'),
            "an unknown login field")
    send = mf.PREFIX + "/rooms/%21a%3Ax/send/m.room.message/t1"
    t.eq(sp.check_request("PUT", send, {}, h, json.dumps({
        "msgtype": "m.notice", "body": "x", "format":
        "org.matrix.custom.html", "formatted_body": "x"}).encode()), [],
        "a good notice")
    t.check(sp.check_request("PUT", send, {}, h, b'{"msgtype":"m.notice"}'),
            "a notice needs a body")
    t.check(sp.check_request("PUT", send, {}, h, json.dumps({
        "msgtype": "m.notice", "body": "x", "format":
        "org.matrix.custom.html"}).encode()), "format needs formatted_body")
    t.check(sp.check_request("PUT", mf.PREFIX +
                             "/rooms/%23alias%3Ax/send/m.room.message/t1",
                             {}, h, b'{"msgtype":"m.text","body":"x"}'),
            "a room id starts with !")
    t.check(sp.check_event(mf.POLL_START, {mf.POLL_START: {
        "question": {"org.matrix.msc1767.text": "?"}, "kind":
        "org.matrix.msc3381.poll.disclosed", "answers": []}}),
        "a poll needs answers and a fallback")
    t.eq(sp.check_event(mf.POLL_END, {
        "m.relates_to": {"rel_type": "m.reference", "event_id": "$p"},
        mf.POLL_END: {}, "org.matrix.msc1767.text": "x"}), [],
        "a good poll end")
    t.check(sp.check_event(mf.POLL_END, {
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$p"},
        mf.POLL_END: {}, "org.matrix.msc1767.text": "x"}),
        "a poll end is a reference")
    t.check(sp.check_event(mf.POLL_END, {
        "m.relates_to": {"rel_type": "m.reference", "event_id": "$p"},
        "org.matrix.msc1767.text": "x"}), "a poll end needs its marker")
    t.check(sp.check_request("PUT", mf.PREFIX +
                             "/user/%40b%3Ax/account_data/m.direct", {}, h,
                             b'{"@a:x":"!r:x"}'),
            "m.direct values are lists")


def test_login_refresh_expiry(t):
    with mf.Fake() as fake:
        c = Client(fake)
        s, out, _ = c.call("POST", "/login", {
            "type": "m.login.password", "identifier": {
                "type": "m.id.user", "user": "bot"}, "password": "no"},
            auth=False)
        t.eq((s, out["errcode"]), (403, "M_FORBIDDEN"), "a wrong password")
        first = c.login()
        t.check("refresh_token" in first, "a refresh token when asked")
        again = c.login(device=first["device_id"])
        t.eq(again["device_id"], first["device_id"], "the device is reused")
        fake.expire_tokens(soft=True)
        s, out, _ = c.call("GET", "/account/whoami")
        t.eq((s, out["errcode"], out.get("soft_logout")),
             (401, "M_UNKNOWN_TOKEN", True), "a soft logout")
        s, out, _ = c.call("POST", "/refresh", {
            "refresh_token": again["refresh_token"]}, auth=False)
        t.eq(s, 200, "refresh works")
        c.token = out["access_token"]
        t.eq(c.call("GET", "/account/whoami")[0], 200, "the new token works")
        s, _, _ = c.call("POST", "/refresh", {
            "refresh_token": again["refresh_token"]}, auth=False)
        t.eq(s, 401, "a refresh token works once")
        fake.expire_tokens(soft=False)
        s, out, _ = c.call("GET", "/account/whoami")
        t.eq(out.get("soft_logout"), False, "a hard logout")
        t.eq(fake.violations(), [], "no violations")


def test_sync_send_faults(t):
    with mf.Fake() as fake:
        fake.max_timeline = 2
        c = Client(fake)
        c.login()
        s, out, _ = c.call("POST", "/user/%s/filter" % q(mf.BOT),
                           {"room": {"timeline": {"limit": 10}}})
        fid = out["filter_id"]
        room = fake.invite(PAT)
        s, out, _ = c.call("GET", "/sync?filter=%s&timeout=0" % fid)
        t.check(room in out["rooms"]["invite"], "the invite shows")
        since = out["next_batch"]
        s, out, _ = c.call("GET", "/sync?filter=%s&timeout=50&since=%s" %
                           (fid, since))
        t.eq((out["next_batch"], out["rooms"]["invite"]), (since, {}),
             "a timed-out sync: nothing new, the same token")
        c.call("POST", "/rooms/%s/join" % q(room), {})
        for i in range(4):
            fake.say(PAT, room, "m%d" % i)
        s, out, _ = c.call("GET", "/sync?filter=%s&timeout=0&since=%s" %
                           (fid, since))
        tl = out["rooms"]["join"][room]["timeline"]
        t.eq([e["content"].get("body") for e in tl["events"]],
             ["m2", "m3"], "the server's cap keeps the last two")
        t.eq(tl["limited"], True, "limited")
        s, page, _ = c.call("GET", "/rooms/%s/messages?dir=f&from=%s&"
                            "limit=100" % (q(room), since))
        t.eq([e["content"].get("body") for e in page["chunk"]
              if e["type"] == "m.room.message"], ["m0", "m1", "m2", "m3"],
             "the gap from the previous token")
        path = "/rooms/%s/send/m.room.message/tx1" % q(room)
        body = {"msgtype": "m.notice", "body": "hello"}
        fake.fault("drop_after", endpoint="send")
        try:
            c.call("PUT", path, body)
            t.check(False, "the connection drops")
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        s, a, _ = c.call("PUT", path, body)
        s, b, _ = c.call("PUT", path, body)
        t.eq(a["event_id"], b["event_id"], "a replay gets the same event")
        t.eq(fake.bot_texts(room), ["hello"], "and posts once")
        fake.fault("429", endpoint="send", retry_after_ms=700,
                   retry_after_header=1)
        s, out, hd = c.call("PUT", "/rooms/%s/send/m.room.message/tx2" %
                            q(room), body)
        t.eq((s, out["errcode"], out["retry_after_ms"], hd["Retry-After"]),
             (429, "M_LIMIT_EXCEEDED", 700, "1"), "an injected 429")
        fake.kick_bot(room, PAT)
        s, out, _ = c.call("PUT", "/rooms/%s/send/m.room.message/tx3" %
                           q(room), body)
        t.eq((s, out["errcode"]), (403, "M_FORBIDDEN"), "not in the room")
        s, out, _ = c.call("PUT", path.replace("tx1", "tx4"), raw=b"{}")
        t.eq(s, 400, "a bad event is refused")
        t.eq(len(fake.violations()), 1, "and recorded")
        # The control API drives the same fake over HTTP.
        req = urllib.request.Request(
            fake.base_url + "/control/invite", method="POST",
            data=json.dumps({"user": PAT}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            rid = json.loads(r.read())["result"]
        t.eq(fake.membership(rid), "invite", "control: invite")
        with urllib.request.urlopen(fake.base_url + "/control/state",
                                    timeout=10) as r:
            st = json.loads(r.read())
        t.eq(len(st["violations"]), 1, "control: state")


class T:
    def __init__(self):
        self.failed = False

    def check(self, cond, what, detail=None):
        if not cond:
            self.failed = True
            print("    FAIL: %s %s" % (what, detail or ""))
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, what, "got %r, want %r" % (got, want))


def main():
    passed = failed = 0
    for fn in (test_spec_checker, test_login_refresh_expiry,
               test_sync_send_faults):
        t = T()
        try:
            fn(t)
        except Exception:
            t.failed = True
            traceback.print_exc()
        print("%s %s" % ("FAIL" if t.failed else "ok  ", fn.__name__))
        failed += t.failed
        passed += not t.failed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
