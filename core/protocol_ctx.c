/*
 * protocol_ctx.c: calling a protocol's handlers.
 *
 * A handler is called as on.EVENT(ctx, ev). `ctx` carries a read-only
 * snapshot of the course and the action functions (ctx.schedule, ctx.ask,
 * ctx.say, ...). The action functions only record what to do; the engine
 * applies the list after the handler returned without error, so a handler
 * that fails half-way changes nothing. Each action notes the line it was
 * called from, so an error found while applying it still names file:line.
 *
 * Everything that touches Lua, from building ctx to saving ctx.state, runs
 * inside one sandbox_call(): memory errors and the instruction budget cover
 * all of it.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>

#include "catalog.h"
#include "luajson.h"
#include "protocol.h"
#include "sandbox.h"
#include "tz.h"
#include "xmalloc.h"

#define PROTO_MAX_ACTIONS	64
#define PROTO_MAX_HOURS		(24 * 366)

/* One call in progress, reachable from the action functions. */
struct proto_call {
	struct protocol		*p;
	enum proto_event	 ev;
	const struct proto_ctx	*ctx;
	struct proto_result	*res;
	int			 pressure;	/* level after the actions so far */
	/* Only for the texts luajson_push_text() does not take: parsed
	 * during the call and freed after it, so a memory error raised
	 * while pushing them cannot leak them. */
	cJSON			*state;
	cJSON			*answers;
};

static struct proto_call *
proto_ctx_call(lua_State *L)
{
	struct protocol	*p = lua_touserdata(L, lua_upvalueindex(1));

	if (p->call == NULL)
		luaL_error(L, "ctx functions work only during the handler call");
	return p->call;
}

static struct proto_action *
proto_ctx_add(lua_State *L, enum proto_act kind)
{
	struct proto_call	*c = proto_ctx_call(L);
	struct proto_result	*r = c->res;
	struct proto_action	*a;

	if (r->n >= PROTO_MAX_ACTIONS)
		luaL_error(L, "more than %d actions in one event",
		    PROTO_MAX_ACTIONS);
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->v = xrealloc(r->v, (size_t)r->cap * sizeof *r->v);
	}
	a = &r->v[r->n++];
	memset(a, 0, sizeof *a);
	a->kind = kind;
	a->when.at = PROTO_AT_EXACT;
	return a;
}

/* ---- reading action arguments ------------------------------------- */

/* Refuses keys a table argument does not know, so a typo ("hour = 24")
 * fails loudly instead of scheduling something else. */
static void
proto_ctx_keys(lua_State *L, int t, const char *fn, const char **known)
{
	if (proto_unknown_key(L, t, known))
		luaL_error(L, "%s: unknown option '%s'", fn,
		    lua_type(L, -1) == LUA_TSTRING ?
		    lua_tostring(L, -1) : luaL_typename(L, -1));
}

