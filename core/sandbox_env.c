/*
 * sandbox_env.c: building a sandbox's Lua state: the allow lists, the
 * read-only library proxies, the env proxy and the globals behind it.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "sandbox.h"
#include "sandbox_int.h"

/* ------------------------------------------------------------------------
 * Allow lists.
 */

/*
 * Base functions a protocol may call, taken from the base library as is.
 * Everything not listed is absent; in particular:
 *   print, dofile, loadfile, require: I/O and module loading, none of which
 *     a protocol may do; it talks to the world through ctx only;
 *   rawset: would write through the read-only proxies;
 *   warn: writes to stderr;
 *   load, collectgarbage: present, but wrapped (see sandbox_wrap.c).
 */
static const char *sandbox_base_allow[] = {
	"assert",		/* checks */
	"error",		/* raising errors */
	"ipairs",		/* iteration */
	"next",			/* iteration; proxies are empty to it */
	"pairs",		/* iteration; proxies provide __pairs */
	"pcall",		/* protected calls; limits still apply */
	"select",		/* varargs */
	"tonumber",		/* conversions */
	"tostring",		/* conversions */
	"type",			/* introspection */
	"xpcall",		/* wrapped: no handler once out of budget */
	"rawequal",		/* reading only */
	"rawlen",		/* reading only */
	"rawget",		/* reading only; proxies are empty to it */
	"getmetatable",		/* protected metatables answer "locked" */
	"setmetatable",		/* wrapped: no __gc; protected ones refuse */
	NULL
};

/* A library and the names it may keep. */
struct sandbox_lib {
	const char	 *name;
	lua_CFunction	  open;
	const char	**allow;
};

/* string without dump: bytecode is refused by every load anyway, and there
 * is nothing else a protocol can do with it. */
static const char *sandbox_string_allow[] = {
	"byte", "char", "find", "format", "gmatch", "gsub", "len", "lower",
	"match", "pack", "packsize", "rep", "reverse", "sub", "unpack",
	"upper", NULL
};

static const char *sandbox_table_allow[] = {
	"concat", "insert", "move", "pack", "remove", "sort", "unpack", NULL
};

/* math without random and randomseed: protocols must be deterministic, so
 * the same history always gives the same schedule. */
static const char *sandbox_math_allow[] = {
	"abs", "acos", "asin", "atan", "ceil", "cos", "deg", "exp", "floor",
	"fmod", "huge", "log", "max", "maxinteger", "min", "mininteger",
	"modf", "pi", "rad", "sin", "sqrt", "tan", "tointeger", "type", "ult",
	NULL
};

static const char *sandbox_utf8_allow[] = {
	"char", "charpattern", "codepoint", "codes", "len", "offset", NULL
};

/* coroutine in full: threads share the state's memory cap and budget;
 * create and close are wrapped, wrap is rebuilt (see sandbox_wrap.c). */
static const char *sandbox_coroutine_allow[] = {
	"close", "create", "isyieldable", "resume", "running", "status",
	"wrap", "yield", NULL
};

static const struct sandbox_lib sandbox_libs[] = {
	{ LUA_STRLIBNAME, luaopen_string, sandbox_string_allow },
	{ LUA_TABLIBNAME, luaopen_table, sandbox_table_allow },
	{ LUA_MATHLIBNAME, luaopen_math, sandbox_math_allow },
	{ LUA_UTF8LIBNAME, luaopen_utf8, sandbox_utf8_allow },
	{ LUA_COLIBNAME, luaopen_coroutine, sandbox_coroutine_allow },
	{ NULL, NULL, NULL }
};

/* ------------------------------------------------------------------------
 * Read-only proxies and the global table.
 */

/* __newindex of a library proxy; upvalue 1 is the library's name. */
static int
sandbox__readonly(lua_State *L)
{
	const char	*lib = lua_tostring(L, lua_upvalueindex(1));

	if (lua_type(L, 2) == LUA_TSTRING)
		return luaL_error(L, "attempt to modify read-only table "
		    "'%s' (field '%s')", lib, lua_tostring(L, 2));
	return luaL_error(L, "attempt to modify read-only table '%s'", lib);
}

/* The iterator __pairs hands out; upvalue 1 is the table behind the proxy,
 * which never reaches Lua code. */
static int
sandbox__proxy_next(lua_State *L)
{
	lua_settop(L, 2);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 2);
	if (lua_next(L, -2))
		return 2;
	lua_pushnil(L);
	return 1;
}

