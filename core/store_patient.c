/*
 * store_patient.c: patients, their enrolments (with the protocol's state),
 * sessions and answers; a chat that moves; erasing a patient.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

/* Reads ENROL_COLS starting at column `c`. */
static void
store_enrolment_read(sqlite3_stmt *st, int c, struct store_enrolment *e)
{
	memset(e, 0, sizeof *e);
	e->id = sqlite3_column_int64(st, c);
	e->patient_id = sqlite3_column_int64(st, c + 1);
	store_copy(e->protocol, sizeof e->protocol, st, c + 2);
	e->version = sqlite3_column_int(st, c + 3);
	store_copy(e->status, sizeof e->status, st, c + 4);
	e->pressure = sqlite3_column_int(st, c + 5);
	e->sessions_done = sqlite3_column_int(st, c + 6);
	e->enrolled_at = sqlite3_column_int64(st, c + 7);
	e->last_session_at = sqlite3_column_int64(st, c + 8);
	e->ended_at = sqlite3_column_int64(st, c + 9);
	e->state = store_dup(st, c + 10);
}

/* ---- patients ----------------------------------------------------- */

static void
store_patient_read(sqlite3_stmt *st, struct store_patient *p)
{
	memset(p, 0, sizeof *p);
	p->id = sqlite3_column_int64(st, 0);
	store_copy(p->adapter, sizeof p->adapter, st, 1);
	store_copy(p->chat, sizeof p->chat, st, 2);
	store_copy(p->tz, sizeof p->tz, st, 3);
	p->remind_min = sqlite3_column_int(st, 4);
	store_copy(p->lang, sizeof p->lang, st, 5);
	p->consent = sqlite3_column_int(st, 6);
	p->unreachable = sqlite3_column_int(st, 7);
	store_copy(p->ask_q, sizeof p->ask_q, st, 8);
	p->ask_from = sqlite3_column_int64(st, 9);
	p->ask_i = sqlite3_column_int(st, 10);
	p->created_at = sqlite3_column_int64(st, 11);
	store_copy(p->ask_prev, sizeof p->ask_prev, st, 12);
}

static int
store_patient_select(struct store *s, sqlite3_stmt *st,
    struct store_patient *p)
{
	int	rc;

	if ((rc = store_row(s, st, "patient_get")) != 0)
		return rc;
	store_patient_read(st, p);
	sqlite3_reset(st);
	return 0;
}

int
store_patient_find(struct store *s, const char *adapter, const char *chat,
    struct store_patient *p)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PATIENT_FIND);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, adapter);
	store_bind_text(st, 2, chat);
	return store_patient_select(s, st, p);
}

int
store_patient_get(struct store *s, int64_t id, struct store_patient *p)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PATIENT_GET);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return store_patient_select(s, st, p);
}

/* The row of PATIENT_EN_SELECT: the patient, and their latest enrolment if
 * there is one (*has_en). */
static int
store_patient_en_select(struct store *s, sqlite3_stmt *st,
    struct store_patient *p, struct store_enrolment *e, int *has_en)
{
	int	rc;

	if ((rc = store_row(s, st, "patient_current")) != 0)
		return rc;
	store_patient_read(st, p);
	*has_en = sqlite3_column_type(st, 13) != SQLITE_NULL;
	if (*has_en)
		store_enrolment_read(st, 13, e);
	else
		memset(e, 0, sizeof *e);
	sqlite3_reset(st);
	return 0;
}

int
store_patient_find_current(struct store *s, const char *adapter,
    const char *chat, struct store_patient *p, struct store_enrolment *e,
    int *has_en)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (store_cache_find(s, adapter, chat, p, e, has_en) == 0)
		return 0;
	if ((st = store_stmt(s, SQL_PATIENT_FIND_EN)) == NULL)
		return -1;
	store_bind_text(st, 1, adapter);
	store_bind_text(st, 2, chat);
	if ((rc = store_patient_en_select(s, st, p, e, has_en)) == 0)
		store_cache_put(s, p, e, *has_en);
	return rc;
}

