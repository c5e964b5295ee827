/*
 * test_engine.c: the engine driven directly, with a manual clock.
 *
 * Enrolment through /start and the setup questions, what lands in the
 * outbox, duplicate messages, a failing handler (holding message, inbox row
 * failed, the next patient unaffected), the minimum interval between
 * sessions, and a restart with overdue jobs on a file database.
 *
 * Protocols are small ones written here at run time; texts come from the
 * real scripts/lang (tests run from the repository root).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "store.h"
#include "test.h"
#include "test_db.h"

#define T0	INT64_C(1772352000)	/* 2026-03-01T08:00:00Z, a Sunday */
#define HOUR	INT64_C(3600)
#define DAY	INT64_C(86400)
#define AD	"console"

static char		test_dir[] = "/tmp/strigil-engine-XXXXXX";
static char		proto_path[128];
static struct config	cfg;

/*
 * The protocol: two weeks, 48 h apart. Its message handler says thanks
 * and then fails on "boom"; "note" stores the text in ctx.state. After a
 * session it asks for the next one an hour later, which the engine must
 * push to min_hours.
 */
static const char *proto_text =
    "return {\n"
    "  id = \"mini\", version = 1, title = \"Mini\",\n"
    "  course = { weeks = 2 },\n"
    "  interval = { min_hours = 48, target_hours = 60 },\n"
    "  pressure = { levels = { \"light\", \"moderate\" } },\n"
    "  questionnaires = {\n"
    "    checkin = {\n"
    "      { id = \"soreness\", type = \"integer\", min = 0, max = 10,"
    " text = \"Soreness 0-10?\" },\n"
    "    },\n"
    "  },\n"
    "  steps = { \"Apply oil.\", \"Glide lightly.\" },\n"
    "  on = {\n"
    "    message = function(ctx, ev)\n"
    "      ctx.say(\"thanks\")\n"
    "      ctx.state.last = ev.text\n"
    "      if ev.text == \"boom\" then error(\"boom\") end\n"
    "    end,\n"
    "    session_done = function(ctx, ev)\n"
    "      ctx.schedule{ hours = 1, at = \"exact\" }\n"
    "    end,\n"
    "  },\n"
    "}\n";

/* ---- helpers ---------------------------------------------------------- */

static void
db_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", test_dir, name);
}

struct world {
	struct store	*st;
	struct engine	*e;
};

