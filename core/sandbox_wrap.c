/*
 * sandbox_wrap.c: library functions the sandbox replaces with wrappers:
 * load, collectgarbage, string.rep and table.move/insert/remove charged
 * for the work they do in C, the coroutine functions, xpcall and
 * setmetatable kept out of code that would run without the budget, and
 * sandbox_wraps[], which names the library function each one replaces.
 * The pattern functions are in sandbox_pattern.c.
 */
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "sandbox.h"
#include "sandbox_int.h"

/* ------------------------------------------------------------------------
 * Wrapped library functions. Each keeps the original as upvalue 1.
 */

/*
 * Runs the original (upvalue 1) in this function's own frame, so its errors
 * name the Lua caller's file:line and this function's name, as if there
 * were no wrapper. None of the wrapped library functions use upvalues.
 */
int
sandbox__call_original(lua_State *L)
{
	lua_CFunction	fn = lua_tocfunction(L, lua_upvalueindex(1));

	return fn(L);
}

/*
 * load(chunk [, chunkname [, mode [, env]]]): text only, and without an
 * explicit env the chunk gets the sandbox's, not the registry's globals.
 * Asking for binary is a programming error, so it raises rather than
 * returning nil, message.
 */
int
sandbox__load(lua_State *L)
{
	const char	*mode = luaL_optstring(L, 3, "t");
	int		 has_env = !lua_isnone(L, 4);

	if (strcmp(mode, "t") != 0)
		return luaL_error(L, "load: mode '%s' not allowed, protocols "
		    "may only load text chunks (mode 't')", mode);
	lua_settop(L, 4);
	lua_pushliteral(L, "t");
	lua_replace(L, 3);
	if (!has_env) {
		lua_pushvalue(L, lua_upvalueindex(2));
		lua_replace(L, 4);
	}
	return sandbox__call_original(L);
}

/* collectgarbage("count") only: the rest would let a protocol steer the
 * collector other protocols' latency depends on. */
