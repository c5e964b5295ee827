/*
 * test_config.c: defaults, the config file, environment overrides, errors.
 *
 * Config files are written to a temporary folder; its path is short enough
 * that Lua's own messages (syntax errors) carry it untruncated.
 */
#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "test.h"

extern char **environ;

static char	test_dir[] = "/tmp/strigil-cfg-XXXXXX";
static char	test_path[64];

/* Writes `text` as the test config file and returns its path. */
static const char *
conf(const char *text)
{
	FILE	*f;

	snprintf(test_path, sizeof test_path, "%s/t.lua", test_dir);
	if ((f = fopen(test_path, "w")) == NULL) {
		perror(test_path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	return test_path;
}

/* Removes every STRIGIL_* variable, so tests do not leak into each other. */
static void
env_clear(void)
{
	char	name[256], **ep;
	size_t	len;

again:
	for (ep = environ; *ep != NULL; ep++) {
		if (strncmp(*ep, "STRIGIL_", 8) != 0)
			continue;
		len = strcspn(*ep, "=");
		snprintf(name, sizeof name, "%.*s", (int)len, *ep);
		unsetenv(name);
		goto again;	/* environ changed under us */
	}
}

/* Loads `path` and expects failure with a cause equal to `want`. */
static void
load_fails(const char *path, const char *want)
{
	struct config	 cfg;
	char		*cause = NULL;

	CHECK_INT(config_load(&cfg, path, &cause), -1);
	CHECK_STR(cause, want);
	free(cause);
	config_free(&cfg);
}

/* Like load_fails(), but only requires `part` somewhere in the cause. */
static void
load_fails_with(const char *path, const char *part)
{
	struct config	 cfg;
	char		*cause = NULL;

	CHECK_INT(config_load(&cfg, path, &cause), -1);
	CHECK(cause != NULL && strstr(cause, part) != NULL);
	if (cause != NULL && strstr(cause, part) == NULL)
		fprintf(stderr, "  cause: %s\n  wanted: ...%s...\n", cause,
		    part);
	free(cause);
	config_free(&cfg);
}

static void
check_defaults(const struct config *cfg)
{
	CHECK_STR(cfg->database, "data/strigil.db");
	CHECK_STR(cfg->protocols, "scripts/protocols");
	CHECK_STR(cfg->default_protocol, "iastm_home");
	CHECK_STR(cfg->lang_dir, "scripts/lang");
	CHECK_STR(cfg->language, "en");
	CHECK_STR(cfg->timezone, "UTC");
	CHECK_INT(cfg->reminder_time, 18 * 60);
	CHECK_INT(cfg->quiet_from, 21 * 60);
	CHECK_INT(cfg->quiet_to, 8 * 60);
	CHECK_INT(cfg->lua_memory, 32 * 1024 * 1024);
	CHECK_INT(cfg->lua_instructions, 10000000);
	CHECK_INT(cfg->log_level, LOG_INFO);
	CHECK_INT(cfg->console, 1);
}

static void
test_defaults(void)
{
	struct config	 cfg;
	char		*cause = NULL;

	env_clear();
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK(cause == NULL);
	check_defaults(&cfg);
	config_free(&cfg);
	CHECK(cfg.database == NULL);
	config_free(&cfg);		/* twice is harmless */

	/* Without a tz database the default zone still is not NULL. */
	setenv("TZDIR", "/nonexistent", 1);
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.timezone, "UTC");
	config_free(&cfg);
	unsetenv("TZDIR");
}

/* The shipped file documents the defaults: same values. */
static void
test_shipped_file(void)
{
	struct config	 cfg;
	char		*cause = NULL;

	env_clear();
	CHECK_INT(config_load(&cfg, "config/strigil.conf.lua", &cause), 0);
	if (cause != NULL)
		fprintf(stderr, "  cause: %s\n", cause);
	free(cause);
	check_defaults(&cfg);
	config_free(&cfg);
}

static void
test_good_file(void)
{
	struct config	 cfg;
	char		*cause = NULL;
	const char	*path;

	env_clear();
	path = conf(
	    "-- a comment\n"
	    "local data = \"/var/lib/strigil\"\n"
	    "database = data .. \"/main.db\"\n"
	    "protocols = string.format(\"%s/%s\", \"p\", \"q\")\n"
	    "default_protocol = \"knee_rehab\"\n"
	    "lang_dir = \"lang\"\n"
	    "language = \"de\"\n"
	    "timezone = \"Europe/Berlin\"\n"
	    "reminder_time = \"7:30\"\n"
	    "quiet_hours = { from = \"22:15\" }\n"
	    "lua = { memory_mb = 64, instructions = 5e6 }\n"
	    "log_level = \"debug\"\n"
	    "console = false\n"
	    "database = database .. \"x\"   -- later assignments win\n");
	CHECK_INT(config_load(&cfg, path, &cause), 0);
	if (cause != NULL)
		fprintf(stderr, "  cause: %s\n", cause);
	free(cause);
	CHECK_STR(cfg.database, "/var/lib/strigil/main.dbx");
	CHECK_STR(cfg.protocols, "p/q");
	CHECK_STR(cfg.default_protocol, "knee_rehab");
	CHECK_STR(cfg.lang_dir, "lang");
	CHECK_STR(cfg.language, "de");
	CHECK_STR(cfg.timezone, "Europe/Berlin");
	CHECK_INT(cfg.reminder_time, 7 * 60 + 30);
	CHECK_INT(cfg.quiet_from, 22 * 60 + 15);
	CHECK_INT(cfg.quiet_to, 8 * 60);	/* rest of the section: default */
	CHECK_INT(cfg.lua_memory, 64 * 1024 * 1024);
	CHECK_INT(cfg.lua_instructions, 5000000);
	CHECK_INT(cfg.log_level, LOG_DEBUG);
	CHECK_INT(cfg.console, 0);
	config_free(&cfg);

	/* An empty file is all defaults. */
	CHECK_INT(config_load(&cfg, conf(""), &cause), 0);
	check_defaults(&cfg);
	config_free(&cfg);
	/* Prosody's dotted style works for sections. */
	CHECK_INT(config_load(&cfg, conf("lua.memory_mb = 8\n"
	    "quiet_hours.to = '07:00'\nquiet_hours.from = '23:00'\n"), &cause),
	    0);
	CHECK_INT(cfg.lua_memory, 8 * 1024 * 1024);
	CHECK_INT(cfg.quiet_from, 23 * 60);
	CHECK_INT(cfg.quiet_to, 7 * 60);
	config_free(&cfg);
	/* nil unsets back to the default. */
	CHECK_INT(config_load(&cfg, conf("database = 'x'\ndatabase = nil\n"),
	    &cause), 0);
	CHECK_STR(cfg.database, "data/strigil.db");
	config_free(&cfg);
}

static void
test_unknown_key(void)
{
	char	want[256];

	env_clear();
	snprintf(want, sizeof want, "%s:7: unknown setting 'databse' "
	    "(did you mean 'database'?)", test_path);
	load_fails(conf("-- 1\n-- 2\n-- 3\n-- 4\nlanguage = 'en'\n-- 6\n"
	    "databse = \"x.db\"\n"), want);

	/* Nothing close: no suggestion. */
	snprintf(want, sizeof want, "%s:1: unknown setting 'frobnicate'",
	    test_path);
	load_fails(conf("frobnicate = 1\n"), want);

	/* Dotted names are not top-level settings. */
	snprintf(want, sizeof want, "%s:1: unknown setting 'lua.memory_mb'",
	    test_path);
	load_fails(conf("_ENV['lua.memory_mb'] = 5\n"), want);

	/* A global function is an unknown setting too. */
	snprintf(want, sizeof want, "%s:2: unknown setting 'helper'",
	    test_path);
	load_fails(conf("\nfunction helper() end\n"), want);
}

static void
test_wrong_type(void)
{
	char	want[256];

	env_clear();
	snprintf(want, sizeof want,
	    "%s:3: lua.memory_mb: expected an integer, got string", test_path);
	load_fails(conf("database = 'a'\n\nlua = { memory_mb = \"32\" }\n"),
	    want);

	snprintf(want, sizeof want,
	    "%s:2: console: expected a boolean, got string", test_path);
	load_fails(conf("\nconsole = \"yes\"\n"), want);

	snprintf(want, sizeof want,
	    "%s:1: database: expected a string, got number", test_path);
	load_fails(conf("database = 12\n"), want);

	snprintf(want, sizeof want,
	    "%s:1: lua.instructions: expected an integer, got 2.5", test_path);
	load_fails(conf("lua = { instructions = 2.5 }\n"), want);

	snprintf(want, sizeof want,
	    "%s:1: quiet_hours: expected a table, got string", test_path);
	load_fails(conf("quiet_hours = \"21:00-08:00\"\n"), want);

	snprintf(want, sizeof want, "%s:1: reminder_time: expected a time "
	    "\"HH:MM\", got \"25:00\"", test_path);
	load_fails(conf("reminder_time = \"25:00\"\n"), want);

	snprintf(want, sizeof want,
	    "%s:2: timezone: unknown time zone \"Mars/Olympus_Mons\"",
	    test_path);
	load_fails(conf("\ntimezone = \"Mars/Olympus_Mons\"\n"), want);

	snprintf(want, sizeof want, "%s:1: log_level: expected debug, info, "
	    "warn or error, got \"loud\"", test_path);
	load_fails(conf("log_level = \"loud\"\n"), want);

	snprintf(want, sizeof want, "%s:1: lua.memory_mb: must be between "
	    "1 and 4096, got 0", test_path);
	load_fails(conf("lua = { memory_mb = 0 }\n"), want);

	snprintf(want, sizeof want, "%s:1: database: must not be empty",
	    test_path);
	load_fails(conf("database = \"\"\n"), want);

	/* In the dotted style the section's first use names the line. */
	snprintf(want, sizeof want,
	    "%s:2: lua.memory_mb: expected an integer, got boolean", test_path);
	load_fails(conf("\nlua.memory_mb = true\n"), want);

	/* Several mistakes: the first line is reported. */
	snprintf(want, sizeof want,
	    "%s:2: language: expected a string, got boolean", test_path);
	load_fails(conf("\nlanguage = true\nconsole = 1\nlua = 3\n"), want);
}

static void
test_nested_unknown(void)
{
	char	want[256];

	env_clear();
	snprintf(want, sizeof want, "%s:9: quiet_hours.form: unknown setting "
	    "(did you mean 'quiet_hours.from'?)", test_path);
	load_fails(conf("-- 1\n-- 2\n-- 3\n-- 4\n-- 5\n-- 6\n-- 7\n-- 8\n"
	    "quiet_hours = { form = \"21:00\", to = \"08:00\" }\n"), want);

	snprintf(want, sizeof want, "%s:1: lua.stack: unknown setting",
	    test_path);
	load_fails(conf("lua = { stack = 1 }\n"), want);

	snprintf(want, sizeof want, "%s:1: quiet_hours: settings are named, "
	    "not number keys", test_path);
	load_fails(conf("quiet_hours = { \"21:00\", \"08:00\" }\n"), want);
}

static void
test_syntax_error(void)
{
	char	want[256];

	env_clear();
	snprintf(want, sizeof want, "%s:2:", test_path);
	load_fails_with(conf("database = 'x'\nlanguage = = 'en'\n"), want);
	load_fails_with(conf("database = 'x'\nlanguage = = 'en'\n"),
	    "unexpected symbol");
	snprintf(want, sizeof want, "%s:1:", test_path);
	load_fails_with(conf("quiet_hours = { from = \"21:00\"\n"), "'}'");

	/* A runtime error carries its line too. */
	snprintf(want, sizeof want, "%s:3: boom", test_path);
	load_fails(conf("\n\nerror('boom')\n"), want);

	/* And a missing file says so. */
	load_fails_with("/nonexistent/strigil.conf.lua",
	    "/nonexistent/strigil.conf.lua: No such file");
}

static void
test_env_override(void)
{
	static const char *const truthy[] = { "true", "1", "yes", "TRUE" };
	static const char *const falsy[] = { "false", "0", "no", "No" };
	struct config	 cfg;
	char		*cause = NULL;
	const char	*path;
	size_t		 i;

	env_clear();
	path = conf("database = 'file.db'\nlua = { memory_mb = 16 }\n");
	setenv("STRIGIL_DATABASE", ":memory:", 1);
	setenv("STRIGIL_QUIET_HOURS_FROM", "22:30", 1);
	setenv("STRIGIL_LUA_MEMORY_MB", "64", 1);
	setenv("STRIGIL_LUA_INSTRUCTIONS", "2000", 1);
	setenv("STRIGIL_CONSOLE", "no", 1);
	setenv("STRIGIL_LOG_LEVEL", "warn", 1);
	setenv("STRIGIL_TIMEZONE", "America/New_York", 1);
	setenv("STRIGIL_REMINDER_TIME", "9:05", 1);
	setenv("STRIGIL_CONFIG", "/somewhere/else.lua", 1);	/* ignored */
	CHECK_INT(config_load(&cfg, path, &cause), 0);
	if (cause != NULL)
		fprintf(stderr, "  cause: %s\n", cause);
	free(cause);
	CHECK_STR(cfg.database, ":memory:");		/* env beats file */
	CHECK_INT(cfg.quiet_from, 22 * 60 + 30);
	CHECK_INT(cfg.quiet_to, 8 * 60);
	CHECK_INT(cfg.lua_memory, 64 * 1024 * 1024);
	CHECK_INT(cfg.lua_instructions, 2000);
	CHECK_INT(cfg.console, 0);
	CHECK_INT(cfg.log_level, LOG_WARN);
	CHECK_STR(cfg.timezone, "America/New_York");
	CHECK_INT(cfg.reminder_time, 9 * 60 + 5);
	config_free(&cfg);

	/* Every spelling of a boolean. */
	for (i = 0; i < 4; i++) {
		env_clear();
		setenv("STRIGIL_CONSOLE", falsy[i], 1);
		CHECK_INT(config_load(&cfg, NULL, &cause), 0);
		CHECK_INT(cfg.console, 0);
		config_free(&cfg);
		setenv("STRIGIL_CONSOLE", truthy[i], 1);
		CHECK_INT(config_load(&cfg, conf("console = false\n"), &cause),
		    0);
		CHECK_INT(cfg.console, 1);
		config_free(&cfg);
	}
	env_clear();
}

static void
test_env_bad(void)
{
	env_clear();
	setenv("STRIGIL_LUA_MEMORY_MB", "lots", 1);
	load_fails(NULL,
	    "STRIGIL_LUA_MEMORY_MB: expected an integer, got \"lots\"");
	setenv("STRIGIL_LUA_MEMORY_MB", "12abc", 1);
	load_fails(NULL,
	    "STRIGIL_LUA_MEMORY_MB: expected an integer, got \"12abc\"");
	setenv("STRIGIL_LUA_MEMORY_MB", " 12", 1);
	load_fails(NULL,
	    "STRIGIL_LUA_MEMORY_MB: expected an integer, got \" 12\"");
	setenv("STRIGIL_LUA_MEMORY_MB", "99999999999999999999", 1);
	load_fails_with(NULL, "STRIGIL_LUA_MEMORY_MB: expected an integer");
	setenv("STRIGIL_LUA_MEMORY_MB", "8192", 1);
	load_fails(NULL,
	    "STRIGIL_LUA_MEMORY_MB: must be between 1 and 4096, got 8192");
	env_clear();

	setenv("STRIGIL_CONSOLE", "maybe", 1);
	load_fails(NULL, "STRIGIL_CONSOLE: expected true/false/1/0/yes/no, "
	    "got \"maybe\"");
	env_clear();
	setenv("STRIGIL_QUIET_HOURS_TO", "8h", 1);
	load_fails(NULL, "STRIGIL_QUIET_HOURS_TO: expected a time \"HH:MM\", "
	    "got \"8h\"");
	env_clear();
	setenv("STRIGIL_TIMEZONE", "../etc/passwd", 1);
	load_fails(NULL,
	    "STRIGIL_TIMEZONE: unknown time zone \"../etc/passwd\"");
	env_clear();
	setenv("STRIGIL_DATABASE", "", 1);
	load_fails(NULL, "STRIGIL_DATABASE: must not be empty");
	env_clear();
	setenv("STRIGIL_TELEGRAM_USERNAME", "clinic/bot", 1);
	load_fails(NULL, "STRIGIL_TELEGRAM_USERNAME: must be a bot username: "
	    "5 to 32 letters, digits or _");
	env_clear();
}

static void
test_env_unknown(void)
{
	env_clear();
	setenv("STRIGIL_FOO", "1", 1);
	load_fails(NULL, "unknown environment variable STRIGIL_FOO");
	env_clear();
	setenv("STRIGIL_DATABSE", "x.db", 1);
	load_fails(NULL, "unknown environment variable STRIGIL_DATABSE "
	    "(did you mean STRIGIL_DATABASE?)");
	env_clear();
	/* Section names alone are not settings. */
	setenv("STRIGIL_QUIET_HOURS", "21:00", 1);
	load_fails_with(NULL,
	    "unknown environment variable STRIGIL_QUIET_HOURS");
	env_clear();
	/* Lower case is not ours; only the exact upper-case names are. */
	setenv("strigil_database", "x.db", 1);
	{
		struct config	 cfg;
		char		*cause = NULL;

		CHECK_INT(config_load(&cfg, NULL, &cause), 0);
		CHECK_STR(cfg.database, "data/strigil.db");
		config_free(&cfg);
	}
	unsetenv("strigil_database");
}

static void
test_sandbox_refuses(void)
{
	char	want[256];

	env_clear();
	snprintf(want, sizeof want,
	    "%s:2: 'os' is not available in the config file", test_path);
	load_fails(conf("database = 'x'\nos.exit(1)\n"), want);
	snprintf(want, sizeof want,
	    "%s:1: 'io' is not available in the config file", test_path);
	load_fails(conf("local f = io.open('/etc/passwd')\n"), want);
	snprintf(want, sizeof want,
	    "%s:1: 'require' is not available in the config file", test_path);
	load_fails(conf("require('os')\n"), want);
	snprintf(want, sizeof want,
	    "%s:1: 'dofile' is not available in the config file", test_path);
	load_fails(conf("dofile('/etc/passwd')\n"), want);
	/* The recorder cannot be taken away. */
	load_fails_with(conf("setmetatable(_ENV, nil)\ndatabse = 1\n"),
	    "protected metatable");
	/* Library tables stay read-only. */
	load_fails_with(conf("string.rep = nil\n"), "read-only");
	/* Memory is capped, and the error names the file. */
	snprintf(want, sizeof want, "%s: memory limit exceeded", test_path);
	load_fails_with(conf("database = string.rep('x', 1 << 30)\n"), want);
}

static void
test_endless_loop(void)
{
	char	want[256];

	env_clear();
	snprintf(want, sizeof want, "%s:2:", test_path);
	load_fails_with(conf("database = 'x'\nwhile true do end\n"),
	    "instruction budget exceeded");
	load_fails_with(conf("database = 'x'\nwhile true do end\n"), want);
	/* pcall() cannot swallow the budget. */
	load_fails_with(conf("for i = 1, 10 do\n"
	    "  pcall(function() while true do end end)\nend\n"
	    "database = 'x'\n"), "instruction budget exceeded");
}

/* Writes `len` bytes of `text` as a value file for *_FILE and returns its path. */
static const char *
secret(const char *text, size_t len)
{
	static char	path[80];
	FILE		*f;

	snprintf(path, sizeof path, "%s/secret", test_dir);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(2);
	}
	fwrite(text, 1, len, f);
	fclose(f);
	return path;
}