int
store_patient_get_current(struct store *s, int64_t id,
    struct store_patient *p, struct store_enrolment *e, int *has_en)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (store_cache_get(s, id, p, e, has_en) == 0)
		return 0;
	if ((st = store_stmt(s, SQL_PATIENT_GET_EN)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = store_patient_en_select(s, st, p, e, has_en)) == 0)
		store_cache_put(s, p, e, *has_en);
	return rc;
}

int
store_patient_insert(struct store *s, struct store_patient *p)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PATIENT_INSERT);
	int		 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, p->adapter);
	store_bind_text(st, 2, p->chat);
	store_bind_text(st, 3, p->tz);
	sqlite3_bind_int(st, 4, p->remind_min);
	store_bind_text(st, 5, p->lang);
	sqlite3_bind_int(st, 6, p->consent);
	sqlite3_bind_int(st, 7, p->unreachable);
	store_bind_text(st, 8, p->ask_q);
	sqlite3_bind_int64(st, 9, p->ask_from);
	sqlite3_bind_int64(st, 10, p->created_at);
	store_bind_text(st, 11, p->ask_prev);
	/* A new row: nothing the cache holds changes. */
	s->cache_known = 1;
	rc = store_exec(s, st, "patient_insert");
	s->cache_known = 0;
	if (rc != 0)
		return -1;
	p->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int
store_patient_update(struct store *s, const struct store_patient *p)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PATIENT_UPDATE);
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, p->id);
	store_bind_text(st, 2, p->tz);
	sqlite3_bind_int(st, 3, p->remind_min);
	store_bind_text(st, 4, p->lang);
	sqlite3_bind_int(st, 5, p->consent);
	sqlite3_bind_int(st, 6, p->unreachable);
	store_bind_text(st, 7, p->ask_q);
	sqlite3_bind_int64(st, 8, p->ask_from);
	store_bind_text(st, 9, p->ask_prev);
	s->cache_known = 1;
	rc = store_exec(s, st, "patient_update");
	s->cache_known = 0;
	if (rc == 0)
		store_cache_patient_written(s, p);
	return rc;
}

/* ---- enrolments --------------------------------------------------- */

static int
store_enrolment_select(struct store *s, sqlite3_stmt *st,
    struct store_enrolment *e)
{
	int	rc;

	if ((rc = store_row(s, st, "enrolment_get")) != 0)
		return rc;
	store_enrolment_read(st, 0, e);
	sqlite3_reset(st);
	return 0;
}

int
store_enrolment_current(struct store *s, int64_t patient_id,
    struct store_enrolment *e)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_ENROL_CURRENT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, patient_id);
	return store_enrolment_select(s, st, e);
}

int
store_enrolment_get(struct store *s, int64_t id, struct store_enrolment *e)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_ENROL_GET);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return store_enrolment_select(s, st, e);
}

static int
store_state_put(struct store *s, int64_t id, const char *state)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_STATE_PUT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	store_bind_text(st, 2, state != NULL ? state : "{}");
	return store_exec(s, st, "state_put");
}

static int
store_enrolment_add(struct store *s, struct store_enrolment *e)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_ENROL_INSERT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, e->patient_id);
	store_bind_text(st, 2, e->protocol);
	sqlite3_bind_int(st, 3, e->version);
	store_bind_text(st, 4, e->status);
	sqlite3_bind_int(st, 5, e->pressure);
	sqlite3_bind_int(st, 6, e->sessions_done);
	sqlite3_bind_int64(st, 7, e->enrolled_at);
	sqlite3_bind_int64(st, 8, e->last_session_at);
	sqlite3_bind_int64(st, 9, e->ended_at);
	if (store_exec(s, st, "enrolment_insert") != 0)
		return -1;
	e->id = sqlite3_last_insert_rowid(s->db);
	return store_state_put(s, e->id, e->state);
}

