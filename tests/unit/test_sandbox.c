/*
 * test_sandbox.c: the sandbox stops hostile protocol code with a clear
 * error and stays usable afterwards.
 *
 * Every hostile case goes through fails_as() or fails_with(), which check
 * the cause text, that the stack is back where it was, and that the same
 * sandbox then still runs a normal function correctly.
 */
#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "sandbox.h"
#include "test.h"

#define MEMORY		(16 * 1024 * 1024)
#define BUDGET		5000000
#define BUDGET_MSG	"instruction budget exceeded (5000000 instructions)"
#define MEMORY_MSG	"t.lua: memory limit exceeded (16777216 bytes)"

static struct sandbox *
new_sandbox(size_t memory, int64_t instructions)
{
	struct sandbox	*sb;
	char		*cause = NULL;

	sb = sandbox_new(memory, instructions, &cause);
	if (sb == NULL) {
		fprintf(stderr, "sandbox_new: %s\n", cause);
		free(cause);
		abort();
	}
	return sb;
}

/* Loads `src` as "@t.lua" and calls it; 0 with nresults pushed, or -1 with
 * *cause set. */
static int
run(struct sandbox *sb, const char *src, int nresults, char **cause)
{
	*cause = NULL;
	if (sandbox_load(sb, "@t.lua", src, strlen(src), cause) == -1)
		return -1;
	return sandbox_call(sb, 0, nresults, cause);
}

/* Runs `src`, which must succeed; returns its one result as an integer. */
static long long
run_int(struct sandbox *sb, const char *src)
{
	lua_State	*L = sandbox_state(sb);
	char		*cause;
	long long	 v;

	if (run(sb, src, 1, &cause) == -1) {
		fprintf(stderr, "  %s\n  failed: %s\n", src, cause);
		free(cause);
		return -999999;
	}
	v = lua_isinteger(L, -1) ? (long long)lua_tointeger(L, -1) : -999998;
	lua_pop(L, 1);
	return v;
}

/* A normal protocol-ish function: tables, string methods, a loop. */
static int
still_works(struct sandbox *sb)
{
	lua_State	*L = sandbox_state(sb);
	char		*cause;
	int		 ok;

	if (run(sb, "local t = {}\n"
	    "for i = 1, 100 do t[i] = (\"x\"):rep(i % 5) end\n"
	    "return #t, table.concat(t):len()\n", 2, &cause) == -1) {
		fprintf(stderr, "  normal function failed: %s\n", cause);
		free(cause);
		return 0;
	}
	ok = lua_tointeger(L, -2) == 100 && lua_tointeger(L, -1) == 200;
	lua_pop(L, 2);
	return ok;
}

/* Runs `src`, which must fail with a cause that equals `want` (exact) or
 * contains it; then checks the stack and that the sandbox still works. */
static int
fails(struct sandbox *sb, const char *src, const char *want, int exact)
{
	lua_State	*L = sandbox_state(sb);
	int		 top = lua_gettop(L), ok;
	char		*cause;

	if (run(sb, src, 0, &cause) == 0) {
		fprintf(stderr, "  %s\n  succeeded, expected \"%s\"\n", src,
		    want);
		return 0;
	}
	ok = exact ? strcmp(cause, want) == 0 : strstr(cause, want) != NULL;
	if (!ok)
		fprintf(stderr, "  %s\n  cause \"%s\"\n  want  \"%s\"\n", src,
		    cause, want);
	free(cause);
	if (lua_gettop(L) != top) {
		fprintf(stderr, "  %s\n  stack %d, expected %d\n", src,
		    lua_gettop(L), top);
		ok = 0;
	}
	return ok && still_works(sb);
}

#define fails_as(sb, src, want)		fails(sb, src, want, 1)
#define fails_with(sb, src, want)	fails(sb, src, want, 0)

static void
test_basic(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);
	lua_State	*L = sandbox_state(sb);
	char		*cause;

	CHECK(sandbox_memory(sb) > 0);
	CHECK_INT(run(sb, "return 1 + 2, 'a' .. 'b'", 2, &cause), 0);
	CHECK_INT(lua_tointeger(L, -2), 3);
	CHECK_STR(lua_tostring(L, -1), "ab");
	lua_pop(L, 2);
	CHECK(still_works(sb));
	CHECK_INT(lua_gettop(L), 0);

	/* Arguments and results pass through sandbox_call(). */
	CHECK_INT(sandbox_load(sb, "@t.lua", "return ... * 2", 14, &cause), 0);
	lua_pushinteger(L, 21);
	CHECK_INT(sandbox_call(sb, 1, 1, &cause), 0);
	CHECK_INT(lua_tointeger(L, -1), 42);
	lua_pop(L, 1);
	sandbox_free(sb);
}

