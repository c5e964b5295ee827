/*
 * protocol.c: loading a protocol file and validating its declarative parts.
 *
 * The file runs once in its own sandbox and must return a table. Everything
 * the engine needs outside a handler call (ids, intervals, levels,
 * questionnaires, texts) is copied into C here, so a protocol cannot change
 * it later and the engine never runs Lua to read it. Tables are read with raw
 * access only: a protocol's metatables never run outside a budgeted call.
 *
 * Declarative errors have no Lua line of their own; proto_where() finds the
 * line of the offending field in the source text so `strigil check` still
 * points the clinician at file:line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "luajson.h"
#include "protocol.h"
#include "sandbox.h"
#include "xmalloc.h"

static const char *proto_event_names[EV_COUNT] = {
	[EV_ENROLLED] = "enrolled",
	[EV_SESSION_DUE] = "session_due",
	[EV_SESSION_DONE] = "session_done",
	[EV_SESSION_SKIPPED] = "session_skipped",
	[EV_SESSION_MISSED] = "session_missed",
	[EV_ANSWERED] = "answered",
	[EV_MESSAGE] = "message",
	[EV_RESUMED] = "resumed",
	[EV_UPGRADED] = "upgraded",
};

static const char *proto_qtype_names[] = {
	[Q_INT] = "integer", [Q_CHOICE] = "choice", [Q_YESNO] = "yesno",
	[Q_TEXT] = "text", [Q_ZONE] = "timezone", [Q_TIME] = "time",
};

/* The state of one proto_load(): the source for line lookups and the first
 * error found. */
struct proto_loader {
	lua_State	*L;
	const char	*path;
	char		*src;
	char		*cause;
	const char	*qs;	/* questionnaire being read, for lines */
	int		 nth;	/* which mention of a question id is meant */
};

const char *
proto_event_name(enum proto_event ev)
{
	return proto_event_names[ev];
}

/* ---- errors that point at a line ---------------------------------- */

