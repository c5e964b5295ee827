/*
 * store_queue.c: the queues: inbox (each message handled once), outbox
 * (messages not yet delivered) and jobs (scheduled work).
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

/* ---- inbox and outbox --------------------------------------------- */

int
store_inbox_insert(struct store *s, const char *adapter,
    const char *external_id, const char *chat, const char *body, int64_t t,
    int64_t *id)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_INBOX_INSERT);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, adapter);
	store_bind_text(st, 2, external_id);
	store_bind_text(st, 3, chat);
	store_bind_text(st, 4, body);
	sqlite3_bind_int64(st, 5, t);
	if (store_exec(s, st, "inbox_insert") != 0)
		return -1;
	if (sqlite3_changes(s->db) == 0)
		return STORE_DUPLICATE;
	*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int
store_inbox_close(struct store *s, int64_t id, const char *status,
    const char *error)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_INBOX_CLOSE);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	store_bind_text(st, 2, status);
	store_bind_text(st, 3, error);
	return store_exec(s, st, "inbox_close");
}

static int
store_outbox_put(struct store *s, enum store_sql which, int64_t patient_id,
    const char *adapter, const char *chat, const char *body, const char *meta,
    int64_t t, int64_t *id)
{
	sqlite3_stmt	*st = store_stmt(s, which);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, patient_id);
	store_bind_text(st, 2, adapter);
	store_bind_text(st, 3, chat);
	store_bind_text(st, 4, body);
	store_bind_text(st, 5, meta);
	sqlite3_bind_int64(st, 6, t);
	if (store_exec(s, st, "outbox_insert") != 0)
		return -1;
	if (id != NULL)
		*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int
store_outbox_insert(struct store *s, int64_t patient_id, const char *adapter,
    const char *chat, const char *body, const char *meta, int64_t t,
    int64_t *id)
{
	return store_outbox_put(s, SQL_OUTBOX_INSERT, patient_id, adapter,
	    chat, body, meta, t, id);
}

int
store_outbox_insert_sent(struct store *s, int64_t patient_id,
    const char *adapter, const char *chat, const char *body, const char *meta,
    int64_t t, int64_t *id)
{
	return store_outbox_put(s, SQL_OUTBOX_INSERT_SENT, patient_id, adapter,
	    chat, body, meta, t, id);
}

static void
store_out_read(sqlite3_stmt *st, struct store_out *o)
{
	memset(o, 0, sizeof *o);
	o->id = sqlite3_column_int64(st, 0);
	o->patient_id = sqlite3_column_int64(st, 1);
	store_copy(o->adapter, sizeof o->adapter, st, 2);
	store_copy(o->chat, sizeof o->chat, st, 3);
	o->body = store_dup(st, 4);
	o->meta = store_dup(st, 5);
	o->attempts = sqlite3_column_int(st, 6);
	o->sent_upto = sqlite3_column_int64(st, 7);
	o->created_at = sqlite3_column_int64(st, 8);
	sqlite3_reset(st);
}

int
store_outbox_next(struct store *s, const char *adapter, int64_t now,
    struct store_out *o)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_OUTBOX_NEXT);
	int		 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, adapter);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = store_row(s, st, "outbox_next")) != 0)
		return rc;
	store_out_read(st, o);
	return 0;
}

int
store_outbox_sent(struct store *s, int64_t id, int64_t t)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_OUTBOX_SENT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, t);
	return store_exec(s, st, "outbox_sent");
}

int
store_outbox_drop(struct store *s, int64_t id, int64_t t, const char *why)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_OUTBOX_DROP);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, t);
	store_bind_text(st, 3, why);
	return store_exec(s, st, "outbox_drop");
}

int
store_outbox_retry(struct store *s, int64_t id, int64_t not_before)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_OUTBOX_RETRY);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, not_before);
	return store_exec(s, st, "outbox_retry");
}

int
store_outbox_waits(struct store *s, const char *adapter, int64_t now,
    void (*fn)(void *, const char *, int64_t), void *ud)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_OUTBOX_WAITS);
	int		 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, adapter);
	sqlite3_bind_int64(st, 2, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(ud, (const char *)sqlite3_column_text(st, 0),
		    sqlite3_column_int64(st, 1));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, "outbox_waits");
}

