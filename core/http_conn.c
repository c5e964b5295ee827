/*
 * http_conn.c: one HTTP connection: reading, parsing, timeouts, writing.
 *
 * Bytes go through http_parser as they arrive; the request line and headers
 * collect in one buffer (the target, then each name and value, separated by
 * NULs) and the body in another, each checked against the limits as it
 * grows. on_message_complete pauses the parser, so a whole request is
 * answered before the next pipelined one is looked at.
 *
 * One timer per connection: from the first byte of a request it gives the
 * request request_ms to arrive whole (not reset by each byte, so trickling
 * does not help), then idle_ms until the next request. Once the last answer
 * of a connection is written, it is shut down and the rest of the input is
 * read and dropped for up to linger_ms, so that the peer reads our answer
 * (a 413 say) rather than a reset from a close with unread input.
 *
 * A connection owns two handles (tcp, timer); it is freed when both have
 * closed, and write requests are freed in their callbacks, which libuv runs
 * (cancelled) before the close callbacks.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_int.h"
#include "log.h"
#include "xmalloc.h"

struct conn_write {
	uv_write_t		 req;
	struct http_conn	*c;
	char			*head;		/* owned */
	char			*body;		/* owned, may be NULL */
};

static int	conn_message_begin(http_parser *);
static int	conn_url(http_parser *, const char *, size_t);
static int	conn_header_field(http_parser *, const char *, size_t);
static int	conn_header_value(http_parser *, const char *, size_t);
static int	conn_headers_complete(http_parser *);
static int	conn_body(http_parser *, const char *, size_t);
static int	conn_message_complete(http_parser *);

static const http_parser_settings conn_settings = {
	.on_message_begin = conn_message_begin,
	.on_url = conn_url,
	.on_header_field = conn_header_field,
	.on_header_value = conn_header_value,
	.on_headers_complete = conn_headers_complete,
	.on_body = conn_body,
	.on_message_complete = conn_message_complete,
};

static void	conn_timeout(uv_timer_t *);

static void
conn_timer(struct http_conn *c, uint64_t ms)
{
	uv_timer_start(&c->timer, conn_timeout, ms, 0);
}

/* ---- closing ------------------------------------------------------ */

static void
conn_closed(uv_handle_t *h)
{
	struct http_conn	*c = h->data;

	if (--c->handles > 0)
		return;
	http_buf_free(&c->head);
	http_buf_free(&c->body);
	http_conn_gone(c->srv, c);
	free(c);
}

void
http_conn_close(struct http_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
	uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void
conn_shut(uv_shutdown_t *req, int status)
{
	struct http_conn	*c = req->data;

	/* Then wait for the peer's end of input, or the linger timer. */
	if (status < 0 || c->eof)
		http_conn_close(c);
}

/* The last answer is written: shut down, drain the input, then close. */
static void
conn_finish(struct http_conn *c)
{
	if (c->closing || c->lingering)
		return;
	c->lingering = 1;
	if (c->eof) {
		http_conn_close(c);
		return;
	}
	c->shutdown.data = c;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, conn_shut) != 0) {
		http_conn_close(c);
		return;
	}
	conn_timer(c, c->srv->lim.linger_ms);
}

static void
conn_check_done(struct http_conn *c)
{
	if (c->close_after && c->writes == 0)
		conn_finish(c);
}

/* ---- writing ------------------------------------------------------ */

static void
conn_written(uv_write_t *req, int status)
{
	struct conn_write	*w = req->data;
	struct http_conn	*c = w->c;

	free(w->head);
	free(w->body);
	free(w);
	c->writes--;
	if (status < 0) {
		http_conn_close(c);
		return;
	}
	conn_check_done(c);
}

