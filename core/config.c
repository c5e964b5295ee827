/*
 * config.c: defaults, then the config file, then STRIGIL_* variables.
 *
 * Every setting is one row of config_keys[]: its dotted name, its type, where
 * it lives in struct config, the parser that stores it, and its default
 * written as an environment value would be. Defaults therefore pass through
 * the same parser as everything else and cannot drift out of range.
 *
 * The file is Lua, run in a sandbox with its _ENV swapped for an empty
 * recording table. Every top-level assignment reaches our __newindex, which
 * notes the value and the line and refuses unknown names on the spot (so the
 * error names the line of the typo). Types are checked after the chunk ran,
 * when sections are complete tables, and the error with the lowest line wins,
 * so the operator is sent to the first mistake in the file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lua.h>

#include "config.h"
#include "log.h"
#include "sandbox.h"
#include "tz.h"
#include "xmalloc.h"

extern char **environ;

/* The config file's own sandbox; the lua.* settings are for protocols. */
#define CONFIG_LUA_MEMORY	(8u << 20)
#define CONFIG_LUA_INSTRUCTIONS	1000000

#define CONFIG_NAME_MAX		64	/* longest dotted name we look at */
#define CONFIG_SHOW_MAX		60	/* bytes of a bad value echoed back */
#define CONFIG_HINT_MAX		(CONFIG_NAME_MAX + 16)	/* a suggested name */

/*
 * STRIGIL_X_FILE names a file holding the value of STRIGIL_X (Docker
 * secrets). Its contents are never echoed in an error: they may be secret.
 */
#define CONFIG_FILE_SUFFIX	"_FILE"
#define CONFIG_FILE_SUFFIX_LEN	(sizeof CONFIG_FILE_SUFFIX - 1)
#define CONFIG_FILE_MAX		(64u << 10)	/* bytes in such a file */

enum config_type {
	CONFIG_STRING,
	CONFIG_INTEGER,
	CONFIG_BOOLEAN,
	CONFIG_TIME,		/* "HH:MM", stored as a minute of day */
	CONFIG_ZONE,		/* IANA name, checked with tz_valid() */
	CONFIG_LEVEL,		/* log level name, stored as enum log_level */
};

/* What a value is before a row's parser gives it meaning. */
enum config_kind { CONFIG_KSTRING, CONFIG_KINTEGER, CONFIG_KBOOLEAN };

struct config_value {
	enum config_kind	 kind;
	const char		*s;
	int64_t			 i;
	int			 b;
};

struct config_key;
typedef int (*config_parse_fn)(void *, const struct config_key *,
    const struct config_value *, char **);

struct config_key {
	const char		*name;		/* dotted: "quiet_hours.from" */
	enum config_type	 type;
	size_t			 offset;	/* of the field in struct config */
	config_parse_fn		 parse;
	const char		*def;		/* default, as env text */
	int64_t			 min, max;	/* CONFIG_INTEGER only */
};

