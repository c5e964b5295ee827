/*
 * sandbox.c: a locked-down Lua 5.4 state for code the clinic writes.
 *
 * Layout of one sandbox:
 *
 *   env    the _ENV of every chunk (and LUA_RIDX_GLOBALS, so C code using
 *          lua_getglobal() sees the protocol's names). It is an empty proxy:
 *          reads go to `globals` through __index, writes go through a C
 *          __newindex that stores into `globals` until the sandbox is frozen
 *          and raises afterwards. Freezing is a flag, so it cannot fail.
 *   globals  the real table behind env, filled from the allow lists below.
 *   libraries  string, table, math, utf8, coroutine: for each, a fresh table
 *          holding only the allow-listed functions, exposed through an empty
 *          read-only proxy (__index = the table, __newindex raises,
 *          __pairs iterates without handing out the table, __metatable =
 *          "locked"). rawset is not exposed, so a proxy cannot be bypassed.
 *
 * The libraries Lua opens (with string.dump, math.random, print, ...) stay
 * in the registry's package.loaded table, which no sandboxed code can reach.
 *
 * Limits: memory through the lua_Alloc function (sandbox__alloc), CPU
 * through a count hook (sandbox__hook) sharing one budget between every
 * thread of the state. A few library functions loop in C without running a
 * Lua instruction, so the hook never sees them; those are wrapped to charge
 * the budget up front (see "Wrapped library functions").
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "sandbox.h"
#include "xmalloc.h"

/* Instructions between two firings of the count hook. */
#define SANDBOX_HOOK_COUNT	1000

/* Largest source file sandbox_load_file() accepts. */
#define SANDBOX_MAX_FILE	(1024 * 1024)

/* Room for "file:line: " of the place a limit was hit. */
#define SANDBOX_WHERE_SIZE	256

enum sandbox_limit {
	SANDBOX_LIMIT_NONE = 0,
	SANDBOX_LIMIT_MEMORY,
	SANDBOX_LIMIT_BUDGET
};

struct sandbox {
	lua_State		*L;
	int			 env_ref;	/* registry ref of the env proxy */
	int			 frozen;

	/* Memory, maintained by sandbox__alloc. */
	size_t			 mem_limit;
	size_t			 mem_used;
	int			 mem_hit;	/* refused growth during this call */
	int			 mem_hit_before; /* mem_hit before a pending refusal */
	int			 refused;	/* last growth refused; retry pending */
	void			*refused_ptr;
	size_t			 refused_osize;
	size_t			 refused_nsize;

	/* Instructions, maintained by sandbox__hook and sandbox__charge. */
	int64_t			 budget;	/* per call, as configured */
	int64_t			 budget_left;
	int			 budget_spent;
	int			 hook_count;

	enum sandbox_limit	 limit;		/* first limit hit in this call */
	char			 where[SANDBOX_WHERE_SIZE];
	/* The file of the last chunk loaded, "t.lua: ", named in memory
	 * errors: the allocator cannot safely ask Lua where it is. */
	char			 chunk[SANDBOX_WHERE_SIZE];
};

/* ------------------------------------------------------------------------
 * Memory.
 */

static void
sandbox__refuse(struct sandbox *sb, void *ptr, size_t osize, size_t nsize,
    int retry)
{
	if (retry) {
		/* Lua's emergency collection did not help: a real failure. */
		sb->refused = 0;
	} else {
		sb->mem_hit_before = sb->mem_hit;
		sb->refused = 1;
		sb->refused_ptr = ptr;
		sb->refused_osize = osize;
		sb->refused_nsize = nsize;
	}
	sb->mem_hit = 1;
	if (sb->limit == SANDBOX_LIMIT_NONE)
		sb->limit = SANDBOX_LIMIT_MEMORY;
}

/*
 * The lua_Alloc function. Growth past mem_limit returns NULL, which Lua
 * answers with a full (emergency) collection and one identical retry, then
 * a memory error. A refusal that the retry recovers from is not a failure,
 * so mem_hit is put back when that exact request succeeds next; any other
 * refusal stays recorded for sandbox_call() even if pcall() swallowed the
 * error. Shrinking never fails, as Lua requires.
 */
