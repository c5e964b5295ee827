/*
 * test_fetch.c: the libcurl-on-libuv client against the project's own HTTP
 * server in the same loop, and a silent TCP server for timeouts.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include "clock.h"
#include "fetch.h"
#include "http.h"
#include "test.h"

struct t {
	uv_loop_t		 loop;
	struct fetch		*f;
	struct http_server	*srv;
	uv_tcp_t		 silent;	/* accepts, never answers */
	uv_tcp_t		 peer;
	int			 peer_open;
	int			 port, silent_port;
	int			 want, got;
	struct fetch_result	 last;
	char			 body[256];
	int			 errors[64];
	uv_timer_t		 timer;
};

/* ---- the server side ---------------------------------------------- */

static int
h_hello(const struct http_request *req, struct http_response *res, void *ud)
{
	(void)req;
	(void)ud;
	http_response_printf(res, "hi");
	return 0;
}

static int
h_echo(const struct http_request *req, struct http_response *res, void *ud)
{
	const char	*auth = http_request_header(req, "Authorization");
	const char	*type = http_request_header(req, "Content-Type");

	(void)ud;
	http_response_printf(res, "%s|%s|%.*s", auth ? auth : "-",
	    type ? type : "-", (int)req->body_len, req->body);
	return 0;
}

static int
h_limited(const struct http_request *req, struct http_response *res, void *ud)
{
	(void)req;
	(void)ud;
	res->status = 429;
	http_response_header(res, "Retry-After", "7");
	http_response_printf(res, "{\"ok\":false}");
	return 0;
}

/* A Retry-After past any sense: the client caps it at a day. */
static int
h_limited_long(const struct http_request *req, struct http_response *res,
    void *ud)
{
	(void)req;
	(void)ud;
	res->status = 429;
	http_response_header(res, "Retry-After", "99999999999999999");
	return 0;
}

static int
h_big(const struct http_request *req, struct http_response *res, void *ud)
{
	char	chunk[1024];
	int	i;

	(void)req;
	(void)ud;
	memset(chunk, 'x', sizeof chunk);
	for (i = 0; i < 100; i++)
		http_response_append(res, chunk, sizeof chunk);
	return 0;
}

static void
t_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	static char	sink[4096];

	(void)h;
	(void)size;
	*buf = uv_buf_init(sink, sizeof sink);
}

static void
t_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	if (n < 0)
		uv_read_stop(s);
}

static void
t_silent_conn(uv_stream_t *server, int status)
{
	struct t	*t = server->data;

	if (status != 0 || t->peer_open)
		return;
	uv_tcp_init(&t->loop, &t->peer);
	if (uv_accept(server, (uv_stream_t *)&t->peer) == 0) {
		t->peer_open = 1;
		uv_read_start((uv_stream_t *)&t->peer, t_alloc, t_read);
	} else
		uv_close((uv_handle_t *)&t->peer, NULL);
}

static void
t_setup(struct t *t)
{
	struct sockaddr_in	sa;
	struct sockaddr_storage	ss;
	int			len = sizeof ss;
	char			*cause = NULL;

	memset(t, 0, sizeof *t);
	uv_loop_init(&t->loop);
	CHECK(http_new(&t->srv, &t->loop, NULL) == 0);
	http_route(t->srv, "GET", "/hello", h_hello, t);
	http_route(t->srv, "POST", "/echo", h_echo, t);
	http_route(t->srv, "PUT", "/echo", h_echo, t);
	http_route(t->srv, "GET", "/limited", h_limited, t);
	http_route(t->srv, "GET", "/limited-long", h_limited_long, t);
	http_route(t->srv, "GET", "/big", h_big, t);
	CHECK(http_listen(t->srv, "127.0.0.1", 0) == 0);
	t->port = http_port(t->srv);
	uv_tcp_init(&t->loop, &t->silent);
	t->silent.data = t;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	CHECK(uv_tcp_bind(&t->silent, (struct sockaddr *)&sa, 0) == 0);
	CHECK(uv_listen((uv_stream_t *)&t->silent, 8, t_silent_conn) == 0);
	uv_tcp_getsockname(&t->silent, (struct sockaddr *)&ss, &len);
	t->silent_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	CHECK(fetch_new(&t->f, &t->loop, &cause) == 0);
	free(cause);
	uv_timer_init(&t->loop, &t->timer);
	t->timer.data = t;
}

