/*
 * test_store_cache.c: the patient cache always reads as the database does
 * (store_cache.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "test.h"
#include "test_db.h"

#define NPATIENTS	6

static int64_t	max_id;		/* the highest patient id given out */

static struct store *
open_store(const char *path, int cache)
{
	struct store	*s = db_store(path);

	if (cache)
		store_cache_enable(s, cache);
	return s;
}

static void
add_patient(struct store *s, int n)
{
	struct store_patient	p;
	struct store_enrolment	e;

	memset(&p, 0, sizeof p);
	snprintf(p.adapter, sizeof p.adapter, "console");
	snprintf(p.chat, sizeof p.chat, "chat%d", n);
	snprintf(p.tz, sizeof p.tz, "UTC");
	snprintf(p.lang, sizeof p.lang, "en");
	CHECK_INT(store_patient_insert(s, &p), 0);
	if (p.id > max_id)
		max_id = p.id;
	if (n % 3 == 0)
		return;				/* some have no course */
	memset(&e, 0, sizeof e);
	e.patient_id = p.id;
	snprintf(e.protocol, sizeof e.protocol, "iastm");
	snprintf(e.status, sizeof e.status, "active");
	e.version = 1;
	CHECK_INT(store_enrolment_insert(s, &e), 0);
}

/* What find_current gives for chat n (how 0), get_current for id n (how
 * 1) or find_current for n's moved chat (how 2), with the answers of the
 * questionnaire in progress, as one string. */
static void
show(struct store *s, int n, int how, char *buf, size_t size)
{
	struct store_patient	p;
	struct store_enrolment	e;
	char			chat[32], asked[DB_ANSWERS_MAX] = "";
	int			has_en = 0, rc;

	memset(&p, 0, sizeof p);
	memset(&e, 0, sizeof e);
	snprintf(chat, sizeof chat, "chat%d%s", n, how == 2 ? "x" : "");
	if (how == 1)
		rc = store_patient_get_current(s, n, &p, &e, &has_en);
	else
		rc = store_patient_find_current(s, "console", chat, &p, &e,
		    &has_en);
	if (rc != 0) {
		snprintf(buf, size, "rc=%d", rc);
		return;
	}
	if (p.ask_q[0] != '\0' && store_answer_since(s, p.id, p.ask_from,
	    db_collect_answer, asked) != 0)
		snprintf(asked, sizeof asked, "failed");
	snprintf(buf, size, "%lld %s %s %s %d %s %d %d %s %lld %d %s | %d %lld "
	    "%s %d %s %d %d %lld %lld %lld %s", (long long)p.id, p.adapter,
	    p.chat, p.tz, p.remind_min, p.lang, p.consent, p.unreachable,
	    p.ask_q, (long long)p.ask_from, p.ask_i, asked, has_en,
	    (long long)e.id, e.protocol, e.version, e.status, e.pressure,
	    e.sessions_done, (long long)e.enrolled_at,
	    (long long)e.last_session_at, (long long)e.ended_at,
	    e.state ? e.state : "(null)");
	store_enrolment_clear(&e);
}

/* Both stores read the same for every patient, by chat and by id. */
static void
same(struct store *a, struct store *b, int step)
{
	char	x[2048], y[2048];
	int	n, how;

	for (n = 1; n <= max_id + 1; n++) {
		for (how = 0; how < 3; how++) {
			if (how != 1 && n > NPATIENTS + 1)
				continue;
			show(a, n, how, x, sizeof x);
			show(b, n, how, y, sizeof y);
			if (strcmp(x, y) != 0) {
				fprintf(stderr, "step %d, patient %d:\n"
				    "  cached:   %s\n  database: %s\n", step, n,
				    x, y);
				test_failed_checks++;
			}
		}
	}
}

static uint64_t	rng = 0x2545f4914f6cdd1dULL;

static int
roll(int n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (int)(rng % (uint64_t)n);
}

/* One random change to the patient of chat n (or its moved form), made
 * the way the engine makes it: read the current course, change it, write
 * it back. */