static void *
sandbox__alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct sandbox	*sb = ud;
	size_t		 old = ptr == NULL ? 0 : osize; /* else osize is a tag */
	void		*p;
	int		 retry;

	if (nsize == 0) {
		free(ptr);
		sb->mem_used -= old;
		return NULL;
	}
	retry = sb->refused && ptr == sb->refused_ptr &&
	    osize == sb->refused_osize && nsize == sb->refused_nsize;
	sb->refused = 0;
	if (nsize > old && nsize - old > sb->mem_limit - sb->mem_used) {
		sandbox__refuse(sb, ptr, osize, nsize, retry);
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (p == NULL) {
		if (nsize <= old)
			return ptr;	/* keep the larger block */
		sandbox__refuse(sb, ptr, osize, nsize, retry);
		return NULL;
	}
	if (retry) {
		sb->mem_hit = sb->mem_hit_before;
		if (!sb->mem_hit && sb->limit == SANDBOX_LIMIT_MEMORY)
			sb->limit = SANDBOX_LIMIT_NONE;
	}
	sb->mem_used = sb->mem_used - old + nsize;
	return p;
}

static struct sandbox *
sandbox__from(lua_State *L)
{
	void	*ud;

	lua_getallocf(L, &ud);
	return ud;
}

/* ------------------------------------------------------------------------
 * Instruction budget.
 */

/* Writes "file:line: " of the first Lua function at `level` or above. */
static void
sandbox__where(lua_State *L, int level, char *buf, size_t size)
{
	lua_Debug	ar;

	buf[0] = '\0';
	for (; lua_getstack(L, level, &ar); level++) {
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
			snprintf(buf, size, "%s:%d: ", ar.short_src,
			    ar.currentline);
			return;
		}
	}
}

/*
 * Marks the budget spent (remembering where, the first time) and raises.
 * From now on the hook fires after every instruction of this thread and
 * raises again, so a pcall() in the protocol only buys one instruction.
 */
static int
sandbox__spent(lua_State *L, struct sandbox *sb, int level)
{
	if (!sb->budget_spent) {
		sb->budget_spent = 1;
		sandbox__where(L, level, sb->where, sizeof sb->where);
		if (sb->limit == SANDBOX_LIMIT_NONE)
			sb->limit = SANDBOX_LIMIT_BUDGET;
	}
	lua_sethook(L, lua_gethook(L), LUA_MASKCOUNT, 1);
	return luaL_error(L, "%sinstruction budget exceeded (%I instructions)",
	    sb->where, (lua_Integer)sb->budget);
}

/*
 * The count hook. Every thread of the state runs it (lua_newthread copies
 * the hook of the creating thread), and they all draw on sb->budget_left.
 * A thread's own count may still be 1 from an earlier, spent call; it is
 * put back to the normal interval here. In a hook, level 0 is the running
 * function (no CallInfo is pushed for the hook itself).
 */
static void
sandbox__hook(lua_State *L, lua_Debug *ar)
{
	struct sandbox	*sb = sandbox__from(L);

	(void)ar;
	if (!sb->budget_spent) {
		sb->budget_left -= lua_gethookcount(L);
		if (sb->budget_left > 0) {
			if (lua_gethookcount(L) != sb->hook_count)
				lua_sethook(L, sandbox__hook, LUA_MASKCOUNT,
				    sb->hook_count);
			return;
		}
	}
	sandbox__spent(L, sb, 0);
}

/*
 * Charges `n` instructions for work a library function does in C, where
 * the hook cannot see it. Called from a C function: level 1 is its caller.
 */
static void
sandbox__charge(lua_State *L, int64_t n)
{
	struct sandbox	*sb = sandbox__from(L);

	if (!sb->budget_spent && n < sb->budget_left) {
		sb->budget_left -= n;
		return;
	}
	sandbox__spent(L, sb, 1);
}

static void
sandbox__reset_limits(struct sandbox *sb)
{
	sb->budget_left = sb->budget;
	sb->budget_spent = 0;
	sb->mem_hit = 0;
	sb->refused = 0;
	sb->limit = SANDBOX_LIMIT_NONE;
	sb->where[0] = '\0';
	lua_sethook(sb->L, sandbox__hook, LUA_MASKCOUNT, sb->hook_count);
}

/* ------------------------------------------------------------------------
 * Wrapped library functions. Each keeps the original as upvalue 1.
 */

/*
 * Runs the original (upvalue 1) in this function's own frame, so its errors
 * name the Lua caller's file:line and this function's name, as if there
 * were no wrapper. None of the wrapped library functions use upvalues.
 */
