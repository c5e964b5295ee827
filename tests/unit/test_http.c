/*
 * test_http.c: the HTTP server against a real socket.
 *
 * Each test runs a server on port 0 in a libuv loop on the main thread and
 * a blocking client on a second thread, which tells the loop when it is
 * done (uv_async); the loop then closes the server and must end with every
 * handle closed (uv_loop_close() == 0), which ASan's leak check backs up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "http.h"
#include "test.h"

struct harness {
	uv_loop_t		 loop;
	uv_async_t		 done;
	uv_timer_t		 guard;
	struct http_server	*srv;
	int			 port;
	void			(*client)(struct harness *);
	uint64_t		 refused;	/* http_refused_total() at the end */
};

struct reply {
	int	 status;
	char	 head[4096];
	char	*body;			/* owned */
	size_t	 len;
};

/* ---- the server side ---------------------------------------------- */

static int
h_hello(const struct http_request *req, struct http_response *res, void *ud)
{
	const char	*x = http_request_header(req, "x-test");

	(void)ud;
	http_response_printf(res, "hello %s query=%s x-test=%s", req->method,
	    req->query, x != NULL ? x : "(none)");
	return 0;
}

static int
h_echo(const struct http_request *req, struct http_response *res, void *ud)
{
	(void)ud;
	res->status = 201;
	res->content_type = "application/octet-stream";
	http_response_append(res, req->body, req->body_len);
	return 0;
}

static int
h_fail(const struct http_request *req, struct http_response *res, void *ud)
{
	(void)req;
	(void)ud;
	http_response_printf(res, "never seen");
	return -1;
}

/* A webhook whose caller lacks the secret. */
static int
h_refuse(const struct http_request *req, struct http_response *res,
    void *ud)
{
	(void)ud;
	res->status = 403;
	http_request_refused(req, "wrong_secret");
	return 0;
}

/* A 204 whose handler wrote a body anyway: the server must drop it. */
static int
h_empty(const struct http_request *req, struct http_response *res, void *ud)
{
	(void)req;
	(void)ud;
	res->status = 204;
	http_response_printf(res, "stray");
	return 0;
}

static void
on_done(uv_async_t *a)
{
	struct harness	*h = a->data;

	h->refused = http_refused_total(h->srv);
	http_close(h->srv);
	uv_close((uv_handle_t *)&h->done, NULL);
	uv_close((uv_handle_t *)&h->guard, NULL);
}

static void
on_guard(uv_timer_t *t)
{
	(void)t;
	fprintf(stderr, "test_http: a test hung\n");
	abort();
}

static void *
client_main(void *arg)
{
	struct harness	*h = arg;

	h->client(h);
	uv_async_send(&h->done);
	return NULL;
}

/* Runs `client` against a fresh server with `lim` (NULL: defaults but
 * short timeouts). */
static uint64_t
run(void (*client)(struct harness *), const struct http_limits *lim)
{
	struct harness		h;
	struct http_limits	l;
	pthread_t		th;

	memset(&h, 0, sizeof h);
	if (lim == NULL) {
		http_limits_default(&l);
		l.request_ms = 400;
		l.idle_ms = 400;
		l.linger_ms = 200;
		lim = &l;
	}
	h.client = client;
	CHECK_INT(uv_loop_init(&h.loop), 0);
	CHECK_INT(http_new(&h.srv, &h.loop, lim), 0);
	CHECK_INT(http_route(h.srv, "GET", "/hello", h_hello, NULL), 0);
	CHECK_INT(http_route(h.srv, "POST", "/echo", h_echo, NULL), 0);
	CHECK_INT(http_route(h.srv, "GET", "/fail", h_fail, NULL), 0);
	CHECK_INT(http_route(h.srv, "POST", "/trailer", h_hello, NULL), 0);
	CHECK_INT(http_route(h.srv, "GET", "/empty", h_empty, NULL), 0);
	CHECK_INT(http_route(h.srv, "POST", "/hook", h_refuse, NULL), 0);
	CHECK_INT(http_route(h.srv, "GET", "/hello", h_hello, NULL), UV_EEXIST);
	CHECK_INT(http_route(h.srv, "GET", "nope", h_hello, NULL), UV_EINVAL);
	CHECK_INT(http_port(h.srv), 0);
	CHECK_INT(http_listen(h.srv, "127.0.0.1", 0), 0);
	h.port = http_port(h.srv);
	CHECK(h.port > 0);
	uv_async_init(&h.loop, &h.done, on_done);
	h.done.data = &h;
	uv_timer_init(&h.loop, &h.guard);
	uv_timer_start(&h.guard, on_guard, 30000, 0);
	CHECK_INT(pthread_create(&th, NULL, client_main, &h), 0);
	uv_run(&h.loop, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	CHECK_INT(uv_loop_close(&h.loop), 0);
	return h.refused;
}

/* ---- the client side ---------------------------------------------- */

static int
cl_connect(struct harness *h)
{
	struct sockaddr_in	sa;
	struct timeval		tv = { 5, 0 };
	int			fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)h->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("connect");
		CHECK(0);
	}
	return fd;
}

