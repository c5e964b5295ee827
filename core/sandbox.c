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
 *   globals  the real table behind env, filled from the allow lists
 *          (sandbox_env.c).
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
 *
 * This file holds creating a sandbox, loading and calling chunks and their
 * errors; sandbox_env.c builds the state (allow lists, proxies),
 * sandbox_limit.c the memory cap and the budget, sandbox_wrap.c and
 * sandbox_pattern.c the wrapped library functions.
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
#include "sandbox_int.h"
#include "xmalloc.h"

/* Instructions between two firings of the count hook. */
#define SANDBOX_HOOK_COUNT	1000

/* Largest source file sandbox_load_file() accepts. */
#define SANDBOX_MAX_FILE	(1024 * 1024)

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

void
sandbox_name(struct sandbox *sb, const char *name)
{
	snprintf(sb->chunk, sizeof sb->chunk, "%s: ", name);
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
