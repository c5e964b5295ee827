/*
 * test_store.c: migrations, WAL, round trips, inbox dedupe, outbox, jobs and
 * transactions of the SQLite store.
 *
 * File databases live in a mkdtemp folder removed at the end; the rest use
 * ":memory:".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "test.h"
#include "test_db.h"

static char	test_dir[] = "/tmp/strigil-store-XXXXXX";

static void
path_in_dir(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", test_dir, name);
}

static struct store *
open_mem(void)
{
	return db_store(":memory:");
}

static void
new_patient(struct store *s, struct store_patient *p, const char *chat)
{
	memset(p, 0, sizeof *p);
	snprintf(p->adapter, sizeof p->adapter, "console");
	snprintf(p->chat, sizeof p->chat, "%s", chat);
	snprintf(p->tz, sizeof p->tz, "Europe/Berlin");
	snprintf(p->lang, sizeof p->lang, "en");
	p->remind_min = 18 * 60;
	p->created_at = 1000;
	CHECK_INT(store_patient_insert(s, p), 0);
}

static int64_t
add_job(struct store *s, int64_t enrolment, const char *kind, int64_t due)
{
	struct store_job	j;

	memset(&j, 0, sizeof j);
	j.patient_id = 1;
	j.enrolment_id = enrolment;
	snprintf(j.kind, sizeof j.kind, "%s", kind);
	j.due_at = due;
	CHECK_INT(store_job_insert(s, &j), 0);
	return j.id;
}

/* ---- migrations and opening ---------------------------------------- */

static void
test_fresh_memory(void)
{
	struct store	*s = open_mem();
	int64_t		 n = -1;

	CHECK_INT(store_schema_version(s), SCHEMA_LATEST);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(store_outbox_depth(s, &n), 0);
	CHECK_INT(n, 0);
	store_close(s);
}

static void
test_file_reopen(void)
{
	struct store		*s = NULL;
	struct store_patient	 p, q;
	char			 path[128], *cause = NULL;

	path_in_dir(path, sizeof path, "reopen.db");
	CHECK_INT(store_open(&s, path, &cause), 0);
	if (s == NULL)
		return;
	CHECK_INT(store_schema_version(s), SCHEMA_LATEST);
	new_patient(s, &p, "c1");
	store_close(s);

	/* A second open migrates nothing and keeps the data. */
	s = NULL;
	CHECK_INT(store_open(&s, path, &cause), 0);
	if (s == NULL)
		return;
	CHECK_INT(store_schema_version(s), SCHEMA_LATEST);
	CHECK_INT(store_patient_find(s, "console", "c1", &q), 0);
	CHECK_INT(q.id, p.id);
	CHECK_STR(q.tz, "Europe/Berlin");
	store_close(s);

	/* WAL on file databases; the mode is persistent, so a plain
	 * connection sees it. */
	CHECK_INT(raw_int(path, "PRAGMA user_version"), SCHEMA_LATEST);
	{
		sqlite3		*db;
		sqlite3_stmt	*st;

		CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
		CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1,
		    &st, NULL), SQLITE_OK);
		CHECK_INT(sqlite3_step(st), SQLITE_ROW);
		CHECK_STR((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	db_unlink(path);
}

/* Schema 6 reads a questionnaire's answers from `answers`: patients who
 * were half way through one under schema 5 (ask_i answers given, kept in
 * ask_a) go on from where they were. */
static void
test_migration_6(void)
{
	struct store		*s = NULL;
	struct store_patient	 p;
	char			 path[128], got[DB_ANSWERS_MAX], *cause = NULL;
	const char		*want[] = {
		"soreness=3;redness=no;",	/* 2 of a round after others */
		"",				/* none open */
		"",				/* just asked */
		"pain=1;",			/* all their answers */
		"",				/* asked, never answered */
	};
	int			 asked[] = { 2, 0, 0, 1, 0 }, i;

	path_in_dir(path, sizeof path, "v5.db");
	CHECK_INT(store_open(&s, path, &cause), 0);
	if (s == NULL)
		return;
	store_close(s);
	/* Back to schema 5: the later migrations' columns go. */
	CHECK_INT(raw_exec(path,
	    "DROP TABLE protocol_helpers;"
	    "ALTER TABLE patients DROP COLUMN ask_prev;"
	    "ALTER TABLE outbox DROP COLUMN sent_upto;"
	    "ALTER TABLE patients DROP COLUMN ask_from;"
	    "ALTER TABLE patients ADD COLUMN ask_i INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE patients ADD COLUMN ask_a TEXT;"
	    "INSERT INTO patients (id, adapter, chat, tz, remind_min, lang,"
	    " ask_q, ask_i, ask_a, created_at) VALUES"
	    " (1, 'console', 'c1', 'UTC', 0, 'en', 'checkin', 2,"
	    "  '{\"soreness\":3,\"redness\":false}', 1),"
	    " (2, 'console', 'c2', 'UTC', 0, 'en', '', 0, NULL, 1),"
	    " (3, 'console', 'c3', 'UTC', 0, 'en', 'checkin', 0, '{}', 1),"
	    " (4, 'console', 'c4', 'UTC', 0, 'en', 'checkin', 1,"
	    "  '{\"pain\":1}', 1),"
	    " (5, 'console', 'c5', 'UTC', 0, 'en', 'checkin', 0, '{}', 1);"
	    "INSERT INTO answers (patient_id, enrolment_id, questionnaire,"
	    " question, value, answered_at) VALUES"
	    " (1, 0, 'setup', 'consent', 'yes', 1),"
	    " (2, 0, 'setup', 'consent', 'yes', 1),"
	    " (1, 0, 'checkin', 'soreness', '5', 2),"
	    " (3, 0, 'setup', 'consent', 'yes', 2),"
	    " (1, 0, 'checkin', 'soreness', '3', 3),"
	    " (4, 0, 'checkin', 'pain', '1', 3),"
	    " (1, 0, 'checkin', 'redness', 'no', 4);"
	    "PRAGMA user_version = 5;"), 0);
	s = NULL;
	CHECK_INT(store_open(&s, path, &cause), 0);
	if (s == NULL)
		return;
	CHECK_INT(store_schema_version(s), SCHEMA_LATEST);
	for (i = 0; i < 5; i++) {
		got[0] = '\0';
		CHECK_INT(store_patient_get(s, i + 1, &p), 0);
		CHECK_INT(p.ask_i, asked[i]);
		if (p.ask_q[0] != '\0')
			CHECK_INT(store_answer_since(s, p.id, p.ask_from,
			    db_collect_answer, got), 0);
		CHECK_STR(got, want[i]);
	}
	store_close(s);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM pragma_table_info("
	    "'patients') WHERE name IN ('ask_i', 'ask_a')"), 0);
	db_unlink(path);
}

