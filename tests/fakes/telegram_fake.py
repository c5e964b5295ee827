#!/usr/bin/env python3
"""telegram_fake.py: a stateful fake of the Telegram Bot API server.

Python 3 standard library only. Importable (Fake) and runnable:

    python3 tests/fakes/telegram_fake.py --port 0 --token TOKEN

prints "listening 127.0.0.1 PORT" as its first stdout line and serves until
killed (SIGTERM/SIGINT).

Bot API calls go to /bot<TOKEN>/<method> (GET with a query string, or POST
with application/json, application/x-www-form-urlencoded or
multipart/form-data). Every call is checked against the machine-readable
spec (../shared/specs/telegram/api.json): the method exists, required fields
are there, no unknown fields, every value has one of the field's types
(nested objects checked field by field), and the documented limits hold. A
violation is answered 400 "Bad Request: ..." like Telegram would, and is
also recorded, so a test can assert there were none: Fake.violations().

Tests drive the fake in-process (methods on Fake) or over HTTP under
/control/... (see README.md next to this file). Nothing here sleeps to "let
things happen": waits are on a condition variable with a deadline.
"""
import argparse
import collections
import copy
import email.parser
import email.policy
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_SPEC = os.environ.get(
    "STRIGIL_TELEGRAM_SPEC",
    os.path.join(REPO, "..", "shared", "specs", "telegram", "api.json"))
DEFAULT_TOKEN = "123456789:AAFakeTokenForStrigilTests_0123456789"

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
TEXT_MAX = 4096               # sendMessage/editMessageText text, UTF-16 units
CALLBACK_DATA_MAX = 64        # bytes
CALLBACK_ANSWER_MAX = 200     # answerCallbackQuery text
BUTTONS_PER_ROW_MAX = 8
BUTTONS_MAX = 100
PARSE_MODES = ("html", "markdown", "markdownv2")
CHAT_ACTIONS = ("typing", "upload_photo", "record_video", "upload_video",
                "record_voice", "upload_voice", "upload_document",
                "choose_sticker", "find_location", "record_video_note",
                "upload_video_note")
# Update types not delivered unless asked for by name.
NOT_DEFAULT_UPDATES = ("chat_member", "message_reaction",
                       "message_reaction_count")
FAULT_KINDS = ("400", "429", "500", "502", "malformed", "drop", "slow")

CONFLICT_POLL = ("Conflict: terminated by other getUpdates request; make "
                 "sure that only one bot instance is running")
CONFLICT_HOOK = ("Conflict: can't use getUpdates method while webhook is "
                 "active; use deleteWebhook to delete the webhook first")
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message "
                "content and reply markup are exactly the same as a current "
                "content and reply markup of the message")
QUERY_INVALID = ("Bad Request: query is too old and response timeout expired "
                 "or query ID is invalid")


def utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


def jtype(v):
    """The JSON name of a Python value's type, for messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _no_constants(name):
    raise ValueError("%s is not JSON" % name)


def loads(text):
    """Strict JSON: no NaN/Infinity."""
    return json.loads(text, parse_constant=_no_constants)


# ---- the spec ---------------------------------------------------------------

class Spec:
    """api.json: methods and types, and a checker of values against them."""

    CONST_RE = re.compile(r'(?:must be|always)\s+["\u201c]?([A-Za-z_]+)'
                          r'["\u201d]?\s*$')

    def __init__(self, path=DEFAULT_SPEC):
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        self.version = d.get("version")
        self.methods = d["methods"]
        self.types = d["types"]
        self._lower = {k.lower(): k for k in self.methods}
        # Discriminators of subtypes ("type": must be "chat"): value checks.
        subtypes = set()
        for t in self.types.values():
            subtypes.update(t.get("subtypes", ()))
        self.consts = {}
        for name in subtypes:
            for f in self.types.get(name, {}).get("fields", ()):
                if f["name"] in ("type", "status", "source"):
                    m = self.CONST_RE.search(f.get("description", ""))
                    if m:
                        self.consts[(name, f["name"])] = m.group(1)
        self.update_kinds = [f["name"] for f in
                             self.types["Update"]["fields"]
                             if f["name"] != "update_id"]

    def method(self, name):
        """The method's spec (names are case-insensitive), or None."""
        real = self._lower.get(name.lower())
        return self.methods[real] if real else None

    def fields(self, type_or_method):
        return {f["name"]: f for f in type_or_method.get("fields", ())}

    def check(self, v, types, path):
        """None if v has one of `types`, else the reason, naming `path`."""
        errs = []
        for t in types:
            e = self._check_one(v, t, path)
            if e is None:
                return None
            errs.append((t, e))
        if len(errs) == 1:
            return errs[0][1]
        if isinstance(v, dict):
            # The alternative the object was meant to be: its required
            # fields are all there. Report that one's complaint.
            meant = [(t, e) for t, e in errs if self._looks_like(v, t)]
            if len(meant) == 1:
                return meant[0][1]
        return "%s: expected %s, got %s" % (path, " or ".join(types),
                                            jtype(v))

    def _looks_like(self, v, t):
        ty = self.types.get(t)
        if not ty or "fields" not in ty:
            return False
        req = [f["name"] for f in ty["fields"] if f["required"]]
        return bool(req) and all(r in v for r in req)

    def _check_one(self, v, t, path):
        if v is None:
            return "%s: null is not a valid %s" % (path, t)
        if t.startswith("Array of "):
            if not isinstance(v, list):
                return "%s: expected %s, got %s" % (path, t, jtype(v))
            for i, x in enumerate(v):
                e = self.check(x, [t[len("Array of "):]], "%s[%d]" % (path, i))
                if e:
                    return e
            return None
        if t == "Integer":
            if isinstance(v, bool) or not isinstance(v, int):
                return "%s: expected Integer, got %s" % (path, jtype(v))
            if not INT64_MIN <= v <= INT64_MAX:
                return "%s: Integer out of 64-bit range" % path
            return None
        if t == "Float":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return "%s: expected Float, got %s" % (path, jtype(v))
            return None
        if t == "String":
            return None if isinstance(v, str) else \
                "%s: expected String, got %s" % (path, jtype(v))
        if t == "Boolean":
            return None if isinstance(v, bool) else \
                "%s: expected Boolean, got %s" % (path, jtype(v))
        if t == "InputFile":
            # A file_id or an HTTP URL; uploads are not faked.
            return None if isinstance(v, str) else \
                "%s: expected InputFile (file_id or URL), got %s" % (
                    path, jtype(v))
        ty = self.types.get(t)
        if ty is None:
            return "%s: unknown type %s in the spec" % (path, t)
        if ty.get("subtypes"):
            return self.check(v, ty["subtypes"], path)
        if not isinstance(v, dict):
            return "%s: expected %s object, got %s" % (path, t, jtype(v))
        fields = self.fields(ty)
        for k in v:
            if k not in fields:
                return "%s: unknown field \"%s\" in %s" % (path, k, t)
        for name, f in fields.items():
            if f["required"] and name not in v:
                return "%s: required field \"%s\" of %s is missing" % (
                    path, name, t)
        for k, x in v.items():
            e = self.check(x, fields[k]["types"], "%s.%s" % (path, k))
            if e:
                return e
            want = self.consts.get((t, k))
            if want is not None and x != want:
                return "%s.%s: must be \"%s\" in %s" % (path, k, want, t)
        return None

    @staticmethod
    def coerce(raw, types):
        """A form/query string as the field's type, as Telegram reads it
        (numbers and booleans as text, objects and arrays JSON-serialized).
        Returns raw unchanged when nothing fits: check() then complains."""
        for t in types:
            if t == "Integer" and re.fullmatch(r"-?\d+", raw):
                return int(raw)
            if t == "Float":
                try:
                    return float(raw)
                except ValueError:
                    pass
            if t == "Boolean" and raw.lower() in ("true", "false"):
                return raw.lower() == "true"
            if t in ("String", "InputFile"):
                return raw
            if t not in ("Integer", "Float", "Boolean"):
                try:
                    return loads(raw)
                except ValueError:
                    pass
        return raw


