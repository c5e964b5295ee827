/*
 * test_invites.c: invite codes, from the generator to /start CODE.
 *
 * New codes (length, alphabet, all different); a single-use code enrols
 * once and is refused the second time; expiry in virtual time; an unlimited
 * code; codes of the wrong form; the course records its code; a patient
 * already enrolled does not use one up; a code whose protocol is not loaded
 * enrols nobody, says so and keeps its use; a course that ends in its
 * setup gives the use back.
 *
 * Two protocols are loaded, "mini" first (the default) and "other", so an
 * enrolment through a code shows in the welcome's title.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "invite.h"
#include "log.h"
#include "store.h"
#include "test.h"
#include "test_db.h"

#define T0	INT64_C(1772352000)	/* 2026-03-01T08:00:00Z */
#define DAY	INT64_C(86400)
#define AD	"console"

static char		test_dir[] = "/tmp/strigil-invites-XXXXXX";
static char		mini_path[128], other_path[128];
static struct config	cfg;

#define PROTO(id, title) \
    "return {\n" \
    "  id = \"" id "\", version = 1, title = \"" title "\",\n" \
    "  course = { weeks = 2 },\n" \
    "  interval = { min_hours = 48, target_hours = 60 },\n" \
    "  pressure = { levels = { \"light\", \"moderate\" } },\n" \
    "  steps = { \"Apply oil.\" },\n" \
    "}\n"

/* ---- helpers ---------------------------------------------------------- */

struct world {
	struct store	*st;
	struct engine	*e;
	char		 db[160];
};

static int
world_open(struct world *w, const char *name)
{
	char	*cause = NULL;

	memset(w, 0, sizeof *w);
	snprintf(w->db, sizeof w->db, "%s/%s", test_dir, name);
	if (store_open(&w->st, w->db, &cause) != 0 ||
	    engine_new(&w->e, &cfg, w->st, &cause) != 0 ||
	    engine_load_file(w->e, mini_path, &cause) != 0 ||
	    engine_load_file(w->e, other_path, &cause) != 0 ||
	    engine_ready(w->e, &cause) != 0) {
		fprintf(stderr, "world_open: %s\n", cause);
		free(cause);
		test_failed_checks++;
		engine_free(w->e);
		store_close(w->st);
		memset(w, 0, sizeof *w);
		return -1;
	}
	return 0;
}

static void
world_close(struct world *w)
{
	char	buf[200];

	engine_free(w->e);
	store_close(w->st);
	unlink(w->db);
	snprintf(buf, sizeof buf, "%s-wal", w->db);
	unlink(buf);
	snprintf(buf, sizeof buf, "%s-shm", w->db);
	unlink(buf);
	memset(w, 0, sizeof *w);
}

static uint64_t	msg_seq;

static int
say(struct world *w, const char *chat, const char *text)
{
	char	id[32];

	snprintf(id, sizeof id, "x%llu", (unsigned long long)++msg_seq);
	return engine_inbound(w->e, AD, chat, id, text, clock_now());
}

/* The bodies delivered since the last call, joined by newlines (owned). */
static char *
drain(struct world *w)
{
	struct store_out	 o;
	char			*all = strdup(""), *next;
	size_t			 n;

	while (store_outbox_next(w->st, AD, clock_now(), &o) == 0) {
		store_outbox_sent(w->st, o.id, clock_now());
		n = strlen(all) + strlen(o.body) + 2;
		next = malloc(n);
		snprintf(next, n, "%s%s\n", all, o.body);
		free(all);
		all = next;
		store_out_clear(&o);
	}
	return all;
}

/* Sends `text` from `chat`; 1 if what came back contains `needle`. */
static int
says(struct world *w, const char *chat, const char *text, const char *needle)
{
	char	*got;
	int	 found;

	CHECK_INT(say(w, chat, text), 0);
	got = drain(w);
	found = strstr(got, needle) != NULL;
	if (!found)
		fprintf(stderr, "%s -> %s (wanted \"%s\")\n", text, got,
		    needle);
	free(got);
	return found;
}

