/*
 * telegram.h: the Telegram adapter.
 *
 * Updates come by long polling (getUpdates) or, with telegram.webhook_url,
 * by webhook on the daemon's HTTP server. Each goes to engine_inbound_at()
 * with the external id "u<update_id>", so the inbox drops an update seen
 * before (update ids mostly rise, but start again from a random one after
 * a week without updates); when polling, the next offset (kv "telegram.offset") commits in
 * the same transaction. Button presses become the answer text they stand
 * for, are answered, and edit their question to show the answer. The outbox
 * rows of adapter "telegram" go out through sendMessage, with inline
 * keyboards for questions and reminders, token buckets per chat and in all,
 * and backoff on errors; a row is marked sent only after Telegram took it.
 * The clinician chat gets alerts, a daily summary (telegram.summary_time)
 * and may send /clear <patient id>.
 */
#ifndef STRIGIL_TELEGRAM_H
#define STRIGIL_TELEGRAM_H

#include <uv.h>

#define TG_ADAPTER	"telegram"

struct config;
struct engine;
struct http_server;
struct sched;
struct telegram;

/* Starts polling and the outbox timer. 0, or -1 with *cause (caller
 * frees). The config, engine and scheduler must outlive the adapter. */
int	tg_new(struct telegram **out, uv_loop_t *loop, struct engine *e,
	    struct sched *s, const struct config *cfg, char **cause);
/* Sends what the outbox holds for Telegram, as far as the rate limits let
 * it; what is left goes out on the adapter's timer. */
void	tg_flush(struct telegram *t);
/* Webhook mode: serves POST /telegram/webhook on `srv`. Nothing (0) when
 * polling; else 0 or a negative uv error. */
int	tg_routes(struct telegram *t, struct http_server *srv);
/* 1 while polling works (no error since the last good answer). */
int	tg_connected(const struct telegram *t);
/* Cancels the requests in flight and frees the adapter once its handles
 * are closed. */
void	tg_close(struct telegram *t);

#endif
