/*
 * test_hostile.c: hostile protocols against the real engine.
 *
 * Every .lua file in tests/sandbox/hostile/ is a protocol that misbehaves, either
 * while it loads ("-- when: load") or in its message handler ("-- when:
 * message"); "-- expect:" is the text its error must contain (alternatives
 * separated by '|', or "ok" when nothing may break), and "--> here" marks
 * the line the error must name (memory errors name only the file). All of them are loaded into one engine
 * next to tests/sandbox/mini.lua, a well-behaved protocol, and each gets a
 * patient of its own (through an invite). Then, hostile by hostile:
 *  - the load-time ones are refused with "file:line: why", and the engine
 *    starts without them;
 *  - a message to the hostile protocol's patient fails with the expected
 *    cause (kept in the inbox row), the patient hears the holding message
 *    and nobody else hears anything;
 *  - the patient of the good protocol, writing in between, is served
 *    every time, and its state counts every message;
 *  - the hostile one fails the same way a second time (its sandbox is
 *    still usable, not wedged), and no other patient's state changed.
 * Runs from the repository root (ctest sets the working directory).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "store.h"
#include "test.h"
#include "test_db.h"
#include "xmalloc.h"

#define HOSTILE_DIR	"tests/sandbox/hostile"
#define GOOD		"tests/sandbox/mini.lua"
#define T0		INT64_C(1772352000)	/* 2026-03-01T08:00:00Z */
#define AD		"console"
#define MAX_CASES	64

struct hcase {
	char	name[64];
	char	path[192];
	char	expect[256];
	int	at_load;
	int	line;		/* of "--> here", or 0 */
};

static struct hcase	cases[MAX_CASES];
static int		ncases;
static char		test_dir[] = "/tmp/strigil-hostile-XXXXXX";
static char		db[256];
static struct config	cfg;
static struct store	*st;
static struct engine	*eng;
static uint64_t		seq;

static int
case_cmp(const void *a, const void *b)
{
	return strcmp(((const struct hcase *)a)->name,
	    ((const struct hcase *)b)->name);
}

/* Reads the header comments and the marked line of one hostile file. */
static void
read_case(struct hcase *c)
{
	FILE	*f;
	char	 line[4096], *v;
	int	 n = 0;

	if ((f = fopen(c->path, "r")) == NULL) {
		perror(c->path);
		exit(2);
	}
	while (fgets(line, sizeof line, f) != NULL) {
		n++;
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "-- expect: ", 11) == 0)
			snprintf(c->expect, sizeof c->expect, "%.255s", line + 11);
		else if (strncmp(line, "-- when: ", 9) == 0)
			c->at_load = strcmp(line + 9, "load") == 0;
		else if ((v = strstr(line, "--> here")) != NULL && c->line == 0)
			c->line = n;
	}
	fclose(f);
	if (c->expect[0] == '\0') {
		fprintf(stderr, "%s: no \"-- expect:\" line\n", c->path);
		exit(2);
	}
}

static void
scan_cases(void)
{
	DIR		*d;
	struct dirent	*de;
	size_t		 len;
	struct hcase	*c;

	if ((d = opendir(HOSTILE_DIR)) == NULL) {
		perror(HOSTILE_DIR);
		exit(2);
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".lua") != 0 ||
		    len - 4 >= sizeof cases[0].name)
			continue;
		if (ncases == MAX_CASES) {
			fprintf(stderr, "more than %d hostile files\n",
			    MAX_CASES);
			exit(2);
		}
		c = &cases[ncases++];
		memset(c, 0, sizeof *c);
		memcpy(c->name, de->d_name, len - 4);
		/* The name fits (checked above), so the path does; the
		 * check says so to the compiler, which cannot see it. */
		if ((size_t)snprintf(c->path, sizeof c->path, "%s/%.*s.lua",
		    HOSTILE_DIR, (int)(len - 4), de->d_name) >= sizeof c->path)
			continue;
		read_case(c);
	}
	closedir(d);
	qsort(cases, ncases, sizeof cases[0], case_cmp);
}

/* 1 if `cause` names the file (and the marked line) and holds one of the
 * '|'-separated expectations. */