/* Returns the 1-based line of the first "key =" in the source, or 0. */
static int
proto_find_line(const char *src, const char *key)
{
	size_t		 klen = strlen(key);
	const char	*p, *q;
	int		 line = 1;

	for (p = src; *p != '\0'; p++) {
		if (*p == '\n') {
			line++;
			continue;
		}
		if (strncmp(p, key, klen) != 0 ||
		    (p > src && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
			continue;
		for (q = p + klen; *q == ' ' || *q == '\t'; q++)
			;
		if (*q == '=' && q[1] != '=')
			return line;
	}
	return 0;
}

/*
 * Returns the line of the nth quoted mention of `word` ("soreness") after
 * the line of "after =", or 0. Questions have no key of their own: this
 * finds them by their id inside their questionnaire.
 */
static int
proto_find_quoted(const char *src, const char *after, const char *word,
    int nth)
{
	size_t		 wlen = strlen(word);
	const char	*p;
	int		 line = 1, start;

	if ((start = proto_find_line(src, after)) == 0)
		return 0;
	for (p = src; *p != '\0'; p++) {
		if (*p == '\n') {
			line++;
			continue;
		}
		if (line < start || (*p != '"' && *p != '\'') ||
		    strncmp(p + 1, word, wlen) != 0 || p[1 + wlen] != *p)
			continue;
		if (--nth == 0)
			return line;
	}
	return 0;
}

/* Records the first error as "path:line: message", the line being that of
 * `key` when it can be found (or, inside a questionnaire, of the question
 * whose id is `key`). Returns -1 for the caller to pass on. */
static int __attribute__((format(printf, 3, 4)))
proto_error(struct proto_loader *pl, const char *key, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512];
	int	 line;

	if (pl->cause != NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	line = key != NULL ? proto_find_line(pl->src, key) : 0;
	if (line == 0 && key != NULL && pl->qs != NULL)
		line = proto_find_quoted(pl->src, pl->qs, key,
		    pl->nth > 0 ? pl->nth : 1);
	if (line > 0)
		pl->cause = xasprintf("%s:%d: %s", pl->path, line, msg);
	else
		pl->cause = xasprintf("%s: %s", pl->path, msg);
	return -1;
}

/* ---- raw field access --------------------------------------------- */

/* Pushes t[key] without metamethods; returns its type. */
static int
proto_field(lua_State *L, int t, const char *key)
{
	lua_pushstring(L, key);
	return lua_rawget(L, t < 0 ? t - 1 : t);
}

static int
proto_is_name(const char *s, size_t max)
{
	size_t	i;

	if (s[0] == '\0' || strlen(s) > max)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

/* Reads an optional integer field in [min, max]; `def` if absent. */
static int
proto_int(struct proto_loader *pl, int t, const char *key, const char *where,
    int def, int min, int max, int *out)
{
	lua_State	*L = pl->L;
	int		 type = proto_field(L, t, key), isint;
	lua_Integer	 v;

	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		*out = def;
		return 0;
	}
	v = lua_tointegerx(L, -1, &isint);
	lua_pop(L, 1);
	if (type != LUA_TNUMBER || !isint || v < min || v > max)
		return proto_error(pl, key, "%s must be a whole number from "
		    "%d to %d", where, min, max);
	*out = (int)v;
	return 0;
}

/* Reads a required string field matching [a-z0-9_]. */
static int
proto_name(struct proto_loader *pl, int t, const char *key, const char *where,
    char **out)
{
	lua_State	*L = pl->L;

	if (proto_field(L, t, key) != LUA_TSTRING ||
	    !proto_is_name(lua_tostring(L, -1), 63)) {
		lua_pop(L, 1);
		return proto_error(pl, key, "%s must be a name of lower-case "
		    "letters, digits and _", where);
	}
	*out = xstrdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	return 0;
}

/* Reads the text at the top of the stack: a string, or a table of language
 * -> string. Pops it. */
static int
proto_text(struct proto_loader *pl, const char *key, const char *where,
    const char *lang, struct proto_text *out)
{
	lua_State	*L = pl->L;
	int		 t = lua_gettop(L), i;
	char		*tmp;

	memset(out, 0, sizeof *out);
	if (lua_type(L, t) == LUA_TSTRING) {
		out->lang = xmalloc(sizeof *out->lang);
		out->text = xmalloc(sizeof *out->text);
		out->lang[0] = xstrdup(lang);
		out->text[0] = xstrdup(lua_tostring(L, t));
		out->n = 1;
		lua_pop(L, 1);
		return 0;
	}
	if (lua_type(L, t) != LUA_TTABLE) {
		lua_pop(L, 1);
		return proto_error(pl, key, "%s must be a text or a table of "
		    "texts by language", where);
	}
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING ||
		    lua_type(L, -1) != LUA_TSTRING) {
			lua_settop(L, t - 1);
			return proto_error(pl, key, "%s: each language must map "
			    "to a text", where);
		}
		out->lang = xrealloc(out->lang, (out->n + 1) * sizeof *out->lang);
		out->text = xrealloc(out->text, (out->n + 1) * sizeof *out->text);
		out->lang[out->n] = xstrdup(lua_tostring(L, -2));
		out->text[out->n] = xstrdup(lua_tostring(L, -1));
		out->n++;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (out->n == 0)
		return proto_error(pl, key, "%s has no text", where);
	/* The protocol's language first: proto_text_get() falls back to it,
	 * not to whichever language the table happened to list first. */
	for (i = 1; i < out->n; i++) {
		if (strcmp(out->lang[i], lang) != 0)
			continue;
		tmp = out->lang[0];
		out->lang[0] = out->lang[i];
		out->lang[i] = tmp;
		tmp = out->text[0];
		out->text[0] = out->text[i];
		out->text[i] = tmp;
	}
	return 0;
}

static void
proto_text_free(struct proto_text *t)
{
	int	i;

	for (i = 0; i < t->n; i++) {
		free(t->lang[i]);
		free(t->text[i]);
	}
	free(t->lang);
	free(t->text);
	memset(t, 0, sizeof *t);
}

const char *
proto_text_get(const struct proto_text *t, const char *lang)
{
	int	i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->lang[i], lang) == 0)
			return t->text[i];
	return t->n > 0 ? t->text[0] : "";
}

/* ---- the declarative parts ---------------------------------------- */