#define SECRET(s)	secret((s), sizeof(s) - 1)

/* STRIGIL_X_FILE holds the value of STRIGIL_X (Docker secrets). */
static void
test_env_file(void)
{
	struct config	 cfg;
	char		*cause = NULL;
	const char	*path;

	/* One trailing newline is stripped, as `echo x > file` writes. */
	env_clear();
	setenv("STRIGIL_DATABASE_FILE", SECRET("/data/from-secret.db\n"), 1);
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	if (cause != NULL)
		fprintf(stderr, "  cause: %s\n", cause);
	free(cause);
	cause = NULL;
	CHECK_STR(cfg.database, "/data/from-secret.db");
	config_free(&cfg);

	/* No newline, CR LF, and only one of two newlines. */
	SECRET("plain.db");
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.database, "plain.db");
	config_free(&cfg);
	SECRET("dos.db\r\n");
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.database, "dos.db");
	config_free(&cfg);
	SECRET("two.db\n\n");
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.database, "two.db\n");
	config_free(&cfg);
	SECRET(" spaced \n");
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.database, " spaced ");
	config_free(&cfg);

	/* Beats the file like any variable; every type goes through. */
	env_clear();
	path = conf("database = 'file.db'\nlua = { memory_mb = 16 }\n");
	setenv("STRIGIL_LUA_MEMORY_MB_FILE", SECRET("64\n"), 1);
	CHECK_INT(config_load(&cfg, path, &cause), 0);
	CHECK_STR(cfg.database, "file.db");
	CHECK_INT(cfg.lua_memory, 64 * 1024 * 1024);
	config_free(&cfg);
	env_clear();
	setenv("STRIGIL_QUIET_HOURS_FROM_FILE", SECRET("22:15\n"), 1);
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_INT(cfg.quiet_from, 22 * 60 + 15);
	config_free(&cfg);
	env_clear();
	setenv("STRIGIL_CONSOLE_FILE", SECRET("no\n"), 1);
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_INT(cfg.console, 0);
	config_free(&cfg);
	env_clear();
	/* A _FILE variable and a plain one for different settings mix. */
	setenv("STRIGIL_TIMEZONE_FILE", SECRET("Europe/Berlin\n"), 1);
	setenv("STRIGIL_LOG_LEVEL", "warn", 1);
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.timezone, "Europe/Berlin");
	CHECK_INT(cfg.log_level, LOG_WARN);
	config_free(&cfg);
	env_clear();
	unlink(secret("", 0));
}

