/*
 * protocol_lib.c: require(), the way a protocol shares code with others.
 *
 * A protocol file may call require("name") while it loads (at file level,
 * or in a helper it requires) to run the helper file lib/name.lua beside
 * it, in the same sandbox, and get what that file returns. Two protocols
 * can so share their rules and differ only in what they pass them.
 *
 * Why only while loading: a handler must be deterministic and must never
 * touch the disk, and the engine must know every text a version runs. The
 * helpers a version required are kept with it (p->helpers) and stored with
 * its source (engine_ver.c), so a patient who stays on an older version
 * runs the helpers as they were, and a helper changed under the same
 * `version` is refused like a changed protocol file.
 *
 * Loaded from the store (an older version), require() reads only the
 * helpers stored with it, never the disk.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "protocol.h"
#include "protocol_int.h"
#include "sandbox.h"
#include "xmalloc.h"

/* At most this many helpers per protocol (each up to 1 MiB). */
#define PROTO_LIB_MAX	32

/* Longest helper name, as for protocol ids. */
#define PROTO_LIB_NAME_MAX	63

/* Registry key of the table of helpers run so far: name -> result, or
 * this key's address (a light userdata) while the helper is still running,
 * so a require of it meanwhile is a cycle. */
static const char proto_lib_loaded_key;

/*
 * The state of require() for one protocol while it loads; p->lib points
 * here only then, so a handler's require() finds NULL and refuses.
 */
struct proto_lib {
	struct sandbox		*sb;
	struct protocol		*p;
	char			*dir;		/* "<protocol dir>/lib" */
	const struct proto_src	*ps;		/* suffix, disk or stored */
	char			*cause;		/* the error being raised */
};

/* Finds `name` among the stored helpers; NULL if it was not stored. */
static const struct proto_helper *
proto_lib_stored(const struct proto_lib *lib, const char *name)
{
	int	i;

	for (i = 0; i < lib->ps->nstored; i++)
		if (strcmp(lib->ps->stored[i].name, name) == 0)
			return &lib->ps->stored[i];
	return NULL;
}

/* Appends a helper to p->helpers (taking `source`). */
static struct proto_helper *
proto_lib_add(struct proto_lib *lib, const char *name, char *path,
    char *source, size_t len)
{
	struct protocol		*p = lib->p;
	struct proto_helper	*h;

	p->helpers = xrealloc(p->helpers, (size_t)(p->nhelpers + 1) *
	    sizeof *p->helpers);
	h = &p->helpers[p->nhelpers++];
	h->name = xstrdup(name);
	h->path = path;
	h->source = source;
	h->len = len;
	return h;
}

/* Reads helper `name` into p->helpers: NULL with *cause if it cannot. */
static struct proto_helper *
proto_lib_read(struct proto_lib *lib, const char *name, char **cause)
{
	const struct proto_helper	*st;
	char				*path, *src;
	size_t				 len;

	path = xasprintf("%s/%s.lua%s", lib->dir, name, lib->ps->suffix);
	if (lib->ps->disk) {
		if ((src = sandbox_read_file(path, &len, cause)) == NULL) {
			free(path);
			return NULL;
		}
		return proto_lib_add(lib, name, path, src, len);
	}
	if ((st = proto_lib_stored(lib, name)) == NULL) {
		*cause = xasprintf("%s: not stored with this version", path);
		free(path);
		return NULL;
	}
	src = xmalloc(st->len + 1);
	memcpy(src, st->source, st->len);
	src[st->len] = '\0';
	return proto_lib_add(lib, name, path, src, st->len);
}

/* Compiles and runs a helper read into h; leaves its one result. */
static void
proto_lib_run(lua_State *L, struct proto_lib *lib, struct proto_helper *h)
{
	char	*chunk, *cause = NULL;
	int	 rc;

	chunk = xasprintf("@%s", h->path);
	rc = sandbox_load(lib->sb, chunk, h->source, h->len, &cause);
	free(chunk);
	/* Memory errors later name the protocol, not its last helper. */
	sandbox_name(lib->sb, lib->p->path);
	if (rc != 0) {
		/* Freed by proto_lib_close(): pushing it may raise. */
		free(lib->cause);
		lib->cause = cause;
		lua_pushstring(L, cause);
		lua_error(L);
	}
	/* Inside the protocol's own budgeted call: its budget covers this. */
	lua_call(L, 0, 1);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	}
}

