/*
 * store.c: the SQLite database: opening, migrations, transactions and the
 * prepared statements behind every store_ function.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "sqlmem.h"
#include "store.h"
#include "xmalloc.h"

/*
 * Migrations, in order; schema version N is the state after migrations[N-1].
 * Never edit a migration that has shipped: add a new one.
 */
static const char *store_migrations[] = {
	/* 1: the first schema. */
	"CREATE TABLE patients ("
	"  id INTEGER PRIMARY KEY,"
	"  adapter TEXT NOT NULL,"
	"  chat TEXT NOT NULL,"
	"  tz TEXT NOT NULL,"
	"  remind_min INTEGER NOT NULL,"
	"  lang TEXT NOT NULL,"
	"  consent INTEGER NOT NULL DEFAULT 0,"
	"  unreachable INTEGER NOT NULL DEFAULT 0,"
	"  ask_q TEXT NOT NULL DEFAULT '',"
	"  ask_i INTEGER NOT NULL DEFAULT 0,"
	"  ask_a TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (adapter, chat));"
	"CREATE TABLE enrolments ("
	"  id INTEGER PRIMARY KEY,"
	"  patient_id INTEGER NOT NULL REFERENCES patients(id),"
	"  protocol TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  status TEXT NOT NULL,"
	"  pressure INTEGER NOT NULL,"
	"  sessions_done INTEGER NOT NULL DEFAULT 0,"
	"  enrolled_at INTEGER NOT NULL,"
	"  last_session_at INTEGER NOT NULL DEFAULT 0,"
	"  ended_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX enrolments_patient ON enrolments(patient_id, id);"
	"CREATE TABLE protocol_state ("
	"  enrolment_id INTEGER PRIMARY KEY REFERENCES enrolments(id),"
	"  data TEXT NOT NULL);"
	"CREATE TABLE sessions ("
	"  id INTEGER PRIMARY KEY,"
	"  enrolment_id INTEGER NOT NULL REFERENCES enrolments(id),"
	"  number INTEGER NOT NULL,"
	"  pressure INTEGER NOT NULL,"
	"  due_at INTEGER NOT NULL,"
	"  status TEXT NOT NULL,"
	"  closed_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX sessions_open ON sessions(enrolment_id) WHERE status = 'due';"
	"CREATE TABLE answers ("
	"  id INTEGER PRIMARY KEY,"
	"  patient_id INTEGER NOT NULL REFERENCES patients(id),"
	"  enrolment_id INTEGER NOT NULL,"
	"  questionnaire TEXT NOT NULL,"
	"  question TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  answered_at INTEGER NOT NULL);"
	"CREATE INDEX answers_patient ON answers(patient_id);"
	"CREATE TABLE inbox ("
	"  id INTEGER PRIMARY KEY,"
	"  adapter TEXT NOT NULL,"
	"  external_id TEXT NOT NULL,"
	"  chat TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  received_at INTEGER NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'new',"
	"  error TEXT,"
	"  UNIQUE (adapter, external_id));"
	"CREATE TABLE outbox ("
	"  id INTEGER PRIMARY KEY,"
	"  patient_id INTEGER NOT NULL,"
	"  adapter TEXT NOT NULL,"
	"  chat TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  meta TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  not_before INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  sent_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX outbox_pending ON outbox(adapter, id) WHERE sent_at = 0;"
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY,"
	"  patient_id INTEGER NOT NULL,"
	"  enrolment_id INTEGER NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  arg TEXT NOT NULL DEFAULT '',"
	"  due_at INTEGER NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'pending',"
	"  closed_at INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT);"
	"CREATE INDEX jobs_due ON jobs(due_at, id) WHERE status = 'pending';"
	"CREATE INDEX jobs_enrolment ON jobs(enrolment_id, kind)"
	"  WHERE status = 'pending';"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  patient_id INTEGER NOT NULL,"
	"  enrolment_id INTEGER NOT NULL,"
	"  t INTEGER NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  data TEXT);",
	/* 2: the source of every protocol version loaded, so a patient can
	 * stay on the version they enrolled with. */
	"CREATE TABLE protocol_versions ("
	"  protocol TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  source TEXT NOT NULL,"
	"  path TEXT NOT NULL,"
	"  loaded_at INTEGER NOT NULL,"
	"  PRIMARY KEY (protocol, version));",
	/* 3: invite codes, which bind a patient to a protocol, and the code
	 * each course was enrolled with (NULL without one). uses_left -1 is
	 * unlimited. */
	"CREATE TABLE invites ("
	"  code TEXT PRIMARY KEY,"
	"  protocol TEXT NOT NULL,"
	"  clinician TEXT,"
	"  note TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  uses_left INTEGER NOT NULL);"
	"ALTER TABLE enrolments ADD COLUMN invite TEXT;",
	/* 4: why a message was given up (a blocked bot, no clinician chat);
	 * NULL when it was delivered. Such a row also leaves the queue
	 * (sent_at), but the record never claims a delivery. */
	"ALTER TABLE outbox ADD COLUMN failed TEXT;",
	/* 5: small named values the adapters keep across restarts: the
	 * Telegram getUpdates offset, the Matrix sync token and device. A
	 * cursor is written in the transaction of the update it follows. */
	"CREATE TABLE kv ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL,"
	"  updated_at INTEGER NOT NULL);",
};
#define STORE_NMIGRATIONS \
	((int)(sizeof store_migrations / sizeof store_migrations[0]))

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
	SQL_ANSWER_INSERT,
	SQL_INBOX_INSERT, SQL_INBOX_CLOSE,
	SQL_OUTBOX_INSERT, SQL_OUTBOX_NEXT, SQL_OUTBOX_SENT, SQL_OUTBOX_RETRY,
	SQL_OUTBOX_DROP,
	SQL_OUTBOX_DEPTH,
	SQL_JOB_INSERT, SQL_JOB_NEXT_DUE, SQL_JOB_TAKE, SQL_JOB_CLOSE,
	SQL_JOB_CANCEL, SQL_JOB_CANCEL_ALL, SQL_JOB_CANCEL_ONE, SQL_JOB_PENDING,
	SQL_JOB_COUNT,
	SQL_JOB_RETRY,
	SQL_EVENT_INSERT,
	SQL_PVERSION_GET, SQL_PVERSION_MAX, SQL_PVERSION_INSERT,
	SQL_INVITE_INSERT, SQL_INVITE_GET, SQL_INVITE_CONSUME,
	SQL_ENROL_INVITE,
	SQL_KV_GET, SQL_KV_SET,
	SQL_COUNT
};