/* Writes head and body, taking both. */
static void
conn_write(struct http_conn *c, char *head, size_t hlen, char *body,
    size_t blen)
{
	struct conn_write	*w;
	uv_buf_t		 bufs[2];
	unsigned int		 n = 1;

	if (c->closing) {
		free(head);
		free(body);
		return;
	}
	w = xcalloc(1, sizeof *w);	/* freed in conn_written */
	w->c = c;
	w->head = head;
	w->body = body;
	w->req.data = w;
	bufs[0] = uv_buf_init(head, (unsigned int)hlen);
	if (body != NULL && blen > 0)
		bufs[n++] = uv_buf_init(body, (unsigned int)blen);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, n,
	    conn_written) != 0) {
		free(head);
		free(body);
		free(w);
		http_conn_close(c);
		return;
	}
	c->writes++;
}

static void
conn_send(struct http_conn *c, struct http_response *res, int head_only,
    int keep_alive)
{
	char	*head, *body = NULL;
	size_t	 hlen, blen = res->len;

	if (http_status_bodiless(res->status))
		head_only = 1;
	head = http_response_head(res, blen, keep_alive, &hlen);
	if (!head_only) {
		body = res->body;	/* the write takes it */
		res->body = NULL;
		res->len = res->cap = 0;
	}
	conn_write(c, head, hlen, body, head_only ? 0 : blen);
}

static void
conn_reset_request(struct http_conn *c)
{
	http_buf_free(&c->head);
	http_buf_free(&c->body);
	c->url_len = 0;
	c->header_bytes = 0;
	c->nheaders = 0;
	c->in_value = 0;
	c->headers_done = 0;
	c->in_message = 0;
	c->error = 0;
	c->keep_alive = 0;
}

/* Answers `status` with Connection: close and takes no more requests. */
static void
conn_refuse(struct http_conn *c, int status)
{
	struct http_response	res;

	log_debug("event=http_refused status=%d", status);
	memset(&res, 0, sizeof res);
	res.status = status;
	res.content_type = "text/plain; charset=utf-8";
	http_response_printf(&res, "%d %s\n", status,
	    http_status_str((enum http_status)status));
	c->close_after = 1;
	conn_send(c, &res, 0, 0);
	http_response_free(&res);
	conn_reset_request(c);
	/* A peer that never reads leaves this write pending for good, and
	 * the timer that sent a 408 has fired already: without a new one the
	 * connection would hold its slot until the kernel gave up. */
	conn_timer(c, c->srv->lim.linger_ms);
}

/* ---- parsing ------------------------------------------------------ */

static int
conn_message_begin(http_parser *p)
{
	struct http_conn	*c = p->data;

	c->in_message = 1;
	conn_timer(c, c->srv->lim.request_ms);
	return 0;
}

static int
conn_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn	*c = p->data;

	if (c->url_len + len > c->srv->lim.max_url) {
		c->error = 414;
		return -1;
	}
	http_buf_append(&c->head, at, len);
	c->url_len += len;
	return 0;
}

static int
conn_header_bytes(struct http_conn *c, size_t len)
{
	c->header_bytes += len;
	if (c->header_bytes > c->srv->lim.max_header) {
		c->error = 431;
		return -1;
	}
	return 0;
}

static int
conn_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn	*c = p->data;

	if (conn_header_bytes(c, len) != 0)
		return -1;
	/* Trailers of a chunked body are counted but never become headers:
	 * a client must not add a header after the body it covers. */
	if (c->headers_done)
		return 0;
	/* "Content-Length : 5" must not frame a body (RFC 7230 3.2.4); the
	 * Debian http_parser is built lenient and would take it. */
	if (memchr(at, ' ', len) != NULL || memchr(at, '\t', len) != NULL) {
		c->error = 400;
		return -1;
	}
	/* A field after a value starts a header; else it goes on. */
	if (c->nheaders == 0 || c->in_value) {
		if (c->nheaders >= c->srv->lim.max_headers) {
			c->error = 431;
			return -1;
		}
		http_buf_append(&c->head, "", 1);	/* ends the last */
		c->names[c->nheaders] = c->head.len;
		c->values[c->nheaders] = SIZE_MAX;
		c->nheaders++;
		c->in_value = 0;
	}
	http_buf_append(&c->head, at, len);
	return 0;
}

