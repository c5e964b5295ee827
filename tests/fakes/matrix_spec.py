#!/usr/bin/env python3
"""matrix_spec.py: checks Matrix client-server requests and events against
the spec's own files.

Reads every OpenAPI file in ../shared/specs/matrix/data/api/client-server/
(or $STRIGIL_MATRIX_SPEC/api/client-server) and the event schemas in
event-schemas/schema/. Needs Debian's python3-yaml and python3-jsonschema
(scripts/install-deps.sh installs them).

Spec.check_request(method, path, query, headers, body) returns a list of
violations (strings; empty when the request is allowed):

- the method and path match an operation of the spec (path templates with
  their parameters, under the operation's basePath, /_matrix/client/v3 or
  v1);
- path and query parameters: required ones present, no unknown ones, types
  and enums and patterns right (query values are strings on the wire:
  integers and booleans are parsed first);
- an operation secured by accessTokenBearer gets "Authorization: Bearer",
  and no request carries access_token in its query;
- the JSON body validates against the operation's requestBody schema (JSON
  Schema 2020-12, $refs resolved across the YAML files), and carries no
  top-level field the schema does not name when the schema names its
  fields;
- an event sent with PUT /rooms/{roomId}/send/{eventType}/{txnId} or
  account data PUT under /user/{userId}/account_data/{type} validates
  against event-schemas/schema/<type>.yaml's `content` (m.room.message by
  its msgtype: m.room.message$m.notice.yaml). The spec has no schema for
  polls (org.matrix.msc3381.poll.start and .poll.end are MSC3381, not in
  the spec): those are checked here by hand against MSC3381's shape, and
  say so.
"""
import glob
import json
import os
import re
import urllib.parse

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_ROOT = os.environ.get(
    "STRIGIL_MATRIX_SPEC",
    os.path.join(REPO, "..", "shared", "specs", "matrix", "data"))

POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"
NO_SCHEMA = ("no schema in the spec for %s (MSC3381): checked by hand "
             "against the MSC's shape")