static void
test_newer_refused(void)
{
	struct store	*s = NULL;
	sqlite3		*db;
	char		 path[128], sql[64], v[16], *cause = NULL;

	path_in_dir(path, sizeof path, "newer.db");
	snprintf(v, sizeof v, "%d", SCHEMA_LATEST + 1);
	snprintf(sql, sizeof sql, "CREATE TABLE x (a); PRAGMA user_version = %s;",
	    v);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	CHECK_INT(store_open(&s, path, &cause), -1);
	CHECK(s == NULL);
	CHECK(cause != NULL && strstr(cause, "newer") != NULL);
	CHECK(cause != NULL && strstr(cause, v) != NULL);
	free(cause);
	/* Nothing was touched. */
	CHECK_INT(raw_int(path, "PRAGMA user_version"), SCHEMA_LATEST + 1);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM sqlite_master"
	    " WHERE name = 'patients'"), 0);
	db_unlink(path);
}

static void
test_open_fails(void)
{
	struct store	*s = NULL;
	char		*cause = NULL;

	CHECK_INT(store_open(&s, "/nonexistent-dir/x/y.db", &cause), -1);
	CHECK(cause != NULL && strstr(cause, "/nonexistent-dir/x/y.db") != NULL);
	free(cause);
}

/* ---- round trips ---------------------------------------------------- */

static void
test_patient(void)
{
	struct store		*s = open_mem();
	struct store_patient	 p, q, r;

	new_patient(s, &p, "42");
	CHECK(p.id > 0);
	CHECK_INT(store_patient_find(s, "console", "43", &q), STORE_NOTFOUND);
	CHECK_INT(store_patient_find(s, "telegram", "42", &q), STORE_NOTFOUND);
	CHECK_INT(store_patient_get(s, p.id + 100, &q), STORE_NOTFOUND);

	CHECK_INT(store_patient_get(s, p.id, &q), 0);
	CHECK_STR(q.adapter, "console");
	CHECK_STR(q.chat, "42");
	CHECK_INT(q.remind_min, 18 * 60);
	CHECK_STR(q.ask_q, "");
	CHECK_INT(q.ask_from, 0);
	CHECK_INT(q.ask_i, 0);
	CHECK_INT(q.created_at, 1000);

	snprintf(q.tz, sizeof q.tz, "America/New_York");
	q.consent = 1;
	q.unreachable = 1;
	q.remind_min = 7 * 60 + 30;
	snprintf(q.lang, sizeof q.lang, "de");
	CHECK_INT(store_patient_update(s, &q), 0);

	CHECK_INT(store_patient_find(s, "console", "42", &r), 0);
	CHECK_STR(r.tz, "America/New_York");
	CHECK_STR(r.ask_q, "");
	CHECK_INT(r.consent, 1);
	CHECK_INT(r.unreachable, 1);
	CHECK_INT(r.remind_min, 450);
	CHECK_STR(r.lang, "de");

	/* (adapter, chat) is unique. */
	memset(&q, 0, sizeof q);
	snprintf(q.adapter, sizeof q.adapter, "console");
	snprintf(q.chat, sizeof q.chat, "42");
	snprintf(q.tz, sizeof q.tz, "UTC");
	snprintf(q.lang, sizeof q.lang, "en");
	CHECK_INT(store_patient_insert(s, &q), -1);
	store_close(s);
}