static void
change(struct store *s, int op, int n, int v)
{
	struct store_patient	p;
	struct store_enrolment	e;
	char			to[32];
	int			has_en = 0;
	int64_t			moved;

	memset(&p, 0, sizeof p);
	memset(&e, 0, sizeof e);
	snprintf(to, sizeof to, "chat%d", n);
	if (store_patient_find_current(s, "console", to, &p, &e,
	    &has_en) != 0) {
		strcat(to, "x");
		if (store_patient_find_current(s, "console", to, &p, &e,
		    &has_en) != 0)
			return;
	}
	switch (op) {
	case 0:
		/* As the engine asks: a questionnaire closed, or asked anew
		 * after the patient's last answer, or left open. */
		p.remind_min = v;
		if (v % 2 == 0) {
			p.ask_q[0] = '\0';
			p.ask_i = 0;
		} else if (p.ask_q[0] == '\0' || v % 3 == 0) {
			snprintf(p.ask_q, sizeof p.ask_q, "checkin");
			CHECK_INT(store_answer_last(s, p.id, &p.ask_from), 0);
			p.ask_i = 0;
		}
		CHECK_INT(store_patient_update(s, &p), 0);
		break;
	case 1:
		if (!has_en)
			break;
		e.pressure = v % 3;
		e.sessions_done = v;
		e.ended_at = v % 7;
		snprintf(e.status, sizeof e.status, "%s", v % 2 ? "hold" :
		    "active");
		CHECK_INT(store_enrolment_save(s, &e, 1, 0), 0);
		break;
	case 2:
		if (!has_en)
			break;
		free(e.state);
		e.state = v % 4 ? NULL : strdup("{\"checked\":1}");
		/* Now and then the row goes in and the state fails (no such
		 * enrolment for its foreign key): a write half done. */
		if (v % 9 == 0)
			e.id += 1000;
		store_enrolment_save(s, &e, v % 2, 1);
		break;
	case 3:
		store_enrolment_clear(&e);
		memset(&e, 0, sizeof e);
		/* Now and then for nobody: the insert fails. */
		e.patient_id = v % 7 == 0 ? 9999 : p.id;
		snprintf(e.protocol, sizeof e.protocol, "plantar");
		snprintf(e.status, sizeof e.status, "setup");
		e.version = v;
		store_enrolment_insert(s, &e);
		break;
	case 4:
		/* A writer the cache does not know: SQLite's hook sees it. */
		snprintf(to, sizeof to, "chat%d%s", n,
		    strchr(p.chat, 'x') != NULL ? "" : "x");
		CHECK_INT(store_chat_move(s, "console", p.chat, to, &moved), 0);
		CHECK_INT(moved, 1);
		break;
	case 5:
		if (has_en)
			CHECK_INT(store_enrolment_set_invite(s, e.id, v % 2 ?
			    "code" : NULL), 0);
		break;
	case 7:
		/* An answer; now and then for nobody, and it fails. */
		snprintf(to, sizeof to, "%d", v);
		store_answer_insert(s, v % 11 == 0 ? 9999 : p.id,
		    has_en ? e.id : 0, "checkin", v % 2 ? "pain" : "sore", to,
		    v);
		break;
	case 6:
		/* Rarely: the patient goes, and comes back new. */
		if (v % 8 == 0) {
			CHECK_INT(store_patient_erase(s, p.id, p.adapter,
			    p.chat, v), 0);
			add_patient(s, n);
		}
		break;
	}
	store_enrolment_clear(&e);
}

/* One step of the transaction structure on both stores: begin, savepoint
 * (nested), their release or rollback, a safe batch begun or committed.
 * `stack` holds what is open: 0 a transaction, 1 a savepoint. */
static void
tx_step(struct store *s[2], int *stack, int *depth, int *batch, int a)
{
	int	i, undo = roll(2), kind;

	if (a == 0 && *depth < 4) {
		if (*depth == 0 && !*batch && roll(3) == 0) {
			for (i = 0; i < 2; i++)
				CHECK_INT(store_batch_begin(s[i],
				    STORE_BATCH_SAFE), 0);
			*batch = 1;
			return;
		}
		kind = *depth > 0;
		for (i = 0; i < 2; i++)
			CHECK_INT(kind ? store_savepoint(s[i]) :
			    store_begin(s[i]), 0);
		stack[(*depth)++] = kind;
	} else if (a == 1 && *depth > 0) {
		kind = stack[--*depth];
		for (i = 0; i < 2; i++) {
			if (kind == 0)
				CHECK_INT(undo ? store_rollback(s[i]) :
				    store_commit(s[i]), 0);
			else
				CHECK_INT(undo ? store_rollback_savepoint(s[i]) :
				    store_release_savepoint(s[i]), 0);
		}
	} else if (a == 2 && *depth == 0 && *batch) {
		for (i = 0; i < 2; i++)
			CHECK_INT(store_batch_commit(s[i]), 0);
		*batch = 0;
	}
}

/*
 * A cached store and an uncached one take the same random changes, some
 * of which fail half way, inside nested transactions, savepoints and safe
 * batches that commit or roll back; after every step they read the same.
 * A small cache overflows and starts again too.
 */