class _Loader:
    """YAML files by absolute path, and $ref resolution between them."""

    def __init__(self):
        self.cache = {}

    def load(self, path):
        path = os.path.normpath(path)
        if path not in self.cache:
            with open(path, encoding="utf-8") as f:
                self.cache[path] = yaml.safe_load(f)
        return self.cache[path]

    def resolve(self, node, base, depth=0):
        """A copy of `node` with every $ref (relative to the file `base`)
        inlined. Recursive schemas are cut at a depth (then: any)."""
        if depth > 40:
            return {}
        if isinstance(node, list):
            return [self.resolve(v, base, depth) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node and isinstance(node["$ref"], str):
            ref = node["$ref"]
            fpart, _, frag = ref.partition("#")
            target = (os.path.join(os.path.dirname(base), fpart) if fpart
                      else base)
            try:
                doc = self.load(target)
            except OSError:
                return {}       # a file not shipped (the identity API)
            if frag:
                for part in frag.strip("/").split("/"):
                    doc = doc[part]
            out = self.resolve(doc, target, depth + 1)
            rest = {k: v for k, v in node.items() if k != "$ref"}
            if rest and isinstance(out, dict):
                merged = dict(out)
                merged.update(self.resolve(rest, base, depth))
                return merged
            return out
        return {k: self.resolve(v, base, depth) for k, v in node.items()
                if k not in ("example", "examples")}


def _strip_meta(schema):
    """Drops keywords jsonschema would try to fetch or that are OpenAPI's."""
    if isinstance(schema, list):
        return [_strip_meta(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    return {k: _strip_meta(v) for k, v in schema.items()
            if k not in ("$schema", "$id", "x-pattern-format")}


class Operation:
    def __init__(self, method, base_path, template, op, params, body_schema,
                 secured, source):
        self.method = method
        self.base_path = base_path
        self.template = template
        self.params = params              # name -> (in, required, schema)
        self.body_schema = body_schema    # resolved, or None
        self.body_required = False
        self.secured = secured
        self.source = source
        self.op_id = op.get("operationId", template)
        names = []
        rx = "^" + re.escape(base_path)
        for part in re.split(r"(\{[^}]+\})", template):
            if part.startswith("{") and part.endswith("}"):
                names.append(part[1:-1])
                rx += "([^/]+)"
            else:
                rx += re.escape(part)
        self.regex = re.compile(rx + "$")
        self.path_names = names


class Spec:
    def __init__(self, root=DEFAULT_ROOT):
        self.root = os.path.abspath(root)
        self.api_dir = os.path.join(self.root, "api", "client-server")
        self.event_dir = os.path.join(self.root, "event-schemas", "schema")
        self.loader = _Loader()
        self.ops = []
        self.event_cache = {}
        for path in sorted(glob.glob(os.path.join(self.api_dir, "*.yaml"))):
            self._load_file(path)
        if not self.ops:
            raise RuntimeError("no operations in %s" % self.api_dir)

    def _load_file(self, path):
        doc = self.loader.load(path)
        if not isinstance(doc, dict) or "paths" not in doc:
            return
        base = "/_matrix/client/v3"
        for srv in doc.get("servers") or []:
            bp = ((srv.get("variables") or {}).get("basePath") or {})
            if bp.get("default"):
                base = bp["default"]
        for template, item in (doc.get("paths") or {}).items():
            common = item.get("parameters") or []
            for method, op in item.items():
                if method not in ("get", "put", "post", "delete"):
                    continue
                params = {}
                for p in common + (op.get("parameters") or []):
                    p = self.loader.resolve(p, path)
                    params[p["name"]] = (p["in"], bool(p.get("required")),
                                         p.get("schema") or {})
                body = None
                rb = op.get("requestBody")
                required = False
                if rb:
                    rb = self.loader.resolve(rb, path)
                    required = bool(rb.get("required"))
                    sch = ((rb.get("content") or {}).get(
                        "application/json") or {}).get("schema")
                    if sch is not None:
                        body = _strip_meta(sch)
                sec = op.get("security")
                secured = bool(sec) and all(s for s in sec) and any(
                    "accessTokenBearer" in s for s in sec)
                o = Operation(method.upper(), base, template, op, params,
                              body, secured, os.path.basename(path))
                o.body_required = required
                self.ops.append(o)

    # ---- matching ---------------------------------------------------------

    def match(self, method, path):
        """(Operation, {name: decoded value}) or (None, reason)."""
        raw = path.split("?", 1)[0]
        candidates = []
        for o in self.ops:
            m = o.regex.match(raw)
            if m:
                candidates.append((o, m))
        if not candidates:
            return None, "no operation of the spec has the path %s" % raw
        # The most specific template (fewest parameters) wins.
        candidates.sort(key=lambda c: len(c[0].path_names))
        for o, m in candidates:
            if o.method == method:
                vals = {n: urllib.parse.unquote(v)
                        for n, v in zip(o.path_names, m.groups())}
                return o, vals
        return None, "%s is not allowed on %s (the spec has %s)" % (
            method, raw, ", ".join(sorted({o.method for o, _ in
                                           candidates})))

    # ---- values -------------------------------------------------------------

    @staticmethod
    def _coerce(text, schema):
        t = schema.get("type")
        if t == "integer":
            if not re.fullmatch(r"-?[0-9]+", text):
                raise ValueError("not an integer")
            return int(text)
        if t == "boolean":
            if text not in ("true", "false"):
                raise ValueError("not true/false")
            return text == "true"
        if t == "array":
            return [text]
        return text

    def _check_value(self, where, value, schema):
        try:
            jsonschema.Draft202012Validator(
                _strip_meta(schema),
                format_checker=None).validate(value)
        except jsonschema.ValidationError as e:
            return ["%s: %s" % (where, e.message)]
        return []

    def check_request(self, method, path, query, headers, body):
        """Violations of one request; `query` is {name: [values]}, body the
        raw bytes (or None), headers a dict-like with .get()."""
        out = []
        op, vals = self.match(method, path)
        if op is None:
            return [vals]
        where = "%s %s" % (method, op.template)
        for name, (loc, req, schema) in op.params.items():
            if loc == "path":
                out += self._check_value("%s: path parameter %s" % (
                    where, name), vals.get(name), schema)
            elif loc == "query":
                if name not in query:
                    if req:
                        out.append("%s: query parameter %s is required" %
                                   (where, name))
                    continue
                for v in query[name]:
                    try:
                        cv = self._coerce(v, schema)
                    except ValueError as e:
                        out.append("%s: query %s=%r: %s" % (where, name, v,
                                                            e))
                        continue
                    if schema.get("type") == "array":
                        schema = schema.get("items") or {}
                    out += self._check_value("%s: query %s" % (where, name),
                                             cv, schema)
        for name in query:
            if name == "access_token":
                out.append("%s: access_token in the query (use the "
                           "Authorization header)" % where)
            elif name not in op.params or op.params[name][0] != "query":
                out.append("%s: unknown query parameter %s" % (where, name))
        auth = headers.get("Authorization") or ""
        if op.secured and not auth.startswith("Bearer "):
            out.append("%s: needs Authorization: Bearer" % where)
        out += self._check_body(op, where, vals, body)
        return out

    def _check_body(self, op, where, vals, body):
        if not body:
            if op.body_required:
                return ["%s: a JSON body is required" % where]
            return []
        try:
            doc = json.loads(body)
        except ValueError as e:
            return ["%s: body is not JSON: %s" % (where, e)]
        out = []
        if op.body_schema is not None:
            out += self._check_value("%s: body" % where, doc,
                                     op.body_schema)
            props = op.body_schema.get("properties")
            if (isinstance(doc, dict) and props and
                    "additionalProperties" not in op.body_schema and
                    "patternProperties" not in op.body_schema):
                for k in doc:
                    if k not in props:
                        out.append("%s: body field %r is not in the spec" %
                                   (where, k))
        elif op.method in ("POST", "PUT"):
            out.append("%s: the spec takes no body here" % where)
        if op.template == "/rooms/{roomId}/send/{eventType}/{txnId}":
            out += self.check_event(vals["eventType"], doc)
        elif op.template == "/user/{userId}/account_data/{type}":
            out += self.check_event(vals["type"], doc)
        return out

    # ---- events ---------------------------------------------------------------

    def _event_content_schema(self, name):
        if name in self.event_cache:
            return self.event_cache[name]
        path = os.path.join(self.event_dir, name + ".yaml")
        sch = None
        if os.path.exists(path):
            full = self.loader.resolve(self.loader.load(path), path)
            content = (full.get("properties") or {}).get("content")
            if content is None:
                for part in full.get("allOf") or []:
                    c = (part.get("properties") or {}).get("content")
                    if c is not None:
                        content = c
            sch = _strip_meta(content) if content is not None else None
        self.event_cache[name] = sch
        return sch

    def check_event(self, etype, content):
        """Violations of an event's content of type `etype`."""
        if etype == POLL_START:
            return self._check_poll(content)
        if etype == POLL_END:
            return self._check_poll_end(content)
        name = etype
        if etype == "m.room.message":
            mt = content.get("msgtype") if isinstance(content, dict) else None
            if not isinstance(mt, str):
                return ["m.room.message: content.msgtype missing"]
            name = "m.room.message$" + mt
        sch = self._event_content_schema(name)
        if sch is None:
            return ["%s: no event schema %s.yaml in the spec" % (etype,
                                                                 name)]
        out = self._check_value("event %s content" % name, content, sch)
        if etype == "m.room.message":
            has_f = "format" in content
            has_fb = "formatted_body" in content
            if has_f != has_fb:
                out.append("m.room.message: format and formatted_body go "
                           "together")
            if has_f and content["format"] != "org.matrix.custom.html":
                out.append("m.room.message: format must be "
                           "org.matrix.custom.html")
        return out

    @staticmethod
    def _check_poll(c):
        """MSC3381 (unstable prefix): NO_SCHEMA says why by hand."""
        out = []
        w = POLL_START
        p = c.get(POLL_START) if isinstance(c, dict) else None
        if not isinstance(p, dict):
            return ["%s: content[%r] must be an object" % (w, POLL_START)]
        q = p.get("question")
        if not isinstance(q, dict) or not isinstance(
                q.get("org.matrix.msc1767.text") or q.get("body"), str):
            out.append("%s: question needs org.matrix.msc1767.text" % w)
        if p.get("kind") not in ("org.matrix.msc3381.poll.disclosed",
                                 "org.matrix.msc3381.poll.undisclosed"):
            out.append("%s: kind %r" % (w, p.get("kind")))
        ms = p.get("max_selections", 1)
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 1:
            out.append("%s: max_selections must be a positive integer" % w)
        ans = p.get("answers")
        if not isinstance(ans, list) or not 1 <= len(ans) <= 20:
            out.append("%s: answers must be 1 to 20" % w)
        else:
            ids = set()
            for a in ans:
                if (not isinstance(a, dict) or not isinstance(a.get("id"), str)
                        or not isinstance(a.get("org.matrix.msc1767.text"),
                                          str)):
                    out.append("%s: answer needs id and "
                               "org.matrix.msc1767.text" % w)
                    continue
                if a["id"] in ids:
                    out.append("%s: duplicate answer id" % w)
                ids.add(a["id"])
        if not isinstance(c.get("org.matrix.msc1767.text"), str):
            out.append("%s: a text fallback (org.matrix.msc1767.text) is "
                       "needed for clients without polls" % w)
        return out


    @staticmethod
    def _check_poll_end(c):
        """MSC3381's poll end (unstable prefix): a reference to the poll,
        the end marker and a text fallback."""
        w = POLL_END
        if not isinstance(c, dict):
            return ["%s: content must be an object" % w]
        out = []
        rel = c.get("m.relates_to")
        if (not isinstance(rel, dict) or rel.get("rel_type") != "m.reference"
                or not isinstance(rel.get("event_id"), str)):
            out.append("%s: m.relates_to must be an m.reference to the poll"
                       % w)
        if not isinstance(c.get(POLL_END), dict):
            out.append("%s: content[%r] must be an object" % (w, POLL_END))
        if not isinstance(c.get("org.matrix.msc1767.text"), str):
            out.append("%s: a text fallback (org.matrix.msc1767.text) is "
                       "needed for clients without polls" % w)
        return out


_SPEC = None


def spec():
    """The spec, loaded once per process."""
    global _SPEC
    if _SPEC is None:
        _SPEC = Spec()
    return _SPEC