/* Closes everything once the requests are done; the loop then ends. */
static void
t_teardown(struct t *t)
{
	if (t->f != NULL)
		fetch_close(t->f);
	t->f = NULL;
	http_close(t->srv);
	uv_close((uv_handle_t *)&t->silent, NULL);
	if (t->peer_open)
		uv_close((uv_handle_t *)&t->peer, NULL);
	uv_close((uv_handle_t *)&t->timer, NULL);
}

static void
t_run(struct t *t)
{
	uv_run(&t->loop, UV_RUN_DEFAULT);
	/* Every handle was closed and freed: nothing is left behind. */
	CHECK_INT(uv_loop_close(&t->loop), 0);
}

static void
t_done(void *ud, const struct fetch_result *r)
{
	struct t	*t = ud;

	if (t->got < 64)
		t->errors[t->got] = r->error;
	t->got++;
	t->last = *r;
	t->last.body = NULL;
	t->last.message = NULL;
	snprintf(t->body, sizeof t->body, "%.*s", (int)(r->len < 200 ?
	    r->len : 200), r->body);
	if (t->got == t->want)
		t_teardown(t);
}

static char *
t_url(int port, const char *path)
{
	static char	url[128];

	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	return url;
}

/* ---- the tests ---------------------------------------------------- */

static void
test_get(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };

	t_setup(&t);
	t.want = 1;
	req.url = t_url(t.port, "/hello");
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	t_run(&t);
	CHECK_INT(t.last.error, 0);
	CHECK_INT(t.last.status, 200);
	CHECK_STR(t.body, "hi");
	CHECK_INT(t.last.retry_after, -1);
}

static void
test_post_headers(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };
	char			body[] = "{\"a\":1}";

	t_setup(&t);
	t.want = 1;
	req.method = "POST";
	req.url = t_url(t.port, "/echo");
	req.body = body;
	req.body_len = strlen(body);
	req.content_type = "application/json";
	req.authorization = "Bearer s3cret";
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	memset(body, 0, sizeof body);	/* the client copied it */
	t_run(&t);
	CHECK_INT(t.last.status, 200);
	CHECK_STR(t.body, "Bearer s3cret|application/json|{\"a\":1}");
}

static void
test_put(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };

	t_setup(&t);
	t.want = 1;
	req.method = "PUT";
	req.url = t_url(t.port, "/echo");
	req.body = "x";
	req.body_len = 1;
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	t_run(&t);
	CHECK_INT(t.last.status, 200);
	CHECK_STR(t.body, "-|-|x");
}

static void
test_retry_after(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };

	t_setup(&t);
	t.want = 1;
	req.url = t_url(t.port, "/limited");
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	t_run(&t);
	CHECK_INT(t.last.error, 0);
	CHECK_INT(t.last.status, 429);
	CHECK_INT(t.last.retry_after, 7);
}

static void
test_retry_after_capped(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };

	t_setup(&t);
	t.want = 1;
	req.url = t_url(t.port, "/limited-long");
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	t_run(&t);
	CHECK_INT(t.last.status, 429);
	CHECK_INT(t.last.retry_after, 86400);
}

/* A POST with no body is still a POST (the route takes only POST). */
static void
test_post_empty(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };

	t_setup(&t);
	t.want = 1;
	req.method = "POST";
	req.url = t_url(t.port, "/echo");
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	t_run(&t);
	CHECK_INT(t.last.status, 200);
	CHECK_STR(t.body, "-|application/x-www-form-urlencoded|");
}

static void
test_too_big(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };

	t_setup(&t);
	t.want = 1;
	req.url = t_url(t.port, "/big");
	req.max_body = 1000;
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	t_run(&t);
	CHECK_INT(t.last.error, FETCH_ETOOBIG);
}

static void
test_refused(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };
	uv_tcp_t		probe;
	struct sockaddr_in	sa;
	struct sockaddr_storage	ss;
	int			len = sizeof ss, port;

	/* A port that was free a moment ago: nothing listens there. */
	t_setup(&t);
	uv_tcp_init(&t.loop, &probe);
	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_bind(&probe, (struct sockaddr *)&sa, 0);
	uv_tcp_getsockname(&probe, (struct sockaddr *)&ss, &len);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	uv_close((uv_handle_t *)&probe, NULL);
	t.want = 1;
	req.url = t_url(port, "/");
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	t_run(&t);
	CHECK_INT(t.last.error, CURLE_COULDNT_CONNECT);
	CHECK_INT(t.last.status, 0);
}