static void
add_invite(struct world *w, const char *code, const char *protocol,
    int uses, int64_t expires)
{
	struct store_invite	inv;

	memset(&inv, 0, sizeof inv);
	snprintf(inv.code, sizeof inv.code, "%s", code);
	snprintf(inv.protocol, sizeof inv.protocol, "%s", protocol);
	inv.created_at = clock_now();
	inv.expires_at = expires;
	inv.uses_left = uses;
	CHECK_INT(store_invite_insert(w->st, &inv), 0);
}

static int
uses_left(struct world *w, const char *code)
{
	struct store_invite	inv;

	if (store_invite_get(w->st, code, &inv) != 0)
		return -100;
	return inv.uses_left;
}

/* The protocol of the patient's current course, or "" if none. */
static void
course_of(struct world *w, const char *chat, char *buf, size_t size)
{
	struct store_patient	p;
	struct store_enrolment	e;

	buf[0] = '\0';
	if (store_patient_find(w->st, AD, chat, &p) != 0)
		return;
	if (store_enrolment_current(w->st, p.id, &e) == 0) {
		snprintf(buf, size, "%s", e.protocol);
		store_enrolment_clear(&e);
	}
}

/* ---- tests ------------------------------------------------------------ */

static void
test_code_new(void)
{
	char	codes[64][INVITE_CODE_LEN + 1], small[8];
	int	i, j;

	for (i = 0; i < 64; i++) {
		CHECK_INT(invite_code_new(codes[i], sizeof codes[i]), 0);
		CHECK_INT(strlen(codes[i]), 16);
		CHECK_INT(strspn(codes[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789_-"), 16);
		CHECK(invite_code_valid(codes[i]));
		for (j = 0; j < i; j++)
			CHECK(strcmp(codes[i], codes[j]) != 0);
	}
	CHECK_INT(invite_code_new(small, sizeof small), -1);
	CHECK(!invite_code_valid(""));
	CHECK(!invite_code_valid("has space"));
	CHECK(!invite_code_valid("../etc"));
	CHECK(invite_code_valid("a_b-C9"));
	CHECK(invite_code_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	CHECK(!invite_code_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void
test_single_use(void)
{
	struct world	w;
	char		proto[64];

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, "single.db") != 0)
		return;
	add_invite(&w, "Once_only-1", "other", 1, T0 + 14 * DAY);
	CHECK(says(&w, "1", "/start Once_only-1", "\"Other\""));
	course_of(&w, "1", proto, sizeof proto);
	CHECK_STR(proto, "other");
	CHECK_INT(uses_left(&w, "Once_only-1"), 0);
	CHECK_INT(raw_int(w.db, "SELECT count(*) FROM enrolments"
	    " WHERE invite = 'Once_only-1' AND protocol = 'other'"), 1);

	/* A second patient with the same code: used, and no course. */
	CHECK(says(&w, "2", "/start Once_only-1", "already been used"));
	course_of(&w, "2", proto, sizeof proto);
	CHECK_STR(proto, "");
	CHECK_INT(uses_left(&w, "Once_only-1"), 0);

	/* Without a code, the default protocol, and no code recorded. */
	CHECK(says(&w, "3", "/start", "\"Mini\""));
	CHECK_INT(raw_int(w.db, "SELECT count(*) FROM enrolments"
	    " WHERE invite IS NULL"), 1);
	world_close(&w);
}

/*
 * A course that ends before its setup is done gives the code's use back:
 * consent declined, /stop. An erasure does not, nor does a course set up
 * and then stopped, and an unlimited code does not change.
 */
static void
test_declined_gives_back(void)
{
	struct world	w;

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, "declined.db") != 0)
		return;
	add_invite(&w, "Once-no", "other", 1, T0 + 14 * DAY);
	CHECK(says(&w, "1", "/start Once-no", "\"Other\""));
	CHECK_INT(uses_left(&w, "Once-no"), 0);
	CHECK(says(&w, "1", "no", "/start"));
	CHECK_INT(uses_left(&w, "Once-no"), 1);
	/* They change their mind: the same link works. */
	CHECK(says(&w, "1", "/start Once-no", "\"Other\""));
	CHECK_INT(uses_left(&w, "Once-no"), 0);
	CHECK_INT(say(&w, "1", "/stop"), 0);
	CHECK(says(&w, "1", "yes", "has ended"));
	CHECK_INT(uses_left(&w, "Once-no"), 1);
	/* Erased in setup: forgotten, and the code stays used (as
	 * e2e/test_access checks too). */
	CHECK(says(&w, "2", "/start Once-no", "\"Other\""));
	CHECK_INT(say(&w, "2", "/erase"), 0);
	CHECK(says(&w, "2", "yes", "deleted"));
	CHECK_INT(uses_left(&w, "Once-no"), 0);

	/* Set up, then stopped: the code was used. */
	add_invite(&w, "Once-3", "other", 1, T0 + 14 * DAY);
	CHECK(says(&w, "3", "/start Once-3", "\"Other\""));
	CHECK_INT(say(&w, "3", "yes"), 0);
	CHECK_INT(say(&w, "3", "1"), 0);
	CHECK_INT(say(&w, "3", "1"), 0);
	CHECK_INT(say(&w, "3", "/stop"), 0);
	CHECK(says(&w, "3", "yes", "has ended"));
	CHECK_INT(uses_left(&w, "Once-3"), 0);

	add_invite(&w, "Many", "other", -1, T0 + 14 * DAY);
	CHECK(says(&w, "4", "/start Many", "\"Other\""));
	CHECK(says(&w, "4", "no", "/start"));
	CHECK_INT(uses_left(&w, "Many"), -1);
	world_close(&w);
}

static void
test_expiry(void)
{
	struct world	w;
	char		proto[64];

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, "expiry.db") != 0)
		return;
	add_invite(&w, "soon", "other", 5, T0 + 2 * DAY);
	CHECK_INT(clock_advance(2 * DAY - 1), 0);
	CHECK(says(&w, "1", "/start soon", "\"Other\""));
	CHECK_INT(uses_left(&w, "soon"), 4);
	CHECK_INT(clock_advance(1), 0);		/* exactly at expiry */
	CHECK(says(&w, "2", "/start soon", "expired"));
	course_of(&w, "2", proto, sizeof proto);
	CHECK_STR(proto, "");
	CHECK_INT(uses_left(&w, "soon"), 4);
	CHECK_INT(store_invite_consume(w.st, "soon", clock_now()),
	    STORE_NOTFOUND);
	world_close(&w);
}