int
store_enrolment_insert(struct store *s, struct store_enrolment *e)
{
	int	rc;

	/* The patient's latest course is a new one: their cached one goes. */
	s->cache_known = 1;
	rc = store_enrolment_add(s, e);
	s->cache_known = 0;
	store_cache_forget(s, e->patient_id);
	return rc;
}

int
store_enrolment_update(struct store *s, const struct store_enrolment *e)
{
	return store_enrolment_save(s, e, 1, 1);
}

static int
store_enrolment_write(struct store *s, const struct store_enrolment *e,
    int row, int state)
{
	sqlite3_stmt	*st;

	if (!row)
		return state ? store_state_put(s, e->id, e->state) : 0;
	if ((st = store_stmt(s, SQL_ENROL_UPDATE)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, e->id);
	store_bind_text(st, 2, e->status);
	sqlite3_bind_int(st, 3, e->pressure);
	sqlite3_bind_int(st, 4, e->sessions_done);
	sqlite3_bind_int64(st, 5, e->last_session_at);
	sqlite3_bind_int64(st, 6, e->ended_at);
	sqlite3_bind_int(st, 7, e->version);
	sqlite3_bind_int64(st, 8, e->enrolled_at);
	if (store_exec(s, st, "enrolment_update") != 0)
		return -1;
	return state ? store_state_put(s, e->id, e->state) : 0;
}

int
store_enrolment_save(struct store *s, const struct store_enrolment *e,
    int row, int state)
{
	int	rc;

	s->cache_known = 1;
	rc = store_enrolment_write(s, e, row, state);
	s->cache_known = 0;
	if (rc == 0)
		store_cache_enrolment_written(s, e, row, state);
	else
		store_cache_forget(s, e->patient_id);
	return rc;
}

void
store_enrolment_clear(struct store_enrolment *e)
{
	free(e->state);
	e->state = NULL;
}

/* ---- sessions and answers ------------------------------------------ */

int
store_session_insert(struct store *s, struct store_session *ss)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_SESSION_INSERT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, ss->enrolment_id);
	sqlite3_bind_int(st, 2, ss->number);
	sqlite3_bind_int(st, 3, ss->pressure);
	sqlite3_bind_int64(st, 4, ss->due_at);
	store_bind_text(st, 5, ss->status);
	if (store_exec(s, st, "session_insert") != 0)
		return -1;
	ss->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int
store_session_open(struct store *s, int64_t enrolment_id,
    struct store_session *ss)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_SESSION_OPEN);
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, enrolment_id);
	if ((rc = store_row(s, st, "session_open")) != 0)
		return rc;
	ss->id = sqlite3_column_int64(st, 0);
	ss->enrolment_id = sqlite3_column_int64(st, 1);
	ss->number = sqlite3_column_int(st, 2);
	ss->pressure = sqlite3_column_int(st, 3);
	ss->due_at = sqlite3_column_int64(st, 4);
	store_copy(ss->status, sizeof ss->status, st, 5);
	sqlite3_reset(st);
	return 0;
}

int
store_session_close(struct store *s, int64_t id, const char *status,
    int64_t t)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_SESSION_CLOSE);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	store_bind_text(st, 2, status);
	sqlite3_bind_int64(st, 3, t);
	return store_exec(s, st, "session_close");
}

int
store_answer_insert(struct store *s, int64_t patient_id, int64_t enrolment_id,
    const char *questionnaire, const char *question, const char *value,
    int64_t t)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_ANSWER_INSERT);
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, patient_id);
	sqlite3_bind_int64(st, 2, enrolment_id);
	store_bind_text(st, 3, questionnaire);
	store_bind_text(st, 4, question);
	store_bind_text(st, 5, value);
	sqlite3_bind_int64(st, 6, t);
	s->cache_known = 1;
	rc = store_exec(s, st, "answer_insert");
	s->cache_known = 0;
	if (rc == 0)
		store_cache_answered(s, patient_id, question, value);
	return rc;
}