static int
proto_read_course(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;
	int		 weeks, top;

	if (proto_field(L, t, "course") != LUA_TTABLE) {
		lua_pop(L, 1);
		return proto_error(pl, "course", "course must be a table such as "
		    "{ weeks = 6 }");
	}
	top = lua_gettop(L);
	if (proto_int(pl, top, "weeks", "course.weeks", 0, 1, 104, &weeks) != 0 ||
	    proto_int(pl, top, "days", "course.days", weeks * 7, 1, 730,
	    &p->course_days) != 0)
		return -1;
	lua_pop(L, 1);
	if (p->course_days == 0)
		return proto_error(pl, "course", "course needs weeks or days");
	return 0;
}

static int
proto_read_interval(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;
	int		 top;

	if (proto_field(L, t, "interval") != LUA_TTABLE) {
		lua_pop(L, 1);
		return proto_error(pl, "interval", "interval must be a table such "
		    "as { min_hours = 48, target_hours = 60 }");
	}
	top = lua_gettop(L);
	if (proto_int(pl, top, "min_hours", "interval.min_hours", -1, 0, 24 * 60,
	    &p->min_interval_h) != 0 ||
	    proto_int(pl, top, "target_hours", "interval.target_hours",
	    p->min_interval_h, 0, 24 * 60, &p->target_interval_h) != 0 ||
	    proto_int(pl, top, "miss_after_hours", "interval.miss_after_hours",
	    24, 1, 24 * 14, &p->miss_after_h) != 0)
		return -1;
	lua_pop(L, 1);
	if (p->min_interval_h < 0)
		return proto_error(pl, "interval", "interval.min_hours is required");
	if (p->target_interval_h < p->min_interval_h)
		return proto_error(pl, "target_hours", "interval.target_hours must "
		    "not be below interval.min_hours");
	return 0;
}

static int
proto_read_levels(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;
	lua_Integer	 i, n;
	int		 top;

	if (proto_field(L, t, "pressure") != LUA_TTABLE) {
		lua_pop(L, 1);
		return proto_error(pl, "pressure", "pressure must be a table such "
		    "as { levels = { \"light\", \"moderate\" }, start = \"light\" }");
	}
	top = lua_gettop(L);
	if (proto_field(L, top, "levels") != LUA_TTABLE ||
	    (n = (lua_Integer)lua_rawlen(L, -1)) < 1 || n > 16) {
		lua_settop(L, top - 1);
		return proto_error(pl, "levels", "pressure.levels must list 1 to "
		    "16 level names, lightest first");
	}
	p->levels = xcalloc((size_t)n, sizeof *p->levels);
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		if (lua_type(L, -1) != LUA_TSTRING ||
		    !proto_is_name(lua_tostring(L, -1), 31)) {
			lua_settop(L, top - 1);
			return proto_error(pl, "levels", "pressure.levels[%lld] "
			    "must be a name", (long long)i);
		}
		p->levels[p->nlevels++] = xstrdup(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	p->start_level = 0;
	if (proto_field(L, top, "start") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING ||
		    (p->start_level = proto_level(p, lua_tostring(L, -1))) < 0) {
			lua_settop(L, top - 1);
			return proto_error(pl, "start", "pressure.start must be one "
			    "of pressure.levels");
		}
	}
	lua_settop(L, top - 1);
	return 0;
}