int
sandbox__collectgarbage(lua_State *L)
{
	const char	*opt = luaL_optstring(L, 1, "collect");
	lua_Number	 kb;

	if (strcmp(opt, "count") != 0)
		return luaL_error(L, "collectgarbage: only \"count\" is "
		    "allowed (got \"%s\")", opt);
	kb = (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
	    (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024;
	lua_pushnumber(L, kb);
	return 1;
}

/* string.rep("", huge) loops `huge` times in C copying nothing; the memory
 * cap bounds every other case. */
static int
sandbox__string_rep(lua_State *L)
{
	size_t	l, lsep;

	luaL_checklstring(L, 1, &l);
	luaL_checkinteger(L, 2);
	luaL_optlstring(L, 3, "", &lsep);
	if (l + lsep == 0) {
		lua_pushliteral(L, "");
		return 1;
	}
	return sandbox__call_original(L);
}

/* table.move(a1, f, e, t [, a2]) loops e - f + 1 times in C; assigning nil
 * to absent keys allocates nothing, so only the budget can stop it. */
static int
sandbox__table_move(lua_State *L)
{
	lua_Integer	f = luaL_checkinteger(L, 2);
	lua_Integer	e = luaL_checkinteger(L, 3);
	lua_Unsigned	n;

	if (e >= f) {
		n = (lua_Unsigned)e - (lua_Unsigned)f + 1;
		sandbox__charge(L, n > INT64_MAX ? INT64_MAX : (int64_t)n);
	}
	return sandbox__call_original(L);
}

/* table.insert(t, pos, v) and table.remove(t, pos) shift #t - pos
 * elements in C, and __len can make #t anything. */
static int
sandbox__table_shift(lua_State *L, int with_pos)
{
	lua_Integer	len, pos;
	lua_Unsigned	n;

	if (with_pos) {
		luaL_checktype(L, 1, LUA_TTABLE);
		len = luaL_len(L, 1);
		pos = luaL_checkinteger(L, 2);
		if (len >= pos) {
			n = (lua_Unsigned)len - (lua_Unsigned)pos + 1;
			sandbox__charge(L,
			    n > INT64_MAX ? INT64_MAX : (int64_t)n);
		}
	}
	return sandbox__call_original(L);
}

static int
sandbox__table_insert(lua_State *L)
{
	return sandbox__table_shift(L, lua_gettop(L) >= 3);
}

static int
sandbox__table_remove(lua_State *L)
{
	return sandbox__table_shift(L, lua_gettop(L) >= 2);
}


/*
 * coroutine.create (coroutine.wrap charges the same). The hook count is
 * per thread, so a coroutine that dies before its first SANDBOX_HOOK_COUNT
 * instructions would never be charged; charging that much up front keeps the budget an
 * upper bound however many short coroutines a protocol makes.
 */
static int
sandbox__coroutine_new(lua_State *L)
{
	sandbox__charge(L, sandbox__from(L)->hook_count);
	return sandbox__call_original(L);
}

/*
 * Hooks are off (L->allowhook == 0) while an error raised by the count hook
 * unwinds, until a pcall, resume or sandbox_call catches it. Lua code that
 * runs in that window, or whenever Lua itself turns hooks off, is outside
 * the budget and could loop forever, so none may run there:
 *  - xpcall message handlers: skipped once the budget is spent (the hook
 *    only raises then);
 *  - __close of a coroutine the hook killed: coroutine.wrap and
 *    coroutine.close do not close it once the budget is spent;
 *  - __gc finalizers: Lua always runs them with hooks off, so setmetatable
 *    refuses a metatable with __gc (Lua only registers a finalizer when
 *    the metatable has __gc at setmetatable time).
 */

/* The message handler passed to the real xpcall; upvalue 1 is the
 * protocol's. */
static int
sandbox__handler(lua_State *L)
{
	if (sandbox__from(L)->budget_spent)
		return 1;			/* the error, untouched */
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

static int
sandbox__xpcall(lua_State *L)
{
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushvalue(L, 2);
	lua_pushcclosure(L, sandbox__handler, 1);
	lua_replace(L, 2);
	return sandbox__call_original(L);
}

static int
sandbox__setmetatable(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "setmetatable: __gc is not "
			    "allowed (finalizers run outside the instruction "
			    "budget)");
		lua_pop(L, 1);
	}
	return sandbox__call_original(L);
}

static int
sandbox__coroutine_close(lua_State *L)
{
	struct sandbox	*sb = sandbox__from(L);

	if (sb->budget_spent)
		return sandbox__spent(L, sb, 1);
	return sandbox__call_original(L);
}

/*
 * The function coroutine.wrap returns: resumes the thread (upvalue 1)
 * through the real coroutine.resume (upvalue 2) and, on error, closes it
 * through the real coroutine.close (upvalue 3), as the stock wrap does.
 */
static int
sandbox__wrapped(lua_State *L)
{
	struct sandbox	*sb = sandbox__from(L);
	lua_State	*co = lua_tothread(L, lua_upvalueindex(1));
	int		 status;

	lua_pushvalue(L, lua_upvalueindex(2));
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_rotate(L, 1, 2);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	if (lua_toboolean(L, 1)) {
		lua_remove(L, 1);
		return lua_gettop(L);
	}
	if (sb->budget_spent)
		return sandbox__spent(L, sb, 1);
	lua_settop(L, 2);
	status = lua_status(co);
	if (status != LUA_OK && status != LUA_YIELD) {
		lua_pushvalue(L, lua_upvalueindex(3));
		lua_pushvalue(L, lua_upvalueindex(1));
		lua_call(L, 1, 2);
		if (!lua_toboolean(L, -2))
			lua_replace(L, 2);	/* an error from __close */
		lua_settop(L, 2);
	}
	if (lua_type(L, 2) == LUA_TSTRING) {
		luaL_where(L, 1);
		lua_insert(L, 2);
		lua_concat(L, 2);
	}
	return lua_error(L);
}

/* coroutine.wrap; upvalues: the real create, resume and close. */
int
sandbox__coroutine_wrap(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	sandbox__charge(L, sandbox__from(L)->hook_count);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);
	lua_pushvalue(L, lua_upvalueindex(2));
	lua_pushvalue(L, lua_upvalueindex(3));
	lua_pushcclosure(L, sandbox__wrapped, 3);
	return 1;
}

/* Library functions replaced by a wrapper taking the original as upvalue. */
const struct sandbox_wrap sandbox_wraps[] = {
	{ LUA_STRLIBNAME, "rep", sandbox__string_rep },
	{ LUA_STRLIBNAME, "find", sandbox__string_find },
	{ LUA_STRLIBNAME, "match", sandbox__string_match },
	{ LUA_STRLIBNAME, "gmatch", sandbox__string_gmatch },
	{ LUA_STRLIBNAME, "gsub", sandbox__string_gsub },
	{ LUA_TABLIBNAME, "move", sandbox__table_move },
	{ LUA_TABLIBNAME, "insert", sandbox__table_insert },
	{ LUA_TABLIBNAME, "remove", sandbox__table_remove },
	{ LUA_COLIBNAME, "create", sandbox__coroutine_new },
	{ LUA_COLIBNAME, "close", sandbox__coroutine_close },
	{ LUA_GNAME, "xpcall", sandbox__xpcall },
	{ LUA_GNAME, "setmetatable", sandbox__setmetatable },
	{ NULL, NULL, NULL }
};