static int
world_open_with(struct world *w, const char *db, const char *path)
{
	char	*cause = NULL;

	memset(w, 0, sizeof *w);
	if (store_open(&w->st, db, &cause) != 0 ||
	    engine_new(&w->e, &cfg, w->st, &cause) != 0 ||
	    engine_load_file(w->e, path, &cause) != 0 ||
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

static int
world_open(struct world *w, const char *db)
{
	return world_open_with(w, db, proto_path);
}

static void
world_close(struct world *w)
{
	engine_free(w->e);
	store_close(w->st);
	memset(w, 0, sizeof *w);
}

/* The messages delivered to the patients, in order. */
struct sent {
	int	 n;
	char	*chat[32];
	char	*body[32];
	char	*type[32];	/* meta.type, or "" */
};

static void
sent_clear(struct sent *s)
{
	int	i;

	for (i = 0; i < s->n; i++) {
		free(s->chat[i]);
		free(s->body[i]);
		free(s->type[i]);
	}
	memset(s, 0, sizeof *s);
}

/* Takes every deliverable outbox row of the console adapter, as an
 * adapter would, and marks it sent. */
static int
drain(struct world *w, int64_t now, struct sent *s)
{
	struct store_out	 o;
	cJSON			*meta;
	const char		*type;

	sent_clear(s);
	while (store_outbox_next(w->st, AD, now, &o) == 0) {
		store_outbox_sent(w->st, o.id, now);
		meta = o.meta != NULL ? cJSON_Parse(o.meta) : NULL;
		type = cJSON_GetStringValue(cJSON_GetObjectItem(meta, "type"));
		if (s->n < 32) {
			s->chat[s->n] = strdup(o.chat);
			s->body[s->n] = strdup(o.body);
			s->type[s->n] = strdup(type != NULL ? type : "");
			s->n++;
		}
		cJSON_Delete(meta);
		store_out_clear(&o);
	}
	return s->n;
}

static int
sent_has(const struct sent *s, const char *needle)
{
	int	i;

	for (i = 0; i < s->n; i++)
		if (strstr(s->body[i], needle) != NULL)
			return 1;
	return 0;
}

static uint64_t	msg_seq;

/* A message from `chat`, with a fresh external id. */
static int
say(struct world *w, const char *chat, const char *text, int64_t now)
{
	char	id[32];

	snprintf(id, sizeof id, "x%llu", (unsigned long long)++msg_seq);
	return engine_inbound(w->e, AD, chat, id, text, now);
}

/* /start, consent, default zone and default reminder (18:00 UTC). */
static void
enrol(struct world *w, const char *chat, int64_t now)
{
	struct sent	s = { 0 };

	CHECK_INT(say(w, chat, "/start", now), 0);
	CHECK_INT(say(w, chat, "yes", now), 0);
	CHECK_INT(say(w, chat, "1", now), 0);
	CHECK_INT(say(w, chat, "1", now), 0);
	drain(w, now, &s);
	sent_clear(&s);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_enrol(void)
{
	struct world		 w;
	struct sent		 s = { 0 };
	struct store_patient	 p;
	struct store_enrolment	 en;
	struct store_job	 j;
	int64_t			 n, due;

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, ":memory:") != 0)
		return;

	/* Someone unknown who does not start. */
	CHECK_INT(say(&w, "7", "hello", T0), 0);
	CHECK_INT(drain(&w, T0, &s), 1);
	CHECK(sent_has(&s, "/start"));

	CHECK_INT(say(&w, "1", "/start", T0), 0);
	CHECK_INT(drain(&w, T0, &s), 2);
	if (s.n == 2) {
		CHECK_STR(s.chat[0], "1");
		CHECK(strstr(s.body[0], "\"Mini\"") != NULL);	/* welcome */
		CHECK_STR(s.type[0], "");
		CHECK_STR(s.type[1], "question");		/* consent */
		CHECK(strstr(s.body[1], "agree") != NULL);
	}
	CHECK_INT(store_patient_find(w.st, AD, "1", &p), 0);
	CHECK_STR(p.ask_q, "setup");
	CHECK_INT(p.ask_i, 0);
	CHECK_INT(store_enrolment_current(w.st, p.id, &en), 0);
	CHECK_STR(en.status, ENROL_SETUP);
	CHECK_STR(en.protocol, "mini");
	store_enrolment_clear(&en);

	/* A wrong answer gets the hint and the question again. */
	CHECK_INT(say(&w, "1", "perhaps", T0), 0);
	CHECK_INT(drain(&w, T0, &s), 2);
	if (s.n == 2) {
		CHECK(strstr(s.body[0], "yes or no") != NULL);
		CHECK_STR(s.type[1], "question");
	}
	CHECK_INT(say(&w, "1", "yes", T0), 0);
	CHECK_INT(drain(&w, T0, &s), 1);
	CHECK(s.n == 1 && strstr(s.body[0], "UTC") != NULL);	/* zone */
	CHECK_INT(say(&w, "1", "Europe/Berlin", T0), 0);
	CHECK_INT(drain(&w, T0, &s), 1);
	CHECK(s.n == 1 && strstr(s.body[0], "18:00") != NULL);	/* time */
	/* 7:30 is in the quiet hours (21:00-08:00): refused. */
	CHECK_INT(say(&w, "1", "7:30", T0), 0);
	CHECK_INT(drain(&w, T0, &s), 2);
	CHECK(sent_has(&s, "between 21:00 and 08:00"));
	CHECK_INT(say(&w, "1", "8:30", T0), 0);
	CHECK_INT(drain(&w, T0, &s), 1);
	CHECK(sent_has(&s, "Europe/Berlin") && sent_has(&s, "08:30"));

	CHECK_INT(store_patient_find(w.st, AD, "1", &p), 0);
	CHECK_STR(p.tz, "Europe/Berlin");
	CHECK_INT(p.remind_min, 8 * 60 + 30);
	CHECK_INT(p.consent, 1);
	CHECK_STR(p.ask_q, "");
	CHECK_INT(store_enrolment_current(w.st, p.id, &en), 0);
	CHECK_STR(en.status, ENROL_ACTIVE);
	CHECK_INT(en.enrolled_at, T0);
	/* The first session at the next 08:30 Berlin time (07:30Z, Mar 2). */
	CHECK_INT(store_job_pending(w.st, en.id, "session", &j), 0);
	CHECK_INT(j.due_at, T0 + DAY - 30 * 60);
	CHECK_INT(engine_next_due(w.e, &due), 0);
	CHECK_INT(due, j.due_at);
	/* And the course's end: a day after its two weeks. */
	CHECK_INT(store_job_pending(w.st, en.id, "end", &j), 0);
	CHECK_INT(j.due_at, T0 + 15 * DAY);
	CHECK_INT(store_job_count(w.st, &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(store_job_pending(w.st, en.id, "session", &j), 0);
	store_enrolment_clear(&en);

	/* Nothing due yet; then the session. */
	CHECK_INT(engine_run_due(w.e, j.due_at - 1), 0);
	CHECK_INT(engine_run_due(w.e, j.due_at), 1);
	CHECK_INT(drain(&w, j.due_at, &s), 1);
	if (s.n == 1) {
		CHECK_STR(s.type[0], "reminder");
		CHECK(strstr(s.body[0], "Time for session 1") != NULL);
		CHECK(strstr(s.body[0], "1. Apply oil.") != NULL);
		CHECK(strstr(s.body[0], "2. Glide lightly.") != NULL);
	}
	/* A "missed" job waits for /done (and the end for its day). */
	CHECK_INT(store_job_count(w.st, &n), 0);
	CHECK_INT(n, 2);
	CHECK_INT(engine_stats(w.e)->jobs, 1);
	CHECK_INT(engine_stats(w.e)->inbound, 7);
	CHECK(engine_stats(w.e)->events >= 2);
	sent_clear(&s);
	world_close(&w);
}

static void
test_duplicate(void)
{
	struct world	 w;
	struct sent	 s = { 0 };
	int64_t		 depth;

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, ":memory:") != 0)
		return;
	CHECK_INT(engine_inbound(w.e, AD, "1", "same", "/start", T0), 0);
	CHECK_INT(store_outbox_depth(w.st, &depth), 0);
	CHECK_INT(depth, 2);
	CHECK_INT(engine_inbound(w.e, AD, "1", "same", "/start", T0 + 5), 1);
	CHECK_INT(engine_inbound(w.e, AD, "1", "same", "yes", T0 + 6), 1);
	CHECK_INT(store_outbox_depth(w.st, &depth), 0);
	CHECK_INT(depth, 2);
	CHECK_INT(engine_stats(w.e)->duplicates, 2);
	CHECK_INT(engine_stats(w.e)->inbound, 1);
	/* The same id from another adapter is a new message. */
	CHECK_INT(engine_inbound(w.e, "other", "1", "same", "/start", T0), 0);
	/* And the duplicate did not answer the consent question. */
	CHECK_INT(drain(&w, T0, &s), 2);
	CHECK_INT(engine_inbound(w.e, AD, "1", "next", "yes", T0 + 7), 0);
	CHECK_INT(drain(&w, T0 + 7, &s), 1);
	CHECK(s.n == 1 && strstr(s.body[0], "time zone") != NULL);
	sent_clear(&s);
	world_close(&w);
}

/* The cursor commits with the message, on its own for a duplicate, and
 * with a message whose handler failed (that one is kept as failed). */
static void
test_cursor(void)
{
	struct world		 w;
	struct engine_cursor	 c1 = { "t.offset", "1" };
	struct engine_cursor	 c2 = { "t.offset", "2" };
	struct engine_cursor	 c3 = { "t.offset", "3" };
	char			*v;

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, ":memory:") != 0)
		return;
	CHECK_INT(engine_inbound_at(w.e, AD, "1", "u1", "/start", &c1, T0), 0);
	CHECK_INT(store_kv_get(w.st, "t.offset", &v), 0);
	CHECK_STR(v, "1");
	free(v);
	CHECK_INT(engine_inbound_at(w.e, AD, "1", "u1", "/start", &c2, T0), 1);
	CHECK_INT(store_kv_get(w.st, "t.offset", &v), 0);
	CHECK_STR(v, "2");
	free(v);
	enrol(&w, "2", T0);
	CHECK_INT(engine_inbound_at(w.e, AD, "2", "u3", "boom", &c3, T0 + 1),
	    0);
	CHECK_INT(store_kv_get(w.st, "t.offset", &v), 0);
	CHECK_STR(v, "3");
	free(v);
	CHECK_INT(engine_cursor(w.e, &c1, T0 + 2), 0);
	CHECK_INT(store_kv_get(w.st, "t.offset", &v), 0);
	CHECK_STR(v, "1");
	free(v);
	world_close(&w);
}

