/*
 * matrix.h: the Matrix adapter.
 *
 * The bot is a Matrix account on the clinic's homeserver. It logs in (or
 * takes an access token), long-polls /sync with a filter created once, and
 * feeds each text message and poll answer of its joined rooms to
 * engine_inbound_at() with the event id as external id and the room id as
 * chat; the last message of a batch carries the sync token, so the token
 * and what came before it commit together. Invites from allowed users or
 * servers are joined, others declined. The outbox rows of adapter "matrix"
 * go out as m.notice events (with an HTML body, and a poll for questions
 * with choices), each with a transaction id derived once from the row so a
 * retry can never post twice.
 */
#ifndef STRIGIL_MATRIX_H
#define STRIGIL_MATRIX_H

#include <uv.h>

#define MX_ADAPTER	"matrix"

struct config;
struct engine;
struct matrix;
struct sched;

/* Logs in and starts syncing and the outbox timer. 0, or -1 with *cause
 * (caller frees). The config, engine and scheduler must outlive it. */
int	mx_new(struct matrix **out, uv_loop_t *loop, struct engine *e,
	    struct sched *s, const struct config *cfg, char **cause);
/* Sends what the outbox holds for Matrix; rows put off (429, backoff) go
 * out on the adapter's timer. */
void	mx_flush(struct matrix *m);
/* 1 while syncing works (no error since the last good answer). */
int	mx_connected(const struct matrix *m);
/* Cancels the requests in flight; freed once its handles are closed. */
void	mx_close(struct matrix *m);

#endif