static int
proto_read_options(struct proto_loader *pl, int t, struct proto_question *q,
    const char *lang)
{
	lua_State	*L = pl->L;
	lua_Integer	 i, n;
	char		 where[96];
	int		 top;

	if (proto_field(L, t, "options") != LUA_TTABLE ||
	    (n = (lua_Integer)lua_rawlen(L, -1)) < 2 || n > 20) {
		lua_pop(L, 1);
		return proto_error(pl, q->id, "question '%s' needs 2 to 20 "
		    "options", q->id);
	}
	top = lua_gettop(L);
	q->options = xcalloc((size_t)n, sizeof *q->options);
	for (i = 1; i <= n; i++) {
		snprintf(where, sizeof where, "question '%s' option %lld", q->id,
		    (long long)i);
		if (lua_rawgeti(L, top, i) != LUA_TTABLE) {
			lua_settop(L, top - 1);
			return proto_error(pl, q->id, "%s must be a table such as "
			    "{ id = \"none\", text = \"None\" }", where);
		}
		q->noptions++;
		if (proto_name(pl, -1, "id", where, &q->options[i - 1].id) != 0)
			return -1;
		proto_field(L, -1, "text");
		if (proto_text(pl, q->id, where, lang,
		    &q->options[i - 1].text) != 0)
			return -1;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

static int
proto_qtype(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof proto_qtype_names / sizeof *proto_qtype_names; i++)
		if (strcmp(name, proto_qtype_names[i]) == 0)
			return (int)i;
	return -1;
}

/* The all-clear answer: given, or the mildest value of the type. */
static int
proto_read_clear(struct proto_loader *pl, int t, struct proto_question *q)
{
	lua_State	*L = pl->L;
	char		 buf[32];

	switch (proto_field(L, t, "clear")) {
	case LUA_TNIL:
		lua_pop(L, 1);
		if (q->type == Q_INT)
			snprintf(buf, sizeof buf, "%d", q->min);
		else if (q->type == Q_YESNO)
			snprintf(buf, sizeof buf, "no");
		else if (q->type == Q_CHOICE)
			snprintf(buf, sizeof buf, "%s", q->options[0].id);
		else
			snprintf(buf, sizeof buf, "-");
		q->clear = xstrdup(buf);
		return 0;
	case LUA_TSTRING:
	case LUA_TNUMBER:
		q->clear = xstrdup(lua_tostring(L, -1));
		lua_pop(L, 1);
		return 0;
	case LUA_TBOOLEAN:
		q->clear = xstrdup(lua_toboolean(L, -1) ? "yes" : "no");
		lua_pop(L, 1);
		return 0;
	default:
		lua_pop(L, 1);
		return proto_error(pl, q->id, "question '%s': clear must be an "
		    "answer", q->id);
	}
}

static int
proto_read_question(struct proto_loader *pl, int t, struct proto_question *q,
    const char *lang)
{
	lua_State	*L = pl->L;
	int		 type;

	if (proto_name(pl, t, "id", "every question's id", &q->id) != 0)
		return -1;
	if (proto_field(L, t, "type") != LUA_TSTRING ||
	    (type = proto_qtype(lua_tostring(L, -1))) < 0) {
		lua_pop(L, 1);
		return proto_error(pl, q->id, "question '%s': type must be "
		    "integer, choice, yesno, text, timezone or time", q->id);
	}
	lua_pop(L, 1);
	q->type = (enum proto_qtype)type;
	proto_field(L, t, "text");
	if (proto_text(pl, q->id, "question text", lang, &q->text) != 0)
		return -1;
	if (q->type == Q_INT) {
		if (proto_int(pl, t, "min", "min", 0, -1000000, 1000000,
		    &q->min) != 0 ||
		    proto_int(pl, t, "max", "max", 10, -1000000, 1000000,
		    &q->max) != 0)
			return -1;
		if (q->min > q->max)
			return proto_error(pl, q->id, "question '%s': min is above "
			    "max", q->id);
	}
	if (q->type == Q_CHOICE && proto_read_options(pl, t, q, lang) != 0)
		return -1;
	return proto_read_clear(pl, t, q);
}

static int
proto_read_questionnaire(struct proto_loader *pl, struct proto_questionnaire *qs,
    const char *lang)
{
	lua_State	*L = pl->L;
	int		 t = lua_gettop(L), i, j;
	lua_Integer	 n = (lua_Integer)lua_rawlen(L, t);

	if (n < 1 || n > 50)
		return proto_error(pl, qs->id, "questionnaire '%s' must list 1 "
		    "to 50 questions", qs->id);
	pl->qs = qs->id;
	qs->q = xcalloc((size_t)n, sizeof *qs->q);
	for (i = 1; i <= n; i++) {
		if (lua_rawgeti(L, t, i) != LUA_TTABLE) {
			lua_settop(L, t);
			return proto_error(pl, qs->id, "questionnaire '%s': "
			    "question %d must be a table", qs->id, i);
		}
		qs->n++;
		if (proto_read_question(pl, lua_gettop(L), &qs->q[i - 1],
		    lang) != 0)
			return -1;
		lua_pop(L, 1);
		for (j = 0; j < i - 1; j++)
			if (strcmp(qs->q[j].id, qs->q[i - 1].id) == 0) {
				pl->nth = 2;	/* the second mention */
				return proto_error(pl, qs->q[j].id, "questionnaire "
				    "'%s' asks '%s' twice", qs->id, qs->q[j].id);
			}
	}
	pl->qs = NULL;
	return 0;
}

static int
proto_read_questionnaires(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;
	int		 top, n = 0;

	if (proto_field(L, t, "questionnaires") == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (lua_type(L, -1) != LUA_TTABLE) {
		lua_pop(L, 1);
		return proto_error(pl, "questionnaires", "questionnaires must be a "
		    "table of questionnaire id -> list of questions");
	}
	top = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, top) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING ||
		    !proto_is_name(lua_tostring(L, -2), 31) ||
		    strcmp(lua_tostring(L, -2), "setup") == 0 ||
		    lua_type(L, -1) != LUA_TTABLE) {
			lua_settop(L, top - 1);
			return proto_error(pl, "questionnaires", "questionnaires: "
			    "each entry must be name = { questions } (\"setup\" "
			    "is the engine's own)");
		}
		p->qs = xrealloc(p->qs, (size_t)(n + 1) * sizeof *p->qs);
		memset(&p->qs[n], 0, sizeof p->qs[n]);
		p->qs[n].id = xstrdup(lua_tostring(L, -2));
		p->nqs = ++n;
		if (proto_read_questionnaire(pl, &p->qs[n - 1], p->lang) != 0)
			return -1;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

static int
proto_read_steps(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;
	lua_Integer	 i, n;

	if (proto_field(L, t, "steps") != LUA_TTABLE ||
	    (n = (lua_Integer)lua_rawlen(L, -1)) < 1 || n > 30) {
		lua_pop(L, 1);
		return proto_error(pl, "steps", "steps must list 1 to 30 session "
		    "steps");
	}
	p->steps = xcalloc((size_t)n, sizeof *p->steps);
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		p->nsteps++;
		if (proto_text(pl, "steps", "each step", p->lang,
		    &p->steps[i - 1]) != 0)
			return -1;
	}
	lua_pop(L, 1);
	return 0;
}

