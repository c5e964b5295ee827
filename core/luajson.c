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

/* ---- JSON text straight into Lua ---------------------------------- */

struct luajson_rd {
	lua_State	*L;
	const char	*p;
	int		 depth;
};

static int luajson_rd_value(struct luajson_rd *r);

static void
luajson_rd_ws(struct luajson_rd *r)
{
	while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' ||
	    *r->p == '\r')
		r->p++;
}

/* A string at r->p (after its quote), pushed. Escapes of ASCII only. */
static int
luajson_rd_string(struct luajson_rd *r)
{
	const char	*s = r->p, *q;
	luaL_Buffer	 b;
	unsigned	 u;
	int		 i;
	char		 c;

	for (q = s; *q != '"' && *q != '\\'; q++)
		if (*q == '\0')
			return -1;
	if (*q == '"') {
		lua_pushlstring(r->L, s, (size_t)(q - s));
		r->p = q + 1;
		return 0;
	}
	luaL_buffinit(r->L, &b);
	for (q = s; *q != '"'; q++) {
		if (*q == '\0')
			return -1;
		if (*q != '\\') {
			luaL_addchar(&b, *q);
			continue;
		}
		switch (*++q) {
		case '"': case '\\': case '/': c = *q; break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u':
			for (u = 0, i = 1; i <= 4; i++) {
				c = q[i];
				if (c >= '0' && c <= '9')
					u = u * 16 + (unsigned)(c - '0');
				else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
					u = u * 16 + (unsigned)((c | 0x20) - 'a' + 10);
				else
					return -1;
			}
			/* cJSON ends its C string at a NUL: not here. */
			if (u == 0 || u >= 0x80)
				return -1;
			c = (char)u;
			q += 4;
			break;
		default:
			return -1;
		}
		luaL_addchar(&b, c);
	}
	luaL_pushresult(&b);
	r->p = q + 1;
	return 0;
}

/* A number, as cJSON reads it (strtod), whole ones as Lua integers. Plain
 * integers of up to 15 digits, most of any state, are read directly: they
 * are exact as doubles, so strtod would give the same. */
static int
luajson_rd_number(struct luajson_rd *r)
{
	char		 buf[64], *end;
	size_t		 n = 0;
	double		 d;
	lua_Integer	 v = 0;
	int		 neg = *r->p == '-';

	for (n = neg; n < 16 && r->p[n] >= '0' && r->p[n] <= '9'; n++)
		v = v * 10 + (r->p[n] - '0');
	if (n > (size_t)neg && n - neg <= 15 && r->p[n] != '.' &&
	    r->p[n] != 'e' && r->p[n] != 'E' && !(r->p[n] >= '0' &&
	    r->p[n] <= '9') && r->p[n] != '-' && r->p[n] != '+') {
		r->p += n;
		lua_pushinteger(r->L, neg ? -v : v);
		return 0;
	}
	n = 0;
	while ((r->p[n] >= '0' && r->p[n] <= '9') || r->p[n] == '-' ||
	    r->p[n] == '+' || r->p[n] == '.' || r->p[n] == 'e' ||
	    r->p[n] == 'E') {
		if (++n >= sizeof buf)
			return -1;
	}
	memcpy(buf, r->p, n);
	buf[n] = '\0';
	d = strtod(buf, &end);
	if (n == 0 || end != buf + n)
		return -1;
	r->p += n;
	if (d == floor(d) && fabs(d) < 9007199254740992.0)
		lua_pushinteger(r->L, (lua_Integer)d);
	else
		lua_pushnumber(r->L, d);
	return 0;
}

static int
luajson_rd_word(struct luajson_rd *r, const char *w)
{
	size_t	n = strlen(w);

	if (strncmp(r->p, w, n) != 0)
		return -1;
	r->p += n;
	return 0;
}

/* How many members the container at p (after its bracket) has, counting
 * commas outside strings and nested containers: the table is made at its
 * size, not grown (and rehashed) one key at a time. 0 for text that ends
 * early: the reader then finds what is wrong. */