static void
test_enrolment(void)
{
	struct store		*s = open_mem();
	struct store_patient	 p;
	struct store_enrolment	 e, f, g;

	new_patient(s, &p, "1");
	CHECK_INT(store_enrolment_current(s, p.id, &f), STORE_NOTFOUND);

	memset(&e, 0, sizeof e);
	e.patient_id = p.id;
	snprintf(e.protocol, sizeof e.protocol, "mini");
	e.version = 3;
	snprintf(e.status, sizeof e.status, ENROL_SETUP);
	e.pressure = 1;
	e.enrolled_at = 5000;
	e.state = NULL;		/* stored as {} */
	CHECK_INT(store_enrolment_insert(s, &e), 0);
	CHECK(e.id > 0);

	CHECK_INT(store_enrolment_get(s, e.id, &f), 0);
	CHECK_STR(f.protocol, "mini");
	CHECK_INT(f.version, 3);
	CHECK_STR(f.status, "setup");
	CHECK_INT(f.pressure, 1);
	CHECK_INT(f.enrolled_at, 5000);
	CHECK_INT(f.last_session_at, 0);
	CHECK_INT(f.ended_at, 0);
	CHECK_STR(f.state, "{}");

	snprintf(f.status, sizeof f.status, ENROL_ACTIVE);
	f.sessions_done = 4;
	f.last_session_at = 9000;
	f.pressure = 0;
	f.version = 4;
	free(f.state);
	f.state = strdup("{\"streak\":2,\"notes\":[\"a\"]}");
	CHECK_INT(store_enrolment_update(s, &f), 0);
	store_enrolment_clear(&f);

	CHECK_INT(store_enrolment_current(s, p.id, &g), 0);
	CHECK_INT(g.id, e.id);
	CHECK_STR(g.status, "active");
	CHECK_INT(g.sessions_done, 4);
	CHECK_INT(g.last_session_at, 9000);
	CHECK_INT(g.version, 4);
	CHECK_STR(g.state, "{\"streak\":2,\"notes\":[\"a\"]}");
	store_enrolment_clear(&g);

	/* The latest enrolment is the current one. */
	memset(&e, 0, sizeof e);
	e.patient_id = p.id;
	snprintf(e.protocol, sizeof e.protocol, "other");
	e.version = 1;
	snprintf(e.status, sizeof e.status, ENROL_SETUP);
	e.state = strdup("{\"x\":1}");
	CHECK_INT(store_enrolment_insert(s, &e), 0);
	store_enrolment_clear(&e);
	CHECK_INT(store_enrolment_current(s, p.id, &g), 0);
	CHECK_INT(g.id, e.id);
	CHECK_STR(g.protocol, "other");
	CHECK_STR(g.state, "{\"x\":1}");
	store_enrolment_clear(&g);
	store_close(s);
}

static void
test_sessions(void)
{
	struct store		*s = open_mem();
	struct store_session	 ss, o;
	struct store_patient	 p;
	struct store_enrolment	 e;

	/* Sessions and answers reference a real enrolment and patient. */
	new_patient(s, &p, "1");
	memset(&e, 0, sizeof e);
	e.patient_id = p.id;
	snprintf(e.protocol, sizeof e.protocol, "mini");
	snprintf(e.status, sizeof e.status, ENROL_ACTIVE);
	CHECK_INT(store_enrolment_insert(s, &e), 0);
	CHECK_INT(e.id, 1);

	CHECK_INT(store_session_open(s, 1, &o), STORE_NOTFOUND);
	memset(&ss, 0, sizeof ss);
	ss.enrolment_id = 1;
	ss.number = 1;
	ss.pressure = 0;
	ss.due_at = 100;
	snprintf(ss.status, sizeof ss.status, "due");
	CHECK_INT(store_session_insert(s, &ss), 0);
	CHECK_INT(store_session_open(s, 1, &o), 0);
	CHECK_INT(o.id, ss.id);
	CHECK_INT(o.number, 1);
	CHECK_INT(o.due_at, 100);
	CHECK_STR(o.status, "due");
	CHECK_INT(store_session_open(s, 2, &o), STORE_NOTFOUND);
	CHECK_INT(store_session_close(s, ss.id, "done", 200), 0);
	CHECK_INT(store_session_open(s, 1, &o), STORE_NOTFOUND);
	CHECK_INT(store_answer_insert(s, 1, 1, "checkin", "soreness", "3", 300),
	    0);
	/* Foreign keys are on: no session of an unknown enrolment. */
	ss.enrolment_id = 99;
	CHECK_INT(store_session_insert(s, &ss), -1);
	store_close(s);
}

/* ---- inbox and outbox ----------------------------------------------- */