static int
proto_read_lang_messages(struct proto_loader *pl, struct protocol *p,
    const char *lang)
{
	lua_State	*L = pl->L;
	int		 t = lua_gettop(L);

	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING ||
		    lua_type(L, -1) != LUA_TSTRING ||
		    !proto_is_name(lua_tostring(L, -2), 63)) {
			lua_settop(L, t);
			return proto_error(pl, "messages", "messages.%s: each "
			    "entry must be key = \"text\" with a lower-case key",
			    lang);
		}
		p->msgs = xrealloc(p->msgs, (size_t)(p->nmsgs + 1) *
		    sizeof *p->msgs);
		p->msgs[p->nmsgs].lang = xstrdup(lang);
		p->msgs[p->nmsgs].key = xstrdup(lua_tostring(L, -2));
		p->msgs[p->nmsgs].text = xstrdup(lua_tostring(L, -1));
		p->nmsgs++;
		lua_pop(L, 1);
	}
	return 0;
}

static int
proto_read_messages(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;
	int		 top;
	char		 lang[16];

	if (proto_field(L, t, "messages") == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (lua_type(L, -1) != LUA_TTABLE) {
		lua_pop(L, 1);
		return proto_error(pl, "messages", "messages must be a table of "
		    "language -> { key = \"text\" }");
	}
	top = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, top) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING ||
		    lua_type(L, -1) != LUA_TTABLE ||
		    lua_rawlen(L, -2) >= sizeof lang) {
			lua_settop(L, top - 1);
			return proto_error(pl, "messages", "messages: each entry "
			    "must be a language code = { key = \"text\" }");
		}
		snprintf(lang, sizeof lang, "%s", lua_tostring(L, -2));
		if (proto_read_lang_messages(pl, p, lang) != 0)
			return -1;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