static int
luajson_rd_count(const char *p)
{
	int	depth = 0, n = 0, any = 0;

	for (; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			for (p++; *p != '"'; p++) {
				if (*p == '\0')
					return 0;
				if (*p == '\\' && *++p == '\0')
					return 0;
			}
			any = 1;
			break;
		case '{': case '[':
			depth++;
			any = 1;
			break;
		case '}': case ']':
			if (depth-- == 0)
				return any ? n + 1 : 0;
			break;
		case ',':
			if (depth == 0)
				n++;
			break;
		case ' ': case '\t': case '\n': case '\r':
			break;
		default:
			any = 1;
		}
	}
	return 0;
}

static int
luajson_rd_container(struct luajson_rd *r, int array)
{
	lua_State	*L = r->L;
	lua_Integer	 i = 1;

	/* Deeper than any state luajson_encode() makes: cJSON's turn. */
	if (++r->depth > LUAJSON_MAX_DEPTH * 4)
		return -1;
	luaL_checkstack(L, 4, "JSON nesting");
	if (array)
		lua_createtable(L, luajson_rd_count(r->p), 0);
	else
		lua_createtable(L, 0, luajson_rd_count(r->p));
	luajson_rd_ws(r);
	if (*r->p == (array ? ']' : '}')) {
		r->p++;
		r->depth--;
		return 0;
	}
	for (;;) {
		luajson_rd_ws(r);
		if (!array) {
			if (*r->p++ != '"' || luajson_rd_string(r) != 0)
				return -1;
			luajson_rd_ws(r);
			if (*r->p++ != ':')
				return -1;
		}
		if (luajson_rd_value(r) != 0)
			return -1;
		/* As luajson_push: the last of a repeated key wins, and a
		 * null leaves the key (or the array slot) out. */
		if (array)
			lua_rawseti(L, -2, i++);
		else
			lua_rawset(L, -3);
		luajson_rd_ws(r);
		if (*r->p == ',') {
			r->p++;
			continue;
		}
		if (*r->p++ != (array ? ']' : '}'))
			return -1;
		r->depth--;
		return 0;
	}
}

static int
luajson_rd_value(struct luajson_rd *r)
{
	luajson_rd_ws(r);
	switch (*r->p) {
	case '{':
		r->p++;
		return luajson_rd_container(r, 0);
	case '[':
		r->p++;
		return luajson_rd_container(r, 1);
	case '"':
		r->p++;
		return luajson_rd_string(r);
	case 't':
		if (luajson_rd_word(r, "true") != 0)
			return -1;
		lua_pushboolean(r->L, 1);
		return 0;
	case 'f':
		if (luajson_rd_word(r, "false") != 0)
			return -1;
		lua_pushboolean(r->L, 0);
		return 0;
	case 'n':
		if (luajson_rd_word(r, "null") != 0)
			return -1;
		lua_pushnil(r->L);
		return 0;
	default:
		/* Where cJSON reads a number. */
		if (*r->p != '-' && (*r->p < '0' || *r->p > '9'))
			return -1;
		return luajson_rd_number(r);
	}
}

int
luajson_push_text(lua_State *L, const char *text)
{
	struct luajson_rd	 r = { L, text, 0 };
	int			 top = lua_gettop(L);

	luaL_checkstack(L, 8, NULL);
	if (luajson_rd_value(&r) != 0) {
		lua_settop(L, top);
		return -1;
	}
	luajson_rd_ws(&r);
	if (*r.p != '\0') {
		lua_settop(L, top);
		return -1;
	}
	return 0;
}

/* ---- Lua values to JSON ------------------------------------------- */

struct luajson_buf {
	char	*p;
	size_t	 n, cap;
};

static void	luajson_reserve(struct luajson_buf *, size_t);
static void	luajson_put(struct luajson_buf *, const char *, size_t);
static void	luajson_put_string(struct luajson_buf *, const char *);
static void	luajson_put_number(struct luajson_buf *, double);

