/*
 * tg_hook.c: receiving by webhook, and telling Telegram which way we
 * receive.
 *
 * With telegram.webhook_url set, Telegram POSTs each update to that public
 * URL; a reverse proxy with TLS forwards it to the daemon's HTTP server
 * (loopback by default) at TG_WEBHOOK_PATH. The request must carry the
 * configured secret in X-Telegram-Bot-Api-Secret-Token (compared in
 * constant time: 401 without it, 403 when wrong; refusals are counted and
 * logged rate-limited, see http_request_refused()). The update is handled in
 * the request's own callback and the answer is 200 only once it committed;
 * a database failure answers 500 so Telegram delivers it again, and a
 * redelivered update_id is dropped by the inbox.
 *
 * At start, webhook mode calls setWebhook (url, secret, allowed_updates);
 * polling mode calls deleteWebhook first, since getUpdates is refused
 * (409) while a webhook is set. Neither drops pending updates.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "schedule.h"
#include "tg_int.h"
#include "tg_update.h"
#include "xmalloc.h"

#define TG_SECRET_HEADER	"X-Telegram-Bot-Api-Secret-Token"
#define TG_ALLOWED		"[\"message\",\"callback_query\"]"

/* http(s)://host...: https, or plain http to this machine only (a local
 * Bot API server, the tests). */
static int
tg_hook_url_ok(const char *url)
{
	static const char *const local[] = { "http://127.0.0.1:",
	    "http://127.0.0.1/", "http://localhost:", "http://localhost/",
	    "http://[::1]:", "http://[::1]/" };
	size_t	i;

	if (strncmp(url, "https://", 8) == 0 && url[8] != '\0')
		return 1;
	for (i = 0; i < sizeof local / sizeof local[0]; i++)
		if (strncmp(url, local[i], strlen(local[i])) == 0)
			return 1;
	return 0;
}