/* __pairs of a proxy; upvalue 1 is sandbox__proxy_next. */
static int
sandbox__proxy_pairs(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

/*
 * Pops a table and pushes an empty proxy for it whose metatable has
 * __index = table, __pairs, __metatable = "locked", and __newindex = the
 * function on the top of the stack below the table (popped too).
 */
static void
sandbox__proxy(lua_State *L)
{
	int	t = lua_gettop(L);

	lua_newtable(L);			/* proxy */
	lua_createtable(L, 0, 4);		/* metatable */
	lua_pushvalue(L, t);
	lua_setfield(L, -2, "__index");
	lua_pushvalue(L, t - 1);
	lua_setfield(L, -2, "__newindex");
	lua_pushvalue(L, t);
	lua_pushcclosure(L, sandbox__proxy_next, 1);
	lua_pushcclosure(L, sandbox__proxy_pairs, 1);
	lua_setfield(L, -2, "__pairs");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	lua_replace(L, t - 1);
	lua_settop(L, t - 1);
}

/* __newindex of env; upvalue 1 is the globals table behind it. */
static int
sandbox__setglobal(lua_State *L)
{
	if (sandbox__from(L)->frozen) {
		if (lua_type(L, 2) == LUA_TSTRING)
			return luaL_error(L, "attempt to set global '%s' "
			    "(protocols keep state in ctx.state)",
			    lua_tostring(L, 2));
		return luaL_error(L, "attempt to set a global "
		    "(protocols keep state in ctx.state)");
	}
	lua_settop(L, 3);
	lua_rawset(L, lua_upvalueindex(1));
	return 0;
}

/* Copies the allow-listed fields of the table at `from` into the table on
 * the top of the stack. */
static void
sandbox__copy(lua_State *L, int from, const char **allow)
{
	from = lua_absindex(L, from);
	for (; *allow != NULL; allow++) {
		lua_getfield(L, from, *allow);
		lua_setfield(L, -2, *allow);
	}
}

static void
sandbox__wrap(lua_State *L, const char *lib)
{
	const struct sandbox_wrap	*w;

	for (w = sandbox_wraps; w->lib != NULL; w++) {
		if (strcmp(w->lib, lib) != 0)
			continue;
		lua_getfield(L, -1, w->name);
		lua_pushcclosure(L, w->fn, 1);
		lua_setfield(L, -2, w->name);
	}
}

/* Opens `lib`, and pushes a read-only proxy of its allowed part. */
static void
sandbox__open_lib(lua_State *L, const struct sandbox_lib *lib)
{
	luaL_requiref(L, lib->name, lib->open, 0);
	lua_pushstring(L, lib->name);
	lua_pushcclosure(L, sandbox__readonly, 1);
	lua_newtable(L);
	sandbox__copy(L, -3, lib->allow);
	sandbox__wrap(L, lib->name);
	if (strcmp(lib->name, LUA_COLIBNAME) == 0) {
		lua_getfield(L, -3, "create");
		lua_getfield(L, -4, "resume");
		lua_getfield(L, -5, "close");
		lua_pushcclosure(L, sandbox__coroutine_wrap, 3);
		lua_setfield(L, -2, "wrap");
	}
	sandbox__proxy(L);
	lua_remove(L, -2);			/* the full library */
}

/* Points the string metatable's __index at the proxy on the top of the
 * stack and locks it, so getmetatable("") answers "locked". */
static void
sandbox__lock_strings(lua_State *L)
{
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushvalue(L, -3);
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "locked");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);
}

/* Fills the globals table at `g` with the allowed base functions, the
 * wrappers and the library proxies; env is at `env`. Must run before env
 * replaces the registry's globals, which luaopen_base() writes into. */
static void
sandbox__fill(lua_State *L, int g, int env)
{
	const struct sandbox_lib	*lib;

	luaL_requiref(L, LUA_GNAME, luaopen_base, 0);
	lua_pushvalue(L, g);
	sandbox__copy(L, -2, sandbox_base_allow);
	sandbox__wrap(L, LUA_GNAME);
	lua_getfield(L, -2, "_VERSION");
	lua_setfield(L, -2, "_VERSION");
	lua_getfield(L, -2, "load");
	lua_pushvalue(L, env);
	lua_pushcclosure(L, sandbox__load, 2);
	lua_setfield(L, -2, "load");
	lua_pushcfunction(L, sandbox__collectgarbage);
	lua_setfield(L, -2, "collectgarbage");
	lua_pushvalue(L, env);
	lua_setfield(L, -2, LUA_GNAME);
	lua_remove(L, -2);			/* the base library */

	for (lib = sandbox_libs; lib->name != NULL; lib++) {
		sandbox__open_lib(L, lib);
		if (lib->open == luaopen_string)
			sandbox__lock_strings(L);
		lua_setfield(L, -2, lib->name);
	}
	lua_pop(L, 1);
}

/*
 * Builds the sandbox; run through lua_pcall() so running out of memory is
 * an error, not a panic. Argument 1 is the struct sandbox.
 */
int
sandbox__setup(lua_State *L)
{
	struct sandbox	*sb = lua_touserdata(L, 1);

	lua_settop(L, 0);
	lua_newtable(L);				/* 1: globals */
	lua_pushvalue(L, 1);
	lua_pushcclosure(L, sandbox__setglobal, 1);
	lua_pushvalue(L, 1);
	sandbox__proxy(L);				/* 2: env */
	sandbox__fill(L, 1, 2);

	lua_pushvalue(L, 2);
	lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
	lua_pushvalue(L, 2);
	sb->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_settop(L, 0);
	return 0;
}