#define PATIENT_COLS "id, adapter, chat, tz, remind_min, lang, consent," \
	" unreachable, ask_q, ask_i, ask_a, created_at"
#define ENROL_COLS "e.id, e.patient_id, e.protocol, e.version, e.status," \
	" e.pressure, e.sessions_done, e.enrolled_at, e.last_session_at," \
	" e.ended_at, s.data"
#define ENROL_FROM " FROM enrolments e" \
	" LEFT JOIN protocol_state s ON s.enrolment_id = e.id"
/* A patient with their latest enrolment (NULL columns if none) and its
 * state: the one read every event starts with. */
#define PATIENT_EN_SELECT "SELECT p.id, p.adapter, p.chat, p.tz," \
	" p.remind_min, p.lang, p.consent, p.unreachable, p.ask_q, p.ask_i," \
	" p.ask_a, p.created_at, " ENROL_COLS " FROM patients p" \
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
	    " remind_min, lang, consent, unreachable, ask_q, ask_i, ask_a,"
	    " created_at) VALUES (max(coalesce((SELECT max(id) FROM patients),"
	    " 0), coalesce((SELECT CAST(value AS INTEGER) FROM kv WHERE key ="
	    " '" STORE_ERASED_MAX "'), 0)) + 1,"
	    " ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[SQL_PATIENT_UPDATE] = "UPDATE patients SET tz = ?2, remind_min = ?3,"
	    " lang = ?4, consent = ?5, unreachable = ?6, ask_q = ?7,"
	    " ask_i = ?8, ask_a = ?9 WHERE id = ?1",
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
	[SQL_OUTBOX_NEXT] = "SELECT id, patient_id, adapter, chat, body, meta,"
	    " attempts FROM outbox WHERE adapter = ?1 AND sent_at = 0"
	    " AND not_before <= ?2 ORDER BY id LIMIT 1",
	[SQL_OUTBOX_DROP] = "UPDATE outbox SET sent_at = ?2, failed = ?3,"
	    " attempts = attempts + 1 WHERE id = ?1",
	[SQL_OUTBOX_SENT] = "UPDATE outbox SET sent_at = ?2,"
	    " attempts = attempts + 1 WHERE id = ?1",
	[SQL_OUTBOX_RETRY] = "UPDATE outbox SET not_before = ?2,"
	    " attempts = attempts + 1 WHERE id = ?1",
	[SQL_OUTBOX_DEPTH] = "SELECT count(*) FROM outbox WHERE sent_at = 0",
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
	[SQL_JOB_COUNT] = "SELECT count(*) FROM jobs WHERE status = 'pending'",
	[SQL_JOB_RETRY] = "UPDATE jobs SET status = 'pending', due_at = ?2,"
	    " error = NULL, closed_at = 0 WHERE status = 'failed' AND"
	    " enrolment_id IN (SELECT id FROM enrolments WHERE protocol = ?1"
	    " AND ended_at = 0)",
	[SQL_EVENT_INSERT] = "INSERT INTO events (patient_id, enrolment_id, t,"
	    " kind, data) VALUES (?1, ?2, ?3, ?4, ?5)",
	[SQL_PVERSION_GET] = "SELECT source, path FROM protocol_versions"
	    " WHERE protocol = ?1 AND version = ?2",
	[SQL_PVERSION_MAX] = "SELECT max(version) FROM protocol_versions"
	    " WHERE protocol = ?1",
	[SQL_PVERSION_INSERT] = "INSERT INTO protocol_versions (protocol,"
	    " version, source, path, loaded_at) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (protocol, version) DO NOTHING",
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
	[SQL_ENROL_INVITE] = "UPDATE enrolments SET invite = ?2 WHERE id = ?1",
	[SQL_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
	[SQL_KV_SET] = "INSERT INTO kv (key, value, updated_at)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE"
	    " SET value = excluded.value, updated_at = excluded.updated_at",
};