static void
test_cache_reads_as_the_database(void)
{
	struct store	*s[2];
	int		 step, i, n, op, v, a, stack[8], depth = 0, batch = 0;

	s[0] = open_store(":memory:", 5);
	s[1] = open_store(":memory:", 0);
	for (n = 1; n <= NPATIENTS; n++)
		for (i = 0; i < 2; i++)
			add_patient(s[i], n);
	same(s[0], s[1], 0);
	for (step = 1; step <= 6000; step++) {
		if ((a = roll(8)) <= 2) {
			tx_step(s, stack, &depth, &batch, a);
		} else {
			op = roll(8);
			n = 1 + roll(NPATIENTS);
			v = roll(1000);
			for (i = 0; i < 2; i++) {
				change(s[i], 0, n, v);	/* into the cache */
				change(s[i], op, n, v + 1);
			}
		}
		same(s[0], s[1], step);
		if (test_failed_checks > 0)
			break;
	}
	while (depth > 0)
		tx_step(s, stack, &depth, &batch, 1);
	if (batch)
		tx_step(s, stack, &depth, &batch, 2);
	same(s[0], s[1], step);
	store_close(s[0]);
	store_close(s[1]);
}

/* Erasing a patient, and the same rows in a fast batch. */
static void
test_cache_erase_and_batches(void)
{
	struct store	*a = open_store(":memory:", 64), *b;
	char		 x[1024], y[1024];

	b = open_store(":memory:", 0);
	add_patient(a, 1);
	add_patient(b, 1);
	CHECK_INT(store_batch_begin(a, STORE_BATCH_FAST), 0);
	CHECK_INT(store_batch_begin(b, STORE_BATCH_FAST), 0);
	CHECK_INT(store_begin(a), 0);
	CHECK_INT(store_begin(b), 0);
	change(a, 1, 1, 7);
	change(b, 1, 1, 7);
	CHECK_INT(store_commit(a), 0);
	CHECK_INT(store_commit(b), 0);
	same(a, b, 1);
	show(a, 1, 0, x, sizeof x);
	CHECK(strstr(x, "hold") != NULL);
	CHECK_INT(store_patient_erase(a, 1, "console", "chat1", 5), 0);
	/* (The erasure's own rows are not the cache's business: SQLite's
	 * update hook tells it.) */
	CHECK_INT(store_patient_erase(b, 1, "console", "chat1", 5), 0);
	same(a, b, 2);
	show(a, 1, 1, y, sizeof y);
	CHECK_STR(y, "rc=1");
	CHECK_INT(store_batch_commit(a), 0);
	CHECK_INT(store_batch_commit(b), 0);
	store_close(a);
	store_close(b);
}

/* A writer whose copy of the patient is older than the last answer (an
 * adapter marking them unreachable) leaves the count of answers alone. */
static void
test_cache_stale_copy(void)
{
	struct store		*s[2];
	struct store_patient	 p, old;
	int			 i;

	s[0] = open_store(":memory:", 64);
	s[1] = open_store(":memory:", 0);
	for (i = 0; i < 2; i++) {
		add_patient(s[i], 1);
		CHECK_INT(store_patient_get(s[i], 1, &p), 0);
		snprintf(p.ask_q, sizeof p.ask_q, "checkin");
		CHECK_INT(store_answer_last(s[i], 1, &p.ask_from), 0);
		p.ask_i = 0;
		CHECK_INT(store_patient_update(s[i], &p), 0);
		show(s[i], 1, 1, (char [8]){ 0 }, 8);	/* into the cache */
		CHECK_INT(store_patient_get(s[i], 1, &old), 0);
		CHECK_INT(store_answer_insert(s[i], 1, 0, "checkin", "pain",
		    "3", 5), 0);
		old.unreachable = 1;
		CHECK_INT(store_patient_update(s[i], &old), 0);
	}
	same(s[0], s[1], 1);
	store_close(s[0]);
	store_close(s[1]);
}

/* Another process's commit (say, an operator's tool) is seen. */
static void
test_cache_sees_other_connections(void)
{
	struct store	*a, *b;
	char		 path[64], x[1024], y[1024];

	db_temp_path(path, sizeof path);
	a = open_store(path, 64);
	add_patient(a, 1);
	show(a, 1, 0, x, sizeof x);
	b = open_store(path, 0);
	change(b, 0, 1, 9);
	show(a, 1, 0, x, sizeof x);
	show(b, 1, 0, y, sizeof y);
	CHECK_STR(x, y);
	CHECK(strstr(x, "checkin") != NULL);
	store_close(b);
	store_close(a);
	db_unlink(path);
}

int
main(void)
{
	/* The failing writes log db_error lines on purpose. */
	log_set_level(LOG_ERROR);
	TEST(test_cache_reads_as_the_database);
	TEST(test_cache_erase_and_batches);
	TEST(test_cache_stale_copy);
	TEST(test_cache_sees_other_connections);
	return TEST_END();
}