static double
proto_ctx_number(lua_State *L, int t, const char *key, const char *fn)
{
	double	v;

	lua_pushstring(L, key);
	if (lua_rawget(L, t) == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : -1;
	/* Written so that NaN fails too. */
	if (!(v >= 0 && v <= PROTO_MAX_HOURS * 60.0))
		luaL_error(L, "%s: %s must be a number of at least 0", fn, key);
	lua_pop(L, 1);
	return v;
}

static const char *
proto_ctx_string(lua_State *L, int t, const char *key)
{
	const char	*s;

	lua_pushstring(L, key);
	if (lua_rawget(L, t) == LUA_TNIL) {
		lua_pop(L, 1);
		return NULL;
	}
	/* The value stays reachable from the argument table while we use it. */
	s = lua_tostring(L, -1);
	lua_pop(L, 1);
	return s;
}

/*
 * Reads when from { days, hours, minutes, at, from } in the table at `t`.
 * `def_at` applies when `at` is absent: sessions default to the patient's
 * reminder time, questionnaires to the exact offset.
 */
static void
proto_ctx_when(lua_State *L, int t, const char *fn, int def_at,
    struct proto_when *w)
{
	const char	*at, *from;
	double		 s;

	s = proto_ctx_number(L, t, "days", fn) * 86400 +
	    proto_ctx_number(L, t, "hours", fn) * 3600 +
	    proto_ctx_number(L, t, "minutes", fn) * 60;
	if (s > PROTO_MAX_HOURS * 3600.0)
		luaL_error(L, "%s: more than a year ahead", fn);
	w->offset = (int64_t)s;
	w->at = def_at;
	if ((at = proto_ctx_string(L, t, "at")) != NULL) {
		if (strcmp(at, "reminder") == 0)
			w->at = PROTO_AT_REMINDER;
		else if (strcmp(at, "exact") == 0)
			w->at = PROTO_AT_EXACT;
		else if ((w->at = tz_parse_hhmm(at)) < 0)
			luaL_error(L, "%s: at must be \"HH:MM\", \"reminder\" or "
			    "\"exact\"", fn);
	}
	from = proto_ctx_string(L, t, "from");
	if (from != NULL && strcmp(from, "session") == 0)
		w->from_session = 1;
	else if (from != NULL && strcmp(from, "now") != 0)
		luaL_error(L, "%s: from must be \"now\" or \"session\"", fn);
}

static char *
proto_ctx_reason(lua_State *L, int t, const char *fn, int required)
{
	const char	*r = proto_ctx_string(L, t, "reason");

	if (r == NULL && required)
		luaL_error(L, "%s: a reason is required", fn);
	if (r != NULL && (strlen(r) == 0 || strlen(r) > 500))
		luaL_error(L, "%s: reason must be 1 to 500 characters", fn);
	return r != NULL ? xstrdup(r) : NULL;
}

static int
proto_ctx_opttable(lua_State *L, int arg)
{
	if (lua_isnoneornil(L, arg)) {
		if (lua_gettop(L) < arg)	/* absent: make the slot first */
			lua_settop(L, arg);
		lua_newtable(L);
		lua_replace(L, arg);
	}
	luaL_checktype(L, arg, LUA_TTABLE);
	return arg;
}

/* ---- the action functions ----------------------------------------- */

static const char *proto_when_keys[] = { "days", "hours", "minutes", "at",
    "from", NULL };

/* ctx.schedule{ hours = 48, at = "reminder", from = "session" } */
static int
proto_ctx_schedule(lua_State *L)
{
	int			 t = proto_ctx_opttable(L, 1);
	struct proto_action	*a;

	proto_ctx_keys(L, t, "schedule", proto_when_keys);
	a = proto_ctx_add(L, ACT_SCHEDULE);
	proto_ctx_when(L, t, "schedule", PROTO_AT_REMINDER, &a->when);
	return 0;
}

/* ctx.ask("checkin", { hours = 24 }) */
static int
proto_ctx_ask(lua_State *L)
{
	struct proto_call	*c = proto_ctx_call(L);
	const char		*id = luaL_checkstring(L, 1);
	int			 t = proto_ctx_opttable(L, 2);
	struct proto_action	*a;

	if (proto_questionnaire(c->p, id) == NULL)
		luaL_error(L, "ask: no questionnaire '%s'", id);
	proto_ctx_keys(L, t, "ask", proto_when_keys);
	a = proto_ctx_add(L, ACT_ASK);
	a->name = xstrdup(id);
	proto_ctx_when(L, t, "ask", PROTO_AT_EXACT, &a->when);
	return 0;
}

/* ctx.say("key", { name = value, ... }) */
static int
proto_ctx_say(lua_State *L)
{
	struct proto_call	*c = proto_ctx_call(L);
	const char		*key = luaL_checkstring(L, 1);
	struct proto_action	*a;
	char			*params = NULL, *cause = NULL;

	if (proto_message(c->p, c->ctx->lang, key) == NULL &&
	    (c->ctx->catalog == NULL ||
	    catalog_get(c->ctx->catalog, c->ctx->lang, key) == NULL))
		luaL_error(L, "say: no message '%s'", key);

	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		if ((params = luajson_encode(L, 2, &cause)) == NULL) {
			luaL_where(L, 1);	/* file:line, as luaL_error */
			lua_pushfstring(L, "say: %s", cause);
			free(cause);
			lua_concat(L, 2);
			return lua_error(L);
		}
	}
	a = proto_ctx_add(L, ACT_SAY);
	a->name = xstrdup(key);
	a->params = params;
	return 0;
}

static void
proto_ctx_pressure_to(lua_State *L, int level)
{
	struct proto_call	*c = proto_ctx_call(L);
	struct proto_action	*a;

	if (level == c->pressure)
		return;
	a = proto_ctx_add(L, ACT_PRESSURE);
	a->level = level;
	c->pressure = level;
}

/* ctx.set_pressure("light") */
static int
proto_ctx_set_pressure(lua_State *L)
{
	struct proto_call	*c = proto_ctx_call(L);
	const char		*name = luaL_checkstring(L, 1);
	int			 level = proto_level(c->p, name);

	if (level < 0)
		luaL_error(L, "set_pressure: unknown level '%s'", name);
	proto_ctx_pressure_to(L, level);
	lua_pushstring(L, c->p->levels[level]);
	return 1;
}