/* Raises "file:line: require: <cause>"; proto_lib_close() frees cause,
 * as pushing it may raise a memory error first. */
static int
proto_lib_fail(lua_State *L, struct proto_lib *lib, char *cause)
{
	free(lib->cause);
	lib->cause = cause;
	return luaL_error(L, "require: %s", cause);
}

/* require(name): the value helper lib/name.lua returned (run once). */
static int
proto_lib_require(lua_State *L)
{
	struct protocol		*p = lua_touserdata(L, lua_upvalueindex(1));
	struct proto_lib	*lib = p->lib;
	struct proto_helper	*h;
	const char		*name;
	char			*cause = NULL;

	/* A string only: a number would be turned into a name. */
	luaL_checktype(L, 1, LUA_TSTRING);
	name = lua_tostring(L, 1);
	if (lib == NULL)
		return luaL_error(L, "require is only allowed while the "
		    "protocol loads (call it at file level, not in a handler)");
	if (!proto_is_name(name, PROTO_LIB_NAME_MAX))
		return luaL_error(L, "require: '%s' is not a helper name "
		    "(a-z, 0-9 and _, at most %d)", name, PROTO_LIB_NAME_MAX);
	lua_settop(L, 1);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &proto_lib_loaded_key);	/* 2 */
	lua_pushvalue(L, 1);
	lua_rawget(L, 2);						/* 3 */
	if (lua_touserdata(L, 3) == &proto_lib_loaded_key)
		return luaL_error(L, "require: helper '%s' requires itself "
		    "(a cycle)", name);
	if (!lua_isnil(L, 3))
		return 1;
	lua_pop(L, 1);
	if (p->nhelpers >= PROTO_LIB_MAX)
		return luaL_error(L, "require: more than %d helpers",
		    PROTO_LIB_MAX);
	/* Running: a require of it meanwhile is a cycle. */
	lua_pushvalue(L, 1);
	lua_pushlightuserdata(L, (void *)&proto_lib_loaded_key);
	lua_rawset(L, 2);
	if ((h = proto_lib_read(lib, name, &cause)) == NULL)
		return proto_lib_fail(L, lib, cause);
	proto_lib_run(L, lib, h);					/* 3 */
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 3);
	lua_rawset(L, 2);
	return 1;
}

/* In a protected call: the table of helpers and the global `require`. */
static int
proto_lib_setup(lua_State *L)
{
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &proto_lib_loaded_key);
	lua_pushvalue(L, 2);			/* env */
	lua_pushvalue(L, 1);			/* the protocol */
	lua_pushcclosure(L, proto_lib_require, 1);
	lua_setfield(L, -2, "require");
	return 0;
}

char *
proto_lib_dir(const char *path)
{
	const char	*slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup("lib");
	return xasprintf("%.*s/lib", (int)(slash - path), path);
}

int
proto_lib_open(struct protocol *p, const struct proto_src *ps, char **cause)
{
	struct proto_lib	*lib = xcalloc(1, sizeof *lib);
	lua_State		*L = sandbox_state(p->sb);

	lib->sb = p->sb;
	lib->p = p;
	lib->dir = proto_lib_dir(ps->path);
	lib->ps = ps;
	p->lib = lib;
	lua_pushcfunction(L, proto_lib_setup);
	lua_pushlightuserdata(L, p);
	sandbox_push_env(p->sb);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		lua_pop(L, 1);
		*cause = xasprintf("%s: not enough memory to start", p->path);
		proto_lib_close(p);
		return -1;
	}
	return 0;
}

void
proto_lib_close(struct protocol *p)
{
	lua_State	*L;

	if (p->lib == NULL)
		return;
	/* What the helpers returned lives on in the protocol's upvalues. */
	L = sandbox_state(p->sb);
	lua_pushnil(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &proto_lib_loaded_key);
	free(p->lib->dir);
	free(p->lib->cause);
	free(p->lib);
	p->lib = NULL;
}
