/*
 * luajson.c: Lua values to and from JSON, for protocol state.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "luajson.h"
#include "xmalloc.h"

void
luajson_push(lua_State *L, const cJSON *json)
{
	const cJSON	*item;
	lua_Integer	 i = 1;
	double		 d;

	if (json == NULL) {
		lua_newtable(L);
		return;
	}
	if (cJSON_IsBool(json))
		lua_pushboolean(L, cJSON_IsTrue(json));
	else if (cJSON_IsNumber(json)) {
		/* Whole numbers come back as Lua integers, so 3 stays 3, not 3.0. */
		d = json->valuedouble;
		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			lua_pushinteger(L, (lua_Integer)d);
		else
			lua_pushnumber(L, d);
	} else if (cJSON_IsString(json))
		lua_pushstring(L, json->valuestring);
	else if (cJSON_IsArray(json)) {
		lua_createtable(L, cJSON_GetArraySize(json), 0);
		cJSON_ArrayForEach(item, json) {
			luajson_push(L, item);
			lua_rawseti(L, -2, i++);
		}
	} else if (cJSON_IsObject(json)) {
		lua_createtable(L, 0, cJSON_GetArraySize(json));
		cJSON_ArrayForEach(item, json) {
			luajson_push(L, item);
			lua_setfield(L, -2, item->string);
		}
	} else
		lua_pushnil(L);
}

struct luajson_enc {
	lua_State	*L;
	char		*cause;
	int		 seen;	/* stack index of the table of tables on the path */
};

static cJSON *luajson_value(struct luajson_enc *e, int idx, int depth);

/* A table is an array if its keys are exactly 1..n. */
static int
luajson_is_array(lua_State *L, int idx, lua_Integer *n)
{
	lua_Integer	count = 0;

	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
			lua_pop(L, 1);
			return 0;
		}
		count++;
	}
	*n = count;
	return count == (lua_Integer)lua_rawlen(L, idx);
}

static cJSON *
luajson_array(struct luajson_enc *e, int idx, lua_Integer n, int depth)
{
	cJSON		*arr = cJSON_CreateArray(), *v;
	lua_Integer	 i;

	for (i = 1; i <= n; i++) {
		lua_rawgeti(e->L, idx, i);
		v = luajson_value(e, lua_gettop(e->L), depth + 1);
		lua_pop(e->L, 1);
		if (v == NULL) {
			cJSON_Delete(arr);
			return NULL;
		}
		cJSON_AddItemToArray(arr, v);
	}
	return arr;
}

static cJSON *
luajson_object(struct luajson_enc *e, int idx, int depth)
{
	lua_State	*L = e->L;
	cJSON		*obj = cJSON_CreateObject(), *v;

	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			e->cause = xasprintf("state keys must be strings or "
			    "1..n (found a %s key)", luaL_typename(L, -2));
			lua_pop(L, 2);
			cJSON_Delete(obj);
			return NULL;
		}
		v = luajson_value(e, lua_gettop(L), depth + 1);
		if (v == NULL) {
			lua_pop(L, 2);
			cJSON_Delete(obj);
			return NULL;
		}
		cJSON_AddItemToObject(obj, lua_tostring(L, -2), v);
		lua_pop(L, 1);
	}
	return obj;
}

static cJSON *
luajson_table(struct luajson_enc *e, int idx, int depth)
{
	lua_State	*L = e->L;
	lua_Integer	 n;
	cJSON		*v;

	if (depth > LUAJSON_MAX_DEPTH) {
		e->cause = xasprintf("state is nested deeper than %d levels",
		    LUAJSON_MAX_DEPTH);
		return NULL;
	}
	lua_pushvalue(L, idx);
	if (lua_rawget(L, e->seen) != LUA_TNIL) {
		lua_pop(L, 1);
		e->cause = xstrdup("state contains a cycle");
		return NULL;
	}
	lua_pop(L, 1);
	lua_pushvalue(L, idx);
	lua_pushboolean(L, 1);
	lua_rawset(L, e->seen);
	if (luajson_is_array(L, idx, &n) && n > 0)
		v = luajson_array(e, idx, n, depth);
	else
		v = luajson_object(e, idx, depth);
	lua_pushvalue(L, idx);
	lua_pushnil(L);
	lua_rawset(L, e->seen);
	return v;
}

static cJSON *
luajson_value(struct luajson_enc *e, int idx, int depth)
{
	lua_State	*L = e->L;
	double		 d;

	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		return cJSON_CreateBool(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		d = lua_tonumber(L, idx);
		if (!isfinite(d)) {
			e->cause = xstrdup("state holds a number that is not "
			    "finite");
			return NULL;
		}
		return cJSON_CreateNumber(d);
	case LUA_TSTRING:
		return cJSON_CreateString(lua_tostring(L, idx));
	case LUA_TTABLE:
		return luajson_table(e, idx, depth);
	default:
		e->cause = xasprintf("state cannot hold a %s value",
		    luaL_typename(L, idx));
		return NULL;
	}
}

