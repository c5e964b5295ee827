/*
 * test_luajson.c: protocol state between Lua tables and JSON.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lualib.h>

#include "luajson.h"
#include "test.h"

static lua_State	*L;

/* Evaluates `expr` and encodes it; returns the JSON or NULL with *cause. */
static char *
encode(const char *expr, char **cause)
{
	char	 chunk[512];
	char	*out;

	*cause = NULL;
	snprintf(chunk, sizeof chunk, "return %s", expr);
	if (luaL_dostring(L, chunk) != LUA_OK) {
		fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
		lua_pop(L, 1);
		return NULL;
	}
	out = luajson_encode(L, -1, cause);
	lua_pop(L, 1);
	return out;
}

static void
enc_ok_(int line, const char *expr, const char *want)
{
	char	*cause, *got = encode(expr, &cause);

	if (got == NULL || strcmp(got, want) != 0) {
		fprintf(stderr, "%s:%d: %s -> %s (%s), expected %s\n", __FILE__,
		    line, expr, got ? got : "NULL", cause ? cause : "", want);
		test_failed_checks++;
	}
	free(got);
	free(cause);
}

static void
enc_bad_(int line, const char *expr, const char *want)
{
	char	*cause, *got = encode(expr, &cause);

	if (got != NULL || cause == NULL || strstr(cause, want) == NULL) {
		fprintf(stderr, "%s:%d: %s -> %s (%s), expected error with %s\n",
		    __FILE__, line, expr, got ? got : "NULL",
		    cause ? cause : "", want);
		test_failed_checks++;
	}
	free(got);
	free(cause);
}

#define ENC_OK(e, w)	enc_ok_(__LINE__, e, w)
#define ENC_BAD(e, w)	enc_bad_(__LINE__, e, w)

static void
test_encode(void)
{
	int	top = lua_gettop(L);

	ENC_OK("{}", "{}");
	ENC_OK("{ a = 1 }", "{\"a\":1}");
	ENC_OK("{ 1, 2, 3 }", "[1,2,3]");
	ENC_OK("{ s = \"x\\\"y\" }", "{\"s\":\"x\\\"y\"}");
	/* Escapes between runs of plain text; UTF-8 as it is. */
	ENC_OK("{ s = \"a\\n\\1b\\\"c\\\\d\\xc3\\xa9e\\t\" }",
	    "{\"s\":\"a\\n\\u0001b\\\"c\\\\d\xc3\xa9" "e\\t\"}");
	ENC_OK("{ s = \"\\\"\\\"\" }", "{\"s\":\"\\\"\\\"\"}");
	ENC_OK("{ t = true }", "{\"t\":true}");
	ENC_OK("{ f = false }", "{\"f\":false}");
	ENC_OK("{ n = 2.5 }", "{\"n\":2.5}");
	ENC_OK("{ list = { { a = 1 }, { b = { 1 } } } }",
	    "{\"list\":[{\"a\":1},{\"b\":[1]}]}");
	ENC_OK("\"top\"", "\"top\"");
	/* The same table twice is not a cycle. */
	ENC_OK("(function() local t = { 1 } return { a = { t, t } } end)()",
	    "{\"a\":[[1],[1]]}");
	CHECK_INT(lua_gettop(L), top);
}

/* Keys print sorted (bytewise, a prefix first), at every level, however
 * the table was built: the same state is the same text. */
static void
test_encode_sorted(void)
{
	const char	*want = "{\"\":0,\"a\":{\"x\":1,\"y\":2},\"ab\":3,"
			    "\"b\":[{\"p\":1,\"q\":2}],\"z\":true}";
	char		 many[4096];
	size_t		 n = 0;
	int		 top = lua_gettop(L), k;

	ENC_OK("{ z = true, b = { { q = 2, p = 1 } }, ab = 3, a = { y = 2, "
	    "x = 1 }, [\"\"] = 0 }", want);
	ENC_OK("(function() local t = {} for i = 1, 40 do t['k' .. i] = i end "
	    "for i = 1, 40 do t['k' .. i] = nil end t.ab = 3 t.z = true "
	    "t.a = { x = 1, y = 2 } t[''] = 0 t.b = { { p = 1, q = 2 } } "
	    "return t end)()", want);
	for (k = 1; k <= 200; k++)
		n += (size_t)snprintf(many + n, sizeof many - n, "%c\"%03d\":%d",
		    k == 1 ? '{' : ',', k, 201 - k);
	snprintf(many + n, sizeof many - n, "}");
	ENC_OK("(function() local t = {} for i = 1, 200 do "
	    "t[string.format('%03d', 201 - i)] = i end return t end)()",
	    many);
	CHECK_INT(lua_gettop(L), top);
}

