/*
 * config_file.c: running the config file. It is Lua, run in a sandbox with
 * its _ENV swapped for a recording table (see config.c); the values are
 * checked against config_keys[] once the chunk has run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "config.h"
#include "config_int.h"
#include "sandbox.h"
#include "xmalloc.h"

/* The config file's own sandbox; the lua.* settings are for protocols. */
#define CONFIG_LUA_MEMORY	(8u << 20)
#define CONFIG_LUA_INSTRUCTIONS	1000000

/* State of one file load, shared with the Lua callbacks. */
struct config_file {
	const char	*path;
	struct config	*cfg;
	int		 values;	/* stack index: name -> value */
	int		 lines;		/* stack index: name -> line */
	char		*error;		/* the lowest-line error so far */
	int		 error_line;
};

struct config_file;
static int	config__raise(lua_State *, const struct config_file *,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
static void	config__file_error(struct config_file *, int, const char *,
		    ...) __attribute__((format(printf, 3, 4)));

/* Lua side. */

/* The line of the Lua code running now (skipping C frames such as rawset). */
static int
config__line(lua_State *L)
{
	lua_Debug	ar;
	int		level;

	for (level = 1; level < 8 && lua_getstack(L, level, &ar); level++) {
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
			return ar.currentline;
	}
	return 0;
}

/* Raises "path:line: message" from inside a callback; does not return. */
static int
config__raise(lua_State *L, const struct config_file *cf, const char *fmt,
    ...)
{
	char	msg[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	lua_pushfstring(L, "%s:%d: %s", cf->path, config__line(L), msg);
	return lua_error(L);
}

/* _ENV.__newindex: record a top-level assignment, or refuse the name. */
static int
config__newindex(lua_State *L)
{
	struct config_file	*cf = lua_touserdata(L, lua_upvalueindex(3));
	const char		*name;
	char			 hint[CONFIG_HINT_MAX];

	if (lua_type(L, 2) != LUA_TSTRING) {
		return config__raise(L, cf, "settings are named, not %s keys",
		    luaL_typename(L, 2));
	}
	name = lua_tostring(L, 2);
	if (config__top(name) == 0) {
		config__suggest(name, CONFIG_TOP, hint, sizeof hint);
		return config__raise(L, cf, "unknown setting '%.*s'%s%s%s",
		    CONFIG_NAME_MAX, name, *hint ? " (did you mean '" : "",
		    hint, *hint ? "'?)" : "");
	}
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, lua_upvalueindex(1));
	lua_pushvalue(L, 2);
	lua_pushinteger(L, config__line(L));
	lua_rawset(L, lua_upvalueindex(2));
	return 0;
}

/*
 * _ENV.__index: settings made so far, then the sandbox's globals (string,
 * math, ...). Anything else is an error rather than nil: in a config file it
 * is a typo or a reach for io/os, and both deserve a message.
 *
 * A section not set yet reads as a fresh, recorded table, so the dotted
 * style `lua.memory_mb = 64` works as well as `lua = { memory_mb = 64 }`.
 */
static int
config__index(lua_State *L)
{
	struct config_file	*cf = lua_touserdata(L, lua_upvalueindex(3));
	const char		*name;

	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	if (lua_type(L, 2) != LUA_TSTRING) {
		lua_pushnil(L);
		return 1;
	}
	name = lua_tostring(L, 2);
	switch (config__top(name)) {
	case 1:
		lua_pushnil(L);		/* a setting not made (yet) */
		return 1;
	case 2:
		lua_newtable(L);
		lua_pushvalue(L, 2);
		lua_pushvalue(L, -2);
		lua_rawset(L, lua_upvalueindex(1));
		lua_pushvalue(L, 2);
		lua_pushinteger(L, config__line(L));
		lua_rawset(L, lua_upvalueindex(4));
		return 1;
	}
	lua_pushvalue(L, 2);
	if (lua_gettable(L, lua_upvalueindex(2)) != LUA_TNIL)
		return 1;
	return config__raise(L, cf, "'%.*s' is not available in the config "
	    "file", CONFIG_NAME_MAX, name);
}

/* Keeps the error with the lowest line; `line` 0 sorts last. */
static void
config__file_error(struct config_file *cf, int line, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	if (cf->error != NULL) {
		if (line == 0)
			return;		/* a known line beats an unknown one */
		if (cf->error_line != 0 && line >= cf->error_line)
			return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	free(cf->error);
	cf->error = xasprintf("%s:%d: %s", cf->path, line, msg);
	cf->error_line = line;
}

/* Checks the Lua value at `idx` against `key` and stores it. */
static void
config__apply_lua(lua_State *L, struct config_file *cf,
    const struct config_key *key, int idx, int line)
{
	struct config_value	 v;
	enum config_kind	 kind = config_types[key->type].kind;
	char			*why = NULL;
	size_t			 len;
	int			 ok = 0, ltype = lua_type(L, idx);

	memset(&v, 0, sizeof v);
	v.kind = kind;
	switch (kind) {
	case CONFIG_KSTRING:
		if (ltype == LUA_TSTRING) {
			v.s = lua_tolstring(L, idx, &len);
			ok = strlen(v.s) == len;
		}
		break;
	case CONFIG_KINTEGER:
		/* 32.0 is fine, 32.5 and "32" are not. */
		if (ltype == LUA_TNUMBER)
			v.i = lua_tointegerx(L, idx, &ok);
		break;
	case CONFIG_KBOOLEAN:
		if ((ok = ltype == LUA_TBOOLEAN))
			v.b = lua_toboolean(L, idx);
		break;
	}
	if (!ok && kind == CONFIG_KINTEGER && ltype == LUA_TNUMBER) {
		config__file_error(cf, line, "%s: expected %s, got %g",
		    key->name, config_types[key->type].noun,
		    (double)lua_tonumber(L, idx));
		return;
	}
	if (!ok) {
		config__file_error(cf, line, "%s: expected %s, got %s",
		    key->name, config_types[key->type].noun,
		    ltype == LUA_TSTRING && kind == CONFIG_KSTRING ?
		    "a string with a NUL byte" :
		    lua_typename(L, ltype));
		return;
	}
	if (config__apply(cf->cfg, key, &v, &why) != 0) {
		config__file_error(cf, line, "%s: %s", key->name, why);
		free(why);
	}
}

/* Walks one section table, value at the top of the stack. */
static void
config__walk_section(lua_State *L, struct config_file *cf,
    const char *section, int line)
{
	const struct config_key	*key;
	char			 full[CONFIG_NAME_MAX * 2 + 2];
	char			 hint[CONFIG_HINT_MAX];
	int			 t = lua_gettop(L);

	if (!lua_istable(L, t)) {
		config__file_error(cf, line, "%s: expected a table, got %s",
		    section, luaL_typename(L, t));
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			config__file_error(cf, line, "%s: settings are named, "
			    "not %s keys", section, luaL_typename(L, -2));
		} else {
			snprintf(full, sizeof full, "%s.%.*s", section,
			    CONFIG_NAME_MAX, lua_tostring(L, -2));
			if ((key = config__find(full)) != NULL)
				config__apply_lua(L, cf, key, -1, line);
			else {
				config__suggest(full, CONFIG_DOTTED, hint,
				    sizeof hint);
				config__file_error(cf, line,
				    "%s: unknown setting%s%s%s", full,
				    *hint ? " (did you mean '" : "", hint,
				    *hint ? "'?)" : "");
			}
		}
		lua_pop(L, 1);
	}
}

static int
config__line_of(lua_State *L, struct config_file *cf, const char *name)
{
	int	line;

	lua_getfield(L, cf->lines, name);
	line = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	return line;
}

/*
 * Applies what the chunk recorded, in schema order. Run through lua_pcall()
 * so that running out of the sandbox's memory here is an error, not a panic.
 */
static int
config__walk(lua_State *L)
{
	struct config_file	*cf = lua_touserdata(L, 1);
	const struct config_key	*key;
	char			 section[CONFIG_NAME_MAX + 1];
	const char		*dot;
	size_t			 i, n;

	/* Stack indices are per call frame: the tables came as arguments. */
	cf->values = 2;
	cf->lines = 3;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		key = &config_keys[i];
		if ((dot = strchr(key->name, '.')) == NULL) {
			if (lua_getfield(L, cf->values, key->name) != LUA_TNIL)
				config__apply_lua(L, cf, key, -1,
				    config__line_of(L, cf, key->name));
			lua_pop(L, 1);
			continue;
		}
		/* A section: walk it once, at its first row. */
		n = (size_t)(dot - key->name);
		if (i > 0 && strncmp(config_keys[i - 1].name, key->name, n) ==
		    0 && config_keys[i - 1].name[n] == '.')
			continue;
		snprintf(section, sizeof section, "%.*s", (int)n, key->name);
		if (lua_getfield(L, cf->values, section) != LUA_TNIL)
			config__walk_section(L, cf, section,
			    config__line_of(L, cf, section));
		lua_pop(L, 1);
	}
	return 0;
}

