#!/usr/bin/env python3
"""Tests of the fake Telegram Bot API server (telegram_fake.py) itself,
talking to it over HTTP as a client would (http.client), so that the
Telegram adapter's tests can trust it.

Usage: python3 tests/fakes/test_telegram_fake.py [/path/to/strigil]
(the binary is not used). Prints "N passed, N failed" last; exits 1 on a
failure. Nothing sleeps and hopes: waits are on the fake's condition with a
deadline; the rate-limit tests use a clock the test moves by hand.
"""
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import telegram_fake as tf  # noqa: E402
from e2e_lib import DEADLINE, REPO, Proc, Runner  # noqa: E402

SPEC = tf.Spec()
USER = 5000000001            # over 32 bits, as Telegram's ids can be
USER2 = 7123456789012        # and bigger still
GROUP = -4012345678
TOKEN = "987654321:AAtestTOKEN_for-the-fake"


# ---- a client ---------------------------------------------------------------

class Resp:
    def __init__(self, status, raw, elapsed):
        self.status = status
        self.raw = raw
        self.elapsed = elapsed
        try:
            self.json = json.loads(raw.decode("utf-8"))
        except ValueError:
            self.json = None

    @property
    def ok(self):
        return self.json is not None and self.json.get("ok") is True

    @property
    def result(self):
        return self.json.get("result") if self.json else None

    @property
    def desc(self):
        return (self.json or {}).get("description", "")

    def __repr__(self):
        return "<%s %s>" % (self.status, self.raw[:300])


def request(port, path, body=None, ctype=None, method=None, timeout=None):
    """One HTTP request on a fresh connection; a Resp. Raises on a dropped
    connection (http.client.RemoteDisconnected and friends)."""
    c = http.client.HTTPConnection("127.0.0.1", port,
                                   timeout=timeout or DEADLINE)
    t0 = time.monotonic()
    try:
        headers = {"Content-Type": ctype} if ctype else {}
        c.request(method or ("POST" if body is not None else "GET"), path,
                  body=body, headers=headers)
        r = c.getresponse()
        raw = r.read()
        return Resp(r.status, raw, time.monotonic() - t0)
    finally:
        c.close()


def call(fake, method, params=None, how="json", token=None, timeout=None):
    """Calls a Bot API method: how = json | form | get."""
    path = "/bot%s/%s" % (token or fake.token, method)
    params = params or {}
    if how == "get":
        q = urllib.parse.urlencode(_form(params))
        return request(fake.port, path + ("?" + q if q else ""),
                       timeout=timeout)
    if how == "form":
        return request(fake.port, path, urllib.parse.urlencode(
            _form(params)).encode(), "application/x-www-form-urlencoded",
            timeout=timeout)
    return request(fake.port, path, json.dumps(params).encode(),
                   "application/json", timeout=timeout)


def _form(params):
    """Form values as a client sends them: objects JSON-serialized."""
    out = {}
    for k, v in params.items():
        if isinstance(v, (dict, list)):
            v = json.dumps(v)
        elif isinstance(v, bool):
            v = "true" if v else "false"
        out[k] = str(v)
    return out


def control(port, what, args=None, get=False):
    if get:
        q = urllib.parse.urlencode(args or {})
        r = request(port, "/control/%s%s" % (what, "?" + q if q else ""))
    else:
        r = request(port, "/control/" + what, json.dumps(args or {}).encode(),
                    "application/json")
    return r


class Clock:
    """A monotonic clock the test moves: fake.clock = Clock()."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def advance(self, s):
        self.t += s


def new_fake(**kw):
    kw.setdefault("rate_limits", False)
    return tf.Fake(token=TOKEN, spec=SPEC, **kw).start()


def kinds(fake):
    return [v["kind"] for v in fake.violations()]


def conforms(r, obj, type_name, what):
    """The fake's own output is valid per the spec."""
    err = SPEC.check(obj, [type_name], type_name)
    return r.check(err is None, "%s is a valid %s" % (what, type_name), err)


def inline(*rows):
    """An InlineKeyboardMarkup from rows of (label, data)."""
    return {"inline_keyboard": [[{"text": t, "callback_data": d}
                                 for t, d in row] for row in rows]}


