/*
 * main.c: the strigil command line.
 *
 *   strigil [-c FILE] run
 *   strigil [-c FILE] chat [--protocol FILE] [--db PATH] [--start ISO-8601]
 *   strigil [-c FILE] check PROTOCOL...
 *   strigil [-c FILE] simulate PROTOCOL [--answers FILE] [--start ISO-8601]
 *           [--days N] [--patients N] [--tz ZONE] [--json]
 *   strigil [-c FILE] backup [--force] FILE
 *   strigil [-c FILE] health [--url URL]
 *   strigil [-c FILE] invite [--protocol ID] [--uses N | --unlimited]
 *           [--days N] [--clinician TEXT] [--note TEXT]
 *   strigil --version
 *
 * The config file is -c FILE, else $STRIGIL_CONFIG, else
 * config/strigil.conf.lua if it exists; environment variables override it.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <lua.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "backup.h"
#include "clock.h"
#include "config.h"
#include "daemon.h"
#include "invite.h"
#include "log.h"
#include "protocol.h"
#include "simulate.h"
#include "store.h"
#include "xmalloc.h"

#define DEFAULT_CONFIG	"config/strigil.conf.lua"
#define HEALTH_BODY_MAX	65536	/* bytes of /healthz we keep */
#define HEALTH_TIMEOUT	10	/* seconds for the whole request */
#define INVITE_DAYS	14	/* default lifetime of an invite code */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: strigil [-c CONFIG] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  run                      run the bot with the configured adapters\n"
	    "  chat [--protocol FILE] [--db PATH] [--start ISO-8601]\n"
	    "                           chat in the terminal, in virtual time\n"
	    "  check PROTOCOL...        load and validate protocol files\n"
	    "  simulate PROTOCOL [--answers FILE] [--start ISO-8601] [--days N]\n"
	    "           [--patients N] [--tz ZONE] [--json]\n"
	    "                           run virtual patients through a protocol\n"
	    "  backup [--force] FILE    copy the database to FILE, also while "
	    "it runs\n"
	    "  health [--url URL]       ask the running daemon's /healthz; exit 0 "
	    "if healthy\n"
	    "  invite [--protocol ID] [--uses N|--unlimited] [--days N]\n"
	    "         [--clinician TEXT] [--note TEXT]\n"
	    "                           issue an invite code for /start CODE\n"
	    "  --version                print the version\n");
}

static void
version(void)
{
	printf("strigil %s (Lua %s.%s.%s, libuv %s, SQLite %s)\n",
	    STRIGIL_VERSION, LUA_VERSION_MAJOR, LUA_VERSION_MINOR,
	    LUA_VERSION_RELEASE, uv_version_string(), sqlite3_libversion());
}

static const char *
config_path(const char *given)
{
	const char	*env = getenv("STRIGIL_CONFIG");

	if (given != NULL)
		return given;
	if (env != NULL && env[0] != '\0')
		return env;
	return access(DEFAULT_CONFIG, R_OK) == 0 ? DEFAULT_CONFIG : NULL;
}

/* Returns the value of an option that takes one, or exits with usage. */
static const char *
option_value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc) {
		fprintf(stderr, "strigil: %s needs a value\n", argv[*i]);
		exit(2);
	}
	return argv[++*i];
}

/* Returns the ISO-8601 time an option takes, or exits with usage. */
static int64_t
option_time(int argc, char **argv, int *i)
{
	const char	*opt = argv[*i];
	int64_t		 t;

	if (clock_parse_iso(option_value(argc, argv, i), &t) != 0) {
		fprintf(stderr, "strigil: %s: not an ISO-8601 time (like "
		    "2026-03-02T08:00:00Z)\n", opt);
		exit(2);
	}
	return t;
}

/* Returns the whole number an option takes, or exits with usage. */
static int
option_int(int argc, char **argv, int *i)
{
	const char	*opt = argv[*i], *v = option_value(argc, argv, i);
	char		*end;
	long		 n = strtol(v, &end, 10);

	if (end == v || *end != '\0' || n < 0 || n > 100000000) {
		fprintf(stderr, "strigil: %s: not a whole number\n", opt);
		exit(2);
	}
	return (int)n;
}