static int
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
static int
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
static int
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
 * string.find, match, gmatch and gsub run Lua's pattern matcher, which
 * backtracks in C: string.find(string.rep("a", 1e5), ".-.-.-.-.-b") would
 * run for hours without executing one Lua instruction. The matcher cannot
 * be interrupted, so each call is charged its worst case up front, from
 * the subject length n (after `init`) and the shape of the pattern:
 *
 *   (n + 1)^e * 2^q + n + #pattern steps, where
 *   e  = items that can backtrack over the subject (x*, x+, x-, %bxy, %1
 *        back-references), except the last one when nothing but ')'
 *        follows it (it cannot fail once it matched, so it only adds n),
 *        plus one for the start positions unless the pattern is anchored;
 *   q  = optional items (x?), which try two ways each.
 *
 * A plain find (no special characters, or `plain`) is memchr/memcmp: n *
 * #pattern / SANDBOX_MEMCMP_BYTES steps. One step costs one instruction of
 * the budget. A call whose worst case exceeds the whole budget is refused
 * before it starts, with an error naming the pattern's cost; pcall() may
 * catch that (no work was done). Every other call is paid for, so running
 * out is the usual budget error, which pcall() cannot swallow. Typical protocol use
 * (short patient texts, one or two repetitions, or anchored patterns)
 * costs thousands of steps. docs/protocols.md has the rule for authors.
 */

/* Bytes memcmp() compares in the time of one Lua instruction. */
#define SANDBOX_MEMCMP_BYTES	8

/* a * b, saturating at INT64_MAX. */
static int64_t
sandbox__mul(int64_t a, int64_t b)
{
	if (a != 0 && b > INT64_MAX / a)
		return INT64_MAX;
	return a * b;
}

static int64_t
sandbox__add(int64_t a, int64_t b)
{
	return b > INT64_MAX - a ? INT64_MAX : a + b;
}

/* The end of the single-character class starting at p[i] (as lstrlib's
 * classEnd, but never past plen on a malformed pattern). */
static size_t
sandbox__class_end(const char *p, size_t plen, size_t i)
{
	if (p[i] == '%')
		return i + 2 > plen ? plen : i + 2;
	if (p[i] != '[')
		return i + 1;
	i++;
	if (i < plen && p[i] == '^')
		i++;
	do {				/* the first ']' is a member */
		if (i >= plen)
			return plen;
		if (p[i] == '%' && i + 1 < plen)
			i++;
		i++;
	} while (i < plen && p[i] != ']');
	return i < plen ? i + 1 : plen;
}

/* 1 if only ')' follow position i of the pattern. */
static int
sandbox__trailing(const char *p, size_t plen, size_t i)
{
	for (; i < plen; i++)
		if (p[i] != ')')
			return 0;
	return 1;
}

/* Worst-case steps of matching `p` over `n` bytes (see above). */
static int64_t
sandbox__pattern_cost(const char *p, size_t plen, size_t n, int anchored)
{
	int64_t	 steps;
	size_t	 i = 0, end;
	int	 e = anchored ? 0 : 1, q = 0, last = -1, k;

	while (i < plen) {
		if (p[i] == '(' || p[i] == ')') {
			i++;
			continue;
		}
		if (p[i] == '$' && i + 1 == plen)
			break;
		if (p[i] == '%' && i + 1 < plen && p[i + 1] == 'b') {
			i = i + 4 > plen ? plen : i + 4;
			last = sandbox__trailing(p, plen, i);
			e++;
			continue;
		}
		if (p[i] == '%' && i + 1 < plen && p[i + 1] == 'f') {
			i = sandbox__class_end(p, plen, i + 2);
			continue;
		}
		if (p[i] == '%' && i + 1 < plen && p[i + 1] >= '0' &&
		    p[i + 1] <= '9') {
			i += 2;
			last = sandbox__trailing(p, plen, i);
			e++;
			continue;
		}
		end = sandbox__class_end(p, plen, i);
		if (end < plen && (p[end] == '*' || p[end] == '+' ||
		    p[end] == '-')) {
			i = end + 1;
			last = sandbox__trailing(p, plen, i);
			e++;
		} else if (end < plen && p[end] == '?') {
			i = end + 1;
			q++;
		} else
			i = end;
	}
	if (last == 1)
		e--;			/* the last item only adds n */
	steps = 1;
	for (k = 0; k < e && steps < INT64_MAX; k++)
		steps = sandbox__mul(steps, (int64_t)n + 1);
	for (k = 0; k < q && steps < INT64_MAX; k++)
		steps = sandbox__mul(steps, 2);
	return sandbox__add(steps, (int64_t)n + (int64_t)plen);
}