/* An adapter marks a patient unreachable once, with an audit event; a
 * message from them makes them reachable again. */
static void
test_unreachable(void)
{
	struct world	w;
	struct sent	s = { 0 };
	char		path[256];

	clock_init(CLOCK_MANUAL, T0);
	db_path(path, sizeof path, "unreachable.db");
	if (world_open(&w, path) != 0)
		return;
	enrol(&w, "1", T0);
	CHECK_INT(engine_unreachable(w.e, AD, "9", "left", T0), 1);
	CHECK_INT(engine_unreachable(w.e, AD, "1", "left", T0), 0);
	CHECK_INT(engine_unreachable(w.e, AD, "1", "left", T0 + 1), 1);
	CHECK_INT(raw_int(path, "SELECT unreachable FROM patients"), 1);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM events WHERE kind = "
	    "'unreachable' AND data = '{\"reason\":\"left\"}'"), 1);
	CHECK_INT(say(&w, "1", "hello", T0 + 2), 0);
	drain(&w, T0 + 2, &s);
	CHECK(sent_has(&s, "Welcome back"));
	sent_clear(&s);
	CHECK_INT(raw_int(path, "SELECT unreachable FROM patients"), 0);
	world_close(&w);
}

/* Option ids map back to their text only while their question is live. */
static void
test_answer_text(void)
{
	struct world		 w;
	struct store_patient	 p;
	char			*text, id[64];

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, ":memory:") != 0)
		return;
	CHECK_INT(engine_inbound(w.e, AD, "1", "m1", "/start", T0), 0);
	CHECK_INT(store_patient_find(w.st, AD, "1", &p), 0);
	snprintf(id, sizeof id, "a:%s:%d:yes", p.ask_q, p.ask_i + 1);
	CHECK_INT(engine_answer_text(w.e, AD, "1", id, &text), 1);
	CHECK_STR(text, "yes");
	free(text);
	/* Another question of it, another patient: stale. */
	snprintf(id, sizeof id, "a:%s:%d:yes", p.ask_q, p.ask_i + 2);
	CHECK_INT(engine_answer_text(w.e, AD, "1", id, &text), 0);
	CHECK(text == NULL);
	snprintf(id, sizeof id, "a:%s:%d:yes", p.ask_q, p.ask_i + 1);
	CHECK_INT(engine_answer_text(w.e, AD, "2", id, &text), 0);
	/* Not ours. */
	CHECK_INT(engine_answer_text(w.e, AD, "1", "yes", &text), -1);
	CHECK_INT(engine_answer_text(w.e, AD, "1", "a:x:1:", &text), -1);
	CHECK_INT(engine_answer_text(w.e, AD, "1", "a::", &text), -1);
	CHECK_INT(engine_answer_text(w.e, AD, "1", "a:x:one:yes", &text), -1);
	world_close(&w);
}

/* A database that cannot say whether the question is live: neither live
 * nor stale (a stale press is dropped; this one must come again). */
static void
test_answer_text_db_error(void)
{
	struct world		 w;
	struct store_patient	 p;
	char			*text = NULL, id[64], path[192];

	clock_init(CLOCK_MANUAL, T0);
	db_path(path, sizeof path, "answer.db");
	if (world_open(&w, path) != 0)
		return;
	CHECK_INT(engine_inbound(w.e, AD, "1", "m1", "/start", T0), 0);
	CHECK_INT(store_patient_find(w.st, AD, "1", &p), 0);
	snprintf(id, sizeof id, "a:%s:%d:yes", p.ask_q, p.ask_i + 1);
	CHECK_INT(raw_exec(path, "ALTER TABLE patients RENAME TO gone"), 0);
	CHECK_INT(engine_answer_text(w.e, AD, "1", id, &text), ENGINE_EDB);
	CHECK(text == NULL);
	CHECK_INT(raw_exec(path, "ALTER TABLE gone RENAME TO patients"), 0);
	CHECK_INT(engine_answer_text(w.e, AD, "1", id, &text), 1);
	free(text);
	world_close(&w);
	db_unlink(path);
}