static int
cmd_check(const struct config *cfg, int argc, char **argv)
{
	struct proto_limits	 limits = { cfg->lua_memory, cfg->lua_instructions };
	struct protocol		*p;
	char			*cause = NULL;
	int			 i, failed = 0;

	if (argc < 1) {
		fprintf(stderr, "usage: strigil check PROTOCOL...\n");
		return 2;
	}
	for (i = 0; i < argc; i++) {
		if (proto_load(argv[i], &limits, &p, &cause) != 0) {
			fprintf(stderr, "%s\n", cause);
			free(cause);
			cause = NULL;
			failed++;
			continue;
		}
		printf("%s: ok: %s version %d, %d questionnaire(s), %d "
		    "pressure level(s), %d-day course\n", argv[i], p->id,
		    p->version, p->nqs, p->nlevels, p->course_days);
		proto_free(p);
	}
	return failed > 0 ? 1 : 0;
}

static int
cmd_chat(const struct config *cfg, int argc, char **argv)
{
	struct daemon_opts	o = { cfg, 1, NULL, ":memory:", -1 };
	int			i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--protocol") == 0)
			o.protocol = option_value(argc, argv, &i);
		else if (strcmp(argv[i], "--db") == 0)
			o.database = option_value(argc, argv, &i);
		else if (strcmp(argv[i], "--start") == 0)
			o.start = option_time(argc, argv, &i);
		else {
			fprintf(stderr, "strigil: chat: unknown option %s\n",
			    argv[i]);
			return 2;
		}
	}
	return daemon_main(&o);
}

static int
cmd_simulate(const struct config *cfg, int argc, char **argv)
{
	struct sim_opts	o;
	int		i;

	memset(&o, 0, sizeof o);
	o.cfg = cfg;
	o.days = 42;
	o.patients = 1;
	o.tz = cfg->timezone;
	o.start = -1;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--answers") == 0)
			o.answers = option_value(argc, argv, &i);
		else if (strcmp(argv[i], "--start") == 0)
			o.start = option_time(argc, argv, &i);
		else if (strcmp(argv[i], "--days") == 0)
			o.days = option_int(argc, argv, &i);
		else if (strcmp(argv[i], "--patients") == 0)
			o.patients = option_int(argc, argv, &i);
		else if (strcmp(argv[i], "--tz") == 0)
			o.tz = option_value(argc, argv, &i);
		else if (strcmp(argv[i], "--json") == 0)
			o.json = 1;
		else if (argv[i][0] == '-') {
			fprintf(stderr, "strigil: simulate: unknown option "
			    "%s\n", argv[i]);
			return 2;
		} else if (o.protocol == NULL)
			o.protocol = argv[i];
		else {
			fprintf(stderr, "strigil: simulate takes one "
			    "protocol\n");
			return 2;
		}
	}
	if (o.protocol == NULL) {
		fprintf(stderr, "usage: strigil simulate PROTOCOL [--answers "
		    "FILE] [--start ISO-8601] [--days N] [--patients N] "
		    "[--tz ZONE] [--json]\n");
		return 2;
	}
	return sim_main(&o);
}

static int
cmd_backup(const struct config *cfg, int argc, char **argv)
{
	struct backup_result	 res;
	const char		*file = NULL;
	char			*cause = NULL;
	int			 i, force = 0;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (argv[i][0] == '-' || file != NULL) {
			file = NULL;
			break;
		} else
			file = argv[i];
	}
	if (file == NULL) {
		fprintf(stderr, "usage: strigil backup [--force] FILE\n");
		return 2;
	}
	if (backup_run(cfg->database, file, force, &res, &cause) != 0) {
		fprintf(stderr, "strigil: backup: %s\n", cause);
		free(cause);
		return 1;
	}
	printf("backup: %s -> %s: %lld bytes, %d pages, %d tables, %lld rows, "
	    "integrity ok\n", cfg->database, file, (long long)res.bytes,
	    res.pages, res.tables, (long long)res.rows);
	return 0;
}

/*
 * 1 if a file of the protocol folder loads as protocol `id`. Each file is
 * loaded as `strigil check` would, so a code is never issued for a protocol
 * the daemon could not run.
 */
static int
invite_protocol_found(const struct config *cfg, const char *id)
{
	struct proto_limits	 limits = { cfg->lua_memory, cfg->lua_instructions };
	struct protocol		*p;
	struct dirent		*de;
	DIR			*d;
	char			*path, *cause = NULL;
	size_t			 n;
	int			 found = 0;

	if ((d = opendir(cfg->protocols)) == NULL) {
		fprintf(stderr, "strigil: invite: %s: cannot read the protocol "
		    "folder\n", cfg->protocols);
		return 0;
	}
	while (!found && (de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".lua") != 0 ||
		    de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", cfg->protocols, de->d_name);
		if (proto_load(path, &limits, &p, &cause) == 0) {
			found = strcmp(p->id, id) == 0;
			proto_free(p);
		} else {
			free(cause);
			cause = NULL;
		}
		free(path);
	}
	closedir(d);
	return found;
}