/* ctx.step_pressure(-1): one level lighter (clamped); returns the level. */
static int
proto_ctx_step_pressure(lua_State *L)
{
	struct proto_call	*c = proto_ctx_call(L);
	lua_Integer		 step = luaL_checkinteger(L, 1);
	lua_Integer		 level = c->pressure + step;

	if (level < 0)
		level = 0;
	if (level >= c->p->nlevels)
		level = c->p->nlevels - 1;
	proto_ctx_pressure_to(L, (int)level);
	lua_pushstring(L, c->p->levels[level]);
	return 1;
}

/* ctx.postpone{ hours = 24, reason = "soreness", ask = "checkin" } */
static int
proto_ctx_postpone(lua_State *L)
{
	static const char	*keys[] = { "days", "hours", "minutes", "at",
	    "reason", "ask", NULL };
	struct proto_call	*c = proto_ctx_call(L);
	int			 t = proto_ctx_opttable(L, 1);
	const char		*ask;
	struct proto_action	*a;

	proto_ctx_keys(L, t, "postpone", keys);
	ask = proto_ctx_string(L, t, "ask");
	if (ask != NULL && proto_questionnaire(c->p, ask) == NULL)
		luaL_error(L, "postpone: no questionnaire '%s'", ask);
	a = proto_ctx_add(L, ACT_POSTPONE);
	a->name = ask != NULL ? xstrdup(ask) : NULL;
	a->reason = proto_ctx_reason(L, t, "postpone", 1);
	proto_ctx_when(L, t, "postpone", ask != NULL ? PROTO_AT_EXACT :
	    PROTO_AT_REMINDER, &a->when);
	if (a->when.offset == 0)
		luaL_error(L, "postpone: say how long (hours = 24)");
	return 0;
}

static int
proto_ctx_reasoned(lua_State *L, enum proto_act kind, const char *fn)
{
	static const char	*keys[] = { "reason", NULL };
	int			 t = proto_ctx_opttable(L, 1);
	char			*reason;

	proto_ctx_keys(L, t, fn, keys);
	reason = proto_ctx_reason(L, t, fn, 1);
	proto_ctx_add(L, kind)->reason = reason;
	return 0;
}

static int
proto_ctx_pause(lua_State *L)
{
	return proto_ctx_reasoned(L, ACT_PAUSE, "pause");
}

static int
proto_ctx_escalate(lua_State *L)
{
	return proto_ctx_reasoned(L, ACT_ESCALATE, "escalate");
}

static int
proto_ctx_finish(lua_State *L)
{
	return proto_ctx_reasoned(L, ACT_FINISH, "finish");
}

static const luaL_Reg proto_ctx_funcs[] = {
	{ "schedule", proto_ctx_schedule },
	{ "ask", proto_ctx_ask },
	{ "say", proto_ctx_say },
	{ "set_pressure", proto_ctx_set_pressure },
	{ "step_pressure", proto_ctx_step_pressure },
	{ "postpone", proto_ctx_postpone },
	{ "pause", proto_ctx_pause },
	{ "escalate", proto_ctx_escalate },
	{ "finish", proto_ctx_finish },
	{ NULL, NULL }
};

/* ---- building ctx and ev ------------------------------------------ */

static void
proto_ctx_setint(lua_State *L, const char *key, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, key);
}

static void
proto_ctx_setstr(lua_State *L, const char *key, const char *v)
{
	if (v == NULL)
		return;
	lua_pushstring(L, v);
	lua_setfield(L, -2, key);
}

/*
 * Gives the table on top ctx's functions, through a metatable made once
 * per protocol and kept in the registry (the closures find the call in
 * progress through p->call): copying nine functions into every ctx was a
 * quarter of building it. The metatable is locked, so no handler can
 * change what the next one finds.
 */
static void
proto_ctx_push_funcs(lua_State *L, struct protocol *p)
{
	if (p->ctx_funcs == 0) {
		lua_createtable(L, 0, 2);
		lua_createtable(L, 0, 10);
		lua_pushlightuserdata(L, p);
		luaL_setfuncs(L, proto_ctx_funcs, 1);
		lua_setfield(L, -2, "__index");
		lua_pushliteral(L, "locked");
		lua_setfield(L, -2, "__metatable");
		p->ctx_funcs = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->ctx_funcs);
	lua_setmetatable(L, -2);
}