struct store {
	sqlite3		*db;
	sqlite3_stmt	*stmt[SQL_COUNT];
	int		 batch;		/* inside store_batch_begin() */
};

/* Logs a database error. SQLite's messages name tables and constraints,
 * never bound values, so they are safe to log. */
static int
store_fail(struct store *s, const char *what)
{
	log_error("event=db_error op=%s error=%s", what,
	    log_q(sqlite3_errmsg(s->db)));
	return -1;
}

/* Returns the cached statement, reset and with its bindings cleared. */
static sqlite3_stmt *
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

static void
store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. */
static int
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
static int
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

static void
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

static char *
store_dup(sqlite3_stmt *st, int col)
{
	const unsigned char	*v = sqlite3_column_text(st, col);

	return v != NULL ? xstrdup((const char *)v) : NULL;
}

static int
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

/* ---- opening and migrating ---------------------------------------- */

static int
store_pragma_int(struct store *s, const char *sql, int *v)
{
	sqlite3_stmt	*st;
	int		 rc;

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

/* Applies the migrations past the database's version, each in its own
 * transaction together with the version bump. */
static int
store_migrate(struct store *s, char **cause)
{
	char	*err = NULL, *sql;
	int	 v, rc;

	if ((v = store_schema_version(s)) < 0)
		goto fail;
	if (v > STORE_NMIGRATIONS) {
		*cause = xasprintf("database schema version %d is newer than "
		    "this strigil (%d): upgrade strigil", v, STORE_NMIGRATIONS);
		return -1;
	}
	for (; v < STORE_NMIGRATIONS; v++) {
		sql = xasprintf("BEGIN; %s PRAGMA user_version = %d; COMMIT;",
		    store_migrations[v], v + 1);
		rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
		free(sql);
		if (rc != SQLITE_OK) {
			*cause = xasprintf("migration %d failed: %s", v + 1,
			    err != NULL ? err : "unknown error");
			sqlite3_free(err);
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		log_info("event=db_migrated version=%d", v + 1);
	}
	return 0;
fail:
	*cause = xasprintf("cannot read schema version: %s",
	    sqlite3_errmsg(s->db));
	return -1;
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
	if (strcmp(path, ":memory:") == 0)
		return 0;
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
	for (i = 0; i < SQL_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s);
}

/* ---- transactions ------------------------------------------------- */

int
store_begin(struct store *s)
{
	if (s->batch)
		return store_exec(s, store_stmt(s, SQL_EV_SAVEPOINT), "begin");
	return store_exec(s, store_stmt(s, SQL_BEGIN), "begin");
}

int
store_commit(struct store *s)
{
	if (s->batch)
		return store_exec(s, store_stmt(s, SQL_EV_RELEASE), "commit");
	return store_exec(s, store_stmt(s, SQL_COMMIT), "commit");
}

int
store_rollback(struct store *s)
{
	if (s->batch) {
		/* ROLLBACK TO keeps the savepoint open; release it too. */
		if (store_exec(s, store_stmt(s, SQL_EV_ROLLBACK_TO),
		    "rollback") != 0)
			return -1;
		return store_exec(s, store_stmt(s, SQL_EV_RELEASE), "rollback");
	}
	return store_exec(s, store_stmt(s, SQL_ROLLBACK), "rollback");
}

int
store_batch_begin(struct store *s)
{
	if (s->batch)
		return 0;
	if (store_exec(s, store_stmt(s, SQL_BEGIN), "batch_begin") != 0)
		return -1;
	s->batch = 1;
	return 0;
}

int
store_batch_commit(struct store *s)
{
	if (!s->batch)
		return 0;
	s->batch = 0;
	return store_exec(s, store_stmt(s, SQL_COMMIT), "batch_commit");
}

int
store_savepoint(struct store *s)
{
	return store_exec(s, store_stmt(s, SQL_SAVEPOINT), "savepoint");
}

int
store_rollback_savepoint(struct store *s)
{
	/* ROLLBACK TO keeps the savepoint open; release it too. */
	if (store_exec(s, store_stmt(s, SQL_ROLLBACK_TO), "rollback_to") != 0)
		return -1;
	return store_release_savepoint(s);
}

int
store_release_savepoint(struct store *s)
{
	return store_exec(s, store_stmt(s, SQL_RELEASE), "release");
}

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
	p->ask_i = sqlite3_column_int(st, 9);
	p->ask_a = store_dup(st, 10);
	p->created_at = sqlite3_column_int64(st, 11);
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
	*has_en = sqlite3_column_type(st, 12) != SQLITE_NULL;
	if (*has_en)
		store_enrolment_read(st, 12, e);
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
	sqlite3_stmt	*st = store_stmt(s, SQL_PATIENT_FIND_EN);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, adapter);
	store_bind_text(st, 2, chat);
	return store_patient_en_select(s, st, p, e, has_en);
}