static void
cl_send(int fd, const char *s, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = send(fd, s, len, MSG_NOSIGNAL)) <= 0)
			return;		/* the server may have closed: fine */
		s += n;
		len -= (size_t)n;
	}
}

static void
cl_says(int fd, const char *s)
{
	cl_send(fd, s, strlen(s));
}

/* Reads one response: 0, or -1 if the connection ended first. */
static int
cl_reply(int fd, struct reply *r)
{
	char		 buf[8192];
	static char	 left[65536];	/* bytes past the last response */
	static size_t	 nleft;
	static int	 leftfd = -1;
	char		*all = NULL, *end, *cl;
	size_t		 len = 0, need;
	ssize_t		 n;

	memset(r, 0, sizeof *r);
	if (leftfd == fd && nleft > 0) {
		all = malloc(nleft + 1);
		memcpy(all, left, nleft);
		len = nleft;
	}
	nleft = 0;
	for (;;) {
		if (all != NULL) {
			all[len] = '\0';
			if ((end = strstr(all, "\r\n\r\n")) != NULL) {
				cl = strstr(all, "Content-Length:");
				need = (size_t)(end + 4 - all) +
				    (cl != NULL && cl < end ?
				    strtoul(cl + 15, NULL, 10) : 0);
				if (len >= need)
					break;
			}
		}
		if ((n = recv(fd, buf, sizeof buf, 0)) <= 0) {
			free(all);
			return -1;
		}
		all = realloc(all, len + (size_t)n + 1);
		memcpy(all + len, buf, (size_t)n);
		len += (size_t)n;
	}
	snprintf(r->head, sizeof r->head, "%.*s", (int)(end + 4 - all), all);
	r->status = atoi(all + 9);
	r->len = need - (size_t)(end + 4 - all);
	r->body = malloc(r->len + 1);
	memcpy(r->body, end + 4, r->len);
	r->body[r->len] = '\0';
	if (len > need && len - need <= sizeof left) {
		memcpy(left, all + need, len - need);
		nleft = len - need;
		leftfd = fd;
	}
	free(all);
	return 0;
}

/* 1 if the server closes the connection (reads nothing more). */
static int
cl_closed(int fd)
{
	char	buf[4096];
	ssize_t	n;

	while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
		;
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void
reply_free(struct reply *r)
{
	free(r->body);
	r->body = NULL;
}

/* ---- the tests ---------------------------------------------------- */

static void
c_get(struct harness *h)
{
	struct reply	r;
	int		fd = cl_connect(h);

	cl_says(fd, "GET /hello?a=1&b=2 HTTP/1.1\r\nHost: x\r\n"
	    "X-Test: abc\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "hello GET query=a=1&b=2 x-test=abc");
	CHECK(strstr(r.head, "Content-Type: text/plain") != NULL);
	CHECK(strstr(r.head, "Connection: keep-alive") != NULL);
	reply_free(&r);
	close(fd);
}

static void
test_get(void)
{
	run(c_get, NULL);
}

static void
c_keepalive(struct harness *h)
{
	struct reply	r;
	int		fd = cl_connect(h);

	/* Two pipelined in one write, the second with a body. */
	cl_says(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
	    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
	    "hello");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "hello GET query= x-test=(none)");
	reply_free(&r);
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 201);
	CHECK_STR(r.body, "hello");
	reply_free(&r);
	/* A third later, chunked, on the same connection. */
	cl_says(fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 201);
	CHECK_STR(r.body, "abcde");
	reply_free(&r);
	close(fd);

	/* HEAD: the GET route's headers (its length too), no body. */
	fd = cl_connect(h);
	cl_says(fd, "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	{
		char	buf[4096];
		ssize_t	n, len = 0;

		while ((n = recv(fd, buf + len, sizeof buf - 1 - (size_t)len,
		    0)) > 0)
			len += n;
		buf[len] = '\0';
		CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
		CHECK(strstr(buf, "Content-Length: 31\r\n") != NULL);
		CHECK(strstr(buf, "Connection: close\r\n") != NULL);
		CHECK(len > 4 && strcmp(buf + len - 4, "\r\n\r\n") == 0);
	}
	close(fd);
}