static void
test_handler_error(void)
{
	struct world		 w;
	struct sent		 s = { 0 };
	struct store_patient	 p;
	struct store_enrolment	 en;
	char			 path[192], *v;

	clock_init(CLOCK_MANUAL, T0);
	db_path(path, sizeof path, "error.db");
	if (world_open(&w, path) != 0)
		return;
	enrol(&w, "1", T0);

	/* A handler that works: thanks, and the state keeps the text. */
	CHECK_INT(engine_inbound(w.e, AD, "1", "ok-1", "fine", T0 + 60), 0);
	CHECK_INT(drain(&w, T0 + 60, &s), 1);
	CHECK(sent_has(&s, "noted"));
	CHECK_INT(store_patient_find(w.st, AD, "1", &p), 0);
	CHECK_INT(store_enrolment_current(w.st, p.id, &en), 0);
	CHECK_STR(en.state, "{\"last\":\"fine\"}");
	store_enrolment_clear(&en);

	/* It fails after saying thanks and touching the state: the patient
	 * gets only the holding message, the state is as before. */
	log_set_level(LOG_ERROR);
	CHECK_INT(engine_inbound(w.e, AD, "1", "bad-1", "boom", T0 + 120), 0);
	log_set_level(LOG_WARN);
	CHECK_INT(drain(&w, T0 + 120, &s), 1);
	CHECK(sent_has(&s, "Something went wrong"));
	CHECK(!sent_has(&s, "noted"));
	CHECK_INT(store_enrolment_current(w.st, p.id, &en), 0);
	CHECK_STR(en.state, "{\"last\":\"fine\"}");
	CHECK_STR(en.status, ENROL_ACTIVE);
	store_enrolment_clear(&en);
	CHECK_INT(engine_stats(w.e)->lua_errors, 1);

	/* The inbox keeps the message, marked failed with the cause. */
	CHECK_INT(raw_int(path, "SELECT count(*) FROM inbox"
	    " WHERE external_id = 'bad-1' AND status = 'failed'"), 1);
	v = raw_text(path, "SELECT error FROM inbox WHERE external_id = 'bad-1'");
	CHECK(v != NULL && strstr(v, "boom") != NULL &&
	    strstr(v, "p.lua:") != NULL);
	free(v);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM inbox"
	    " WHERE external_id = 'ok-1' AND status = 'done'"), 1);
	/* Offered again, it is a duplicate: never handled twice. */
	CHECK_INT(engine_inbound(w.e, AD, "1", "bad-1", "boom", T0 + 130), 1);

	/* The next patient is unaffected, and so is the first one's next
	 * message. */
	enrol(&w, "2", T0 + 200);
	CHECK_INT(store_patient_find(w.st, AD, "2", &p), 0);
	CHECK_INT(store_enrolment_current(w.st, p.id, &en), 0);
	CHECK_STR(en.status, ENROL_ACTIVE);
	store_enrolment_clear(&en);
	CHECK_INT(engine_inbound(w.e, AD, "2", "ok-2", "fine too", T0 + 300),
	    0);
	CHECK_INT(engine_inbound(w.e, AD, "1", "ok-3", "better", T0 + 300), 0);
	CHECK_INT(drain(&w, T0 + 300, &s), 2);
	CHECK(s.n == 2 && strstr(s.body[0], "noted") != NULL &&
	    strstr(s.body[1], "noted") != NULL);
	sent_clear(&s);
	world_close(&w);
	db_unlink(path);
}

/* engine_set_deliver(): the in-process adapter's messages. */
static void
collect(void *ud, const struct engine_message *m)
{
	struct sent	*s = ud;
	cJSON		*meta = m->meta != NULL ? cJSON_Parse(m->meta) : NULL;
	const char	*type;

	type = cJSON_GetStringValue(cJSON_GetObjectItem(meta, "type"));
	CHECK(m->id > 0);
	if (s->n < 32) {
		s->chat[s->n] = strdup(m->chat);
		s->body[s->n] = strdup(m->body);
		s->type[s->n] = strdup(type != NULL ? type : "");
		s->n++;
	}
	cJSON_Delete(meta);
}

/* An adapter that delivers in this process gets its messages after the
 * commit, never from the queue, and the outbox records them as sent; a
 * failed handler's messages, or an erased patient's, are never delivered
 * nor kept. */
static void
test_deliver_in_process(void)
{
	struct world		 w;
	struct sent		 s = { 0 }, q = { 0 };
	char			 path[192];

	clock_init(CLOCK_MANUAL, T0);
	db_path(path, sizeof path, "deliver.db");
	if (world_open(&w, path) != 0)
		return;
	engine_set_deliver(w.e, AD, collect, &s);
	CHECK_INT(say(&w, "1", "/start", T0), 0);
	CHECK(s.n >= 1);
	CHECK_STR(s.chat[0], "1");
	CHECK_STR(s.type[s.n - 1], "question");	/* consent */
	CHECK_INT(say(&w, "1", "yes", T0), 0);
	CHECK_INT(say(&w, "1", "1", T0), 0);
	CHECK_INT(say(&w, "1", "1", T0), 0);
	CHECK(s.n >= 4);
	CHECK_INT(drain(&w, T0 + 86400, &q), 0);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM outbox"), s.n);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM outbox WHERE"
	    " sent_at = created_at AND not_before = created_at AND"
	    " attempts = 1 AND failed IS NULL"), s.n);

	/* The handler says thanks, then fails: only the holding message. */
	sent_clear(&s);
	log_set_level(LOG_ERROR);
	CHECK_INT(say(&w, "1", "boom", T0 + 60), 0);
	log_set_level(LOG_WARN);
	CHECK_INT(s.n, 1);
	CHECK(sent_has(&s, "Something went wrong"));
	CHECK_INT(raw_int(path, "SELECT count(*) FROM outbox"
	    " WHERE body LIKE '%noted%'"), 0);
	CHECK_INT(say(&w, "1", "fine", T0 + 120), 0);
	CHECK_INT(s.n, 2);
	CHECK(strstr(s.body[1], "noted") != NULL);

	/* An erasure takes the outbox rows of its own event with it: the
	 * goodbye is all that is delivered or kept. */
	CHECK_INT(say(&w, "1", "/erase", T0 + 150), 0);
	sent_clear(&s);
	CHECK_INT(say(&w, "1", "yes", T0 + 150), 0);
	CHECK_INT(s.n, 1);
	CHECK(sent_has(&s, "everything I had stored"));
	CHECK_INT(raw_int(path, "SELECT count(*) FROM outbox"), 1);

	/* Without it, messages wait in the outbox for their adapter. */
	enrol(&w, "1", T0 + 160);
	sent_clear(&s);
	engine_set_deliver(w.e, NULL, NULL, NULL);
	CHECK_INT(say(&w, "1", "again", T0 + 180), 0);
	CHECK_INT(s.n, 0);
	CHECK_INT(drain(&w, T0 + 180, &q), 1);
	CHECK(sent_has(&q, "noted"));
	sent_clear(&q);
	world_close(&w);
	db_unlink(path);
}

