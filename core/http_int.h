/*
 * http_int.h: what http.c (the server, routes, responses) and http_conn.c
 * (a connection: reading, parsing, timeouts, writing) share. Private to
 * them.
 */
#ifndef STRIGIL_HTTP_INT_H
#define STRIGIL_HTTP_INT_H

#include <http_parser.h>

#include "http.h"

#define HTTP_READ_BUF	8192	/* one read, per connection */
#define HTTP_REFUSED_REASONS	6	/* reasons told apart in the log */
#define HTTP_REASON_MAX		24	/* bytes of one, with the NUL */

struct http_buf {
	char	*data;			/* owned; NUL-terminated when len > 0 */
	size_t	 len, cap;
};

struct http_route {
	char		*method;	/* owned */
	char		*path;		/* owned */
	http_handler_fn	*fn;
	void		*ud;
};

struct http_conn;

/* Refusals of one reason not yet logged. */
struct http_refused {
	char		reason[HTTP_REASON_MAX];
	uint64_t	n;
};

struct http_server {
	uv_tcp_t		 listener;
	uv_loop_t		*loop;
	struct http_limits	 lim;
	struct http_route	*routes;	/* owned, nroutes of them */
	int			 nroutes;
	struct http_conn	*conns;		/* open connections, a list */
	int			 nconns;
	int			 port;
	int			 closing;
	int			 listener_open;	/* not yet closed */

	/* Refused requests, logged rate-limited (http_request_refused()). */
	uv_timer_t		 refused_timer;	/* ends a logging window */
	int			 refused_timer_open;	/* not yet closed */
	int			 refused_window;	/* a line within the interval */
	uint64_t		 refused_total;
	uint64_t		 refused_since_ns;	/* clock_mono_ns(): last line */
	struct http_refused	 refused[HTTP_REFUSED_REASONS];	/* not logged */
};

struct http_conn {
	uv_tcp_t		 tcp;
	uv_timer_t		 timer;
	uv_shutdown_t		 shutdown;
	struct http_server	*srv;
	struct http_conn	*prev, *next;
	int			 handles;	/* open: tcp and timer */
	int			 closing;	/* uv_close() called */
	int			 close_after;	/* no more requests */
	int			 lingering;	/* shut down, draining input */
	int			 eof;		/* the peer sent no more */
	int			 writes;	/* uv_write()s in flight */
	int			 requests;	/* answered so far */

	/* The request being read. */
	http_parser		 parser;
	int			 in_message;	/* bytes of a request arrived */
	int			 error;		/* status to refuse it with */
	int			 keep_alive;
	struct http_buf		 head;		/* url\0 name\0value\0 ... */
	size_t			 url_len;
	size_t			 header_bytes;
	int			 nheaders;
	int			 in_value;	/* last callback was a value */
	int			 headers_done;	/* later fields are trailers */
	size_t			 names[HTTP_HEADERS_MAX];	/* offsets */
	size_t			 values[HTTP_HEADERS_MAX];
	struct http_buf		 body;

	char			 rbuf[HTTP_READ_BUF];
};

/* http.c */
void	http_buf_append(struct http_buf *b, const char *data, size_t len);
void	http_buf_free(struct http_buf *b);
/* Runs the request through the routes into `res` (404, 405, 500 too). */
void	http_dispatch(struct http_server *srv, const struct http_request *req,
	    struct http_response *res);
/* 1 for a status whose answer has no body (1xx, 204, 304). */
int	 http_status_bodiless(int status);
/* Builds the status line and headers; the caller frees the result. */
char	*http_response_head(const struct http_response *res, size_t body_len,
	    int keep_alive, size_t *len);
void	http_response_free(struct http_response *res);
/* A connection has been freed. */
void	http_conn_gone(struct http_server *srv, struct http_conn *c);
/* Counts a refused request, logging it rate-limited. */
void	http_refused(struct http_server *srv, const char *reason);

/* http_conn.c */
/* Accepts a pending connection on the listener. */
void	http_conn_accept(struct http_server *srv);
/* Serves a connection on `sock`, an already connected stream socket (any
 * family), exactly as an accepted one: the fuzzer feeds the real parser
 * through a socketpair with it. It takes the socket, even on failure.
 * 0, or a negative uv error. */
int	http_conn_open(struct http_server *srv, uv_os_sock_t sock);
void	http_conn_close(struct http_conn *c);
const char *http_conn_header(const struct http_conn *c, const char *name);

#endif
