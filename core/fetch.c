/*
 * fetch.c: libcurl's multi interface on the libuv loop.
 *
 * The shape is the one libcurl documents for event loops (multi_socket):
 * curl calls fetch_socket() to say which sockets to watch for what, and
 * fetch_timer() to say when to call it back; we answer readiness and
 * timeouts with curl_multi_socket_action() and then collect finished
 * transfers with curl_multi_info_read().
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "clock.h"
#include "fetch.h"
#include "xmalloc.h"

#define FETCH_TIMEOUT_MS	30000
#define FETCH_CONNECT_MS	10000
#define FETCH_MAX_BODY		(16 * 1024 * 1024)

/* One transfer, from fetch_start() to its callback. */
struct fetch_xfer {
	struct fetch		*f;
	CURL			*easy;
	struct curl_slist	*headers;
	char			*body;		/* copy of the request body */
	char			*buf;		/* the answer so far */
	size_t			 len, cap, max;
	int			 too_big;
	int			 cancel;	/* fetch_cancel() takes it */
	long			 retry_after;
	fetch_done_fn		*cb;
	void			*ud;
	uint64_t		 t0;
	char			 errbuf[CURL_ERROR_SIZE];
	struct fetch_xfer	*prev, *next;
};

/* One socket curl wants watched; freed in its poll handle's close. */
struct fetch_sock {
	uv_poll_t		 poll;
	curl_socket_t		 fd;
	int			 events;	/* UV_READABLE|UV_WRITABLE asked */
	struct fetch		*f;
	struct fetch_sock	*prev, *next;
};

struct fetch {
	uv_loop_t		*loop;
	CURLM			*multi;
	uv_timer_t		 timer;
	struct fetch_xfer	*xfers;		/* running transfers */
	int			 nxfers;
	struct fetch_sock	*socks;		/* sockets being watched */
	int			 closing;
};

static int	fetch_global_done;

/* ---- finishing transfers ------------------------------------------ */

static void
fetch_unlink(struct fetch_xfer *x)
{
	struct fetch	*f = x->f;

	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		f->xfers = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	f->nxfers--;
}

static void
fetch_free_xfer(struct fetch_xfer *x)
{
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->body);
	free(x->buf);
	free(x);
}

/* Calls the callback once, with the answer or why there is none. */
static void
fetch_finish(struct fetch_xfer *x, int error, const char *message)
{
	struct fetch_result	r;

	memset(&r, 0, sizeof r);
	r.error = error;
	r.message = message;
	if (error >= 0)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.status);
	r.body = x->buf != NULL ? x->buf : "";
	r.len = x->len;
	r.retry_after = x->retry_after;
	r.elapsed_ns = clock_mono_ns() - x->t0;
	x->cb(x->ud, &r);
}

/* Reads every finished transfer; runs after each socket action. */
static void
fetch_check(struct fetch *f)
{
	struct fetch_xfer	*x;
	CURLMsg			*msg;
	CURLcode		 code;
	char			*priv;
	int			 left;

	while (!f->closing &&
	    (msg = curl_multi_info_read(f->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		code = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		x = (struct fetch_xfer *)(void *)priv;
		curl_multi_remove_handle(f->multi, x->easy);
		fetch_unlink(x);
		if (x->too_big)
			fetch_finish(x, FETCH_ETOOBIG, "answer too large");
		else if (code != CURLE_OK)
			fetch_finish(x, (int)code, x->errbuf[0] != '\0' ?
			    x->errbuf : curl_easy_strerror(code));
		else
			fetch_finish(x, 0, NULL);
		fetch_free_xfer(x);
	}
}

/* ---- curl's callbacks into the loop -------------------------------- */

static void
fetch_action(struct fetch *f, curl_socket_t fd, int flags)
{
	int	running;

	curl_multi_socket_action(f->multi, fd, flags, &running);
	fetch_check(f);
}

static void
fetch_poll_cb(uv_poll_t *h, int status, int events)
{
	struct fetch_sock	*s = h->data;
	int			 flags = 0;

	if (status < 0) {
		/*
		 * libuv has stopped the handle (uv__poll_io on POLLERR): curl
		 * is told to look at the socket every way, so it reads the
		 * error now, and if it keeps the socket the handle is
		 * re-armed; otherwise nothing would watch it again and the
		 * transfer would hang until its timeout.
		 */
		fetch_action(s->f, s->fd, CURL_CSELECT_ERR | CURL_CSELECT_IN |
		    CURL_CSELECT_OUT);
		if (!uv_is_closing((uv_handle_t *)&s->poll) && s->events != 0)
			uv_poll_start(&s->poll, s->events, fetch_poll_cb);
		return;
	}
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	fetch_action(s->f, s->fd, flags);
}

static void
fetch_sock_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Stops watching a socket; the memory goes in the close callback. */
static void
fetch_sock_close(struct fetch_sock *s)
{
	struct fetch	*f = s->f;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		f->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, fetch_sock_closed);
}

static int
fetch_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
    void *socketp)
{
	struct fetch		*f = userp;
	struct fetch_sock	*s = socketp;
	int			 events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			fetch_sock_close(s);
			curl_multi_assign(f->multi, fd, NULL);
		}
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->fd = fd;
		s->f = f;
		if (uv_poll_init_socket(f->loop, &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->next = f->socks;
		if (f->socks != NULL)
			f->socks->prev = s;
		f->socks = s;
		curl_multi_assign(f->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	s->events = events;
	return uv_poll_start(&s->poll, events, fetch_poll_cb) == 0 ? 0 : -1;
}

static void
fetch_timeout_cb(uv_timer_t *h)
{
	fetch_action(h->data, CURL_SOCKET_TIMEOUT, 0);
}

/* curl asks to be called back in timeout_ms (-1: never). Calling it back
 * from here would recurse into curl, so even 0 goes through the timer. */
static int
fetch_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct fetch	*f = userp;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&f->timer);
	else
		uv_timer_start(&f->timer, fetch_timeout_cb, (uint64_t)timeout_ms,
		    0);
	return 0;
}