static void
test_min_interval(void)
{
	struct world		 w;
	struct sent		 s = { 0 };
	struct store_patient	 p;
	struct store_enrolment	 en;
	struct store_job	 j;
	int64_t			 due, done_at;

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, ":memory:") != 0)
		return;
	enrol(&w, "1", T0);
	CHECK_INT(engine_next_due(w.e, &due), 0);
	CHECK_INT(due, T0 + 10 * HOUR);		/* 18:00Z */
	CHECK_INT(engine_run_due(w.e, due), 1);
	done_at = due + 30 * 60;
	CHECK_INT(say(&w, "1", "/done", done_at), 0);
	drain(&w, done_at, &s);
	CHECK(sent_has(&s, "Well done"));

	CHECK_INT(store_patient_find(w.st, AD, "1", &p), 0);
	CHECK_INT(store_enrolment_current(w.st, p.id, &en), 0);
	CHECK_INT(en.sessions_done, 1);
	CHECK_INT(en.last_session_at, done_at);
	/* The protocol asked for an hour later; the engine waits 48 h and
	 * then for the reminder time: the third day at 18:00. */
	CHECK_INT(store_job_pending(w.st, en.id, "session", &j), 0);
	CHECK(j.due_at >= done_at + 48 * HOUR);
	CHECK_INT(j.due_at, T0 + 3 * DAY + 10 * HOUR);
	CHECK_INT(store_job_pending(w.st, en.id, "missed", &j),
	    STORE_NOTFOUND);
	store_enrolment_clear(&en);

	/* Nothing runs before then. */
	CHECK_INT(engine_run_due(w.e, done_at + 47 * HOUR), 0);
	CHECK_INT(engine_run_due(w.e, T0 + 3 * DAY + 10 * HOUR), 1);
	drain(&w, T0 + 3 * DAY + 10 * HOUR, &s);
	CHECK(sent_has(&s, "Time for session 2"));
	sent_clear(&s);
	world_close(&w);
}

static void
test_restart(void)
{
	struct world		 w;
	struct sent		 s = { 0 };
	struct store_job	 j;
	char			 path[192];
	int64_t			 n, due, now;
	int			 i;

	clock_init(CLOCK_MANUAL, T0);
	db_path(path, sizeof path, "restart.db");
	if (world_open(&w, path) != 0)
		return;
	enrol(&w, "1", T0);
	enrol(&w, "2", T0);
	enrol(&w, "3", T0);
	/* Three more overdue jobs of other kinds for patient 1. */
	memset(&j, 0, sizeof j);
	j.patient_id = 1;
	j.enrolment_id = 1;
	snprintf(j.kind, sizeof j.kind, "ask");
	snprintf(j.arg, sizeof j.arg, "checkin");
	j.due_at = T0 + HOUR;
	CHECK_INT(store_job_insert(w.st, &j), 0);
	snprintf(j.kind, sizeof j.kind, "missed");
	j.arg[0] = '\0';
	j.due_at = T0 + 2 * HOUR;
	CHECK_INT(store_job_insert(w.st, &j), 0);
	snprintf(j.kind, sizeof j.kind, "remind");
	j.due_at = T0 + 3 * HOUR;
	CHECK_INT(store_job_insert(w.st, &j), 0);
	/* A transaction cut off by the crash leaves nothing behind. */
	CHECK_INT(store_begin(w.st), 0);
	snprintf(j.kind, sizeof j.kind, "session");
	j.due_at = T0;
	CHECK_INT(store_job_insert(w.st, &j), 0);
	CHECK_INT(store_job_count(w.st, &n), 0);
	CHECK_INT(n, 10);	/* and each course's end */
	world_close(&w);	/* "crash": the daemon stops before any ran */

	CHECK_INT(raw_int(path, "SELECT count(*) FROM jobs"), 9);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM jobs"
	    " WHERE status = 'pending'"), 9);

	/* Back up two days later: everything overdue runs once. */
	now = T0 + 2 * DAY;
	clock_init(CLOCK_MANUAL, now);
	if (world_open(&w, path) != 0)
		return;
	CHECK_INT(engine_next_due(w.e, &due), 0);
	CHECK_INT(due, T0 + HOUR);
	CHECK_INT(engine_run_due(w.e, now), 6);
	CHECK_INT(engine_run_due(w.e, now), 0);
	CHECK_INT(engine_stats(w.e)->jobs, 6);
	/* Each of the six is closed, none dropped or left pending. */
	CHECK_INT(raw_int(path, "SELECT count(*) FROM jobs WHERE due_at <= "
	    "1772352000 + 86400 AND status = 'done'"), 6);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM jobs WHERE due_at <= "
	    "1772352000 + 86400 AND status <> 'done'"), 0);
	/* Every patient got the reminder for session 1, patient 1 the
	 * check-in too; the new jobs (missed) lie ahead. */
	drain(&w, now, &s);
	for (i = 0, n = 0; i < s.n; i++)
		if (strcmp(s.type[i], "reminder") == 0)
			n++;
	CHECK(n >= 3);
	CHECK(sent_has(&s, "Soreness 0-10?"));
	CHECK_INT(engine_next_due(w.e, &due), 0);
	CHECK(due > now);
	sent_clear(&s);

	/* And once more after another restart: nothing runs again. */
	world_close(&w);
	if (world_open(&w, path) != 0)
		return;
	CHECK_INT(engine_run_due(w.e, now), 0);
	CHECK_INT(store_outbox_depth(w.st, &n), 0);
	CHECK_INT(n, 0);
	world_close(&w);
	db_unlink(path);
}