static void
test_encode_refused(void)
{
	int	top = lua_gettop(L);

	ENC_BAD("{ f = function() end }", "cannot hold a function");
	ENC_BAD("{ [true] = 1 }", "keys must be strings");
	ENC_BAD("{ 1, 2, x = 3 }", "keys must be strings");
	ENC_BAD("{ [1] = 1, [3] = 3 }", "keys must be strings");
	ENC_BAD("{ n = 0/0 }", "not finite");
	ENC_BAD("{ n = math.huge }", "not finite");
	ENC_BAD("(function() local t = {} t.self = t return t end)()",
	    "cycle");
	ENC_BAD("{{{{{{{{{{{{{{{{{{{{}}}}}}}}}}}}}}}}}}}}", "deeper than 16");
	ENC_BAD("{ s = string.rep(\"x\", 70000) }", "larger than 65536");
	/* Too many entries is too large, long before the Lua stack ends. */
	ENC_BAD("(function() local t = {} for i = 1, 600000 do t[i] = 0 end "
	    "return t end)()", "larger than 65536");
	ENC_BAD("(function() local t = {} for i = 1, 40000 do t['k' .. i] = "
	    "true end return t end)()", "larger than 65536");
	ENC_BAD("{ c = coroutine.create(print) }", "cannot hold a thread");
	CHECK_INT(lua_gettop(L), top);
}

static void
test_push_roundtrip(void)
{
	const char	*src = "{\"a\":3,\"b\":2.5,\"c\":[1,\"x\",true],"
	    "\"d\":{\"e\":null,\"f\":false},\"g\":{}}";
	cJSON		*j = cJSON_Parse(src);
	char		*cause = NULL, *out;

	luajson_push(L, j);
	cJSON_Delete(j);
	/* 3 stays an integer, 2.5 a float. */
	lua_getfield(L, -1, "a");
	CHECK(lua_isinteger(L, -1));
	CHECK_INT(lua_tointeger(L, -1), 3);
	lua_pop(L, 1);
	lua_getfield(L, -1, "b");
	CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) == 2.5);
	lua_pop(L, 1);
	lua_getfield(L, -1, "c");
	CHECK_INT(lua_rawlen(L, -1), 3);
	lua_rawgeti(L, -1, 2);
	CHECK_STR(lua_tostring(L, -1), "x");
	lua_pop(L, 2);
	/* null becomes nil: the key is gone. */
	lua_getfield(L, -1, "d");
	lua_getfield(L, -1, "e");
	CHECK(lua_isnil(L, -1));
	lua_pop(L, 2);

	out = luajson_encode(L, -1, &cause);
	j = cJSON_Parse(out);
	CHECK(j != NULL);
	CHECK_INT(cJSON_GetObjectItem(j, "a")->valuedouble, 3);
	CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "c")));
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "d"),
	    "f")));
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "d"), "e") == NULL);
	/* An empty table comes back as an object. */
	CHECK(cJSON_IsObject(cJSON_GetObjectItem(j, "g")));
	cJSON_Delete(j);
	free(out);
	lua_pop(L, 1);

	/* NULL is an empty table. */
	luajson_push(L, NULL);
	CHECK(lua_istable(L, -1));
	lua_pushnil(L);
	CHECK_INT(lua_next(L, -2), 0);
	lua_pop(L, 1);
}

/* luajson_push_text(text) must give what luajson_push(cJSON_Parse(text))
 * gives: compared by encoding both and comparing the JSON as values. */
