/*
 * http.h: a small HTTP/1.1 server on the daemon's libuv loop.
 *
 * It serves the daemon's own endpoints (/healthz, /metrics) and, later, the
 * chat adapters' webhooks. Requests are parsed with http_parser; a handler
 * runs synchronously on the loop, like everything else, and fills in a
 * response that the server writes. Routes match the method and the exact
 * path (not decoded; the query string is not part of it). A GET route also
 * answers HEAD, without the body.
 *
 * Since this faces the network, every input is bounded (struct http_limits):
 * the request target (414), the header block (431), the body (413), the
 * time a request may take to arrive whole (408, against slowloris), the
 * idle time between keep-alive requests, the number of requests on one
 * connection and of open connections. Malformed input gets 400 and the
 * connection is closed; an unknown path 404, a known path with another
 * method 405 with Allow. Refused requests are logged rate-limited (see
 * http_request_refused()).
 *
 * Functions return 0 or a negative uv error code.
 */
#ifndef STRIGIL_HTTP_H
#define STRIGIL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct http_server;

struct http_request {
	const char	*method;	/* "GET", "POST", ... */
	const char	*path;		/* "/healthz", as sent (not decoded) */
	const char	*query;		/* after '?', "" if none, not decoded */
	const char	*body;		/* body_len bytes, then a NUL */
	size_t		 body_len;
	const void	*priv;		/* the server's; see http_request_header */
};

/* The value of the request header `name` (any case), the first if sent
 * more than once, or NULL. Valid during the handler call. */
const char	*http_request_header(const struct http_request *req,
		    const char *name);

/*
 * Refused requests. Anyone who can reach the port can send them, so they
 * are counted, not logged one by one: a handler that refuses a request for
 * want of credentials (a webhook without its secret) calls
 * http_request_refused(), and the server does the same for a POST to a
 * path with no POST route (reason "no_route"). The first refusal is logged
 * at once (warn, event=webhook_refused reason=... count=1); the next ones
 * are only counted, and one line per refused_log_ms (60 s) says how many
 * came meanwhile (count=N seconds=S reasons=no_secret:N,...), as does
 * http_close() for what is left. A quiet interval ends the window: the
 * next refusal is logged at once again. Nothing of the request (headers,
 * body, address) is logged. `reason` is a short word of the caller's, at
 * most 23 bytes, never anything taken from the request.
 */
void		 http_request_refused(const struct http_request *req,
		    const char *reason);
/* Refusals counted since the server started (for /metrics). */
uint64_t	 http_refused_total(const struct http_server *srv);

struct http_response {
	int		 status;	/* 200 unless the handler sets another */
	const char	*content_type;	/* a string constant; text/plain */
	/* The server owns the buffers; fill them with the functions below. */
	char		*body;
	size_t		 len, cap;
	char		*headers;	/* extra "Name: value\r\n" lines */
	size_t		 hlen, hcap;
};

void	http_response_append(struct http_response *res, const char *data,
	    size_t len);
void	http_response_printf(struct http_response *res, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Adds a header; UV_EINVAL if the name or value holds CR, LF or NUL, or
 * the name is empty or has a colon or a space. */
int	http_response_header(struct http_response *res, const char *name,
	    const char *value);

/* A handler fills `res`. It returns 0, or a negative value to have the
 * server answer 500 instead of whatever was filled in. */
typedef int http_handler_fn(const struct http_request *req,
    struct http_response *res, void *ud);

struct http_limits {
	size_t		max_url;	/* request target bytes: 2048 (414) */
	size_t		max_header;	/* header names and values: 8192 (431) */
	int		max_headers;	/* header fields: 64 (431) */
	size_t		max_body;	/* body bytes: 1 MiB (413) */
	int		max_conns;	/* open connections: 64; more are closed */
	int		max_requests;	/* per connection: 100, then close */
	uint64_t	request_ms;	/* a request arrives whole within: 10 s */
	uint64_t	idle_ms;	/* keep-alive idle: 5 s, then close */
	uint64_t	linger_ms;	/* draining input after the last reply */
	uint64_t	refused_log_ms;	/* refusals: a log line per 60 s at most */
};

#define HTTP_HEADERS_MAX	128	/* the cap on max_headers */

void	http_limits_default(struct http_limits *lim);

/* Creates a server on `loop` (limits NULL: the defaults). It owns a TCP
 * handle from here on, so it must be ended with http_close() even if
 * http_listen() is never called or fails. */
int	http_new(struct http_server **out, uv_loop_t *loop,
	    const struct http_limits *lim);
/* Adds a route. `method` is upper case ("GET", "POST"); the strings are
 * copied. UV_EEXIST if (method, path) is taken, UV_EINVAL if the path does
 * not start with '/'. */
int	http_route(struct http_server *srv, const char *method,
	    const char *path, http_handler_fn *fn, void *ud);
/* Binds `addr` (IPv4 or IPv6 literal) and `port` (0: a free port) and
 * starts accepting; logs event=http_listening with the address and port. */
int	http_listen(struct http_server *srv, const char *addr, int port);
/* The bound port, or 0 before http_listen(). */
int	http_port(const struct http_server *srv);
/* Stops listening and closes every connection (answers in flight are
 * dropped). The server is freed once its last handle has closed, from the
 * loop; `srv` must not be used after this call. */
void	http_close(struct http_server *srv);

#endif
