/*
 * tg_update.h: reading what the Telegram Bot API sends us.
 *
 * getUpdates answers, webhook bodies and error answers are parsed here into
 * plain structs, so the adapter never walks JSON itself. Ids (update, chat,
 * user, message) are 64-bit: Telegram promises at most 52 significant bits,
 * so they are read from the JSON number as a double and accepted only when
 * whole and within 2^53; anything else is refused rather than rounded into
 * another patient's id. (cJSON's valueint is an int and is never used.)
 */
#ifndef STRIGIL_TG_UPDATE_H
#define STRIGIL_TG_UPDATE_H

#include <stddef.h>
#include <stdint.h>

enum tg_kind {
	TG_OTHER,	/* a kind the bot does not handle; still advances the offset */
	TG_MESSAGE,	/* message (text may be NULL: a photo, a sticker...) */
	TG_CALLBACK	/* callback_query: a button was pressed */
};

struct tg_update {
	int64_t		 update_id;
	enum tg_kind	 kind;
	int64_t		 chat_id;
	int64_t		 user_id;
	int64_t		 message_id;	/* the message, or the one the button is on */
	int		 is_private;	/* chat.type is "private" */
	char		*text;		/* message text or callback data; owned */
	char		*callback_id;	/* callback_query.id; owned */
	/* A button press: the text of the message the button is on and the
	 * label of the button pressed (from its reply_markup), or NULL. */
	char		*msg_text;	/* owned */
	char		*label;		/* owned */
	char		 lang[16];	/* from.language_code, or "" */
	int64_t		 migrate_to;	/* message.migrate_to_chat_id, or 0 */
};

/* An API error answer: {"ok":false,"error_code":..,"description":..}. */
struct tg_error {
	int		 code;		/* error_code, or 0 if absent */
	char		 description[256];
	long		 retry_after;	/* parameters.retry_after, or -1 */
	int64_t		 migrate_to;	/* parameters.migrate_to_chat_id, or 0 */
};

/*
 * Parses a getUpdates answer ({"ok":true,"result":[...]}). Returns 0 with
 * *out (an array of *n updates; free with tg_updates_free) or -1 with *cause
 * (caller frees) when the answer is not one. An update that is readable
 * only as far as its update_id comes back as TG_OTHER, so the offset still
 * moves past it.
 */
int	tg_parse_updates(const char *json, size_t len, struct tg_update **out,
	    int *n, char **cause);
/* Parses one Update object (a webhook body). 0, or -1 with *cause. */
int	tg_parse_update(const char *json, size_t len, struct tg_update *u,
	    char **cause);
void	tg_update_clear(struct tg_update *u);
void	tg_updates_free(struct tg_update *v, int n);

/* Parses an answer with "ok": false. 0, or -1 if it is not JSON of that
 * shape (e.g. an HTML error page from a proxy). */
int	tg_parse_error(const char *json, size_t len, struct tg_error *e);
/* 1 if the answer is JSON with "ok": true, the only answer that says the
 * Bot API did what was asked (a 200 with anything else is a failure). */
int	tg_parse_ok(const char *json, size_t len);

/* Reads a JSON number as a 64-bit id: 0, or -1 if it is not a whole
 * number within +-2^53. For the adapter's own use on sent messages. */
struct cJSON;
int	tg_json_id(const struct cJSON *item, int64_t *id);

#endif