int
store_patient_get_current(struct store *s, int64_t id,
    struct store_patient *p, struct store_enrolment *e, int *has_en)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PATIENT_GET_EN);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return store_patient_en_select(s, st, p, e, has_en);
}

int
store_patient_insert(struct store *s, struct store_patient *p)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PATIENT_INSERT);

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
	sqlite3_bind_int(st, 9, p->ask_i);
	store_bind_text(st, 10, p->ask_a);
	sqlite3_bind_int64(st, 11, p->created_at);
	if (store_exec(s, st, "patient_insert") != 0)
		return -1;
	p->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int
store_patient_update(struct store *s, const struct store_patient *p)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PATIENT_UPDATE);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, p->id);
	store_bind_text(st, 2, p->tz);
	sqlite3_bind_int(st, 3, p->remind_min);
	store_bind_text(st, 4, p->lang);
	sqlite3_bind_int(st, 5, p->consent);
	sqlite3_bind_int(st, 6, p->unreachable);
	store_bind_text(st, 7, p->ask_q);
	sqlite3_bind_int(st, 8, p->ask_i);
	store_bind_text(st, 9, p->ask_a);
	return store_exec(s, st, "patient_update");
}

void
store_patient_clear(struct store_patient *p)
{
	free(p->ask_a);
	p->ask_a = NULL;
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

int
store_enrolment_insert(struct store *s, struct store_enrolment *e)
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
store_enrolment_update(struct store *s, const struct store_enrolment *e)
{
	return store_enrolment_save(s, e, 1, 1);
}

int
store_enrolment_save(struct store *s, const struct store_enrolment *e,
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

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, patient_id);
	sqlite3_bind_int64(st, 2, enrolment_id);
	store_bind_text(st, 3, questionnaire);
	store_bind_text(st, 4, question);
	store_bind_text(st, 5, value);
	sqlite3_bind_int64(st, 6, t);
	return store_exec(s, st, "answer_insert");
}

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