static int
proto_read_handlers(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;
	int		 top, ev;
	char		 name[64];

	if (proto_field(L, t, "on") == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (lua_type(L, -1) != LUA_TTABLE) {
		lua_pop(L, 1);
		return proto_error(pl, "on", "on must be a table of event name "
		    "-> function");
	}
	top = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, top) != 0) {
		for (ev = 0; ev < EV_COUNT; ev++)
			if (lua_type(L, -2) == LUA_TSTRING &&
			    strcmp(lua_tostring(L, -2), proto_event_names[ev]) == 0)
				break;
		if (ev == EV_COUNT || lua_type(L, -1) != LUA_TFUNCTION) {
			/* Point at the handler's own line if it has one. */
			snprintf(name, sizeof name, "%s", lua_type(L, -2) ==
			    LUA_TSTRING ? lua_tostring(L, -2) : "on");
			lua_settop(L, top - 1);
			return proto_error(pl, proto_find_line(pl->src, name) > 0 ?
			    name : "on", "on: unknown event or not a "
			    "function (events: enrolled, session_due, "
			    "session_done, session_skipped, session_missed, "
			    "answered, message, resumed, upgraded)");
		}
		p->has[ev] = 1;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

/*
 * `upgrade = { from = { 1, 2 } }`: the older versions whose patients move to
 * this one at their next event (an optional on.upgraded adjusts ctx.state).
 * Without it a patient stays on the version they enrolled with.
 */
static int
proto_read_upgrade(struct proto_loader *pl, int t, struct protocol *p)
{
	static const char	*known[] = { "from", NULL };
	lua_State		*L = pl->L;
	lua_Integer		 i, n, v;
	int			 top, isint, j;

	if (proto_field(L, t, "upgrade") == LUA_TNIL) {
		lua_pop(L, 1);
		if (p->has[EV_UPGRADED])
			return proto_error(pl, "upgraded", "on.upgraded needs "
			    "upgrade = { from = { ... } } naming the versions "
			    "it takes over");
		return 0;
	}
	top = lua_gettop(L);
	if (lua_type(L, top) != LUA_TTABLE || proto_unknown_key(L, top, known)) {
		lua_settop(L, top - 1);
		return proto_error(pl, "upgrade", "upgrade must be a table such "
		    "as { from = { 1, 2 } }");
	}
	if (proto_field(L, top, "from") != LUA_TTABLE ||
	    (n = (lua_Integer)lua_rawlen(L, -1)) < 1 || n > 1000) {
		lua_settop(L, top - 1);
		return proto_error(pl, "upgrade", "upgrade.from must list the "
		    "older versions whose patients move to this one");
	}
	p->upgrade_from = xcalloc((size_t)n, sizeof *p->upgrade_from);
	for (i = 1; i <= n; i++) {
		isint = lua_rawgeti(L, -1, i) == LUA_TNUMBER;
		v = lua_tointegerx(L, -1, isint ? &isint : NULL);
		lua_pop(L, 1);
		if (!isint || v < 1 || v >= p->version) {
			lua_settop(L, top - 1);
			return proto_error(pl, "from", "upgrade.from: each entry "
			    "must be a version below this one (%d)", p->version);
		}
		for (j = 0; j < p->nupgrade_from; j++)
			if (p->upgrade_from[j] == (int)v)
				break;
		if (j == p->nupgrade_from)
			p->upgrade_from[p->nupgrade_from++] = (int)v;
	}
	lua_settop(L, top - 1);
	return 0;
}

int
proto_upgrades_from(const struct protocol *p, int version)
{
	int	i;

	for (i = 0; i < p->nupgrade_from; i++)
		if (p->upgrade_from[i] == version)
			return 1;
	return 0;
}

/* Every key of the top-level table must be known: a typo such as
 * "intervall" would otherwise be silently ignored. */
static int
proto_check_keys(struct proto_loader *pl, int t)
{
	static const char	*known[] = { "id", "version", "title", "language",
	    "course", "interval", "pressure", "questionnaires", "steps",
	    "messages", "on", "params", "upgrade", NULL };
	lua_State		*L = pl->L;

	if (!proto_unknown_key(L, t, known))
		return 0;
	if (lua_type(L, -1) == LUA_TSTRING)
		proto_error(pl, lua_tostring(L, -1), "unknown field '%s'",
		    lua_tostring(L, -1));
	else
		proto_error(pl, NULL, "the protocol table has a non-name key");
	lua_pop(L, 1);
	return -1;
}

int
proto_unknown_key(lua_State *L, int t, const char *const *known)
{
	int	i;

	t = lua_absindex(L, t);
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		lua_pop(L, 1);
		for (i = 0; known[i] != NULL; i++)
			if (lua_type(L, -1) == LUA_TSTRING &&
			    strcmp(lua_tostring(L, -1), known[i]) == 0)
				break;
		if (known[i] == NULL)
			return 1;
	}
	return 0;
}