static void
test_inbox_dedupe(void)
{
	struct store	*s = open_mem();
	int64_t		 a = 0, b = 0, c = 0, out = 0;

	CHECK_INT(store_inbox_insert(s, "tg", "m1", "chat", "hi", 10, &a), 0);
	CHECK(a > 0);
	/* Some other write in between, so a stale change count would show. */
	CHECK_INT(store_outbox_insert(s, 1, "tg", "chat", "x", NULL, 10, &out),
	    0);
	b = -5;
	CHECK_INT(store_inbox_insert(s, "tg", "m1", "chat", "other", 11, &b),
	    STORE_DUPLICATE);
	CHECK_INT(b, -5);			/* untouched */
	/* Same external id from another adapter is a different message. */
	CHECK_INT(store_inbox_insert(s, "console", "m1", "chat", "hi", 12, &c),
	    0);
	CHECK(c > a);
	CHECK_INT(store_inbox_close(s, a, "done", NULL), 0);
	CHECK_INT(store_inbox_insert(s, "tg", "m1", "chat", "again", 13, &b),
	    STORE_DUPLICATE);
	CHECK_INT(store_inbox_close(s, c, "failed", "boom"), 0);
	store_close(s);
}

static void
test_inbox_dedupe_unchanged(void)
{
	char		 path[128], *cause = NULL;
	struct store	*s = NULL;
	int64_t		 a;

	path_in_dir(path, sizeof path, "inbox.db");
	CHECK_INT(store_open(&s, path, &cause), 0);
	if (s == NULL)
		return;
	CHECK_INT(store_inbox_insert(s, "tg", "m1", "chat", "first", 10, &a), 0);
	CHECK_INT(store_inbox_insert(s, "tg", "m1", "chat", "second", 20, &a),
	    STORE_DUPLICATE);
	store_close(s);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM inbox"), 1);
	CHECK_INT(raw_int(path, "SELECT received_at FROM inbox"), 10);
	CHECK_INT(raw_int(path, "SELECT body = 'first' FROM inbox"), 1);
	db_unlink(path);
}