static void
test_env_file_errors(void)
{
	char	want[256], *cause = NULL;
	const char *path;
	struct config	 cfg;

	/* Both forms at once: ambiguous, refused. */
	env_clear();
	setenv("STRIGIL_DATABASE", "a.db", 1);
	setenv("STRIGIL_DATABASE_FILE", SECRET("b.db\n"), 1);
	load_fails(NULL, "STRIGIL_DATABASE and STRIGIL_DATABASE_FILE are "
	    "both set: use one");
	env_clear();

	/* A missing file names the variable and the path. */
	setenv("STRIGIL_DATABASE_FILE", "/nonexistent/secret", 1);
	load_fails(NULL, "STRIGIL_DATABASE_FILE: cannot read "
	    "/nonexistent/secret: No such file or directory");
	/* A folder cannot be read as a value. */
	setenv("STRIGIL_DATABASE_FILE", test_dir, 1);
	snprintf(want, sizeof want, "STRIGIL_DATABASE_FILE: cannot read %s: "
	    "Is a directory", test_dir);
	load_fails(NULL, want);
	/* Nor can an empty path. */
	setenv("STRIGIL_DATABASE_FILE", "", 1);
	load_fails(NULL, "STRIGIL_DATABASE_FILE is empty: set it to the path "
	    "of a file that holds the value");
	/* Unreadable for lack of permission (root reads anything). */
	if (geteuid() != 0) {
		path = SECRET("x\n");
		chmod(path, 0);
		setenv("STRIGIL_DATABASE_FILE", path, 1);
		snprintf(want, sizeof want, "STRIGIL_DATABASE_FILE: cannot "
		    "read %s: Permission denied", path);
		load_fails(NULL, want);
		chmod(path, 0600);
	}

	/* A bad value never shows the file's contents: it may be a secret. */
	path = SECRET("hunter2-secret\n");
	setenv("STRIGIL_LUA_MEMORY_MB_FILE", path, 1);
	unsetenv("STRIGIL_DATABASE_FILE");
	snprintf(want, sizeof want, "STRIGIL_LUA_MEMORY_MB_FILE: %s: expected "
	    "an integer from 1 to 4096 (the contents are not shown)", path);
	load_fails(NULL, want);
	CHECK_INT(config_load(&cfg, NULL, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "hunter2") == NULL);
	free(cause);
	cause = NULL;
	config_free(&cfg);
	SECRET("8192\n");
	load_fails(NULL, want);
	env_clear();
	setenv("STRIGIL_CONSOLE_FILE", SECRET("hunter2\n"), 1);
	snprintf(want, sizeof want, "STRIGIL_CONSOLE_FILE: %s: expected "
	    "true/false/1/0/yes/no (the contents are not shown)", path);
	load_fails(NULL, want);
	env_clear();
	setenv("STRIGIL_TIMEZONE_FILE", SECRET("hunter2\n"), 1);
	snprintf(want, sizeof want, "STRIGIL_TIMEZONE_FILE: %s: expected "
	    "a time zone name (the contents are not shown)", path);
	load_fails(NULL, want);
	env_clear();
	/* An empty file (or just a newline) is an empty value. */
	setenv("STRIGIL_DATABASE_FILE", SECRET("\n"), 1);
	snprintf(want, sizeof want, "STRIGIL_DATABASE_FILE: %s: expected "
	    "a non-empty string (the contents are not shown)", path);
	load_fails(NULL, want);
	/* A NUL byte would silently cut the value short. */
	SECRET("abc\0def\n");
	snprintf(want, sizeof want, "STRIGIL_DATABASE_FILE: %s contains a "
	    "NUL byte", path);
	load_fails(NULL, want);
	/* A huge file is a mistake, not a value. */
	{
		size_t	 big = 65 * 1024;
		char	*text = malloc(big);

		memset(text, 'x', big);
		secret(text, big);
		free(text);
		snprintf(want, sizeof want, "STRIGIL_DATABASE_FILE: %s is "
		    "larger than 65536 bytes", path);
		load_fails(NULL, want);
	}
	env_clear();

	/* _FILE is only known after a setting's variable. */
	setenv("STRIGIL_FOO_FILE", path, 1);
	load_fails(NULL, "unknown environment variable STRIGIL_FOO_FILE");
	env_clear();
	setenv("STRIGIL_DATABSE_FILE", path, 1);
	load_fails(NULL, "unknown environment variable STRIGIL_DATABSE_FILE "
	    "(did you mean STRIGIL_DATABASE_FILE?)");
	env_clear();
	setenv("STRIGIL_CONFIG_FILE", path, 1);
	load_fails_with(NULL, "unknown environment variable "
	    "STRIGIL_CONFIG_FILE");
	env_clear();
	setenv("STRIGIL_DATABASE_FILE_FILE", path, 1);
	load_fails_with(NULL, "unknown environment variable "
	    "STRIGIL_DATABASE_FILE_FILE");
	env_clear();
	unlink(path);
}

