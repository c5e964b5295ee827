/*
 * mx_session.c: logging in, refreshing, and the token.
 *
 * At start the token comes from the config (matrix.access_token), else
 * from the kv table (the last login's), else from m.login.password. A
 * login always sends the device_id kept from the first one, so the bot
 * stays one device however often it logs in, and asks for a refresh token.
 *
 * A request answered 401 M_UNKNOWN_TOKEN waits here: with soft_logout and
 * a refresh token we POST /refresh; otherwise (a hard logout, or refresh
 * refused) we log in again with the password. Without a password there is
 * no way back: one error line, and the adapter stops.
 *
 * Tokens, refresh tokens and the password are secrets: they are kept in
 * the kv table and in memory (wiped when freed), never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "mx_int.h"
#include "xmalloc.h"

#define MX_DEVICE_NAME	"Strigil"

static void	mx_login(struct matrix *);
static void	mx_whoami_again(uv_timer_t *);
static void	mx_refresh(struct matrix *);

static void
mx_set(char **field, const char *value)
{
	if (*field != NULL) {
		explicit_bzero(*field, strlen(*field));
		free(*field);
	}
	*field = value != NULL ? xstrdup(value) : NULL;
}

/* Sends the waiting requests again with the new token. */
static void
mx_resume_waiting(struct matrix *m)
{
	struct mx_req	*q, *list = m->waiting, *rev = NULL;

	m->waiting = NULL;
	/* The list is newest first: the oldest goes first again. */
	while ((q = list) != NULL) {
		list = q->next;
		q->next = rev;
		rev = q;
	}
	while ((q = rev) != NULL) {
		rev = q->next;
		q->next = NULL;
		mx_req_resume(q);
	}
}

/* The session is gone for good: every waiting request ends as a 401. */
static void
mx_session_dead(struct matrix *m, const char *why)
{
	struct fetch_result	 r;
	struct mx_req		*q;

	/* One line, however many requests were in flight. */
	if (m->session != MX_S_DEAD)
		log_error("event=matrix_unauthorized reason=%s action=stopped "
		    "hint=%s", why, log_q("check matrix.user and "
		    "matrix.password (or matrix.access_token), then restart"));
	m->session = MX_S_DEAD;
	m->connected = 0;
	memset(&r, 0, sizeof r);
	r.status = 401;
	r.retry_after = -1;
	while ((q = m->waiting) != NULL) {
		m->waiting = q->next;
		q->done(m, q->ud, &r);
		free(q->method);
		free(q->path);
		free(q->body);
		free(q);
	}
}

/* Syncing starts once we know who we are. */
static void
mx_begin(struct matrix *m)
{
	if (!m->polling) {
		m->polling = 1;
		mx_poll_start(m);
	}
}

static void
mx_session_ok(struct matrix *m)
{
	m->session = MX_S_OK;
	m->session_fails = 0;
	m->gen++;
	mx_resume_waiting(m);
	mx_begin(m);
}

/* Keeps the tokens of a login or refresh answer, in one transaction. */
static int
mx_session_save(struct matrix *m)
{
	struct store	*st = engine_store(m->e);
	int		 rc = 0;

	if (store_begin(st) != 0)
		return -1;
	rc |= mx_kv_set(m, MX_KV_TOKEN, m->token);
	rc |= mx_kv_set(m, MX_KV_REFRESH, m->refresh != NULL ? m->refresh :
	    "");
	if (m->device != NULL)
		rc |= mx_kv_set(m, MX_KV_DEVICE, m->device);
	if (m->self != NULL)
		rc |= mx_kv_set(m, MX_KV_USER, m->self);
	if (rc != 0) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st);
}

static void
mx_session_timer_fired(uv_timer_t *h)
{
	struct matrix	*m = h->data;

	if (m->refresh != NULL && !m->token_from_config)
		mx_refresh(m);
	else
		mx_login(m);
}

static void
mx_session_retry(struct matrix *m, const char *what,
    const struct fetch_result *r, const struct mx_error *err)
{
	int64_t	ms;

	if (r->error == 0 && r->status == 429)
		ms = mx_retry_ms(r, err);
	else
		ms = mx_backoff_ms(++m->session_fails);
	log_warn("event=matrix_%s_failed status=%ld errcode=%s retry_ms=%lld",
	    what, r->status, log_q(err->errcode), (long long)ms);
	uv_timer_start(&m->session_timer, mx_session_timer_fired,
	    (uint64_t)ms, 0);
}

/* Notes when a new token expires: a minute early, or at 90% of a short
 * life, so the refresh is done before any request meets the 401. */