static void
test_bad_limits(void)
{
	struct sandbox	*sb;
	char		*cause = NULL;

	sb = sandbox_new(0, 1000, &cause);
	CHECK(sb == NULL);
	CHECK_STR(cause, "sandbox limits must be positive "
	    "(memory 0, instructions 1000)");
	free(cause);

	cause = NULL;
	sb = sandbox_new(MEMORY, 0, &cause);
	CHECK(sb == NULL);
	CHECK(cause != NULL);
	free(cause);

	cause = NULL;
	sb = sandbox_new(8 * 1024, 1000, &cause);
	CHECK(sb == NULL);
	CHECK(cause != NULL && strncmp(cause, "cannot ", 7) == 0);
	free(cause);
}

static void
test_endless_loop(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	CHECK(fails_as(sb, "while true do end", "t.lua:1: " BUDGET_MSG));
	CHECK(fails_as(sb, "local n = 0\nrepeat n = n + 1 until false\n",
	    "t.lua:2: " BUDGET_MSG));
	/* The hook names the running function's line (level 0), not its
	 * caller's (line 4). */
	CHECK(fails_as(sb, "local function spin()\n"
	    "  while true do end\n"
	    "end\n"
	    "spin()\n", "t.lua:2: " BUDGET_MSG));
	sandbox_free(sb);
}

static void
test_budget_per_call(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, 1000000);
	int		 i;

	/* About 0.6 of the budget each time: the budget is per call. */
	for (i = 0; i < 5; i++)
		CHECK_INT(run_int(sb, "local n = 0\n"
		    "for i = 1, 150000 do n = n + 1 end\n"
		    "return n\n"), 150000);
	CHECK(fails_as(sb, "for i = 1, 1e9 do end",
	    "t.lua:1: instruction budget exceeded (1000000 instructions)"));
	CHECK_INT(run_int(sb, "local n = 0\n"
	    "for i = 1, 150000 do n = n + 1 end\n"
	    "return n\n"), 150000);
	sandbox_free(sb);
}

static void
test_pcall_cannot_swallow_budget(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	CHECK(fails_as(sb,
	    "while true do pcall(function() while true do end end) end",
	    "t.lua:1: " BUDGET_MSG));
	CHECK(fails_as(sb,
	    "while true do\n"
	    "  xpcall(function() while true do end end,\n"
	    "    function() while true do end end)\n"
	    "end\n", "t.lua:2: " BUDGET_MSG));
	/* Swallowed, then returning normally: still a failure. */
	CHECK(fails_as(sb,
	    "pcall(function() while true do end end) return 1",
	    "t.lua:1: " BUDGET_MSG));
	sandbox_free(sb);
}

static void
test_coroutines_share_budget(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	CHECK(fails_as(sb,
	    "coroutine.wrap(function()\n"
	    "  while true do end\n"
	    "end)()\n", "t.lua:2: " BUDGET_MSG));
	sandbox_free(sb);
}

static void
test_coroutine_dodges(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	/* Many short coroutines, none running long enough to fire its own
	 * hook: charged on creation. */
	CHECK(fails_with(sb,
	    "while true do\n"
	    "  local co = coroutine.create(function()\n"
	    "    for i = 1, 10 do end\n"
	    "  end)\n"
	    "  coroutine.resume(co)\n"
	    "end\n", BUDGET_MSG));
	CHECK(fails_with(sb,
	    "while true do coroutine.wrap(function() end)() end",
	    BUDGET_MSG));
	/* An endless loop caught inside the coroutine and outside it. */
	CHECK(fails_with(sb,
	    "while true do\n"
	    "  pcall(coroutine.wrap(function()\n"
	    "    while true do pcall(function() while true do end end) end\n"
	    "  end))\n"
	    "end\n", BUDGET_MSG));
	/* Ping-pong between threads. */
	CHECK(fails_with(sb,
	    "local co = coroutine.wrap(function()\n"
	    "  while true do coroutine.yield() end\n"
	    "end)\n"
	    "while true do co() end\n", BUDGET_MSG));
	/* resume() returns the error as a value: still a failure. */
	CHECK(fails_with(sb,
	    "local co = coroutine.create(function() while true do end end)\n"
	    "local ok = coroutine.resume(co)\n"
	    "return ok\n", BUDGET_MSG));
	sandbox_free(sb);
}