/* ---- matrix.* --------------------------------------------------- */

static void
test_matrix_defaults(void)
{
	struct config	 cfg;
	char		*cause = NULL;

	env_clear();
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.mx_homeserver, "");
	CHECK_INT(cfg.mx_poll_timeout, 30);
	CHECK_INT(cfg.console, 1);
	config_free(&cfg);
}

static void
test_matrix_file(void)
{
	struct config	 cfg;
	char		*cause = NULL;

	env_clear();
	CHECK_INT(config_load(&cfg, conf(
	    "matrix = {\n"
	    "  homeserver = \"https://matrix.clinic.org/\",\n"
	    "  user = \"@strigil:clinic.org\",\n"
	    "  password = \"pw\",\n"
	    "  clinician_room = \"!abc:clinic.org\",\n"
	    "  allowed_inviters = \"@dr:clinic.org, :clinic.org\",\n"
	    "  poll_timeout = 45,\n"
	    "}\n"), &cause), 0);
	CHECK(cause == NULL);
	CHECK_STR(cfg.mx_homeserver, "https://matrix.clinic.org/");
	CHECK_STR(cfg.mx_user, "@strigil:clinic.org");
	CHECK_STR(cfg.mx_clinician_room, "!abc:clinic.org");
	CHECK_STR(cfg.mx_allowed_inviters, "@dr:clinic.org, :clinic.org");
	CHECK_INT(cfg.mx_poll_timeout, 45);
	CHECK_INT(cfg.console, 0);	/* a chat adapter runs */
	config_free(&cfg);
}

