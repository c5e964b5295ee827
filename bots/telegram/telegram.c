/*
 * telegram.c: the Telegram adapter's life cycle and what polling and sending
 * share (URLs, requests, backoff).
 *
 * The token is part of every request URL, so URLs are never logged; log
 * lines name the method instead.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "fetch.h"
#include "log.h"
#include "metrics.h"
#include "tg_int.h"
#include "tg_update.h"
#include "xmalloc.h"

char *
tg_url(const struct telegram *t, const char *method)
{
	return xasprintf("%s/%s", t->base, method);
}

/* Exponential in the errors so far, capped, with jitter on top. */
int64_t
tg_retry_after_ms(const struct fetch_result *r)
{
	struct tg_error	err;
	long		ra = -1;

	if (r->body != NULL && tg_parse_error(r->body, r->len, &err) == 0)
		ra = err.retry_after;
	if (ra <= 0 && r->retry_after > 0)
		ra = r->retry_after;
	return (int64_t)(ra > 0 ? ra : 1) * 1000;
}

int64_t
tg_backoff_ms(int fails)
{
	int64_t	ms = TG_BACKOFF_MIN_MS;

	while (fails-- > 1 && ms < TG_BACKOFF_MAX_MS)
		ms *= 2;
	if (ms > TG_BACKOFF_MAX_MS)
		ms = TG_BACKOFF_MAX_MS;
	return ms + (int64_t)(random() % (ms / 2 + 1));
}

struct tg_call_ctx {
	char	method[32];
};

/* The end of a call nobody waits for (answerCallbackQuery): logged. */
static void
tg_call_logged(void *ud, const struct fetch_result *r)
{
	struct tg_call_ctx	*c = ud;

	if (r->error != FETCH_ECANCELED && (r->error != 0 || r->status != 200))
		log_debug("event=telegram_call_failed method=%s status=%ld",
		    c->method, r->status);
	free(c);
}

void
tg_call(struct telegram *t, const char *method, const char *body,
    long timeout_ms, void (*done)(void *, const struct fetch_result *),
    void *ud)
{
	struct fetch_req	 req;
	struct tg_call_ctx	*c = NULL;
	char			*url = tg_url(t, method);

	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.url = url;
	req.body = body;
	req.body_len = strlen(body);
	req.content_type = "application/json";
	req.timeout_ms = timeout_ms;
	if (done == NULL) {
		c = xcalloc(1, sizeof *c);
		snprintf(c->method, sizeof c->method, "%s", method);
		done = tg_call_logged;
		ud = c;
	}
	if (fetch_start(t->f, &req, done, ud) != 0) {
		/* A closing client refuses; so may curl, rarely (no memory):
		 * a poll or a send is then tried again, not waited for. */
		log_warn("event=telegram_call_refused method=%s", method);
		fetch_refused(done, ud, t->closing);
	}
	free(url);
}

static void
tg_send_tick(uv_timer_t *h)
{
	tg_flush(h->data);
}

static void
tg_free(struct telegram *t)
{
	if (t->secret != NULL)
		explicit_bzero(t->secret, strlen(t->secret));
	free(t->secret);
	free(t->base);
	free(t);
}

static void
tg_handle_closed(uv_handle_t *h)
{
	struct telegram	*t = h->data;

	if (--t->handles == 0)
		tg_free(t);
}

/* The adapter's timers; each counts in `handles` until closed. */
static void
tg_timers(struct telegram *t)
{
	uv_timer_t	*ts[] = { &t->poll_timer, &t->poll_watch,
			    &t->send_timer, &t->summary_timer };
	size_t		 i;

	for (i = 0; i < sizeof ts / sizeof ts[0]; i++) {
		uv_timer_init(t->loop, ts[i]);
		ts[i]->data = t;
		t->handles++;
	}
}

int
tg_new(struct telegram **out, uv_loop_t *loop, struct engine *e,
    struct sched *s, const struct config *cfg, char **cause)
{
	struct telegram	*t = xcalloc(1, sizeof *t);
	const char	*api = cfg->tg_api_url;
	size_t		 n = strlen(api);
	char		*end;

