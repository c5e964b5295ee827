/*
 * tg_recv.c: what one update does, whether it came by polling or by the
 * webhook.
 *
 * A patient's message and a live button press go to the engine as
 * "u<update_id>" (the inbox drops a repeat) with the caller's cursor in the
 * same transaction. Everything else (a stale button, a group's chatter, an
 * update kind we do not handle) commits only the cursor. A button press is
 * always answered (answerCallbackQuery), and a live one edits its question
 * to show the answer chosen, without the keyboard. The clinician chat may
 * send /clear <patient id>; no other chat may.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "tg_int.h"
#include "tg_update.h"
#include "xmalloc.h"

#define TG_CLINICIAN_CHAT	"@clinician"	/* the outbox's name for it */

/* ---- calls nobody waits for ---------------------------------------- */

void
tg_answer_callback(struct telegram *t, const char *id, const char *text)
{
	cJSON	*o = cJSON_CreateObject();
	char	*body;

	cJSON_AddStringToObject(o, "callback_query_id", id);
	if (text != NULL)
		cJSON_AddStringToObject(o, "text", text);
	body = cJSON_PrintUnformatted(o);
	tg_call(t, "answerCallbackQuery", body, 0, NULL, NULL);
	cJSON_free(body);
	cJSON_Delete(o);
}

/*
 * The question shows the answer chosen, and its keyboard goes (an edit
 * without reply_markup removes it). Queued in the outbox, so it waits for
 * the chat's rate limit and any 429 like a message; a crash before it is
 * queued loses only this cosmetic edit.
 */
static void
tg_edit_answered(struct telegram *t, const struct tg_update *u,
    const char *answer)
{
	char	 chat[32], meta[64], *text;

	if (u->message_id == 0 || u->msg_text == NULL)
		return;
	text = xasprintf("%s\n\n\xe2\x9c\x93 %s", u->msg_text, answer);
	if (strlen(text) > TG_TEXT_MAX) {
		/* The keyboard still goes; the text stays as it was. */
		free(text);
		text = xstrdup(u->msg_text);
	}
	snprintf(chat, sizeof chat, "%" PRId64, u->chat_id);
	snprintf(meta, sizeof meta, "{\"type\":\"edit\",\"message_id\":%"
	    PRId64 "}", u->message_id);
	if (store_outbox_insert(engine_store(t->e), 0, TG_ADAPTER, chat, text,
	    meta, clock_now(), NULL) != 0)
		log_info("event=telegram_edit_not_queued");
	free(text);
}

/* ---- the clinician chat -------------------------------------------- */

/* A reply to the clinician, queued with the cursor in one transaction. */
static int
tg_clinician_reply(struct telegram *t, const char *text,
    const struct engine_cursor *cur)
{
	struct store	*st = engine_store(t->e);
	int64_t		 now = clock_now();

	if (store_begin(st) != 0)
		return -1;
	if (store_outbox_insert(st, 0, TG_ADAPTER, TG_CLINICIAN_CHAT, text,
	    NULL, now, NULL) != 0 || (cur != NULL && cur->key != NULL &&
	    store_kv_set(st, cur->key, cur->value, now) != 0) ||
	    store_commit(st) != 0) {
		store_rollback(st);
		return -1;
	}
	return 0;
}

/*
 * "/clear <patient id>" from the clinician chat: lifts the patient's
 * clinical hold. engine_clear() commits on its own; a crash before the
 * cursor follows runs it again, which finds no hold and says so.
 */
static int
tg_clinician_clear(struct telegram *t, const char *arg,
    const struct engine_cursor *cur)
{
	char	*reply;
	int	 rc;

	if (engine_clear_command(t->e, arg, clock_now(), &reply) != 0)
		return -1;
	rc = tg_clinician_reply(t, reply, cur);
	free(reply);
	return rc;
}

/* A message in the clinician chat: commands only; the rest is their own
 * conversation. */
static int
tg_clinician(struct telegram *t, const struct tg_update *u,
    const struct engine_cursor *cur)
{
	const char	*s = u->text, *arg;
	size_t		 n;

	if (u->kind == TG_CALLBACK) {
		if (u->callback_id != NULL)
			tg_answer_callback(t, u->callback_id, NULL);
		return engine_cursor(t->e, cur, clock_now());
	}
	if (s == NULL || strncmp(s, "/clear", 6) != 0)
		return engine_cursor(t->e, cur, clock_now());
	/* "/clear 12" or "/clear@the_bot 12" */
	n = strcspn(s, " ");
	arg = s + n;
	if (n != 6 && s[6] != '@')
		return engine_cursor(t->e, cur, clock_now());
	return tg_clinician_clear(t, arg, cur);
}