static int
cause_ok(const struct hcase *c, const char *cause)
{
	char	 where[128], buf[256], *alt, *save = NULL;
	int	 found = 0;

	if (cause == NULL)
		return 0;
	/* The allocator cannot ask Lua where it is: memory errors name
	 * only the file. */
	if (c->line > 0 && strstr(cause, "memory limit exceeded") == NULL)
		snprintf(where, sizeof where, "%s.lua:%d:", c->name, c->line);
	else
		snprintf(where, sizeof where, "%s.lua", c->name);
	snprintf(buf, sizeof buf, "%s", c->expect);
	for (alt = strtok_r(buf, "|", &save); alt != NULL;
	    alt = strtok_r(NULL, "|", &save))
		found |= strstr(cause, alt) != NULL;
	if (!found || strstr(cause, where) == NULL) {
		fprintf(stderr, "  %s: cause \"%s\"\n  want \"%s\" and \"%s\"\n",
		    c->name, cause, where, c->expect);
		return 0;
	}
	return 1;
}

/* Delivers the console outbox; how many messages went to `chat`, and how
 * many to anybody else. Those to `chat` must contain `needle`. */
static void
drain(int64_t now, const char *chat, const char *needle, int *mine,
    int *others)
{
	struct store_out	o;

	*mine = *others = 0;
	while (store_outbox_next(st, AD, now, &o) == 0) {
		store_outbox_sent(st, o.id, now);
		if (strcmp(o.chat, chat) == 0) {
			(*mine)++;
			if (needle != NULL && strstr(o.body, needle) == NULL) {
				fprintf(stderr, "  to %s: \"%s\", want \"%s\"\n",
				    chat, o.body, needle);
				test_failed_checks++;
			}
		} else
			(*others)++;
		store_out_clear(&o);
	}
}

static int
say(const char *chat, const char *text, int64_t now, char *id, size_t size)
{
	char	buf[32];

	if (id == NULL) {
		id = buf;
		size = sizeof buf;
	}
	snprintf(id, size, "m%llu", (unsigned long long)++seq);
	return engine_inbound(eng, AD, chat, id, text, now);
}

/* /start [code], consent, default zone, default reminder. */
static void
enrol(const char *chat, const char *code, int64_t now)
{
	char	start[96];
	int	mine, others;

	snprintf(start, sizeof start, "/start%s%s", code ? " " : "",
	    code ? code : "");
	CHECK_INT(say(chat, start, now, NULL, 0), 0);
	CHECK_INT(say(chat, "yes", now, NULL, 0), 0);
	CHECK_INT(say(chat, "1", now, NULL, 0), 0);
	CHECK_INT(say(chat, "1", now, NULL, 0), 0);
	drain(now, chat, NULL, &mine, &others);
	CHECK_INT(others, 0);
}

/* The good patient writes and is thanked; its state counts messages. */
static void
good_served(int64_t now, int want_n)
{
	char	id[32], sql[160], want[32], *state;
	int	mine, others;

	CHECK_INT(say("good", "how are you", now, id, sizeof id), 0);
	drain(now, "good", "noted", &mine, &others);
	CHECK_INT(mine, 1);
	CHECK_INT(others, 0);
	snprintf(sql, sizeof sql, "SELECT status FROM inbox WHERE "
	    "external_id = '%s'", id);
	state = raw_text(db, sql);
	CHECK(state != NULL && strcmp(state, "done") == 0);
	free(state);
	state = raw_text(db, "SELECT s.data FROM protocol_state s JOIN "
	    "enrolments e ON e.id = s.enrolment_id JOIN patients p ON "
	    "p.id = e.patient_id WHERE p.chat = 'good'");
	snprintf(want, sizeof want, "{\"n\":%d}", want_n);
	CHECK(state != NULL && strcmp(state, want) == 0);
	if (state == NULL || strcmp(state, want) != 0)
		fprintf(stderr, "  good state %s, want %s\n",
		    state ? state : "(null)", want);
	free(state);
}

/* One message from a hostile protocol's patient. */
static void
hostile_message(const struct hcase *c, const char *chat, int64_t now)
{
	char	 id[32], sql[160], *status, *err;
	int	 mine, others, ok = strcmp(c->expect, "ok") == 0;

	CHECK_INT(say(chat, "hello", now, id, sizeof id), 0);
	snprintf(sql, sizeof sql, "SELECT status FROM inbox WHERE "
	    "external_id = '%s'", id);
	status = raw_text(db, sql);
	snprintf(sql, sizeof sql, "SELECT error FROM inbox WHERE "
	    "external_id = '%s'", id);
	err = raw_text(db, sql);
	if (ok) {
		CHECK(status != NULL && strcmp(status, "done") == 0);
		drain(now, chat, "noted", &mine, &others);
	} else {
		CHECK(status != NULL && strcmp(status, "failed") == 0);
		CHECK(cause_ok(c, err));
		drain(now, chat, "Something went wrong", &mine, &others);
	}
	if (status == NULL || (strcmp(status, ok ? "done" : "failed") != 0))
		fprintf(stderr, "  %s: inbox status %s (%s)\n", c->name,
		    status ? status : "(null)", err ? err : "");
	CHECK_INT(mine, 1);
	CHECK_INT(others, 0);
	free(status);
	free(err);
}