static int config__parse_string(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_username(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_optional(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_zone(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_time(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_level(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_boolean(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_megabytes(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_int64(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_url(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_room(void *, const struct config_key *,
    const struct config_value *, char **);
static int config__parse_inviters(void *, const struct config_key *,
    const struct config_value *, char **);

struct config_file;
static int	config__raise(lua_State *, const struct config_file *,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
static void	config__file_error(struct config_file *, int, const char *,
		    ...) __attribute__((format(printf, 3, 4)));

/* The rows of one section stay together: config__walk() relies on it. */
#define F(f)	offsetof(struct config, f)
static const struct config_key config_keys[] = {
	{ "database", CONFIG_STRING, F(database), config__parse_string,
	  "data/strigil.db", 0, 0 },
	{ "protocols", CONFIG_STRING, F(protocols), config__parse_string,
	  "scripts/protocols", 0, 0 },
	{ "default_protocol", CONFIG_STRING, F(default_protocol),
	  config__parse_string, "iastm_home", 0, 0 },
	{ "lang_dir", CONFIG_STRING, F(lang_dir), config__parse_string,
	  "scripts/lang", 0, 0 },
	{ "language", CONFIG_STRING, F(language), config__parse_string,
	  "en", 0, 0 },
	{ "timezone", CONFIG_ZONE, F(timezone), config__parse_zone,
	  "UTC", 0, 0 },
	{ "reminder_time", CONFIG_TIME, F(reminder_time), config__parse_time,
	  "18:00", 0, 0 },
	{ "quiet_hours.from", CONFIG_TIME, F(quiet_from), config__parse_time,
	  "21:00", 0, 0 },
	{ "quiet_hours.to", CONFIG_TIME, F(quiet_to), config__parse_time,
	  "08:00", 0, 0 },
	/* Below 1 MiB a Lua state with its libraries barely starts. */
	{ "lua.memory_mb", CONFIG_INTEGER, F(lua_memory),
	  config__parse_megabytes, "32", 1, 4096 },
	/* Below a thousand no handler could do anything useful. */
	{ "lua.instructions", CONFIG_INTEGER, F(lua_instructions),
	  config__parse_int64, "10000000", 1000, INT64_C(1000000000000) },
	{ "log_level", CONFIG_LEVEL, F(log_level), config__parse_level,
	  "info", 0, 0 },
	{ "console", CONFIG_BOOLEAN, F(console), config__parse_boolean,
	  "true", 0, 0 },
	/* Test only: `run` on a virtual clock that POST /test/wait moves. */
	{ "test_clock", CONFIG_BOOLEAN, F(test_clock), config__parse_boolean,
	  "false", 0, 0 },
	{ "http.listen", CONFIG_STRING, F(http_listen), config__parse_string,
	  "127.0.0.1", 0, 0 },
	/* 0 picks a free port (tests); the log says which. */
	{ "http.port", CONFIG_INTEGER, F(http_port), config__parse_int64,
	  "8080", 0, 65535 },
	{ "http.enabled", CONFIG_BOOLEAN, F(http_enabled),
	  config__parse_boolean, "true", 0, 0 },
	/* The token is a secret: it ends up in request URLs, never in logs. */
	{ "telegram.token", CONFIG_STRING, F(tg_token), config__parse_optional,
	  "", 0, 0 },
	{ "telegram.api_url", CONFIG_STRING, F(tg_api_url),
	  config__parse_string, "https://api.telegram.org", 0, 0 },
	/* 0 would be short polling: a request after request, all day. */
	{ "telegram.poll_timeout", CONFIG_INTEGER, F(tg_poll_timeout),
	  config__parse_int64, "50", 1, 600 },
	{ "telegram.clinician_chat", CONFIG_STRING, F(tg_clinician_chat),
	  config__parse_optional, "", 0, 0 },
	{ "telegram.rate_per_chat", CONFIG_INTEGER, F(tg_rate_per_chat),
	  config__parse_int64, "1", 1, 1000 },
	{ "telegram.rate_global", CONFIG_INTEGER, F(tg_rate_global),
	  config__parse_int64, "30", 1, 10000 },
	/* The bot's username: `strigil invite` prints a t.me link with it. */
	{ "telegram.username", CONFIG_STRING, F(tg_username),
	  config__parse_username, "", 0, 0 },
	/* Matrix: on when homeserver is set. The password and the token
	 * are secrets (STRIGIL_MATRIX_PASSWORD_FILE, ..._ACCESS_TOKEN_FILE). */
	{ "matrix.homeserver", CONFIG_STRING, F(mx_homeserver),
	  config__parse_url, "", 0, 0 },
	{ "matrix.user", CONFIG_STRING, F(mx_user), config__parse_optional,
	  "", 0, 0 },
	{ "matrix.password", CONFIG_STRING, F(mx_password),
	  config__parse_optional, "", 0, 0 },
	{ "matrix.access_token", CONFIG_STRING, F(mx_access_token),
	  config__parse_optional, "", 0, 0 },
	{ "matrix.clinician_room", CONFIG_STRING, F(mx_clinician_room),
	  config__parse_room, "", 0, 0 },
	{ "matrix.allowed_inviters", CONFIG_STRING, F(mx_allowed_inviters),
	  config__parse_inviters, "", 0, 0 },
	{ "matrix.poll_timeout", CONFIG_INTEGER, F(mx_poll_timeout),
	  config__parse_int64, "30", 1, 600 },
	/* Set: webhook mode (checked with the secret by the adapter). */
	{ "telegram.webhook_url", CONFIG_STRING, F(tg_webhook_url),
	  config__parse_optional, "", 0, 0 },
	/* A secret: never logged; STRIGIL_TELEGRAM_WEBHOOK_SECRET_FILE. */
	{ "telegram.webhook_secret", CONFIG_STRING, F(tg_webhook_secret),
	  config__parse_optional, "", 0, 0 },
	/* "HH:MM" in `timezone`, or "" for no daily summary. */
	{ "telegram.summary_time", CONFIG_STRING, F(tg_summary_time),
	  config__parse_optional, "", 0, 0 },
	{ "telegram.private_reminders", CONFIG_BOOLEAN,
	  F(tg_private_reminders), config__parse_boolean, "false", 0, 0 },
};
#undef F
#define CONFIG_NKEYS	(sizeof config_keys / sizeof config_keys[0])

/* STRIGIL_* variables that are not settings but are read by someone else. */
static const char *const config_env_ignored[] = {
	"STRIGIL_CONFIG",	/* the config file's path, read by main.c */
};

/* How each type is named in "expected ..." and what kind it arrives as. */
static const struct {
	const char		*noun;
	enum config_kind	 kind;
} config_types[] = {
	[CONFIG_STRING] = { "a string", CONFIG_KSTRING },
	[CONFIG_INTEGER] = { "an integer", CONFIG_KINTEGER },
	[CONFIG_BOOLEAN] = { "a boolean", CONFIG_KBOOLEAN },
	[CONFIG_TIME] = { "a time \"HH:MM\"", CONFIG_KSTRING },
	[CONFIG_ZONE] = { "a time zone name", CONFIG_KSTRING },
	[CONFIG_LEVEL] = { "a log level", CONFIG_KSTRING },
};

/* State of one file load, shared with the Lua callbacks. */
struct config_file {
	const char	*path;
	struct config	*cfg;
	int		 values;	/* stack index: name -> value */
	int		 lines;		/* stack index: name -> line */
	char		*error;		/* the lowest-line error so far */
	int		 error_line;
};

/* Parsers. Each stores into `field`, or returns -1 with *why (caller frees). */

static int
config__parse_string(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	char	**sp = field;

	(void)key;
	if (*v->s == '\0') {
		*why = xstrdup("must not be empty");
		return -1;
	}
	free(*sp);
	*sp = xstrdup(v->s);
	return 0;
}

/* A string that may be empty: "" turns a feature off (telegram.token). */
/* A Telegram bot username, with or without its '@': 5 to 32 of
 * [A-Za-z0-9_] (it goes into a link, so nothing else may pass). */
static int
config__parse_username(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	const char	*u = v->s + (v->s[0] == '@');
	size_t		 n = strlen(u);

	if (*v->s != '\0' && (n < 5 || n > 32 ||
	    strspn(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_") != n)) {
		*why = xstrdup("must be a bot username: 5 to 32 letters, "
		    "digits or _");
		return -1;
	}
	return config__parse_optional(field, key, v, why);
}

static int
config__parse_optional(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	char	**sp = field;

	(void)key;
	(void)why;
	free(*sp);
	*sp = xstrdup(v->s);
	return 0;
}

static int
config__parse_zone(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (!tz_valid(v->s)) {
		*why = xasprintf("unknown time zone \"%.*s\"", CONFIG_SHOW_MAX,
		    v->s);
		return -1;
	}
	return config__parse_string(field, key, v, why);
}

static int
config__parse_time(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	int	m;

	(void)key;
	if ((m = tz_parse_hhmm(v->s)) < 0) {
		*why = xasprintf("expected a time \"HH:MM\", got \"%.*s\"",
		    CONFIG_SHOW_MAX, v->s);
		return -1;
	}
	*(int *)field = m;
	return 0;
}

static int
config__parse_level(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	int	level;

	(void)key;
	if ((level = log_level_parse(v->s)) < 0) {
		*why = xasprintf("expected debug, info, warn or error, "
		    "got \"%.*s\"", CONFIG_SHOW_MAX, v->s);
		return -1;
	}
	*(int *)field = level;
	return 0;
}

static int
config__parse_boolean(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	(void)key;
	(void)why;
	*(int *)field = v->b;
	return 0;
}

static int
config__range(const struct config_key *key, int64_t i, char **why)
{
	if (i < key->min || i > key->max) {
		*why = xasprintf("must be between %" PRId64 " and %" PRId64
		    ", got %" PRId64, key->min, key->max, i);
		return -1;
	}
	return 0;
}

static int
config__parse_megabytes(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (config__range(key, v->i, why) != 0)
		return -1;
	*(size_t *)field = (size_t)v->i << 20;
	return 0;
}

static int
config__parse_int64(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (config__range(key, v->i, why) != 0)
		return -1;
	*(int64_t *)field = v->i;
	return 0;
}

/* An http(s) base URL, or "" (the feature is off). */
static int
config__parse_url(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (*v->s != '\0' && strncmp(v->s, "http://", 7) != 0 &&
	    strncmp(v->s, "https://", 8) != 0) {
		*why = xasprintf("expected an http:// or https:// URL, got "
		    "\"%.*s\"", CONFIG_SHOW_MAX, v->s);
		return -1;
	}
	return config__parse_optional(field, key, v, why);
}

/* A Matrix room id "!opaque:server", or "". */
static int
config__parse_room(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (*v->s != '\0' && (v->s[0] != '!' || strchr(v->s, ':') == NULL)) {
		*why = xasprintf("expected a room id such as "
		    "\"!abc:example.org\", got \"%.*s\"", CONFIG_SHOW_MAX,
		    v->s);
		return -1;
	}
	return config__parse_optional(field, key, v, why);
}

/*
 * Who may invite the Matrix bot: user ids ("@dr:clinic.org") and servers
 * (":clinic.org"), separated by commas or spaces. A string rather than a
 * table, so the environment variable can say the same thing.
 */
static int
config__parse_inviters(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	const char	*p = v->s, *end;
	size_t		 n;

	for (;;) {
		p += strspn(p, ", \t");
		if (*p == '\0')
			break;
		n = strcspn(p, ", \t");
		end = memchr(p, ':', n);
		if ((p[0] != '@' && p[0] != ':') || end == NULL ||
		    end + 1 == p + n || (p[0] == '@' && end == p + 1)) {
			*why = xasprintf("expected user ids (\"@dr:example.org"
			    "\") or servers (\":example.org\") separated by "
			    "commas, got \"%.*s\"", (int)(n < CONFIG_SHOW_MAX ?
			    n : CONFIG_SHOW_MAX), p);
			return -1;
		}
		p += n;
	}
	return config__parse_optional(field, key, v, why);
}

static int
config__apply(struct config *cfg, const struct config_key *key,
    const struct config_value *v, char **why)
{
	return key->parse((char *)cfg + key->offset, key, v, why);
}

/*
 * Reads text (an environment value, or a row's default) as the kind the row
 * wants. 0, or -1 with *why set (caller frees).
 */
static int
config__from_text(const struct config_key *key, const char *text,
    struct config_value *v, char **why)
{
	static const char *const yes[] = { "true", "1", "yes" };
	static const char *const no[] = { "false", "0", "no" };
	const char	*p;
	char		*end;
	long long	 ll;
	size_t		 i;

	memset(v, 0, sizeof *v);
	v->kind = config_types[key->type].kind;
	v->s = text;
	switch (v->kind) {
	case CONFIG_KSTRING:
		return 0;
	case CONFIG_KINTEGER:
		/* strtoll() alone would take " 12", "+12" and "12abc". */
		p = text[0] == '-' ? text + 1 : text;
		if (*p < '0' || *p > '9')
			break;
		errno = 0;
		ll = strtoll(text, &end, 10);
		if (errno != 0 || *end != '\0')
			break;
		v->i = ll;
		return 0;
	case CONFIG_KBOOLEAN:
		for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
			if (strcasecmp(text, yes[i]) == 0) {
				v->b = 1;
				return 0;
			}
			if (strcasecmp(text, no[i]) == 0) {
				v->b = 0;
				return 0;
			}
		}
		*why = xasprintf("expected true/false/1/0/yes/no, got \"%.*s\"",
		    CONFIG_SHOW_MAX, text);
		return -1;
	}
	*why = xasprintf("expected %s, got \"%.*s\"",
	    config_types[key->type].noun, CONFIG_SHOW_MAX, text);
	return -1;
}

static const struct config_key *
config__find(const char *name)
{
	size_t	i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

/*
 * 1 if `name` is a top-level setting, 2 if a section, else 0. A dotted name
 * is neither: _ENV["lua.memory_mb"] would otherwise be recorded and ignored.
 */
static int
config__top(const char *name)
{
	size_t	i, n = strlen(name);

	if (strchr(name, '.') != NULL)
		return 0;
	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].name, name) == 0)
			return 1;
		if (strncmp(config_keys[i].name, name, n) == 0 &&
		    config_keys[i].name[n] == '.')
			return 2;
	}
	return 0;
}

/* The row's variable: STRIGIL_ + the dotted name upper-cased, '.' as '_'. */
static void
config__env_name(const struct config_key *key, char *buf, size_t len)
{
	size_t	i;
	int	n;

	n = snprintf(buf, len, "STRIGIL_%s", key->name);
	for (i = 0; i < (size_t)n && buf[i] != '\0'; i++) {
		if (buf[i] == '.')
			buf[i] = '_';
		else if (buf[i] >= 'a' && buf[i] <= 'z')
			buf[i] = (char)(buf[i] - 'a' + 'A');
	}
}

/* Edit distance, for "did you mean"; names longer than the cap never match. */
static size_t
config__distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b), i, j, prev, cur, up;
	size_t	row[CONFIG_NAME_MAX + 8];

	if (la > CONFIG_NAME_MAX || lb > CONFIG_NAME_MAX)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			cur = prev + (a[i - 1] != b[j - 1]);
			if (up + 1 < cur)
				cur = up + 1;
			if (row[j - 1] + 1 < cur)
				cur = row[j - 1] + 1;
			row[j] = cur;
			prev = up;
		}
	}
	return row[lb];
}

enum config_space { CONFIG_TOP, CONFIG_DOTTED, CONFIG_ENV };

/*
 * Writes into buf the known name closest to `name` in the given name space,
 * or "" if none is close enough to be a likely typo.
 */
static void
config__suggest(const char *name, enum config_space space, char *buf,
    size_t len)
{
	char	 cand[CONFIG_HINT_MAX];
	size_t	 i, d, best = 3;	/* at most two edits */
	char	*dot;

	buf[0] = '\0';
	for (i = 0; i < CONFIG_NKEYS; i++) {
		switch (space) {
		case CONFIG_TOP:
			snprintf(cand, sizeof cand, "%s", config_keys[i].name);
			if ((dot = strchr(cand, '.')) != NULL)
				*dot = '\0';
			break;
		case CONFIG_DOTTED:
			snprintf(cand, sizeof cand, "%s", config_keys[i].name);
			break;
		case CONFIG_ENV:
			config__env_name(&config_keys[i], cand, sizeof cand);
			break;
		}
		d = config__distance(name, cand);
		if (d < best && d < strlen(name)) {
			best = d;
			snprintf(buf, len, "%s", cand);
		}
	}
}

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

static int
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

static int
config__env_ignored(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < sizeof config_env_ignored /
	    sizeof config_env_ignored[0]; i++) {
		if (strlen(config_env_ignored[i]) == len &&
		    strncmp(config_env_ignored[i], name, len) == 0)
			return 1;
	}
	return 0;
}

/* 1 if `var` (len bytes) is `name` or `name` + CONFIG_FILE_SUFFIX. */
static int
config__env_is(const char *name, const char *var, size_t len)
{
	size_t	n = strlen(name);

	if (strncmp(name, var, n) != 0)
		return 0;
	return n == len || (n + CONFIG_FILE_SUFFIX_LEN == len &&
	    strncmp(var + n, CONFIG_FILE_SUFFIX, CONFIG_FILE_SUFFIX_LEN) == 0);
}

/* Refuses STRIGIL_* variables that match no setting: likely typos. */
static int
config__env_unknown(char **cause)
{
	char		 name[CONFIG_HINT_MAX], var[CONFIG_HINT_MAX];
	char		 hint[CONFIG_HINT_MAX];
	char		**ep;
	const char	*eq;
	size_t		 len, i, vlen;
	int		 known, file;

	for (ep = environ; ep != NULL && *ep != NULL; ep++) {
		if (strncmp(*ep, "STRIGIL_", 8) != 0)
			continue;
		eq = strchr(*ep, '=');
		len = eq != NULL ? (size_t)(eq - *ep) : strlen(*ep);
		if (config__env_ignored(*ep, len))
			continue;
		known = 0;
		for (i = 0; i < CONFIG_NKEYS && !known; i++) {
			config__env_name(&config_keys[i], name, sizeof name);
			known = config__env_is(name, *ep, len);
		}
		if (known)
			continue;
		/* STRIGIL_DATABSE_FILE: suggest for the stem, keep _FILE. */
		snprintf(var, sizeof var, "%.*s", (int)len, *ep);
		vlen = strlen(var);
		file = vlen > CONFIG_FILE_SUFFIX_LEN && strcmp(var + vlen -
		    CONFIG_FILE_SUFFIX_LEN, CONFIG_FILE_SUFFIX) == 0;
		if (file)
			var[vlen - CONFIG_FILE_SUFFIX_LEN] = '\0';
		config__suggest(var, CONFIG_ENV, hint, sizeof hint);
		if (file)
			var[vlen - CONFIG_FILE_SUFFIX_LEN] = '_';
		*cause = xasprintf("unknown environment variable %s%s%s%s%s",
		    var, *hint ? " (did you mean " : "", hint,
		    *hint && file ? CONFIG_FILE_SUFFIX : "",
		    *hint ? "?)" : "");
		return -1;
	}
	return 0;
}

/*
 * Reads the value file named by the variable `var` into *out (caller frees
 * with config__wipe()), one trailing newline ("\n" or "\r\n") stripped.
 * 0, or -1 with *cause set; the cause names `var` and the path, never the
 * contents.
 */
static int
config__read_value(const char *var, const char *path, char **out,
    char **cause)
{
	FILE	*f;
	char	*buf;
	size_t	 n;
	int	 err = 0;

	*out = NULL;
	if (*path == '\0') {
		*cause = xasprintf("%s is empty: set it to the path of a file "
		    "that holds the value", var);
		return -1;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		*cause = xasprintf("%s: cannot read %s: %s", var, path,
		    strerror(errno));
		return -1;
	}
	buf = xmalloc(CONFIG_FILE_MAX + 1);
	errno = 0;
	n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
	if (ferror(f))
		err = errno != 0 ? errno : EIO;
	fclose(f);
	if (err != 0)
		*cause = xasprintf("%s: cannot read %s: %s", var, path,
		    strerror(err));
	else if (n > CONFIG_FILE_MAX)
		*cause = xasprintf("%s: %s is larger than %u bytes", var, path,
		    CONFIG_FILE_MAX);
	else if (memchr(buf, '\0', n) != NULL)
		*cause = xasprintf("%s: %s contains a NUL byte", var, path);
	if (err != 0 || n > CONFIG_FILE_MAX || memchr(buf, '\0', n) != NULL) {
		explicit_bzero(buf, CONFIG_FILE_MAX + 1);
		free(buf);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\n') {
		n--;
		if (n > 0 && buf[n - 1] == '\r')
			n--;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static void
config__wipe(char *buf)
{
	if (buf != NULL) {
		explicit_bzero(buf, CONFIG_FILE_MAX + 1);
		free(buf);
	}
}

/* What a row accepts, in words that quote no value (for *_FILE errors). */
static void
config__expected(const struct config_key *key, char *buf, size_t len)
{
	switch (key->type) {
	case CONFIG_STRING:
		snprintf(buf, len, "a non-empty string");
		break;
	case CONFIG_INTEGER:
		snprintf(buf, len, "an integer from %" PRId64 " to %" PRId64,
		    key->min, key->max);
		break;
	case CONFIG_BOOLEAN:
		snprintf(buf, len, "true/false/1/0/yes/no");
		break;
	case CONFIG_LEVEL:
		snprintf(buf, len, "debug, info, warn or error");
		break;
	default:
		snprintf(buf, len, "%s", config_types[key->type].noun);
		break;
	}
}

static int
config__env(struct config *cfg, char **cause)
{
	const struct config_key	*key;
	struct config_value	 v;
	char			 name[CONFIG_HINT_MAX], *why = NULL;
	char			 fname[CONFIG_HINT_MAX + 8], want[96];
	char			*buf;
	const char		*text, *path;
	size_t			 i;

	if (config__env_unknown(cause) != 0)
		return -1;
	for (i = 0; i < CONFIG_NKEYS; i++) {
		key = &config_keys[i];
		config__env_name(key, name, sizeof name);
		snprintf(fname, sizeof fname, "%s%s", name, CONFIG_FILE_SUFFIX);
		text = getenv(name);
		if ((path = getenv(fname)) != NULL && text != NULL) {
			*cause = xasprintf("%s and %s are both set: use one",
			    name, fname);
			return -1;
		}
		buf = NULL;
		if (path != NULL) {
			if (config__read_value(fname, path, &buf, cause) != 0)
				return -1;
			text = buf;
		}
		if (text == NULL)
			continue;
		if (config__from_text(key, text, &v, &why) != 0 ||
		    config__apply(cfg, key, &v, &why) != 0) {
			if (buf != NULL) {
				/* why may quote the contents: a secret. */
				config__expected(key, want, sizeof want);
				*cause = xasprintf("%s: %s: expected %s (the "
				    "contents are not shown)", fname, path,
				    want);
			} else
				*cause = xasprintf("%s: %s", name, why);
			free(why);
			config__wipe(buf);
			return -1;
		}
		config__wipe(buf);
	}
	return 0;
}

static void
config__defaults(struct config *cfg)
{
	const struct config_key	*key;
	struct config_value	 v;
	char			*why = NULL, **sp;
	size_t			 i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		key = &config_keys[i];
		if (config__from_text(key, key->def, &v, &why) == 0 &&
		    config__apply(cfg, key, &v, &why) == 0)
			continue;
		/*
		 * Only a broken table or a system without a tz database
		 * ("UTC" then fails tz_valid()) gets here. Say so, and never
		 * leave a string NULL: the rest of the daemon relies on them.
		 */
		log_error("event=config_default key=%s error=%s", key->name,
		    log_q(why));
		free(why);
		why = NULL;
		if (key->type == CONFIG_STRING || key->type == CONFIG_ZONE) {
			sp = (char **)((char *)cfg + key->offset);
			if (*sp == NULL)
				*sp = xstrdup(key->def);
		}
	}
}

/* The Matrix settings that only make sense together. */
static int
config__matrix_check(const struct config *cfg, char **cause)
{
	if (cfg->mx_homeserver[0] == '\0')
		return 0;
	if (cfg->mx_user[0] == '\0') {
		*cause = xstrdup("matrix.homeserver is set but matrix.user is "
		    "not: set the bot's user id (\"@bot:example.org\")");
		return -1;
	}
	if (cfg->mx_password[0] == '\0' && cfg->mx_access_token[0] == '\0') {
		*cause = xstrdup("matrix.homeserver is set but neither "
		    "matrix.password nor matrix.access_token is: set one "
		    "(STRIGIL_MATRIX_PASSWORD_FILE keeps it out of the "
		    "environment)");
		return -1;
	}
	if (cfg->mx_user[0] == '@' && strchr(cfg->mx_user, ':') == NULL) {
		*cause = xasprintf("matrix.user: expected \"@bot:example.org\" "
		    "or a localpart, got \"%.*s\"", CONFIG_SHOW_MAX,
		    cfg->mx_user);
		return -1;
	}
	return 0;
}

int
config_load(struct config *cfg, const char *path, char **cause)
{
	memset(cfg, 0, sizeof *cfg);
	config__defaults(cfg);
	/* Unset, the console runs only when Telegram does not: a daemon
	 * serving real patients should not also read its stdin. */
	cfg->console = -1;
	if (path != NULL && config__file(cfg, path, cause) != 0)
		return -1;
	if (config__env(cfg, cause) != 0)
		return -1;
	if (cfg->console == -1)
		cfg->console = cfg->tg_token[0] == '\0' &&
		    cfg->mx_homeserver[0] == '\0';
	return config__matrix_check(cfg, cause);
}

void
config_free(struct config *cfg)
{
	const struct config_key	*key;
	char			**sp;
	size_t			 i;

	if (cfg == NULL)
		return;
	for (i = 0; i < CONFIG_NKEYS; i++) {
		key = &config_keys[i];
		if (key->type != CONFIG_STRING && key->type != CONFIG_ZONE)
			continue;
		sp = (char **)((char *)cfg + key->offset);
		free(*sp);
		*sp = NULL;
	}
}