static void
test_deep_recursion(void)
{
	struct sandbox	*sb = new_sandbox(256 * 1024 * 1024, 100000000);

	/* Lua stack. */
	CHECK(fails_as(sb,
	    "local function f(n) return f(n + 1) + 1 end\n"
	    "return f(1)\n", "t.lua:1: stack overflow"));
	/* C stack: metamethods, coroutines, pcall, string.gsub. */
	CHECK(fails_with(sb,
	    "local t = setmetatable({}, {__index = function(t, k)\n"
	    "  return t[k]\n"
	    "end})\n"
	    "return t.x\n", "stack overflow"));
	CHECK(fails_with(sb,
	    "local function f() return coroutine.wrap(f)() end\n"
	    "return f()\n", "stack overflow"));
	CHECK(fails_with(sb,
	    "local function f() return string.gsub('x', 'x', f) end\n"
	    "return f()\n", "stack overflow"));
	CHECK(fails_with(sb,
	    "local function f() local ok, e = pcall(f) error(e, 0) end\n"
	    "return f()\n", "stack overflow"));
	sandbox_free(sb);
}

static void
test_memory_bombs(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	CHECK(fails_as(sb, "return string.rep('x', 1e9)", MEMORY_MSG));
	CHECK(fails_as(sb, "return ('x'):rep(1e9)", MEMORY_MSG));
	CHECK(fails_as(sb,
	    "local s = 'x'\nwhile true do s = s .. s end", MEMORY_MSG));
	CHECK(fails_as(sb,
	    "local t = {}\nfor i = 1, 1e9 do t[i] = i end", MEMORY_MSG));
	CHECK(fails_as(sb,
	    "local t = {}\nfor i = 1, 1e9 do t['k' .. i] = true end",
	    MEMORY_MSG));
	CHECK(fails_as(sb, "return table.concat({('x'):rep(1e6)}, "
	    "('y'):rep(1e6), 1, 1) .. ('z'):rep(2^24)", MEMORY_MSG));
	/* Everything is collectable again afterwards. */
	CHECK(sandbox_memory(sb) < 1024 * 1024);
	sandbox_free(sb);
}

static void
test_memory_swallowed(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	CHECK(fails_as(sb,
	    "local ok, err = pcall(string.rep, 'x', 1e9)\n"
	    "assert(not ok and err == 'not enough memory')\n"
	    "return 'fine'\n", MEMORY_MSG));
	CHECK(fails_as(sb,
	    "local t = {}\n"
	    "pcall(function() while true do t[#t + 1] = {} end end)\n"
	    "t = nil\n"
	    "return 1\n", MEMORY_MSG));
	CHECK(fails_as(sb,
	    "local co = coroutine.create(function()\n"
	    "  return ('x'):rep(1e9)\n"
	    "end)\n"
	    "return coroutine.resume(co)\n", MEMORY_MSG));
	sandbox_free(sb);
}

/* Garbage beyond the cap is not a failure when the emergency collection
 * frees enough: only a refusal Lua cannot recover from counts. */
static void
test_memory_recovered(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);
	lua_State	*L = sandbox_state(sb);

	lua_gc(L, LUA_GCSTOP);
	CHECK_INT(run_int(sb,
	    "local n = 0\n"
	    "for i = 1, 400 do\n"
	    "  local s = ('x'):rep(100000) .. i\n"
	    "  n = n + #s // 100000\n"
	    "end\n"
	    "return n\n"), 400);
	lua_gc(L, LUA_GCRESTART);
	CHECK(still_works(sb));
	sandbox_free(sb);
}

static void
test_c_loops_charged(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	/* These loop in C, where the count hook never fires. */
	CHECK(fails_as(sb, "table.move({}, 1, 1e15, 2)",
	    "t.lua:1: " BUDGET_MSG));
	CHECK(fails_as(sb, "local t = setmetatable({}, "
	    "{__len = function() return 1e15 end})\n"
	    "table.insert(t, 1, 'x')\n", "t.lua:2: " BUDGET_MSG));
	CHECK(fails_as(sb, "local t = setmetatable({}, "
	    "{__len = function() return 1e15 end})\n"
	    "table.remove(t, 1)\n", "t.lua:2: " BUDGET_MSG));
	CHECK_INT(run_int(sb, "return #string.rep('', 1e15)"), 0);
	CHECK_INT(run_int(sb, "return #string.rep('', 1e15, '')"), 0);
	CHECK_INT(run_int(sb, "return #string.rep('ab', 3, ',')"), 8);
	CHECK_INT(run_int(sb, "local t = table.move({1, 2, 3}, 1, 3, 2)\n"
	    "table.insert(t, 1, 0) table.remove(t, 2)\n"
	    "return t[1] * 1000 + t[2] * 100 + t[3] * 10 + t[4]\n"), 123);
	sandbox_free(sb);
}

