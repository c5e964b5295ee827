/*
 * config.h: the daemon's configuration.
 *
 * Read from a Lua-syntax file (config/strigil.conf.lua) evaluated in a
 * sandbox, Prosody style: top-level assignments, tables for sections.
 *
 *   database = "data/strigil.db"
 *   quiet_hours = { from = "21:00", to = "08:00" }
 *
 * Then environment variables override: every key has one, STRIGIL_ plus the
 * dotted key upper-cased with '.' as '_' (STRIGIL_QUIET_HOURS_FROM). Unknown
 * keys, unknown STRIGIL_ variables and wrong types are errors that name
 * file:line (or the variable).
 */
#ifndef STRIGIL_CONFIG_H
#define STRIGIL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct config {
	char	*database;		/* "data/strigil.db"; ":memory:" allowed */
	char	*protocols;		/* protocol folder, "scripts/protocols" */
	char	*default_protocol;	/* "iastm_home" */
	char	*lang_dir;		/* engine texts, "scripts/lang" */
	char	*language;		/* "en" */
	char	*timezone;		/* default patient zone, "UTC" */
	int	 reminder_time;		/* default reminder, minute of day (18:00) */
	int	 quiet_from;		/* minute of day, 21:00 */
	int	 quiet_to;		/* minute of day, 08:00 */
	size_t	 lua_memory;		/* bytes per protocol state, 32 MiB */
	int64_t	 lua_instructions;	/* per handler call, 10,000,000 */
	int	 log_level;		/* enum log_level, info */
	int	 console;		/* run the console adapter in `strigil run`;
					 * unset: only without telegram.token */
	char	*http_listen;		/* HTTP server address, "127.0.0.1" */
	int64_t	 http_port;		/* 8080; 0 picks a free port */
	int	 http_enabled;		/* serve /healthz and /metrics */
	char	*tg_token;		/* Telegram bot token; "" : adapter off */
	char	*tg_api_url;		/* "https://api.telegram.org" */
	int64_t	 tg_poll_timeout;	/* getUpdates timeout, seconds (50) */
	char	*tg_clinician_chat;	/* chat id for escalations, or "" */
	int64_t	 tg_rate_per_chat;	/* messages a second to one chat (1) */
	int64_t	 tg_rate_global;	/* messages a second in all (30) */
	char	*tg_username;		/* the bot's @name for invite links, "" */
	char	*mx_homeserver;		/* Matrix base URL; "" : adapter off */
	char	*mx_user;		/* "@bot:example.org" or a localpart */
	char	*mx_password;		/* a secret; "" with an access token */
	char	*mx_access_token;	/* a secret; "" logs in with the password */
	char	*mx_clinician_room;	/* room id for escalations, or "" */
	char	*mx_allowed_inviters;	/* "@user:server, :server", or "" */
	int64_t	 mx_poll_timeout;	/* /sync timeout, seconds (30) */
	char	*tg_webhook_url;	/* public URL: webhook mode; "" polls */
	char	*tg_webhook_secret;	/* X-Telegram-Bot-Api-Secret-Token */
	char	*tg_summary_time;	/* "HH:MM" daily summary, "" off */
	int	 tg_private_reminders;	/* reminders without clinical detail */
	int	 test_clock;		/* test only: virtual time in `run` */
};

/* Fills `cfg` with defaults, then the file at `path` (skipped if NULL), then
 * the environment. Returns 0, or -1 with *cause set (caller frees) and `cfg`
 * left freeable. The caller owns the strings; free them with config_free(). */
int	config_load(struct config *cfg, const char *path, char **cause);
void	config_free(struct config *cfg);

#endif