	t->loop = loop;
	t->e = e;
	t->s = s;
	t->cfg = cfg;
	t->summary_min = -1;
	t->private_reminders = cfg->tg_private_reminders;
	t->webhook = cfg->tg_webhook_url[0] != '\0';
	t->poll_timeout = (long)cfg->tg_poll_timeout;
	t->rate_chat = (double)cfg->tg_rate_per_chat;
	t->rate_global = (double)cfg->tg_rate_global;
	t->gtokens = t->rate_global;
	t->glast_ms = clock_now_ms();
	if (cfg->tg_clinician_chat[0] != '\0') {
		errno = 0;
		t->clinician = strtoll(cfg->tg_clinician_chat, &end, 10);
		if (*end != '\0' || t->clinician == 0 || errno != 0) {
			*cause = xstrdup("telegram.clinician_chat: not a chat "
			    "id (a number such as -1001234567890)");
			tg_free(t);
			return -1;
		}
	}
	if (tg_hook_check(cfg, cause) != 0 || tg_offset_load(t, cause) != 0) {
		tg_free(t);
		return -1;
	}
	if (t->webhook)
		t->secret = xstrdup(cfg->tg_webhook_secret);
	while (n > 0 && api[n - 1] == '/')
		n--;
	t->base = xasprintf("%.*s/bot%s", (int)n, api, cfg->tg_token);
	if (fetch_new(&t->f, loop, cause) != 0) {
		tg_free(t);
		return -1;
	}
	srandom((unsigned)clock_mono_ns());
	tg_timers(t);
	if (tg_summary_start(t, cause) != 0) {
		tg_close(t);
		return -1;
	}
	if (tg_send_restore(t) != 0) {
		*cause = xstrdup("telegram: cannot read the outbox");
		tg_close(t);
		return -1;
	}
	/* Retries and rate-limited rows come due with time (the outbox's
	 * not_before is in whole seconds); a quarter second keeps the delay
	 * small for the price of one indexed query. */
	uv_timer_start(&t->send_timer, tg_send_tick, 250, 250);
	metrics_adapter_register(TG_ADAPTER);
	log_info("event=telegram_started mode=%s poll_timeout=%ld "
	    "private_reminders=%d", t->webhook ? "webhook" : "polling",
	    t->poll_timeout, t->private_reminders);
	/* setWebhook, or deleteWebhook and then the first poll. The
	 * request goes out once the loop runs, after the HTTP server that
	 * receives the webhook listens. */
	tg_hook_start(t);
	*out = t;
	return 0;
}

int
tg_connected(const struct telegram *t)
{
	return t->connected;
}

/* Closes the send path: what is still running (a send past its drain,
 * an answerCallbackQuery) is cancelled, and the adapter is freed once
 * its last handle is closed. */
static void
tg_close_send(struct telegram *t)
{
	uv_timer_stop(&t->send_timer);
	fetch_close(t->f);
	tg_send_free(t);
	uv_close((uv_handle_t *)&t->send_timer, tg_handle_closed);
}

static void
tg_drain_end(uv_timer_t *h)
{
	struct telegram	*t = h->data;

	if (t->out.active)
		log_warn("event=telegram_drain_expired row=%" PRId64
		    " hint=%s", t->out.row.id,
		    log_q("the message goes again at the next start"));
	tg_close_send(t);
}

void
tg_drained(struct telegram *t)
{
	log_info("event=telegram_drained");
	/* Not from inside the send's own fetch callback. */
	uv_timer_start(&t->send_timer, tg_drain_end, 0, 0);
}

void
tg_close(struct telegram *t)
{
	if (t->closing)
		return;
	t->closing = 1;
	/* Nothing more comes in: the poll is cancelled (its updates are
	 * not confirmed, so they come again at the next start), and
	 * `closing` keeps the webhook and the summary out. */
	tg_poll_stop(t);
	uv_close((uv_handle_t *)&t->poll_timer, tg_handle_closed);
	uv_close((uv_handle_t *)&t->poll_watch, tg_handle_closed);
	uv_close((uv_handle_t *)&t->summary_timer, tg_handle_closed);
	if (!t->out.active) {
		tg_close_send(t);
		return;
	}
	/*
	 * A sendMessage is in flight. Cancelled, its row would stay unsent
	 * and go again at the next start although the patient may have it
	 * already; so the stop waits for the answer (tg_send_done() records
	 * it and calls tg_drained()), for TG_DRAIN_MS at most. No other
	 * row starts meanwhile: tg_flush() sees `closing`.
	 */
	log_info("event=telegram_draining row=%" PRId64 " timeout_ms=%d",
	    t->out.row.id, TG_DRAIN_MS);
	uv_timer_start(&t->send_timer, tg_drain_end, TG_DRAIN_MS, 0);
}
