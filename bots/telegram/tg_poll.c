/*
 * tg_poll.c: receiving by long polling.
 *
 * One getUpdates at a time, held by Telegram up to poll_timeout seconds; the
 * transfer may take TG_POLL_SLACK_S more before curl gives up on it, and a
 * watchdog timer cancels a poll that outlives even that (a stalled socket
 * nobody wakes). Each update goes to the engine as "u<update_id>" together
 * with the cursor "telegram.offset" = update_id + 1, in one transaction:
 * after a crash the offset we load is exactly past the last update stored,
 * so nothing is lost and nothing is handled twice (and the inbox would
 * drop a repeat anyway). Update ids mostly rise, but not always: after a
 * week without updates Telegram starts again from a random id.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "schedule.h"
#include "tg_int.h"
#include "tg_update.h"
#include "xmalloc.h"

/* An empty poll answered faster than this is followed by a pause. */
#define TG_POLL_MIN_MS	1000

static void	tg_poll_done(void *, const struct fetch_result *);

/* The offset stored by the last run: 0, or -1 with *cause. */
int
tg_offset_load(struct telegram *t, char **cause)
{
	char	*v = NULL, *end;
	int	 rc;

	rc = store_kv_get(engine_store(t->e), TG_KV_OFFSET, &v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0) {
		*cause = xstrdup("telegram: cannot read the stored offset");
		return -1;
	}
	errno = 0;
	t->offset = strtoll(v, &end, 10);
	if (*end != '\0' || end == v || t->offset < 0 || errno != 0) {
		/* Refuse rather than guess: 0 would take every update
		 * Telegram still holds, again. */
		*cause = xstrdup("telegram: the stored offset (kv "
		    TG_KV_OFFSET ") is not a number");
		free(v);
		return -1;
	}
	free(v);
	log_info("event=telegram_offset offset=%" PRId64, t->offset);
	return 0;
}

static void
tg_poll_timer_fired(uv_timer_t *h)
{
	tg_poll_start(h->data);
}

/* Polls again after the backoff for the errors in a row, or after
 * `at_least_ms` when the server said how long to wait (429 retry_after). */
static void
tg_poll_backoff(struct telegram *t, const char *why, long status,
    int64_t at_least_ms)
{
	int64_t	ms;

	t->connected = 0;
	ms = tg_backoff_ms(++t->poll_fails);
	if (ms < at_least_ms)
		ms = at_least_ms;
	log_warn("event=telegram_poll_failed reason=%s status=%ld "
	    "retry_ms=%" PRId64, why, status, ms);
	uv_timer_start(&t->poll_timer, tg_poll_timer_fired, (uint64_t)ms, 0);
}

/* The poll outlived its own transfer timeout: cancel it, poll anew. */
static void
tg_poll_watchdog(uv_timer_t *h)
{
	struct telegram	*t = h->data;

	if (t->closing || !t->polling)
		return;
	t->stalls++;
	log_warn("event=telegram_poll_stalled action=restart stalls=%" PRIu64,
	    t->stalls);
	/* tg_poll_done() sees FETCH_ECANCELED and does nothing more. */
	fetch_cancel(t->f, tg_poll_done, t);
	t->polling = 0;
	tg_poll_start(t);
}

void
tg_poll_start(struct telegram *t)
{
	char	body[256];
	long	timeout_s = t->poll_timeout + TG_POLL_SLACK_S;

	if (t->closing || t->stopped || t->webhook || t->polling)
		return;
	if (t->offset > 0)
		snprintf(body, sizeof body, "{\"offset\":%" PRId64 ",",
		    t->offset);
	else
		snprintf(body, sizeof body, "{");
	snprintf(body + strlen(body), sizeof body - strlen(body),
	    "\"limit\":100,\"timeout\":%ld,\"allowed_updates\":"
	    "[\"message\",\"callback_query\"]}", t->poll_timeout);
	t->polling = 1;
	uv_timer_start(&t->poll_watch, tg_poll_watchdog,
	    (uint64_t)(timeout_s + TG_WATCHDOG_SLACK_S) * 1000, 0);
	tg_call(t, "getUpdates", body, timeout_s * 1000, tg_poll_done, t);
}

/* Stops receiving: the poll in flight is cancelled, and the updates it
 * would have brought come again, unconfirmed, at the next start. */