/* Stores a new invite, drawing another code in the unlikely event of a
 * clash. 0, or -1 with a message printed. */
static int
invite_store(const struct config *cfg, struct store_invite *inv)
{
	struct store	*st;
	char		*cause = NULL;
	int		 rc = STORE_DUPLICATE, tries;

	if (store_open(&st, cfg->database, &cause) != 0) {
		fprintf(stderr, "strigil: invite: %s\n", cause);
		free(cause);
		return -1;
	}
	for (tries = 0; tries < 4 && rc == STORE_DUPLICATE; tries++) {
		if (invite_code_new(inv->code, sizeof inv->code) != 0) {
			perror("strigil: invite: /dev/urandom");
			rc = -1;
			break;
		}
		rc = store_invite_insert(st, inv);
	}
	store_close(st);
	if (rc != 0) {
		fprintf(stderr, "strigil: invite: cannot store the code in "
		    "%s\n", cfg->database);
		return -1;
	}
	return 0;
}

static int
cmd_invite(const struct config *cfg, int argc, char **argv)
{
	struct store_invite	 inv;
	const char		*protocol = cfg->default_protocol, *v;
	char			 when[32];
	int			 i, days = INVITE_DAYS;

	memset(&inv, 0, sizeof inv);
	inv.uses_left = 1;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--protocol") == 0)
			protocol = option_value(argc, argv, &i);
		else if (strcmp(argv[i], "--uses") == 0) {
			if ((inv.uses_left = option_int(argc, argv, &i)) < 1) {
				fprintf(stderr, "strigil: invite: --uses must "
				    "be at least 1 (or --unlimited)\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--unlimited") == 0)
			inv.uses_left = STORE_INVITE_UNLIMITED;
		else if (strcmp(argv[i], "--days") == 0) {
			if ((days = option_int(argc, argv, &i)) < 1 ||
			    days > 3650) {
				fprintf(stderr, "strigil: invite: --days must "
				    "be 1 to 3650\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--clinician") == 0) {
			v = option_value(argc, argv, &i);
			snprintf(inv.clinician, sizeof inv.clinician, "%s", v);
		} else if (strcmp(argv[i], "--note") == 0) {
			v = option_value(argc, argv, &i);
			snprintf(inv.note, sizeof inv.note, "%s", v);
		} else {
			fprintf(stderr, "strigil: invite: unknown option %s\n",
			    argv[i]);
			return 2;
		}
	}
	if (protocol == NULL || protocol[0] == '\0' ||
	    strlen(protocol) >= sizeof inv.protocol) {
		fprintf(stderr, "strigil: invite: say which protocol with "
		    "--protocol ID\n");
		return 2;
	}
	if (!invite_protocol_found(cfg, protocol)) {
		fprintf(stderr, "strigil: invite: no protocol %s loads from "
		    "%s (see strigil check)\n", protocol, cfg->protocols);
		return 1;
	}
	snprintf(inv.protocol, sizeof inv.protocol, "%s", protocol);
	inv.created_at = clock_now();
	inv.expires_at = inv.created_at + (int64_t)days * 86400;
	if (invite_store(cfg, &inv) != 0)
		return 1;
	clock_iso(inv.expires_at, when, (int)sizeof when);
	/* The code is a credential: it goes to the operator's terminal,
	 * never into the log. */
	log_info("event=invite_created protocol=%s uses=%d expires=%s",
	    inv.protocol, inv.uses_left, when);
	printf("invite code: %s\n", inv.code);
	printf("protocol:    %s\n", inv.protocol);
	if (inv.uses_left == STORE_INVITE_UNLIMITED)
		printf("uses:        unlimited\n");
	else
		printf("uses:        %d\n", inv.uses_left);
	printf("expires:     %s\n", when);
	printf("\nThe patient sends this to the bot:\n  /start %s\n",
	    inv.code);
	/* On Telegram a link does it in one tap: t.me/<bot>?start=CODE
	 * opens the chat and sends /start CODE. */
	if (cfg->tg_username[0] != '\0')
		printf("On Telegram, this link does the same:\n"
		    "  https://t.me/%s?start=%s\n", cfg->tg_username +
		    (cfg->tg_username[0] == '@'), inv.code);
	else
		printf("On Telegram, the link does the same (put in your bot's "
		    "username, or set telegram.username):\n"
		    "  https://t.me/<bot>?start=%s\n", inv.code);
	memset(inv.code, 0, sizeof inv.code);
	return 0;
}

struct health_reply {
	char	status[128];		/* the status line */
	char	body[HEALTH_BODY_MAX];
	size_t	len;
};

static size_t
health_header(char *data, size_t size, size_t n, void *ud)
{
	struct health_reply	*r = ud;
	size_t			 len = size * n;

	/* The last status line wins: a 100 Continue may come first. */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
			len--;
		snprintf(r->status, sizeof r->status, "%.*s", (int)len, data);
	}
	return size * n;
}

