/*
 * sandbox_limit.c: the sandbox's limits: the memory cap (its lua_Alloc,
 * sandbox__alloc) and the instruction budget (the count hook, and
 * sandbox__charge for work done in C).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "sandbox.h"
#include "sandbox_int.h"

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
void *
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

struct sandbox *
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
void
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
int
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
void
sandbox__charge(lua_State *L, int64_t n)
{
	struct sandbox	*sb = sandbox__from(L);

	if (!sb->budget_spent && n < sb->budget_left) {
		sb->budget_left -= n;
		return;
	}
	sandbox__spent(L, sb, 1);
}

void
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