int
store_outbox_insert(struct store *s, int64_t patient_id, const char *adapter,
    const char *chat, const char *body, const char *meta, int64_t t,
    int64_t *id)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_OUTBOX_INSERT);

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

int
store_job_count(struct store *s, int64_t *n)
{
	return store_count(s, SQL_JOB_COUNT, n);
}

int
store_job_retry_failed(struct store *s, const char *protocol, int64_t now,
    int64_t *n)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_JOB_RETRY);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	sqlite3_bind_int64(st, 2, now);
	if (store_exec(s, st, "job_retry") != 0)
		return -1;
	*n = sqlite3_changes(s->db);
	return 0;
}

/* ---- events ------------------------------------------------------- */

int
store_event_insert(struct store *s, int64_t patient_id, int64_t enrolment_id,
    int64_t t, const char *kind, const char *data)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_EVENT_INSERT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, patient_id);
	sqlite3_bind_int64(st, 2, enrolment_id);
	sqlite3_bind_int64(st, 3, t);
	store_bind_text(st, 4, kind);
	store_bind_text(st, 5, data);
	return store_exec(s, st, "event_insert");
}

/* ---- protocol versions -------------------------------------------- */

int
store_pversion_get(struct store *s, const char *protocol, int version,
    struct store_pversion *v)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PVERSION_GET);
	const void	*src;
	int		 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	sqlite3_bind_int(st, 2, version);
	if ((rc = store_row(s, st, "pversion_get")) != 0)
		return rc;
	memset(v, 0, sizeof *v);
	src = sqlite3_column_text(st, 0);
	v->len = (size_t)sqlite3_column_bytes(st, 0);
	v->source = xmalloc(v->len + 1);
	if (v->len > 0)
		memcpy(v->source, src, v->len);
	v->source[v->len] = '\0';
	v->path = store_dup(st, 1);
	if (v->path == NULL)
		v->path = xstrdup("");
	sqlite3_reset(st);
	return 0;
}