/*
 * A job that comes due inside quiet hours (the daemon was down at 18:00 and
 * starts at 22:00) says nothing then: it runs again when they end (08:00).
 */
static void
test_overdue_in_quiet_hours(void)
{
	struct world	w;
	struct sent	s = { 0 };
	int64_t		due, night = T0 + 14 * HOUR;

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, ":memory:") != 0)
		return;
	enrol(&w, "1", T0);
	CHECK_INT(engine_next_due(w.e, &due), 0);
	CHECK_INT(due, T0 + 10 * HOUR);			/* 18:00 */
	CHECK_INT(engine_run_due(w.e, night), 1);	/* 22:00 */
	CHECK_INT(drain(&w, night, &s), 0);
	CHECK_INT(engine_next_due(w.e, &due), 0);
	CHECK_INT(due, T0 + DAY);			/* 08:00 */
	CHECK_INT(engine_run_due(w.e, T0 + DAY), 1);
	drain(&w, T0 + DAY, &s);
	CHECK(s.n == 1 && strcmp(s.type[0], "reminder") == 0);
	sent_clear(&s);
	world_close(&w);
}

/*
 * A protocol that plans the next session as soon as one comes due, a day
 * later, while sessions count as missed only after 36 h: each new session
 * closes the one still open. The old session's missed job must not close
 * the new one (it did, 12 h early).
 */
static const char *eager_text =
    "return {\n"
    "  id = \"eager\", version = 1, title = \"Eager\",\n"
    "  course = { weeks = 2 },\n"
    "  interval = { min_hours = 24, target_hours = 24,"
    " miss_after_hours = 36 },\n"
    "  pressure = { levels = { \"light\" } },\n"
    "  steps = { \"Glide lightly.\" },\n"
    "  on = {\n"
    "    session_due = function(ctx, ev)\n"
    "      ctx.schedule{ hours = 24, at = \"exact\" }\n"
    "    end,\n"
    "  },\n"
    "}\n";

/* The number of the patient's open session, 0 if none. */
static int
open_session(struct world *w, const char *chat)
{
	struct store_patient	pt;
	struct store_enrolment	en;
	struct store_session	ss;
	int			has_en, n = 0;

	memset(&en, 0, sizeof en);
	if (store_patient_find_current(w->st, AD, chat, &pt, &en,
	    &has_en) == 0 && has_en &&
	    store_session_open(w->st, en.id, &ss) == 0)
		n = ss.number;
	store_enrolment_clear(&en);
	return n;
}

static void
test_missed_job_of_closed_session(void)
{
	struct world	w;
	char		path[160];

	snprintf(path, sizeof path, "%s/eager.lua", test_dir);
	test_write_file(path, eager_text);
	clock_init(CLOCK_MANUAL, T0);
	if (world_open_with(&w, ":memory:", path) != 0)
		return;
	enrol(&w, "1", T0);
	CHECK_INT(engine_run_due(w.e, T0 + 10 * HOUR), 1);	/* 1 opens */
	CHECK_INT(open_session(&w, "1"), 1);
	/* 2 comes due and closes 1 as missed; 1's missed job (due at
	 * T0 + 46 h, put off by quiet hours to 08:00) must leave 2 open. */
	CHECK_INT(engine_run_due(w.e, T0 + 34 * HOUR), 1);
	CHECK_INT(open_session(&w, "1"), 1);	/* number 1 again: none done */
	CHECK(engine_run_due(w.e, T0 + 49 * HOUR) >= 0);
	CHECK_INT(open_session(&w, "1"), 1);
	world_close(&w);
	unlink(path);
}

/*
 * A protocol whose screening-free enrolment puts the patient on a clinical
 * hold, and whose `resumed` handler fails: the clinician's /clear must say
 * the hold stays (it said "hold lifted"), and the patient hears nothing.
 */
static const char *hold_text =
    "return {\n"
    "  id = \"holdy\", version = 1, title = \"Holdy\",\n"
    "  course = { weeks = 2 },\n"
    "  interval = { min_hours = 48 },\n"
    "  pressure = { levels = { \"light\" } },\n"
    "  steps = { \"Glide lightly.\" },\n"
    "  on = {\n"
    "    enrolled = function(ctx, ev)\n"
    "      ctx.pause{ reason = \"needs clearance\" }\n"
    "    end,\n"
    "    resumed = function(ctx, ev) error(\"broken resume\") end,\n"
    "  },\n"
    "}\n";

static void
test_clear_failed(void)
{
	struct world	 w;
	struct sent	 s = { 0 };
	char		 path[160], *reply = NULL;

	snprintf(path, sizeof path, "%s/holdy.lua", test_dir);
	test_write_file(path, hold_text);
	clock_init(CLOCK_MANUAL, T0);
	if (world_open_with(&w, ":memory:", path) != 0)
		return;
	enrol(&w, "1", T0);
	CHECK_INT(engine_clear_command(w.e, "1", T0 + HOUR, &reply), 0);
	CHECK(reply != NULL && strstr(reply, "the hold stays") != NULL);
	free(reply);
	CHECK_INT(drain(&w, T0 + HOUR, &s), 0);		/* nothing to them */
	/* Still on hold: a second try fails the same way. */
	CHECK_INT(engine_clear(w.e, AD, "1", T0 + 2 * HOUR), 2);
	CHECK_INT(say(&w, "1", "/resume", T0 + 2 * HOUR), 0);
	drain(&w, T0 + 2 * HOUR, &s);
	CHECK(s.n == 1 && strstr(s.body[0], "clinic") != NULL);
	sent_clear(&s);
	world_close(&w);
	unlink(path);
}

/*
 * Patients on a protocol that is no longer loaded can still /stop and
 * /erase (they got the holding message, and nothing was done). Other
 * messages wait for the protocol; a questionnaire the /stop interrupted is
 * asked again by a job, which waits for it too.
 */