static void
test_unlimited(void)
{
	struct world	w;
	char		chat[8];
	int		i;

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, "unlimited.db") != 0)
		return;
	add_invite(&w, "clinic-poster", "other", STORE_INVITE_UNLIMITED,
	    T0 + 30 * DAY);
	for (i = 0; i < 5; i++) {
		snprintf(chat, sizeof chat, "%d", i + 1);
		CHECK(says(&w, chat, "/start clinic-poster", "\"Other\""));
	}
	CHECK_INT(uses_left(&w, "clinic-poster"), STORE_INVITE_UNLIMITED);
	CHECK_INT(raw_int(w.db, "SELECT count(*) FROM enrolments"
	    " WHERE invite = 'clinic-poster'"), 5);
	world_close(&w);
}

static void
test_wrong_format(void)
{
	struct world	w;
	char		proto[64];

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, "format.db") != 0)
		return;
	add_invite(&w, "good", "other", 1, T0 + DAY);
	CHECK(says(&w, "1", "/start good extra", "isn't valid"));
	CHECK(says(&w, "1", "/start ../good", "isn't valid"));
	CHECK(says(&w, "1", "/start go'od", "isn't valid"));
	CHECK(says(&w, "1", "/start aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaa", "isn't valid"));
	CHECK(says(&w, "1", "/start unknown-code", "isn't valid"));
	CHECK(says(&w, "1", "/start GOOD", "isn't valid"));	/* exact case */
	course_of(&w, "1", proto, sizeof proto);
	CHECK_STR(proto, "");
	CHECK_INT(uses_left(&w, "good"), 1);
	/* Trailing blanks are not part of the code. */
	CHECK(says(&w, "1", "/start good  ", "\"Other\""));
	CHECK_INT(uses_left(&w, "good"), 0);
	world_close(&w);
}