static void
test_outbox(void)
{
	struct store		*s = open_mem();
	struct store_out	 o;
	int64_t			 a, b, c, n;

	CHECK_INT(store_outbox_next(s, "tg", 100, &o), STORE_NOTFOUND);
	CHECK_INT(store_outbox_insert(s, 1, "tg", "c1", "first", "{\"t\":1}",
	    100, &a), 0);
	CHECK_INT(store_outbox_insert(s, 2, "console", "c2", "other", NULL, 100,
	    &b), 0);
	CHECK_INT(store_outbox_insert(s, 1, "tg", "c1", "second", NULL, 100,
	    &c), 0);
	CHECK_INT(store_outbox_insert(s, 1, "tg", "c1", "no id", NULL, 100,
	    NULL), 0);
	CHECK_INT(store_outbox_depth(s, &n), 0);
	CHECK_INT(n, 4);

	/* Not before it was created. */
	CHECK_INT(store_outbox_next(s, "tg", 99, &o), STORE_NOTFOUND);
	CHECK_INT(store_outbox_next(s, "tg", 100, &o), 0);
	CHECK_INT(o.id, a);
	CHECK_STR(o.body, "first");
	CHECK_STR(o.meta, "{\"t\":1}");
	CHECK_STR(o.chat, "c1");
	CHECK_INT(o.patient_id, 1);
	CHECK_INT(o.attempts, 0);
	store_out_clear(&o);

	/* A retry puts it off; the next one comes first meanwhile. */
	CHECK_INT(store_outbox_retry(s, a, 160), 0);
	CHECK_INT(store_outbox_next(s, "tg", 120, &o), 0);
	CHECK_INT(o.id, c);
	CHECK(o.meta == NULL);
	store_out_clear(&o);
	CHECK_INT(store_outbox_sent(s, c, 121), 0);
	CHECK_INT(store_outbox_next(s, "tg", 122, &o), 0);
	CHECK(o.id > c);
	CHECK_INT(store_outbox_sent(s, o.id, 122), 0);
	store_out_clear(&o);
	CHECK_INT(store_outbox_next(s, "tg", 159, &o), STORE_NOTFOUND);
	CHECK_INT(store_outbox_next(s, "tg", 160, &o), 0);
	CHECK_INT(o.id, a);
	CHECK_INT(o.attempts, 1);
	store_out_clear(&o);
	CHECK_INT(store_outbox_sent(s, a, 161), 0);
	CHECK_INT(store_outbox_next(s, "tg", 1000, &o), STORE_NOTFOUND);

	CHECK_INT(store_outbox_depth(s, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(store_outbox_next(s, "console", 100, &o), 0);
	CHECK_INT(o.id, b);
	store_out_clear(&o);

	/* Given up: out of the queue, and never counted as delivered. */
	CHECK_INT(store_outbox_drop(s, b, 170, "blocked"), 0);
	CHECK_INT(store_outbox_next(s, "console", 1000, &o), STORE_NOTFOUND);
	CHECK_INT(store_outbox_depth(s, &n), 0);
	CHECK_INT(n, 0);
	store_close(s);
}

/* A long text delivered in part: how far it went survives a reopen, and
 * the row stays queued until it is marked sent. */
static void
test_outbox_upto(void)
{
	char			 path[128], *cause = NULL;
	struct store		*s = NULL;
	struct store_out	 o;
	int64_t			 a;

	path_in_dir(path, sizeof path, "upto.db");
	CHECK_INT(store_open(&s, path, &cause), 0);
	if (s == NULL)
		return;
	CHECK_INT(store_outbox_insert(s, 1, "tg", "c1", "part one|part two",
	    NULL, 100, &a), 0);
	CHECK_INT(store_outbox_next(s, "tg", 100, &o), 0);
	CHECK_INT(o.sent_upto, 0);
	store_out_clear(&o);
	CHECK_INT(store_outbox_upto(s, a, 9), 0);
	CHECK_INT(store_outbox_retry(s, a, 101), 0);
	store_close(s);
	s = NULL;

	CHECK_INT(store_open(&s, path, &cause), 0);
	if (s == NULL)
		return;
	CHECK_INT(store_outbox_next(s, "tg", 101, &o), 0);
	CHECK_INT(o.id, a);
	CHECK_INT(o.sent_upto, 9);
	CHECK_STR(o.body + o.sent_upto, "part two");
	store_out_clear(&o);
	CHECK_INT(store_outbox_sent(s, a, 102), 0);
	CHECK_INT(store_outbox_next(s, "tg", 1000, &o), STORE_NOTFOUND);
	store_close(s);
	db_unlink(path);
}

struct waits {
	int	 n;
	char	 chat[4][8];
	int64_t	 until[4];
};

static void
waits_add(void *ud, const char *chat, int64_t not_before)
{
	struct waits	*w = ud;

	if (w->n < 4) {
		snprintf(w->chat[w->n], sizeof w->chat[0], "%s", chat);
		w->until[w->n++] = not_before;
	}
}

/* The chats still put off at a start: each pending row past `now`, the
 * latest time per chat; sent rows, other adapters and past times not. */
static void
test_outbox_waits(void)
{
	struct store	*s = open_mem();
	struct waits	 w = { 0 };
	int64_t		 a, b, c, d, e;

	CHECK_INT(store_outbox_insert(s, 1, "tg", "c1", "a", NULL, 100, &a), 0);
	CHECK_INT(store_outbox_insert(s, 1, "tg", "c1", "b", NULL, 100, &b), 0);
	CHECK_INT(store_outbox_insert(s, 2, "tg", "c2", "c", NULL, 100, &c), 0);
	CHECK_INT(store_outbox_insert(s, 3, "mx", "c3", "d", NULL, 100, &d), 0);
	CHECK_INT(store_outbox_insert(s, 4, "tg", "c4", "e", NULL, 100, &e), 0);
	CHECK_INT(store_outbox_retry(s, a, 160), 0);
	CHECK_INT(store_outbox_retry(s, b, 170), 0);
	CHECK_INT(store_outbox_retry(s, c, 130), 0);	/* over by 150 */
	CHECK_INT(store_outbox_retry(s, d, 200), 0);	/* another adapter */
	CHECK_INT(store_outbox_retry(s, e, 300), 0);
	CHECK_INT(store_outbox_sent(s, e, 120), 0);	/* gone */
	CHECK_INT(store_outbox_waits(s, "tg", 150, waits_add, &w), 0);
	CHECK_INT(w.n, 1);
	if (w.n == 1) {
		CHECK_STR(w.chat[0], "c1");
		CHECK_INT(w.until[0], 170);
	}
	store_close(s);
}

/* The questionnaire in progress: its answers are the patient's after
 * ask_from, and ask_i counts them while one is open. */
static void
test_patient_asking(void)
{
	struct store		*s = open_mem();
	struct store_patient	 p, o, r;
	char			 got[DB_ANSWERS_MAX] = "";

	new_patient(s, &p, "42");
	new_patient(s, &o, "43");
	CHECK_INT(store_answer_last(s, p.id, &p.ask_from), 0);
	CHECK_INT(p.ask_from, 0);
	CHECK_INT(store_answer_insert(s, p.id, 0, "setup", "consent", "yes",
	    1001), 0);
	CHECK_INT(store_answer_last(s, p.id, &p.ask_from), 0);
	CHECK(p.ask_from > 0);
	snprintf(p.ask_q, sizeof p.ask_q, "checkin");
	CHECK_INT(store_patient_update(s, &p), 0);
	CHECK_INT(store_patient_get(s, p.id, &r), 0);
	CHECK_INT(r.ask_i, 0);
	CHECK_INT(r.ask_from, p.ask_from);

	CHECK_INT(store_answer_insert(s, p.id, 1, "checkin", "soreness", "3",
	    1002), 0);
	CHECK_INT(store_answer_insert(s, o.id, 1, "checkin", "soreness", "9",
	    1002), 0);
	CHECK_INT(store_answer_insert(s, p.id, 1, "checkin", "redness", "no",
	    1003), 0);
	CHECK_INT(store_patient_find(s, "console", "42", &r), 0);
	CHECK_STR(r.ask_q, "checkin");
	CHECK_INT(r.ask_i, 2);
	CHECK_INT(store_patient_get(s, o.id, &r), 0);
	CHECK_INT(r.ask_i, 0);			/* none open */
	CHECK_INT(store_answer_since(s, p.id, p.ask_from, db_collect_answer,
	    got), 0);
	CHECK_STR(got, "soreness=3;redness=no;");
	got[0] = '\0';
	CHECK_INT(store_answer_since(s, p.id, 0, db_collect_answer, got), 0);
	CHECK_STR(got, "consent=yes;soreness=3;redness=no;");

	/* Closed: nothing is in progress, whatever ask_from says. */
	p.ask_q[0] = '\0';
	CHECK_INT(store_patient_update(s, &p), 0);
	CHECK_INT(store_patient_get(s, p.id, &r), 0);
	CHECK_INT(r.ask_i, 0);
	store_close(s);
}

/* ---- jobs ----------------------------------------------------------- */

static void
test_jobs(void)
{
	struct store		*s = open_mem();
	struct store_job	 j;
	int64_t			 due, n, a, b, c, d;

	CHECK_INT(store_job_next_due(s, &due), STORE_NOTFOUND);
	CHECK_INT(store_job_take(s, 1000, &j), STORE_NOTFOUND);
	a = add_job(s, 1, "session", 500);
	b = add_job(s, 1, "missed", 300);
	c = add_job(s, 2, "session", 300);	/* same due: id order */
	d = add_job(s, 2, "ask", 900);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 4);
	CHECK_INT(store_job_next_due(s, &due), 0);
	CHECK_INT(due, 300);

	CHECK_INT(store_job_take(s, 299, &j), STORE_NOTFOUND);
	CHECK_INT(store_job_take(s, 300, &j), 0);
	CHECK_INT(j.id, b);
	CHECK_STR(j.kind, "missed");
	CHECK_INT(j.due_at, 300);
	/* Take does not consume: the job stays until closed. */
	CHECK_INT(store_job_take(s, 300, &j), 0);
	CHECK_INT(j.id, b);
	CHECK_INT(store_job_close(s, b, "done", NULL, 300), 0);
	CHECK_INT(store_job_take(s, 1000, &j), 0);
	CHECK_INT(j.id, c);
	CHECK_INT(j.enrolment_id, 2);
	CHECK_INT(store_job_close(s, c, "failed", "boom", 301), 0);
	CHECK_INT(store_job_next_due(s, &due), 0);
	CHECK_INT(due, 500);
	CHECK_INT(store_job_take(s, 1000, &j), 0);
	CHECK_INT(j.id, a);

	/* pending by enrolment and kind */
	CHECK_INT(store_job_pending(s, 1, "session", &j), 0);
	CHECK_INT(j.id, a);
	CHECK_INT(store_job_pending(s, 1, "missed", &j), STORE_NOTFOUND);
	CHECK_INT(store_job_pending(s, 2, "ask", &j), 0);
	CHECK_INT(j.id, d);
	CHECK_INT(j.due_at, 900);

	/* cancel by kind touches only that kind of that enrolment */
	add_job(s, 1, "ask", 700);
	CHECK_INT(store_job_cancel(s, 1, "session", 400), 0);
	CHECK_INT(store_job_pending(s, 1, "session", &j), STORE_NOTFOUND);
	CHECK_INT(store_job_pending(s, 1, "ask", &j), 0);
	CHECK_INT(store_job_pending(s, 2, "ask", &j), 0);
	CHECK_INT(store_job_next_due(s, &due), 0);
	CHECK_INT(due, 700);
	/* cancel all of one enrolment */
	CHECK_INT(store_job_cancel(s, 1, NULL, 400), 0);
	CHECK_INT(store_job_pending(s, 1, "ask", &j), STORE_NOTFOUND);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(store_job_next_due(s, &due), 0);
	CHECK_INT(due, 900);
	CHECK_INT(store_job_close(s, d, "done", NULL, 900), 0);
	CHECK_INT(store_job_next_due(s, &due), STORE_NOTFOUND);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 0);
	store_close(s);
}

