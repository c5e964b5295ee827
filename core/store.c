/*
 * store.c: the SQLite database: opening, transactions and the prepared
 * statements behind every store_ function, with the helpers that run them.
 * The queries themselves are in store_patient.c, store_queue.c,
 * store_record.c and store_report.c; the migrations in store_schema.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "sqlmem.h"
#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

/* The questions answered of the questionnaire in progress: the patient's
 * answers after ask_from (store.h). */
#define PATIENT_ASKED(p) "CASE WHEN " p "ask_q = '' THEN 0 ELSE" \
	" (SELECT count(*) FROM answers a WHERE a.patient_id = " p "id" \
	" AND a.id > " p "ask_from) END"
#define PATIENT_COLS "id, adapter, chat, tz, remind_min, lang, consent," \
	" unreachable, ask_q, ask_from, " PATIENT_ASKED("patients.") \
	", created_at, ask_prev"
#define ENROL_COLS "e.id, e.patient_id, e.protocol, e.version, e.status," \
	" e.pressure, e.sessions_done, e.enrolled_at, e.last_session_at," \
	" e.ended_at, s.data"
#define ENROL_FROM " FROM enrolments e" \
	" LEFT JOIN protocol_state s ON s.enrolment_id = e.id"
/* A patient with their latest enrolment (NULL columns if none) and its
 * state: the one read every event starts with. */
#define PATIENT_EN_SELECT "SELECT p.id, p.adapter, p.chat, p.tz," \
	" p.remind_min, p.lang, p.consent, p.unreachable, p.ask_q," \
	" p.ask_from, " PATIENT_ASKED("p.") ", p.created_at, p.ask_prev, " \
	ENROL_COLS \
	" FROM patients p" \
	" LEFT JOIN enrolments e ON e.id = (SELECT max(id) FROM enrolments" \
	" WHERE patient_id = p.id)" \
	" LEFT JOIN protocol_state s ON s.enrolment_id = e.id"
#define JOB_COLS "id, patient_id, enrolment_id, kind, arg, due_at"

