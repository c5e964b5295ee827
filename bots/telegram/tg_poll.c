/*
 * tg_poll.c: receiving by long polling.
 *
 * One getUpdates at a time, held by Telegram up to poll_timeout seconds; the
 * transfer may take 15 s more before we give up on it. Each update goes to
 * the engine as "u<update_id>": the inbox keeps it from being handled twice
 * when, after a restart, the updates we never confirmed come again (the
 * offset we send confirms only what the engine has stored).
 */
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

#define TG_POLL_SLACK_S	15	/* transfer timeout beyond poll_timeout */

/* Shown on a button whose question is no longer the one asked. */
#define TG_STALE_TEXT	"That question was already answered. Please answer " \
			"the latest one."

static void	tg_poll_done(void *, const struct fetch_result *);

static void
tg_poll_timer_fired(uv_timer_t *h)
{
	tg_poll_start(h->data);
}

static void
tg_poll_backoff(struct telegram *t, const char *why, long status)
{
	int64_t	ms;

	t->connected = 0;
	ms = tg_backoff_ms(++t->poll_fails);
	log_warn("event=telegram_poll_failed reason=%s status=%ld "
	    "retry_ms=%" PRId64, why, status, ms);
	uv_timer_start(&t->poll_timer, tg_poll_timer_fired, (uint64_t)ms, 0);
}

void
tg_poll_start(struct telegram *t)
{
	char	body[256];

	if (t->closing || t->stopped)
		return;
	if (t->offset > 0)
		snprintf(body, sizeof body, "{\"offset\":%" PRId64 ",",
		    t->offset);
	else
		snprintf(body, sizeof body, "{");
	snprintf(body + strlen(body), sizeof body - strlen(body),
	    "\"limit\":100,\"timeout\":%ld,\"allowed_updates\":"
	    "[\"message\",\"callback_query\"]}", t->poll_timeout);
	tg_call(t, "getUpdates", body,
	    (t->poll_timeout + TG_POLL_SLACK_S) * 1000, tg_poll_done, t);
}

static void
tg_answer_callback(struct telegram *t, const char *id, const char *text)
{
	cJSON	*o = cJSON_CreateObject();
	char	*body;

	cJSON_AddStringToObject(o, "callback_query_id", id);
	if (text != NULL)
		cJSON_AddStringToObject(o, "text", text);
	body = cJSON_PrintUnformatted(o);
	tg_call(t, "answerCallbackQuery", body, 0, NULL, NULL);
	cJSON_free(body);
	cJSON_Delete(o);
}

/* One update into the engine. -1 only when the database failed: then the
 * update is not confirmed and comes again. */
static int
tg_handle(struct telegram *t, const struct tg_update *u)
{
	char	 chat[32], ext[32], *text = NULL;
	int	 rc = 0, live = 1;

	if (u->kind == TG_OTHER)
		return 0;
	if (!u->is_private) {
		/* Patients talk to the bot alone; a group (the clinicians')
		 * is not a patient. A button there is still answered. */
		if (u->kind == TG_CALLBACK && u->callback_id != NULL)
			tg_answer_callback(t, u->callback_id, NULL);
		return 0;
	}
	snprintf(chat, sizeof chat, "%" PRId64, u->chat_id);
	snprintf(ext, sizeof ext, "u%" PRId64, u->update_id);
	if (u->kind == TG_CALLBACK) {
		live = u->text != NULL &&
		    tg_button_text(t, u->chat_id, u->text, &text) == 1;
		if (live)
			rc = engine_inbound(t->e, TG_ADAPTER, chat, ext, text,
			    clock_now());
		free(text);
		if (rc < 0)
			return -1;
		if (u->callback_id != NULL)
			tg_answer_callback(t, u->callback_id,
			    live ? NULL : TG_STALE_TEXT);
		return 0;
	}
	/* No text (a photo, a sticker): the engine answers an empty message
	 * as one it did not understand, which asks for words. */
	rc = engine_inbound(t->e, TG_ADAPTER, chat, ext,
	    u->text != NULL ? u->text : "", clock_now());
	return rc < 0 ? -1 : 0;
}

static void
tg_poll_updates(struct telegram *t, const struct fetch_result *r)
{
	struct tg_update	*v = NULL;
	char			*cause = NULL;
	int			 n = 0, i;

	if (tg_parse_updates(r->body, r->len, &v, &n, &cause) != 0) {
		log_warn("event=telegram_bad_answer method=getUpdates "
		    "error=%s", log_q(cause));
		free(cause);
		tg_poll_backoff(t, "bad_answer", r->status);
		return;
	}
	for (i = 0; i < n; i++) {
		if (tg_handle(t, &v[i]) != 0)
			break;
		if (v[i].update_id >= t->offset)
			t->offset = v[i].update_id + 1;
	}
	tg_updates_free(v, n);
	tg_flush(t);
	sched_kick(t->s);
	if (i < n) {
		tg_poll_backoff(t, "database", r->status);
		return;
	}
	t->poll_fails = 0;
	t->connected = 1;
	tg_poll_start(t);
}

static void
tg_poll_done(void *ud, const struct fetch_result *r)
{
	struct telegram	*t = ud;

	if (r->error == FETCH_ECANCELED || t->closing)
		return;
	if (r->error != 0) {
		/* A timeout or a dropped connection: no answer, try again. */
		tg_poll_backoff(t, "network", 0);
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
		/* Another getUpdates or a webhook holds the bot. */
		tg_poll_backoff(t, "conflict", r->status);
		return;
	default:
		tg_poll_backoff(t, "status", r->status);
		return;
	}
}