static void
test_jobs_pending_earliest(void)
{
	struct store		*s = open_mem();
	struct store_job	 j;

	add_job(s, 1, "ask", 900);
	add_job(s, 1, "ask", 200);
	CHECK_INT(store_job_pending(s, 1, "ask", &j), 0);
	CHECK_INT(j.due_at, 200);
	store_close(s);
}

static int64_t
plan_job(struct store *s, int64_t enrolment, const char *kind, const char *arg,
    int64_t due)
{
	struct store_job	j;

	memset(&j, 0, sizeof j);
	j.patient_id = 1;
	j.enrolment_id = enrolment;
	snprintf(j.kind, sizeof j.kind, "%s", kind);
	snprintf(j.arg, sizeof j.arg, "%s", arg);
	j.due_at = due;
	CHECK_INT(store_job_plan(s, &j, 100), 0);
	return j.id;
}

/* A plan that stands keeps its job; any other replaces every pending job
 * of its kind, and leaves other kinds and enrolments alone. */
static void
test_jobs_plan(void)
{
	struct store		*s = open_mem();
	struct store_job	 j;
	int64_t			 a, b, c, n;

	a = plan_job(s, 1, "session", "", 500);
	CHECK(a > 0);
	CHECK_INT(plan_job(s, 1, "session", "", 500), a);	/* kept */
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 1);
	b = plan_job(s, 1, "session", "", 600);			/* moved */
	CHECK(b != a);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(store_job_pending(s, 1, "session", &j), 0);
	CHECK_INT(j.id, b);
	CHECK_INT(j.due_at, 600);
	c = plan_job(s, 1, "session", "x", 600);		/* other arg */
	CHECK(c != b);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 1);

	/* Other kinds and enrolments stay. */
	add_job(s, 1, "ask", 600);
	add_job(s, 2, "session", 600);
	CHECK_INT(plan_job(s, 1, "session", "x", 600), c);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 3);

	/* Two pending of a kind (as a database from before the rule might
	 * hold) are never kept: both go, the plan is the one left. */
	add_job(s, 3, "session", 700);
	add_job(s, 3, "session", 800);
	a = plan_job(s, 3, "session", "", 700);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 4);
	CHECK_INT(store_job_pending(s, 3, "session", &j), 0);
	CHECK_INT(j.id, a);
	CHECK_INT(store_job_cancel(s, 3, "session", 100), 0);
	CHECK_INT(store_job_pending(s, 3, "session", &j), STORE_NOTFOUND);
	store_close(s);
}