static void
test_absent_globals(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);
	static const char *absent[] = {
		"io", "os", "debug", "package", "require", "print", "dofile",
		"loadfile", "rawset", "warn", "string.dump", "math.random",
		"math.randomseed", "_G.io", "_ENV.os", NULL
	};
	static const char *present[] = {
		"assert", "error", "ipairs", "next", "pairs", "pcall",
		"select", "tonumber", "tostring", "type", "xpcall", "rawequal",
		"rawlen", "rawget", "getmetatable", "setmetatable", "load",
		"collectgarbage", "string.format", "table.sort", "math.floor",
		"utf8.char", "coroutine.wrap", NULL
	};
	const char	**p;
	char		  src[128];

	for (p = absent; *p != NULL; p++) {
		snprintf(src, sizeof src, "return %s == nil and 1 or 0", *p);
		if (run_int(sb, src) != 1) {
			fprintf(stderr, "  %s is reachable\n", *p);
			CHECK(0);
		}
	}
	for (p = present; *p != NULL; p++) {
		snprintf(src, sizeof src, "return %s ~= nil and 1 or 0", *p);
		if (run_int(sb, src) != 1) {
			fprintf(stderr, "  %s is missing\n", *p);
			CHECK(0);
		}
	}
	CHECK_INT(run_int(sb, "return _VERSION == 'Lua 5.4' and 1"), 1);
	CHECK_INT(run_int(sb, "return _G == _ENV and 1"), 1);
	CHECK(fails_as(sb, "print('x')",
	    "t.lua:1: attempt to call a nil value (global 'print')"));
	CHECK(fails_as(sb, "return math.random(1, 6)",
	    "t.lua:1: attempt to call a nil value (field 'random')"));
	CHECK(fails_as(sb, "return string.dump(function() end)",
	    "t.lua:1: attempt to call a nil value (field 'dump')"));
	sandbox_free(sb);
}

static void
test_load(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);
	lua_State	*L = sandbox_state(sb);
	char		*cause;

	/* Binary refused, by mode and by content. */
	CHECK(fails_as(sb, "return load('return 1', 'x', 'b')",
	    "t.lua:1: load: mode 'b' not allowed, protocols may only load "
	    "text chunks (mode 't')"));
	CHECK(fails_with(sb, "return load('return 1', 'x', 'bt')",
	    "load: mode 'bt' not allowed"));
	CHECK(fails_as(sb,
	    "local f, err = load('\\27Lua\\84\\0')\n"
	    "assert(f == nil)\n"
	    "error(err, 0)\n",
	    "attempt to load a binary chunk (mode is 't')"));
	CHECK(fails_as(sb,
	    "local f, err = load(function() return nil end, '=x', 'b')\n",
	    "t.lua:1: load: mode 'b' not allowed, protocols may only load "
	    "text chunks (mode 't')"));
	/* Text chunks work, get the sandbox's env, and still no io. */
	CHECK_INT(run_int(sb, "return load('return 40 + 2')()"), 42);
	CHECK_INT(run_int(sb, "return load('return io == nil and 1')()"), 1);
	CHECK_INT(run_int(sb, "return load('return x', 'c', 't', "
	    "{x = 7})()"), 7);
	CHECK(fails_as(sb, "assert(load('return 1 +'))",
	    "t.lua:1: [string \"return 1 +\"]:1: unexpected symbol near "
	    "<eof>"));

	/* sandbox_load() itself. */
	cause = NULL;
	CHECK_INT(sandbox_load(sb, "@t.lua", "\33Lua", 4, &cause), -1);
	CHECK_STR(cause, "t.lua: binary chunks are not allowed");
	free(cause);
	CHECK_INT(sandbox_load(sb, "@t.lua", "x = = 1", 7, &cause), -1);
	CHECK_STR(cause, "t.lua:1: unexpected symbol near '='");
	free(cause);
	CHECK_INT(lua_gettop(L), 0);
	CHECK(still_works(sb));
	sandbox_free(sb);
}

static void
test_collectgarbage(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	CHECK_INT(run_int(sb, "local kb = collectgarbage('count')\n"
	    "return math.type(kb) == 'float' and kb > 0 and 1"), 1);
	CHECK(fails_as(sb, "collectgarbage('collect')",
	    "t.lua:1: collectgarbage: only \"count\" is allowed "
	    "(got \"collect\")"));
	CHECK(fails_as(sb, "collectgarbage()",
	    "t.lua:1: collectgarbage: only \"count\" is allowed "
	    "(got \"collect\")"));
	CHECK(fails_as(sb, "collectgarbage('stop')",
	    "t.lua:1: collectgarbage: only \"count\" is allowed "
	    "(got \"stop\")"));
	sandbox_free(sb);
}

