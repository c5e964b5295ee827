/*
 * fuzz_http.c: bytes from the network into the built-in HTTP server.
 *
 * Each input is one connection: written into one end of a socketpair
 * whose other end the real server adopts (http_conn_open()), so it goes
 * through the same reading, parsing, limits, dispatch and writing as an
 * accepted TCP connection. The input is followed by end of file; the loop
 * runs until the server has closed the connection, while the answers are
 * read and dropped. Tight limits make the 413/414/431 paths reachable
 * with small inputs.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "http_int.h"
#include "log.h"

static uv_loop_t		 fuzz_loop;
static struct http_server	*fuzz_srv;

static int
fuzz_hello(const struct http_request *req, struct http_response *res,
    void *ud)
{
	(void)req;
	(void)ud;
	http_response_printf(res, "hello\n");
	return 0;
}

/* Echoes the body and a header back, as a webhook reads them. */
static int
fuzz_echo(const struct http_request *req, struct http_response *res,
    void *ud)
{
	const char	*secret = http_request_header(req, "X-Secret");

	(void)ud;
	if (secret != NULL && http_response_header(res, "X-Echo", secret) != 0)
		res->status = 400;
	http_response_append(res, req->body, req->body_len);
	return 0;
}

static int
fuzz_fail(const struct http_request *req, struct http_response *res,
    void *ud)
{
	(void)req;
	(void)res;
	(void)ud;
	return -1;
}

static void
fuzz_init(void)
{
	struct http_limits	lim;

	log_set_level(LOG_ERROR);
	uv_loop_init(&fuzz_loop);
	http_limits_default(&lim);
	lim.max_url = 256;
	lim.max_header = 1024;
	lim.max_headers = 16;
	lim.max_body = 4096;
	lim.max_requests = 8;
	/* Never reached while input is pending; EOF always follows it. */
	lim.request_ms = lim.idle_ms = lim.linger_ms = 1000;
	if (http_new(&fuzz_srv, &fuzz_loop, &lim) != 0 ||
	    http_route(fuzz_srv, "GET", "/hello", fuzz_hello, NULL) != 0 ||
	    http_route(fuzz_srv, "POST", "/echo", fuzz_echo, NULL) != 0 ||
	    http_route(fuzz_srv, "GET", "/fail", fuzz_fail, NULL) != 0)
		abort();
}

/* Reads and drops what the server wrote. */
static void
fuzz_drain(int fd)
{
	char	buf[4096];

	while (read(fd, buf, sizeof buf) > 0)
		;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int	sv[2], rounds = 0;
	size_t	off = 0;
	ssize_t	n;

	if (fuzz_srv == NULL)
		fuzz_init();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0)
		abort();
	if (http_conn_open(fuzz_srv, sv[1]) != 0)
		abort();
	/* Write what fits, let the server read, repeat; then end of file. */
	while (off < size) {
		n = write(sv[0], data + off, size - off);
		if (n > 0)
			off += (size_t)n;
		else if (n == -1 && errno != EAGAIN)
			break;		/* the server closed on us: fine */
		uv_run(&fuzz_loop, UV_RUN_NOWAIT);
		fuzz_drain(sv[0]);
	}
	shutdown(sv[0], SHUT_WR);
	while (fuzz_srv->nconns > 0) {
		/* Blocks only for I/O from the peer, which is us, or the
		 * timers above; a hang here is a bug the fuzzer reports. */
		uv_run(&fuzz_loop, rounds++ < 64 ? UV_RUN_NOWAIT :
		    UV_RUN_ONCE);
		fuzz_drain(sv[0]);
	}
	close(sv[0]);
	return 0;
}