static void
mx_expiry(struct matrix *m, const cJSON *o)
{
	const cJSON	*e = cJSON_GetObjectItem(o, "expires_in_ms");
	double		 ms;

	m->expires_ms = 0;
	if (!cJSON_IsNumber(e) || (ms = e->valuedouble) <= 0 || ms > 1e12)
		return;
	ms = ms > 600000 ? ms - 60000 : ms * 0.9;
	m->expires_ms = clock_now_ms() + (int64_t)ms;
}

void
mx_session_check(struct matrix *m)
{
	if (m->session != MX_S_OK || m->expires_ms == 0 ||
	    m->refresh == NULL || m->token_from_config ||
	    clock_now_ms() < m->expires_ms)
		return;
	log_info("event=matrix_token_expiring");
	m->expires_ms = 0;
	mx_refresh(m);
}

/* Without the Authorization header: login and refresh. */
static void
mx_post_anon(struct matrix *m, const char *path, const char *body,
    fetch_done_fn *done)
{
	struct fetch_req	 req;
	char			*url = xasprintf("%s%s", m->api, path);

	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.url = url;
	req.body = body;
	req.body_len = strlen(body);
	req.content_type = "application/json";
	if (fetch_start(m->f, &req, done, m) != 0) {
		log_warn("event=matrix_call_refused path=%s", path);
		fetch_refused(done, m, m->closing);
	}
	free(url);
}

static void
mx_login_done(void *ud, const struct fetch_result *r)
{
	struct matrix	*m = ud;
	struct mx_error	 err;
	cJSON		*o;
	const char	*user, *token, *device, *refresh;

	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	mx_result_error(r, &err);
	if (r->error != 0 || r->status == 429 || r->status >= 500) {
		mx_session_retry(m, "login", r, &err);
		return;
	}
	if (r->status != 200) {
		log_error("event=matrix_login_failed status=%ld errcode=%s",
		    r->status, log_q(err.errcode));
		mx_session_dead(m, "login_refused");
		return;
	}
	o = cJSON_ParseWithLength(r->body, r->len);
	user = cJSON_GetStringValue(cJSON_GetObjectItem(o, "user_id"));
	token = cJSON_GetStringValue(cJSON_GetObjectItem(o, "access_token"));
	device = cJSON_GetStringValue(cJSON_GetObjectItem(o, "device_id"));
	refresh = cJSON_GetStringValue(cJSON_GetObjectItem(o,
	    "refresh_token"));
	mx_expiry(m, o);
	if (user == NULL || token == NULL) {
		cJSON_Delete(o);
		mx_session_retry(m, "login", r, &err);
		return;
	}
	mx_set(&m->token, token);
	mx_set(&m->refresh, refresh);
	if (device != NULL)
		mx_set(&m->device, device);
	mx_set(&m->self, user);
	cJSON_Delete(o);
	if (mx_session_save(m) != 0)
		log_warn("event=matrix_session_not_saved");
	log_info("event=matrix_logged_in refresh=%d", m->refresh != NULL);
	mx_session_ok(m);
}

static void
mx_login(struct matrix *m)
{
	cJSON	*o = cJSON_CreateObject(), *id;
	char	*body;

	if (m->password == NULL) {
		mx_session_dead(m, "no_password");
		cJSON_Delete(o);
		return;
	}
	m->session = MX_S_WORKING;
	cJSON_AddStringToObject(o, "type", "m.login.password");
	id = cJSON_AddObjectToObject(o, "identifier");
	cJSON_AddStringToObject(id, "type", "m.id.user");
	cJSON_AddStringToObject(id, "user", m->user);
	cJSON_AddStringToObject(o, "password", m->password);
	if (m->device != NULL)
		cJSON_AddStringToObject(o, "device_id", m->device);
	else
		cJSON_AddStringToObject(o, "initial_device_display_name",
		    MX_DEVICE_NAME);
	cJSON_AddTrueToObject(o, "refresh_token");
	body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	log_info("event=matrix_login device=%d", m->device != NULL);
	mx_post_anon(m, "/login", body, mx_login_done);
	explicit_bzero(body, strlen(body));
	cJSON_free(body);
}

static void
mx_refresh_done(void *ud, const struct fetch_result *r)
{
	struct matrix	*m = ud;
	struct mx_error	 err;
	cJSON		*o;
	const char	*token, *refresh;

	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	mx_result_error(r, &err);
	if (r->error != 0 || r->status == 429 || r->status >= 500) {
		mx_session_retry(m, "refresh", r, &err);
		return;
	}
	o = r->status == 200 ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	token = cJSON_GetStringValue(cJSON_GetObjectItem(o, "access_token"));
	if (token == NULL) {
		/* The refresh token is spent or revoked: log in again. */
		cJSON_Delete(o);
		log_warn("event=matrix_refresh_refused status=%ld errcode=%s",
		    r->status, log_q(err.errcode));
		mx_set(&m->refresh, NULL);
		mx_login(m);
		return;
	}
	refresh = cJSON_GetStringValue(cJSON_GetObjectItem(o,
	    "refresh_token"));
	mx_expiry(m, o);
	mx_set(&m->token, token);
	if (refresh != NULL)
		mx_set(&m->refresh, refresh);
	cJSON_Delete(o);
	if (mx_session_save(m) != 0)
		log_warn("event=matrix_session_not_saved");
	log_info("event=matrix_refreshed");
	mx_session_ok(m);
}