static void
test_readonly_libraries(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	CHECK(fails_as(sb, "string.rep = nil",
	    "t.lua:1: attempt to modify read-only table 'string' "
	    "(field 'rep')"));
	CHECK(fails_as(sb, "string.x = 1",
	    "t.lua:1: attempt to modify read-only table 'string' "
	    "(field 'x')"));
	CHECK(fails_as(sb, "table.insert = nil",
	    "t.lua:1: attempt to modify read-only table 'table' "
	    "(field 'insert')"));
	CHECK(fails_as(sb, "math.pi = 3",
	    "t.lua:1: attempt to modify read-only table 'math' "
	    "(field 'pi')"));
	CHECK(fails_as(sb, "coroutine[1] = 3",
	    "t.lua:1: attempt to modify read-only table 'coroutine'"));
	CHECK(fails_with(sb, "table.insert(utf8, 1)",
	    "attempt to modify read-only table 'utf8'"));
	CHECK(fails_as(sb, "setmetatable(string, nil)",
	    "t.lua:1: cannot change a protected metatable"));
	CHECK_INT(run_int(sb, "return getmetatable(math) == 'locked' and 1"),
	    1);
	/* pairs() iterates, without handing out the table behind. */
	CHECK_INT(run_int(sb, "local n, rep, dump = 0\n"
	    "for k, v in pairs(string) do\n"
	    "  n = n + 1\n"
	    "  if k == 'rep' then rep = v end\n"
	    "  if k == 'dump' then dump = v end\n"
	    "end\n"
	    "return n == 16 and rep == string.rep and dump == nil and 1\n"),
	    1);
	CHECK(fails_with(sb, "local f, t = pairs(string)\nt.rep = nil\n",
	    "attempt to modify read-only table 'string' (field 'rep')"));
	CHECK_INT(run_int(sb, "return rawget(string, 'rep') == nil and 1"),
	    1);
	CHECK_INT(run_int(sb, "return ('%d'):format(7):rep(2) == '77' and 1"),
	    1);
	sandbox_free(sb);
}

static void
test_string_metatable(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	CHECK_INT(run_int(sb, "return getmetatable('') == 'locked' and 1"),
	    1);
	CHECK(fails_as(sb, "getmetatable('').__index.rep = nil",
	    "t.lua:1: attempt to index a nil value (field '__index')"));
	CHECK(fails_as(sb, "local mt = getmetatable('')\nmt.__index = {}\n",
	    "t.lua:2: attempt to index a string value (local 'mt')"));
	CHECK(fails_with(sb, "setmetatable('', {})",
	    "bad argument #1 to 'setmetatable' (table expected, got string)"));
	CHECK_INT(run_int(sb, "return ('abc'):upper() == 'ABC' and "
	    "('10' + 1) == 11 and 1"), 1);
	sandbox_free(sb);
}

static void
test_freeze(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);
	lua_State	*L = sandbox_state(sb);
	char		*cause;

	/* Before freezing, the chunk may define globals. */
	CHECK_INT(run(sb, "x = 1\nfunction get() return x end\n", 0,
	    &cause), 0);
	sandbox_freeze_globals(sb);
	CHECK(fails_as(sb, "y = 2",
	    "t.lua:1: attempt to set global 'y' "
	    "(protocols keep state in ctx.state)"));
	CHECK(fails_as(sb, "local a = 1\nx = x + 1\n",
	    "t.lua:2: attempt to set global 'x' "
	    "(protocols keep state in ctx.state)"));
	CHECK(fails_as(sb, "_G.x = 1",
	    "t.lua:1: attempt to set global 'x' "
	    "(protocols keep state in ctx.state)"));
	CHECK(fails_as(sb, "_ENV['z'] = 1",
	    "t.lua:1: attempt to set global 'z' "
	    "(protocols keep state in ctx.state)"));
	CHECK(fails_as(sb, "_G[1] = 1",
	    "t.lua:1: attempt to set a global "
	    "(protocols keep state in ctx.state)"));
	CHECK(fails_with(sb, "load('w = 1')()",
	    "attempt to set global 'w' (protocols keep state in ctx.state)"));
	CHECK(fails_as(sb, "setmetatable(_G, nil)",
	    "t.lua:1: cannot change a protected metatable"));
	CHECK_INT(run_int(sb, "return get() + x"), 2);

	/* The C side sees the same globals. */
	lua_getglobal(L, "get");
	CHECK(lua_isfunction(L, -1));
	lua_pop(L, 1);
	sandbox_push_env(sb);
	lua_getfield(L, -1, "x");
	CHECK_INT(lua_tointeger(L, -1), 1);
	lua_pop(L, 2);
	sandbox_free(sb);
}