int
store_answer_last(struct store *s, int64_t patient_id, int64_t *id)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_ANSWER_LAST);
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, patient_id);
	if ((rc = store_row(s, st, "answer_last")) != 0)
		return rc == STORE_NOTFOUND ? -1 : rc;
	*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

int
store_answer_since(struct store *s, int64_t patient_id, int64_t after,
    void (*fn)(void *ud, const char *question, const char *value), void *ud)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (store_cache_since(s, patient_id, after, fn, ud) == 0)
		return 0;
	if ((st = store_stmt(s, SQL_ANSWER_SINCE)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, patient_id);
	sqlite3_bind_int64(st, 2, after);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(ud, (const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, "answer_since");
}

/* ---- chats that move --------------------------------------------- */

/* Prepared each time: a chat moves once in its life. */
int
store_chat_move(struct store *s, const char *adapter, const char *from,
    const char *to, int64_t *n)
{
	static const char *const sql[] = {
		"UPDATE patients SET chat = ?3 WHERE adapter = ?1 AND chat = ?2",
		"UPDATE outbox SET chat = ?3 WHERE adapter = ?1 AND chat = ?2"
		    " AND sent_at = 0",
	};
	sqlite3_stmt	*st;
	size_t		 i;
	int		 rc;

	*n = 0;
	for (i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) !=
		    SQLITE_OK)
			return store_fail(s, "chat_move");
		store_bind_text(st, 1, adapter);
		store_bind_text(st, 2, from);
		store_bind_text(st, 3, to);
		rc = sqlite3_step(st);
		if (i == 0)
			*n = sqlite3_changes(s->db);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return store_fail(s, "chat_move");
	}
	return 0;
}

/* ---- erasure ------------------------------------------------------ */

/* Prepared each time: a patient is erased once. Children first, so the
 * foreign keys hold at every step. The highest id erased is kept, so that
 * no later patient gets it (rowids of a deleted last row come back). */
int
store_patient_erase(struct store *s, int64_t id, const char *adapter,
    const char *chat, int64_t t)
{
	static const char *const sql[] = {
		"DELETE FROM protocol_state WHERE enrolment_id IN"
		    " (SELECT id FROM enrolments WHERE patient_id = ?1)",
		"DELETE FROM sessions WHERE enrolment_id IN"
		    " (SELECT id FROM enrolments WHERE patient_id = ?1)",
		"DELETE FROM answers WHERE patient_id = ?1",
		"DELETE FROM jobs WHERE patient_id = ?1",
		"DELETE FROM events WHERE patient_id = ?1",
		"DELETE FROM outbox WHERE patient_id = ?1"
		    " OR (adapter = ?2 AND chat = ?3)",
		"DELETE FROM inbox WHERE adapter = ?2 AND chat = ?3",
		"DELETE FROM enrolments WHERE patient_id = ?1",
		"DELETE FROM patients WHERE id = ?1",
		"INSERT INTO kv (key, value, updated_at) VALUES ('"
		    STORE_ERASED_MAX "', ?1, ?4) ON CONFLICT (key) DO UPDATE"
		    " SET value = max(CAST(value AS INTEGER), ?1),"
		    " updated_at = ?4",
	};
	sqlite3_stmt	*st;
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) !=
		    SQLITE_OK)
			return store_fail(s, "patient_erase");
		sqlite3_bind_int64(st, 1, id);
		store_bind_text(st, 2, adapter);
		store_bind_text(st, 3, chat);
		if (sqlite3_bind_parameter_count(st) >= 4)
			sqlite3_bind_int64(st, 4, t);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return store_fail(s, "patient_erase");
	}
	return 0;
}

/* Checkpoints the WAL into the database and truncates it to nothing, so
 * no old page images (of an erased patient, say) stay in the -wal file.
 * Best effort: a reader (strigil backup) may keep it from completing. */
void
store_wal_wipe(struct store *s)
{
	int	rc;

	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    NULL, NULL);
	if (rc != SQLITE_OK)
		log_warn("event=db_wal_wipe_incomplete error=%s",
		    log_q(sqlite3_errmsg(s->db)));
}