/* Charges a pattern function's worst case, or refuses it. */
static void
sandbox__charge_pattern(lua_State *L, const char *fn, const char *p,
    size_t plen, size_t n, int anchored, int plain)
{
	struct sandbox	*sb = sandbox__from(L);
	int64_t		 steps;

	if (plain)
		steps = sandbox__add((int64_t)n, sandbox__mul((int64_t)n,
		    (int64_t)plen) / SANDBOX_MEMCMP_BYTES);
	else
		steps = sandbox__pattern_cost(p, plen, n, anchored);
	/* Past the whole budget it could never run: say why. Otherwise it
	 * is paid for, and running out is the usual sticky budget error. */
	if (!sb->budget_spent && steps > sb->budget)
		luaL_error(L, "string.%s: pattern too costly for a %I-byte "
		    "subject (worst case %s%I steps, the budget is %I; anchor "
		    "it with '^', use fewer repetitions, or match a shorter "
		    "string)", fn, (lua_Integer)n,
		    steps == INT64_MAX ? "over " : "", (lua_Integer)steps,
		    (lua_Integer)sb->budget);
	sandbox__charge(L, steps);
}

/* 1 if the pattern has none of the characters that make it one (as
 * lstrlib's nospecials). */
static int
sandbox__nospecials(const char *p, size_t plen)
{
	size_t	i;

	for (i = 0; i < plen; i++)
		if (strchr("^$*+?.([%-", p[i]) != NULL)
			return 0;
	return 1;
}

/* Bytes of s from `init` (argument `arg`, 1-based, negative from the end)
 * as lstrlib's posrelat/str_find_aux read it. */
static size_t
sandbox__subject(lua_State *L, size_t ls, int arg)
{
	lua_Integer	init = luaL_optinteger(L, arg, 1);

	if (init > 0)
		return (size_t)init > ls ? 0 : ls - (size_t)init + 1;
	if (init == 0 || (size_t)0 - (lua_Unsigned)init > ls)
		return ls;
	return (size_t)0 - (lua_Unsigned)init;
}

/* find (plain allowed) and match: (s, pattern [, init [, plain]]). */
static int
sandbox__string_search(lua_State *L, const char *fn, int find)
{
	const char	*p;
	size_t		 ls, lp, n;
	int		 plain;

	luaL_checklstring(L, 1, &ls);
	p = luaL_checklstring(L, 2, &lp);
	n = sandbox__subject(L, ls, 3);
	plain = find && (lua_toboolean(L, 4) || sandbox__nospecials(p, lp));
	sandbox__charge_pattern(L, fn, p, lp, n, lp > 0 && p[0] == '^',
	    plain);
	return sandbox__call_original(L);
}

static int
sandbox__string_find(lua_State *L)
{
	return sandbox__string_search(L, "find", 1);
}

static int
sandbox__string_match(lua_State *L)
{
	return sandbox__string_search(L, "match", 0);
}

/* gmatch(s, pattern [, init]): '^' is no anchor here; the iterator's
 * calls together start at most n + 1 times, so one charge covers them. */
static int
sandbox__string_gmatch(lua_State *L)
{
	const char	*p;
	size_t		 ls, lp, n;

	luaL_checklstring(L, 1, &ls);
	p = luaL_checklstring(L, 2, &lp);
	n = sandbox__subject(L, ls, 3);
	sandbox__charge_pattern(L, "gmatch", p, lp, n, 0, 0);
	return sandbox__call_original(L);
}

/* gsub(s, pattern, repl [, n]): a function or table repl runs as Lua,
 * under the hook. */