/*
 * Lua values are printed straight into text, as building a cJSON tree and
 * printing it would (luajson_print), numbers and strings by the same
 * functions. An object's keys are printed sorted: lua_next's order depends
 * on how the table grew and on Lua's hash seed, which differs from process
 * to process, and the engine writes a state back only when its text
 * changed. Every handler call saves its state this way.
 */
struct luajson_enc {
	lua_State		*L;
	char			*cause;
	const void		*path[LUAJSON_MAX_DEPTH + 1];	/* tables */
	struct luajson_buf	*b;
};

struct luajson_key {
	const char	*s;
	size_t		 len;
	int		 value;		/* stack index */
};

static int luajson_value(struct luajson_enc *e, int idx, int depth);

static int
luajson_key_cmp(const void *a, const void *b)
{
	const struct luajson_key	*x = a, *y = b;
	size_t				 n = x->len < y->len ? x->len : y->len;
	int				 c = memcmp(x->s, y->s, n);

	if (c != 0)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

/*
 * Leaves the table's keys and values on the stack as pairs from `base` up,
 * in one pass: *n gets how many, *nstr how many keys are strings and
 * *nint how many are integers from 1. *other is the type of another key.
 */
static int
luajson_pairs(struct luajson_enc *e, int idx, size_t *n, size_t *nstr,
    size_t *nint, const char **other)
{
	lua_State	*L = e->L;

	*n = *nstr = *nint = 0;
	*other = NULL;
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		if (lua_type(L, -2) == LUA_TSTRING)
			(*nstr)++;
		else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1)
			(*nint)++;
		else if (*other == NULL)
			*other = luaL_typename(L, -2);
		/* key value -> key value key: the copy and the value stay,
		 * the key goes on to lua_next. */
		if (!lua_checkstack(L, 3)) {
			e->cause = xstrdup("out of Lua stack while saving "
			    "state");
			return -1;
		}
		lua_pushvalue(L, -2);
		lua_rotate(L, -3, 1);
		lua_rotate(L, -2, 1);
		/* Every entry prints at least two bytes: past this many, the
		 * text would be too large anyway (and the stack need not
		 * grow to hold them). */
		if (++*n > LUAJSON_MAX_BYTES / 2) {
			e->cause = xasprintf("state is larger than %d bytes",
			    LUAJSON_MAX_BYTES);
			return -1;
		}
	}
	return 0;
}

/* A table whose keys are exactly 1..n, in order. */
static int
luajson_array(struct luajson_enc *e, int idx, size_t n, int depth)
{
	size_t	i;
	int	rc;

	luajson_put(e->b, "[", 1);
	for (i = 1; i <= n; i++) {
		if (i > 1)
			luajson_put(e->b, ",", 1);
		lua_rawgeti(e->L, idx, (lua_Integer)i);
		rc = luajson_value(e, lua_gettop(e->L), depth + 1);
		lua_pop(e->L, 1);
		if (rc != 0)
			return -1;
	}
	luajson_put(e->b, "]", 1);
	return 0;
}

/* A table of string keys, its pairs on the stack from `base`, printed in
 * key order. The keys are sorted in C memory: nothing in encoding may
 * raise a Lua error (a memory error would leak the text so far). */
static int
luajson_object(struct luajson_enc *e, int base, size_t n, int depth)
{
	lua_State		*L = e->L;
	struct luajson_key	 few[16], *k = few;
	size_t			 i;
	int			 rc = 0;

	if (n > sizeof few / sizeof few[0])
		k = xcalloc(n, sizeof *k);
	for (i = 0; i < n; i++) {
		k[i].s = lua_tolstring(L, base + 2 * (int)i, &k[i].len);
		k[i].value = base + 2 * (int)i + 1;
	}
	qsort(k, n, sizeof *k, luajson_key_cmp);
	luajson_put(e->b, "{", 1);
	for (i = 0; i < n && rc == 0; i++) {
		if (i > 0)
			luajson_put(e->b, ",", 1);
		luajson_put_string(e->b, k[i].s);
		luajson_put(e->b, ":", 1);
		rc = luajson_value(e, k[i].value, depth + 1);
	}
	luajson_put(e->b, "}", 1);
	if (k != few)
		free(k);
	return rc;
}