static int
proto_read(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;

	if (proto_check_keys(pl, t) != 0 ||
	    proto_name(pl, t, "id", "id", &p->id) != 0 ||
	    proto_int(pl, t, "version", "version", -1, 1, 1000000,
	    &p->version) != 0)
		return -1;
	if (p->version < 0)
		return proto_error(pl, NULL, "version is required (a whole "
		    "number, raised with every change)");
	if (proto_field(L, t, "language") == LUA_TSTRING)
		p->lang = xstrndup(lua_tostring(L, -1), 15);
	else
		p->lang = xstrdup("en");
	lua_pop(L, 1);
	proto_field(L, t, "title");
	if (proto_text(pl, "title", "title", p->lang, &p->title) != 0)
		return -1;
	if (proto_read_course(pl, t, p) != 0 ||
	    proto_read_interval(pl, t, p) != 0 ||
	    proto_read_levels(pl, t, p) != 0 ||
	    proto_read_questionnaires(pl, t, p) != 0 ||
	    proto_read_steps(pl, t, p) != 0 ||
	    proto_read_messages(pl, t, p) != 0 ||
	    proto_read_handlers(pl, t, p) != 0 ||
	    proto_read_upgrade(pl, t, p) != 0)
		return -1;
	return 0;
}

static int
proto_params(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;
	char		*cause = NULL;

	if (proto_field(L, t, "params") == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (lua_type(L, -1) != LUA_TTABLE ||
	    (p->params = luajson_encode(L, -1, &cause)) == NULL ||
	    (p->params_json = cJSON_Parse(p->params)) == NULL) {
		lua_pop(L, 1);
		proto_error(pl, "params", "params must be a table of plain "
		    "values%s%s", cause != NULL ? ": " : "",
		    cause != NULL ? cause : "");
		free(cause);
		return -1;
	}
	lua_pop(L, 1);
	return 0;
}

struct proto_read_args {
	struct proto_loader	*pl;
	struct protocol		*p;
	int			 rc;
};

static int
proto_read_run(lua_State *L)
{
	struct proto_read_args	*a = lua_touserdata(L, 1);

	lua_remove(L, 1);
	a->rc = proto_read(a->pl, 1, a->p);
	if (a->rc == 0)
		a->rc = proto_params(a->pl, 1, a->p);
	return 0;
}

/*
 * Reads the returned table (on top of the stack, left there) inside a
 * protected call: reading allocates, and a memory error must become a
 * message, not an abort.
 */
static int
proto_read_protected(struct proto_loader *pl, struct protocol *p,
    char **cause)
{
	struct proto_read_args	 a = { pl, p, -1 };
	lua_State		*L = pl->L;

	lua_pushcfunction(L, proto_read_run);
	lua_pushlightuserdata(L, &a);
	lua_pushvalue(L, -3);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		*cause = xasprintf("%s: %s", pl->path, lua_type(L, -1) ==
		    LUA_TSTRING ? lua_tostring(L, -1) : "error while reading");
		lua_pop(L, 1);
		free(pl->cause);
		pl->cause = NULL;
		return -1;
	}
	if (a.rc != 0) {
		*cause = pl->cause;
		return -1;
	}
	return 0;
}

/* Compiles and reads `src`; `name` is the file (or "file#v2") errors name. */
static int
proto_load_chunk(const char *name, const char *src, size_t len,
    const struct proto_limits *limits, struct protocol **out, char **cause)
{
	struct proto_loader	 pl = { NULL, name, NULL, NULL, NULL, 0 };
	struct protocol		*p = xcalloc(1, sizeof *p);
	char			*chunk;
	int			 rc;

	p->path = xstrdup(name);
	p->ref = LUA_NOREF;
	p->source = xmalloc(len + 1);
	memcpy(p->source, src, len);
	p->source[len] = '\0';
	p->source_len = len;
	pl.src = p->source;
	if ((p->sb = sandbox_new(limits->memory, limits->instructions,
	    cause)) == NULL)
		goto fail;
	pl.L = sandbox_state(p->sb);
	chunk = xasprintf("@%s", name);
	rc = sandbox_load(p->sb, chunk, src, len, cause);
	free(chunk);
	if (rc != 0)
		goto fail;
	if (sandbox_call(p->sb, 0, 1, cause) != 0)
		goto fail;
	sandbox_freeze_globals(p->sb);
	if (lua_type(pl.L, -1) != LUA_TTABLE) {
		lua_pop(pl.L, 1);
		*cause = xasprintf("%s: the protocol must return a table", name);
		goto fail;
	}
	if (proto_read_protected(&pl, p, cause) != 0)
		goto fail;
	p->ref = luaL_ref(pl.L, LUA_REGISTRYINDEX);
	*out = p;
	return 0;
fail:
	proto_free(p);
	return -1;
}