static int
sandbox__string_gsub(lua_State *L)
{
	const char	*p;
	size_t		 ls, lp;

	luaL_checklstring(L, 1, &ls);
	p = luaL_checklstring(L, 2, &lp);
	sandbox__charge_pattern(L, "gsub", p, lp, ls, lp > 0 && p[0] == '^',
	    0);
	return sandbox__call_original(L);
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
static int
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
 *   load, collectgarbage: present, but wrapped (see below).
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
 * create and close are wrapped, wrap is rebuilt (see above). */
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

/* Library functions replaced by a wrapper taking the original as upvalue. */
struct sandbox_wrap {
	const char	*lib;
	const char	*name;
	lua_CFunction	 fn;
};

static const struct sandbox_wrap sandbox_wraps[] = {
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
static int
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

/* ------------------------------------------------------------------------
 * Errors.
 */

/*
 * Message handler for sandbox_call(). Never calls __tostring (that would
 * run protocol code while handling its error): a string is used as is,
 * anything else is named by type with the place it was raised.
 */
static int
sandbox__msgh(lua_State *L)
{
	char	where[SANDBOX_WHERE_SIZE];

	if (lua_type(L, 1) == LUA_TSTRING)
		return 1;
	sandbox__where(L, 1, where, sizeof where);
	lua_pushfstring(L, "%s(error object is a %s value)", where,
	    luaL_typename(L, 1));
	return 1;
}

/* Returns the message of a failed call (caller frees); the error object,
 * if any, is on the top of the stack. */
static char *
sandbox__cause(struct sandbox *sb, int status)
{
	lua_State	*L = sb->L;

	switch (sb->limit) {
	case SANDBOX_LIMIT_BUDGET:
		return xasprintf("%sinstruction budget exceeded "
		    "(%lld instructions)", sb->where, (long long)sb->budget);
	case SANDBOX_LIMIT_MEMORY:
		return xasprintf("%smemory limit exceeded (%zu bytes)",
		    sb->chunk, sb->mem_limit);
	case SANDBOX_LIMIT_NONE:
		break;
	}
	if (status == LUA_ERRMEM)
		return xstrdup("not enough memory");
	if (lua_type(L, -1) == LUA_TSTRING)
		return xstrdup(lua_tostring(L, -1));
	return xasprintf("(error object is a %s value)", luaL_typename(L, -1));
}

/* ------------------------------------------------------------------------
 * Public interface.
 */

/* Returns a new sandbox, owned by the caller (sandbox_free()), or NULL
 * with *cause set, owned by the caller. */
struct sandbox *
sandbox_new(size_t memory, int64_t instructions, char **cause)
{
	struct sandbox	*sb;

	if (memory == 0 || instructions <= 0) {
		*cause = xasprintf("sandbox limits must be positive "
		    "(memory %zu, instructions %lld)", memory,
		    (long long)instructions);
		return NULL;
	}
	sb = xcalloc(1, sizeof *sb);
	sb->mem_limit = memory;
	sb->budget = sb->budget_left = instructions;
	sb->hook_count = instructions < SANDBOX_HOOK_COUNT ?
	    (int)instructions : SANDBOX_HOOK_COUNT;
	sb->env_ref = LUA_NOREF;

	sb->L = lua_newstate(sandbox__alloc, sb);
	if (sb->L == NULL) {
		*cause = xasprintf("cannot create Lua state (memory limit "
		    "%zu bytes)", memory);
		free(sb);
		return NULL;
	}
	lua_pushcfunction(sb->L, sandbox__setup);
	lua_pushlightuserdata(sb->L, sb);
	if (lua_pcall(sb->L, 1, 0, 0) != LUA_OK) {
		*cause = xasprintf("cannot set up sandbox: %s",
		    sb->mem_hit ? "memory limit too small" :
		    lua_tostring(sb->L, -1));
		lua_close(sb->L);
		free(sb);
		return NULL;
	}
	sandbox__reset_limits(sb);
	return sb;
}

void
sandbox_free(struct sandbox *sb)
{
	if (sb == NULL)
		return;
	/* Finalizers run in lua_close(); give them nothing to run on. */
	sb->budget_spent = 1;
	lua_close(sb->L);
	free(sb);
}

lua_State *
sandbox_state(struct sandbox *sb)
{
	return sb->L;
}

void
sandbox_push_env(struct sandbox *sb)
{
	lua_rawgeti(sb->L, LUA_REGISTRYINDEX, sb->env_ref);
}

/* Display name of a chunk: "@path" and "=name" without their prefix. */
static const char *
sandbox__chunk_display(const char *chunkname)
{
	if (chunkname[0] == '@' || chunkname[0] == '=')
		return chunkname + 1;
	return chunkname;
}

/* Returns the compile error on the top of the stack (caller frees), with
 * the file named: syntax errors have "file:line: " already, but some (C
 * stack overflow in deeply nested code) have no place at all. */
static char *
sandbox__load_error(lua_State *L, const char *chunkname)
{
	const char	*name = sandbox__chunk_display(chunkname);
	const char	*msg = lua_tostring(L, -1);
	size_t		 len = strlen(name);

	if (msg == NULL)
		return xstrdup("not enough memory");
	if ((strncmp(msg, name, len) == 0 && msg[len] == ':') ||
	    strncmp(msg, "...", 3) == 0)
		return xstrdup(msg);
	return xasprintf("%s: %s", name, msg);
}

int
sandbox_load(struct sandbox *sb, const char *chunkname, const char *buf,
    size_t len, char **cause)
{
	lua_State	*L = sb->L;
	int		 status;

	if (len > 0 && buf[0] == LUA_SIGNATURE[0]) {
		*cause = xasprintf("%s: binary chunks are not allowed",
		    sandbox__chunk_display(chunkname));
		return -1;
	}
	sb->mem_hit = 0;
	sb->refused = 0;
	status = luaL_loadbufferx(L, buf, len, chunkname, "t");
	if (status != LUA_OK) {
		if (sb->mem_hit)
			*cause = xasprintf("%s: memory limit exceeded "
			    "(%zu bytes)", sandbox__chunk_display(chunkname),
			    sb->mem_limit);
		else
			*cause = sandbox__load_error(L, chunkname);
		lua_pop(L, 1);
		if (sb->mem_hit)
			lua_gc(L, LUA_GCCOLLECT);
		return -1;
	}
	sandbox_push_env(sb);
	if (lua_setupvalue(L, -2, 1) == NULL)
		lua_pop(L, 1);
	snprintf(sb->chunk, sizeof sb->chunk, "%s: ",
	    sandbox__chunk_display(chunkname));
	return 0;
}

char *
sandbox_read_file(const char *path, size_t *len, char **cause)
{
	struct stat	 st;
	char		*buf;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		*cause = xasprintf("%s: %s", path, S_ISREG(st.st_mode) ?
		    strerror(errno) : "not a regular file");
		close(fd);
		return NULL;
	}
	buf = xmalloc(SANDBOX_MAX_FILE + 1);
	*len = 0;
	while ((n = read(fd, buf + *len, SANDBOX_MAX_FILE + 1 - *len)) > 0)
		*len += (size_t)n;
	if (n == -1 || *len > SANDBOX_MAX_FILE) {
		*cause = n == -1 ? xasprintf("%s: %s", path, strerror(errno)) :
		    xasprintf("%s: file too large (limit %d bytes)", path,
		    SANDBOX_MAX_FILE);
		free(buf);
		close(fd);
		return NULL;
	}
	close(fd);
	buf[*len] = '\0';
	return buf;
}

int
sandbox_load_file(struct sandbox *sb, const char *path, char **cause)
{
	char	*buf, *chunkname;
	size_t	 len;
	int	 rc;

	if ((buf = sandbox_read_file(path, &len, cause)) == NULL)
		return -1;
	chunkname = xasprintf("@%s", path);
	rc = sandbox_load(sb, chunkname, buf, len, cause);
	free(chunkname);
	free(buf);
	return rc;
}

int
sandbox_call(struct sandbox *sb, int nargs, int nresults, char **cause)
{
	lua_State	*L = sb->L;
	int		 base = lua_gettop(L) - nargs;	/* the function */
	int		 status;

	if (!lua_checkstack(L, 1)) {
		*cause = xstrdup("Lua stack exhausted");
		lua_settop(L, base - 1);
		return -1;
	}
	sandbox__reset_limits(sb);
	lua_pushcfunction(L, sandbox__msgh);
	lua_insert(L, base);
	status = lua_pcall(L, nargs, nresults, base);
	lua_remove(L, base);
	if (status == LUA_OK && sb->limit == SANDBOX_LIMIT_NONE)
		return 0;

	if (status == LUA_OK)
		lua_settop(L, base - 1);	/* results of a bad call */
	*cause = sandbox__cause(sb, status);
	lua_settop(L, base - 1);
	if (sb->mem_hit || status == LUA_ERRMEM)
		lua_gc(L, LUA_GCCOLLECT);
	return -1;
}

const char *
sandbox_last_limit(struct sandbox *sb)
{
	switch (sb->limit) {
	case SANDBOX_LIMIT_MEMORY:
		return "memory";
	case SANDBOX_LIMIT_BUDGET:
		return "instructions";
	default:
		return NULL;
	}
}

void
sandbox_freeze_globals(struct sandbox *sb)
{
	sb->frozen = 1;
}

size_t
sandbox_memory(struct sandbox *sb)
{
	return sb->mem_used;
}