int
store_pversion_max(struct store *s, const char *protocol, int *version)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PVERSION_MAX);
	int		 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	if ((rc = store_row(s, st, "pversion_max")) != 0)
		return rc;
	rc = sqlite3_column_type(st, 0) == SQLITE_NULL ? STORE_NOTFOUND : 0;
	*version = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return rc;
}

int
store_pversion_insert(struct store *s, const char *protocol, int version,
    const char *source, size_t len, const char *path, int64_t t)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PVERSION_INSERT);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	sqlite3_bind_int(st, 2, version);
	sqlite3_bind_text64(st, 3, source, len, SQLITE_STATIC, SQLITE_UTF8);
	store_bind_text(st, 4, path);
	sqlite3_bind_int64(st, 5, t);
	return store_exec(s, st, "pversion_insert");
}

void
store_pversion_clear(struct store_pversion *v)
{
	free(v->source);
	free(v->path);
	memset(v, 0, sizeof *v);
}

/* ---- invites ------------------------------------------------------ */

/* Binds text, or NULL for NULL or "". */
static void
store_bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL || v[0] == '\0')
		sqlite3_bind_null(st, i);
	else
		store_bind_text(st, i, v);
}

int
store_invite_insert(struct store *s, const struct store_invite *inv)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_INVITE_INSERT);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, inv->code);
	store_bind_text(st, 2, inv->protocol);
	store_bind_opt(st, 3, inv->clinician);
	store_bind_opt(st, 4, inv->note);
	sqlite3_bind_int64(st, 5, inv->created_at);
	sqlite3_bind_int64(st, 6, inv->expires_at);
	sqlite3_bind_int(st, 7, inv->uses_left);
	if (store_exec(s, st, "invite_insert") != 0)
		return -1;
	return sqlite3_changes(s->db) == 1 ? 0 : STORE_DUPLICATE;
}

int
store_invite_get(struct store *s, const char *code, struct store_invite *inv)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_INVITE_GET);
	int		 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, code);
	if ((rc = store_row(s, st, "invite_get")) != 0)
		return rc;
	memset(inv, 0, sizeof *inv);
	store_copy(inv->code, sizeof inv->code, st, 0);
	store_copy(inv->protocol, sizeof inv->protocol, st, 1);
	store_copy(inv->clinician, sizeof inv->clinician, st, 2);
	store_copy(inv->note, sizeof inv->note, st, 3);
	inv->created_at = sqlite3_column_int64(st, 4);
	inv->expires_at = sqlite3_column_int64(st, 5);
	inv->uses_left = sqlite3_column_int(st, 6);
	sqlite3_reset(st);
	return 0;
}

int
store_invite_consume(struct store *s, const char *code, int64_t now)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_INVITE_CONSUME);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, code);
	sqlite3_bind_int64(st, 2, now);
	if (store_exec(s, st, "invite_consume") != 0)
		return -1;
	return sqlite3_changes(s->db) == 1 ? 0 : STORE_NOTFOUND;
}

int
store_enrolment_set_invite(struct store *s, int64_t id, const char *code)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_ENROL_INVITE);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	store_bind_opt(st, 2, code);
	return store_exec(s, st, "enrolment_invite");
}

/* ---- adapter state ------------------------------------------------ */

int
store_kv_get(struct store *s, const char *key, char **value)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_KV_GET);
	int		 rc;

	*value = NULL;
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, key);
	if ((rc = store_row(s, st, "kv_get")) != 0)
		return rc;
	*value = store_dup(st, 0);
	if (*value == NULL)
		*value = xstrdup("");
	sqlite3_reset(st);
	return 0;
}

int
store_kv_set(struct store *s, const char *key, const char *value, int64_t t)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_KV_SET);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, key);
	store_bind_text(st, 2, value);
	sqlite3_bind_int64(st, 3, t);
	return store_exec(s, st, "kv_set");
}

/* ---- health and metrics ------------------------------------------- */

