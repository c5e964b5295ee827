/*
 * mx_int.h: the Matrix adapter's state, shared by matrix.c, mx_session.c,
 * mx_poll.c, mx_room.c and mx_send.c only.
 */
#ifndef STRIGIL_MX_INT_H
#define STRIGIL_MX_INT_H

#include <stdint.h>

#include <uv.h>

#include "engine.h"
#include "fetch.h"
#include "matrix.h"
#include "mx_sync.h"
#include "store.h"

/* Backoff after errors: from MX_BACKOFF_MIN_MS doubling up to the cap, plus
 * up to half again of jitter. */
#define MX_BACKOFF_MIN_MS	1000
#define MX_BACKOFF_MAX_MS	(5 * 60 * 1000)
#define MX_POLL_MAX		20	/* answers in one poll (MSC3381) */

/* kv keys ("matrix.*"); the tokens are secrets and never logged. */
#define MX_KV_SINCE		"matrix.next_batch"
#define MX_KV_FILTER		"matrix.filter"
#define MX_KV_DEVICE		"matrix.device_id"
#define MX_KV_USER		"matrix.user_id"
#define MX_KV_TOKEN		"matrix.access_token"
#define MX_KV_REFRESH		"matrix.refresh_token"
#define MX_KV_TXN		"matrix.txn_prefix"
#define MX_KV_ENCRYPTED		"matrix.encrypted:"	/* + room id */
#define MX_KV_STARTED		"matrix.started_at"	/* ms, first start */

/* The first sync of a database takes messages sent since the adapter
 * first started on it, less this much for the homeserver's clock. */
#define MX_SKEW_MS		(5 * 60 * 1000)

#define MX_CLINICIAN		"@clinician"

enum mx_session_state {
	MX_S_NONE,		/* no token yet */
	MX_S_WORKING,		/* logging in or refreshing */
	MX_S_OK,
	MX_S_DEAD		/* refused for good: the adapter stops */
};

struct matrix;

/* Called with the answer; r->status 401 is only seen when the session
 * could not be restored. ECANCELED when the adapter closes. */
typedef void mx_done_fn(struct matrix *, void *ud,
    const struct fetch_result *r);

/* A request, kept until it ends so it can go again with a new token. */
struct mx_req {
	struct matrix	*m;
	char		*method;
	char		*path;		/* under /_matrix/client/v3, escaped */
	char		*body;		/* or NULL */
	long		 timeout_ms;
	int		 gen;		/* the token generation it went with */
	mx_done_fn	*done;
	void		*ud;
	struct mx_req	*next;		/* in the waiting list */
};

/* What we know of a room we send to. */
struct mx_sroom {
	char		*id;
	int64_t		 until_ms;	/* send nothing before this */
	int		 fails;		/* errors in a row, for backoff */
	int64_t		 poll_row;	/* a row whose notice went, poll next */
	struct mx_sroom	*next;
};

/* The row being sent. */
struct mx_out {
	struct store_out row;
	char		*room;		/* where it goes; owned */
	int		 part;		/* 0 the notice, 1 the poll */
	int		 active;
};

/* One step of handling a sync answer before its messages go in. */
enum mx_task_kind { MX_T_JOIN, MX_T_LEAVE, MX_T_ENCRYPTED, MX_T_GAP };

struct mx_task {
	enum mx_task_kind kind;
	int		 room;		/* index into batch.rooms */
	char		*user;		/* MX_T_ENCRYPTED: whom to invite */
};

/* The sync answer in hand. */
struct mx_batch {
	struct mx_sync	 sync;
	struct mx_task	*tasks;
	int		 ntasks;
	int		 next;		/* the task running or next */
	/* MX_T_GAP: what /messages found, and where it goes on. */
	struct mx_event	*gap;
	int		 ngap;
	int		 gap_room;	/* the room those are of, or -1 */
	char		*gap_from;
	int		 gap_pages;
	char		*new_room;	/* MX_T_ENCRYPTED: the room created */
	int		 step;		/* MX_T_ENCRYPTED: how far it got */
	int		 active;
};

struct matrix {
	uv_loop_t	*loop;
	struct engine	*e;
	struct sched	*s;
	struct fetch	*f;
	char		*api;		/* homeserver + "/_matrix/client/v3" */
	char		*user;		/* as configured */
	char		*self;		/* our full user id once known */
	char		*password;	/* a secret, or NULL */
	char		*clinician;	/* room id, or NULL */
	char		*inviters;	/* allowed inviters, or NULL */
	long		 poll_timeout;

	/* Session. */
	enum mx_session_state session;
	char		*token;		/* access token: a secret */
	char		*refresh;	/* refresh token: a secret, or NULL */
	char		*device;	/* device id, or NULL */
	int		 token_from_config;
	int		 gen;		/* bumped with every new token */
	int64_t		 expires_ms;	/* refresh the token then; 0: never */
	int		 session_fails;
	struct mx_req	*waiting;	/* requests for the next token */
	uv_timer_t	 session_timer;
	int		 polling;	/* syncing has started */

