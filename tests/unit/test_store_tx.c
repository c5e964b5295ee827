/*
 * test_store_tx.c: batches, safe and fast (store_tx.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "test.h"
#include "test_db.h"

static struct store *
open_mem(void)
{
	return db_store(":memory:");
}

static int
add_job(struct store *s, const char *kind, int64_t due)
{
	struct store_job	j;

	memset(&j, 0, sizeof j);
	j.patient_id = 1;
	j.enrolment_id = 1;
	snprintf(j.kind, sizeof j.kind, "%s", kind);
	j.due_at = due;
	return store_job_insert(s, &j);
}

static int64_t
jobs(struct store *s)
{
	int64_t	n = -1;

	CHECK_INT(store_job_count(s, &n), 0);
	return n;
}

/* A safe batch undoes one event and keeps the others. */
static void
test_safe_batch_undoes_one_event(void)
{
	struct store	*s = open_mem();

	CHECK_INT(store_batch_begin(s, STORE_BATCH_SAFE), 0);
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(add_job(s, "kept", 1), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(add_job(s, "undone", 2), 0);
	CHECK_INT(store_savepoint(s), 0);
	CHECK_INT(add_job(s, "undone too", 3), 0);
	CHECK_INT(store_rollback_savepoint(s), 0);
	CHECK_INT(jobs(s), 2);
	CHECK_INT(store_rollback(s), 0);
	CHECK_INT(jobs(s), 1);
	CHECK_INT(store_batch_commit(s), 0);
	CHECK_INT(store_batch_spoiled(s), 0);
	CHECK_INT(jobs(s), 1);
	store_close(s);
}

/* A fast batch keeps everything it is not asked to undo. */
static void
test_fast_batch_commits(void)
{
	struct store	*s = open_mem();
	int		 i;

	CHECK_INT(store_batch_begin(s, STORE_BATCH_FAST), 0);
	for (i = 0; i < 100; i++) {
		CHECK_INT(store_begin(s), 0);
		CHECK_INT(add_job(s, "session", i), 0);
		CHECK_INT(store_savepoint(s), 0);
		CHECK_INT(add_job(s, "ask", i), 0);
		CHECK_INT(store_release_savepoint(s), 0);
		CHECK_INT(store_commit(s), 0);
	}
	CHECK_INT(store_batch_commit(s), 0);
	CHECK_INT(store_batch_spoiled(s), 0);
	CHECK_INT(jobs(s), 200);
	/* After the batch the store is an ordinary one, journal and all. */
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(add_job(s, "dropped", 1), 0);
	CHECK_INT(store_rollback(s), 0);
	CHECK_INT(jobs(s), 200);
	store_close(s);
}

/* Nothing to undo: the rollback of an empty event (a job queue found
 * empty) or of an unused savepoint is granted. */
static void
test_fast_batch_empty_rollback(void)
{
	struct store		*s = open_mem();
	struct store_job	 j;

	CHECK_INT(store_batch_begin(s, STORE_BATCH_FAST), 0);
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(store_job_take(s, 100, &j), STORE_NOTFOUND);
	CHECK_INT(store_rollback(s), 0);
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(add_job(s, "kept", 1), 0);
	CHECK_INT(store_savepoint(s), 0);
	CHECK_INT(store_rollback_savepoint(s), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(store_batch_spoiled(s), 0);
	CHECK_INT(store_batch_commit(s), 0);
	CHECK_INT(jobs(s), 1);
	store_close(s);
}

/* Undoing real work spoils the batch: nothing more is taken, and the
 * batch does not commit. */
static void
test_fast_batch_spoiled_by_undo(void)
{
	struct store	*s = open_mem();

	CHECK_INT(store_batch_begin(s, STORE_BATCH_FAST), 0);
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(store_savepoint(s), 0);
	CHECK_INT(add_job(s, "to undo", 1), 0);
	CHECK_INT(store_rollback_savepoint(s), -1);
	CHECK_INT(store_batch_spoiled(s), 1);
	CHECK_INT(store_rollback(s), -1);
	CHECK_INT(store_begin(s), -1);
	CHECK_INT(store_savepoint(s), -1);
	CHECK_INT(store_batch_commit(s), -1);
	CHECK_INT(store_batch_spoiled(s), 1);
	/* A spoiled store never runs fast again. */
	CHECK_INT(store_batch_begin(s, STORE_BATCH_FAST), -1);
	store_close(s);
}

/* A rollback of an event whose handler savepoint was released spoils it
 * too: the released work is the event's. */
static void
test_fast_batch_spoiled_by_event_rollback(void)
{
	struct store	*s = open_mem();

	CHECK_INT(store_batch_begin(s, STORE_BATCH_FAST), 0);
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(store_savepoint(s), 0);
	CHECK_INT(add_job(s, "released", 1), 0);
	CHECK_INT(store_release_savepoint(s), 0);
	CHECK_INT(store_rollback(s), -1);
	CHECK_INT(store_batch_spoiled(s), 1);
	store_close(s);
}

/* A failed statement spoils it: without a journal nothing says how much
 * of it was done. */
static void
test_fast_batch_spoiled_by_error(void)
{
	struct store		*s = open_mem();
	struct store_patient	 p;

	memset(&p, 0, sizeof p);
	snprintf(p.adapter, sizeof p.adapter, "console");
	snprintf(p.chat, sizeof p.chat, "same");
	snprintf(p.tz, sizeof p.tz, "UTC");
	snprintf(p.lang, sizeof p.lang, "en");
	CHECK_INT(store_batch_begin(s, STORE_BATCH_FAST), 0);
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(store_patient_insert(s, &p), 0);
	CHECK_INT(store_commit(s), 0);
	CHECK_INT(store_batch_spoiled(s), 0);
	CHECK_INT(store_begin(s), 0);
	CHECK_INT(store_patient_insert(s, &p), -1);	/* same chat */
	CHECK_INT(store_batch_spoiled(s), 1);
	store_close(s);
}

/* Only a private in-memory store may run without a journal. */
static void
test_fast_batch_memory_only(void)
{
	struct store	*s;
	char		 path[64];

	db_temp_path(path, sizeof path);
	s = db_store(path);
	CHECK_INT(store_batch_begin(s, STORE_BATCH_FAST), -1);
	CHECK_INT(store_batch_begin(s, STORE_BATCH_SAFE), 0);
	CHECK_INT(store_batch_commit(s), 0);
	store_close(s);
	db_unlink(path);
}

int
main(void)
{
	log_set_level(LOG_WARN);
	TEST(test_safe_batch_undoes_one_event);
	TEST(test_fast_batch_commits);
	TEST(test_fast_batch_empty_rollback);
	TEST(test_fast_batch_spoiled_by_undo);
	TEST(test_fast_batch_spoiled_by_event_rollback);
	TEST(test_fast_batch_spoiled_by_error);
	TEST(test_fast_batch_memory_only);
	return TEST_END();
}