static const char *store_sql_text[SQL_COUNT] = {
	[SQL_BEGIN] = "BEGIN IMMEDIATE",
	[SQL_COMMIT] = "COMMIT",
	[SQL_ROLLBACK] = "ROLLBACK",
	[SQL_SAVEPOINT] = "SAVEPOINT handler",
	[SQL_ROLLBACK_TO] = "ROLLBACK TO handler",
	[SQL_RELEASE] = "RELEASE handler",
	[SQL_EV_SAVEPOINT] = "SAVEPOINT event",
	[SQL_EV_ROLLBACK_TO] = "ROLLBACK TO event",
	[SQL_EV_RELEASE] = "RELEASE event",
	[SQL_PATIENT_FIND] = "SELECT " PATIENT_COLS
	    " FROM patients WHERE adapter = ?1 AND chat = ?2",
	[SQL_PATIENT_GET] = "SELECT " PATIENT_COLS
	    " FROM patients WHERE id = ?1",
	[SQL_PATIENT_FIND_EN] = PATIENT_EN_SELECT
	    " WHERE p.adapter = ?1 AND p.chat = ?2",
	[SQL_PATIENT_GET_EN] = PATIENT_EN_SELECT " WHERE p.id = ?1",
	/* The id is never one an erased patient had (store_patient_erase):
	 * the audit trail names erased patients by id. */
	[SQL_PATIENT_INSERT] = "INSERT INTO patients (id, adapter, chat, tz,"
	    " remind_min, lang, consent, unreachable, ask_q, ask_from,"
	    " created_at, ask_prev) VALUES (max(coalesce((SELECT max(id) FROM patients),"
	    " 0), coalesce((SELECT CAST(value AS INTEGER) FROM kv WHERE key ="
	    " '" STORE_ERASED_MAX "'), 0)) + 1,"
	    " ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[SQL_PATIENT_UPDATE] = "UPDATE patients SET tz = ?2, remind_min = ?3,"
	    " lang = ?4, consent = ?5, unreachable = ?6, ask_q = ?7,"
	    " ask_from = ?8, ask_prev = ?9 WHERE id = ?1",
	[SQL_ENROL_CURRENT] = "SELECT " ENROL_COLS ENROL_FROM
	    " WHERE e.patient_id = ?1 ORDER BY e.id DESC LIMIT 1",
	[SQL_ENROL_GET] = "SELECT " ENROL_COLS ENROL_FROM " WHERE e.id = ?1",
	[SQL_ENROL_INSERT] = "INSERT INTO enrolments (patient_id, protocol,"
	    " version, status, pressure, sessions_done, enrolled_at,"
	    " last_session_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
	    " ?8, ?9)",
	[SQL_ENROL_UPDATE] = "UPDATE enrolments SET status = ?2, pressure = ?3,"
	    " sessions_done = ?4, last_session_at = ?5, ended_at = ?6,"
	    " version = ?7, enrolled_at = ?8 WHERE id = ?1",
	[SQL_STATE_PUT] = "INSERT INTO protocol_state (enrolment_id, data)"
	    " VALUES (?1, ?2) ON CONFLICT (enrolment_id)"
	    " DO UPDATE SET data = excluded.data",
	[SQL_SESSION_INSERT] = "INSERT INTO sessions (enrolment_id, number,"
	    " pressure, due_at, status) VALUES (?1, ?2, ?3, ?4, ?5)",
	[SQL_SESSION_OPEN] = "SELECT id, enrolment_id, number, pressure, due_at,"
	    " status FROM sessions WHERE enrolment_id = ?1 AND status = 'due'"
	    " ORDER BY id DESC LIMIT 1",
	[SQL_SESSION_CLOSE] = "UPDATE sessions SET status = ?2, closed_at = ?3"
	    " WHERE id = ?1",
	[SQL_ANSWER_LAST] = "SELECT coalesce(max(id), 0) FROM answers"
	    " WHERE patient_id = ?1",
	[SQL_ANSWER_SINCE] = "SELECT question, value FROM answers"
	    " WHERE patient_id = ?1 AND id > ?2 ORDER BY id",
	[SQL_ANSWER_INSERT] = "INSERT INTO answers (patient_id, enrolment_id,"
	    " questionnaire, question, value, answered_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SQL_INBOX_INSERT] = "INSERT INTO inbox (adapter, external_id, chat,"
	    " body, received_at, status) VALUES (?1, ?2, ?3, ?4, ?5, 'done')"
	    " ON CONFLICT (adapter, external_id) DO NOTHING",
	[SQL_INBOX_CLOSE] = "UPDATE inbox SET status = ?2, error = ?3"
	    " WHERE id = ?1",
	[SQL_OUTBOX_INSERT] = "INSERT INTO outbox (patient_id, adapter, chat,"
	    " body, meta, created_at, not_before)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
	[SQL_OUTBOX_INSERT_SENT] = "INSERT INTO outbox (patient_id, adapter,"
	    " chat, body, meta, created_at, not_before, attempts, sent_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1, ?6)",
	[SQL_OUTBOX_NEXT] = "SELECT id, patient_id, adapter, chat, body, meta,"
	    " attempts, sent_upto, created_at FROM outbox WHERE adapter = ?1 AND sent_at = 0"
	    " AND not_before <= ?2 ORDER BY id LIMIT 1",
	[SQL_OUTBOX_DROP] = "UPDATE outbox SET sent_at = ?2, failed = ?3,"
	    " attempts = attempts + 1 WHERE id = ?1",
	[SQL_OUTBOX_SENT] = "UPDATE outbox SET sent_at = ?2,"
	    " attempts = attempts + 1 WHERE id = ?1",
	[SQL_OUTBOX_RETRY] = "UPDATE outbox SET not_before = ?2,"
	    " attempts = attempts + 1 WHERE id = ?1",
	[SQL_OUTBOX_UPTO] = "UPDATE outbox SET sent_upto = ?2 WHERE id = ?1",
	[SQL_OUTBOX_DEPTH] = "SELECT count(*) FROM outbox WHERE sent_at = 0",
	[SQL_OUTBOX_WAITS] = "SELECT chat, max(not_before) FROM outbox"
	    " WHERE adapter = ?1 AND sent_at = 0 AND not_before > ?2"
	    " GROUP BY chat",
	[SQL_JOB_INSERT] = "INSERT INTO jobs (patient_id, enrolment_id, kind,"
	    " arg, due_at) VALUES (?1, ?2, ?3, ?4, ?5)",
	[SQL_JOB_NEXT_DUE] = "SELECT due_at FROM jobs WHERE status = 'pending'"
	    " ORDER BY due_at, id LIMIT 1",
	[SQL_JOB_TAKE] = "SELECT " JOB_COLS " FROM jobs"
	    " WHERE status = 'pending' AND due_at <= ?1"
	    " ORDER BY due_at, id LIMIT 1",
	[SQL_JOB_CLOSE] = "UPDATE jobs SET status = ?2, error = ?3,"
	    " closed_at = ?4 WHERE id = ?1",
	/* Cancelling finds the jobs first and closes each by id: an UPDATE
	 * that searches the partial index it takes rows out of makes SQLite
	 * build a temporary table first, even for no row at all (up to
	 * 60,000 instructions a call, where this costs a few thousand). */
	[SQL_JOB_CANCEL] = "SELECT id FROM jobs WHERE enrolment_id = ?1"
	    " AND kind = ?2 AND status = 'pending'",
	[SQL_JOB_CANCEL_ALL] = "SELECT id FROM jobs WHERE enrolment_id = ?1"
	    " AND status = 'pending'",
	[SQL_JOB_CANCEL_ONE] = "UPDATE jobs SET status = 'cancelled',"
	    " closed_at = ?2 WHERE id = ?1 AND status = 'pending'",
	[SQL_JOB_PENDING] = "SELECT " JOB_COLS " FROM jobs"
	    " WHERE enrolment_id = ?1 AND kind = ?2 AND status = 'pending'"
	    " ORDER BY due_at LIMIT 1",
	[SQL_JOB_PLANNED] = "SELECT id, due_at, arg FROM jobs"
	    " WHERE enrolment_id = ?1 AND kind = ?2 AND status = 'pending'"
	    " LIMIT 2",
	[SQL_JOB_COUNT] = "SELECT count(*) FROM jobs WHERE status = 'pending'",
	[SQL_JOB_FAILED] = "SELECT id, enrolment_id, kind, arg FROM jobs"
	    " WHERE status = 'failed' AND enrolment_id IN (SELECT id FROM"
	    " enrolments WHERE protocol = ?1 AND ended_at = 0)"
	    " ORDER BY id DESC",
	[SQL_JOB_TWIN] = "SELECT 1 FROM jobs WHERE enrolment_id = ?1"
	    " AND kind = ?2 AND arg = ?3 AND status = 'pending' LIMIT 1",
	[SQL_JOB_RETRY] = "UPDATE jobs SET status = 'pending', due_at = ?2,"
	    " error = NULL, closed_at = 0 WHERE id = ?1",
	[SQL_JOB_END_MISSING] = "INSERT INTO jobs (patient_id, enrolment_id,"
	    " kind, due_at) SELECT e.patient_id, e.id, 'end', ?2"
	    " FROM enrolments AS e WHERE e.protocol = ?1"
	    " AND e.status = 'active' AND NOT EXISTS (SELECT 1 FROM jobs"
	    " WHERE enrolment_id = e.id AND kind = 'end'"
	    " AND status = 'pending')",
	[SQL_EVENT_INSERT] = "INSERT INTO events (patient_id, enrolment_id, t,"
	    " kind, data) VALUES (?1, ?2, ?3, ?4, ?5)",
	[SQL_PVERSION_GET] = "SELECT source, path FROM protocol_versions"
	    " WHERE protocol = ?1 AND version = ?2",
	[SQL_PVERSION_MAX] = "SELECT max(version) FROM protocol_versions"
	    " WHERE protocol = ?1",
	[SQL_PVERSION_INSERT] = "INSERT INTO protocol_versions (protocol,"
	    " version, source, path, loaded_at) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (protocol, version) DO NOTHING",
	[SQL_PHELPER_LIST] = "SELECT name, source FROM protocol_helpers"
	    " WHERE protocol = ?1 AND version = ?2 ORDER BY name",
	[SQL_PHELPER_INSERT] = "INSERT INTO protocol_helpers (protocol,"
	    " version, name, source) VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (protocol, version, name) DO NOTHING",
	[SQL_INVITE_INSERT] = "INSERT INTO invites (code, protocol, clinician,"
	    " note, created_at, expires_at, uses_left)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	    " ON CONFLICT (code) DO NOTHING",
	[SQL_INVITE_GET] = "SELECT code, protocol, clinician, note, created_at,"
	    " expires_at, uses_left FROM invites WHERE code = ?1",
	/* The checks are in the WHERE clause, so a use is taken only when
	 * one is left, whatever another writer did since the look-up. */
	[SQL_INVITE_CONSUME] = "UPDATE invites SET uses_left = CASE"
	    " WHEN uses_left < 0 THEN uses_left ELSE uses_left - 1 END"
	    " WHERE code = ?1 AND expires_at > ?2 AND uses_left != 0",
	[SQL_INVITE_GIVE_BACK] = "UPDATE invites SET uses_left = uses_left + 1"
	    " WHERE uses_left >= 0 AND code = (SELECT invite FROM enrolments"
	    " WHERE id = ?1)",
	[SQL_ENROL_INVITE] = "UPDATE enrolments SET invite = ?2 WHERE id = ?1",
	[SQL_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
	[SQL_KV_SET] = "INSERT INTO kv (key, value, updated_at)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE"
	    " SET value = excluded.value, updated_at = excluded.updated_at",
	[SQL_DATA_VERSION] = "PRAGMA data_version",
};

/* Logs a database error. SQLite's messages name tables and constraints,
 * never bound values, so they are safe to log. */
int
store_fail(struct store *s, const char *what)
{
	log_error("event=db_error op=%s error=%s", what,
	    log_q(sqlite3_errmsg(s->db)));
	/* Without a journal a failed statement may have left half its
	 * work: the fast batch cannot go on (store_tx.c). */
	if (s->batch == STORE_BATCH_FAST)
		s->spoiled = 1;
	return -1;
}

/* Returns the cached statement, reset and with its bindings cleared. */
sqlite3_stmt *
store_stmt(struct store *s, enum store_sql which)
{
	sqlite3_stmt	*st = s->stmt[which];

	if (st == NULL) {
		if (sqlite3_prepare_v3(s->db, store_sql_text[which], -1,
		    SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
			store_fail(s, "prepare");
			return NULL;
		}
		s->stmt[which] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

void
store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. */
int
store_exec(struct store *s, sqlite3_stmt *st, const char *what)
{
	int	rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, what);
	return 0;
}

/* Steps a query: 0 with a row ready, STORE_NOTFOUND, or -1. */
int
store_row(struct store *s, sqlite3_stmt *st, const char *what)
{
	int	rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 0;
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return STORE_NOTFOUND;
	return store_fail(s, what);
}

void
store_copy(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char	*v = sqlite3_column_text(st, col);
	size_t			 n = v != NULL ? (size_t)sqlite3_column_bytes(st,
				    col) : 0;

	/* Hot: every row read goes through here, so no printf. */
	if (n >= size)
		n = size - 1;
	if (n > 0)
		memcpy(dst, v, n);
	dst[n] = '\0';
}

char *
store_dup(sqlite3_stmt *st, int col)
{
	const unsigned char	*v = sqlite3_column_text(st, col);

	return v != NULL ? xstrdup((const char *)v) : NULL;
}

int
store_count(struct store *s, enum store_sql which, int64_t *n)
{
	sqlite3_stmt	*st = store_stmt(s, which);
	int		 rc;

	if ((rc = store_row(s, st, "count")) != 0)
		return rc;
	*n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/* ---- opening and the schema version ------------------------------ */

static int
store_pragma_int(struct store *s, const char *sql, int *v)
{
	sqlite3_stmt	*st;
	int		 rc;

	*v = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "pragma");
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
store_schema_version(struct store *s)
{
	int	v;

	if (store_pragma_int(s, "PRAGMA user_version", &v) != 0)
		return -1;
	return v;
}

/*
 * WAL lets a backup or a reader run beside the daemon; synchronous=NORMAL in
 * WAL mode still never corrupts the database, and loses at most the last
 * transactions on power loss, not on a process crash. busy_timeout covers a
 * second process (strigil backup) holding the lock briefly.
 */
static int
store_configure(struct store *s, const char *path, char **cause)
{
	/* secure_delete: an erased patient's rows are overwritten with
	 * zeros, not left in free pages (see docs/security.md). */
	const char	*sql = "PRAGMA foreign_keys = ON;"
	    "PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;";
	char		*err = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	/* In memory (the simulator) there is no file format to keep: with
	 * 16 KiB pages its b-trees are shallower and split less, 8 % less
	 * time and 9 % less memory at 10,000 patients (docs/performance.md).
	 * It must come before the first table. */
	if (s->memory)
		sql = "PRAGMA page_size = 16384;";
	else
		sql = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";
	if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	*cause = xasprintf("%s: %s", path, err != NULL ? err : "pragma failed");
	sqlite3_free(err);
	return -1;
}

int
store_open(struct store **out, const char *path, char **cause)
{
	struct store	*s = xcalloc(1, sizeof *s);
	int		 flags;

	/* No allocation statistics: they take a global mutex on every
	 * malloc (up to a sixth of a simulation's time). Only works before
	 * SQLite's first use, and is harmlessly refused after. The same
	 * holds for the recycling allocator (sqlmem.h). */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlmem_install();
	flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
		*cause = xasprintf("%s: %s", path, s->db != NULL ?
		    sqlite3_errmsg(s->db) : "cannot open");
		goto fail;
	}
	s->memory = strcmp(path, ":memory:") == 0;
	sqlite3_update_hook(s->db, store_cache_hook, s);
	if (store_configure(s, path, cause) != 0)
		goto fail;
	if (store_migrate(s, cause) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return -1;
}

void
store_close(struct store *s)
{
	int	i;

	if (s == NULL)
		return;
	store_cache_free(s);
	for (i = 0; i < SQL_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s);
}
