/*
 * store_tx.c: transactions, savepoints and batches (see store.h).
 *
 * A safe batch is one transaction in which every event is a savepoint.
 * A fast batch, for the simulator's private in-memory store, has no
 * journal and no savepoints at all: SQLite copies every page an event
 * touches into a savepoint's journal before changing it, and in a
 * simulation that copying, not the work itself, was the largest single
 * cost. Nothing can be undone there, so the store keeps count instead: a
 * rollback is granted only when nothing changed since its begin or
 * savepoint (a job queue found empty), and anything more (a protocol
 * error to undo, a failed statement) spoils the batch. The caller then
 * throws the store away and runs again with a safe batch, so an event is
 * still all-or-nothing, only found out later.
 *
 * In every mode a begin and a savepoint note the count of changed rows
 * (sqlite3_total_changes64), so that a rollback knows whether it undid
 * anything: then the patient cache (store_cache.c), which may hold rows
 * it undid, is emptied.
 */
#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "store_int.h"

static int
store_spoil(struct store *s)
{
	if (!s->spoiled)
		log_info("event=db_fast_batch_spoiled");
	s->spoiled = 1;
	return -1;
}

/* A begin or savepoint notes how many rows had changed, so that its
 * rollback knows whether it undoes anything. */
static int
store_push(struct store *s)
{
	if (s->depth == STORE_MAX_DEPTH)
		return s->batch == STORE_BATCH_FAST ? store_spoil(s) : 0;
	s->marks[s->depth++] = sqlite3_total_changes64(s->db);
	return 0;
}

/* A release, commit or rollback: whether rows changed since the matching
 * begin or savepoint (1 when that is not known). */
static int
store_pop(struct store *s)
{
	if (s->depth == 0)
		return 1;
	return sqlite3_total_changes64(s->db) != s->marks[--s->depth];
}

/* A rollback undid something (or may have): rows the cache holds may be
 * among them. */
static void
store_undone(struct store *s, int changed)
{
	if (changed)
		store_cache_clear(s);
}

/* Rolls back to a savepoint (an event's or a handler's) and releases it:
 * ROLLBACK TO keeps it open. */
static int
store_undo_to(struct store *s, enum store_sql rollback_to,
    enum store_sql release)
{
	int	changed = store_pop(s);

	if (store_exec(s, store_stmt(s, rollback_to), "rollback_to") != 0) {
		store_undone(s, 1);
		return -1;
	}
	store_undone(s, changed);
	return store_exec(s, store_stmt(s, release), "release");
}

/* Fast batch: undoing is possible only where there is nothing to undo. */
static int
store_fast_undo(struct store *s)
{
	if (s->spoiled || store_pop(s))
		return store_spoil(s);
	return 0;
}

/* Fast batch: a commit or release keeps what was done. */
static int
store_fast_keep(struct store *s)
{
	if (s->spoiled || s->depth == 0)
		return store_spoil(s);
	store_pop(s);
	return 0;
}

int
store_begin(struct store *s)
{
	int	rc;

	if (s->batch == STORE_BATCH_FAST)
		return s->spoiled ? -1 : store_push(s);
	if (s->batch == STORE_BATCH_SAFE)
		rc = store_exec(s, store_stmt(s, SQL_EV_SAVEPOINT), "begin");
	else
		rc = store_exec(s, store_stmt(s, SQL_BEGIN), "begin");
	return rc == 0 ? store_push(s) : rc;
}

int
store_commit(struct store *s)
{
	if (s->batch == STORE_BATCH_FAST)
		return store_fast_keep(s);
	store_pop(s);
	if (s->batch == STORE_BATCH_SAFE)
		return store_exec(s, store_stmt(s, SQL_EV_RELEASE), "commit");
	return store_exec(s, store_stmt(s, SQL_COMMIT), "commit");
}

int
store_rollback(struct store *s)
{
	if (s->batch == STORE_BATCH_FAST)
		return store_fast_undo(s);
	if (s->batch == STORE_BATCH_SAFE)
		return store_undo_to(s, SQL_EV_ROLLBACK_TO, SQL_EV_RELEASE);
	store_undone(s, store_pop(s));
	return store_exec(s, store_stmt(s, SQL_ROLLBACK), "rollback");
}

int
store_batch_begin(struct store *s, int mode)
{
	if (s->batch != 0)
		return 0;
	if (mode == STORE_BATCH_FAST) {
		/* Only a store nobody else will ever see may run unjournalled:
		 * a spoiled one is thrown away, never read again. */
		if (!s->memory || s->spoiled)
			return -1;
		if (sqlite3_exec(s->db, "PRAGMA journal_mode = OFF", NULL,
		    NULL, NULL) != SQLITE_OK)
			return store_fail(s, "batch_begin");
	}
	if (store_exec(s, store_stmt(s, SQL_BEGIN), "batch_begin") != 0)
		return -1;
	s->batch = mode == STORE_BATCH_FAST ? STORE_BATCH_FAST :
	    STORE_BATCH_SAFE;
	s->depth = 0;
	return 0;
}

int
store_batch_commit(struct store *s)
{
	int	mode = s->batch;

	if (mode == 0)
		return 0;
	s->batch = 0;
	if (s->spoiled)
		return -1;
	if (store_exec(s, store_stmt(s, SQL_COMMIT), "batch_commit") != 0)
		return -1;
	if (mode == STORE_BATCH_FAST && sqlite3_exec(s->db,
	    "PRAGMA journal_mode = MEMORY", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(s, "batch_commit");
	return 0;
}

int
store_batch_spoiled(const struct store *s)
{
	return s->spoiled;
}

int
store_savepoint(struct store *s)
{
	int	rc;

	if (s->batch == STORE_BATCH_FAST)
		return s->spoiled ? -1 : store_push(s);
	rc = store_exec(s, store_stmt(s, SQL_SAVEPOINT), "savepoint");
	return rc == 0 ? store_push(s) : rc;
}

int
store_rollback_savepoint(struct store *s)
{
	if (s->batch == STORE_BATCH_FAST)
		return store_fast_undo(s);
	return store_undo_to(s, SQL_ROLLBACK_TO, SQL_RELEASE);
}

int
store_release_savepoint(struct store *s)
{
	if (s->batch == STORE_BATCH_FAST)
		return store_fast_keep(s);
	store_pop(s);
	return store_exec(s, store_stmt(s, SQL_RELEASE), "release");
}
