/*
 * store_int.h: what the store's own files share (store.c, store_tx.c,
 * store_cache.c, store_schema.c, store_patient.c, store_queue.c,
 * store_record.c, store_report.c). Nothing outside core/store*.c includes
 * it.
 */
#ifndef STRIGIL_STORE_INT_H
#define STRIGIL_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"

/* Every statement the store runs, prepared on first use and kept. */
enum store_sql {
	SQL_BEGIN, SQL_COMMIT, SQL_ROLLBACK,
	SQL_SAVEPOINT, SQL_ROLLBACK_TO, SQL_RELEASE,
	SQL_EV_SAVEPOINT, SQL_EV_ROLLBACK_TO, SQL_EV_RELEASE,
	SQL_PATIENT_FIND, SQL_PATIENT_GET, SQL_PATIENT_INSERT,
	SQL_PATIENT_UPDATE, SQL_PATIENT_FIND_EN, SQL_PATIENT_GET_EN,
	SQL_ENROL_CURRENT, SQL_ENROL_GET, SQL_ENROL_INSERT, SQL_ENROL_UPDATE,
	SQL_STATE_PUT,
	SQL_SESSION_INSERT, SQL_SESSION_OPEN, SQL_SESSION_CLOSE,
	SQL_ANSWER_INSERT, SQL_ANSWER_LAST, SQL_ANSWER_SINCE,
	SQL_INBOX_INSERT, SQL_INBOX_CLOSE,
	SQL_OUTBOX_INSERT, SQL_OUTBOX_INSERT_SENT, SQL_OUTBOX_NEXT,
	SQL_OUTBOX_SENT, SQL_OUTBOX_RETRY, SQL_OUTBOX_DROP,
	SQL_OUTBOX_UPTO, SQL_OUTBOX_DEPTH, SQL_OUTBOX_WAITS,
	SQL_JOB_INSERT, SQL_JOB_NEXT_DUE, SQL_JOB_TAKE, SQL_JOB_CLOSE,
	SQL_JOB_CANCEL, SQL_JOB_CANCEL_ALL, SQL_JOB_CANCEL_ONE, SQL_JOB_PENDING,
	SQL_JOB_PLANNED,
	SQL_JOB_COUNT,
	SQL_JOB_FAILED, SQL_JOB_TWIN, SQL_JOB_RETRY, SQL_JOB_END_MISSING,
	SQL_EVENT_INSERT,
	SQL_PVERSION_GET, SQL_PVERSION_MAX, SQL_PVERSION_INSERT,
	SQL_PHELPER_LIST, SQL_PHELPER_INSERT,
	SQL_INVITE_INSERT, SQL_INVITE_GET, SQL_INVITE_CONSUME, SQL_INVITE_GIVE_BACK,
	SQL_ENROL_INVITE,
	SQL_KV_GET, SQL_KV_SET,
	SQL_DATA_VERSION,
	SQL_COUNT
};

/* How deep begin and savepoints nest in a fast batch (an event, its
 * handler, a second guarded step). */
#define STORE_MAX_DEPTH	8

struct store {
	sqlite3		*db;
	sqlite3_stmt	*stmt[SQL_COUNT];
	int		 memory;	/* ":memory:", nobody else's */
	int		 batch;		/* 0 or STORE_BATCH_* */
	/* A fast batch (store_tx.c): rows changed at each open begin or
	 * savepoint, and whether an undo was asked for that it cannot do. */
	int64_t		 marks[STORE_MAX_DEPTH];
	int		 depth;
	int		 spoiled;
	/* store_cache.c, or NULL; cache_known while a writer that keeps
	 * the cache right itself runs. */
	struct store_cache *cache;
	int		 cache_known;
};

/* store.c: the statement cache and the helpers every query uses. */
int	store_fail(struct store *s, const char *what);
sqlite3_stmt *store_stmt(struct store *s, enum store_sql which);
void	store_bind_text(sqlite3_stmt *st, int i, const char *v);
int	store_exec(struct store *s, sqlite3_stmt *st, const char *what);
int	store_row(struct store *s, sqlite3_stmt *st, const char *what);
void	store_copy(char *dst, size_t size, sqlite3_stmt *st, int col);
char	*store_dup(sqlite3_stmt *st, int col);
int	store_count(struct store *s, enum store_sql which, int64_t *n);

/* store_cache.c: the current course of patients read lately. _find and
 * _get give 0 and a copy (caller frees), or 1. */
int	store_cache_find(struct store *s, const char *adapter,
	    const char *chat, struct store_patient *p,
	    struct store_enrolment *e, int *has_en);
int	store_cache_get(struct store *s, int64_t id, struct store_patient *p,
	    struct store_enrolment *e, int *has_en);
void	store_cache_put(struct store *s, const struct store_patient *p,
	    const struct store_enrolment *e, int has_en);
void	store_cache_patient_written(struct store *s,
	    const struct store_patient *p);
void	store_cache_enrolment_written(struct store *s,
	    const struct store_enrolment *e, int row, int state);
void	store_cache_answered(struct store *s, int64_t patient_id,
	    const char *question, const char *value);
int	store_cache_since(struct store *s, int64_t patient_id, int64_t after,
	    void (*fn)(void *, const char *, const char *), void *ud);
void	store_cache_forget(struct store *s, int64_t patient_id);
void	store_cache_clear(struct store *s);
void	store_cache_free(struct store *s);
void	store_cache_hook(void *ud, int op, const char *db, const char *table,
	    sqlite3_int64 rowid);

/* store_schema.c */
int	store_migrate(struct store *s, char **cause);

#endif