static int
conn_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn	*c = p->data;

	if (conn_header_bytes(c, len) != 0)
		return -1;
	if (c->headers_done)
		return 0;
	if (c->nheaders == 0)
		return -1;
	if (!c->in_value) {
		http_buf_append(&c->head, "", 1);	/* ends the name */
		c->values[c->nheaders - 1] = c->head.len;
		c->in_value = 1;
	}
	http_buf_append(&c->head, at, len);
	return 0;
}

const char *
http_conn_header(const struct http_conn *c, const char *name)
{
	int	i;

	for (i = 0; i < c->nheaders; i++) {
		if (strcasecmp(c->head.data + c->names[i], name) != 0)
			continue;
		return c->values[i] == SIZE_MAX ? "" :
		    c->head.data + c->values[i];
	}
	return NULL;
}

const char *
http_request_header(const struct http_request *req, const char *name)
{
	return http_conn_header(req->priv, name);
}

static int
conn_headers_complete(http_parser *p)
{
	struct http_conn	*c = p->data;
	const char		*expect;
	char			*cont;

	c->headers_done = 1;
	http_buf_append(&c->head, "", 1);	/* ends the target or a value */
	if (p->http_major != 1) {
		c->error = 505;
		return -1;
	}
	if ((p->flags & F_CONTENTLENGTH) &&
	    p->content_length > c->srv->lim.max_body) {
		c->error = 413;
		return -1;
	}
	expect = http_conn_header(c, "Expect");
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
	    p->http_major == 1 && p->http_minor >= 1) {
		cont = xstrdup("HTTP/1.1 100 Continue\r\n\r\n");
		conn_write(c, cont, strlen(cont), NULL, 0);
	}
	return 0;
}

static int
conn_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn	*c = p->data;

	if (c->body.len + len > c->srv->lim.max_body) {
		c->error = 413;
		return -1;
	}
	http_buf_append(&c->body, at, len);
	return 0;
}

static int
conn_message_complete(http_parser *p)
{
	struct http_conn	*c = p->data;

	c->keep_alive = http_should_keep_alive(p);
	/* Hands the request to conn_feed(), which answers, then resumes. */
	http_parser_pause(p, 1);
	return 0;
}

/* ---- answering ---------------------------------------------------- */

static char *
conn_url_part(const char *url, const struct http_parser_url *u, int field,
    const char *none)
{
	if (!(u->field_set & (1 << field)))
		return xstrdup(none);
	return xstrndup(url + u->field_data[field].off,
	    u->field_data[field].len);
}

static void
conn_dispatch(struct http_conn *c)
{
	struct http_server	*srv = c->srv;
	struct http_parser_url	 u;
	struct http_request	 req;
	struct http_response	 res;
	char			*path, *query;
	int			 keep, head_only;

	http_parser_url_init(&u);
	if (c->url_len == 0 || http_parser_parse_url(c->head.data, c->url_len,
	    c->parser.method == HTTP_CONNECT, &u) != 0) {
		conn_refuse(c, 400);
		return;
	}
	path = conn_url_part(c->head.data, &u, UF_PATH, "/");
	query = conn_url_part(c->head.data, &u, UF_QUERY, "");
	memset(&req, 0, sizeof req);
	req.method = http_method_str((enum http_method)c->parser.method);
	req.path = path;
	req.query = query;
	req.body = c->body.data != NULL ? c->body.data : "";
	req.body_len = c->body.len;
	req.priv = c;
	memset(&res, 0, sizeof res);
	http_dispatch(srv, &req, &res);
	log_debug("event=http_request method=%s status=%d", req.method,
	    res.status);
	head_only = c->parser.method == HTTP_HEAD;
	free(path);
	free(query);

	c->requests++;
	keep = c->keep_alive && !c->parser.upgrade && !srv->closing &&
	    c->requests < srv->lim.max_requests;
	conn_send(c, &res, head_only, keep);
	http_response_free(&res);
	conn_reset_request(c);
	if (keep)
		conn_timer(c, srv->lim.idle_ms);
	else
		c->close_after = 1;
}