/* Cancelling two kinds at once leaves other kinds and enrolments. */
static void
test_jobs_cancel2(void)
{
	struct store		*s = open_mem();
	struct store_job	 j;
	int64_t			 n;

	add_job(s, 1, "missed", 100);
	add_job(s, 1, "remind", 200);
	add_job(s, 1, "remind", 250);
	add_job(s, 1, "session", 300);
	add_job(s, 2, "missed", 400);
	CHECK_INT(store_job_cancel2(s, 1, "missed", "remind", 50), 0);
	CHECK_INT(store_job_pending(s, 1, "missed", &j), STORE_NOTFOUND);
	CHECK_INT(store_job_pending(s, 1, "remind", &j), STORE_NOTFOUND);
	CHECK_INT(store_job_pending(s, 1, "session", &j), 0);
	CHECK_INT(store_job_pending(s, 2, "missed", &j), 0);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(store_job_cancel2(s, 1, "missed", "remind", 50), 0);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 2);
	store_close(s);
}

/* Is job `id` of the store at `path` in `status`? */
static int
job_is(const char *path, int64_t id, const char *status)
{
	char	sql[128];

	snprintf(sql, sizeof sql, "SELECT status = '%s' FROM jobs WHERE id = %lld",
	    status, (long long)id);
	return raw_int(path, sql);
}

/*
 * Failed jobs come back at a reload, except where a pending job already
 * does their work: a session planned since the failure, the same
 * questionnaire asked again, the newer of two failed twins. Courses on
 * other protocols, and ended ones, keep theirs failed.
 */
static void
test_jobs_retry(void)
{
	char			 path[128], *cause = NULL;
	struct store		*s = NULL;
	struct store_patient	 p;
	struct store_enrolment	 e;
	int64_t			 n, old, newer, ask, twin1, twin2, other;

	path_in_dir(path, sizeof path, "retry.db");
	CHECK_INT(store_open(&s, path, &cause), 0);
	if (s == NULL)
		return;
	new_patient(s, &p, "1");
	memset(&e, 0, sizeof e);
	e.patient_id = p.id;
	snprintf(e.protocol, sizeof e.protocol, "mini");
	snprintf(e.status, sizeof e.status, ENROL_ACTIVE);
	CHECK_INT(store_enrolment_insert(s, &e), 0);		/* 1 */
	e.id = 0;
	snprintf(e.protocol, sizeof e.protocol, "other");
	CHECK_INT(store_enrolment_insert(s, &e), 0);		/* 2 */

	old = add_job(s, 1, "session", 100);
	CHECK_INT(store_job_close(s, old, "failed", "boom", 100), 0);
	newer = add_job(s, 1, "session", 500);			/* planned since */
	ask = add_job(s, 1, "ask", 200);
	CHECK_INT(store_job_close(s, ask, "failed", "boom", 200), 0);
	twin1 = add_job(s, 1, "missed", 210);
	CHECK_INT(store_job_close(s, twin1, "failed", "boom", 210), 0);
	twin2 = add_job(s, 1, "missed", 220);
	CHECK_INT(store_job_close(s, twin2, "failed", "boom", 220), 0);
	other = add_job(s, 2, "session", 230);
	CHECK_INT(store_job_close(s, other, "failed", "boom", 230), 0);

	CHECK_INT(store_job_retry_failed(s, "mini", 300, &n), 0);
	CHECK_INT(n, 2);				/* ask, twin2 */
	/* Nothing is left to retry. */
	CHECK_INT(store_job_retry_failed(s, "mini", 400, &n), 0);
	CHECK_INT(n, 0);
	store_close(s);
	CHECK_INT(job_is(path, old, "superseded"), 1);
	CHECK_INT(job_is(path, newer, "pending"), 1);
	CHECK_INT(job_is(path, ask, "pending"), 1);
	CHECK_INT(job_is(path, twin1, "superseded"), 1);
	CHECK_INT(job_is(path, twin2, "pending"), 1);
	CHECK_INT(job_is(path, other, "failed"), 1);
	CHECK_INT(raw_int(path, "SELECT due_at FROM jobs WHERE id = 3"), 300);
	db_unlink(path);
}