/*
 * Pushes the recording _ENV for the chunk: an empty table whose metatable
 * routes reads and writes to the callbacks above. __metatable hides it from
 * getmetatable() and stops setmetatable() from taking the recorder away.
 */
static void
config__push_env(struct sandbox *sb, struct config_file *cf)
{
	lua_State	*L = sandbox_state(sb);

	lua_newtable(L);			/* the _ENV */
	lua_newtable(L);			/* its metatable */

	lua_pushvalue(L, cf->values);
	lua_pushvalue(L, cf->lines);
	lua_pushlightuserdata(L, cf);
	lua_pushcclosure(L, config__newindex, 3);
	lua_setfield(L, -2, "__newindex");

	lua_pushvalue(L, cf->values);
	sandbox_push_env(sb);
	lua_pushlightuserdata(L, cf);
	lua_pushvalue(L, cf->lines);
	lua_pushcclosure(L, config__index, 4);
	lua_setfield(L, -2, "__index");

	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
}

/*
 * Puts the file's name in front of a sandbox error that lacks one (running
 * out of memory has no line to blame).
 */
static void
config__name_file(const char *path, char **cause)
{
	char	*named;

	if (strncmp(*cause, path, strlen(path)) == 0)
		return;
	named = xasprintf("%s: %s", path, *cause);
	free(*cause);
	*cause = named;
}