int
store_outbox_upto(struct store *s, int64_t id, int64_t upto)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_OUTBOX_UPTO);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, upto);
	return store_exec(s, st, "outbox_upto");
}

int
store_outbox_depth(struct store *s, int64_t *n)
{
	return store_count(s, SQL_OUTBOX_DEPTH, n);
}

void
store_out_clear(struct store_out *o)
{
	free(o->body);
	free(o->meta);
	o->body = o->meta = NULL;
}

/* ---- jobs --------------------------------------------------------- */

int
store_job_insert(struct store *s, struct store_job *j)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_JOB_INSERT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, j->patient_id);
	sqlite3_bind_int64(st, 2, j->enrolment_id);
	store_bind_text(st, 3, j->kind);
	store_bind_text(st, 4, j->arg);
	sqlite3_bind_int64(st, 5, j->due_at);
	if (store_exec(s, st, "job_insert") != 0)
		return -1;
	j->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int
store_job_next_due(struct store *s, int64_t *due)
{
	return store_count(s, SQL_JOB_NEXT_DUE, due);
}

static int
store_job_select(struct store *s, sqlite3_stmt *st, struct store_job *j)
{
	int	rc;

	if ((rc = store_row(s, st, "job_get")) != 0)
		return rc;
	j->id = sqlite3_column_int64(st, 0);
	j->patient_id = sqlite3_column_int64(st, 1);
	j->enrolment_id = sqlite3_column_int64(st, 2);
	store_copy(j->kind, sizeof j->kind, st, 3);
	store_copy(j->arg, sizeof j->arg, st, 4);
	j->due_at = sqlite3_column_int64(st, 5);
	sqlite3_reset(st);
	return 0;
}

int
store_job_take(struct store *s, int64_t now, struct store_job *j)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_JOB_TAKE);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	return store_job_select(s, st, j);
}

int
store_job_pending(struct store *s, int64_t enrolment_id, const char *kind,
    struct store_job *j)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_JOB_PENDING);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, enrolment_id);
	store_bind_text(st, 2, kind);
	return store_job_select(s, st, j);
}

int
store_job_close(struct store *s, int64_t id, const char *status,
    const char *error, int64_t t)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_JOB_CLOSE);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	store_bind_text(st, 2, status);
	store_bind_text(st, 3, error);
	sqlite3_bind_int64(st, 4, t);
	return store_exec(s, st, "job_close");
}

/* Cancels the pending jobs the prepared `find` (bound) yields, a batch
 * of ids at a time: a cancelled job leaves what `find` searches. */
static int
store_job_cancel_found(struct store *s, sqlite3_stmt *find, int64_t t)
{
	sqlite3_stmt	*one;
	int64_t		 ids[32];
	int		 n, i, rc;

	do {
		n = 0;
		while (n < 32 && (rc = sqlite3_step(find)) == SQLITE_ROW)
			ids[n++] = sqlite3_column_int64(find, 0);
		sqlite3_reset(find);
		if (n < 32 && rc != SQLITE_DONE)
			return store_fail(s, "job_cancel");
		for (i = 0; i < n; i++) {
			if ((one = store_stmt(s, SQL_JOB_CANCEL_ONE)) == NULL)
				return -1;
			sqlite3_bind_int64(one, 1, ids[i]);
			sqlite3_bind_int64(one, 2, t);
			if (store_exec(s, one, "job_cancel") != 0)
				return -1;
		}
	} while (n == 32);
	return 0;
}

