/*
 * matrix.c: the Matrix adapter's life cycle and what its parts share
 * (requests with the session's token, backoff, the kv table).
 *
 * Every request but login and refresh carries the access token as an
 * "Authorization: Bearer" header, never in the URL. A request answered
 * 401 M_UNKNOWN_TOKEN is kept and goes again once mx_session.c has a new
 * token, so its caller never sees the token expire.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "fetch.h"
#include "log.h"
#include "metrics.h"
#include "mx_int.h"
#include "xmalloc.h"

/* Exponential in the errors so far, capped, with jitter on top. */
int64_t
mx_backoff_ms(int fails)
{
	int64_t	ms = MX_BACKOFF_MIN_MS;

	while (fails-- > 1 && ms < MX_BACKOFF_MAX_MS)
		ms *= 2;
	if (ms > MX_BACKOFF_MAX_MS)
		ms = MX_BACKOFF_MAX_MS;
	return ms + (int64_t)(random() % (ms / 2 + 1));
}

/* Percent-encodes everything but RFC 3986's unreserved characters, for a
 * path segment or a query value. Caller frees. */
char *
mx_escape(const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	char			*out = xmalloc(strlen(s) * 3 + 1), *p = out;
	unsigned char		 c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			*p++ = (char)c;
		else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

void
mx_result_error(const struct fetch_result *r, struct mx_error *err)
{
	memset(err, 0, sizeof *err);
	err->retry_after_ms = -1;
	if (r->error == 0 && r->body != NULL)
		mx_error_parse(r->body, r->len, err);
}

int64_t
mx_retry_ms(const struct fetch_result *r, const struct mx_error *err)
{
	int64_t	ms = 1000;

	if (err->retry_after_ms >= 0)
		ms = err->retry_after_ms;
	else if (r->retry_after >= 0)
		ms = (int64_t)r->retry_after * 1000;
	return ms < 1000 ? 1000 : ms;
}

int
mx_kv_read(struct matrix *m, const char *key, char **value)
{
	int	rc;

	*value = NULL;
	if ((rc = store_kv_get(engine_store(m->e), key, value)) != 0)
		return rc;
	if ((*value)[0] == '\0') {	/* cleared: the kv has no delete */
		free(*value);
		*value = NULL;
		return STORE_NOTFOUND;
	}
	return 0;
}

char *
mx_kv(struct matrix *m, const char *key)
{
	char	*v;

	return mx_kv_read(m, key, &v) == 0 ? v : NULL;
}

int
mx_kv_set(struct matrix *m, const char *key, const char *value)
{
	return store_kv_set(engine_store(m->e), key, value, clock_now());
}

static void
mx_req_free(struct mx_req *q)
{
	free(q->method);
	free(q->path);
	free(q->body);
	free(q);
}

static void	mx_req_done(void *, const struct fetch_result *);

/* (Re)starts a kept request with the current token. -1 when it could not
 * start: then its callback has run and it is freed. */
static int
mx_req_start(struct mx_req *q)
{
	struct matrix		*m = q->m;
	struct fetch_req	 req;
	char			*url, *auth;

	memset(&req, 0, sizeof req);
	url = xasprintf("%s%s", m->api, q->path);
	auth = xasprintf("Bearer %s", m->token != NULL ? m->token : "");
	req.method = q->method;
	req.url = url;
	req.body = q->body;
	req.body_len = q->body != NULL ? strlen(q->body) : 0;
	req.content_type = q->body != NULL ? "application/json" : NULL;
	req.authorization = auth;
	req.timeout_ms = q->timeout_ms;
	q->gen = m->gen;
	if (fetch_start(m->f, &req, mx_req_done, q) != 0) {
		/* A closing client refuses; so may curl, rarely: then the
		 * caller retries as after a network error. mx_req_done()
		 * frees q. */
		fetch_refused(mx_req_done, q, m->closing);
		q = NULL;
	}
	explicit_bzero(auth, strlen(auth));
	free(auth);
	free(url);
	return q != NULL ? 0 : -1;
}

static void
mx_req_done(void *ud, const struct fetch_result *r)
{
	struct mx_req	*q = ud;
	struct matrix	*m = q->m;
	struct mx_error	 err;

	if (r->error == 0 && r->status == 401 && !m->closing) {
		mx_result_error(r, &err);
		if (strcmp(err.errcode, "M_UNKNOWN_TOKEN") == 0 ||
		    strcmp(err.errcode, "M_MISSING_TOKEN") == 0) {
			if (q->gen != m->gen) {
				/* The token changed while it ran. */
				mx_req_start(q);
				return;
			}
			mx_session_lost(m, q, err.soft_logout);
			return;
		}
	}
	q->done(m, q->ud, r);
	mx_req_free(q);
}

void
mx_req_resume(struct mx_req *q)
{
	mx_req_start(q);
}

int
mx_req_cancel(struct matrix *m, struct mx_req *q)
{
	return fetch_cancel(m->f, mx_req_done, q);
}

struct mx_req *
mx_call(struct matrix *m, const char *method, const char *path,
    const char *body, long timeout_ms, mx_done_fn *done, void *ud)
{
	struct mx_req	*q = xcalloc(1, sizeof *q);

	q->m = m;
	q->method = xstrdup(method);
	q->path = xstrdup(path);
	q->body = body != NULL ? xstrdup(body) : NULL;
	q->timeout_ms = timeout_ms;
	q->done = done;
	q->ud = ud;
	mx_session_check(m);
	if (m->session != MX_S_OK) {
		/* Logging in: it goes with the token that comes. */
		q->next = m->waiting;
		m->waiting = q;
		return q;
	}
	return mx_req_start(q) == 0 ? q : NULL;
}

static void
mx_send_tick(uv_timer_t *h)
{
	mx_flush(h->data);
}

static void
mx_wipe(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void
mx_free(struct matrix *m)
{
	mx_wipe(m->password);
	mx_wipe(m->token);
	mx_wipe(m->refresh);
	free(m->device);
	free(m->api);
	free(m->user);
	free(m->self);
	free(m->clinician);
	free(m->inviters);
	free(m->since);
	free(m->filter);
	free(m->txn_prefix);
	free(m);
}

static void
mx_handle_closed(uv_handle_t *h)
{
	struct matrix	*m = h->data;

	if (--m->handles == 0)
		mx_free(m);
}

/* The per-database transaction id prefix: random, made once, so a
 * second bot's database never makes another's ids (mx_send_part() adds
 * what keeps a row's own apart from those of rows gone before it). */
static int
mx_txn_prefix(struct matrix *m, char **cause)
{
	unsigned char	 r[9];
	char		 hex[sizeof r * 2 + 1];
	FILE		*f;
	size_t		 i;

	if (mx_kv_read(m, MX_KV_TXN, &m->txn_prefix) < 0) {
		*cause = xstrdup("matrix: cannot read the adapter's state "
		    "from the database");
		return -1;
	}
	if (m->txn_prefix != NULL)
		return 0;
	if ((f = fopen("/dev/urandom", "rb")) == NULL ||
	    fread(r, 1, sizeof r, f) != sizeof r) {
		if (f != NULL)
			fclose(f);
		*cause = xstrdup("matrix: cannot read /dev/urandom");
		return -1;
	}
	fclose(f);
	for (i = 0; i < sizeof r; i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	if (mx_kv_set(m, MX_KV_TXN, hex) != 0) {
		*cause = xstrdup("matrix: cannot write the database");
		return -1;
	}
	m->txn_prefix = xstrdup(hex);
	return 0;
}

/* When the adapter first ran on this database: the first sync takes only
 * messages from then on (kv, so a crash before that sync commits does not
 * move it). */
static int
mx_started(struct matrix *m, char **cause)
{
	char	*v = mx_kv(m, MX_KV_STARTED), buf[32], *end;

	if (v != NULL) {
		errno = 0;
		m->started_ms = strtoll(v, &end, 10);
		if (end == v || *end != '\0' || errno != 0 ||
		    m->started_ms < 0) {
			/* Refuse rather than guess: 0 would take every
			 * message ever sent in the bot's rooms. */
			*cause = xstrdup("matrix: the stored start time (kv "
			    MX_KV_STARTED ") is not a number");
			free(v);
			return -1;
		}
		free(v);
		return 0;
	}
	m->started_ms = clock_now_ms();
	snprintf(buf, sizeof buf, "%lld", (long long)m->started_ms);
	if (mx_kv_set(m, MX_KV_STARTED, buf) != 0) {
		*cause = xstrdup("matrix: cannot write the database");
		return -1;
	}
	return 0;
}

int
mx_new(struct matrix **out, uv_loop_t *loop, struct engine *e,
    struct sched *s, const struct config *cfg, char **cause)
{
	struct matrix	*m = xcalloc(1, sizeof *m);
	const char	*hs = cfg->mx_homeserver;
	size_t		 n = strlen(hs);

	m->loop = loop;
	m->e = e;
	m->s = s;
	m->poll_timeout = (long)cfg->mx_poll_timeout;
	while (n > 0 && hs[n - 1] == '/')
		n--;
	m->api = xasprintf("%.*s/_matrix/client/v3", (int)n, hs);
	m->user = xstrdup(cfg->mx_user);
	if (cfg->mx_password[0] != '\0')
		m->password = xstrdup(cfg->mx_password);
	if (cfg->mx_clinician_room[0] != '\0')
		m->clinician = xstrdup(cfg->mx_clinician_room);
	if (cfg->mx_allowed_inviters[0] != '\0')
		m->inviters = xstrdup(cfg->mx_allowed_inviters);
	if (cfg->mx_access_token[0] != '\0') {
		m->token = xstrdup(cfg->mx_access_token);
		m->token_from_config = 1;
	}
	m->batch.gap_room = -1;
	/* A database error must not pass for "no sync position": taken for
	 * a first start, it would skip what came while the daemon was
	 * down. */
	if (mx_kv_read(m, MX_KV_SINCE, &m->since) < 0) {
		*cause = xstrdup("matrix: cannot read the sync position from "
		    "the database");
		mx_free(m);
		return -1;
	}
	if (mx_send_restore(m) != 0) {
		*cause = xstrdup("matrix: cannot read the outbox");
		mx_send_free(m);
		mx_free(m);
		return -1;
	}
	if (mx_txn_prefix(m, cause) != 0 || mx_started(m, cause) != 0 ||
	    fetch_new(&m->f, loop, cause) != 0) {
		mx_send_free(m);
		mx_free(m);
		return -1;
	}
	m->filter = mx_filter_stored(m);
	srandom((unsigned)clock_mono_ns());
	uv_timer_init(loop, &m->poll_timer);
	uv_timer_init(loop, &m->send_timer);
	uv_timer_init(loop, &m->session_timer);
	uv_timer_init(loop, &m->poll_watch);
	m->poll_timer.data = m->send_timer.data = m->session_timer.data = m;
	m->poll_watch.data = m;
	m->handles = 4;
	/* Retries and rate-limited rows come due with time (the outbox's
	 * not_before is in whole seconds). */
	uv_timer_start(&m->send_timer, mx_send_tick, 250, 250);
	metrics_adapter_register(MX_ADAPTER);
	log_info("event=matrix_started poll_timeout=%ld resume=%d",
	    m->poll_timeout, m->since != NULL);
	mx_session_start(m);
	*out = m;
	return 0;
}

int
mx_connected(const struct matrix *m)
{
	return m->connected;
}

void
mx_close(struct matrix *m)
{
	if (m->closing)
		return;
	m->closing = 1;
	/* Cancels the sync and any send: their callbacks run now and see
	 * `closing`. An unsent row stays in the outbox for the next start;
	 * a batch not yet handled comes again from the saved token. */
	fetch_close(m->f);
	mx_session_free(m);
	mx_send_free(m);
	mx_batch_clear(&m->batch);
	uv_close((uv_handle_t *)&m->poll_timer, mx_handle_closed);
	uv_close((uv_handle_t *)&m->send_timer, mx_handle_closed);
	uv_close((uv_handle_t *)&m->session_timer, mx_handle_closed);
	uv_close((uv_handle_t *)&m->poll_watch, mx_handle_closed);
}
