/*
 * fetch.h: HTTP requests from the event loop, for the chat adapters.
 *
 * libcurl's multi interface driven by libuv: curl tells us which sockets to
 * watch (one uv_poll_t each) and when to wake it (one uv_timer_t); we hand
 * readiness back through curl_multi_socket_action() and read finished
 * transfers after every call. Nothing blocks the loop, and any number of
 * requests run at once (a long poll beside the sends).
 *
 * Every request ends in exactly one call of its callback: with the answer,
 * with a transport error, or with FETCH_ECANCELED when the client closes
 * first. Handles are freed only in their libuv close callbacks.
 */
#ifndef STRIGIL_FETCH_H
#define STRIGIL_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct fetch;

/* The request was cancelled by fetch_close(). */
#define FETCH_ECANCELED	(-1)
/* The answer was larger than fetch_req.max_body. */
#define FETCH_ETOOBIG	(-2)
/* fetch_start() failed on an open client (no memory, an option curl
 * refused): given by fetch_refused(). */
#define FETCH_ESTART	(-3)

struct fetch_req {
	const char	*method;	/* "GET" (default) or "POST", "PUT", ... */
	const char	*url;
	const char	*body;		/* request body, or NULL */
	size_t		 body_len;
	const char	*content_type;	/* e.g. "application/json", or NULL */
	const char	*authorization;	/* a whole header value, or NULL */
	long		 timeout_ms;	/* the whole transfer; 0: 30 s */
	long		 connect_timeout_ms;	/* 0: 10 s */
	size_t		 max_body;	/* answers larger fail; 0: 16 MiB */
};

struct fetch_result {
	int		 error;		/* 0, a CURLcode, or FETCH_E* */
	const char	*message;	/* why, when error != 0 */
	long		 status;	/* HTTP status, 0 if none came */
	const char	*body;		/* NUL-terminated; valid in the callback */
	size_t		 len;
	long		 retry_after;	/* Retry-After header in seconds, or -1 */
	uint64_t	 elapsed_ns;
};

typedef void fetch_done_fn(void *ud, const struct fetch_result *r);

/* Creates a client on `loop`. 0, or -1 with *cause (caller frees). Close
 * with fetch_close(); it is freed once its handles are closed. */
int	fetch_new(struct fetch **out, uv_loop_t *loop, char **cause);
/* Cancels every request still running (each callback is called with
 * FETCH_ECANCELED) and closes the client. */
void	fetch_close(struct fetch *f);

/* Starts a request; the strings are copied, so the caller's may go. 0, or
 * -1 (bad arguments, or the client is closing): then the callback is never
 * called. */
int	fetch_start(struct fetch *f, const struct fetch_req *req,
	    fetch_done_fn *cb, void *ud);
/* For a caller whose fetch_start() failed: calls `cb` now, with
 * FETCH_ECANCELED if the caller is `closing`, else FETCH_ESTART, so the
 * request is retried like one that failed on the way instead of waited
 * for for ever. */
void	fetch_refused(fetch_done_fn *cb, void *ud, int closing);

/* Requests running now. */
int	fetch_active(const struct fetch *f);

/* Cancels the running requests started with this callback and `ud` (a
 * stalled long poll, say): each callback is called now with
 * FETCH_ECANCELED and its handle freed. Returns how many. Not from inside
 * one of this client's callbacks. */
int	fetch_cancel(struct fetch *f, fetch_done_fn *cb, void *ud);

#endif