# ---- HTML formatting --------------------------------------------------------

HTML_ENTITY_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic",
    "u": "underline", "ins": "underline", "s": "strikethrough",
    "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler", "a": "text_link",
    "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": None, "tg-time": None,
}
TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*"
                    r"(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)\s*>")
ATTR_RE = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|"
                     r"([^\s>\"']+)))?")
CHAR_REF_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#(\d+)|#x([0-9a-fA-F]+));")
NAMED_REFS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class EntityError(Exception):
    pass


def parse_html(s):
    """(plain text, entities) of a parse_mode=HTML text; EntityError if
    Telegram would refuse it ("can't parse entities")."""
    out, ents, stack = [], [], []
    u16 = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "<":
            off = len(s[:i].encode("utf-8"))
            m = TAG_RE.match(s, i)
            if not m:
                raise EntityError("Unsupported start tag at byte offset %d"
                                  % off)
            close, name = m.group(1), m.group(2).lower()
            if name not in HTML_ENTITY_TYPES:
                raise EntityError("Unsupported start tag \"%s\" at byte "
                                  "offset %d" % (name, off))
            if close:
                if not stack or stack[-1][0] != name:
                    raise EntityError(
                        "Unmatched end tag at byte offset %d, expected "
                        "\"</%s>\", found \"</%s>\"" % (
                            off, stack[-1][0] if stack else "", name))
                tag, start, attrs = stack.pop()
                kind = HTML_ENTITY_TYPES[tag]
                if kind and u16 > start:
                    e = {"type": kind, "offset": start, "length": u16 - start}
                    if kind == "text_link":
                        e["url"] = attrs.get("href", "")
                    ents.append(e)
            else:
                attrs = {}
                for am in ATTR_RE.finditer(m.group(3)):
                    attrs[am.group(1).lower()] = (am.group(2) or am.group(3)
                                                  or am.group(4) or "")
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise EntityError("Tag \"span\" must have class "
                                      "\"tg-spoiler\" at byte offset %d" % off)
                if name == "a" and "href" not in attrs:
                    raise EntityError("Tag \"a\" must have attribute href "
                                      "at byte offset %d" % off)
                stack.append((name, u16, attrs))
            i = m.end()
            continue
        if c == "&":
            m = CHAR_REF_RE.match(s, i)
            if m:
                if m.group(1):
                    c = NAMED_REFS[m.group(1)]
                else:
                    c = chr(int(m.group(2)) if m.group(2)
                            else int(m.group(3), 16))
                out.append(c)
                u16 += utf16_len(c)
                i = m.end()
                continue
        out.append(c)
        u16 += 2 if ord(c) > 0xFFFF else 1
        i += 1
    if stack:
        raise EntityError("Can't find end tag corresponding to start tag "
                          "\"%s\"" % stack[-1][0])
    ents.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), ents


# ---- errors -----------------------------------------------------------------