void
tg_poll_stop(struct telegram *t)
{
	uv_timer_stop(&t->poll_timer);
	uv_timer_stop(&t->poll_watch);
	if (t->polling)
		fetch_cancel(t->f, tg_poll_done, t);
	t->polling = 0;
}

static void
tg_poll_updates(struct telegram *t, const struct fetch_result *r)
{
	struct tg_update	*v = NULL;
	struct engine_cursor	 cur;
	char			 next[32], *cause = NULL;
	int			 n = 0, i;

	if (tg_parse_updates(r->body, r->len, &v, &n, &cause) != 0) {
		log_warn("event=telegram_bad_answer method=getUpdates "
		    "error=%s", log_q(cause));
		free(cause);
		tg_poll_backoff(t, "bad_answer", r->status, 0);
		return;
	}
	for (i = 0; i < n; i++) {
		/* Below the offset: after a week without updates Telegram
		 * numbers them anew from a random id, and returns the new
		 * ones whatever offset we send. Skipping them would lose
		 * every message from then on and poll without pause; they
		 * are taken like any other (a repeat of one stored is
		 * dropped by the inbox), and the offset follows them. */
		if (v[i].update_id < t->offset)
			log_warn("event=telegram_update_ids_reset "
			    "offset=%" PRId64 " update_id=%" PRId64,
			    t->offset, v[i].update_id);
		snprintf(next, sizeof next, "%" PRId64, v[i].update_id + 1);
		cur.key = TG_KV_OFFSET;
		cur.value = next;
		if (tg_receive(t, &v[i], &cur) != 0)
			break;
		t->offset = v[i].update_id + 1;
	}
	tg_updates_free(v, n);
	tg_flush(t);
	sched_kick(t->s);
	if (i < n) {
		tg_poll_backoff(t, "database", r->status, 0);
		return;
	}
	t->poll_fails = 0;
	t->connected = 1;
	/* An empty answer that came at once was not held (an emulator, a
	 * proxy that cuts long polls, timeout 0): polling straight again
	 * would spin. Wait a little; Telegram itself holds the poll. */
	if (n == 0 && r->elapsed_ns < (uint64_t)TG_POLL_MIN_MS * 1000000) {
		uv_timer_start(&t->poll_timer, tg_poll_timer_fired,
		    TG_POLL_MIN_MS, 0);
		return;
	}
	tg_poll_start(t);
}

/* 1 if a 409 says a webhook is set ("can't use getUpdates method while
 * webhook is active"): the description is all that tells it from a
 * second poller's 409. */
static int
tg_poll_webhook_in_way(const struct fetch_result *r)
{
	struct tg_error	err;

	return r->body != NULL && tg_parse_error(r->body, r->len, &err) == 0 &&
	    strstr(err.description, "webhook") != NULL;
}

static void
tg_poll_done(void *ud, const struct fetch_result *r)
{
	struct telegram	*t = ud;

	if (r->error == FETCH_ECANCELED || t->closing)
		return;
	t->polling = 0;
	uv_timer_stop(&t->poll_watch);
	if (r->error != 0) {
		/* A timeout or a dropped connection: no answer, try again. */
		tg_poll_backoff(t, "network", 0, 0);
		return;
	}
	switch (r->status) {
	case 200:
		tg_poll_updates(t, r);
		return;
	case 401:
	case 404:
		/* Telegram answers a wrong token 401 (404 on some paths):
		 * polling again would never help. */
		t->stopped = 1;
		t->connected = 0;
		log_error("event=telegram_unauthorized status=%ld "
		    "action=polling_stopped hint=%s", r->status,
		    log_q("the Bot API refused telegram.token"));
		return;
	case 409:
		/* A webhook still set (a deleteWebhook that did not take):
		 * delete it again, after a backoff. Another getUpdates holds
		 * the bot: backing off (doubling, with jitter) keeps two
		 * daemons from taking turns at a request a second. */
		if (tg_poll_webhook_in_way(r)) {
			tg_hook_backoff(t, "getUpdates", r);
			return;
		}
		tg_poll_backoff(t, "conflict", r->status, 0);
		return;
	case 429:
		tg_poll_backoff(t, "rate_limited", r->status,
		    tg_retry_after_ms(r));
		return;
	default:
		tg_poll_backoff(t, "status", r->status, 0);
		return;
	}
}