static void
test_env_tricks(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	sandbox_freeze_globals(sb);
	/* A local _ENV affects that function only, and reaches nothing. */
	CHECK_INT(run_int(sb, "local function f()\n"
	    "  local _ENV = {}\n"
	    "  x = 5\n"
	    "  return x\n"
	    "end\n"
	    "return f() == 5 and x == nil and 1\n"), 1);
	CHECK_INT(run_int(sb, "local function f()\n"
	    "  local _ENV = setmetatable({}, {__index = _G})\n"
	    "  return io == nil and os == nil and debug == nil and\n"
	    "    require == nil and package == nil and 1\n"
	    "end\n"
	    "return f()\n"), 1);
	CHECK_INT(run_int(sb, "local t = {}\n"
	    "for k in pairs(_G) do t[#t + 1] = k end\n"
	    "return #t\n"), 25);
	CHECK_INT(run_int(sb, "return getmetatable(_G) == 'locked' and "
	    "rawget(_G, 'string') == nil and 1"), 1);
	CHECK_INT(run_int(sb, "local f = load('return _ENV', 'x', 't')\n"
	    "return f() == _G and 1\n"), 1);
	sandbox_free(sb);
}

static void
test_error_objects(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);

	CHECK(fails_as(sb, "error(setmetatable({}, {__tostring = "
	    "function() error('boom') end}))",
	    "t.lua:1: (error object is a table value)"));
	CHECK(fails_as(sb, "local t = setmetatable({}, {__tostring = "
	    "function() while true do end end})\nerror(t)\n",
	    "t.lua:2: (error object is a table value)"));
	CHECK(fails_as(sb, "error({code = 1})",
	    "t.lua:1: (error object is a table value)"));
	CHECK(fails_as(sb, "error()",
	    "t.lua:1: (error object is a nil value)"));
	CHECK(fails_as(sb, "error(42)",
	    "t.lua:1: (error object is a number value)"));
	CHECK(fails_as(sb, "error('plain', 0)", "plain"));
	CHECK(fails_as(sb, "local a = 1\nerror('with place')\n",
	    "t.lua:2: with place"));
	CHECK(fails_as(sb, "local t = nil\nreturn t.x\n",
	    "t.lua:2: attempt to index a nil value (local 't')"));
	CHECK(fails_as(sb, "local s = ('x'):rep(-1, {})",
	    "t.lua:1: bad argument #2 to 'rep' (string expected, got table)"));
	CHECK(fails_as(sb, "coroutine.wrap(function()\n"
	    "  error(setmetatable({}, {__tostring = error}))\n"
	    "end)()\n", "t.lua:1: (error object is a table value)"));
	sandbox_free(sb);
}

static void
test_syntax_nesting(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);
	size_t		 n = 100000, i;
	char		*src = malloc(n + 16), *cause = NULL;

	memcpy(src, "return ", 7);
	for (i = 0; i < n; i++)
		src[7 + i] = '(';
	src[7 + n] = '\0';
	CHECK_INT(sandbox_load(sb, "@t.lua", src, 7 + n, &cause), -1);
	CHECK_STR(cause, "t.lua: C stack overflow");
	free(cause);
	free(src);
	CHECK(still_works(sb));
	sandbox_free(sb);
}

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE	*f = fopen(path, "w");

	if (f == NULL || fwrite(text, 1, len, f) != len)
		abort();
	fclose(f);
}