class ApiError(Exception):
    """An error answer. kind names the violation to record, if any."""

    def __init__(self, code, description, parameters=None, kind=None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters
        self.kind = kind


def bad(description, kind="spec"):
    return ApiError(400, "Bad Request: " + description, kind=kind)


class ControlError(Exception):
    pass


# ---- the fake ---------------------------------------------------------------

class Fake:
    """The fake Bot API server for one bot token.

    Fake(...).start() serves on 127.0.0.1:port (0 = a free port, see
    .port and .base_url). All state sits behind one lock; every change
    notifies one condition, which the wait_* helpers and long polls wait on.
    """

    def __init__(self, token=DEFAULT_TOKEN, spec=None, host="127.0.0.1",
                 port=0, rate_limits=True, first_update_id=800000001,
                 webhook_retry=(0.1, 2.0), bot_name="Strigil Test Bot",
                 bot_username="strigil_test_bot"):
        self.token = token
        self.spec = spec if isinstance(spec, Spec) else Spec(spec or
                                                             DEFAULT_SPEC)
        self.host = host
        self.req_port = port
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.clock = time.monotonic   # rate limits; tests may replace it
        bot_id = int(token.split(":")[0]) if token.split(":")[0].isdigit() \
            else 123456789
        self.bot = {"id": bot_id, "is_bot": True, "first_name": bot_name,
                    "username": bot_username, "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False}
        self.limits = {"enabled": rate_limits, "per_chat_per_sec": 1,
                       "group_per_min": 20, "global_per_sec": 30,
                       "count_edits": False}
        self.webhook_retry = webhook_retry
        self.first_update_id = first_update_id
        self.httpd = None
        self.threads = []
        self.conns = set()
        self._stopping = False
        self.reset()

    # ---- state ----------------------------------------------------------

    def reset(self):
        """Forgets every chat, update, message, log entry and fault."""
        with self.cond:
            self.next_update_id = self.first_update_id
            self.updates = []          # pending (unconfirmed) updates
            self.max_delivered = 0     # highest update_id handed out
            self.confirmed = 0         # highest update_id confirmed
            self.renumbered = False    # renumber() was called
            self.allowed_updates = []
            self.poll_gen = 0
            self.polling = 0           # getUpdates requests being held
            self.chats = {}            # id -> chat state
            self.users = {}
            self.queries = {}          # callback_query id -> state
            self.next_query = 1
            self.outbox = []           # send/edit/delete events
            self.answers = []          # answerCallbackQuery calls
            self.commands = []
            self.chat_actions = []
            self.log = []
            self.violation_list = []
            self.faults = []
            self.webhook = None        # dict while a webhook is set
            self.webhook_gen = 0
            self.webhook_error = None  # (date, message)
            self.webhook_deliveries = []
            self.wh_next_try = 0.0
            self.wh_backoff = self.webhook_retry[0]
            self.sends_chat = collections.defaultdict(collections.deque)
            self.sends_all = collections.deque()
            self.bans = {}             # scope -> monotonic time it lifts
            self.seq = 0
            self.cond.notify_all()

    # ---- serving ----------------------------------------------------------

    def start(self):
        fake = self

        class Handler(_Handler):
            pass
        Handler.fake = fake
        self.httpd = ThreadingHTTPServer((self.host, self.req_port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        t = threading.Thread(target=self.httpd.serve_forever,
                             kwargs={"poll_interval": 0.1}, daemon=True,
                             name="telegram-fake-http")
        t.start()
        w = threading.Thread(target=self._webhook_loop, daemon=True,
                             name="telegram-fake-webhook")
        w.start()
        self.threads = [t, w]
        return self

    @property
    def base_url(self):
        """http://127.0.0.1:PORT: the adapter's API base (the fake serves
        /bot<TOKEN>/<method> under it)."""
        return "http://%s:%d" % (self.host, self.port)

    @property
    def api_url(self):
        return "%s/bot%s/" % (self.base_url, self.token)

    def stop(self):
        with self.cond:
            self._stopping = True
            self.cond.notify_all()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        # Kept-alive connections must not outlive the server.
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- users, chats, updates ------------------------------------------

    def _user(self, user_id, first_name=None, username=None,
              language_code=None):
        u = self.users.get(user_id)
        if u is None:
            u = {"id": user_id, "is_bot": False,
                 "first_name": first_name or "User%d" % (user_id % 10000)}
            u["language_code"] = language_code or "en"
            self.users[user_id] = u
        if first_name:
            u["first_name"] = first_name
        if username:
            u["username"] = username
        if language_code:
            u["language_code"] = language_code
        return u

    def _chat(self, chat_id, create=None):
        c = self.chats.get(chat_id)
        if c is None and create:
            c = {"chat": create, "next_id": 1, "messages": {},
                 "blocked": False, "migrated_to": None}
            self.chats[chat_id] = c
        return c

    def _private(self, user):
        chat = {"id": user["id"], "type": "private",
                "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        c = self._chat(user["id"], create=chat)
        c["chat"].update(chat)
        return c

    def _push_update(self, kind, obj):
        """Queues an update unless allowed_updates filters it out. The
        update (with its id) or None."""
        allowed = self.allowed_updates or [
            k for k in self.spec.update_kinds if k not in NOT_DEFAULT_UPDATES]
        upd = {"update_id": self.next_update_id, kind: obj}
        self.next_update_id += 1
        if kind not in allowed:
            return None
        self.updates.append(upd)
        self.cond.notify_all()
        return copy.deepcopy(upd)

    def _new_message(self, c, from_user, text=None, bot=False, **extra):
        mid = c["next_id"]
        c["next_id"] += 1
        rec = {"message_id": mid, "chat_id": c["chat"]["id"], "bot": bot,
               "from": from_user, "date": int(time.time()), "text": text,
               "raw_text": text, "parse_mode": None, "entities": None,
               "reply_markup": None, "edit_date": None, "deleted": False,
               "extra": extra, "history": []}
        c["messages"][mid] = rec
        return rec

    def _message_obj(self, rec):
        """The Message object of a stored message, as the API shows it."""
        c = self.chats[rec["chat_id"]]
        m = {"message_id": rec["message_id"]}
        if rec["from"] is not None:
            m["from"] = copy.deepcopy(rec["from"])
        m["chat"] = copy.deepcopy(c["chat"])
        m["date"] = rec["date"]
        if rec["edit_date"]:
            m["edit_date"] = rec["edit_date"]
        if rec["text"] is not None:
            m["text"] = rec["text"]
        if rec["entities"]:
            m["entities"] = copy.deepcopy(rec["entities"])
        m.update(copy.deepcopy(rec["extra"]))
        if rec["reply_markup"] and rec["reply_markup"].get("inline_keyboard"):
            m["reply_markup"] = copy.deepcopy(rec["reply_markup"])
        return m

    def message(self, user_id, text, chat_id=None, first_name=None,
                username=None, language_code=None):
        """A user (64-bit ids welcome) writes `text` to the bot, in their
        private chat or in group `chat_id`. Returns the update (None if
        allowed_updates filtered it out)."""
        if not isinstance(text, str) or not text:
            raise ControlError("text must be a non-empty string")
        with self.cond:
            user = self._user(int(user_id), first_name, username,
                              language_code)
            if chat_id is None or int(chat_id) == user["id"]:
                c = self._private(user)
            else:
                c = self._chat(int(chat_id))
                if c is None:
                    raise ControlError("no chat %s: add_group() it first"
                                       % chat_id)
                if c["migrated_to"] is not None:
                    raise ControlError("chat %s migrated to %s" % (
                        chat_id, c["migrated_to"]))
            ents = None
            m = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
            if m:
                ents = [{"type": "bot_command", "offset": 0,
                         "length": utf16_len(m.group(0))}]
            rec = self._new_message(c, copy.deepcopy(user), text)
            rec["entities"] = ents
            return self._push_update("message", self._message_obj(rec))

    def start_command(self, user_id, code=None, **kw):
        """The user opens the bot's deep link: "/start CODE" (or "/start")."""
        return self.message(user_id, "/start" + (" " + code if code else ""),
                            **kw)

    def add_group(self, chat_id, title="Test group", type="group"):
        """Makes a group (negative id) the bot is a member of."""
        with self.cond:
            chat_id = int(chat_id)
            c = self._chat(chat_id, create={"id": chat_id, "type": type,
                                            "title": title})
            return copy.deepcopy(c["chat"])

    def press(self, chat_id, message_id=None, data=None, text=None,
              user_id=None):
        """The user presses an inline button of a bot message (the latest one
        with a keyboard unless message_id), chosen by its callback_data or
        its label. Returns the callback_query update."""
        with self.cond:
            chat_id = int(chat_id)
            c = self._chat(chat_id)
            if c is None:
                raise ControlError("no chat %s" % chat_id)
            recs = [r for r in c["messages"].values() if r["bot"]
                    and not r["deleted"] and r["reply_markup"]
                    and r["reply_markup"].get("inline_keyboard")]
            if message_id is not None:
                recs = [r for r in recs if r["message_id"] == int(message_id)]
            if not recs:
                raise ControlError("no bot message with an inline keyboard "
                                   "in chat %s%s" % (chat_id, "" if message_id
                                                     is None else " id %s" %
                                                     message_id))
            rec = recs[-1]
            button = None
            for row in rec["reply_markup"]["inline_keyboard"]:
                for b in row:
                    if (data is not None and b.get("callback_data") == data) \
                            or (data is None and text is not None and
                                b.get("text") == text):
                        button = b
            if button is None or "callback_data" not in button:
                raise ControlError("message %d in chat %s has no callback "
                                   "button %r; it has %r" % (
                                       rec["message_id"], chat_id,
                                       data if data is not None else text,
                                       rec["reply_markup"]["inline_keyboard"]))
            if user_id is None:
                user_id = chat_id if c["chat"]["type"] == "private" else None
            if user_id is None:
                raise ControlError("user_id is needed to press in a group")
            user = self._user(int(user_id))
            qid = "%d%06d" % (self.bot["id"] % 100000, self.next_query)
            self.next_query += 1
            self.queries[qid] = {"id": qid, "chat_id": chat_id,
                                 "message_id": rec["message_id"],
                                 "data": button["callback_data"],
                                 "answered": False}
            q = {"id": qid, "from": copy.deepcopy(user),
                 "message": self._message_obj(rec),
                 "chat_instance": str(abs(hash((chat_id, "instance")))
                                      % 10 ** 18),
                 "data": button["callback_data"]}
            return self._push_update("callback_query", q)

    def block(self, chat_id, notify=True):
        """The user blocks the bot: sends to the chat get 403 from now on.
        With notify, a my_chat_member update (member -> kicked) is queued."""
        self._set_blocked(chat_id, True, notify)

    def unblock(self, chat_id, notify=True):
        self._set_blocked(chat_id, False, notify)

    def _set_blocked(self, chat_id, blocked, notify):
        with self.cond:
            c = self._chat(int(chat_id))
            if c is None:
                raise ControlError("no chat %s" % chat_id)
            if c["blocked"] == blocked:
                return
            c["blocked"] = blocked
            if notify and c["chat"]["type"] == "private":
                user = self.users.get(c["chat"]["id"])
                old = {"status": "member", "user": copy.deepcopy(self.bot)}
                new = {"status": "kicked", "user": copy.deepcopy(self.bot),
                       "until_date": 0}
                if not blocked:
                    old, new = new, old
                self._push_update("my_chat_member", {
                    "chat": copy.deepcopy(c["chat"]),
                    "from": copy.deepcopy(user), "date": int(time.time()),
                    "old_chat_member": old, "new_chat_member": new})
            self.cond.notify_all()

    def migrate(self, chat_id, new_chat_id=None):
        """Group chat_id becomes a supergroup: sends to the old id get 400
        with parameters.migrate_to_chat_id; the service messages
        (migrate_to_chat_id / migrate_from_chat_id) are queued as updates.
        Returns the new id."""
        with self.cond:
            chat_id = int(chat_id)
            c = self._chat(chat_id)
            if c is None or c["chat"]["type"] != "group":
                raise ControlError("chat %s is not a group" % chat_id)
            if new_chat_id is None:
                new_chat_id = int("-100" + str(abs(chat_id)).rjust(10, "0"))
            new_chat_id = int(new_chat_id)
            c["migrated_to"] = new_chat_id
            n = self._chat(new_chat_id, create={
                "id": new_chat_id, "type": "supergroup",
                "title": c["chat"].get("title", "Test group")})
            r1 = self._new_message(c, None, migrate_to_chat_id=new_chat_id)
            self._push_update("message", self._message_obj(r1))
            r2 = self._new_message(n, None, migrate_from_chat_id=chat_id)
            self._push_update("message", self._message_obj(r2))
            return new_chat_id

    def renumber(self, first_id):
        """What Telegram does after a week without updates: the next
        update ids start again from `first_id`, below the old ones. An
        offset from the old numbering (above every id of the new one)
        confirms none of the new updates, and getUpdates returns them."""
        with self.cond:
            first_id = int(first_id)
            if first_id >= self.next_update_id or first_id < 1:
                raise ControlError("renumbering starts below the last id")
            if self.updates:
                raise ControlError("updates are pending: renumbering "
                                   "follows a week without any")
            self.next_update_id = first_id
            self.max_delivered = self.confirmed = first_id - 1
            self.renumbered = True

    # ---- faults and limits ------------------------------------------------

    def fault(self, kind, count=1, method=None, retry_after=1, delay=1.0,
              after=False, skip=0):
        """After `skip` requests that pass (of `method` only, if given),
        the next `count` fail:
        "400" (a request refused as such), "429" (parameters.retry_after),
        "500", "502", "malformed" (200 with
        a body that is not JSON), "drop" (connection closed without an
        answer), "slow" (answered normally after `delay` seconds). With
        after=True the request is carried out first and only its answer is
        lost (a send that did happen, though the client saw an error)."""
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ControlError("fault kind must be one of %s" %
                               ", ".join(FAULT_KINDS))
        with self.cond:
            self.faults.append({"kind": kind, "count": int(count),
                                "method": method,
                                "retry_after": int(retry_after),
                                "delay": float(delay), "after": bool(after),
                                "skip": int(skip)})

    def clear_faults(self):
        with self.cond:
            self.faults = []

    def set_rate_limits(self, enabled=None, per_chat_per_sec=None,
                        group_per_min=None, global_per_sec=None,
                        count_edits=None):
        with self.cond:
            for k, v in (("enabled", enabled),
                         ("per_chat_per_sec", per_chat_per_sec),
                         ("group_per_min", group_per_min),
                         ("global_per_sec", global_per_sec),
                         ("count_edits", count_edits)):
                if v is not None:
                    self.limits[k] = v
            self.bans.clear()
            return dict(self.limits)

    def _take_fault(self, method):
        with self.cond:
            for f in self.faults:
                if f["method"] is None or \
                        f["method"].lower() == method.lower():
                    if f["skip"] > 0:
                        f["skip"] -= 1
                        return None
                    f["count"] -= 1
                    if f["count"] <= 0:
                        self.faults.remove(f)
                    return dict(f)
        return None

    def _ban_check(self, scopes, method, chat_id):
        """429 if a scope is still under a retry_after; the client ignored
        it, which is recorded as a violation."""
        now = self.clock()
        for scope in scopes:
            until = self.bans.get(scope)
            if until is not None and now < until - 0.05:
                ra = max(1, int(math.ceil(until - now)))
                self._violate("retry_after", method,
                              "request %s %.2fs before the retry_after of "
                              "an earlier 429 ran out" % (
                                  "/".join(str(s) for s in scope),
                                  until - now))
                raise ApiError(429, "Too Many Requests: retry after %d" % ra,
                               {"retry_after": ra})

    def _flood_check(self, method, chat_id, group):
        """Telegram's flood limits: per chat (1/s; 20/min in groups) and
        overall (30/s). Counts the request if it may go."""
        scopes = [("chat", chat_id), ("global",)]
        self._ban_check(scopes, method, chat_id)
        if not self.limits["enabled"]:
            return
        now = self.clock()
        per = self.sends_chat[chat_id]
        win = 60.0 if group else 1.0
        cap = self.limits["group_per_min"] if group else \
            self.limits["per_chat_per_sec"]
        while per and per[0] <= now - win:
            per.popleft()
        while self.sends_all and self.sends_all[0] <= now - 1.0:
            self.sends_all.popleft()
        for scope, q, w, n in ((("chat", chat_id), per, win, cap),
                               (("global",), self.sends_all, 1.0,
                                self.limits["global_per_sec"])):
            if len(q) >= n:
                ra = max(1, int(math.ceil(q[len(q) - n] + w - now)))
                self.bans[scope] = now + ra
                raise ApiError(429, "Too Many Requests: retry after %d" % ra,
                               {"retry_after": ra})
        per.append(now)
        self.sends_all.append(now)

    # ---- records for tests ---------------------------------------------

    def _violate(self, kind, method, description, params=None):
        with self.cond:
            self.violation_list.append({
                "kind": kind, "method": method, "description": description,
                "params": copy.deepcopy(params)})
            self.cond.notify_all()

    def violations(self):
        """Every spec violation so far: [{kind, method, description,
        params}]. kind: spec (types, fields), limit (documented limits),
        entities (bad HTML), unknown_method, unimplemented (valid but not
        faked), retry_after (a retry before retry_after ran out), offset
        (getUpdates offset confirming updates never delivered)."""
        with self.cond:
            return copy.deepcopy(self.violation_list)

    def requests(self, method=None):
        """The log of Bot API requests: [{seq, method, http, params,
        status, ok, description, fault, duration}]."""
        with self.cond:
            return [copy.deepcopy(e) for e in self.log if method is None
                    or (e["method"] or "").lower() == method.lower()]

    def sent(self, chat_id):
        """The bot's messages in a chat, as they are now (edited text and
        keyboard; deleted ones have "deleted": True), oldest first. Each:
        {message_id, text, raw_text, parse_mode, entities, reply_markup,
        date, edit_date, deleted, history: [earlier (text, markup)]}."""
        with self.cond:
            c = self.chats.get(int(chat_id))
            if c is None:
                return []
            out = []
            for r in sorted(c["messages"].values(),
                            key=lambda r: r["message_id"]):
                if r["bot"]:
                    d = {k: copy.deepcopy(v) for k, v in r.items()
                         if k not in ("from", "bot", "extra")}
                    out.append(d)
            return out

    def events(self, chat_id=None):
        """Every send/edit/delete, in order: [{kind, chat_id, message_id,
        text, reply_markup}]."""
        with self.cond:
            return [copy.deepcopy(e) for e in self.outbox if chat_id is None
                    or e["chat_id"] == int(chat_id)]

    def callback_answers(self):
        with self.cond:
            return copy.deepcopy(self.answers)

    def pending_updates(self):
        with self.cond:
            return copy.deepcopy(self.updates)

    def webhook_info(self):
        with self.cond:
            return self._webhook_info()

    def deliveries(self):
        """Webhook POSTs tried: [{update_id, status, error, secret}]."""
        with self.cond:
            return copy.deepcopy(self.webhook_deliveries)

    def clear_log(self):
        with self.cond:
            self.log = []
            self.violation_list = []
            self.outbox = []

    def wait_for(self, pred, timeout=10.0, what="condition"):
        """Waits until pred() (called under the lock) is true; its value.
        AssertionError after `timeout` seconds."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("telegram fake: no %s within %.1fs"
                                         % (what, timeout))
                self.cond.wait(left)

    def wait_sent(self, chat_id, count=1, timeout=10.0):
        """Waits until the bot has sent `count` messages to the chat; the
        sent() list."""
        chat_id = int(chat_id)

        def have():
            s = self.sent(chat_id)
            return s if len(s) >= count else None
        return self.wait_for(have, timeout, "%d message(s) to chat %d" % (
            count, chat_id))

    def wait_requests(self, method, count=1, timeout=10.0):
        def have():
            r = self.requests(method)
            return r if len(r) >= count else None
        return self.wait_for(have, timeout, "%d %s request(s)" % (count,
                                                                   method))

    def wait_confirmed(self, update_id, timeout=10.0):
        """Waits until update_id is confirmed (getUpdates or webhook)."""
        return self.wait_for(lambda: self.confirmed >= update_id, timeout,
                             "confirmation of update %d" % update_id)

    def wait_polling(self, timeout=10.0):
        """Waits until a getUpdates request is being held (long polling)."""
        return self.wait_for(lambda: self.polling > 0, timeout,
                             "getUpdates being held")

    # ---- the HTTP request --------------------------------------------

    def _handle(self, h):
        t0 = time.monotonic()
        url = urllib.parse.urlsplit(h.path)
        path = url.path
        try:
            body = h.read_body()
        except ValueError as e:
            return h.answer(400, {"ok": False, "error_code": 400,
                                  "description": "Bad Request: %s" % e})
        if path.startswith("/control/"):
            return self._control(h, path[len("/control/"):], url.query, body)
        m = re.fullmatch(r"/bot([^/]*)/([^/]*)", path)
        if not m:
            return h.answer(404, {"ok": False, "error_code": 404,
                                  "description": "Not Found"})
        token, mname = m.group(1), m.group(2)
        if token != self.token:
            return h.answer(401, {"ok": False, "error_code": 401,
                                  "description": "Unauthorized"})
        with self.cond:
            self.seq += 1
            entry = {"seq": self.seq, "method": mname, "http": h.command,
                     "content_type": h.headers.get("Content-Type"),
                     "params": None, "status": None, "ok": None,
                     "description": None, "fault": None, "duration": None,
                     "time": time.time()}
            self.log.append(entry)
            # A request on its way in can be waited for (wait_requests),
            # a slow one before its answer.
            self.cond.notify_all()
        spec_m = self.spec.method(mname)
        if spec_m is not None:
            mname = spec_m["name"]
            entry["method"] = mname
        fault = self._take_fault(mname) if spec_m is not None else None
        if fault:
            entry["fault"] = fault["kind"]
        status, obj, raw = 200, None, None
        try:
            if spec_m is None:
                self._violate("unknown_method", mname,
                              "no method %s in the Bot API" % mname)
                raise ApiError(404, "Not Found")
            params = self._params(h, url.query, body, spec_m)
            entry["params"] = {k: copy.deepcopy(v)
                               for k, (_, v) in params.items()}
            if fault and fault["kind"] == "slow":
                self._sleep(fault["delay"])
            if fault and not fault["after"] and fault["kind"] != "slow":
                raise _Fault(fault)
            with self.cond:
                self._ban_check([("method", mname)], mname, None)
            params = self._validate(spec_m, params)
            entry["params"] = copy.deepcopy(params)
            result = getattr(self, "_m_" + mname, None)
            if result is None:
                raise bad("the fake does not implement %s" % mname,
                          kind="unimplemented")
            result = result(params)
            obj = {"ok": True, "result": result}
            if fault and fault["after"] and fault["kind"] != "slow":
                raise _Fault(fault)
        except ApiError as e:
            status = e.code
            obj = {"ok": False, "error_code": e.code,
                   "description": e.description}
            if e.parameters:
                obj["parameters"] = e.parameters
            if e.kind:
                self._violate(e.kind, mname, e.description,
                              entry["params"])
        except _Fault:
            pass    # the request is not carried out; the fault answers
        k = fault["kind"] if fault else None
        if k == "429":
            ra = fault["retry_after"]
            with self.cond:
                self.bans[("method", mname)] = self.clock() + ra
            status, obj = 429, {
                "ok": False, "error_code": 429,
                "description": "Too Many Requests: retry after %d" % ra,
                "parameters": {"retry_after": ra}}
        elif k == "400":
            status, obj = 400, {"ok": False, "error_code": 400,
                                "description": "Bad Request: injected"}
        elif k in ("500", "502"):
            status = int(k)
            obj = {"ok": False, "error_code": status,
                   "description": "Internal Server Error" if k == "500"
                   else "Bad Gateway"}
        elif k == "malformed":
            raw = b'{"ok":true,"result":{"message_id":'
        with self.cond:
            entry["duration"] = round(time.monotonic() - t0, 3)
            if k == "drop":
                entry["status"], entry["ok"] = "dropped", False
            elif raw is not None:
                entry["status"], entry["ok"] = 200, False
                entry["description"] = "malformed"
            else:
                entry["status"] = status
                entry["ok"] = obj.get("ok")
                entry["description"] = obj.get("description")
            self.cond.notify_all()
        if k == "drop":
            return h.drop()
        if raw is not None:
            return h.answer_raw(200, raw)
        return h.answer(status, obj)

    def _sleep(self, seconds):
        end = time.monotonic() + seconds
        with self.cond:
            while not self._stopping:
                left = end - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def _params(self, h, query, body, spec_m):
        """{name: (source, value)}: source "form" (text to coerce) or
        "json"."""
        out = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            out[k] = ("form", v)
        ctype = (h.headers.get("Content-Type") or "").split(";")[0] \
            .strip().lower()
        if h.command == "POST" and body:
            if ctype == "application/json":
                try:
                    obj = loads(body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as e:
                    raise bad("can't parse JSON object: %s" % e)
                if not isinstance(obj, dict):
                    raise bad("the JSON body must be an object, got %s"
                              % jtype(obj))
                for k, v in obj.items():
                    out[k] = ("json", v)
            elif ctype == "application/x-www-form-urlencoded":
                for k, v in urllib.parse.parse_qsl(
                        body.decode("utf-8", "replace"),
                        keep_blank_values=True):
                    out[k] = ("form", v)
            elif ctype == "multipart/form-data":
                msg = email.parser.BytesParser(
                    policy=email.policy.HTTP).parsebytes(
                    b"Content-Type: " + h.headers["Content-Type"].encode() +
                    b"\r\n\r\n" + body)
                for part in msg.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    if name:
                        data = part.get_payload(decode=True) or b""
                        out[name] = ("form", data.decode(
                            part.get_content_charset() or "utf-8",
                            "replace"))
            else:
                raise bad("unsupported Content-Type %r" % ctype)
        return out

    def _validate(self, spec_m, raw):
        fields = self.spec.fields(spec_m)
        for k in raw:
            if k not in fields:
                raise bad("unknown parameter \"%s\" of %s" % (
                    k, spec_m["name"]))
        p = {}
        for k, (src, v) in raw.items():
            types = fields[k]["types"]
            if src == "form":
                v = self.spec.coerce(v, types)
            e = self.spec.check(v, types, k)
            if e:
                raise bad(e)
            p[k] = v
        for name, f in fields.items():
            if f["required"] and name not in p:
                raise bad("required parameter \"%s\" of %s is missing" % (
                    name, spec_m["name"]))
        self._limits(spec_m["name"], p)
        return p

    def _limits(self, m, p):
        """The documented limits the types alone do not say."""
        if "parse_mode" in p and p["parse_mode"].lower() not in PARSE_MODES:
            raise bad("unsupported parse_mode \"%s\"" % p["parse_mode"],
                      kind="limit")
        if m in ("sendMessage", "editMessageText") and "text" in p:
            plain, ents = self._render(p)
            if not plain.strip():
                raise bad("message text is empty", kind="limit")
            if utf16_len(plain) > TEXT_MAX:
                raise bad("message is too long (%d characters, at most %d)"
                          % (utf16_len(plain), TEXT_MAX), kind="limit")
        if m in ("editMessageText", "editMessageReplyMarkup",
                 "editMessageCaption", "editMessageMedia"):
            if "inline_message_id" not in p and not (
                    "chat_id" in p and "message_id" in p):
                raise bad("chat_id and message_id are required unless "
                          "inline_message_id is given")
        if m == "editMessageText" and "text" not in p and \
                "rich_message" not in p:
            raise bad("text is required unless rich_message is given")
        rm = p.get("reply_markup")
        if isinstance(rm, dict) and "inline_keyboard" in rm:
            self._check_keyboard(rm["inline_keyboard"])
        if m == "answerCallbackQuery" and \
                utf16_len(p.get("text", "")) > CALLBACK_ANSWER_MAX:
            raise bad("callback answer text is longer than %d characters"
                      % CALLBACK_ANSWER_MAX, kind="limit")
        if m == "getUpdates":
            if "limit" in p and not 1 <= p["limit"] <= 100:
                raise bad("limit must be 1-100, got %d" % p["limit"],
                          kind="limit")
            if p.get("timeout", 0) < 0:
                raise bad("timeout must not be negative", kind="limit")
        if m in ("getUpdates", "setWebhook"):
            for u in p.get("allowed_updates", ()):
                if u not in self.spec.update_kinds:
                    raise bad("unknown update type \"%s\" in allowed_updates"
                              % u, kind="limit")
        if m == "setWebhook":
            st = p.get("secret_token")
            if st is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}",
                                                   st):
                raise bad("secret_token must be 1-256 characters of "
                          "A-Z, a-z, 0-9, _ and -", kind="limit")
            mc = p.get("max_connections")
            if mc is not None and not 1 <= mc <= 100:
                raise bad("max_connections must be 1-100", kind="limit")
        if m == "sendChatAction" and p["action"] not in CHAT_ACTIONS:
            raise bad("wrong parameter action in request", kind="limit")

    def _check_keyboard(self, rows):
        total = 0
        for r, row in enumerate(rows):
            if len(row) > BUTTONS_PER_ROW_MAX:
                raise bad("inline keyboard row %d has %d buttons, at most %d"
                          % (r, len(row), BUTTONS_PER_ROW_MAX), kind="limit")
            for c, b in enumerate(row):
                total += 1
                where = "inline_keyboard[%d][%d]" % (r, c)
                if not b["text"]:
                    raise bad("%s: button text is empty" % where,
                              kind="limit")
                actions = [k for k in b if k not in
                           ("text", "icon_custom_emoji_id", "style")]
                if len(actions) != 1:
                    raise bad("%s: a button needs exactly one action field "
                              "(callback_data, url, ...), has %s" % (
                                  where, actions or "none"), kind="limit")
                if "callback_data" in b:
                    n = len(b["callback_data"].encode("utf-8"))
                    if not 1 <= n <= CALLBACK_DATA_MAX:
                        raise bad("BUTTON_DATA_INVALID: %s.callback_data is "
                                  "%d bytes, must be 1-%d" % (
                                      where, n, CALLBACK_DATA_MAX),
                                  kind="limit")
        if total > BUTTONS_MAX:
            raise bad("inline keyboard has %d buttons, at most %d" % (
                total, BUTTONS_MAX), kind="limit")

    def _render(self, p):
        """(plain text, entities) of text with its parse_mode/entities."""
        text = p["text"]
        mode = (p.get("parse_mode") or "").lower()
        if mode == "html":
            try:
                return parse_html(text)
            except EntityError as e:
                raise bad("can't parse entities: %s" % e, kind="entities")
        return text, p.get("entities")

    # ---- the methods ---------------------------------------------------

    def _target(self, chat_id, method):
        """The chat to act in, or the error Telegram gives."""
        if isinstance(chat_id, str):
            if re.fullmatch(r"-?\d+", chat_id):
                chat_id = int(chat_id)
            else:
                for c in self.chats.values():
                    if chat_id.startswith("@") and \
                            c["chat"].get("username") == chat_id[1:]:
                        chat_id = c["chat"]["id"]
                        break
                else:
                    raise ApiError(400, "Bad Request: chat not found")
        c = self.chats.get(chat_id)
        if c is None:
            raise ApiError(400, "Bad Request: chat not found")
        if c["migrated_to"] is not None:
            raise ApiError(400, "Bad Request: group chat was upgraded to a "
                           "supergroup chat",
                           {"migrate_to_chat_id": c["migrated_to"]})
        if c["blocked"]:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return c

    def _m_getMe(self, p):
        return copy.deepcopy(self.bot)

    def _m_logOut(self, p):
        return True

    def _m_close(self, p):
        return True

    def _m_getUpdates(self, p):
        with self.cond:
            if self.webhook:
                raise ApiError(409, CONFLICT_HOOK)
            limit = p.get("limit", 100)
            timeout = p.get("timeout", 0)
            if "allowed_updates" in p:
                self.allowed_updates = list(p["allowed_updates"])
            self.poll_gen += 1
            me = self.poll_gen
            self.cond.notify_all()      # an older poll ends with 409
            off = p.get("offset")
            if off is not None and self.renumbered and \
                    off > self.next_update_id:
                pass        # an offset from before renumber(): no effect
            elif off is not None and off > 0:
                lost = [u["update_id"] for u in self.updates
                        if u["update_id"] < off and
                        u["update_id"] > self.max_delivered]
                if lost:
                    self._violate("offset", "getUpdates",
                                  "offset %d confirms update(s) %s that were "
                                  "never delivered" % (off, lost), p)
                self.updates = [u for u in self.updates
                                if u["update_id"] >= off]
                self.confirmed = max(self.confirmed, off - 1)
            elif off is not None and off < 0:
                drop = self.updates[:off]
                self.updates = self.updates[off:]
                if drop:
                    self.confirmed = max(self.confirmed,
                                         drop[-1]["update_id"])
            self.cond.notify_all()
            end = time.monotonic() + timeout
            self.polling += 1
            try:
                while True:
                    if self.poll_gen != me:
                        raise ApiError(409, CONFLICT_POLL)
                    if self.webhook:
                        raise ApiError(409, CONFLICT_HOOK)
                    got = self.updates[:limit]
                    left = end - time.monotonic()
                    if got or left <= 0 or self._stopping:
                        break
                    self.cond.wait(left)
            finally:
                self.polling -= 1
                self.cond.notify_all()
            if got:
                self.max_delivered = max(self.max_delivered,
                                         got[-1]["update_id"])
            return copy.deepcopy(got)

    def _webhook_info(self):
        w = self.webhook
        info = {"url": w["url"] if w else "", "has_custom_certificate": False,
                "pending_update_count": len(self.updates)}
        if w:
            info["max_connections"] = w["max_connections"]
            if w.get("ip_address"):
                info["ip_address"] = w["ip_address"]
            if self.allowed_updates:
                info["allowed_updates"] = list(self.allowed_updates)
            if self.webhook_error:
                info["last_error_date"] = self.webhook_error[0]
                info["last_error_message"] = self.webhook_error[1]
        return info

    def _m_getWebhookInfo(self, p):
        with self.cond:
            return self._webhook_info()

    def _m_setWebhook(self, p):
        url = p["url"]
        if url and not re.match(r"https?://[^/\s]+", url):
            raise bad("bad webhook: Invalid URL", kind="limit")
        with self.cond:
            if p.get("drop_pending_updates"):
                self._drop_pending()
            if "allowed_updates" in p:
                self.allowed_updates = list(p["allowed_updates"])
            if not url:
                self.webhook = None
            else:
                self.webhook = {"url": url,
                                "secret_token": p.get("secret_token"),
                                "max_connections": p.get("max_connections",
                                                         40),
                                "ip_address": p.get("ip_address")}
            self.webhook_gen += 1
            self.webhook_error = None
            self.wh_next_try = 0.0
            self.wh_backoff = self.webhook_retry[0]
            self.cond.notify_all()
        return True

    def _drop_pending(self):
        if self.updates:
            self.confirmed = max(self.confirmed, self.updates[-1]["update_id"])
        self.updates = []

    def _m_deleteWebhook(self, p):
        with self.cond:
            if p.get("drop_pending_updates"):
                self._drop_pending()
            self.webhook = None
            self.webhook_gen += 1
            self.cond.notify_all()
        return True

    def _record(self, kind, rec):
        self.outbox.append({"kind": kind, "chat_id": rec["chat_id"],
                            "message_id": rec["message_id"],
                            "text": rec["text"],
                            "reply_markup": copy.deepcopy(
                                rec["reply_markup"]),
                            "time": time.time()})
        self.cond.notify_all()

    def _m_sendMessage(self, p):
        with self.cond:
            c = self._target(p["chat_id"], "sendMessage")
            self._flood_check("sendMessage", c["chat"]["id"],
                              c["chat"]["type"] != "private")
            rp = p.get("reply_parameters")
            if rp and rp["message_id"] not in c["messages"] and \
                    not rp.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not "
                               "found")
            plain, ents = self._render(p)
            me = {k: self.bot[k] for k in ("id", "is_bot", "first_name",
                                           "username")}
            rec = self._new_message(c, me, plain, bot=True)
            rec["raw_text"] = p["text"]
            rec["parse_mode"] = p.get("parse_mode")
            rec["entities"] = ents or None
            rec["reply_markup"] = copy.deepcopy(p.get("reply_markup"))
            self._record("send", rec)
            return self._message_obj(rec)

    def _edit_target(self, p, method):
        if "inline_message_id" in p:
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        c = self._target(p["chat_id"], method)
        if self.limits["count_edits"]:
            self._flood_check(method, c["chat"]["id"],
                              c["chat"]["type"] != "private")
        else:
            self._ban_check([("chat", c["chat"]["id"]), ("global",)],
                            method, c["chat"]["id"])
        rec = c["messages"].get(p["message_id"])
        if rec is None or rec["deleted"]:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not rec["bot"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return rec

    def _m_editMessageText(self, p):
        with self.cond:
            rec = self._edit_target(p, "editMessageText")
            plain, ents = self._render(p)
            markup = copy.deepcopy(p.get("reply_markup"))
            old_markup = rec["reply_markup"] if rec["reply_markup"] and \
                rec["reply_markup"].get("inline_keyboard") else None
            new_markup = markup if markup and markup.get("inline_keyboard") \
                else None
            if plain == rec["text"] and (ents or None) == rec["entities"] \
                    and new_markup == old_markup:
                raise ApiError(400, NOT_MODIFIED)
            rec["history"].append({"text": rec["text"],
                                   "reply_markup": rec["reply_markup"]})
            rec["text"], rec["raw_text"] = plain, p["text"]
            rec["parse_mode"] = p.get("parse_mode")
            rec["entities"] = ents or None
            # Without reply_markup, an edit removes the inline keyboard.
            rec["reply_markup"] = markup
            rec["edit_date"] = int(time.time())
            self._record("edit", rec)
            return self._message_obj(rec)

    def _m_editMessageReplyMarkup(self, p):
        with self.cond:
            rec = self._edit_target(p, "editMessageReplyMarkup")
            markup = copy.deepcopy(p.get("reply_markup"))
            old = rec["reply_markup"] if rec["reply_markup"] and \
                rec["reply_markup"].get("inline_keyboard") else None
            new = markup if markup and markup.get("inline_keyboard") else None
            if old == new:
                raise ApiError(400, NOT_MODIFIED)
            rec["history"].append({"text": rec["text"],
                                   "reply_markup": rec["reply_markup"]})
            rec["reply_markup"] = markup
            rec["edit_date"] = int(time.time())
            self._record("edit", rec)
            return self._message_obj(rec)

    def _m_deleteMessage(self, p):
        with self.cond:
            c = self._target(p["chat_id"], "deleteMessage")
            rec = c["messages"].get(p["message_id"])
            if rec is None or rec["deleted"]:
                raise ApiError(400, "Bad Request: message to delete not "
                               "found")
            if not rec["bot"] and c["chat"]["type"] != "private":
                raise ApiError(400, "Bad Request: message can't be deleted")
            rec["deleted"] = True
            self._record("delete", rec)
            return True

    def _m_answerCallbackQuery(self, p):
        with self.cond:
            q = self.queries.get(p["callback_query_id"])
            if q is None or q["answered"]:
                raise ApiError(400, QUERY_INVALID)
            q["answered"] = True
            a = {"callback_query_id": q["id"], "chat_id": q["chat_id"],
                 "message_id": q["message_id"], "data": q["data"]}
            for k in ("text", "show_alert", "url", "cache_time"):
                if k in p:
                    a[k] = p[k]
            self.answers.append(a)
            self.cond.notify_all()
            return True

    def _m_sendChatAction(self, p):
        with self.cond:
            c = self._target(p["chat_id"], "sendChatAction")
            self.chat_actions.append((c["chat"]["id"], p["action"]))
            return True

    def _m_setMyCommands(self, p):
        with self.cond:
            self.commands = copy.deepcopy(p["commands"])
            return True

    def _m_getMyCommands(self, p):
        with self.cond:
            return copy.deepcopy(self.commands)

    def _m_deleteMyCommands(self, p):
        with self.cond:
            self.commands = []
            return True

    # ---- webhook delivery --------------------------------------------

    def _webhook_loop(self):
        while True:
            with self.cond:
                while not self._stopping:
                    if self.webhook and self.updates:
                        left = self.wh_next_try - time.monotonic()
                        if left <= 0:
                            break
                        self.cond.wait(left)
                    else:
                        self.cond.wait(1.0)
                if self._stopping:
                    return
                hook = dict(self.webhook)
                gen = self.webhook_gen
                upd = self.updates[0]
                data = json.dumps(upd, ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json"}
            if hook["secret_token"]:
                headers["X-Telegram-Bot-Api-Secret-Token"] = \
                    hook["secret_token"]
            status, err = None, None
            try:
                req = urllib.request.Request(hook["url"], data=data,
                                             headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=10) as r:
                    r.read()
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
                err = "Wrong response from the webhook: %d %s" % (e.code,
                                                                  e.reason)
            except (OSError, ValueError) as e:
                err = "Connection failed: %s" % e
            with self.cond:
                self.webhook_deliveries.append({
                    "update_id": upd["update_id"], "url": hook["url"],
                    "status": status, "error": err,
                    "secret": hook["secret_token"]})
                ok = status is not None and 200 <= status < 300
                if gen == self.webhook_gen and self.updates and \
                        self.updates[0] is upd:
                    if ok:
                        self.updates.pop(0)
                        self.confirmed = max(self.confirmed,
                                             upd["update_id"])
                        self.max_delivered = max(self.max_delivered,
                                                 upd["update_id"])
                        self.wh_backoff = self.webhook_retry[0]
                        self.wh_next_try = 0.0
                    else:
                        self.webhook_error = (int(time.time()), err)
                        self.wh_next_try = time.monotonic() + self.wh_backoff
                        self.wh_backoff = min(self.wh_backoff * 2,
                                              self.webhook_retry[1])
                self.cond.notify_all()

    # ---- the control API over HTTP ----------------------------------

    def _control(self, h, what, query, body):
        q = dict(urllib.parse.parse_qsl(query))
        try:
            args = loads(body.decode("utf-8")) if body else {}
            if not isinstance(args, dict):
                raise ControlError("the body must be a JSON object")
        except ValueError as e:
            return h.answer(400, {"ok": False, "description": "bad JSON: %s"
                                  % e})
        args.update(q)

        def num(k, default=None):
            v = args.get(k, default)
            return None if v is None else int(v)

        def flt(k, default):
            return float(args.get(k, default))

        def flag(k, default):
            v = args.get(k, default)
            return v.lower() in ("1", "true", "yes") if isinstance(v, str) \
                else bool(v)
        routes = {
            "message": lambda: self.message(
                num("user_id"), args["text"], num("chat_id"),
                args.get("first_name"), args.get("username"),
                args.get("language_code")),
            "start": lambda: self.start_command(num("user_id"),
                                                args.get("code")),
            "press": lambda: self.press(num("chat_id"), num("message_id"),
                                        args.get("data"), args.get("text"),
                                        num("user_id")),
            "group": lambda: self.add_group(num("chat_id"),
                                            args.get("title", "Test group"),
                                            args.get("type", "group")),
            "block": lambda: self.block(num("chat_id"),
                                        flag("notify", True)),
            "unblock": lambda: self.unblock(num("chat_id"),
                                            flag("notify", True)),
            "renumber": lambda: self.renumber(num("first_id")),
            "migrate": lambda: self.migrate(num("chat_id"),
                                            num("new_chat_id")),
            "fault": lambda: self.fault(args["kind"], num("count", 1),
                                        args.get("method"),
                                        num("retry_after", 1),
                                        flt("delay", 1.0),
                                        flag("after", False),
                                        num("skip", 0)),
            "clear_faults": self.clear_faults,
            "rate_limits": lambda: self.set_rate_limits(
                args.get("enabled"), args.get("per_chat_per_sec"),
                args.get("group_per_min"), args.get("global_per_sec"),
                args.get("count_edits")),
            "sent": lambda: self.sent(num("chat_id")),
            "events": lambda: self.events(num("chat_id")),
            "log": lambda: self.requests(args.get("method")),
            "violations": self.violations,
            "callback_answers": self.callback_answers,
            "updates": self.pending_updates,
            "webhook": self.webhook_info,
            "deliveries": self.deliveries,
            "clear_log": self.clear_log,
            "reset": self.reset,
            "wait_sent": lambda: self.wait_sent(num("chat_id"),
                                                num("count", 1),
                                                flt("timeout", 10)),
            "wait_requests": lambda: self.wait_requests(
                args["method"], num("count", 1), flt("timeout", 10)),
            "wait_confirmed": lambda: self.wait_confirmed(
                num("update_id"), flt("timeout", 10)),
            "wait_polling": lambda: self.wait_polling(flt("timeout", 10)),
        }
        fn = routes.get(what)
        if fn is None:
            return h.answer(404, {"ok": False, "description":
                                  "no control endpoint %s; there are %s" % (
                                      what, ", ".join(sorted(routes)))})
        try:
            res = fn()
        except (ControlError, KeyError, ValueError, TypeError,
                AssertionError) as e:
            return h.answer(400, {"ok": False, "description": "%s: %s" % (
                type(e).__name__, e)})
        return h.answer(200, {"ok": True, "result": res})


class _Fault(Exception):
    def __init__(self, fault):
        super().__init__(fault["kind"])
        self.fault = fault


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and
        # the client's delayed ACK hold each answer ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.fake.lock:
            self.fake.conns.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.fake.lock:
                self.fake.conns.discard(self.connection)

    def read_body(self):
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(n))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0:
            raise ValueError("bad Content-Length")
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.fake._handle(self)

    do_POST = do_GET

    def answer(self, status, obj):
        self.answer_raw(status, json.dumps(obj, ensure_ascii=False)
                        .encode("utf-8"))

    def answer_raw(self, status, data):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--token", default=DEFAULT_TOKEN)
    ap.add_argument("--spec", default=DEFAULT_SPEC)
    ap.add_argument("--no-rate-limits", action="store_true")
    a = ap.parse_args(argv)
    fake = Fake(token=a.token, spec=a.spec, host=a.host, port=a.port,
                rate_limits=not a.no_rate_limits).start()
    print("listening %s %d" % (fake.host, fake.port), flush=True)
    done = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: done.set())
    while not done.wait(1.0):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