int
store_job_cancel(struct store *s, int64_t enrolment_id, const char *kind,
    int64_t t)
{
	sqlite3_stmt	*st;

	if (kind == NULL) {
		if ((st = store_stmt(s, SQL_JOB_CANCEL_ALL)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, enrolment_id);
		return store_job_cancel_found(s, st, t);
	}
	if ((st = store_stmt(s, SQL_JOB_CANCEL)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, enrolment_id);
	store_bind_text(st, 2, kind);
	return store_job_cancel_found(s, st, t);
}

int
store_job_cancel2(struct store *s, int64_t enrolment_id, const char *kind1,
    const char *kind2, int64_t t)
{
	if (store_job_cancel(s, enrolment_id, kind1, t) != 0)
		return -1;
	return store_job_cancel(s, enrolment_id, kind2, t);
}

/*
 * Re-planning what is already planned is common (a protocol plans the next
 * session when one is done, and again, most often for the same time, when
 * its check-in is answered): keeping the job then spares a cancellation
 * and an insert, the costliest writes to the jobs table.
 */
int
store_job_plan(struct store *s, struct store_job *j, int64_t t)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_JOB_PLANNED);
	const char	*arg;
	int64_t		 id = 0;
	int		 rc = SQLITE_DONE, n = 0, same = 0;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, j->enrolment_id);
	store_bind_text(st, 2, j->kind);
	while (n < 2 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n++ > 0)
			continue;
		id = sqlite3_column_int64(st, 0);
		arg = (const char *)sqlite3_column_text(st, 2);
		same = sqlite3_column_int64(st, 1) == j->due_at &&
		    arg != NULL && strcmp(arg, j->arg) == 0;
	}
	sqlite3_reset(st);
	if (n < 2 && rc != SQLITE_DONE)
		return store_fail(s, "job_plan");
	if (n == 1 && same) {
		j->id = id;
		return 0;
	}
	if (n > 0 && store_job_cancel(s, j->enrolment_id, j->kind, t) != 0)
		return -1;
	return store_job_insert(s, j);
}

int
store_job_count(struct store *s, int64_t *n)
{
	return store_count(s, SQL_JOB_COUNT, n);
}

/* The failed jobs of running courses on `protocol`, newest first (caller
 * frees *out). */
static int
store_job_failed(struct store *s, const char *protocol,
    struct store_job **out, size_t *n)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_JOB_FAILED);
	struct store_job *j = NULL;
	size_t		 cap = 0;
	int		 rc;

	*out = NULL;
	*n = 0;
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			j = xrealloc(j, cap * sizeof *j);
		}
		memset(&j[*n], 0, sizeof j[*n]);
		j[*n].id = sqlite3_column_int64(st, 0);
		j[*n].enrolment_id = sqlite3_column_int64(st, 1);
		store_copy(j[*n].kind, sizeof j[*n].kind, st, 2);
		store_copy(j[*n].arg, sizeof j[*n].arg, st, 3);
		(*n)++;
	}
	sqlite3_reset(st);
	*out = j;
	if (rc != SQLITE_DONE)
		return store_fail(s, "job_failed");
	return 0;
}

/* 1 if the enrolment has a pending job of j's kind and arg, 0 if not. */
static int
store_job_twin(struct store *s, const struct store_job *j)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_JOB_TWIN);
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, j->enrolment_id);
	store_bind_text(st, 2, j->kind);
	store_bind_text(st, 3, j->arg);
	rc = store_row(s, st, "job_twin");
	sqlite3_reset(st);
	return rc == 0 ? 1 : rc == STORE_NOTFOUND ? 0 : -1;
}

/*
 * Newest first, so that of two failed twins only the newer runs. A job
 * whose work a pending one already does (a session planned since it
 * failed, the same questionnaire asked again) is closed as superseded:
 * retried, it would remind the patient twice.
 */
int
store_job_retry_failed(struct store *s, const char *protocol, int64_t now,
    int64_t *n)
{
	struct store_job	*j;
	sqlite3_stmt		*st;
	size_t			 nj, i;
	int			 rc = 0, twin;

	*n = 0;
	if (store_job_failed(s, protocol, &j, &nj) != 0) {
		free(j);
		return -1;
	}
	for (i = 0; i < nj && rc == 0; i++) {
		if ((twin = store_job_twin(s, &j[i])) < 0) {
			rc = -1;
			break;
		}
		if (twin) {
			rc = store_job_close(s, j[i].id, "superseded", NULL,
			    now);
			continue;
		}
		if ((st = store_stmt(s, SQL_JOB_RETRY)) == NULL) {
			rc = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, j[i].id);
		sqlite3_bind_int64(st, 2, now);
		if ((rc = store_exec(s, st, "job_retry")) == 0)
			(*n)++;
	}
	free(j);
	return rc;
}

int
store_job_end_missing(struct store *s, const char *protocol, int64_t now,
    int64_t *n)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_JOB_END_MISSING);

	*n = 0;
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	sqlite3_bind_int64(st, 2, now);
	if (store_exec(s, st, "job_end_missing") != 0)
		return -1;
	*n = sqlite3_changes64(s->db);
	return 0;
}