static void
test_hostile(void)
{
	struct store_invite	 inv;
	struct hcase		*c;
	char			*cause = NULL, *integrity, chat[80], code[80];
	int			 i, good_n = 0, failing = 0;
	int64_t			 now = T0;

	CHECK(ncases >= 20);
	if (store_open(&st, db, &cause) != 0 ||
	    engine_new(&eng, &cfg, st, &cause) != 0 ||
	    engine_load_file(eng, GOOD, &cause) != 0) {
		fprintf(stderr, "setup: %s\n", cause);
		exit(2);
	}
	/* The failures below are expected; each logs one error line. */
	log_set_level(LOG_ERROR);
	for (i = 0; i < ncases; i++) {
		c = &cases[i];
		cause = NULL;
		if (c->at_load) {
			if (engine_load_file(eng, c->path, &cause) == 0) {
				fprintf(stderr, "  %s: loaded\n", c->name);
				test_failed_checks++;
			} else
				CHECK(cause_ok(c, cause));
		} else if (engine_load_file(eng, c->path, &cause) != 0) {
			fprintf(stderr, "  %s: %s\n", c->name, cause);
			test_failed_checks++;
		}
		free(cause);
	}
	cause = NULL;
	if (engine_ready(eng, &cause) != 0) {
		fprintf(stderr, "engine_ready: %s\n", cause);
		exit(2);
	}

	enrol("good", NULL, now);
	good_served(now, ++good_n);
	for (i = 0; i < ncases; i++) {
		c = &cases[i];
		if (c->at_load)
			continue;
		now += 60;
		memset(&inv, 0, sizeof inv);
		snprintf(code, sizeof code, "inv_%.59s", c->name);
		snprintf(inv.code, sizeof inv.code, "%.64s", code);
		snprintf(inv.protocol, sizeof inv.protocol, "%.63s", c->name);
		inv.created_at = now;
		inv.expires_at = now + 86400;
		inv.uses_left = 1;
		CHECK_INT(store_invite_insert(st, &inv), 0);
		snprintf(chat, sizeof chat, "h_%.63s", c->name);
		enrol(chat, code, now);
		hostile_message(c, chat, now);
		good_served(now, ++good_n);
		/* Again: the sandbox is not wedged by what happened. */
		hostile_message(c, chat, now + 1);
		good_served(now + 1, ++good_n);
		if (strcmp(c->expect, "ok") != 0)
			failing += 2;
	}
	CHECK_INT(engine_stats(eng)->lua_errors, failing);
	/* No hostile state was ever saved: each failure rolled back. */
	CHECK_INT(raw_int(db, "SELECT count(*) FROM protocol_state s JOIN "
	    "enrolments e ON e.id = s.enrolment_id JOIN patients p ON "
	    "p.id = e.patient_id WHERE p.chat LIKE 'h_%' AND "
	    "s.data NOT IN ('', '{}')"), 0);
	integrity = raw_text(db, "PRAGMA integrity_check");
	CHECK(integrity != NULL && strcmp(integrity, "ok") == 0);
	free(integrity);
	log_set_level(LOG_WARN);
	engine_free(eng);
	store_close(st);
}

int
main(void)
{
	char	*cause = NULL;
	int	 rc;

	log_set_level(LOG_WARN);
	scan_cases();
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(db, sizeof db, "%s/hostile.db", test_dir);
	if (config_load(&cfg, NULL, &cause) != 0) {
		fprintf(stderr, "config: %s\n", cause);
		return 2;
	}
	free(cfg.default_protocol);
	cfg.default_protocol = xstrdup("mini");
	/* Smaller than the defaults, so the suite runs fast under ASan; the
	 * limits work the same at any size. */
	cfg.lua_memory = 16u << 20;
	cfg.lua_instructions = 2000000;
	TEST(test_hostile);
	rc = TEST_END();
	config_free(&cfg);
	unlink(db);
	snprintf(db, sizeof db, "%s/hostile.db-wal", test_dir);
	unlink(db);
	snprintf(db, sizeof db, "%s/hostile.db-shm", test_dir);
	unlink(db);
	rmdir(test_dir);
	return rc;
}
