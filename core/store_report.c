/*
 * store_report.c: the queries behind /healthz and /metrics, and the
 * clinician's daily summary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

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

/* ---- the clinician's summary ------------------------------------- */

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