static void
test_stop_without_protocol(void)
{
	struct world		w;
	struct sent		s = { 0 };
	struct store_patient	pt;
	struct store_enrolment	en;
	struct store_job	j;
	char			path[192], other[160], *reply = NULL;
	int			has_en;
	int64_t			now = T0 + 40 * HOUR;

	clock_init(CLOCK_MANUAL, T0);
	db_path(path, sizeof path, "noproto.db");
	if (world_open(&w, path) != 0)
		return;
	enrol(&w, "1", T0);
	enrol(&w, "2", T0);
	enrol(&w, "3", T0);
	/* 3 is in the middle of a check-in (mini asks none itself). */
	CHECK_INT(store_patient_find(w.st, AD, "3", &pt), 0);
	snprintf(pt.ask_q, sizeof pt.ask_q, "checkin");
	CHECK_INT(store_patient_update(w.st, &pt), 0);
	world_close(&w);

	/* Only another protocol is loaded now. */
	snprintf(other, sizeof other, "%s/eager.lua", test_dir);
	test_write_file(other, eager_text);
	if (world_open_with(&w, path, other) != 0)
		return;
	CHECK_INT(say(&w, "1", "/progress", now), 0);
	drain(&w, now, &s);
	CHECK(s.n == 1 && sent_has(&s, "Something went wrong"));
	CHECK_INT(say(&w, "1", "/stop", now), 0);
	CHECK_INT(say(&w, "1", "yes", now), 0);
	drain(&w, now, &s);
	CHECK(sent_has(&s, "end your course") && sent_has(&s, "has ended"));
	memset(&en, 0, sizeof en);
	CHECK_INT(store_patient_find_current(w.st, AD, "1", &pt, &en, &has_en),
	    0);
	CHECK_STR(en.status, "stopped");
	store_enrolment_clear(&en);
	/* Their course has ended: they can start again, on what is loaded. */
	CHECK_INT(say(&w, "1", "/progress", now), 0);
	drain(&w, now, &s);
	CHECK(s.n == 1 && !sent_has(&s, "Something went wrong"));
	CHECK_INT(say(&w, "1", "/start", now), 0);
	drain(&w, now, &s);
	CHECK(sent_has(&s, "\"Eager\""));

	CHECK_INT(say(&w, "2", "/erase", now), 0);
	CHECK_INT(say(&w, "2", "yes", now), 0);
	drain(&w, now, &s);
	CHECK(sent_has(&s, "has been deleted"));
	CHECK_INT(store_patient_find(w.st, AD, "2", &pt), STORE_NOTFOUND);

	CHECK_INT(say(&w, "3", "/stop", now), 0);
	CHECK_INT(say(&w, "3", "no", now), 0);
	drain(&w, now, &s);
	CHECK(sent_has(&s, "carries on"));
	memset(&en, 0, sizeof en);
	CHECK_INT(store_patient_find_current(w.st, AD, "3", &pt, &en, &has_en),
	    0);
	CHECK_STR(en.status, "active");
	CHECK_INT(store_job_pending(w.st, en.id, "ask", &j), 0);
	CHECK_STR(j.arg, "checkin");
	store_enrolment_clear(&en);
	/* That job waits for mini: it fails, and the clinician hears which
	 * protocol to fix. */
	CHECK(engine_run_due(w.e, now) >= 1);
	drain(&w, now, &s);
	CHECK(sent_has(&s, "held up") && sent_has(&s, "the protocol mini"));
	/* Not on hold: /clear says so, whatever the protocol. */
	CHECK_INT(engine_clear_command(w.e, "3", now, &reply), 0);
	CHECK(reply != NULL && strstr(reply, "not on hold") != NULL);
	free(reply);
	sent_clear(&s);
	world_close(&w);
	unlink(other);
	db_unlink(path);
}

/* /progress counts the course's days while it runs, and stops counting
 * when it ends (it kept counting, past the course's length). */
static void
test_progress_days(void)
{
	struct world	w;
	struct sent	s = { 0 };

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, ":memory:") != 0)
		return;
	enrol(&w, "1", T0);
	CHECK_INT(say(&w, "1", "/progress", T0 + 3 * DAY + HOUR), 0);
	drain(&w, T0 + 3 * DAY + HOUR, &s);
	CHECK(sent_has(&s, "Day 4 of 14."));
	CHECK_INT(say(&w, "1", "/stop", T0 + 4 * DAY), 0);
	CHECK_INT(say(&w, "1", "yes", T0 + 4 * DAY), 0);
	CHECK_INT(say(&w, "1", "/progress", T0 + 30 * DAY), 0);
	drain(&w, T0 + 30 * DAY, &s);
	CHECK(sent_has(&s, "Day 5 of 14.") && sent_has(&s, "stopped"));
	sent_clear(&s);
	world_close(&w);
}

/* A job whose patient is gone is closed, not taken again forever. */
static void
test_orphan_job(void)
{
	struct world		w;
	struct store_job	j;
	int64_t			n;

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, ":memory:") != 0)
		return;
	memset(&j, 0, sizeof j);
	j.patient_id = 999;
	j.enrolment_id = 999;
	snprintf(j.kind, sizeof j.kind, "session");
	j.due_at = T0;
	CHECK_INT(store_job_insert(w.st, &j), 0);
	CHECK_INT(engine_run_due(w.e, T0), 1);
	CHECK_INT(engine_run_due(w.e, T0), 0);
	CHECK_INT(store_job_count(w.st, &n), 0);
	CHECK_INT(n, 0);
	world_close(&w);
}

/*
 * A protocol that stops planning still has its course end. This one asks a
 * check-in a day after each session and plans nothing else; the patient
 * never answers. The course ends a day after its two weeks, by its "end"
 * job. A course begun before daemons planned that job gets one at the next
 * start, due then, which plans itself again for the course's real end.
 */