static void
same_as_cjson_(int line, const char *text)
{
	cJSON	*j = cJSON_Parse(text), *a = NULL, *b = NULL;
	char	*cause = NULL, *ta = NULL, *tb = NULL;
	int	 top = lua_gettop(L);

	if (luajson_push_text(L, text) != 0) {
		fprintf(stderr, "%s:%d: %s refused\n", __FILE__, line, text);
		test_failed_checks++;
		cJSON_Delete(j);
		return;
	}
	luajson_push(L, j);
	ta = luajson_encode(L, top + 1, &cause);
	free(cause);
	cause = NULL;
	tb = luajson_encode(L, top + 2, &cause);
	free(cause);
	if (ta != NULL)
		a = cJSON_Parse(ta);
	if (tb != NULL)
		b = cJSON_Parse(tb);
	if (a == NULL || b == NULL || !cJSON_Compare(a, b, 1)) {
		fprintf(stderr, "%s:%d: %s read as %s, cJSON gives %s\n",
		    __FILE__, line, text, ta ? ta : "?", tb ? tb : "?");
		test_failed_checks++;
	}
	if (lua_type(L, top + 1) != lua_type(L, top + 2) ||
	    lua_isinteger(L, top + 1) != lua_isinteger(L, top + 2)) {
		fprintf(stderr, "%s:%d: %s: types differ\n", __FILE__, line,
		    text);
		test_failed_checks++;
	}
	lua_settop(L, top);
	cJSON_Delete(j);
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(ta);
	free(tb);
}
#define same_as_cjson(t) same_as_cjson_(__LINE__, t)

static void
refused_(int line, const char *text)
{
	int	top = lua_gettop(L);

	if (luajson_push_text(L, text) == 0 || lua_gettop(L) != top) {
		fprintf(stderr, "%s:%d: %s taken\n", __FILE__, line, text);
		test_failed_checks++;
		lua_settop(L, top);
	}
}
#define refused(t) refused_(__LINE__, t)

static void
test_push_text(void)
{
	same_as_cjson("{\"a\":3,\"b\":2.5,\"c\":[1,\"x\",true],"
	    "\"d\":{\"e\":null,\"f\":false},\"g\":{}}");
	same_as_cjson(" { \"s\" : \"a\\\"b\\\\c\\/d\\n\\t\\u0041\" ,"
	    "\"n\":-1.5e3,\"i\":12345678901,\"z\":0,\"big\":1e300,"
	    "\"arr\":[1,[2,[3]]],\"nul\":null,\"e\":[],\"k\":1,\"k\":2} ");
	same_as_cjson("[1,2.25,\"three\",[],{}]");
	/* Whole numbers either side of the direct reader's 15 digits. */
	same_as_cjson("[123456789012345,-123456789012345,1234567890123456,"
	    "-0,-15,3.0,2e2,9007199254740993,0.5]");
	{
		static const struct {
			const char	*text;
			lua_Integer	 v;
		} whole[] = {
			{ "123456789012345", 123456789012345 },
			{ "-123456789012345", -123456789012345 },
			{ "1234567890123456", 1234567890123456 },
			{ "-0", 0 }, { "7", 7 }, { "2e2", 200 },
		};
		size_t	i;

		for (i = 0; i < sizeof whole / sizeof whole[0]; i++) {
			CHECK_INT(luajson_push_text(L, whole[i].text), 0);
			CHECK(lua_isinteger(L, -1));
			CHECK(lua_tointeger(L, -1) == whole[i].v);
			lua_pop(L, 1);
		}
	}
	refused("[1-2]");
	refused("[12x]");
	same_as_cjson("{\"pain\":2,\"redness\":false,\"note\":\"ok\"}");
	same_as_cjson("\"just a string\"");
	same_as_cjson("-7");
	same_as_cjson("true");
	/* What it leaves to cJSON. */
	refused("");
	refused("{\"a\":1,}");
	refused("{\"a\":1} trailing");
	refused("{\"a\":\"\\u00e9\"}");
	refused("{\"a\":\"\\u0000\"}");
	refused("{\"a\":.5}");
	refused("{\"a\":\"open");
	refused("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	    "[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
	    "]]]]]]]]]]]");
}

int
main(void)
{
	L = luaL_newstate();
	luaL_openlibs(L);
	TEST(test_encode);
	TEST(test_encode_sorted);
	TEST(test_encode_refused);
	TEST(test_push_roundtrip);
	TEST(test_push_text);
	lua_close(L);
	return TEST_END();
}