/* ---- chats that move ----------------------------------------------- */

/* A group became a supergroup: its messages go to the new id from now. */
static int
tg_migrate(struct telegram *t, const struct tg_update *u,
    const struct engine_cursor *cur)
{
	char	from[32], to[32];
	int64_t	n = 0;

	if (u->chat_id == t->clinician) {
		log_warn("event=telegram_clinician_chat_migrated hint=%s",
		    log_q("set telegram.clinician_chat to the new id"));
		t->clinician = u->migrate_to;
	}
	snprintf(from, sizeof from, "%" PRId64, u->chat_id);
	snprintf(to, sizeof to, "%" PRId64, u->migrate_to);
	return tg_chat_moved(t, from, to, cur, &n);
}

/* Moves a chat's patient and queue in one transaction with the cursor. */
int
tg_chat_moved(struct telegram *t, const char *from, const char *to,
    const struct engine_cursor *cur, int64_t *n)
{
	struct store	*st = engine_store(t->e);

	if (store_begin(st) != 0)
		return -1;
	if (store_chat_move(st, TG_ADAPTER, from, to, n) != 0 ||
	    (cur != NULL && cur->key != NULL &&
	    store_kv_set(st, cur->key, cur->value, clock_now()) != 0) ||
	    store_commit(st) != 0) {
		store_rollback(st);
		return -1;
	}
	log_info("event=telegram_chat_migrated patients=%" PRId64, *n);
	return 0;
}

/* ---- one update ---------------------------------------------------- */

static int
tg_press(struct telegram *t, const struct tg_update *u, const char *chat,
    const char *ext, const struct engine_cursor *cur)
{
	char	*text = NULL, lang[16];
	int	 live, rc;

	rc = u->text != NULL ? tg_button_text(t, u->chat_id, u->text, &text) :
	    0;
	if (rc == ENGINE_EDB)
		return -1;	/* the press comes again; it may be live */
	live = rc == 1;
	if (live)
		rc = engine_inbound_at(t->e, TG_ADAPTER, chat, ext, text, cur,
		    clock_now());
	else
		rc = engine_cursor(t->e, cur, clock_now());
	if (rc < 0) {
		free(text);
		return -1;
	}
	/* A stale button is told so, in the patient's language. */
	if (u->callback_id != NULL)
		tg_answer_callback(t, u->callback_id, live ? NULL :
		    engine_text_for(t->e, engine_lang_of(t->e, TG_ADAPTER,
		    chat, lang, sizeof lang), "button_stale"));
	/* Only the first delivery edits: a repeat (rc 1) found it done. */
	if (live && rc == 0)
		tg_edit_answered(t, u, u->label != NULL ? u->label : text);
	free(text);
	return 0;
}

int
tg_receive(struct telegram *t, const struct tg_update *u,
    const struct engine_cursor *cur)
{
	char	chat[32], ext[32];
	int	rc;

	if (u->kind == TG_OTHER)
		return engine_cursor(t->e, cur, clock_now()) < 0 ? -1 : 0;
	if (u->kind == TG_MESSAGE && u->migrate_to != 0)
		return tg_migrate(t, u, cur);
	if (t->clinician != 0 && u->chat_id == t->clinician)
		return tg_clinician(t, u, cur) < 0 ? -1 : 0;
	if (!u->is_private) {
		/* Patients talk to the bot alone; a group is not a patient
		 * (and /clear from one is refused). A button there is still
		 * answered. */
		if (u->text != NULL && strncmp(u->text, "/clear", 6) == 0)
			log_warn("event=telegram_command_refused "
			    "reason=not_the_clinician_chat");
		if (u->kind == TG_CALLBACK && u->callback_id != NULL)
			tg_answer_callback(t, u->callback_id, NULL);
		return engine_cursor(t->e, cur, clock_now()) < 0 ? -1 : 0;
	}
	snprintf(chat, sizeof chat, "%" PRId64, u->chat_id);
	snprintf(ext, sizeof ext, "u%" PRId64, u->update_id);
	if (u->kind == TG_CALLBACK)
		return tg_press(t, u, chat, ext, cur);
	/* No text (a photo, a sticker): the engine answers an empty message
	 * as one it did not understand, which asks for words. */
	rc = engine_inbound_at(t->e, TG_ADAPTER, chat, ext,
	    u->text != NULL ? u->text : "", cur, clock_now());
	return rc < 0 ? -1 : 0;
}