/* The secret's rules are Telegram's: 1-256 of A-Za-z0-9_- . */
static int
tg_hook_secret_ok(const char *s)
{
	size_t	n = strlen(s);

	return n >= 1 && n <= TG_SECRET_MAX && strspn(s, "ABCDEFGHIJKLMNOPQRS"
	    "TUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int
tg_hook_check(const struct config *cfg, char **cause)
{
	if (cfg->tg_webhook_url[0] == '\0') {
		if (cfg->tg_webhook_secret[0] != '\0')
			log_warn("event=telegram_webhook_secret_unused hint=%s",
			    log_q("telegram.webhook_secret is set but "
			    "telegram.webhook_url is not: polling"));
		return 0;
	}
	if (!tg_hook_url_ok(cfg->tg_webhook_url)) {
		*cause = xstrdup("telegram.webhook_url: must be an https:// "
		    "URL (http:// only to 127.0.0.1, localhost or [::1])");
		return -1;
	}
	if (!tg_hook_secret_ok(cfg->tg_webhook_secret)) {
		/* The value is a secret: never echoed. */
		*cause = xstrdup("telegram.webhook_secret: required with "
		    "telegram.webhook_url, 1-256 characters of A-Z a-z 0-9 "
		    "_ - (the value is not shown)");
		return -1;
	}
	if (!cfg->http_enabled) {
		*cause = xstrdup("telegram.webhook_url: the webhook is served "
		    "by the HTTP server; set http.enabled = true");
		return -1;
	}
	return 0;
}

/* ---- setWebhook and deleteWebhook ---------------------------------- */

static void	tg_hook_set(struct telegram *);

static void
tg_hook_retry(uv_timer_t *h)
{
	struct telegram	*t = h->data;

	if (t->webhook)
		tg_hook_set(t);
	else
		tg_hook_delete(t);
}

/* A failed setWebhook or deleteWebhook (or a poll a webhook stands in
 * the way of): again after a backoff, at least a 429's retry_after. */
void
tg_hook_backoff(struct telegram *t, const char *method,
    const struct fetch_result *r)
{
	int64_t	ms = tg_backoff_ms(++t->hook_fails), ra;
	long	status = r->error == 0 ? r->status : 0;

	if (status == 429 && (ra = tg_retry_after_ms(r)) > ms)
		ms = ra;
	t->connected = 0;
	log_warn("event=telegram_call_failed method=%s status=%ld "
	    "retry_ms=%" PRId64, method, status, ms);
	uv_timer_start(&t->poll_timer, tg_hook_retry, (uint64_t)ms, 0);
}

/* 1 if a wrong token answered: retrying would never help. */
static int
tg_hook_unauthorized(struct telegram *t, const struct fetch_result *r)
{
	if (r->error != 0 || (r->status != 401 && r->status != 404))
		return 0;
	t->stopped = 1;
	t->connected = 0;
	log_error("event=telegram_unauthorized status=%ld hint=%s", r->status,
	    log_q("the Bot API refused telegram.token"));
	return 1;
}

static void
tg_hook_set_done(void *ud, const struct fetch_result *r)
{
	struct telegram	*t = ud;

	if (r->error == FETCH_ECANCELED || t->closing ||
	    tg_hook_unauthorized(t, r))
		return;
	if (r->error != 0 || r->status != 200) {
		tg_hook_backoff(t, "setWebhook", r);
		return;
	}
	t->hook_fails = 0;
	t->connected = 1;
	log_info("event=telegram_webhook_set path=%s", TG_WEBHOOK_PATH);
}

static void
tg_hook_set(struct telegram *t)
{
	cJSON	*o = cJSON_CreateObject();
	char	*body;

	cJSON_AddStringToObject(o, "url", t->cfg->tg_webhook_url);
	cJSON_AddStringToObject(o, "secret_token", t->secret);
	cJSON_AddItemToObject(o, "allowed_updates",
	    cJSON_Parse(TG_ALLOWED));
	body = cJSON_PrintUnformatted(o);
	tg_call(t, "setWebhook", body, 0, tg_hook_set_done, t);
	cJSON_free(body);
	cJSON_Delete(o);
}

static void
tg_hook_delete_done(void *ud, const struct fetch_result *r)
{
	struct telegram	*t = ud;

	if (r->error == FETCH_ECANCELED || t->closing ||
	    tg_hook_unauthorized(t, r))
		return;
	if (r->error != 0 || r->status >= 500 || r->status == 429) {
		tg_hook_backoff(t, "deleteWebhook", r);
		return;
	}
	/* Another answer (a Bot API without the method, say) is no reason
	 * not to poll: a webhook still set shows as 409s there, which
	 * bring us back here (tg_poll_done()). */
	t->hook_fails = 0;
	tg_poll_start(t);
}

/* Polling mode: no webhook may stand in the way of getUpdates. */
void
tg_hook_delete(struct telegram *t)
{
	tg_call(t, "deleteWebhook", "{}", 0, tg_hook_delete_done, t);
}

void
tg_hook_start(struct telegram *t)
{
	if (t->webhook)
		tg_hook_set(t);
	else
		tg_hook_delete(t);
}

/* ---- the webhook's requests ---------------------------------------- */

/* Equal strings, in a time that depends on the expected one's length
 * only. */
static int
tg_secret_equal(const char *got, const char *want)
{
	size_t			gl = strlen(got), wl = strlen(want), i;
	volatile unsigned char	d = gl != wl;

	for (i = 0; i < wl; i++)
		d |= (unsigned char)(want[i] ^ (i < gl ? got[i] : 0));
	return d == 0;
}

static int
tg_hook_request(const struct http_request *req, struct http_response *res,
    void *ud)
{
	struct telegram		*t = ud;
	struct tg_update	 u;
	const char		*got;
	char			*cause = NULL;
	int			 rc;

	res->content_type = "application/json";
	got = http_request_header(req, TG_SECRET_HEADER);
	if (got == NULL || !tg_secret_equal(got, t->secret)) {
		/* Nothing of the body is read, let alone stored. Anyone can
		 * send these: counted and logged rate-limited, by the server. */
		res->status = got == NULL ? 401 : 403;
		http_request_refused(req, got == NULL ? "no_secret" :
		    "wrong_secret");
		http_response_printf(res, "{\"ok\":false}");
		return 0;
	}
	if (t->closing) {
		res->status = 503;
		return 0;
	}
	if (tg_parse_update(req->body, req->body_len, &u, &cause) != 0) {
		log_warn("event=telegram_bad_update error=%s", log_q(cause));
		free(cause);
		res->status = 400;
		http_response_printf(res, "{\"ok\":false}");
		return 0;
	}
	rc = tg_receive(t, &u, NULL);
	tg_update_clear(&u);
	if (rc != 0) {
		/* Not stored: Telegram tries again. */
		res->status = 500;
		http_response_printf(res, "{\"ok\":false}");
		return 0;
	}
	t->connected = 1;
	tg_flush(t);
	sched_kick(t->s);
	http_response_printf(res, "{\"ok\":true}");
	return 0;
}

int
tg_routes(struct telegram *t, struct http_server *srv)
{
	if (!t->webhook)
		return 0;
	return http_route(srv, "POST", TG_WEBHOOK_PATH, tg_hook_request, t);
}