static void
proto_ctx_push(lua_State *L, struct proto_call *c)
{
	const struct proto_ctx	*x = c->ctx;
	struct protocol		*p = c->p;

	lua_createtable(L, 0, 16);
	proto_ctx_push_funcs(L, p);
	proto_ctx_setint(L, "now", x->now);
	proto_ctx_setint(L, "day", (x->now - x->enrolled_at) / 86400);
	proto_ctx_setint(L, "enrolled_at", x->enrolled_at);
	if (x->last_session_at > 0) {
		proto_ctx_setint(L, "last_session_at", x->last_session_at);
		proto_ctx_setint(L, "hours_since_session",
		    (x->now - x->last_session_at) / 3600);
	}
	proto_ctx_setint(L, "sessions_done", x->sessions_done);
	proto_ctx_setint(L, "level", x->pressure + 1);
	proto_ctx_setstr(L, "pressure", p->levels[x->pressure]);
	proto_ctx_setint(L, "course_days", p->course_days);
	proto_ctx_setstr(L, "status", x->status);
	proto_ctx_setstr(L, "timezone", x->tz);
	proto_ctx_setstr(L, "language", x->lang);
	/* The state text straight into Lua; what the direct reader does not
	 * take goes through cJSON, kept in `c` to be freed after the call. */
	if (x->state == NULL || luajson_push_text(L, x->state) != 0) {
		c->state = x->state != NULL ? cJSON_Parse(x->state) : NULL;
		luajson_push(L, c->state);
	}
	lua_setfield(L, -2, "state");
}

static void
proto_ctx_push_event(lua_State *L, struct proto_call *c)
{
	const struct proto_ctx	*x = c->ctx;

	lua_createtable(L, 0, 6);
	proto_ctx_setstr(L, "name", proto_event_name(c->ev));
	if (x->session > 0)
		proto_ctx_setint(L, "session", x->session);
	proto_ctx_setstr(L, "questionnaire", x->questionnaire);
	proto_ctx_setstr(L, "text", x->text);
	proto_ctx_setstr(L, "by", x->by);
	if (x->from_version > 0) {
		proto_ctx_setint(L, "from_version", x->from_version);
		proto_ctx_setint(L, "to_version", c->p->version);
	}
	if (x->answers != NULL && luajson_push_text(L, x->answers) == 0)
		lua_setfield(L, -2, "answers");
	else if (x->answers != NULL &&
	    (c->answers = cJSON_Parse(x->answers)) != NULL) {
		luajson_push(L, c->answers);
		lua_setfield(L, -2, "answers");
	}
}

/* Runs inside sandbox_call(): builds the arguments, calls the handler, and
 * saves ctx.state. Errors propagate to the sandbox's protected call. */
static int
proto_ctx_run(lua_State *L)
{
	struct proto_call	*c = lua_touserdata(L, 1);
	char			*cause = NULL;

	lua_rawgeti(L, LUA_REGISTRYINDEX, c->p->ref);
	lua_pushstring(L, "on");
	lua_rawget(L, -2);
	lua_pushstring(L, proto_event_name(c->ev));
	lua_rawget(L, -2);
	proto_ctx_push(L, c);
	lua_pushvalue(L, -1);		/* keep ctx to read ctx.state after */
	lua_insert(L, -3);
	proto_ctx_push_event(L, c);
	lua_call(L, 2, 0);
	lua_pushstring(L, "state");
	lua_rawget(L, -2);
	if ((c->res->state = luajson_encode(L, -1, &cause)) == NULL) {
		lua_pushfstring(L, "%s: ctx.state: %s", c->p->path, cause);
		free(cause);
		return lua_error(L);
	}
	return 0;
}

int
proto_call(struct protocol *p, enum proto_event ev, const struct proto_ctx *ctx,
    struct proto_result *res, char **cause)
{
	struct proto_call	 c = { p, ev, ctx, res, ctx->pressure, NULL, NULL };
	lua_State		*L = sandbox_state(p->sb);
	int			 rc;

	memset(res, 0, sizeof *res);
	if (!p->has[ev]) {
		res->state = ctx->state != NULL ? xstrdup(ctx->state) : NULL;
		return 0;
	}
	p->call = &c;
	lua_pushcfunction(L, proto_ctx_run);
	lua_pushlightuserdata(L, &c);
	rc = sandbox_call(p->sb, 1, 0, cause);
	p->call = NULL;
	cJSON_Delete(c.state);
	cJSON_Delete(c.answers);
	if (rc != 0)
		proto_result_clear(res);
	return rc;
}

const char *
proto_last_limit(struct protocol *p)
{
	return sandbox_last_limit(p->sb);
}

void
proto_result_clear(struct proto_result *res)
{
	int	i;

	for (i = 0; i < res->n; i++) {
		free(res->v[i].name);
		free(res->v[i].reason);
		free(res->v[i].params);
	}
	free(res->v);
	free(res->state);
	memset(res, 0, sizeof *res);
}
