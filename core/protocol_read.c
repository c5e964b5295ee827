/*
 * protocol_read.c: reading the declarative parts of a protocol's table
 * (course, interval, pressure levels, steps, messages, handlers, upgrade,
 * params) into struct protocol, refusing unknown keys. The questionnaires
 * are in protocol_ask.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>

#include "luajson.h"
#include "protocol.h"
#include "protocol_int.h"
#include "xmalloc.h"

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
proto_msg_cmp(const void *a, const void *b)
{
	const struct proto_message	*x = a, *y = b;
	int				 c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->lang, y->lang);
}

/* Sorted by key and language for proto_message()'s binary search. */
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
	if (p->nmsgs > 1)
		qsort(p->msgs, (size_t)p->nmsgs, sizeof *p->msgs, proto_msg_cmp);
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

int
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

int
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
