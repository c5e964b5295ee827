/*
 * telegram.h: the Telegram adapter.
 *
 * Long polling (getUpdates) feeds each update to engine_inbound() with the
 * external id "u<update_id>", so the inbox drops an update seen before (after
 * a restart the unconfirmed ones come again). Button presses become the
 * answer text they stand for. The outbox rows of adapter "telegram" go out
 * through sendMessage, with inline keyboards for questions and reminders,
 * token buckets per chat and in all, and backoff on errors; a row is marked
 * sent only after Telegram took it.
 */
#ifndef STRIGIL_TELEGRAM_H
#define STRIGIL_TELEGRAM_H

#include <uv.h>

#define TG_ADAPTER	"telegram"

struct config;
struct engine;
struct sched;
struct telegram;

/* Starts polling and the outbox timer. 0, or -1 with *cause (caller
 * frees). The config, engine and scheduler must outlive the adapter. */
int	tg_new(struct telegram **out, uv_loop_t *loop, struct engine *e,
	    struct sched *s, const struct config *cfg, char **cause);
/* Sends what the outbox holds for Telegram, as far as the rate limits let
 * it; what is left goes out on the adapter's timer. */
void	tg_flush(struct telegram *t);
/* 1 while polling works (no error since the last good answer). */
int	tg_connected(const struct telegram *t);
/* Cancels the requests in flight and frees the adapter once its handles
 * are closed. */
void	tg_close(struct telegram *t);

#endif