static void
test_timeout(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };
	uint64_t		t0 = clock_mono_ns();

	t_setup(&t);
	t.want = 1;
	req.url = t_url(t.silent_port, "/");
	req.timeout_ms = 300;
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	t_run(&t);
	CHECK_INT(t.last.error, CURLE_OPERATION_TIMEDOUT);
	CHECK(clock_mono_ns() - t0 >= 250000000ull);
}

static void
test_many(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };
	int			i, ok = 0;

	t_setup(&t);
	t.want = 50;
	req.url = t_url(t.port, "/hello");
	for (i = 0; i < 50; i++)
		CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	CHECK_INT(fetch_active(t.f), 50);
	t_run(&t);
	CHECK_INT(t.got, 50);
	for (i = 0; i < 50; i++)
		ok += t.errors[i] == 0;
	CHECK_INT(ok, 50);
}

static void
t_cancel_timer(uv_timer_t *h)
{
	struct t	*t = h->data;

	/* fetch_close() calls back with FETCH_ECANCELED; t_done then tears
	 * everything down (want is 1). */
	fetch_close(t->f);
}

static void
test_cancel_on_close(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };

	t_setup(&t);
	t.want = 1;
	req.url = t_url(t.silent_port, "/");
	req.timeout_ms = 10000;
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	uv_timer_start(&t.timer, t_cancel_timer, 100, 0);
	t_run(&t);
	CHECK_INT(t.last.error, FETCH_ECANCELED);
	CHECK_INT(t.got, 1);
}

/* fetch_cancel(): only the matching request ends, now; the other runs on
 * until the client closes. */
static int	cancelled_error = 1, cancelled_calls;

static void
t_cancelled(void *ud, const struct fetch_result *r)
{
	(void)ud;
	cancelled_error = r->error;
	cancelled_calls++;
}

static void
t_cancel_one(uv_timer_t *h)
{
	struct t	*t = h->data;
	static int	 other;

	CHECK_INT(fetch_active(t->f), 2);
	CHECK_INT(fetch_cancel(t->f, t_cancelled, &other), 0);
	CHECK_INT(fetch_cancel(t->f, t_cancelled, t), 1);
	CHECK_INT(cancelled_calls, 1);
	CHECK_INT(cancelled_error, FETCH_ECANCELED);
	CHECK_INT(fetch_active(t->f), 1);
	CHECK_INT(t->got, 0);
	fetch_close(t->f);	/* t_done: ECANCELED, then teardown */
}

static void
test_cancel_one(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };

	t_setup(&t);
	t.want = 1;
	req.url = t_url(t.silent_port, "/");
	req.timeout_ms = 10000;
	CHECK(fetch_start(t.f, &req, t_cancelled, &t) == 0);
	CHECK(fetch_start(t.f, &req, t_done, &t) == 0);
	uv_timer_start(&t.timer, t_cancel_one, 100, 0);
	t_run(&t);
	CHECK_INT(cancelled_calls, 1);
	CHECK_INT(t.got, 1);
	CHECK_INT(t.last.error, FETCH_ECANCELED);
}

static void
refused_cb(void *ud, const struct fetch_result *r)
{
	*(int *)ud = r->error;
}

/* fetch_refused(): a request that could not start is answered now, as
 * failed on the way, or as cancelled for a closing caller. */
static void
test_refused_answered(void)
{
	int	err = 0;

	fetch_refused(refused_cb, &err, 0);
	CHECK_INT(err, FETCH_ESTART);
	fetch_refused(refused_cb, &err, 1);
	CHECK_INT(err, FETCH_ECANCELED);
}

static void
test_refuses_after_close(void)
{
	struct t		t;
	struct fetch_req	req = { 0 };
	struct fetch		*f;

	t_setup(&t);
	f = t.f;
	t_teardown(&t);		/* closes the client; memory goes later */
	req.url = "http://127.0.0.1:1/";
	CHECK(fetch_start(f, &req, t_done, &t) == -1);
	t_run(&t);
	CHECK_INT(t.got, 0);
}

int
main(void)
{
	clock_init(CLOCK_REAL, -1);
	TEST(test_get);
	TEST(test_post_headers);
	TEST(test_put);
	TEST(test_retry_after);
	TEST(test_retry_after_capped);
	TEST(test_post_empty);
	TEST(test_too_big);
	TEST(test_refused);
	TEST(test_timeout);
	TEST(test_many);
	TEST(test_cancel_on_close);
	TEST(test_cancel_one);
	TEST(test_refuses_after_close);
	TEST(test_refused_answered);
	curl_global_cleanup();
	return TEST_END();
}