static void
test_already_enrolled(void)
{
	struct world	w;
	char		proto[64];

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, "enrolled.db") != 0)
		return;
	add_invite(&w, "spare", "other", 1, T0 + DAY);
	CHECK(says(&w, "1", "/start", "\"Mini\""));
	CHECK(says(&w, "1", "yes", "time zone"));
	CHECK(says(&w, "1", "1", "time of day"));
	CHECK(says(&w, "1", "1", "remind you"));
	CHECK(says(&w, "1", "/start spare", "already signed up"));
	course_of(&w, "1", proto, sizeof proto);
	CHECK_STR(proto, "mini");
	CHECK_INT(uses_left(&w, "spare"), 1);
	/* Still in setup: the question again, and the code is kept too. */
	CHECK(says(&w, "2", "/start", "\"Mini\""));
	CHECK(says(&w, "2", "/start spare", "agree"));
	CHECK_INT(uses_left(&w, "spare"), 1);
	world_close(&w);
}

static void
test_protocol_missing(void)
{
	struct world	w;
	char		proto[64];

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, "missing.db") != 0)
		return;
	add_invite(&w, "ghostly", "ghost", 1, T0 + DAY);
	CHECK(says(&w, "1", "/start ghostly", "try the same link again"));
	course_of(&w, "1", proto, sizeof proto);
	CHECK_STR(proto, "");
	CHECK_INT(uses_left(&w, "ghostly"), 1);
	world_close(&w);
}

static void
test_store_invites(void)
{
	struct store		*st;
	struct store_invite	 inv;
	char			*cause = NULL;

	if (store_open(&st, ":memory:", &cause) != 0) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		test_failed_checks++;
		return;
	}
	memset(&inv, 0, sizeof inv);
	snprintf(inv.code, sizeof inv.code, "abc");
	snprintf(inv.protocol, sizeof inv.protocol, "p");
	snprintf(inv.note, sizeof inv.note, "for ward 3");
	inv.created_at = T0;
	inv.expires_at = T0 + DAY;
	inv.uses_left = 2;
	CHECK_INT(store_invite_insert(st, &inv), 0);
	CHECK_INT(store_invite_insert(st, &inv), STORE_DUPLICATE);
	memset(&inv, 0, sizeof inv);
	CHECK_INT(store_invite_get(st, "abc", &inv), 0);
	CHECK_STR(inv.protocol, "p");
	CHECK_STR(inv.note, "for ward 3");
	CHECK_STR(inv.clinician, "");
	CHECK_INT(inv.expires_at, T0 + DAY);
	CHECK_INT(store_invite_get(st, "nope", &inv), STORE_NOTFOUND);
	CHECK_INT(store_invite_consume(st, "abc", T0), 0);
	CHECK_INT(store_invite_consume(st, "abc", T0), 0);
	CHECK_INT(store_invite_consume(st, "abc", T0), STORE_NOTFOUND);
	CHECK_INT(store_invite_consume(st, "nope", T0), STORE_NOTFOUND);
	CHECK_INT(store_invite_get(st, "abc", &inv), 0);
	CHECK_INT(inv.uses_left, 0);
	store_close(st);
}

int
main(void)
{
	char	*cause = NULL;
	int	 rc;

	log_set_level(LOG_ERROR);
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(mini_path, sizeof mini_path, "%s/mini.lua", test_dir);
	snprintf(other_path, sizeof other_path, "%s/other.lua", test_dir);
	test_write_file(mini_path, PROTO("mini", "Mini"));
	test_write_file(other_path, PROTO("other", "Other"));
	if (config_load(&cfg, NULL, &cause) != 0) {
		fprintf(stderr, "config: %s\n", cause);
		return 2;
	}
	free(cfg.default_protocol);
	cfg.default_protocol = strdup("mini");
	TEST(test_code_new);
	TEST(test_store_invites);
	TEST(test_single_use);
	TEST(test_declined_gives_back);
	TEST(test_expiry);
	TEST(test_unlimited);
	TEST(test_wrong_format);
	TEST(test_already_enrolled);
	TEST(test_protocol_missing);
	rc = TEST_END();
	config_free(&cfg);
	unlink(mini_path);
	unlink(other_path);
	rmdir(test_dir);
	return rc;
}