/* The tables on the path to this one (not those seen elsewhere: the same
 * table twice is no cycle) are in e->path. */
static int
luajson_table(struct luajson_enc *e, int idx, int depth)
{
	lua_State	*L = e->L;
	const char	*other;
	size_t		 n, nstr, nint;
	int		 base = lua_gettop(L) + 1, i, rc;

	if (depth > LUAJSON_MAX_DEPTH) {
		e->cause = xasprintf("state is nested deeper than %d levels",
		    LUAJSON_MAX_DEPTH);
		return -1;
	}
	e->path[depth] = lua_topointer(L, idx);
	for (i = 0; i < depth; i++)
		if (e->path[i] == e->path[depth]) {
			e->cause = xstrdup("state contains a cycle");
			return -1;
		}
	if ((rc = luajson_pairs(e, idx, &n, &nstr, &nint, &other)) == 0) {
		if (n > 0 && nint == n && n == lua_rawlen(L, idx))
			rc = luajson_array(e, idx, n, depth);
		else if (nstr == n)
			rc = luajson_object(e, base, n, depth);
		else {
			e->cause = xasprintf("state keys must be strings or "
			    "1..n (found a %s key)", other != NULL ? other :
			    "number");
			rc = -1;
		}
	}
	lua_settop(L, base - 1);
	return rc;
}

static int
luajson_value(struct luajson_enc *e, int idx, int depth)
{
	lua_State	*L = e->L;
	double		 d;

	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			luajson_put(e->b, "true", 4);
		else
			luajson_put(e->b, "false", 5);
		return 0;
	case LUA_TNUMBER:
		d = lua_tonumber(L, idx);
		if (!isfinite(d)) {
			e->cause = xstrdup("state holds a number that is not "
			    "finite");
			return -1;
		}
		luajson_put_number(e->b, d);
		return 0;
	case LUA_TSTRING:
		luajson_put_string(e->b, lua_tostring(L, idx));
		return 0;
	case LUA_TTABLE:
		return luajson_table(e, idx, depth);
	default:
		e->cause = xasprintf("state cannot hold a %s value",
		    luaL_typename(L, idx));
		return -1;
	}
}

char *
luajson_encode(lua_State *L, int idx, char **cause)
{
	struct luajson_buf	 b = { NULL, 0, 0 };
	struct luajson_enc	 e = { L, NULL, { NULL }, &b };
	int			 rc;

	idx = lua_absindex(L, idx);
	if (!lua_checkstack(L, LUAJSON_MAX_DEPTH * 3 + 8)) {
		*cause = xstrdup("out of Lua stack while saving state");
		return NULL;
	}
	rc = luajson_value(&e, idx, 0);
	if (rc != 0) {
		free(b.p);
		*cause = e.cause;
		return NULL;
	}
	luajson_reserve(&b, 0);
	b.p[b.n] = '\0';
	if (b.n > LUAJSON_MAX_BYTES) {
		*cause = xasprintf("state is larger than %d bytes",
		    LUAJSON_MAX_BYTES);
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- printing ----------------------------------------------------- */

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
	const unsigned char	*p, *q;
	char			 esc[6];

	luajson_put(b, "\"", 1);
	for (p = (const unsigned char *)(s != NULL ? s : ""); *p != '\0'; p++) {
		/* A run of characters that print as they are, in one go. */
		for (q = p; *q >= 32 && *q != '"' && *q != '\\'; q++)
			;
		if (q > p) {
			luajson_put(b, (const char *)p, (size_t)(q - p));
			if (*q == '\0')
				break;
			p = q;
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
