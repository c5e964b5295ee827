/*
 * tg_int.h: the Telegram adapter's state, shared by telegram.c, tg_poll.c
 * and tg_send.c only.
 */
#ifndef STRIGIL_TG_INT_H
#define STRIGIL_TG_INT_H

#include <stdint.h>

#include <uv.h>

#include "engine.h"
#include "fetch.h"
#include "store.h"
#include "telegram.h"

struct tg_update;

/* Backoff after errors: from TG_BACKOFF_MIN_MS doubling up to the cap, plus
 * up to half again of jitter so many daemons do not retry in step. */
#define TG_BACKOFF_MIN_MS	1000
#define TG_BACKOFF_MAX_MS	(5 * 60 * 1000)
#define TG_TEXT_MAX		4096	/* bytes; UTF-16 units are never more */
#define TG_DATA_MAX		64	/* callback_data bytes */

/* What we know of one chat we send to: its token bucket and how long it
 * must wait (rate limit, 429 or backoff). */
struct tg_chat {
	int64_t		 id;
	double		 tokens;
	int64_t		 last_ms;	/* of the last refill */
	int64_t		 until_ms;	/* send nothing before this */
	int		 fails;		/* errors in a row, for backoff */
	struct tg_chat	*next;
};

/* The row being sent: one sendMessage per part of a long text. */
struct tg_out {
	struct store_out row;
	int64_t		 chat;		/* where it goes */
	size_t		 off;		/* of the next part in row.body */
	size_t		 len;		/* of row.body, less white space at the end */
	int		 active;
	char		*neutral;	/* a private reminder's text; owned */
	int64_t		 edit;		/* an edit of this message_id, or 0 */
};

/*
 * What Telegram took but the store has not recorded yet (the database
 * refused the write). Until it is recorded no row is taken: the row would
 * come back as unsent and go to the patient a second time.
 */
struct tg_owed {
	int64_t		 id;		/* the row, 0 when nothing is owed */
	int64_t		 upto;		/* its parts delivered up to here, or 0
					 * when the whole row is sent */
	int		 failed;	/* a record failed (logged once) */
};

/* kv keys (store_kv_*) of the adapter's state. */
#define TG_KV_OFFSET		"telegram.offset"	/* next getUpdates offset */
#define TG_KV_SUMMARY_DAY	"telegram.summary_day"	/* "YYYY-MM-DD" sent */

/* The daemon's HTTP path that receives the webhook's updates. */
#define TG_WEBHOOK_PATH		"/telegram/webhook"
#define TG_SECRET_MAX		256

/* A poll that has not ended this long after its own transfer timeout is
 * stalled (a lost timer, a socket that never wakes): the watchdog cancels
 * it and polls again. */
#define TG_POLL_SLACK_S		15	/* transfer timeout beyond poll_timeout */
#define TG_WATCHDOG_SLACK_S	30	/* watchdog beyond the transfer timeout */

/* How long a stop waits for the sendMessage in flight, whose answer says
 * whether the patient has the message. Docker gives a stopping container
 * 10 s before SIGKILL. */
#define TG_DRAIN_MS		5000

struct telegram {
	uv_loop_t	*loop;
	struct engine	*e;
	struct sched	*s;
	struct fetch	*f;
	const struct config *cfg;
	char		*base;		/* api_url + "/bot" + token: never logged */
	int64_t		 clinician;	/* 0 when unset */
	long		 poll_timeout;
	double		 rate_chat, rate_global;
	int		 private_reminders;

	/* Receiving. */
	uv_timer_t	 poll_timer;	/* the next poll after a backoff */
	uv_timer_t	 poll_watch;	/* the watchdog of the poll in flight */
	int		 polling;	/* a getUpdates is in flight */
	int64_t		 offset;	/* last update_id + 1, 0 before the first */
	int		 poll_fails;
	int		 stopped;	/* 401: the token is wrong */
	int		 connected;
	uint64_t	 stalls;	/* polls the watchdog cancelled */

	/* Webhook mode (tg_hook.c): set when telegram.webhook_url is. */
	int		 webhook;
	char		*secret;	/* never logged */
	int		 hook_fails;	/* setWebhook tries in a row */

	/* The daily summary (tg_summary.c); summary_min -1 when off. */
	uv_timer_t	 summary_timer;
	int		 summary_min;
	int64_t		 summary_next;	/* when to look again, UTC seconds */

	/* Sending. */
	uv_timer_t	 send_timer;	/* retries and rate limits */
	struct tg_out	 out;
	struct tg_owed	 owed;
	struct tg_chat	*chats;
	double		 gtokens;	/* the global bucket */
	int64_t		 glast_ms;
	int		 flushing;	/* tg_flush() is on the stack */

	int		 handles;	/* open libuv handles */
	int		 closing;
};

/* telegram.c */
char	*tg_url(const struct telegram *, const char *method);
int64_t	 tg_backoff_ms(int fails);
/* A 429's wait: parameters.retry_after, else Retry-After, else 1 s. */
int64_t	 tg_retry_after_ms(const struct fetch_result *r);
void	 tg_call(struct telegram *, const char *method, const char *body,
	     long timeout_ms, void (*done)(void *, const struct fetch_result *),
	     void *ud);

void	 tg_drained(struct telegram *);

/* tg_poll.c */
void	 tg_poll_start(struct telegram *);
void	 tg_poll_stop(struct telegram *);
int	 tg_offset_load(struct telegram *, char **cause);

/* tg_recv.c: one update, however it came. `cur` (or NULL) is the cursor to
 * commit with it. -1 only when the database failed: then nothing of it is
 * stored and it must come again. */
int	 tg_receive(struct telegram *, const struct tg_update *,
	     const struct engine_cursor *cur);
void	 tg_answer_callback(struct telegram *, const char *id,
	     const char *text);
int	 tg_chat_moved(struct telegram *, const char *from, const char *to,
	     const struct engine_cursor *cur, int64_t *n);

/* tg_hook.c */
int	 tg_hook_check(const struct config *, char **cause);
void	 tg_hook_start(struct telegram *);
void	 tg_hook_delete(struct telegram *);
void	 tg_hook_backoff(struct telegram *, const char *method,
	    const struct fetch_result *);

/* tg_summary.c */
int	 tg_summary_start(struct telegram *, char **cause);
void	 tg_summary_poll(struct telegram *);
void	 tg_summary_tick(uv_timer_t *);

/* tg_send.c */
void	 tg_send_free(struct telegram *);
/* The chats' waits from the outbox, at the start. 0 or -1. */
int	 tg_send_restore(struct telegram *);
struct cJSON *tg_keyboard(const char *meta);
int	 tg_button_text(struct telegram *, int64_t chat, const char *data,
	     char **text);

#endif
