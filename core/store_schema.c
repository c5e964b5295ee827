/*
 * store_schema.c: the schema's migrations and applying them (PRAGMA
 * user_version).
 */
#include <stdlib.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "store_int.h"
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
	/* 6: the questionnaire in progress is read from the answers table:
	 * its answers are the patient's after ask_from (their last answer
	 * when it was asked), so an answer is one row written, not also the
	 * patient's row rewritten with the answers so far (ask_i, ask_a).
	 * An open questionnaire's answers are the patient's last ask_i. */
	"ALTER TABLE patients ADD COLUMN ask_from INTEGER NOT NULL DEFAULT 0;"
	"UPDATE patients SET ask_from = r.id FROM (SELECT id, patient_id,"
	"  row_number() OVER (PARTITION BY patient_id ORDER BY id DESC) AS k"
	"  FROM answers) AS r WHERE r.patient_id = patients.id"
	"  AND r.k = patients.ask_i + 1 AND patients.ask_q <> '';"
	"ALTER TABLE patients DROP COLUMN ask_i;"
	"ALTER TABLE patients DROP COLUMN ask_a;",
	/* 7: how much of a message's body its adapter has delivered, in
	 * bytes. Telegram takes at most 4,096 characters a message, so a
	 * longer text goes out in parts; after a restart the next part is
	 * sent, not the ones the patient already has. */
	"ALTER TABLE outbox ADD COLUMN sent_upto INTEGER NOT NULL DEFAULT 0;",
	/* 8: the helper files (lib/name.lua) a protocol version ran with
	 * require() while it loaded, so a patient who stays on that version
	 * runs them as they were. */
	"CREATE TABLE protocol_helpers ("
	"  protocol TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  name TEXT NOT NULL,"
	"  source TEXT NOT NULL,"
	"  PRIMARY KEY (protocol, version, name),"
	"  FOREIGN KEY (protocol, version)"
	"    REFERENCES protocol_versions(protocol, version));",
	/* 9: the questionnaire a /stop or /erase confirmation interrupted,
	 * or one that came due while it was open: asked (again) when the
	 * patient answers "no", instead of lost. */
	"ALTER TABLE patients ADD COLUMN ask_prev TEXT NOT NULL DEFAULT '';",
};
#define STORE_NMIGRATIONS \
	((int)(sizeof store_migrations / sizeof store_migrations[0]))

/* Applies the migrations past the database's version, each in its own
 * transaction together with the version bump. */
int
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
