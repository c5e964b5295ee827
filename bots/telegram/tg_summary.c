/*
 * tg_summary.c: the clinician's daily summary.
 *
 * At telegram.summary_time (local time in the config's `timezone`) the
 * clinician chat gets yesterday's numbers: patients on an active course,
 * sessions done, check-ins asked and answers given, escalations, and the
 * courses on clinical hold awaiting them (by patient number: the store
 * holds no names). The message goes through the outbox with the day it
 * covers written to kv "telegram.summary_day" in the same transaction, so
 * a day's summary is queued exactly once, across restarts too; a daemon
 * that was down at the time sends it when it starts.
 *
 * The check costs a comparison: tg_summary_poll() runs from tg_flush()
 * (which the scheduler calls after jobs, so virtual time is seen at once)
 * and from a timer that wakes at least once a minute.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "store.h"
#include "tg_int.h"
#include "tz.h"
#include "xmalloc.h"

#define TG_SUMMARY_HOLDS	50	/* patient numbers listed at most */
#define TG_SUMMARY_WAKE_MS	60000

/* The last local midnight at or before `t`. */
static int64_t
tg_midnight(const char *zone, int64_t t)
{
	int64_t	m = tz_next_minute(zone, t - 26 * 3600, 0), n;

	while ((n = tz_next_minute(zone, m + 1, 0)) <= t)
		m = n;
	return m;
}

static void
tg_day(const char *zone, int64_t t, char *buf, size_t size)
{
	struct tm	tm;

	if (tz_local(zone, t, &tm) != 0 || strftime(buf, size, "%Y-%m-%d",
	    &tm) == 0)
		snprintf(buf, size, "?");
}

/* The summary in the configured language (catalog keys "summary" and
 * "summary_holds"). Caller frees. */
static char *
tg_summary_text(struct telegram *t, const char *day,
    const struct store_summary *sum)
{
	cJSON	*p = cJSON_CreateObject();
	char	*s, *holds, *ids = xstrdup(""), *n;
	int	 i;

	for (i = 0; i < sum->nhold_ids; i++) {
		n = xasprintf("%s%s#%" PRId64, ids, i > 0 ? ", " : "",
		    sum->hold_ids[i]);
		free(ids);
		ids = n;
	}
	if (sum->holds > sum->nhold_ids) {
		n = xasprintf("%s, ...", ids);
		free(ids);
		ids = n;
	}
	cJSON_AddStringToObject(p, "day", day);
	cJSON_AddNumberToObject(p, "active", (double)sum->active);
	cJSON_AddNumberToObject(p, "sessions", (double)sum->sessions_done);
	cJSON_AddNumberToObject(p, "checkins", (double)sum->checkins);
	cJSON_AddNumberToObject(p, "answers", (double)sum->answers);
	cJSON_AddNumberToObject(p, "escalations", (double)sum->escalations);
	cJSON_AddNumberToObject(p, "holds", (double)sum->holds);
	cJSON_AddStringToObject(p, "patients", ids);
	s = engine_render(t->e, NULL, "summary", p);
	if (sum->holds > 0) {
		holds = engine_render(t->e, NULL, "summary_holds", p);
		n = xasprintf("%s%s", s, holds);
		free(s);
		free(holds);
		s = n;
	}
	cJSON_Delete(p);
	free(ids);
	return s;
}

/* Queues the summary of the day before `now`'s, unless it went already.
 * 0, or -1 on a database error (tried again at the next wake). */
static int
tg_summary_send(struct telegram *t, int64_t now)
{
	struct store		*st = engine_store(t->e);
	struct store_summary	 sum;
	const char		*zone = t->cfg->timezone;
	int64_t			 today, yesterday;
	char			 day[16], covers[16], *sent = NULL, *text;
	int			 rc;

	today = tg_midnight(zone, now);
	yesterday = tg_midnight(zone, today - 1);
	tg_day(zone, now, day, sizeof day);
	tg_day(zone, yesterday, covers, sizeof covers);
	if (store_begin(st) != 0)
		return -1;
	rc = store_kv_get(st, TG_KV_SUMMARY_DAY, &sent);
	if (rc == 0 && strcmp(sent, day) == 0) {
		free(sent);
		store_rollback(st);
		return 0;
	}
	free(sent);
	if (rc < 0 || store_summary(st, yesterday, today, TG_SUMMARY_HOLDS,
	    &sum) != 0) {
		store_rollback(st);
		return -1;
	}
	text = tg_summary_text(t, covers, &sum);
	rc = store_outbox_insert(st, 0, TG_ADAPTER, "@clinician", text, NULL,
	    now, NULL);
	if (rc == 0)
		rc = store_kv_set(st, TG_KV_SUMMARY_DAY, day, now);
	if (rc == 0)
		rc = store_commit(st);
	if (rc != 0)
		store_rollback(st);
	else
		log_info("event=telegram_summary_queued day=%s holds=%" PRId64,
		    covers, sum.holds);
	free(text);
	store_summary_clear(&sum);
	return rc == 0 ? 0 : -1;
}

/* Sends what is due and plans the next; cheap when nothing is. */
void
tg_summary_poll(struct telegram *t)
{
	int64_t	now, wait_ms;

	if (t->summary_min < 0 || t->closing)
		return;
	now = clock_now();
	if (now < t->summary_next && uv_is_active((uv_handle_t *)
	    &t->summary_timer))
		return;
	if (now >= t->summary_next) {
		if (tg_summary_send(t, now) == 0)
			t->summary_next = tz_next_minute(t->cfg->timezone,
			    now + 60, t->summary_min);
		else
			t->summary_next = now + 60;
	}
	/* The timer sleeps at most a minute: a virtual clock may jump. */
	wait_ms = (t->summary_next - now) * 1000;
	if (wait_ms > TG_SUMMARY_WAKE_MS)
		wait_ms = TG_SUMMARY_WAKE_MS;
	if (wait_ms < 1000)
		wait_ms = 1000;
	uv_timer_start(&t->summary_timer, tg_summary_tick,
	    (uint64_t)wait_ms, 0);
}

void
tg_summary_tick(uv_timer_t *h)
{
	tg_summary_poll(h->data);
}

int
tg_summary_start(struct telegram *t, char **cause)
{
	const struct config	*cfg = t->cfg;
	int64_t			 now = clock_now();

	if (cfg->tg_summary_time[0] == '\0')
		return 0;
	if ((t->summary_min = tz_parse_hhmm(cfg->tg_summary_time)) < 0) {
		*cause = xasprintf("telegram.summary_time: expected a time "
		    "\"HH:MM\" or \"\" for none, got \"%.16s\"",
		    cfg->tg_summary_time);
		return -1;
	}
	if (t->clinician == 0) {
		log_warn("event=telegram_summary_off hint=%s",
		    log_q("telegram.summary_time needs "
		    "telegram.clinician_chat"));
		t->summary_min = -1;
		return 0;
	}
	/* Today's time passed while we were down: due now (unless sent,
	 * which tg_summary_send() checks). Else at today's time. */
	if (tz_minute_of_day(cfg->timezone, now) >= t->summary_min)
		t->summary_next = now;
	else
		t->summary_next = tz_next_minute(cfg->timezone, now,
		    t->summary_min);
	tg_summary_poll(t);
	return 0;
}