/* ---- one transfer's data ------------------------------------------ */

static size_t
fetch_write(char *data, size_t size, size_t n, void *ud)
{
	struct fetch_xfer	*x = ud;
	size_t			 len = size * n;

	if (x->len + len > x->max) {
		x->too_big = 1;
		return 0;	/* aborts the transfer */
	}
	if (x->len + len + 1 > x->cap) {
		x->cap = (x->len + len + 1) * 2;
		if (x->cap > x->max + 1)
			x->cap = x->max + 1;
		x->buf = xrealloc(x->buf, x->cap);
	}
	memcpy(x->buf + x->len, data, len);
	x->len += len;
	x->buf[x->len] = '\0';
	return len;
}

/* Notes Retry-After (in seconds; the HTTP-date form is not used by the
 * APIs we talk to, and counts as absent). */
static size_t
fetch_header(char *data, size_t size, size_t n, void *ud)
{
	struct fetch_xfer	*x = ud;
	size_t			 len = size * n;
	const char		*name = "retry-after:";
	char			 value[32], *end;
	size_t			 k = strlen(name), i;
	long			 v;

	if (len > k && strncasecmp(data, name, k) == 0) {
		for (i = 0; k + i < len && i < sizeof value - 1; i++)
			value[i] = data[k + i];
		value[i] = '\0';
		v = strtol(value, &end, 10);
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		/* A day at most: a hostile or broken value must not
		 * overflow the callers' arithmetic or park a queue for
		 * good. */
		if (end != value && *end == '\0' && v >= 0)
			x->retry_after = v < 86400 ? v : 86400;
	}
	return len;
}

static struct curl_slist *
fetch_add_header(struct curl_slist *list, const char *name, const char *v)
{
	char			*line = xasprintf("%s: %s", name, v);
	struct curl_slist	*l = curl_slist_append(list, line);

	free(line);
	return l;
}

/* Sets up the easy handle; 0, or -1 if curl refused an option. */
static int
fetch_setup(struct fetch_xfer *x, const struct fetch_req *req)
{
	CURL		*e = x->easy;
	const char	*method = req->method != NULL ? req->method : "GET";
	CURLcode	 rc = CURLE_OK;

	if (req->content_type != NULL)
		x->headers = fetch_add_header(x->headers, "Content-Type",
		    req->content_type);
	else if (req->body != NULL)	/* not curl's form default */
		x->headers = curl_slist_append(x->headers, "Content-Type:");
	if (req->authorization != NULL)
		x->headers = fetch_add_header(x->headers, "Authorization",
		    req->authorization);
	/* No "Expect: 100-continue" round trip before a body. */
	x->headers = curl_slist_append(x->headers, "Expect:");
	rc |= curl_easy_setopt(e, CURLOPT_URL, req->url);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_write);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, fetch_header);
	rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ?
	    req->timeout_ms : (long)FETCH_TIMEOUT_MS);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    req->connect_timeout_ms > 0 ? req->connect_timeout_ms :
	    (long)FETCH_CONNECT_MS);
	rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Loopback never through a proxy, unless the admin said otherwise. */
	if (getenv("NO_PROXY") == NULL && getenv("no_proxy") == NULL)
		rc |= curl_easy_setopt(e, CURLOPT_NOPROXY,
		    "localhost,127.0.0.1,::1");
	if (req->body != NULL) {
		/* Copied now: the caller's buffer may be gone when curl sends. */
		x->body = xmalloc(req->body_len + 1);
		memcpy(x->body, req->body, req->body_len);
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)req->body_len);
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
	}
	if (strcmp(method, "POST") == 0 && req->body == NULL) {
		/* Without fields curl would send a GET. */
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	}
	if (strcmp(method, "GET") == 0 && req->body == NULL)
		rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "HEAD") == 0)
		rc |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") != 0)
		/* Any other method, a GET with a body included, is named. */
		rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	return rc == CURLE_OK ? 0 : -1;
}