static size_t
health_body(char *data, size_t size, size_t n, void *ud)
{
	struct health_reply	*r = ud;
	size_t			 len = size * n, room;

	room = sizeof r->body - 1 - r->len;
	if (len > room)
		len = room;
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return size * n;
}

/* GET /healthz of the daemon; exit 0 on 200, else 1 (2: bad usage). */
static int
cmd_health(const struct config *cfg, int argc, char **argv)
{
	struct health_reply	*r;
	const char		*host = cfg->http_listen, *url = NULL;
	char			*made = NULL, err[CURL_ERROR_SIZE] = "";
	CURL			*curl;
	CURLcode		 cc;
	long			 code = 0;
	int			 i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--url") == 0)
			url = option_value(argc, argv, &i);
		else {
			fprintf(stderr, "strigil: health: unknown option %s\n",
			    argv[i]);
			return 2;
		}
	}
	if (url == NULL) {
		/* The daemon listens everywhere: ask it on loopback. */
		if (strcmp(host, "0.0.0.0") == 0)
			host = "127.0.0.1";
		else if (strcmp(host, "::") == 0)
			host = "::1";
		made = xasprintf(strchr(host, ':') != NULL ?
		    "http://[%s]:%d/healthz" : "http://%s:%d/healthz", host,
		    (int)cfg->http_port);
		url = made;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (curl = curl_easy_init()) == NULL) {
		fprintf(stderr, "strigil: health: cannot start libcurl\n");
		free(made);
		return 1;
	}
	r = xcalloc(1, sizeof *r);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)HEALTH_TIMEOUT);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, health_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, health_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	if (cc != CURLE_OK)
		fprintf(stderr, "strigil: health: %s: %s\n", url,
		    err[0] != '\0' ? err : curl_easy_strerror(cc));
	else {
		printf("%s\n", r->status);
		if (r->len > 0)
			printf("%s%s", r->body,
			    r->body[r->len - 1] == '\n' ? "" : "\n");
	}
	free(r);
	free(made);
	return code == 200 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct config	 cfg;
	const char	*given = NULL, *cmd;
	char		*cause = NULL;
	int		 i = 1, rc;

	/* The database, its WAL and every backup hold patients' health data:
	 * nothing we create is readable by other users. */
	umask(077);
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0)) {
		version();
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 3 && (strcmp(argv[1], "-c") == 0 ||
	    strcmp(argv[1], "--config") == 0)) {
		given = argv[2];
		i = 3;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[i++];
	if (strcmp(cmd, "run") != 0 && strcmp(cmd, "chat") != 0 &&
	    strcmp(cmd, "check") != 0 && strcmp(cmd, "simulate") != 0 &&
	    strcmp(cmd, "backup") != 0 && strcmp(cmd, "health") != 0 &&
	    strcmp(cmd, "invite") != 0) {
		fprintf(stderr, "strigil: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	clock_init(CLOCK_REAL, -1);
	if (config_load(&cfg, config_path(given), &cause) != 0) {
		fprintf(stderr, "strigil: %s\n", cause);
		free(cause);
		config_free(&cfg);
		return 2;
	}
	log_set_level(cfg.log_level);
	if (strcmp(cmd, "run") == 0) {
		struct daemon_opts o = { &cfg, 0, NULL, NULL, -1 };

		rc = daemon_main(&o);
	} else if (strcmp(cmd, "chat") == 0)
		rc = cmd_chat(&cfg, argc - i, argv + i);
	else if (strcmp(cmd, "check") == 0)
		rc = cmd_check(&cfg, argc - i, argv + i);
	else if (strcmp(cmd, "backup") == 0)
		rc = cmd_backup(&cfg, argc - i, argv + i);
	else if (strcmp(cmd, "health") == 0)
		rc = cmd_health(&cfg, argc - i, argv + i);
	else if (strcmp(cmd, "invite") == 0)
		rc = cmd_invite(&cfg, argc - i, argv + i);
	else
		rc = cmd_simulate(&cfg, argc - i, argv + i);
	config_free(&cfg);
	return rc;
}