def in_thread(fn):
    """Runs fn in a thread; .join() returns its result or raises."""
    box = {}

    def run():
        try:
            box["v"] = fn()
        except BaseException as e:  # noqa
            box["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    class H:
        def join(self, timeout=DEADLINE):
            t.join(timeout)
            if t.is_alive():
                raise AssertionError("thread still running")
            if "e" in box:
                raise box["e"]
            return box["v"]
    return H()


# ---- the tests --------------------------------------------------------------

def test_getme_auth_and_paths(r, tmp):
    f = new_fake()
    try:
        res = call(f, "getMe")
        r.eq(res.status, 200, "getMe status")
        conforms(r, res.result, "User", "getMe result")
        r.eq(res.result["is_bot"], True, "getMe is_bot")
        r.eq(res.result["id"], 987654321, "the bot id comes from the token")
        res = call(f, "getMe", how="get")
        r.check(res.ok, "getMe by GET", res)
        res = call(f, "getMe", token="1:wrong")
        r.eq((res.status, res.json), (401, {"ok": False, "error_code": 401,
                                            "description": "Unauthorized"}),
             "a wrong token")
        r.eq(kinds(f), [], "a wrong token is not a spec violation")
        res = call(f, "sendMesage", {"chat_id": USER, "text": "x"})
        r.eq((res.status, res.desc), (404, "Not Found"), "an unknown method")
        r.eq(kinds(f), ["unknown_method"], "an unknown method is recorded")
        res = call(f, "GETME")
        r.check(res.ok, "method names are case-insensitive", res)
        r.eq(request(f.port, "/nothing/here").status, 404, "a junk path")
        log = f.requests()
        r.eq([e["method"] for e in log],
             ["getMe", "getMe", "sendMesage", "getMe"],
             "the log has every call with the right token")
        r.eq([e["status"] for e in log], [200, 200, 404, 200], "log statuses")
    finally:
        f.stop()


def test_validation_required_and_unknown_fields(r, tmp):
    f = new_fake()
    try:
        f.message(USER, "hello")
        res = call(f, "sendMessage", {"chat_id": USER})
        r.eq(res.status, 400, "no text: 400")
        r.contains([res.desc], r"^Bad Request: .*\"text\".*missing",
                   "the description names the missing field")
        res = call(f, "sendMessage", {"chat_id": USER, "text": "x",
                                      "colour": "red"})
        r.eq(res.status, 400, "an unknown field: 400")
        r.contains([res.desc], r"unknown parameter \"colour\"")
        kb = {"inline_keyboard": [[{"text": "a", "callback_data": "b",
                                    "colour": "red"}]]}
        res = call(f, "sendMessage", {"chat_id": USER, "text": "x",
                                      "reply_markup": kb})
        r.eq(res.status, 400, "an unknown field in a nested button")
        r.contains([res.desc], r"reply_markup\.inline_keyboard\[0\]\[0\]: "
                   r"unknown field \"colour\" in InlineKeyboardButton")
        res = call(f, "sendMessage", {"chat_id": USER, "text": "x",
                                      "reply_markup": {"inline_keyboard": [[
                                          {"callback_data": "b"}]]}})
        r.eq(res.status, 400, "a button without its required text")
        r.contains([res.desc], r"required field \"text\"")
        res = call(f, "editMessageText", {"text": "x"})
        r.eq(res.status, 400, "editMessageText needs chat_id and message_id")
        res = call(f, "answerCallbackQuery", {})
        r.eq(res.status, 400, "answerCallbackQuery without an id")
        r.eq(kinds(f), ["spec"] * 6, "each is a spec violation")
        r.eq(f.sent(USER), [], "nothing was sent")
        for v in f.violations():
            r.check(v["description"].startswith("Bad Request: "),
                    "violation descriptions are the answer", v)
    finally:
        f.stop()


def test_validation_types(r, tmp):
    f = new_fake()
    try:
        f.message(USER, "hello")
        f.message(USER2, "hi", username="big_id_user")
        ok = call(f, "sendMessage", {"chat_id": USER, "text": "int id"})
        r.check(ok.ok, "an Integer chat_id over 32 bits", ok)
        r.eq(ok.result["chat"]["id"], USER, "the chat id comes back exact")
        conforms(r, ok.result, "Message", "sendMessage result")
        ok = call(f, "sendMessage", {"chat_id": str(USER2), "text": "str id"})
        r.check(ok.ok, "a String chat_id (the spec allows String)", ok)
        ok = call(f, "sendMessage", {"chat_id": "@big_id_user", "text": "@"})
        r.check(ok.ok, "a @username chat_id", ok)
        res = call(f, "sendMessage", {"chat_id": "@nobody", "text": "x"})
        r.eq((res.status, res.desc), (400, "Bad Request: chat not found"),
             "an unknown @username")
        res = call(f, "sendMessage", {"chat_id": 42, "text": "x"})
        r.eq((res.status, res.desc), (400, "Bad Request: chat not found"),
             "an unknown chat id")
        r.eq(kinds(f), [], "a chat not found is no spec violation")

        bad = [
            ({"chat_id": float(USER), "text": "x"}, r"chat_id: expected "
             r"Integer or String, got float"),
            ({"chat_id": True, "text": "x"}, r"got boolean"),
            ({"chat_id": USER, "text": 5}, r"text: expected String"),
            ({"chat_id": USER, "text": "x", "disable_notification": "true"},
             r"disable_notification: expected Boolean, got string"),
            ({"chat_id": 1 << 63, "text": "x"}, r"expected Integer or String"),
            ({"chat_id": USER, "text": None}, r"null"),
            ({"chat_id": USER, "text": "x", "reply_markup":
              json.dumps(inline([("a", "b")]))}, r"reply_markup"),
            ({"chat_id": USER, "text": "x", "reply_markup":
              {"inline_keyboard": [{"text": "a", "callback_data": "b"}]}},
             r"inline_keyboard\[0\]: expected Array of InlineKeyboardButton"),
            ({"chat_id": USER, "text": "x", "entities": [
                {"type": "bold", "offset": 0.0, "length": 1}]},
             r"entities\[0\]\.offset: expected Integer, got float"),
        ]
        for params, pattern in bad:
            res = call(f, "sendMessage", params)
            r.eq(res.status, 400, "400 for %r" % (params,))
            r.contains([res.desc], pattern)
        res = call(f, "deleteMessage", {"chat_id": USER, "message_id": "2"})
        r.eq(res.status, 400, "a string where only Integer will do")
        res = call(f, "getUpdates", {"timeout": 1.5})
        r.eq(res.status, 400, "a float timeout")
        r.eq(kinds(f), ["spec"] * (len(bad) + 2), "each is recorded")
        r.eq(len(f.sent(USER)), 1, "only the good send went out to USER")
        # A wrong discriminator of a subtype (BotCommandScope "type").
        res = call(f, "setMyCommands", {"commands": [
            {"command": "start", "description": "Start"}],
            "scope": {"type": "all_private_chats", "chat_id": USER}})
        r.eq(res.status, 400, "a BotCommandScope of no known shape")
        res = call(f, "setMyCommands", {"commands": [
            {"command": "start", "description": "Start"}],
            "scope": {"type": "chat", "chat_id": USER}})
        r.check(res.ok, "a BotCommandScopeChat", res)
    finally:
        f.stop()


def test_form_get_and_multipart(r, tmp):
    f = new_fake()
    try:
        f.message(USER, "hello")
        res = call(f, "sendMessage", {
            "chat_id": USER, "text": "form", "disable_notification": True,
            "reply_markup": inline([("Yes", "y")])}, how="form")
        r.check(res.ok, "form-encoded, markup JSON-serialized", res)
        r.eq(res.result.get("reply_markup"), inline([("Yes", "y")]),
             "the keyboard came through")
        res = call(f, "getUpdates", {"offset": 0, "limit": 5,
                                     "allowed_updates": ["message"]},
                   how="get")
        r.check(res.ok and len(res.result) == 1, "getUpdates by GET", res)
        res = call(f, "sendMessage", {"chat_id": USER, "text": "x",
                                      "disable_notification": "maybe"},
                   how="form")
        r.eq(res.status, 400, "a form Boolean that is not true/false")
        b = "----fakeboundary"
        body = ("--%s\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n"
                "\r\n%d\r\n--%s\r\nContent-Disposition: form-data; "
                "name=\"text\"\r\n\r\nmultipart \u00e9\r\n--%s--\r\n" % (
                    b, USER, b, b)).encode("utf-8")
        res = request(f.port, "/bot%s/sendMessage" % TOKEN, body,
                      "multipart/form-data; boundary=" + b)
        r.check(res.ok, "multipart/form-data", res)
        r.eq(res.result and res.result["text"], "multipart \u00e9",
             "multipart text")
        res = request(f.port, "/bot%s/sendMessage" % TOKEN, b"{not json",
                      "application/json")
        r.eq(res.status, 400, "a body that is not JSON")
        res = request(f.port, "/bot%s/sendMessage" % TOKEN, b"[1]",
                      "application/json")
        r.eq(res.status, 400, "a JSON body that is not an object")
        r.eq(kinds(f), ["spec"] * 3, "recorded")
    finally:
        f.stop()


def test_text_limits_and_html(r, tmp):
    f = new_fake()
    try:
        f.message(USER, "hello")
        for text, want in (("a" * 4096, 200), ("a" * 4097, 400), ("", 400),
                           ("  \n", 400), ("\U0001F600" * 2048, 200),
                           ("\U0001F600" * 2048 + "a", 400),
                           ("\u00e9" * 4096, 200)):
            res = call(f, "sendMessage", {"chat_id": USER, "text": text})
            r.eq(res.status, want, "text of %d chars (%r...)" % (
                len(text), text[:3]))
        r.eq(kinds(f), ["limit"] * 4, "limits recorded")
        r.contains([v["description"] for v in f.violations()],
                   r"message is too long")
        r.contains([v["description"] for v in f.violations()],
                   r"message text is empty")
        # HTML: tags do not count; bad HTML is refused.
        res = call(f, "sendMessage", {"chat_id": USER, "parse_mode": "HTML",
                                      "text": "<b>" + "a" * 4096 + "</b>"})
        r.check(res.ok, "4096 characters inside tags", res)
        res = call(f, "sendMessage", {
            "chat_id": USER, "parse_mode": "HTML",
            "text": "x &lt; y &amp; <i>z</i> <a href=\"https://e.org\">l</a>"})
        r.check(res.ok, "HTML with entities and a link", res)
        r.eq(res.result["text"], "x < y & z l", "the plain text")
        r.eq(res.result["entities"], [
            {"type": "italic", "offset": 8, "length": 1},
            {"type": "text_link", "offset": 10, "length": 1,
             "url": "https://e.org"}], "the entities")
        conforms(r, res.result, "Message", "an HTML message")
        n = len(f.violations())
        for text in ("a < b", "<b>open", "<b>x</i>", "<blink>x</blink>"):
            res = call(f, "sendMessage", {"chat_id": USER, "text": text,
                                          "parse_mode": "HTML"})
            r.eq(res.status, 400, "bad HTML %r" % text)
            r.contains([res.desc], r"^Bad Request: can't parse entities")
        r.eq(kinds(f)[n:], ["entities"] * 4, "bad HTML recorded")
        res = call(f, "sendMessage", {"chat_id": USER, "text": "x",
                                      "parse_mode": "Markdown3"})
        r.eq(res.status, 400, "an unknown parse_mode")
    finally:
        f.stop()


def test_keyboard_limits(r, tmp):
    f = new_fake()
    try:
        f.message(USER, "hello")

        def send(markup):
            return call(f, "sendMessage", {"chat_id": USER, "text": "k",
                                           "reply_markup": markup})
        r.check(send(inline([("a", "x" * 64)])).ok, "64 bytes of data")
        r.check(send(inline([("a", "\u00e9" * 32)])).ok, "64 bytes in é")
        res = send(inline([("a", "x" * 65)]))
        r.eq(res.status, 400, "65 bytes of callback_data")
        r.contains([res.desc], r"BUTTON_DATA_INVALID")
        r.eq(send(inline([("a", "\u00e9" * 33)])).status, 400,
             "33 é is 66 bytes")
        r.eq(send(inline([("a", "")])).status, 400, "empty callback_data")
        r.eq(send({"inline_keyboard": [[{"text": "a"}]]}).status, 400,
             "a button with no action")
        r.eq(send({"inline_keyboard": [[{"text": "a", "callback_data": "b",
                                         "url": "https://e.org"}]]}).status,
             400, "a button with two actions")
        r.eq(send(inline([("", "b")])).status, 400, "an empty label")
        r.eq(send(inline([(str(i), str(i)) for i in range(9)])).status, 400,
             "9 buttons in a row")
        r.check(send(inline(*[[(str(i), str(i))] for i in range(100)])).ok,
                "100 buttons")
        r.eq(send(inline(*[[(str(i), str(i))] for i in range(101)])).status,
             400, "101 buttons")
        r.check(send({"keyboard": [[{"text": "Yes"}]],
                      "one_time_keyboard": True}).ok, "a reply keyboard")
        r.check(send({"remove_keyboard": True}).ok, "ReplyKeyboardRemove")
        r.eq(kinds(f), ["limit"] * 8, "each bad keyboard recorded")
    finally:
        f.stop()


def test_long_poll_wakes_on_update(r, tmp):
    f = new_fake()
    try:
        poll = in_thread(lambda: call(f, "getUpdates", {"timeout": 20}))
        f.wait_polling()
        t0 = time.monotonic()
        upd = f.message(USER, "/start CODE42")
        res = poll.join()
        r.check(res.ok, "the long poll answers", res)
        r.check(time.monotonic() - t0 < 5, "at once, not after the timeout",
                time.monotonic() - t0)
        r.eq(res.result, [upd], "with the update")
        conforms(r, res.result[0], "Update", "a /start update")
        msg = res.result[0]["message"]
        r.eq((msg["text"], msg["from"]["id"], msg["chat"]["id"],
              msg["entities"]), ("/start CODE42", USER, USER,
                                 [{"type": "bot_command", "offset": 0,
                                   "length": 6}]), "the /start message")
    finally:
        f.stop()


def test_long_poll_timeout(r, tmp):
    f = new_fake()
    try:
        res = call(f, "getUpdates", {"timeout": 1})
        r.eq((res.status, res.result), (200, []), "nothing came")
        r.check(0.9 <= res.elapsed < 10, "held for the timeout", res.elapsed)
        res = call(f, "getUpdates", {"timeout": 0})
        r.check(res.elapsed < 5 and res.result == [], "short poll", res)
    finally:
        f.stop()


def test_offset_limit_and_allowed_updates(r, tmp):
    f = new_fake()
    try:
        ids = [f.message(USER, "m%d" % i)["update_id"] for i in range(5)]
        r.eq(ids, list(range(ids[0], ids[0] + 5)), "consecutive update ids")
        res = call(f, "getUpdates", {"limit": 2})
        r.eq([u["update_id"] for u in res.result], ids[:2], "limit 2")
        res = call(f, "getUpdates", {})
        r.eq(len(res.result), 5, "unconfirmed updates come again")
        res = call(f, "getUpdates", {"offset": ids[2]})
        r.eq([u["update_id"] for u in res.result], ids[2:],
             "offset confirms the ones below it")
        r.eq(len(f.pending_updates()), 3, "two confirmed and dropped")
        res = call(f, "getUpdates", {"offset": -1})
        r.eq([u["update_id"] for u in res.result], ids[4:],
             "a negative offset keeps the last ones")
        res = call(f, "getUpdates", {"offset": ids[4] + 1})
        r.eq(res.result, [], "all confirmed")
        f.wait_confirmed(ids[4], timeout=1)
        r.eq(kinds(f), [], "no violations so far")
        # Confirming updates never handed out loses them: a violation.
        late = f.message(USER, "late")["update_id"]
        res = call(f, "getUpdates", {"offset": late + 1})
        r.eq(kinds(f), ["offset"], "skipping an undelivered update")
        for lim in (0, 101):
            r.eq(call(f, "getUpdates", {"limit": lim}).status, 400,
                 "limit %d" % lim)
        r.eq(call(f, "getUpdates", {"allowed_updates": ["mesage"]}).status,
             400, "an unknown update type")
        # allowed_updates: a setting that filters later updates.
        res = call(f, "getUpdates", {"allowed_updates": ["callback_query"]})
        r.check(res.ok, "allowed_updates callback_query", res)
        r.eq(f.message(USER, "filtered"), None, "a message is filtered out")
        call(f, "getUpdates", {"allowed_updates": []})
        r.check(f.message(USER, "back") is not None, "the default again")
        r.eq(kinds(f), ["offset", "limit", "limit", "limit"], "violations")
    finally:
        f.stop()


def test_renumber(r, tmp):
    f = new_fake()
    try:
        old = f.message(USER, "before")["update_id"]
        call(f, "getUpdates", {})
        call(f, "getUpdates", {"offset": old + 1})
        f.renumber(7)
        new = f.message(USER, "a week later")["update_id"]
        r.eq(new, 7, "numbered anew from a lower id")
        res = call(f, "getUpdates", {"offset": old + 1})
        r.eq([u["update_id"] for u in res.result], [7],
             "the old offset confirms none of the new updates")
        res = call(f, "getUpdates", {"offset": 8})
        r.eq(res.result, [], "the new offset confirms it")
        f.wait_confirmed(7, timeout=1)
        r.eq(kinds(f), [], "no violations")
    finally:
        f.stop()


def test_concurrent_getupdates_conflict(r, tmp):
    f = new_fake()
    try:
        first = in_thread(lambda: call(f, "getUpdates", {"timeout": 20}))
        f.wait_polling()
        second = call(f, "getUpdates", {"timeout": 0})
        res = first.join()
        r.eq(res.status, 409, "the held getUpdates is ended")
        r.eq(res.json.get("error_code"), 409, "error_code 409")
        r.contains([res.desc], r"^Conflict: terminated by other getUpdates "
                   r"request")
        r.check(second.ok, "the newer one proceeds", second)
        r.eq(kinds(f), [], "a conflict is no spec violation")
    finally:
        f.stop()


def test_rate_limits(r, tmp):
    f = new_fake(rate_limits=True)
    clock = f.clock = Clock()
    try:
        f.message(USER, "a")
        f.message(USER2, "b")
        r.check(call(f, "sendMessage", {"chat_id": USER, "text": "1"}).ok,
                "the first message")
        res = call(f, "sendMessage", {"chat_id": USER, "text": "2"})
        r.eq(res.status, 429, "a second message to the chat within 1s")
        r.eq(res.json.get("parameters"), {"retry_after": 1}, "retry_after")
        r.eq(res.desc, "Too Many Requests: retry after 1", "description")
        r.check(call(f, "sendMessage", {"chat_id": USER2, "text": "x"}).ok,
                "another chat is not limited")
        clock.advance(0.5)
        res = call(f, "sendMessage", {"chat_id": USER, "text": "2"})
        r.eq(res.status, 429, "a retry before retry_after")
        r.eq(kinds(f), ["retry_after"], "an early retry is a violation")
        clock.advance(0.6)
        r.check(call(f, "sendMessage", {"chat_id": USER, "text": "2"}).ok,
                "after retry_after it goes")
        r.eq([m["text"] for m in f.sent(USER)], ["1", "2"], "sent once each")
        # The limit over all chats.
        f.set_rate_limits(global_per_sec=3)
        clock.advance(5)
        chats = [USER + i for i in range(10, 14)]
        for c in chats:
            f.message(c, "hi")
        got = [call(f, "sendMessage", {"chat_id": c, "text": "g"}).status
               for c in chats]
        r.eq(got, [200, 200, 200, 429], "the 4th message in a second")
        # Groups: 20 a minute (2 here).
        f.set_rate_limits(global_per_sec=30, group_per_min=2)
        clock.advance(5)
        f.add_group(GROUP, "Clinic")
        f.message(USER, "hello group", chat_id=GROUP)
        got = []
        for i in range(3):
            got.append(call(f, "sendMessage", {"chat_id": GROUP, "text": "g"}))
            clock.advance(1.5)
        r.eq([g.status for g in got], [200, 200, 429], "group limit")
        ra = got[2].json["parameters"]["retry_after"]
        r.check(50 <= ra <= 60, "a group waits up to a minute", ra)
        f.set_rate_limits(enabled=False)
        res = call(f, "sendMessage", {"chat_id": GROUP, "text": "free"})
        r.check(res.ok, "limits off", res)
        r.eq(kinds(f), ["retry_after"], "no other violation")
    finally:
        f.stop()


def test_faults(r, tmp):
    f = new_fake()
    clock = f.clock = Clock()
    try:
        f.message(USER, "hi")

        def send(text):
            return call(f, "sendMessage", {"chat_id": USER, "text": text})
        f.fault("429", method="sendMessage", retry_after=3)
        r.check(call(f, "getMe").ok, "another method is not hit")
        res = send("a")
        r.eq((res.status, res.json.get("parameters")),
             (429, {"retry_after": 3}), "an injected 429")
        clock.advance(3)
        r.check(send("b").ok, "then normal again")
        f.fault("500", count=2)
        r.eq([send("c").status, call(f, "getMe").status, send("d").status],
             [500, 500, 200], "500 twice, any method")
        f.fault("502")
        res = send("e")
        r.eq((res.status, res.json and res.json.get("error_code")),
             (502, 502), "502")
        f.fault("malformed", method="sendMessage")
        res = send("f")
        r.eq((res.status, res.json), (200, None), "a body that is not JSON")
        r.check(len(res.raw) > 0, "but not empty", res)
        f.fault("drop", method="sendMessage")
        try:
            send("g")
            r.check(False, "a dropped connection gives no answer")
        except (http.client.HTTPException, ConnectionError) as e:
            r.check(True, "dropped: %s" % type(e).__name__)
        f.fault("slow", delay=0.5)
        res = send("h")
        r.check(res.ok and res.elapsed >= 0.45, "a slow answer", res.elapsed)
        f.fault("drop", after=True)
        try:
            send("i")
            r.check(False, "dropped after the send")
        except (http.client.HTTPException, ConnectionError):
            pass
        f.fault("500", after=True)
        r.eq(send("j").status, 500, "500 after the send")
        r.eq([m["text"] for m in f.sent(USER)], ["b", "d", "h", "i", "j"],
             "only sends that were carried out are recorded")
        log = f.requests("sendMessage")
        r.eq([(e["status"], e["fault"]) for e in log], [
            (429, "429"), (200, None), (500, "500"), (200, None),
            (502, "502"), (200, "malformed"), ("dropped", "drop"),
            (200, "slow"), ("dropped", "drop"), (500, "500")],
             "the log says what happened")
        r.eq(kinds(f), [], "no violations")
        r.check(send("k").ok, "no faults left")
        f.fault("500", count=5)
        f.clear_faults()
        r.check(send("l").ok, "clear_faults")
        f.fault("500", method="sendMessage", skip=2)
        r.eq([call(f, "getMe").status, send("m").status, send("n").status,
              send("o").status, send("p").status], [200, 200, 200, 500, 200],
             "skip: two sends pass (other methods do not count), then 500")
    finally:
        f.stop()


class Hook(BaseHTTPRequestHandler):
    """A webhook receiver: answers the status codes queued in .plan."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        srv = self.server
        with srv.cond:
            status = srv.plan.pop(0) if srv.plan else 200
            srv.got.append((self.headers.get("X-Telegram-Bot-Api-Secret-"
                                             "Token"), json.loads(body),
                            status, self.headers.get("Content-Type")))
            srv.cond.notify_all()
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_webhook(r, tmp):
    f = new_fake()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    hook.daemon_threads = True
    hook.cond = threading.Condition()
    hook.plan = [500, 502]
    hook.got = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/tg" % hook.server_address[1]
        res = call(f, "setWebhook", {"url": url, "secret_token": "s3cr-et_X",
                                     "allowed_updates": ["message",
                                                         "callback_query"]})
        r.check(res.ok and res.result is True, "setWebhook", res)
        res = call(f, "getUpdates", {})
        r.eq(res.status, 409, "getUpdates with a webhook set")
        r.contains([res.desc], r"can't use getUpdates method while webhook "
                   r"is active")
        upd = f.message(USER, "via webhook")
        with hook.cond:
            end = time.monotonic() + DEADLINE
            while len(hook.got) < 3 and time.monotonic() < end:
                hook.cond.wait(end - time.monotonic())
            got = list(hook.got)
        r.eq([g[2] for g in got], [500, 502, 200],
             "retried on non-2xx until taken")
        r.eq({g[0] for g in got}, {"s3cr-et_X"}, "the secret header")
        r.eq({g[3] for g in got}, {"application/json"}, "JSON")
        r.eq(got[-1][1], upd, "the update")
        f.wait_confirmed(upd["update_id"])
        info = call(f, "getWebhookInfo").result
        conforms(r, info, "WebhookInfo", "getWebhookInfo")
        r.eq((info["url"], info["pending_update_count"]), (url, 0),
             "webhook info")
        r.contains([info.get("last_error_message", "")], r"502",
                   "the last error is kept")
        r.eq([d["status"] for d in f.deliveries()], [500, 502, 200],
             "deliveries recorded")
        res = call(f, "setWebhook", {"url": url, "secret_token": "bad token!"})
        r.eq(res.status, 400, "a secret_token with bad characters")
        r.check(call(f, "deleteWebhook", {"drop_pending_updates": True}).ok,
                "deleteWebhook")
        r.eq(call(f, "getWebhookInfo").result["url"], "", "no webhook")
        f.message(USER, "polled")
        res = call(f, "getUpdates", {})
        r.eq([u["message"]["text"] for u in res.result], ["polled"],
             "polling again")
        r.eq(kinds(f), ["limit"], "only the bad secret was a violation")
    finally:
        f.stop()
        hook.shutdown()
        hook.server_close()


def test_buttons_edits_answers(r, tmp):
    f = new_fake()
    try:
        f.start_command(USER, "INV-7")
        kb = inline([("Yes", "skin:yes"), ("No", "skin:no")])
        res = call(f, "sendMessage", {"chat_id": USER, "text": "Skin ok?",
                                      "reply_markup": kb})
        mid = res.result["message_id"]
        r.eq(mid, 2, "message ids count per chat (the user's /start was 1)")
        upd = f.press(USER, data="skin:no")
        conforms(r, upd, "Update", "a callback_query update")
        q = upd["callback_query"]
        r.eq((q["data"], q["message"]["message_id"], q["from"]["id"]),
             ("skin:no", mid, USER), "the callback query")
        r.eq(f.press(USER, text="Yes")["callback_query"]["data"], "skin:yes",
             "a press by label")
        try:
            f.press(USER, data="nope")
            r.check(False, "pressing a button that is not there fails")
        except tf.ControlError:
            pass
        res = call(f, "getUpdates", {})
        r.eq([list(u)[1] for u in res.result],
             ["message", "callback_query", "callback_query"], "updates")
        res = call(f, "answerCallbackQuery", {"callback_query_id": q["id"],
                                              "text": "Noted"})
        r.check(res.ok and res.result is True, "answerCallbackQuery", res)
        res = call(f, "answerCallbackQuery", {"callback_query_id": q["id"]})
        r.eq(res.status, 400, "a second answer")
        r.contains([res.desc], r"query ID is invalid")
        r.eq(call(f, "answerCallbackQuery",
                  {"callback_query_id": "123"}).status, 400, "an unknown id")
        r.eq(call(f, "answerCallbackQuery", {"callback_query_id": q["id"],
                                             "text": "x" * 201}).status, 400,
             "an answer over 200 characters")
        r.eq([(a["data"], a.get("text")) for a in f.callback_answers()],
             [("skin:no", "Noted")], "the answers recorded")
        # Edits.
        res = call(f, "editMessageText", {"chat_id": USER, "message_id": mid,
                                          "text": "Skin ok?",
                                          "reply_markup": kb})
        r.eq(res.status, 400, "the same text and keyboard")
        r.contains([res.desc], r"^Bad Request: message is not modified")
        res = call(f, "editMessageText", {"chat_id": USER, "message_id": mid,
                                          "text": "Skin ok? No.",
                                          "reply_markup": kb})
        r.check(res.ok, "a new text", res)
        conforms(r, res.result, "Message", "an edited message")
        r.check("edit_date" in res.result, "edit_date")
        res = call(f, "editMessageText", {"chat_id": USER, "message_id": mid,
                                          "text": "Skin ok? No."})
        r.check(res.ok, "the same text without the keyboard is a change",
                res)
        r.check("reply_markup" not in res.result, "the keyboard is gone")
        r.eq(call(f, "editMessageReplyMarkup", {
            "chat_id": USER, "message_id": mid}).status, 400,
            "removing a keyboard that is not there")
        r.eq(call(f, "editMessageText", {"chat_id": USER, "message_id": 1,
                                         "text": "x"}).status, 400,
             "editing the user's message")
        r.eq(call(f, "editMessageText", {"chat_id": USER, "message_id": 99,
                                         "text": "x"}).status, 400,
             "editing a message that does not exist")
        s = f.sent(USER)
        r.eq(len(s), 1, "one bot message")
        r.eq((s[0]["text"], s[0]["reply_markup"],
              [h["text"] for h in s[0]["history"]]),
             ("Skin ok? No.", None, ["Skin ok?", "Skin ok? No."]),
             "its text, keyboard and history")
        r.check(call(f, "deleteMessage", {"chat_id": USER,
                                          "message_id": mid}).ok, "delete")
        r.eq(call(f, "deleteMessage", {"chat_id": USER,
                                       "message_id": mid}).status, 400,
             "delete twice")
        r.eq([e["kind"] for e in f.events(USER)],
             ["send", "edit", "edit", "delete"], "events")
        r.eq(kinds(f), ["limit"], "only the long answer was a violation")
    finally:
        f.stop()


def test_block_and_migrate(r, tmp):
    f = new_fake()
    try:
        f.message(USER, "hi")
        f.block(USER)
        res = call(f, "sendMessage", {"chat_id": USER, "text": "x"})
        r.eq((res.status, res.desc),
             (403, "Forbidden: bot was blocked by the user"), "blocked")
        res = call(f, "getUpdates", {})
        u = res.result[-1]
        conforms(r, u, "Update", "my_chat_member update")
        r.eq(u["my_chat_member"]["new_chat_member"]["status"], "kicked",
             "the bot was kicked")
        f.unblock(USER)
        r.check(call(f, "sendMessage", {"chat_id": USER, "text": "x"}).ok,
                "unblocked")
        f.add_group(GROUP, "Clinic")
        f.message(USER2, "hi all", chat_id=GROUP)
        r.check(call(f, "sendMessage", {"chat_id": GROUP, "text": "g"}).ok,
                "a group")
        new = f.migrate(GROUP)
        r.check(new < -1000000000000, "a supergroup id", new)
        res = call(f, "sendMessage", {"chat_id": GROUP, "text": "g"})
        r.eq((res.status, res.json.get("parameters")),
             (400, {"migrate_to_chat_id": new}), "migrate_to_chat_id")
        r.contains([res.desc], r"upgraded to a supergroup")
        res = call(f, "sendMessage", {"chat_id": new, "text": "g"})
        r.check(res.ok and res.result["chat"]["type"] == "supergroup",
                "the new id works", res)
        ups = call(f, "getUpdates", {"offset": u["update_id"] + 1}).result
        for x in ups:
            conforms(r, x, "Update", "update %r" % list(x)[1])
        r.eq([x["message"].get("migrate_to_chat_id") for x in ups[-2:]],
             [new, None], "the migration service messages")
        r.eq(ups[-1]["message"].get("migrate_from_chat_id"), GROUP,
             "migrate_from_chat_id")
        r.eq(kinds(f), [], "no violations")
    finally:
        f.stop()


def test_control_api_out_of_process(r, tmp):
    p = Proc([sys.executable, os.path.join(HERE, "telegram_fake.py"),
              "--port", "0", "--token", TOKEN], name="telegram_fake")
    m = p.expect(r"^listening 127\.0\.0\.1 (\d+)$")
    port = int(m.group(1))

    class F:
        token = TOKEN
    F.port = port
    r.eq(p.out[0], m.group(0), "the port is on the first line")

    def ctl(what, args=None, get=False):
        res = control(port, what, args, get)
        r.check(res.ok, "control %s" % what, res)
        return res.result
    upd = ctl("start", {"user_id": USER2, "code": "ABC123"})
    r.eq(upd["message"]["text"], "/start ABC123", "control start")
    ctl("message", {"user_id": USER2, "text": "hello"})
    res = call(F, "getUpdates", {"timeout": 0})
    r.eq([u["message"]["text"] for u in res.result],
         ["/start ABC123", "hello"], "the updates")
    r.eq(res.result[0]["message"]["from"]["id"], USER2, "a 64-bit user id")
    last = res.result[-1]["update_id"]
    call(F, "sendMessage", {"chat_id": USER2, "text": "Ready?",
                            "reply_markup": inline([("Go", "go")])})
    sent = ctl("wait_sent", {"chat_id": USER2, "count": 1, "timeout": 10})
    r.eq(sent[0]["text"], "Ready?", "wait_sent / sent")
    upd = ctl("press", {"chat_id": USER2, "data": "go"})
    r.eq(upd["callback_query"]["data"], "go", "control press")
    res = call(F, "getUpdates", {"offset": last + 1})
    r.eq(res.result, [upd], "the press arrives")
    ctl("wait_confirmed", {"update_id": last, "timeout": 5})
    ctl("fault", {"kind": "502", "method": "getMe"})
    r.eq(call(F, "getMe").status, 502, "a fault set over HTTP")
    ctl("block", {"chat_id": USER2, "notify": False})
    r.eq(call(F, "sendMessage", {"chat_id": USER2, "text": "x"}).status, 403,
         "blocked over HTTP")
    ctl("group", {"chat_id": GROUP, "title": "G"})
    new = ctl("migrate", {"chat_id": GROUP})
    r.eq(call(F, "sendMessage", {"chat_id": GROUP, "text": "x"}).json
         .get("parameters"), {"migrate_to_chat_id": new}, "migrate over HTTP")
    r.eq(ctl("sent", {"chat_id": USER2}, get=True)[0]["text"], "Ready?",
         "sent by GET")
    log = ctl("log", get=True)
    r.eq([e["method"] for e in log],
         ["getUpdates", "sendMessage", "getUpdates", "getMe", "sendMessage",
          "sendMessage"], "the log")
    r.eq(ctl("violations", get=True), [], "no violations")
    call(F, "sendMessage", {"chat_id": USER2})
    r.eq([v["kind"] for v in ctl("violations", get=True)], ["spec"],
         "a violation over HTTP")
    res = control(port, "press", {"chat_id": USER2, "data": "nope"})
    r.eq(res.status, 400, "a bad control request")
    r.eq(control(port, "nothing").status, 404, "an unknown control endpoint")
    p.signal(signal.SIGTERM)
    r.eq(p.finish(), 0, "SIGTERM ends the fake cleanly")


def main():
    # The binary (argv[1], as for every ctest script) is not needed here.
    os.chdir(REPO)
    return Runner().run([
        test_getme_auth_and_paths,
        test_validation_required_and_unknown_fields,
        test_validation_types,
        test_form_get_and_multipart,
        test_text_limits_and_html,
        test_keyboard_limits,
        test_long_poll_wakes_on_update,
        test_long_poll_timeout,
        test_offset_limit_and_allowed_updates,
        test_renumber,
        test_concurrent_getupdates_conflict,
        test_rate_limits,
        test_faults,
        test_webhook,
        test_buttons_edits_answers,
        test_block_and_migrate,
        test_control_api_out_of_process,
    ])


if __name__ == "__main__":
    sys.exit(main())