static void
conn_feed(struct http_conn *c, const char *data, size_t len)
{
	enum http_errno	err;
	size_t		off = 0;

	while (off < len && !c->closing && !c->close_after) {
		off += http_parser_execute(&c->parser, &conn_settings,
		    data + off, len - off);
		err = HTTP_PARSER_ERRNO(&c->parser);
		if (err == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			conn_dispatch(c);
			continue;
		}
		if (err != HPE_OK) {
			conn_refuse(c, c->error != 0 ? c->error :
			    err == HPE_HEADER_OVERFLOW ? 431 : 400);
			return;
		}
		if (c->parser.upgrade) {
			/* Not a protocol we speak: the rest is not HTTP. */
			c->close_after = 1;
			return;
		}
	}
}

/* ---- reading ------------------------------------------------------ */

static void
conn_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct http_conn	*c = h->data;

	(void)size;
	*buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void
conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct http_conn	*c = s->data;

	if (c->closing || n == 0)
		return;
	if (n < 0) {
		c->eof = 1;
		uv_read_stop(s);
		/* An answer in flight still goes out; then we close. */
		if (n != UV_EOF || c->lingering || c->writes == 0)
			http_conn_close(c);
		else
			c->close_after = 1;
		return;
	}
	if (c->lingering || c->close_after)
		return;			/* drained and dropped */
	conn_feed(c, buf->base, (size_t)n);
	conn_check_done(c);
}

static void
conn_timeout(uv_timer_t *t)
{
	struct http_conn	*c = t->data;

	if (c->closing)
		return;
	/* Mid-request: say so. Idle, lingering or not reading our answers:
	 * just close. */
	if (c->in_message && !c->lingering && !c->close_after &&
	    c->writes == 0) {
		conn_refuse(c, 408);
		return;
	}
	http_conn_close(c);
}

/* Returns a new connection on the server's list (owned by it; freed when
 * both handles have closed), or NULL if its TCP handle cannot be made. */
static struct http_conn *
conn_new(struct http_server *srv)
{
	struct http_conn	*c;

	c = xcalloc(1, sizeof *c);
	c->srv = srv;
	if (uv_tcp_init(srv->loop, &c->tcp) != 0) {
		free(c);
		return NULL;
	}
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles = 2;
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	return c;
}

/* Starts reading a connected connection. */
static int
conn_start(struct http_conn *c)
{
	int	rc;

	uv_tcp_nodelay(&c->tcp, 1);
	rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
	if (rc != 0) {
		http_conn_close(c);
		return rc;
	}
	conn_timer(c, c->srv->lim.request_ms);
	return 0;
}

void
http_conn_accept(struct http_server *srv)
{
	struct http_conn	*c;
	int			 over = srv->nconns >= srv->lim.max_conns;

	if ((c = conn_new(srv)) == NULL)
		return;
	if (uv_accept((uv_stream_t *)&srv->listener,
	    (uv_stream_t *)&c->tcp) != 0) {
		http_conn_close(c);
		return;
	}
	if (over) {
		log_debug("event=http_too_many_connections max=%d",
		    srv->lim.max_conns);
		http_conn_close(c);
		return;
	}
	conn_start(c);
}

int
http_conn_open(struct http_server *srv, uv_os_sock_t sock)
{
	struct http_conn	*c;
	int			 rc;

	if ((c = conn_new(srv)) == NULL) {
		close(sock);
		return UV_ENOMEM;
	}
	if ((rc = uv_tcp_open(&c->tcp, sock)) != 0) {
		close(sock);
		http_conn_close(c);
		return rc;
	}
	return conn_start(c);
}