/* ---- transactions ------------------------------------------------- */

static void
test_savepoint(void)
{
	struct store		*s = open_mem();
	struct store_job	 j;
	int64_t			 n;

	CHECK_INT(store_begin(s), 0);
	add_job(s, 1, "session", 100);
	CHECK_INT(store_savepoint(s), 0);
	add_job(s, 1, "ask", 50);
	add_job(s, 1, "missed", 60);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 3);
	CHECK_INT(store_rollback_savepoint(s), 0);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 1);
	/* Work after the rolled back savepoint still counts. */
	add_job(s, 2, "session", 300);
	/* A released savepoint keeps its work. */
	CHECK_INT(store_savepoint(s), 0);
	add_job(s, 3, "session", 400);
	CHECK_INT(store_release_savepoint(s), 0);
	CHECK_INT(store_commit(s), 0);

	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 3);
	CHECK_INT(store_job_take(s, 1000, &j), 0);
	CHECK_INT(j.due_at, 100);
	CHECK_STR(j.kind, "session");
	store_close(s);
}

static void
test_rollback(void)
{
	struct store		*s = open_mem();
	struct store_patient	 p, q;
	int64_t			 n, id;

	CHECK_INT(store_begin(s), 0);
	new_patient(s, &p, "gone");
	add_job(s, 1, "session", 100);
	CHECK_INT(store_savepoint(s), 0);
	add_job(s, 1, "session", 200);
	CHECK_INT(store_release_savepoint(s), 0);
	CHECK_INT(store_inbox_insert(s, "tg", "x", "c", "b", 1, &id), 0);
	CHECK_INT(store_rollback(s), 0);

	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(store_patient_find(s, "console", "gone", &q), STORE_NOTFOUND);
	/* The inbox row went too: the message can be offered again. */
	CHECK_INT(store_inbox_insert(s, "tg", "x", "c", "b", 1, &id), 0);

	/* Nested begin is an error, and the open transaction survives it. */
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(store_begin(s), -1);
	add_job(s, 1, "session", 100);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(store_job_count(s, &n), 0);
	CHECK_INT(n, 1);
	store_close(s);
}

static void
test_rollback_file(void)
{
	struct store	*s = NULL;
	char		 path[128], *cause = NULL;

	path_in_dir(path, sizeof path, "tx.db");
	CHECK_INT(store_open(&s, path, &cause), 0);
	if (s == NULL)
		return;
	CHECK_INT(store_begin(s), 0);
	add_job(s, 1, "kept", 1);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(store_begin(s), 0);
	add_job(s, 1, "dropped", 2);
	CHECK_INT(store_rollback(s), 0);
	store_close(s);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM jobs"), 1);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM jobs WHERE kind = 'kept'"),
	    1);
	db_unlink(path);
}

static void
test_events(void)
{
	struct store	*s = open_mem();

	CHECK_INT(store_event_insert(s, 1, 2, 3, "session_done",
	    "{\"session\":1}"), 0);
	CHECK_INT(store_event_insert(s, 1, 2, 3, "x", NULL), 0);
	store_close(s);
}

static void
test_kv(void)
{
	struct store	*s = open_mem();
	char		*v;

	CHECK_INT(store_kv_get(s, "tg.offset", &v), STORE_NOTFOUND);
	CHECK(v == NULL);
	CHECK_INT(store_kv_set(s, "tg.offset", "41", 1), 0);
	CHECK_INT(store_kv_set(s, "tg.offset", "42", 2), 0);
	CHECK_INT(store_kv_get(s, "tg.offset", &v), 0);
	CHECK_STR(v, "42");
	free(v);
	/* A rolled-back transaction takes its cursor with it. */
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(store_kv_set(s, "tg.offset", "43", 3), 0);
	CHECK_INT(store_rollback(s), 0);
	CHECK_INT(store_kv_get(s, "tg.offset", &v), 0);
	CHECK_STR(v, "42");
	free(v);
	store_close(s);
}

int
main(void)
{
	log_set_level(LOG_WARN);
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	TEST(test_fresh_memory);
	TEST(test_file_reopen);
	TEST(test_migration_6);
	TEST(test_newer_refused);
	TEST(test_open_fails);
	TEST(test_patient);
	TEST(test_patient_asking);
	TEST(test_enrolment);
	TEST(test_sessions);
	TEST(test_inbox_dedupe);
	TEST(test_inbox_dedupe_unchanged);
	TEST(test_outbox);
	TEST(test_outbox_upto);
	TEST(test_outbox_waits);
	TEST(test_jobs);
	TEST(test_jobs_pending_earliest);
	TEST(test_jobs_plan);
	TEST(test_jobs_cancel2);
	TEST(test_jobs_retry);
	TEST(test_savepoint);
	TEST(test_rollback);
	TEST(test_rollback_file);
	TEST(test_events);
	TEST(test_kv);
	rmdir(test_dir);
	return TEST_END();
}