/* ---- the client --------------------------------------------------- */

int
fetch_new(struct fetch **out, uv_loop_t *loop, char **cause)
{
	struct fetch	*f;

	if (!fetch_global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			*cause = xstrdup("cannot initialise libcurl");
			return -1;
		}
		fetch_global_done = 1;
	}
	f = xcalloc(1, sizeof *f);
	f->loop = loop;
	if ((f->multi = curl_multi_init()) == NULL) {
		*cause = xstrdup("cannot create a libcurl multi handle");
		free(f);
		return -1;
	}
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, fetch_socket);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, fetch_timer);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	uv_timer_init(loop, &f->timer);
	f->timer.data = f;
	*out = f;
	return 0;
}

int
fetch_start(struct fetch *f, const struct fetch_req *req, fetch_done_fn *cb,
    void *ud)
{
	struct fetch_xfer	*x;

	if (f->closing || req->url == NULL || cb == NULL)
		return -1;
	x = xcalloc(1, sizeof *x);
	x->f = f;
	x->cb = cb;
	x->ud = ud;
	x->retry_after = -1;
	x->max = req->max_body > 0 && req->max_body < SIZE_MAX / 4 ?
	    req->max_body : FETCH_MAX_BODY;
	x->t0 = clock_mono_ns();
	if ((x->easy = curl_easy_init()) == NULL || fetch_setup(x, req) != 0 ||
	    curl_multi_add_handle(f->multi, x->easy) != CURLM_OK) {
		fetch_free_xfer(x);
		return -1;
	}
	x->next = f->xfers;
	if (f->xfers != NULL)
		f->xfers->prev = x;
	f->xfers = x;
	f->nxfers++;
	return 0;
}

void
fetch_refused(fetch_done_fn *cb, void *ud, int closing)
{
	struct fetch_result	r;

	memset(&r, 0, sizeof r);
	r.error = closing ? FETCH_ECANCELED : FETCH_ESTART;
	r.message = closing ? "closing" : "cannot start the request";
	r.retry_after = -1;
	cb(ud, &r);
}

int
fetch_active(const struct fetch *f)
{
	return f->nxfers;
}

int
fetch_cancel(struct fetch *f, fetch_done_fn *cb, void *ud)
{
	struct fetch_xfer	*x;
	int			 n = 0;

	if (f->closing)
		return 0;
	/* Marked first, then from the head again after each: a callback may
	 * start another request (unmarked, so it runs), which changes the
	 * list. */
	for (x = f->xfers; x != NULL; x = x->next)
		if (x->cb == cb && x->ud == ud)
			x->cancel = 1;	/* never cleared: a cancel nested in
					 * a callback keeps the outer one's */
	for (;;) {
		for (x = f->xfers; x != NULL; x = x->next)
			if (x->cancel)
				break;
		if (x == NULL)
			return n;
		/* Its socket's poll handle is closed through fetch_socket()
		 * (CURL_POLL_REMOVE) or stays with curl's connection cache. */
		curl_multi_remove_handle(f->multi, x->easy);
		fetch_unlink(x);
		fetch_finish(x, FETCH_ECANCELED, "cancelled");
		fetch_free_xfer(x);
		n++;
	}
}

static void
fetch_closed(uv_handle_t *h)
{
	free(h->data);
}

void
fetch_close(struct fetch *f)
{
	struct fetch_xfer	*x;

	if (f->closing)
		return;
	f->closing = 1;
	while ((x = f->xfers) != NULL) {
		curl_multi_remove_handle(f->multi, x->easy);
		fetch_unlink(x);
		fetch_finish(x, FETCH_ECANCELED, "cancelled");
		fetch_free_xfer(x);
	}
	/* Closes the cached connections; their sockets' poll handles are
	 * closed through fetch_socket() and freed in their own callbacks. */
	curl_multi_cleanup(f->multi);
	f->multi = NULL;
	/* Whatever curl did not hand back is closed here: a poll handle must
	 * never outlive the client its callback points to. */
	while (f->socks != NULL)
		fetch_sock_close(f->socks);
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, fetch_closed);
}
