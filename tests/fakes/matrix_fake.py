#!/usr/bin/env python3
"""matrix_fake.py: a stateful fake Matrix homeserver (client-server API).

Python 3 standard library plus Debian's python3-yaml and python3-jsonschema
(for matrix_spec.py). Importable (Fake) and runnable:

    /usr/bin/python3 tests/fakes/matrix_fake.py --port 0

prints "listening 127.0.0.1 PORT" as its first stdout line and serves until
killed.

One server name (example.org), one bot account (@bot:example.org with
Fake.password) and any number of patients, who are driven by the test:
invite(), say(), answer_poll(), join(). The bot talks to it like to a real
homeserver:

- POST /login (m.login.password, m.id.user; a device_id given is reused,
  none makes a new one; refresh_token: true gets a refresh token), POST
  /refresh (rotates both tokens), GET /account/whoami;
- POST /user/{userId}/filter (the timeline types and limit are honoured);
- GET /sync with real since/next_batch semantics ("s<stream position>"),
  long polling up to `timeout` ms, `limited` timelines with prev_batch when
  more happened than the filter's limit, invites with invite_state, leaves,
  a joined room's summary (m.joined_member_count, whenever it changed, to a
  filter with lazy_load_members as Synapse does), and
  m.direct account data;
- GET /rooms/{roomId}/messages (dir f or b, from, to, limit);
- POST /createRoom, /rooms/{roomId}/join, /join/{roomIdOrAlias},
  /rooms/{roomId}/leave, /rooms/{roomId}/invite;
- PUT /user/{userId}/account_data/{type};
- PUT /rooms/{roomId}/send/{eventType}/{txnId}: the same (token's device,
  txnId) answers the same event_id and posts nothing (a replay); a room the
  bot is not in answers 403 M_FORBIDDEN.

EVERY request is first checked by matrix_spec.Spec against the spec's
OpenAPI files and event schemas; a violation is answered 400 M_BAD_JSON /
M_UNRECOGNIZED and recorded: Fake.violations() must stay empty.

Faults (Fake.fault): "429" (retry_after_ms in the body and/or a Retry-After
header), "500", "drop" (the connection closes before the request is
handled), "drop_after" (handled, then the connection closes without an
answer: the client cannot know it went through), "hang" (no answer until
Fake.release(): the test kills the daemon meanwhile), for a given endpoint
(operationId-like name: "send", "sync", "login", ...). Fake.expire_tokens()
makes every access token answer 401 M_UNKNOWN_TOKEN (soft_logout true, or
false for a hard logout, which also voids the refresh tokens).

Tests wait on conditions with deadlines (Fake.wait_for); nothing sleeps.
"""
import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import matrix_spec  # noqa: E402

SERVER = "example.org"
BOT = "@bot:" + SERVER
PREFIX = "/_matrix/client/v3"

POLL_START = "org.matrix.msc3381.poll.start"
POLL_RESPONSE = "org.matrix.msc3381.poll.response"
POLL_END = "org.matrix.msc3381.poll.end"


class ApiError(Exception):
    def __init__(self, status, errcode, error, **extra):
        super().__init__(error)
        self.status = status
        self.body = dict(errcode=errcode, error=error, **extra)
        self.headers = {}


class Drop(Exception):
    """Close the connection without an answer."""