static const char *stall_text =
    "return {\n"
    "  id = \"mini\", version = 1, title = \"Stall\",\n"
    "  course = { weeks = 2 },\n"
    "  interval = { min_hours = 48, target_hours = 60 },\n"
    "  pressure = { levels = { \"light\" } },\n"
    "  questionnaires = { checkin = {\n"
    "    { id = \"soreness\", type = \"integer\", min = 0, max = 10,"
    " text = \"Soreness 0-10?\" } } },\n"
    "  steps = { \"Apply oil.\" },\n"
    "  on = { session_done = function(ctx, ev)\n"
    "    ctx.ask(\"checkin\", { hours = 24 })\n"
    "  end },\n"
    "}\n";

static void
test_course_end(void)
{
	struct world		 w;
	struct sent		 s = { 0 };
	struct store_enrolment	 en;
	struct store_job	 j;
	char			 path[192], stall[192];
	int64_t			 n, end = T0 + 15 * DAY, now;

	clock_init(CLOCK_MANUAL, T0);
	db_path(path, sizeof path, "end.db");
	db_path(stall, sizeof stall, "stall.lua");
	test_write_file(stall, stall_text);
	if (world_open_with(&w, path, stall) != 0)
		return;
	enrol(&w, "1", T0);
	enrol(&w, "2", T0);
	/* Session 1 at 18:00, done; its check-in a day later, unanswered. */
	CHECK_INT(engine_run_due(w.e, T0 + 10 * HOUR), 2);
	CHECK_INT(say(&w, "1", "/done", T0 + 11 * HOUR), 0);
	CHECK_INT(engine_run_due(w.e, T0 + 35 * HOUR), 2);	/* 2: missed */
	CHECK_INT(drain(&w, T0 + 35 * HOUR, &s), 4);
	CHECK(sent_has(&s, "Soreness 0-10?"));
	/* Patient 1 has nothing planned but the end. */
	CHECK_INT(raw_int(path, "SELECT count(*) FROM jobs WHERE"
	    " enrolment_id = 1 AND status = 'pending'"), 1);
	CHECK_INT(store_enrolment_current(w.st, 1, &en), 0);
	CHECK_INT(store_job_pending(w.st, en.id, "end", &j), 0);
	CHECK_INT(j.due_at, end);
	store_enrolment_clear(&en);
	world_close(&w);

	/* Patient 2's course as an older daemon left it: no end job. */
	CHECK_INT(raw_exec(path, "DELETE FROM jobs WHERE enrolment_id = 2"
	    " AND kind = 'end'"), 0);
	now = T0 + 2 * DAY;
	clock_init(CLOCK_MANUAL, now);
	if (world_open_with(&w, path, stall) != 0)
		return;
	CHECK_INT(store_enrolment_current(w.st, 2, &en), 0);
	CHECK_INT(store_job_pending(w.st, en.id, "end", &j), 0);
	CHECK_INT(j.due_at, now);
	CHECK_INT(engine_run_due(w.e, now), 1);
	CHECK_INT(store_job_pending(w.st, en.id, "end", &j), 0);
	CHECK_INT(j.due_at, end);
	store_enrolment_clear(&en);
	/* A restart plans no second one. */
	world_close(&w);
	if (world_open_with(&w, path, stall) != 0)
		return;
	CHECK_INT(raw_int(path, "SELECT count(*) FROM jobs WHERE"
	    " kind = 'end' AND status = 'pending'"), 2);

	/* Both courses end on the day, and are told so. (Patient 2 was
	 * reminded meanwhile: the engine plans again after a missed one.) */
	CHECK(engine_run_due(w.e, end - 1) > 0);
	drain(&w, end - 1, &s);
	CHECK_INT(raw_int(path, "SELECT count(*) FROM enrolments"
	    " WHERE status = 'active'"), 2);
	CHECK_INT(engine_run_due(w.e, end), 2);
	CHECK_INT(drain(&w, end, &s), 2);
	CHECK(sent_has(&s, "Your course is complete"));
	CHECK_INT(store_enrolment_current(w.st, 1, &en), 0);
	CHECK_STR(en.status, ENROL_FINISHED);
	store_enrolment_clear(&en);
	CHECK_INT(store_job_count(w.st, &n), 0);
	CHECK_INT(n, 0);
	sent_clear(&s);
	world_close(&w);
	db_unlink(path);
	unlink(stall);
}

static void
test_commands_without_patient(void)
{
	struct world	w;
	struct sent	s = { 0 };

	clock_init(CLOCK_MANUAL, T0);
	if (world_open(&w, ":memory:") != 0)
		return;
	CHECK_INT(say(&w, "9", "/done", T0), 0);
	CHECK_INT(say(&w, "9", "/help", T0), 0);
	CHECK_INT(drain(&w, T0, &s), 2);
	CHECK(s.n == 2 && strstr(s.body[0], "/start") != NULL);
	/* Still nobody: commands do not create patients. */
	CHECK_INT(engine_run_due(w.e, T0 + 30 * DAY), 0);
	CHECK_INT(engine_next_due(w.e, &(int64_t){ 0 }), 1);
	sent_clear(&s);
	world_close(&w);
}

int
main(void)
{
	char	*cause = NULL;
	int	 rc;

	log_set_level(LOG_WARN);
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(proto_path, sizeof proto_path, "%s/p.lua", test_dir);
	test_write_file(proto_path, proto_text);
	if (config_load(&cfg, NULL, &cause) != 0) {
		fprintf(stderr, "config: %s\n", cause);
		return 2;
	}
	TEST(test_enrol);
	TEST(test_duplicate);
	TEST(test_cursor);
	TEST(test_unreachable);
	TEST(test_answer_text);
	TEST(test_answer_text_db_error);
	TEST(test_handler_error);
	TEST(test_deliver_in_process);
	TEST(test_min_interval);
	TEST(test_restart);
	TEST(test_overdue_in_quiet_hours);
	TEST(test_missed_job_of_closed_session);
	TEST(test_clear_failed);
	TEST(test_stop_without_protocol);
	TEST(test_progress_days);
	TEST(test_orphan_job);
	TEST(test_course_end);
	TEST(test_commands_without_patient);
	rc = TEST_END();
	config_free(&cfg);
	unlink(proto_path);
	rmdir(test_dir);
	return rc;
}