static void
test_matrix_errors(void)
{
	env_clear();
	load_fails_with(conf("matrix = {\n homeserver = \"matrix.org\" }\n"),
	    ":2: matrix.homeserver: expected an http:// or https:// URL");
	load_fails_with(conf("matrix = {\n\n allowed_inviters = \"dr@x\" }\n"),
	    ":3: matrix.allowed_inviters: expected user ids");
	load_fails_with(conf("matrix = { allowed_inviters = \"@dr\" }\n"),
	    "matrix.allowed_inviters: expected user ids");
	load_fails_with(conf("matrix = { clinician_room = \"#clinic:x\" }\n"),
	    "matrix.clinician_room: expected a room id");
	load_fails_with(conf("matrix = { homeserver = \"https://x\" }\n"),
	    "matrix.user is not");
	load_fails_with(conf("matrix = { homeserver = \"https://x\", "
	    "user = \"bot\" }\n"), "neither matrix.password nor");
	load_fails_with(conf("matrix = { homeserver = \"https://x\", "
	    "user = \"@bot\", password = \"p\" }\n"), "matrix.user: expected");
	load_fails_with(conf("matrix = { poll_timeout = 0 }\n"),
	    "matrix.poll_timeout: must be between 1 and 600");
}

static void
test_matrix_env_file(void)
{
	struct config	 cfg;
	char		*cause = NULL, path[96];
	FILE		*f;

	env_clear();
	snprintf(path, sizeof path, "%s/token", test_dir);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(2);
	}
	fputs("syt_secret\n", f);
	fclose(f);
	setenv("STRIGIL_MATRIX_HOMESERVER", "http://127.0.0.1:1", 1);
	setenv("STRIGIL_MATRIX_USER", "bot", 1);
	setenv("STRIGIL_MATRIX_ACCESS_TOKEN_FILE", path, 1);
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.mx_access_token, "syt_secret");
	config_free(&cfg);
	setenv("STRIGIL_MATRIX_ALLOWED_INVITERS", "nobody", 1);
	load_fails_with(NULL, "STRIGIL_MATRIX_ALLOWED_INVITERS: expected user ids");
	env_clear();
	unlink(path);
}

int
main(void)
{
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	TEST(test_defaults);
	TEST(test_shipped_file);
	TEST(test_good_file);
	TEST(test_unknown_key);
	TEST(test_wrong_type);
	TEST(test_nested_unknown);
	TEST(test_syntax_error);
	TEST(test_env_override);
	TEST(test_env_bad);
	TEST(test_env_unknown);
	TEST(test_sandbox_refuses);
	TEST(test_endless_loop);
	TEST(test_env_file);
	TEST(test_env_file_errors);
	TEST(test_matrix_defaults);
	TEST(test_matrix_file);
	TEST(test_matrix_errors);
	TEST(test_matrix_env_file);
	unlink(test_path);
	rmdir(test_dir);
	return TEST_END();
}