int
proto_load(const char *path, const struct proto_limits *limits,
    struct protocol **out, char **cause)
{
	char	*src;
	size_t	 len;
	int	 rc;

	/* Read once: the very text compiled is the one searched for lines and
	 * kept in p->source (the engine stores every version it loads), even if
	 * an editor rewrites the file meanwhile. */
	if ((src = sandbox_read_file(path, &len, cause)) == NULL)
		return -1;
	rc = proto_load_chunk(path, src, len, limits, out, cause);
	free(src);
	return rc;
}

int
proto_load_source(const char *name, const char *src, size_t len,
    const struct proto_limits *limits, struct protocol **out, char **cause)
{
	return proto_load_chunk(name, src, len, limits, out, cause);
}

void
proto_free(struct protocol *p)
{
	int	i, j;

	if (p == NULL)
		return;
	for (i = 0; i < p->nqs; i++) {
		for (j = 0; j < p->qs[i].n; j++) {
			struct proto_question *q = &p->qs[i].q[j];

			free(q->id);
			free(q->clear);
			proto_text_free(&q->text);
			while (q->noptions-- > 0) {
				free(q->options[q->noptions].id);
				proto_text_free(&q->options[q->noptions].text);
			}
			free(q->options);
		}
		for (j = 0; p->qs[i].meta != NULL && j < p->qs[i].n; j++) {
			free(p->qs[i].meta[j]);
			free(p->qs[i].meta_key[j]);
		}
		free(p->qs[i].meta);
		free(p->qs[i].meta_key);
		free(p->qs[i].q);
		free(p->qs[i].id);
	}
	free(p->qs);
	for (i = 0; i < p->nsteps; i++)
		proto_text_free(&p->steps[i]);
	free(p->steps);
	for (i = 0; i < p->nlevels; i++)
		free(p->levels[i]);
	free(p->levels);
	for (i = 0; i < p->nmsgs; i++) {
		free(p->msgs[i].lang);
		free(p->msgs[i].key);
		free(p->msgs[i].text);
	}
	free(p->msgs);
	proto_text_free(&p->title);
	free(p->params);
	cJSON_Delete(p->params_json);
	free(p->upgrade_from);
	free(p->source);
	if (p->sb != NULL)
		sandbox_free(p->sb);
	free(p->lang);
	free(p->id);
	free(p->path);
	free(p);
}

/* ---- lookups ------------------------------------------------------ */

const struct proto_questionnaire *
proto_questionnaire(const struct protocol *p, const char *id)
{
	int	i;

	for (i = 0; i < p->nqs; i++)
		if (strcmp(p->qs[i].id, id) == 0)
			return &p->qs[i];
	return NULL;
}

const struct proto_question *
proto_question(const struct proto_questionnaire *q, const char *id)
{
	int	i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->q[i].id, id) == 0)
			return &q->q[i];
	return NULL;
}

const char *
proto_message(const struct protocol *p, const char *lang, const char *key)
{
	const char	*fallback = NULL;
	int		 i;

	for (i = 0; i < p->nmsgs; i++) {
		if (strcmp(p->msgs[i].key, key) != 0)
			continue;
		if (strcmp(p->msgs[i].lang, lang) == 0)
			return p->msgs[i].text;
		if (strcmp(p->msgs[i].lang, p->lang) == 0)
			fallback = p->msgs[i].text;
	}
	return fallback;
}

int
proto_level(const struct protocol *p, const char *name)
{
	int	i;

	for (i = 0; i < p->nlevels; i++)
		if (strcmp(p->levels[i], name) == 0)
			return i;
	return -1;
}
