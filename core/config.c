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
 *
 * This file holds the rows, the defaults and the order of loading; the
 * parsers are in config_parse.c, the file in config_file.c, the variables
 * in config_env.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "xmalloc.h"

/* The rows of one section stay together: config__walk() relies on it. */
#define F(f)	offsetof(struct config, f)
const struct config_key config_keys[] = {
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
const size_t config_nkeys = sizeof config_keys / sizeof config_keys[0];

/* How each type is named in "expected ..." and what kind it arrives as. */
const struct config_type_info config_types[] = {
	[CONFIG_STRING] = { "a string", CONFIG_KSTRING },
	[CONFIG_INTEGER] = { "an integer", CONFIG_KINTEGER },
	[CONFIG_BOOLEAN] = { "a boolean", CONFIG_KBOOLEAN },
	[CONFIG_TIME] = { "a time \"HH:MM\"", CONFIG_KSTRING },
	[CONFIG_ZONE] = { "a time zone name", CONFIG_KSTRING },
	[CONFIG_LEVEL] = { "a log level", CONFIG_KSTRING },
};

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