static void
test_keepalive(void)
{
	run(c_keepalive, NULL);
}

/* A 204 has neither body nor Content-Length, so the answer to the request
 * pipelined after it is read right. */
static void
c_no_content(struct harness *h)
{
	char	buf[4096];
	ssize_t	n, len = 0;
	int	fd = cl_connect(h);

	cl_says(fd, "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	while ((n = recv(fd, buf + len, sizeof buf - 1 - (size_t)len, 0)) > 0)
		len += n;
	buf[len] = '\0';
	CHECK(strncmp(buf, "HTTP/1.1 204 No Content\r\n", 25) == 0);
	CHECK(strstr(buf, "stray") == NULL);
	CHECK(strstr(buf, "\r\n\r\nHTTP/1.1 200 OK\r\n") != NULL);
	CHECK(strstr(buf, "Content-Length: 0") == NULL);
	close(fd);
}

static void
test_no_content(void)
{
	run(c_no_content, NULL);
}

static void
c_not_found(struct harness *h)
{
	struct reply	r;
	int		fd = cl_connect(h);

	cl_says(fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 404);
	reply_free(&r);
	cl_says(fd, "DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 405);
	CHECK(strstr(r.head, "Allow: GET, HEAD\r\n") != NULL);
	reply_free(&r);
	cl_says(fd, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 500);
	CHECK(strstr(r.body, "never seen") == NULL);
	reply_free(&r);
	/* Still usable after all that. */
	cl_says(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 200);
	reply_free(&r);
	close(fd);
}

static void
test_not_found(void)
{
	run(c_not_found, NULL);
}

static void
c_too_large(struct harness *h)
{
	struct reply	 r;
	char		*big;
	int		 fd, i;

	/* A 10 KiB header: 431, then closed. */
	big = malloc(12000);
	memset(big, 'a', 11999);
	big[11999] = '\0';
	memcpy(big, "GET /hello HTTP/1.1\r\nX-Big: ", 28);
	fd = cl_connect(h);
	cl_says(fd, big);
	cl_says(fd, "\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 431);
	CHECK(strstr(r.head, "Connection: close") != NULL);
	reply_free(&r);
	CHECK(cl_closed(fd));
	close(fd);

	/* Too many header fields: 431. */
	fd = cl_connect(h);
	cl_says(fd, "GET /hello HTTP/1.1\r\n");
	for (i = 0; i < 70; i++)
		cl_says(fd, "X-A: b\r\n");
	cl_says(fd, "\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 431);
	reply_free(&r);
	close(fd);

	/* A 3000-byte target: 414. */
	fd = cl_connect(h);
	memcpy(big, "GET /", 5);
	memset(big + 5, 'u', 3000);
	strcpy(big + 3005, " HTTP/1.1\r\n\r\n");
	cl_says(fd, big);
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 414);
	reply_free(&r);
	close(fd);

	/* A body declared over 1 MiB: 413 before it is sent. */
	fd = cl_connect(h);
	cl_says(fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 2000000\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 413);
	reply_free(&r);
	close(fd);

	/* A chunked body that grows over 1 MiB: 413 as it does. */
	fd = cl_connect(h);
	cl_says(fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	memset(big, 'z', 10000);
	for (i = 0; i < 110; i++) {
		cl_says(fd, "2710\r\n");	/* 10000 */
		cl_send(fd, big, 10000);
		cl_says(fd, "\r\n");
	}
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 413);
	reply_free(&r);
	close(fd);
	free(big);
}

static void
test_too_large(void)
{
	run(c_too_large, NULL);
}

static void
c_garbage(struct harness *h)
{
	static const char *const junk[] = {
		"\x01\x02\x03 garbage\r\n\r\n",
		"GET /hello HTTP/1.1\r\nBad Header\r\n\r\n",
		"POST /echo HTTP/1.1\r\nContent-Length: 3\r\n"
		    "Content-Length: 4\r\n\r\nabcd",
		"GET http://[::1 HTTP/1.1\r\n\r\n",
		"GET /hello HTTP/9.9\r\n\r\n",	/* 505 */
	};
	struct reply	r;
	size_t		i;
	int		fd;

	for (i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		fd = cl_connect(h);
		cl_says(fd, junk[i]);
		if (cl_reply(fd, &r) != 0) {
			fprintf(stderr, "junk %zu: no reply\n", i);
			CHECK(0);
		}
		if (r.status != (i == 4 ? 505 : 400))
			fprintf(stderr, "junk %zu: %d\n", i, r.status);
		CHECK_INT(r.status, i == 4 ? 505 : 400);
		reply_free(&r);
		CHECK(cl_closed(fd));
		close(fd);
	}
	/* The server still answers. */
	fd = cl_connect(h);
	cl_says(fd, "GET /hello HTTP/1.0\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 200);
	CHECK(strstr(r.head, "Connection: close") != NULL);
	reply_free(&r);
	CHECK(cl_closed(fd));
	close(fd);
}

static void
test_garbage(void)
{
	run(c_garbage, NULL);
}

static void
c_timeout(struct harness *h)
{
	struct reply	r;
	int		fd, i;

	/* Half a request, then nothing: 408 and closed. */
	fd = cl_connect(h);
	cl_says(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 408);
	reply_free(&r);
	CHECK(cl_closed(fd));
	close(fd);

	/* Trickling a byte at a time does not keep it open. */
	fd = cl_connect(h);
	cl_says(fd, "GET /hello HTTP/1.1\r\n");
	for (i = 0; i < 6; i++) {
		usleep(100000);
		cl_says(fd, "X");
	}
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 408);
	reply_free(&r);
	close(fd);

	/* Connected, silent: closed without a word. */
	fd = cl_connect(h);
	CHECK(cl_closed(fd));
	close(fd);

	/* Idle after an answer: closed. */
	fd = cl_connect(h);
	cl_says(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 200);
	reply_free(&r);
	CHECK(cl_closed(fd));
	close(fd);

	/* Left open at the end: http_close() must close it. */
	cl_connect(h);
}

static void
test_timeout(void)
{
	run(c_timeout, NULL);
}

static void
c_smuggling(struct harness *h)
{
	struct reply	r;
	int		fd;

	/* A space before the colon: a proxy may ignore the header and frame
	 * the body differently, so it is refused (RFC 7230 3.2.4). */
	fd = cl_connect(h);
	cl_says(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n"
	    "\r\nhello");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 400);
	reply_free(&r);
	close(fd);

	/* A chunked body's trailer is not a header of the request. */
	fd = cl_connect(h);
	cl_says(fd, "POST /trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Test: injected\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 200);
	CHECK(r.body != NULL && strstr(r.body, "x-test=(none)") != NULL);
	reply_free(&r);
	close(fd);
}

static void
test_smuggling(void)
{
	run(c_smuggling, NULL);
}

static void
c_limits(struct harness *h)
{
	struct reply	r;
	int		a, b, c;

	/* Two requests per connection: the second says close. */
	a = cl_connect(h);
	cl_says(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(a, &r), 0);
	CHECK(strstr(r.head, "Connection: keep-alive") != NULL);
	reply_free(&r);
	cl_says(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(a, &r), 0);
	CHECK(strstr(r.head, "Connection: close") != NULL);
	reply_free(&r);
	CHECK(cl_closed(a));
	close(a);

	/* Two connections at most: a third is closed at once. */
	usleep(100000);			/* the server sees the last one go */
	a = cl_connect(h);
	b = cl_connect(h);
	cl_says(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(a, &r), 0);
	reply_free(&r);
	cl_says(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(b, &r), 0);
	reply_free(&r);
	c = cl_connect(h);
	cl_says(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(c, &r), -1);
	close(c);
	close(a);
	close(b);
	/* Once they have gone, there is room again. */
	usleep(100000);
	c = cl_connect(h);
	cl_says(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(c, &r), 0);
	CHECK_INT(r.status, 200);
	reply_free(&r);
	close(c);
}

static void
test_limits(void)
{
	struct http_limits	l;

	http_limits_default(&l);
	l.max_requests = 2;
	l.max_conns = 2;
	l.request_ms = 2000;
	l.idle_ms = 2000;
	l.linger_ms = 200;
	run(c_limits, &l);
}

/* Refused POSTs: 30 at once, then after a quiet while 5 more. */
static void
c_refused(struct harness *h)
{
	static const char *const refused[] = {
		"POST /hook HTTP/1.1\r\nHost: x\r\nX-Secret: hdr-secret-1\r\n"
		    "Content-Length: 15\r\n\r\nbody-secret-xyz",
		"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n"
		    "\r\nbody-secret-xyz",
		"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	};
	static const int	 status[] = { 403, 404, 405 };
	struct reply		 r;
	int			 fd = cl_connect(h), i;

	for (i = 0; i < 30; i++) {
		cl_says(fd, refused[i % 3]);
		CHECK_INT(cl_reply(fd, &r), 0);
		CHECK_INT(r.status, status[i % 3]);
		reply_free(&r);
	}
	/* Neither a GET nor an answered request is a refusal. */
	cl_says(fd, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_INT(cl_reply(fd, &r), 0);
	CHECK_INT(r.status, 404);
	reply_free(&r);
	close(fd);
	/* Two intervals: one logs the count, the next (quiet) ends it. */
	usleep(800000);
	fd = cl_connect(h);
	for (i = 0; i < 5; i++) {
		cl_says(fd, refused[0]);
		CHECK_INT(cl_reply(fd, &r), 0);
		CHECK_INT(r.status, 403);
		reply_free(&r);
	}
	close(fd);
}

static void
test_refused(void)
{
	struct http_limits	 l;
	char			 path[] = "/tmp/test_http_log.XXXXXX";
	char			*log, *line, *next, *c;
	int			 fd, saved, lines = 0, first = 0;
	int			 before = test_failed_checks;
	long			 sum = 0, size;
	FILE			*f;

	http_limits_default(&l);
	l.request_ms = 2000;
	l.idle_ms = 2000;
	l.linger_ms = 200;
	l.refused_log_ms = 300;
	/* The log goes to stderr: catch it in a file. */
	CHECK((fd = mkstemp(path)) >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	CHECK_INT(run(c_refused, &l), 35);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fdopen(fd, "r");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	log = calloc(1, (size_t)size + 1);
	CHECK_INT(fread(log, 1, (size_t)size, f), size);
	fclose(f);
	unlink(path);
	CHECK(strstr(log, "no_route:") != NULL);
	CHECK(strstr(log, "secret-") == NULL);	/* no header, no body */
	if (getenv("TEST_VERBOSE") != NULL)
		fprintf(stderr, "%s", log);
	for (line = log; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (strstr(line, "event=webhook_refused") == NULL)
			continue;
		CHECK(strstr(line, "level=warn") != NULL);
		if (lines++ == 0)
			first = strstr(line, " reason=wrong_secret count=1 ") !=
			    NULL;
		if ((c = strstr(line, " count=")) != NULL)
			sum += strtol(c + 7, NULL, 10);
	}
	/* The first at once; a count after the first interval; the first
	 * after the quiet one at once again; the rest at the close. */
	CHECK(first);
	CHECK(lines >= 3 && lines <= 8);
	CHECK_INT(sum, 35);
	if (test_failed_checks != before)
		fprintf(stderr, "lines %d, counted %ld\n", lines, sum);
	free(log);
}

static void
test_response_header(void)
{
	struct http_response	res;

	memset(&res, 0, sizeof res);
	CHECK_INT(http_response_header(&res, "X-A", "b"), 0);
	CHECK_INT(http_response_header(&res, "X-B", "c\r\nInjected: 1"),
	    UV_EINVAL);
	CHECK_INT(http_response_header(&res, "X C", "d"), UV_EINVAL);
	CHECK_INT(http_response_header(&res, "", "d"), UV_EINVAL);
	CHECK_STR(res.headers, "X-A: b\r\n");
	free(res.headers);
	free(res.body);
}

static void
test_bad_listen(void)
{
	uv_loop_t		 loop;
	struct http_server	*srv;

	uv_loop_init(&loop);
	CHECK_INT(http_new(&srv, &loop, NULL), 0);
	CHECK_INT(http_listen(srv, "not-an-address", 0), UV_EINVAL);
	http_close(srv);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
}

int
main(void)
{
	TEST(test_get);
	TEST(test_keepalive);
	TEST(test_no_content);
	TEST(test_not_found);
	TEST(test_too_large);
	TEST(test_garbage);
	TEST(test_timeout);
	TEST(test_smuggling);
	TEST(test_limits);
	TEST(test_refused);
	TEST(test_response_header);
	TEST(test_bad_listen);
	return TEST_END();
}