class Fake:
    def __init__(self, password="correct horse", host="127.0.0.1", port=0,
                 spec=None):
        self.password = password
        self.host = host
        self.port = port
        self.spec = spec or matrix_spec.spec()
        self.cond = threading.Condition()
        self.server = None
        self.thread = None
        self.reset()

    def reset(self):
        with self.cond:
            self.pos = 0                # the stream position
            self.stream = []            # (pos, kind, room or None, item)
            self.rooms = {}             # id -> room dict
            self.tokens = {}            # access token -> {device, valid}
            self.refresh_tokens = {}    # refresh token -> device
            self.devices = []           # device ids logins gave, in order
            self.logins = []            # login bodies (password hidden)
            self.filters = {}
            self.txns = {}              # (device, txnId) -> event_id
            self.account_data = {}      # type -> content
            self.faults = []
            self.log = []               # every request handled
            self._violations = []
            self.next_id = 0
            self.held = False           # /sync answers wait while held
            self.released = False       # ends "hang" faults
            self.max_timeline = None    # the server's own timeline cap
            self.token_lifetime_ms = 3600000
            self.closed = False

    # ---- life ---------------------------------------------------------------

    def start(self):
        fake = self

        class Handler(_Handler):
            pass
        Handler.fake = fake
        self.server = _Server((self.host, self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self):
        return "http://%s:%d" % (self.host, self.port)

    def stop(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- ids and the stream ---------------------------------------------------

    def _id(self, sigil):
        """A room id "!r7:example.org" or an event id "$ev7"."""
        self.next_id += 1
        if sigil == "!":
            return "!r%d:%s" % (self.next_id, SERVER)
        return "$ev%d" % self.next_id

    def _push(self, kind, room, item):
        self.pos += 1
        self.stream.append((self.pos, kind, room, item))
        self.cond.notify_all()
        return self.pos

    def _event(self, room_id, sender, etype, content, state_key=None):
        """Appends an event to a room's timeline and the stream."""
        ev = {"event_id": self._id("$"), "sender": sender, "type": etype,
              "content": content, "room_id": room_id,
              "origin_server_ts": int(time.time() * 1000)}
        if state_key is not None:
            ev["state_key"] = state_key
        r = self.rooms[room_id]
        ev["_pos"] = self._push("event", room_id, ev)
        r["events"].append(ev)
        if state_key is not None:
            r["state"][(etype, state_key)] = ev
        if etype == "m.room.member":
            r["members"][state_key] = content["membership"]
        return ev

    def _new_room(self, creator, encrypted=False, is_direct=False):
        rid = self._id("!")
        self.rooms[rid] = {"id": rid, "creator": creator, "events": [],
                           "state": {}, "members": {}, "encrypted": False,
                           "is_direct": is_direct, "preset": None}
        self._event(rid, creator, "m.room.create", {"room_version": "10"},
                    "")
        self._event(rid, creator, "m.room.member", {"membership": "join"},
                    creator)
        if encrypted:
            self._encrypt(rid, creator)
        return rid

    def _encrypt(self, rid, sender):
        self.rooms[rid]["encrypted"] = True
        self._event(rid, sender, "m.room.encryption",
                    {"algorithm": "m.megolm.v1.aes-sha2"}, "")

    # ---- the patients' side (tests call these) ---------------------------------

    def invite(self, user, encrypted=False, is_direct=True):
        """`user` makes a room and invites the bot; returns the room id."""
        with self.cond:
            rid = self._new_room(user, encrypted, is_direct)
            content = {"membership": "invite"}
            if is_direct:
                content["is_direct"] = True
            self._event(rid, user, "m.room.member", content, BOT)
            return rid

    def say(self, user, room, text, msgtype="m.text", ts_ms=None):
        """A message from `user` (sent at ts_ms, default now); returns its
        event."""
        with self.cond:
            if self.rooms[room]["members"].get(user) != "join":
                raise AssertionError("%s is not in %s" % (user, room))
            ev = self._event(room, user, "m.room.message",
                             {"msgtype": msgtype, "body": text})
            if ts_ms is not None:
                ev["origin_server_ts"] = ts_ms
            return ev

    def issue_token(self):
        """An access token for the bot (made outside the bot: config)."""
        with self.cond:
            return self._new_token("ADMIN%d" % (len(self.tokens) + 1))

    def bot_joins(self, room):
        """The bot is in the room already (a setup from before a test)."""
        with self.cond:
            self._event(room, BOT, "m.room.member", {"membership": "join"},
                        BOT)

    def answer_poll(self, user, room, poll_event_id, answer_id,
                    stable=False):
        """A poll response (MSC3381 unstable, or stable m.poll.response)."""
        with self.cond:
            rel = {"rel_type": "m.reference", "event_id": poll_event_id}
            if stable:
                return self._event(room, user, "m.poll.response", {
                    "m.relates_to": rel, "m.selections": [answer_id]})
            return self._event(room, user, POLL_RESPONSE, {
                "m.relates_to": rel, POLL_RESPONSE: {"answers": [answer_id]}})

    def join(self, user, room):
        """`user` accepts an invite (to a room the bot made)."""
        with self.cond:
            if self.rooms[room]["members"].get(user) != "invite":
                raise AssertionError("%s has no invite to %s" % (user, room))
            self._event(room, user, "m.room.member", {"membership": "join"},
                        user)

    def add_member(self, room, user):
        """`user` joins a room (another clinician in the clinicians'
        room, say)."""
        with self.cond:
            self._event(room, user, "m.room.member", {"membership": "join"},
                        user)

    def leave(self, user, room):
        """`user` leaves the room (a patient closing the chat)."""
        with self.cond:
            if self.rooms[room]["members"].get(user) != "join":
                raise AssertionError("%s is not in %s" % (user, room))
            self._event(room, user, "m.room.member", {"membership": "leave"},
                        user)

    def rejoin(self, user, room):
        """`user` joins again a room they left (a public or knock room;
        the fake does not check join rules)."""
        with self.cond:
            self._event(room, user, "m.room.member", {"membership": "join"},
                        user)

    def kick_bot(self, room, by):
        """Removes the bot from a room: its sends then get M_FORBIDDEN."""
        with self.cond:
            self._event(room, by, "m.room.member", {"membership": "leave"},
                        BOT)

    def encrypt(self, room, user):
        with self.cond:
            self._encrypt(room, user)

    def hold_sync(self, held=True):
        """While held, /sync answers nothing new (events pile up)."""
        with self.cond:
            self.held = held
            self.cond.notify_all()

    def fault(self, kind, endpoint=None, count=1, retry_after_ms=None,
              retry_after_header=None, room=None):
        """The next `count` requests to `endpoint` (any if None; only
        those for `room` if given) fail as `kind`."""
        with self.cond:
            for _ in range(count):
                self.faults.append(dict(kind=kind, endpoint=endpoint,
                                        retry_after_ms=retry_after_ms,
                                        header=retry_after_header,
                                        room=room))

    def release(self):
        """Ends the requests held by "hang" faults (without an answer)."""
        with self.cond:
            self.released = True
            self.cond.notify_all()

    def expire_tokens(self, soft=True):
        """Every access token stops working (and, hard, every refresh
        token)."""
        with self.cond:
            for t in self.tokens.values():
                t["valid"] = False
                t["soft"] = soft
            if not soft:
                self.refresh_tokens.clear()

    # ---- what the bot did -------------------------------------------------------

    def violations(self):
        with self.cond:
            return list(self._violations)

    def requests(self, endpoint=None):
        with self.cond:
            return [q for q in self.log
                    if endpoint is None or q["endpoint"] == endpoint]

    def bot_events(self, room, etype=None):
        """Events the bot sent to a room, oldest first."""
        with self.cond:
            return [e for e in self.rooms[room]["events"]
                    if e["sender"] == BOT and
                    e["type"] not in ("m.room.member", "m.room.create") and
                    (etype is None or e["type"] == etype)]

    def bot_texts(self, room):
        return [e["content"].get("body", "")
                for e in self.bot_events(room, "m.room.message")]

    def membership(self, room, user=BOT):
        with self.cond:
            return self.rooms[room]["members"].get(user)

    def rooms_of(self, user):
        with self.cond:
            return [r for r, v in self.rooms.items()
                    if v["members"].get(user) in ("join", "invite")]

    def wait_for(self, pred, timeout=10.0, what="condition"):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("fake: no %s within %.0fs" %
                                         (what, timeout))
                self.cond.wait(min(left, 0.2))

    def wait_text(self, room, needle, count=1, timeout=10.0):
        def have():
            got = [e for e in self.bot_events(room, "m.room.message")
                   if needle in e["content"].get("body", "")]
            return got if len(got) >= count else None
        return self.wait_for(have, timeout, "bot message with %r" % needle)

    def wait_syncing(self, timeout=10.0):
        """Until the bot has a /sync waiting (it is logged in and idle)."""
        return self.wait_for(lambda: any(
            q["endpoint"] == "sync" and q.get("since") for q in self.log),
            timeout, "a /sync with since")

    # ---- serving ----------------------------------------------------------------

    def _take_fault(self, endpoint, room):
        for i, f in enumerate(self.faults):
            if f["endpoint"] in (None, endpoint) and \
                    f.get("room") in (None, room):
                return self.faults.pop(i)
        return None

    def _auth(self, headers):
        """The device of a good token, or raises 401."""
        a = headers.get("Authorization") or ""
        if not a.startswith("Bearer "):
            raise ApiError(401, "M_MISSING_TOKEN", "Missing access token")
        t = self.tokens.get(a[7:])
        if t is None:
            raise ApiError(401, "M_UNKNOWN_TOKEN", "Unknown token",
                           soft_logout=False)
        if not t["valid"] or time.monotonic() > t["until"]:
            raise ApiError(401, "M_UNKNOWN_TOKEN", "Token expired",
                           soft_logout=t.get("soft", True))
        return t["device"]

    def handle(self, h, method, raw_path, body):
        """Returns (status, body dict, headers) or raises Drop."""
        url = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        op, vals = self.spec.match(method, url.path)
        endpoint = _endpoint(op.template) if op is not None else "unknown"
        rec = {"method": method, "endpoint": endpoint, "path": url.path,
               "query": url.query,
               "since": (query.get("since") or [None])[0], "status": None,
               "t": time.monotonic()}
        with self.cond:
            self.log.append(rec)
            bad = self.spec.check_request(method, url.path, query, h.headers,
                                          body)
            if bad:
                self._violations.extend(bad)
                rec["status"] = 400
                return 400, {"errcode": "M_UNRECOGNIZED" if op is None
                             else "M_BAD_JSON", "error": "; ".join(bad)}, {}
            f = self._take_fault(endpoint, vals.get("roomId"))
            rec["fault"] = f["kind"] if f else None
        if f is not None and f["kind"] == "drop":
            rec["status"] = "drop"
            raise Drop()
        if f is not None and f["kind"] == "hang":
            # No answer until release(): the test kills the daemon now.
            rec["status"] = "hang"
            with self.cond:
                while not self.released and not self.closed:
                    self.cond.wait(0.2)
            raise Drop()
        if f is not None and f["kind"] == "429":
            b = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests"}
            if f["retry_after_ms"] is not None:
                b["retry_after_ms"] = f["retry_after_ms"]
            hd = {}
            if f["header"] is not None:
                hd["Retry-After"] = str(f["header"])
            rec["status"] = 429
            return 429, b, hd
        if f is not None and f["kind"] == "500":
            rec["status"] = 500
            return 500, {"errcode": "M_UNKNOWN", "error": "injected"}, {}
        if f is not None and f["kind"] == "401":
            # A 401 that is not the homeserver's word on the token (a
            # proxy in front of it): no errcode.
            rec["status"] = 401
            return 401, {"error": "Unauthorized"}, {}
        try:
            doc = json.loads(body) if body else {}
            fn = getattr(self, "_h_" + endpoint, None)
            if fn is None:
                raise ApiError(404, "M_UNRECOGNIZED", "not faked: %s" %
                               endpoint)
            status, out = 200, fn(h, vals, query, doc)
            hd = {}
        except ApiError as e:
            status, out, hd = e.status, e.body, e.headers
        rec["status"] = status
        if f is not None and f["kind"] == "drop_after":
            rec["status"] = "drop_after"
            raise Drop()
        return status, out, hd

    # ---- the control API (tests in another process) ---------------------------

    CONTROL = ("invite", "say", "answer_poll", "join", "add_member",
               "kick_bot", "encrypt",
               "bot_joins", "release",
               "hold_sync", "fault", "expire_tokens", "reset")

    def control(self, method, path, body):
        """POST /control/<name> with a JSON object of keyword arguments
        calls that method (CONTROL); GET /control/state answers the
        violations, the requests and the rooms' events."""
        name = path[len("/control/"):].split("?")[0]
        try:
            if method == "GET" and name == "state":
                with self.cond:
                    return 200, {"violations": list(self._violations),
                                 "requests": [dict(q, t=None) for q in
                                              self.log],
                                 "rooms": {r: [self._clean(e) for e in
                                               v["events"]]
                                           for r, v in self.rooms.items()},
                                 "devices": list(self.devices)}, {}
            if method != "POST" or name not in self.CONTROL:
                return 404, {"error": "no control %s %s" % (method, name)}, {}
            args = json.loads(body) if body else {}
            out = getattr(self, name)(**args)
            return 200, {"result": out}, {}
        except (TypeError, ValueError, KeyError, AssertionError) as e:
            return 400, {"error": str(e)}, {}

    # ---- endpoints -----------------------------------------------------------

    def _h_login(self, h, vals, q, doc):
        with self.cond:
            ident = doc.get("identifier") or {}
            user = ident.get("user") or ""
            if doc.get("type") != "m.login.password" or \
                    ident.get("type") != "m.id.user":
                raise ApiError(400, "M_UNKNOWN", "Bad login type")
            if user not in ("bot", BOT) or doc.get("password") != \
                    self.password:
                raise ApiError(403, "M_FORBIDDEN", "Invalid password")
            device = doc.get("device_id") or "DEV%d" % (len(self.devices) + 1)
            self.devices.append(device)
            self.logins.append({k: v for k, v in doc.items()
                                if k != "password"})
            out = {"user_id": BOT, "device_id": device,
                   "access_token": self._new_token(device)}
            if doc.get("refresh_token"):
                out["refresh_token"] = self._new_refresh(device)
                out["expires_in_ms"] = self.token_lifetime_ms
            return out

    def _new_token(self, device):
        t = "syt_%d_%s" % (len(self.tokens) + 1, os.urandom(6).hex())
        self.tokens[t] = {"device": device, "valid": True,
                          "until": time.monotonic() +
                          self.token_lifetime_ms / 1000.0}
        return t

    def _new_refresh(self, device):
        t = "syr_%d_%s" % (len(self.refresh_tokens) + 1, os.urandom(6).hex())
        self.refresh_tokens[t] = device
        return t

    def _h_refresh(self, h, vals, q, doc):
        with self.cond:
            device = self.refresh_tokens.pop(doc.get("refresh_token"), None)
            if device is None:
                raise ApiError(401, "M_UNKNOWN_TOKEN", "Unknown refresh "
                               "token", soft_logout=False)
            return {"access_token": self._new_token(device),
                    "refresh_token": self._new_refresh(device),
                    "expires_in_ms": self.token_lifetime_ms}

    def _h_whoami(self, h, vals, q, doc):
        with self.cond:
            return {"user_id": BOT, "device_id": self._auth(h.headers)}

    def _h_filter(self, h, vals, q, doc):
        with self.cond:
            self._auth(h.headers)
            if vals["userId"] != BOT:
                raise ApiError(403, "M_FORBIDDEN", "not your filter")
            fid = str(len(self.filters) + 1)
            self.filters[fid] = doc
            return {"filter_id": fid}

    def _since(self, tok):
        if tok is None:
            return 0
        m = re.fullmatch(r"s([0-9]+)", tok)
        if not m or int(m.group(1)) > self.pos:
            raise ApiError(400, "M_INVALID_PARAM", "bad token")
        return int(m.group(1))

    def _h_sync(self, h, vals, q, doc):
        since_tok = (q.get("since") or [None])[0]
        timeout = int((q.get("timeout") or ["0"])[0]) / 1000.0
        flt = {}
        end = time.monotonic() + timeout
        with self.cond:
            self._auth(h.headers)
            if q.get("filter"):
                flt = self.filters.get(q["filter"][0])
                if flt is None:
                    raise ApiError(400, "M_INVALID_PARAM", "unknown filter")
            since = self._since(since_tok)
            # The token is checked once, when the request comes, as
            # homeservers do: a long poll may outlive it.
            while True:
                upto = self.pos if not self.held else since
                if self.held and since_tok is None:
                    upto = since
                if upto > since or self.closed:
                    break
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return self._sync_body(since if since_tok else None, upto, flt)

    def _visible(self, room, upto):
        """The bot's membership in `room` at stream position `upto`."""
        ms = None
        for e in room["events"]:
            if e["_pos"] > upto:
                break
            if e["type"] == "m.room.member" and e.get("state_key") == BOT:
                ms = e["content"]["membership"]
        return ms

    @staticmethod
    def _joined(room, upto):
        """How many members `room` had joined at stream position `upto`."""
        ms = {}
        for e in room["events"]:
            if e["_pos"] > upto:
                break
            if e["type"] == "m.room.member":
                ms[e["state_key"]] = e["content"]["membership"]
        return sum(1 for v in ms.values() if v == "join")

    @staticmethod
    def _clean(e):
        return {k: v for k, v in e.items() if not k.startswith("_")}

    def _sync_body(self, since, upto, flt):
        tl = ((flt or {}).get("room") or {}).get("timeline") or {}
        limit = tl.get("limit", 10)
        if self.max_timeline is not None:
            limit = min(limit, self.max_timeline)
        types = tl.get("types")
        lazy = (((flt or {}).get("room") or {}).get("state") or {}).get(
            "lazy_load_members") is True
        lo = since or 0
        out = {"next_batch": "s%d" % upto,
               "rooms": {"join": {}, "invite": {}, "leave": {}}}
        for rid, r in self.rooms.items():
            ms = self._visible(r, upto)
            was = self._visible(r, lo) if since is not None else None
            changed = [e for e in r["events"] if lo < e["_pos"] <= upto]
            if ms == "join":
                evs = [e for e in changed
                       if types is None or e["type"] in types]
                if not evs and was == "join":
                    continue
                joined_now = was != "join"
                shown = evs[-limit:] if limit else []
                room = {"timeline": {
                    "events": [self._clean(e) for e in shown],
                    "limited": len(evs) > len(shown)}}
                if room["timeline"]["limited"] or joined_now:
                    first = shown[0]["_pos"] if shown else upto + 1
                    room["timeline"]["prev_batch"] = "s%d" % (first - 1)
                if joined_now or room["timeline"]["limited"]:
                    room["state"] = {"events": [
                        self._clean(e) for (t, k), e in r["state"].items()
                        if t in ("m.room.encryption", "m.room.member") and
                        e["_pos"] <= upto and e not in shown]}
                # The spec: m.joined_member_count may be left out only
                # when it did not change since the last sync. Synapse
                # sends a summary only to a client that lazy-loads members.
                n = self._joined(r, upto)
                if lazy and (joined_now or n != self._joined(r, lo)):
                    room["summary"] = {"m.joined_member_count": n}
                out["rooms"]["join"][rid] = room
            elif ms == "invite" and (was != "invite"):
                st = [self._clean(e) for (t, k), e in r["state"].items()
                      if e["_pos"] <= upto and t in (
                          "m.room.create", "m.room.encryption",
                          "m.room.member")]
                out["rooms"]["invite"][rid] = {"invite_state": {
                    "events": [{k: v for k, v in e.items()
                                if k in ("type", "state_key", "sender",
                                         "content")} for e in st]}}
            elif ms in ("leave", "ban") and was in ("join", "invite"):
                out["rooms"]["leave"][rid] = {"timeline": {"events": []}}
        acc = [(p, item) for (p, kind, _, item) in self.stream
               if kind == "account" and lo < p <= upto]
        if since is None:
            acc = [(0, {"type": t, "content": c})
                   for t, c in self.account_data.items()]
        if acc:
            out["account_data"] = {"events": [i for _, i in acc]}
        return out

    def _h_messages(self, h, vals, q, doc):
        with self.cond:
            self._auth(h.headers)
            r = self.rooms.get(vals["roomId"])
            if r is None or self._visible(r, self.pos) != "join":
                raise ApiError(403, "M_FORBIDDEN", "not in the room")
            d = q["dir"][0]
            limit = int((q.get("limit") or ["10"])[0])
            frm = self._since((q.get("from") or [None])[0]) if q.get(
                "from") else (0 if d == "f" else self.pos)
            to = self._since(q["to"][0]) if q.get("to") else None
            if d == "f":
                evs = [e for e in r["events"] if e["_pos"] > frm and
                       (to is None or e["_pos"] <= to)][:limit]
            else:
                evs = [e for e in reversed(r["events"]) if e["_pos"] <= frm
                       and (to is None or e["_pos"] > to)][:limit]
            out = {"chunk": [self._clean(e) for e in evs],
                   "start": "s%d" % frm}
            if evs:
                out["end"] = "s%d" % (evs[-1]["_pos"] if d == "f" else
                                      evs[-1]["_pos"] - 1)
            return out

    def _h_create_room(self, h, vals, q, doc):
        with self.cond:
            self._auth(h.headers)
            rid = self._new_room(BOT, is_direct=bool(doc.get("is_direct")))
            self.rooms[rid]["preset"] = doc.get("preset")
            for u in doc.get("invite") or []:
                c = {"membership": "invite"}
                if doc.get("is_direct"):
                    c["is_direct"] = True
                self._event(rid, BOT, "m.room.member", c, u)
            return {"room_id": rid}

    def _join(self, h, rid):
        with self.cond:
            self._auth(h.headers)
            r = self.rooms.get(rid)
            if r is None or r["members"].get(BOT) not in ("invite", "join"):
                raise ApiError(403, "M_FORBIDDEN", "not invited")
            if r["members"][BOT] != "join":
                self._event(rid, BOT, "m.room.member",
                            {"membership": "join"}, BOT)
            return {"room_id": rid}

    def _h_join_room(self, h, vals, q, doc):
        return self._join(h, vals["roomId"])

    def _h_join_alias(self, h, vals, q, doc):
        return self._join(h, vals["roomIdOrAlias"])

    def _h_leave(self, h, vals, q, doc):
        with self.cond:
            self._auth(h.headers)
            r = self.rooms.get(vals["roomId"])
            if r is None:
                raise ApiError(404, "M_NOT_FOUND", "no room")
            c = {"membership": "leave"}
            if doc.get("reason"):
                c["reason"] = doc["reason"]
            self._event(vals["roomId"], BOT, "m.room.member", c, BOT)
            return {}

    def _h_invite(self, h, vals, q, doc):
        with self.cond:
            self._auth(h.headers)
            self._event(vals["roomId"], BOT, "m.room.member",
                        {"membership": "invite"}, doc["user_id"])
            return {}

    def _h_account_data(self, h, vals, q, doc):
        with self.cond:
            self._auth(h.headers)
            if vals["userId"] != BOT:
                raise ApiError(403, "M_FORBIDDEN", "not yours")
            if h.command == "GET":
                if vals["type"] not in self.account_data:
                    raise ApiError(404, "M_NOT_FOUND", "no account data")
                return self.account_data[vals["type"]]
            self.account_data[vals["type"]] = doc
            self._push("account", None, {"type": vals["type"],
                                         "content": doc})
            return {}

    def _h_send(self, h, vals, q, doc):
        with self.cond:
            device = self._auth(h.headers)
            key = (device, vals["txnId"])
            if key in self.txns:
                return {"event_id": self.txns[key]}
            r = self.rooms.get(vals["roomId"])
            if r is None or r["members"].get(BOT) != "join":
                raise ApiError(403, "M_FORBIDDEN",
                               "You are not in this room")
            if vals["eventType"] == POLL_END:
                self._check_poll_end(r, doc)
            ev = self._event(vals["roomId"], BOT, vals["eventType"], doc)
            ev["_txn"] = vals["txnId"]
            self.txns[key] = ev["event_id"]
            return {"event_id": ev["event_id"]}


    def _check_poll_end(self, r, doc):
        """MSC3381: only the poll's sender ends it (clients ignore an end
        from anyone else), and a poll ends once."""
        pid = doc["m.relates_to"]["event_id"]
        start = [e for e in r["events"] if e["event_id"] == pid]
        if not start or start[0]["type"] != POLL_START or \
                start[0]["sender"] != BOT:
            self._violations.append("%s: %s is no poll of the bot's in %s"
                                    % (POLL_END, pid, r["id"]))
        elif [e for e in r["events"] if e["type"] == POLL_END and
              e["content"]["m.relates_to"]["event_id"] == pid]:
            self._violations.append("%s: %s ended twice" % (POLL_END, pid))

    def poll_ended(self, room, poll_event_id):
        """The bot's end of a poll, or None."""
        with self.cond:
            for e in self.rooms[room]["events"]:
                if (e["type"] == POLL_END and e["sender"] == BOT and
                        e["content"]["m.relates_to"]["event_id"] ==
                        poll_event_id):
                    return e
            return None


_ENDPOINTS = {
    "/login": "login", "/refresh": "refresh", "/account/whoami": "whoami",
    "/user/{userId}/filter": "filter", "/sync": "sync",
    "/rooms/{roomId}/messages": "messages", "/createRoom": "create_room",
    "/rooms/{roomId}/join": "join_room", "/join/{roomIdOrAlias}":
    "join_alias", "/rooms/{roomId}/leave": "leave",
    "/rooms/{roomId}/invite": "invite",
    "/user/{userId}/account_data/{type}": "account_data",
    "/rooms/{roomId}/send/{eventType}/{txnId}": "send",
}


def _endpoint(template):
    return _ENDPOINTS.get(template, template)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A daemon killed mid-request (the SIGKILL tests) is not an error.
        if isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fake = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _serve(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        if self.path.startswith("/control/"):
            return self._reply(*self.fake.control(method, self.path, body))
        try:
            status, out, hd = self.fake.handle(self, method, self.path, body)
        except Drop:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self._reply(status, out, hd)

    def _reply(self, status, out, hd):
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in hd.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--password", default="correct horse")
    a = ap.parse_args()
    fake = Fake(password=a.password, port=a.port).start()
    print("listening %s %d" % (fake.host, fake.port), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    fake.stop()


if __name__ == "__main__":
    main()