static void
test_load_file(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);
	char		 dir[] = "/tmp/test_sandbox.XXXXXX", path[128];
	char		 want[256], *cause = NULL, *big;
	size_t		 len = 1024 * 1024 + 1;

	if (mkdtemp(dir) == NULL)
		abort();

	snprintf(path, sizeof path, "%s/missing.lua", dir);
	CHECK_INT(sandbox_load_file(sb, path, &cause), -1);
	snprintf(want, sizeof want, "%s: No such file or directory", path);
	CHECK_STR(cause, want);
	free(cause);

	CHECK_INT(sandbox_load_file(sb, dir, &cause), -1);
	snprintf(want, sizeof want, "%s: not a regular file", dir);
	CHECK_STR(cause, want);
	free(cause);

	snprintf(path, sizeof path, "%s/big.lua", dir);
	big = malloc(len);
	memset(big, '\n', len);
	write_file(path, big, len);
	free(big);
	CHECK_INT(sandbox_load_file(sb, path, &cause), -1);
	snprintf(want, sizeof want, "%s: file too large (limit 1048576 "
	    "bytes)", path);
	CHECK_STR(cause, want);
	free(cause);
	unlink(path);

	snprintf(path, sizeof path, "%s/p.lua", dir);
	write_file(path, "local a = 1\nlocal b = nil + a\n", 30);
	CHECK_INT(sandbox_load_file(sb, path, &cause), 0);
	CHECK_INT(sandbox_call(sb, 0, 0, &cause), -1);
	snprintf(want, sizeof want, "%s:2: attempt to perform arithmetic on "
	    "a nil value", path);
	CHECK_STR(cause, want);
	free(cause);

	write_file(path, "return 'ok' ..\n", 15);
	CHECK_INT(sandbox_load_file(sb, path, &cause), -1);
	snprintf(want, sizeof want, "%s:2: unexpected symbol near <eof>",
	    path);
	CHECK_STR(cause, want);
	free(cause);
	unlink(path);
	rmdir(dir);

	CHECK(still_works(sb));
	sandbox_free(sb);
}

/* Lua runs __gc with hooks off, and code running while a hook error
 * unwinds gets no hook either: none of it may run unbounded. */
static void
test_hookless_code(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);
	char		*cause;

	CHECK(fails_as(sb, "setmetatable({}, {__gc = function() end})",
	    "t.lua:1: setmetatable: __gc is not allowed (finalizers run "
	    "outside the instruction budget)"));
	/* __gc added later registers no finalizer: free() does not hang. */
	CHECK_INT(run(sb, "local mt = {}\n"
	    "keep = setmetatable({}, mt)\n"
	    "mt.__gc = function() while true do end end\n"
	    "setmetatable({}, mt).x = 1\n", 0, &cause), -1);
	free(cause);
	CHECK_INT(run(sb, "local mt = {}\n"
	    "for i = 1, 100 do setmetatable({}, mt) end\n"
	    "mt.__gc = function() while true do end end\n", 0, &cause), 0);
	CHECK(still_works(sb));

	/* xpcall handlers, and __close, in the main thread and in a
	 * coroutine the hook killed. */
	CHECK(fails_as(sb, "xpcall(function() while true do end end,\n"
	    "  function() while true do end end)\n",
	    "t.lua:1: " BUDGET_MSG));
	CHECK(fails_as(sb, "local x <close> = setmetatable({}, "
	    "{__close = function() while true do end end})\n"
	    "while true do end\n", "t.lua:2: " BUDGET_MSG));
	CHECK(fails_as(sb, "coroutine.wrap(function()\n"
	    "  local x <close> = setmetatable({}, "
	    "{__close = function() while true do end end})\n"
	    "  while true do end\n"
	    "end)()\n", "t.lua:3: " BUDGET_MSG));
	CHECK(fails_as(sb, "local co = coroutine.create(function()\n"
	    "  local x <close> = setmetatable({}, "
	    "{__close = function() while true do end end})\n"
	    "  while true do end\n"
	    "end)\n"
	    "coroutine.resume(co)\n"
	    "coroutine.close(co)\n", "t.lua:3: " BUDGET_MSG));
	/* Ordinary use of the same functions still works. */
	CHECK_INT(run_int(sb, "local n = 0\n"
	    "local ok, e = xpcall(error, function(m) return m .. '!' end, "
	    "'x', 0)\n"
	    "do local c <close> = setmetatable({}, "
	    "{__close = function() n = n + 1 end}) end\n"
	    "local f = coroutine.wrap(function(a)\n"
	    "  local c <close> = setmetatable({}, "
	    "{__close = function() n = n + 10 end})\n"
	    "  local b = coroutine.yield(a + 1)\n"
	    "  error('stop')\n"
	    "end)\n"
	    "local r = f(1)\n"
	    "local ok2, e2 = pcall(f, 5)\n"
	    "assert(e2 == 't.lua:7: stop', e2)\n"
	    "return (e == 'x!' and not ok and not ok2 and r == 2) and n\n"),
	    11);
	sandbox_free(sb);
}

/* The pattern matcher backtracks in C, out of the hook's sight: each call
 * is charged its worst case, and refused if that is more than is left. */