/* Prepared each time: these run once per scrape, not per event. */
int
store_job_due_count(struct store *s, int64_t now, int64_t *n)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM jobs"
	    " WHERE status = 'pending' AND due_at <= ?1", -1, &st,
	    NULL) != SQLITE_OK)
		return store_fail(s, "job_due_count");
	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_fail(s, "job_due_count");
}

int
store_probe_write(struct store *s)
{
	int	rc;

	/* Everything runs to its commit inside one loop callback, so no
	 * transaction of the engine's is open here. */
	if (!sqlite3_get_autocommit(s->db))
		return 0;
	if (store_begin(s) != 0)
		return -1;
	rc = sqlite3_exec(s->db, "INSERT INTO events (patient_id,"
	    " enrolment_id, t, kind) VALUES (0, 0, 0, 'health_probe')",
	    NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		store_fail(s, "probe_write");
	if (store_rollback(s) != 0 || rc != SQLITE_OK)
		return -1;
	return 0;
}

/* ---- chats that move, and the clinician's summary ----------------- */

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

/* One count(*) with the window bound as ?1, ?2. */
static int
store_summary_count(struct store *s, const char *sql, int64_t from,
    int64_t to, int64_t *n)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "summary");
	if (sqlite3_bind_parameter_count(st) >= 2) {
		sqlite3_bind_int64(st, 1, from);
		sqlite3_bind_int64(st, 2, to);
	}
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_fail(s, "summary");
}

/* Prepared each time: it runs once a day. A course's status is that of the
 * patient's latest enrolment. */
int
store_summary(struct store *s, int64_t from, int64_t to, int max,
    struct store_summary *out)
{
	static const char latest[] = " FROM enrolments e WHERE e.id ="
	    " (SELECT max(id) FROM enrolments WHERE patient_id = e.patient_id)"
	    " AND e.status = ";
	sqlite3_stmt	*st;
	char		 sql[512];
	int		 rc;

	memset(out, 0, sizeof *out);
	snprintf(sql, sizeof sql, "SELECT count(*)%s'active'", latest);
	if (store_summary_count(s, sql, from, to, &out->active) != 0)
		return -1;
	snprintf(sql, sizeof sql, "SELECT count(*)%s'hold'", latest);
	if (store_summary_count(s, sql, from, to, &out->holds) != 0 ||
	    store_summary_count(s, "SELECT count(*) FROM sessions WHERE"
	    " status = 'done' AND closed_at >= ?1 AND closed_at < ?2", from,
	    to, &out->sessions_done) != 0 ||
	    store_summary_count(s, "SELECT count(*) FROM events WHERE"
	    " kind = 'checkin_request' AND t >= ?1 AND t < ?2", from, to,
	    &out->checkins) != 0 ||
	    store_summary_count(s, "SELECT count(*) FROM answers WHERE"
	    " questionnaire <> 'setup' AND answered_at >= ?1 AND"
	    " answered_at < ?2", from, to, &out->answers) != 0 ||
	    store_summary_count(s, "SELECT count(*) FROM events WHERE"
	    " kind = 'escalation' AND t >= ?1 AND t < ?2", from, to,
	    &out->escalations) != 0)
		return -1;
	snprintf(sql, sizeof sql, "SELECT e.patient_id%s'hold'"
	    " ORDER BY e.patient_id LIMIT ?1", latest);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "summary");
	sqlite3_bind_int(st, 1, max);
	out->hold_ids = xcalloc((size_t)(max > 0 ? max : 1),
	    sizeof *out->hold_ids);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->nhold_ids < max)
		out->hold_ids[out->nhold_ids++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_summary_clear(out);
		return store_fail(s, "summary");
	}
	return 0;
}

void
store_summary_clear(struct store_summary *sum)
{
	free(sum->hold_ids);
	sum->hold_ids = NULL;
	sum->nhold_ids = 0;
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