int
config__file(struct config *cfg, const char *path, char **cause)
{
	struct config_file	 cf;
	struct sandbox		*sb;
	lua_State		*L;
	int			 fn, rc = -1;

	memset(&cf, 0, sizeof cf);
	cf.path = path;
	cf.cfg = cfg;

	sb = sandbox_new(CONFIG_LUA_MEMORY, CONFIG_LUA_INSTRUCTIONS, cause);
	if (sb == NULL)
		return -1;
	L = sandbox_state(sb);

	lua_newtable(L);
	cf.values = lua_gettop(L);
	lua_newtable(L);
	cf.lines = lua_gettop(L);

	if (sandbox_load_file(sb, path, cause) != 0)
		goto out;
	fn = lua_gettop(L);
	config__push_env(sb, &cf);
	if (lua_setupvalue(L, fn, 1) == NULL) {
		/* A chunk always has _ENV as its first upvalue. */
		lua_pop(L, 1);
		*cause = xasprintf("%s: cannot set the chunk's environment",
		    path);
		goto out;
	}
	if (sandbox_call(sb, 0, 0, cause) != 0) {
		config__name_file(path, cause);
		goto out;
	}

	lua_pushcfunction(L, config__walk);
	lua_pushlightuserdata(L, &cf);
	lua_pushvalue(L, cf.values);
	lua_pushvalue(L, cf.lines);
	if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
		*cause = xasprintf("%s: %s", path, lua_type(L, -1) ==
		    LUA_TSTRING ? lua_tostring(L, -1) : "error reading values");
		goto out;
	}
	if (cf.error != NULL) {
		*cause = cf.error;
		cf.error = NULL;
		goto out;
	}
	rc = 0;

out:
	free(cf.error);
	sandbox_free(sb);
	return rc;
}