static void
test_pattern_bombs(void)
{
	struct sandbox	*sb = new_sandbox(MEMORY, BUDGET);
	lua_State	*L = sandbox_state(sb);
	char		*cause;

	CHECK(fails_with(sb, "local s = string.rep('a', 1e5)\n"
	    "return string.find(s, '.-.-.-.-.-b')\n",
	    "t.lua:2: string.find: pattern too costly for a 100000-byte "
	    "subject (worst case over "));
	CHECK(fails_with(sb, "local s = string.rep('a', 1e5)\n"
	    "return s:match('.-b')\n",
	    "t.lua:2: string.match: pattern too costly for a 100000-byte "
	    "subject (worst case 10000"));
	CHECK(fails_with(sb, "local s = string.rep('a', 1e5)\n"
	    "for w in s:gmatch('(a*)(a*)b') do end\n",
	    "t.lua:2: string.gmatch: pattern too costly"));
	CHECK(fails_with(sb, "local s = string.rep('a', 1e5)\n"
	    "return (s:gsub('%s*(a-)b', ''))\n",
	    "t.lua:2: string.gsub: pattern too costly"));
	CHECK(fails_with(sb, "local s = string.rep('a', 3e6)\n"
	    "return s:find(string.rep('a', 1e4) .. 'b', 1, true)\n",
	    "t.lua:2: string.find: pattern too costly"));
	CHECK(fails_with(sb, "local s = string.rep('a', 1e5)\n"
	    "return s:find(string.rep('a?', 40) .. 'b')\n",
	    "pattern too costly"));
	/* Refused up front: pcall may catch that (nothing ran), but a loop
	 * of refusals still runs out of budget. */
	CHECK_INT(run_int(sb, "local s = string.rep('a', 1e5)\n"
	    "local ok = pcall(string.find, s, '.-.-b')\n"
	    "return ok and 1 or 0\n"), 0);
	CHECK(fails_as(sb, "local s = string.rep('a', 1e5)\n"
	    "while true do pcall(string.find, s, '.-.-b') end\n",
	    "t.lua:2: " BUDGET_MSG));
	/* Each call that runs is paid for: 200 linear gsubs over 100 kB. */
	CHECK(fails_as(sb, "local s = string.rep('a ', 5e4)\n"
	    "for i = 1, 200 do s:gsub('%s+', ' ') end\n",
	    "t.lua:2: " BUDGET_MSG));

	/* What protocols do stays cheap and correct. */
	CHECK_INT(run_int(sb, "local t = string.rep('x', 1990) .. ' 12:30 '\n"
	    "local h, m = t:match('(%d+):(%d+)')\n"
	    "local a = select(2, ('a b  c'):gsub('%s+', ' '))\n"
	    "local n = 0\n"
	    "for w in ('one two three'):gmatch('%a+') do n = n + 1 end\n"
	    "local i = t:find('12', 1, true)\n"
	    "local j = ('[x]'):find('[', 1, true)\n"
	    "local k = ('key=value'):match('^(%w+)=(%w+)$')\n"
	    "local b = ('f(a(b)c)'):match('%b()')\n"
	    "local z = ('aXb'):find('X', -2)\n"
	    "return h * 100 + m + a * 10000 + n * 100000 + "
	    "(i == 1992 and j == 1 and k == 'key' and b == '(a(b)c)' "
	    "and z == 2 and 1000000 or 0)\n"), 1321230);
	/* A malformed pattern is Lua's error, not a crash in the estimate. */
	CHECK(fails_with(sb, "return ('abc'):find('[a')",
	    "malformed pattern"));
	CHECK(fails_with(sb, "return ('abc'):find('%')",
	    "malformed pattern"));
	CHECK(fails_with(sb, "return ('abc'):find('%b')",
	    "missing arguments to '%b'"));
	cause = NULL;
	CHECK_INT(run(sb, "return ('abc'):find('[%')", 0, &cause), -1);
	free(cause);
	CHECK_INT(lua_gettop(L), 0);
	sandbox_free(sb);
}

int
main(void)
{
	TEST(test_basic);
	TEST(test_bad_limits);
	TEST(test_endless_loop);
	TEST(test_budget_per_call);
	TEST(test_pcall_cannot_swallow_budget);
	TEST(test_coroutines_share_budget);
	TEST(test_coroutine_dodges);
	TEST(test_deep_recursion);
	TEST(test_memory_bombs);
	TEST(test_memory_swallowed);
	TEST(test_memory_recovered);
	TEST(test_c_loops_charged);
	TEST(test_absent_globals);
	TEST(test_load);
	TEST(test_collectgarbage);
	TEST(test_readonly_libraries);
	TEST(test_string_metatable);
	TEST(test_freeze);
	TEST(test_env_tricks);
	TEST(test_error_objects);
	TEST(test_syntax_nesting);
	TEST(test_load_file);
	TEST(test_hookless_code);
	TEST(test_pattern_bombs);
	return TEST_END();
}