	/* Receiving. */
	char		*since;		/* next_batch; NULL before the first */
	int64_t		 started_ms;	/* kv matrix.started_at */
	char		*filter;	/* filter id, or NULL */
	uv_timer_t	 poll_timer;
	uv_timer_t	 poll_watch;	/* the watchdog of the /sync in flight */
	struct mx_req	*sync_req;	/* that /sync, or NULL */
	uint64_t	 stalls;	/* syncs the watchdog cancelled */
	int		 poll_fails;
	int		 connected;
	struct mx_batch	 batch;

	/* Sending. */
	uv_timer_t	 send_timer;
	struct mx_out	 out;
	struct mx_sroom	*rooms;
	char		*txn_prefix;
	int		 flushing;

	int		 handles;
	int		 closing;
};

/* matrix.c */
int64_t	 mx_backoff_ms(int fails);
char	*mx_escape(const char *s);
/* Returns the request, valid until its callback has run (for
 * mx_req_cancel()), or NULL when it has run already (closing). */
struct mx_req *mx_call(struct matrix *, const char *method, const char *path,
	    const char *body, long timeout_ms, mx_done_fn *done, void *ud);
/* Cancels a request in flight (its callback sees FETCH_ECANCELED): 1, or
 * 0 when it is not in flight (waiting for a token). */
int	 mx_req_cancel(struct matrix *, struct mx_req *);
/* A fetch_result's error answer, or zeroes (retry_after_ms -1). */
void	 mx_result_error(const struct fetch_result *, struct mx_error *);
/* A 429's wait in ms: retry_after_ms, else Retry-After, else 1 s; at
 * least a second, so a server answering 0 cannot start a busy loop. */
int64_t	 mx_retry_ms(const struct fetch_result *, const struct mx_error *);
/* A kv value (caller frees), or NULL when it is absent or on a database
 * error; mx_kv_read() tells the two apart (0, STORE_NOTFOUND or -1). */
char	*mx_kv(struct matrix *, const char *key);
int	 mx_kv_read(struct matrix *, const char *key, char **value);
int	 mx_kv_set(struct matrix *, const char *key, const char *value);

/* mx_session.c */
void	 mx_session_start(struct matrix *);
/* A request came back 401 M_UNKNOWN_TOKEN: it waits for a new token. */
void	 mx_session_lost(struct matrix *, struct mx_req *, int soft);
void	 mx_session_free(struct matrix *);
/* Refreshes the token ahead of its expiry (expires_in_ms), so requests
 * rarely meet a 401. */
void	 mx_session_check(struct matrix *);
/* Sends a kept request again with the current token (matrix.c). */
void	 mx_req_resume(struct mx_req *);

/* mx_poll.c */
void	 mx_poll_start(struct matrix *);
/* The filter id kept in kv for the filter this build asks for, or NULL
 * (none yet, or one made for another filter): caller frees. */
char	*mx_filter_stored(struct matrix *);
void	 mx_batch_clear(struct mx_batch *);
/* The batch's task is over: the next (retry 0) or again after a
 * backoff (retry 1). */
void	 mx_task_done(struct matrix *, int retry);

/* mx_room.c */
int	 mx_inviter_allowed(const struct matrix *, const char *user);
/* Runs a join, leave or encrypted-room task of the batch; calls
 * mx_task_done() when it is over. */
void	 mx_room_task(struct matrix *, struct mx_task *);
int	 mx_queue_notice(struct matrix *, const char *room, const char *text);

/* mx_clinic.c: a text message from someone else in the clinician room,
 * with the cursor to commit (or NULL). 0, or -1 when the database failed
 * (the batch comes again). */
int	 mx_clinic_message(struct matrix *, const char *event_id,
	    const char *text, const struct engine_cursor *cur);

/* mx_send.c */
void	 mx_send_free(struct matrix *);
/* The rooms' waits from the outbox, at the start. 0 or -1. */
int	 mx_send_restore(struct matrix *);
int	 mx_answer_text(struct matrix *, const char *room, const char *id,
	    char **text);
char	*mx_html_escape(const char *s);
/* The event contents of an outbox row: its m.notice, and the poll that
 * follows a question with choices (or NULL). Caller frees (cJSON_free). */
char	*mx_notice(const struct store_out *row);
char	*mx_poll(const struct store_out *row);
/* A poll end row's content, or NULL for any other row. Caller frees
 * (cJSON_free). */
char	*mx_poll_end(const struct store_out *row);
/* Queues the end of a poll a vote answered. 0 or -1. */
int	 mx_queue_poll_end(struct matrix *, const char *room,
	    const char *poll, const char *answer);

#endif
