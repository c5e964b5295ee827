/*
 * http.c: the HTTP server: listening, routes, building responses.
 *
 * Connections (reading, parsing, timeouts, writing) are in http_conn.c.
 * The server is freed when http_close() has been called and its listener,
 * its timer and every connection have closed, from the last close
 * callback.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "http_int.h"
#include "log.h"
#include "xmalloc.h"

#define HTTP_BACKLOG	128

void
http_limits_default(struct http_limits *lim)
{
	lim->max_url = 2048;
	lim->max_header = 8192;
	lim->max_headers = 64;
	lim->max_body = 1 << 20;
	lim->max_conns = 64;
	lim->max_requests = 100;
	lim->request_ms = 10000;
	lim->idle_ms = 5000;
	lim->linger_ms = 2000;
	lim->refused_log_ms = 60000;
}

/* ---- buffers and responses ---------------------------------------- */

void
http_buf_append(struct http_buf *b, const char *data, size_t len)
{
	size_t	need = b->len + len + 1;

	if (need > b->cap) {
		b->cap = b->cap == 0 ? 256 : b->cap;
		while (b->cap < need)
			b->cap *= 2;
		b->data = xrealloc(b->data, b->cap);
	}
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
http_buf_free(struct http_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* The response's buffers are an http_buf each, spelled out in http.h. */
static void
http_append(char **data, size_t *len, size_t *cap, const char *s, size_t n)
{
	struct http_buf	b = { *data, *len, *cap };

	http_buf_append(&b, s, n);
	*data = b.data;
	*len = b.len;
	*cap = b.cap;
}

void
http_response_append(struct http_response *res, const char *data, size_t len)
{
	http_append(&res->body, &res->len, &res->cap, data, len);
}

void
http_response_printf(struct http_response *res, const char *fmt, ...)
{
	char	 small[256], *s = small;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof small) {
		s = xmalloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	http_response_append(res, s, (size_t)n);
	if (s != small)
		free(s);
}

int
http_response_header(struct http_response *res, const char *name,
    const char *value)
{
	if (*name == '\0' || strpbrk(name, ": \t\r\n") != NULL ||
	    strpbrk(value, "\r\n") != NULL)
		return UV_EINVAL;
	http_append(&res->headers, &res->hlen, &res->hcap, name, strlen(name));
	http_append(&res->headers, &res->hlen, &res->hcap, ": ", 2);
	http_append(&res->headers, &res->hlen, &res->hcap, value,
	    strlen(value));
	http_append(&res->headers, &res->hlen, &res->hcap, "\r\n", 2);
	return 0;
}

void
http_response_free(struct http_response *res)
{
	free(res->body);
	free(res->headers);
	memset(res, 0, sizeof *res);
}

static void
http_response_reset(struct http_response *res, int status)
{
	http_response_free(res);
	res->status = status;
	res->content_type = "text/plain; charset=utf-8";
}

static const char *
http_reason(int status)
{
	const char	*s = http_status_str((enum http_status)status);

	return strcmp(s, "<unknown>") == 0 ? "Unknown" : s;
}

/* 1xx, 204 and 304 answers never carry a body, nor (1xx, 204) a
 * Content-Length (RFC 9110 8.6, 15.3.5, 15.4.5). */
int
http_status_bodiless(int status)
{
	return (status >= 100 && status < 200) || status == 204 ||
	    status == 304;
}

char *
http_response_head(const struct http_response *res, size_t body_len,
    int keep_alive, size_t *len)
{
	char	*head, *framing;

	if (http_status_bodiless(res->status))
		framing = xstrdup("");
	else
		framing = xasprintf("Content-Type: %s\r\n"
		    "Content-Length: %zu\r\n", res->content_type != NULL ?
		    res->content_type : "text/plain; charset=utf-8", body_len);
	head = xasprintf("HTTP/1.1 %d %s\r\n"
	    "%s"
	    "%s"
	    "Connection: %s\r\n"
	    "\r\n", res->status, http_reason(res->status), framing,
	    res->headers != NULL ? res->headers : "",
	    keep_alive ? "keep-alive" : "close");
	free(framing);
	*len = strlen(head);
	return head;
}

/* ---- routes ------------------------------------------------------- */

int
http_route(struct http_server *srv, const char *method, const char *path,
    http_handler_fn *fn, void *ud)
{
	struct http_route	*r;
	int			 i;

	if (path[0] != '/' || *method == '\0')
		return UV_EINVAL;
	for (i = 0; i < srv->nroutes; i++) {
		r = &srv->routes[i];
		if (strcmp(r->method, method) == 0 &&
		    strcmp(r->path, path) == 0)
			return UV_EEXIST;
	}
	srv->routes = xrealloc(srv->routes,
	    (size_t)(srv->nroutes + 1) * sizeof *srv->routes);
	r = &srv->routes[srv->nroutes++];
	r->method = xstrdup(method);
	r->path = xstrdup(path);
	r->fn = fn;
	r->ud = ud;
	return 0;
}

void
http_dispatch(struct http_server *srv, const struct http_request *req,
    struct http_response *res)
{
	struct http_route	*r, *found = NULL;
	char			 allow[256] = "";
	int			 i, head = strcmp(req->method, "HEAD") == 0;
	size_t			 n;

	for (i = 0; i < srv->nroutes && found == NULL; i++) {
		r = &srv->routes[i];
		if (strcmp(r->path, req->path) != 0)
			continue;
		if (strcmp(r->method, req->method) == 0 ||
		    (head && strcmp(r->method, "GET") == 0))
			found = r;
		else {
			n = strlen(allow);
			snprintf(allow + n, sizeof allow - n, "%s%s",
			    n > 0 ? ", " : "", r->method);
			if (strcmp(r->method, "GET") == 0) {
				n = strlen(allow);
				snprintf(allow + n, sizeof allow - n, ", HEAD");
			}
		}
	}
	http_response_reset(res, 200);
	/* A POST is a webhook's, or meant to be one: refused, not just lost. */
	if (found == NULL && strcmp(req->method, "POST") == 0)
		http_refused(srv, "no_route");
	if (found == NULL && allow[0] == '\0') {
		res->status = 404;
		http_response_printf(res, "not found\n");
		return;
	}
	if (found == NULL) {
		res->status = 405;
		http_response_header(res, "Allow", allow);
		http_response_printf(res, "method not allowed\n");
		return;
	}
	if (found->fn(req, res, found->ud) < 0 || res->status < 100 ||
	    res->status > 599) {
		log_warn("event=http_handler_failed path=%s",
		    log_q(found->path));
		http_response_reset(res, 500);
		http_response_printf(res, "internal error\n");
	}
}

/* ---- refused requests --------------------------------------------- */

/* The slot of `reason`; the last one takes what finds no other. */
static struct http_refused *
http_refused_slot(struct http_server *srv, const char *reason)
{
	struct http_refused	*r;
	int			 i;

	for (i = 0; i < HTTP_REFUSED_REASONS - 1; i++) {
		r = &srv->refused[i];
		if (r->reason[0] == '\0')
			snprintf(r->reason, sizeof r->reason, "%s", reason);
		if (strcmp(r->reason, reason) == 0)
			return r;
	}
	r = &srv->refused[HTTP_REFUSED_REASONS - 1];
	snprintf(r->reason, sizeof r->reason, "other");
	return r;
}

/* Logs the refusals counted since the last line, if any; 1 if it did. */
static int
http_refused_flush(struct http_server *srv)
{
	char		 reasons[HTTP_REFUSED_REASONS * (HTTP_REASON_MAX + 24)];
	uint64_t	 n = 0, now = clock_mono_ns();
	size_t		 off = 0;
	int		 i, w;

	reasons[0] = '\0';
	for (i = 0; i < HTTP_REFUSED_REASONS; i++) {
		if (srv->refused[i].n == 0)
			continue;
		n += srv->refused[i].n;
		w = snprintf(reasons + off, sizeof reasons - off, "%s%s:%" PRIu64,
		    off > 0 ? "," : "", srv->refused[i].reason,
		    srv->refused[i].n);
		if (w > 0 && (size_t)w < sizeof reasons - off)
			off += (size_t)w;
		srv->refused[i].n = 0;
	}
	if (n == 0)
		return 0;
	log_warn("event=webhook_refused count=%" PRIu64 " seconds=%" PRIu64
	    " reasons=%s", n, (now - srv->refused_since_ns) / 1000000000,
	    log_q(reasons));
	srv->refused_since_ns = now;
	return 1;
}

/* The end of an interval: what came in it is logged; if nothing did, the
 * window closes and the next refusal is logged at once. */
static void
http_refused_tick(uv_timer_t *t)
{
	struct http_server	*srv = t->data;

	if (!http_refused_flush(srv)) {
		srv->refused_window = 0;
		return;
	}
	uv_timer_start(t, http_refused_tick, srv->lim.refused_log_ms, 0);
}

void
http_refused(struct http_server *srv, const char *reason)
{
	struct http_refused	*r = http_refused_slot(srv, reason);
	char			 hint[96];

	srv->refused_total++;
	if (srv->refused_window && !srv->closing) {
		r->n++;
		return;
	}
	snprintf(hint, sizeof hint, "more are only counted: one line per %g s "
	    "at most gives how many", (double)srv->lim.refused_log_ms / 1000);
	log_warn("event=webhook_refused reason=%s count=1 hint=%s",
	    log_q(r->reason), log_q(hint));
	srv->refused_since_ns = clock_mono_ns();
	if (srv->closing)
		return;
	srv->refused_window = 1;
	uv_timer_start(&srv->refused_timer, http_refused_tick,
	    srv->lim.refused_log_ms, 0);
}

void
http_request_refused(const struct http_request *req, const char *reason)
{
	const struct http_conn	*c = req->priv;

	if (c != NULL)
		http_refused(c->srv, reason);
}

uint64_t
http_refused_total(const struct http_server *srv)
{
	return srv->refused_total;
}

/* ---- the server --------------------------------------------------- */

static void
http_maybe_free(struct http_server *srv)
{
	int	i;

	if (!srv->closing || srv->listener_open || srv->refused_timer_open ||
	    srv->nconns > 0)
		return;
	for (i = 0; i < srv->nroutes; i++) {
		free(srv->routes[i].method);
		free(srv->routes[i].path);
	}
	free(srv->routes);
	free(srv);
}

void
http_conn_gone(struct http_server *srv, struct http_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nconns--;
	http_maybe_free(srv);
}

int
http_new(struct http_server **out, uv_loop_t *loop,
    const struct http_limits *lim)
{
	struct http_server	*srv = xcalloc(1, sizeof *srv);
	int			 rc;

	if (lim != NULL)
		srv->lim = *lim;
	else
		http_limits_default(&srv->lim);
	if (srv->lim.max_headers > HTTP_HEADERS_MAX)
		srv->lim.max_headers = HTTP_HEADERS_MAX;
	srv->loop = loop;
	if ((rc = uv_tcp_init(loop, &srv->listener)) != 0) {
		free(srv);
		return rc;
	}
	srv->listener.data = srv;
	srv->listener_open = 1;
	uv_timer_init(loop, &srv->refused_timer);
	srv->refused_timer.data = srv;
	srv->refused_timer_open = 1;
	*out = srv;
	return 0;
}

static void
http_on_connection(uv_stream_t *listener, int status)
{
	struct http_server	*srv = listener->data;

	if (status < 0) {
		log_warn("event=http_accept_failed error=%s",
		    uv_strerror(status));
		return;
	}
	if (!srv->closing)
		http_conn_accept(srv);
}

int
http_listen(struct http_server *srv, const char *addr, int port)
{
	struct sockaddr_storage	 ss;
	int			 rc, len = sizeof ss;
	char			 name[64];

	memset(&ss, 0, sizeof ss);
	if (strchr(addr, ':') != NULL)
		rc = uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss);
	else
		rc = uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss);
	if (rc != 0)
		return rc;
	if ((rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0)) != 0)
		return rc;
	if ((rc = uv_listen((uv_stream_t *)&srv->listener, HTTP_BACKLOG,
	    http_on_connection)) != 0)
		return rc;
	if ((rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss,
	    &len)) != 0)
		return rc;
	if (ss.ss_family == AF_INET6) {
		srv->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		uv_ip6_name((struct sockaddr_in6 *)&ss, name, sizeof name);
	} else {
		srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		uv_ip4_name((struct sockaddr_in *)&ss, name, sizeof name);
	}
	log_info("event=http_listening addr=%s port=%d", name, srv->port);
	return 0;
}

int
http_port(const struct http_server *srv)
{
	return srv->port;
}

static void
http_listener_closed(uv_handle_t *h)
{
	struct http_server	*srv = h->data;

	srv->listener_open = 0;
	http_maybe_free(srv);
}

static void
http_timer_closed(uv_handle_t *h)
{
	struct http_server	*srv = h->data;

	srv->refused_timer_open = 0;
	http_maybe_free(srv);
}

void
http_close(struct http_server *srv)
{
	struct http_conn	*c;

	if (srv == NULL || srv->closing)
		return;
	srv->closing = 1;
	for (c = srv->conns; c != NULL; c = c->next)
		http_conn_close(c);
	/* What the last interval counted is not lost. */
	http_refused_flush(srv);
	uv_close((uv_handle_t *)&srv->refused_timer, http_timer_closed);
	uv_close((uv_handle_t *)&srv->listener, http_listener_closed);
}