static void
mx_refresh(struct matrix *m)
{
	cJSON	*o = cJSON_CreateObject();
	char	*body;

	m->session = MX_S_WORKING;
	cJSON_AddStringToObject(o, "refresh_token", m->refresh);
	body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	mx_post_anon(m, "/refresh", body, mx_refresh_done);
	explicit_bzero(body, strlen(body));
	cJSON_free(body);
}

void
mx_session_lost(struct matrix *m, struct mx_req *q, int soft)
{
	q->next = m->waiting;
	m->waiting = q;
	if (m->session == MX_S_WORKING)
		return;
	if (m->session == MX_S_DEAD) {
		mx_session_dead(m, "token_refused");
		return;
	}
	log_warn("event=matrix_token_rejected soft_logout=%d refresh=%d",
	    soft, m->refresh != NULL);
	if (soft && m->refresh != NULL && !m->token_from_config)
		mx_refresh(m);
	else if (m->password != NULL)
		mx_login(m);
	else
		mx_session_dead(m, m->token_from_config ?
		    "access_token_refused" : "no_password");
}

/* Do the kept session's user and the configured one agree? */
static int
mx_same_user(const char *configured, const char *kept)
{
	size_t	n = strlen(configured);

	if (configured[0] == '@')
		return strcmp(configured, kept) == 0;
	return kept[0] == '@' && strncmp(kept + 1, configured, n) == 0 &&
	    kept[n + 1] == ':';
}

static void
mx_whoami_done(struct matrix *m, void *ud, const struct fetch_result *r)
{
	cJSON		*o;
	const char	*user;

	(void)ud;
	if (r->error == FETCH_ECANCELED || m->closing ||
	    m->session == MX_S_DEAD)
		return;
	o = r->error == 0 && r->status == 200 ?
	    cJSON_ParseWithLength(r->body, r->len) : NULL;
	user = cJSON_GetStringValue(cJSON_GetObjectItem(o, "user_id"));
	if (user == NULL) {
		cJSON_Delete(o);
		log_warn("event=matrix_whoami_failed status=%ld", r->status);
		uv_timer_start(&m->session_timer, mx_whoami_again,
		    (uint64_t)mx_backoff_ms(++m->session_fails), 0);
		return;
	}
	mx_set(&m->self, user);
	cJSON_Delete(o);
	mx_begin(m);
}

static void
mx_whoami_again(uv_timer_t *h)
{
	struct matrix	*m = h->data;

	mx_call(m, "GET", "/account/whoami", NULL, 0, mx_whoami_done, NULL);
}

void
mx_session_start(struct matrix *m)
{
	char	*kept;

	m->device = mx_kv(m, MX_KV_DEVICE);
	if (m->token_from_config) {
		m->session = MX_S_OK;
		m->gen++;
		if (m->user[0] == '@') {
			m->self = xstrdup(m->user);
			mx_begin(m);
		} else
			mx_whoami_again(&m->session_timer);
		return;
	}
	kept = mx_kv(m, MX_KV_USER);
	if (kept != NULL && mx_same_user(m->user, kept) &&
	    (m->token = mx_kv(m, MX_KV_TOKEN)) != NULL) {
		m->refresh = mx_kv(m, MX_KV_REFRESH);
		if (m->refresh != NULL && m->refresh[0] == '\0')
			mx_set(&m->refresh, NULL);
		m->self = kept;
		m->session = MX_S_OK;
		m->gen++;
		log_info("event=matrix_session_resumed");
		mx_begin(m);
		return;
	}
	if (kept != NULL && !mx_same_user(m->user, kept)) {
		/* Another account: its filter and sync position are not
		 * ours, nor its device. */
		log_warn("event=matrix_user_changed");
		mx_kv_set(m, MX_KV_FILTER, "");
		mx_kv_set(m, MX_KV_SINCE, "");
		mx_kv_set(m, MX_KV_DEVICE, "");
		free(m->filter);
		free(m->since);
		free(m->device);
		m->filter = m->since = m->device = NULL;
	}
	free(kept);
	mx_login(m);
}

void
mx_session_free(struct matrix *m)
{
	struct mx_req	*q;

	while ((q = m->waiting) != NULL) {
		m->waiting = q->next;
		free(q->method);
		free(q->path);
		free(q->body);
		free(q);
	}
}