char *
luajson_encode(lua_State *L, int idx, char **cause)
{
	struct luajson_enc	 e = { L, NULL, 0 };
	cJSON			*json;
	char			*text;

	idx = lua_absindex(L, idx);
	if (!lua_checkstack(L, LUAJSON_MAX_DEPTH * 3 + 8)) {
		*cause = xstrdup("out of Lua stack while saving state");
		return NULL;
	}
	lua_newtable(L);
	e.seen = lua_gettop(L);
	json = luajson_value(&e, idx, 0);
	lua_pop(L, 1);
	if (json == NULL) {
		*cause = e.cause;
		return NULL;
	}
	text = luajson_print(json);
	cJSON_Delete(json);
	if (text == NULL) {
		*cause = xstrdup("cannot encode state");
		return NULL;
	}
	if (strlen(text) > LUAJSON_MAX_BYTES) {
		*cause = xasprintf("state is larger than %d bytes",
		    LUAJSON_MAX_BYTES);
		free(text);
		return NULL;
	}
	return text;
}

/* ---- printing ----------------------------------------------------- */

struct luajson_buf {
	char	*p;
	size_t	 n, cap;
};

static void
luajson_reserve(struct luajson_buf *b, size_t more)
{
	if (b->n + more + 1 <= b->cap)
		return;
	while (b->n + more + 1 > b->cap)
		b->cap = b->cap ? b->cap * 2 : 256;
	b->p = xrealloc(b->p, b->cap);
}

static void
luajson_put(struct luajson_buf *b, const char *s, size_t len)
{
	luajson_reserve(b, len);
	memcpy(b->p + b->n, s, len);
	b->n += len;
}

/* As cJSON: ", \\ and the control characters escaped, the rest as is. */
static void
luajson_put_string(struct luajson_buf *b, const char *s)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p;
	char			 esc[6];

	luajson_put(b, "\"", 1);
	for (p = (const unsigned char *)(s != NULL ? s : ""); *p != '\0'; p++) {
		if (*p >= 32 && *p != '"' && *p != '\\') {
			luajson_reserve(b, 1);
			b->p[b->n++] = (char)*p;
			continue;
		}
		esc[0] = '\\';
		switch (*p) {
		case '"': case '\\':
			esc[1] = (char)*p;
			break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			luajson_put(b, esc, 6);
			continue;
		}
		luajson_put(b, esc, 2);
	}
	luajson_put(b, "\"", 1);
}

/* Whole numbers below 1e15 print the same under cJSON's "%1.15g" as plain
 * digits; anything else takes cJSON's own route. */
static void
luajson_put_number(struct luajson_buf *b, double d)
{
	char		 buf[32], *q = buf + sizeof buf;
	long long	 v;
	double		 test;
	int		 len;

	if (isnan(d) || isinf(d)) {
		luajson_put(b, "null", 4);
		return;
	}
	if (d == floor(d) && fabs(d) < 1e15 && !(d == 0 && signbit(d))) {
		v = (long long)d;
		do {
			*--q = (char)('0' + (v < 0 ? -(v % 10) : v % 10));
			v /= 10;
		} while (v != 0);
		if (d < 0)
			*--q = '-';
		luajson_put(b, q, (size_t)(buf + sizeof buf - q));
		return;
	}
	len = snprintf(buf, sizeof buf, "%1.15g", d);
	/* cJSON's compare_double(): equal within a relative epsilon. */
	if (sscanf(buf, "%lg", &test) != 1 || fabs(test - d) >
	    (fabs(test) > fabs(d) ? fabs(test) : fabs(d)) * DBL_EPSILON)
		len = snprintf(buf, sizeof buf, "%1.17g", d);
	luajson_put(b, buf, (size_t)len);
}

static void
luajson_put_value(struct luajson_buf *b, const cJSON *j)
{
	const cJSON	*item;
	int		 first = 1;

	if (cJSON_IsRaw(j)) {
		if (j->valuestring != NULL)
			luajson_put(b, j->valuestring, strlen(j->valuestring));
	} else if (cJSON_IsNull(j))
		luajson_put(b, "null", 4);
	else if (cJSON_IsFalse(j))
		luajson_put(b, "false", 5);
	else if (cJSON_IsTrue(j))
		luajson_put(b, "true", 4);
	else if (cJSON_IsNumber(j))
		luajson_put_number(b, j->valuedouble);
	else if (cJSON_IsString(j))
		luajson_put_string(b, j->valuestring);
	else if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
		luajson_put(b, cJSON_IsArray(j) ? "[" : "{", 1);
		cJSON_ArrayForEach(item, j) {
			if (!first)
				luajson_put(b, ",", 1);
			first = 0;
			if (cJSON_IsObject(j)) {
				luajson_put_string(b, item->string);
				luajson_put(b, ":", 1);
			}
			luajson_put_value(b, item);
		}
		luajson_put(b, cJSON_IsArray(j) ? "]" : "}", 1);
	}
}

char *
luajson_print(const cJSON *json)
{
	struct luajson_buf	b = { NULL, 0, 0 };

	if (json == NULL)
		return NULL;
	luajson_put_value(&b, json);
	luajson_reserve(&b, 0);
	b.p[b.n] = '\0';
	return b.p;
}
