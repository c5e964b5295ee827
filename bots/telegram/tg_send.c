/*
 * tg_send.c: the outbox to Telegram, and the buttons both ways.
 *
 * One sendMessage at a time, oldest row first. A row that may not go yet
 * (its chat's bucket is empty, a 429 or an error backoff is running) is put
 * off in the outbox with store_outbox_retry(), so the rows of other chats go
 * on; every later row of that chat is put off to the same second, so a
 * chat's messages keep their order. A row is marked sent only after
 * Telegram answered 200 (or, for a blocked bot, once the patient is marked
 * unreachable: retrying could never succeed); should the database refuse
 * that record, nothing more is sent until it takes it (tg_settle()).
 *
 * Buttons carry "a:<questionnaire>:<index>:<value>" (an answer to the
 * question asked at that index) or "c:<command>" (a reminder's command).
 * A row whose meta is {"type":"edit","message_id":N} goes out as
 * editMessageText of message N (an answered question); with
 * telegram.private_reminders, a reminder nobody asked for goes out as the
 * neutral text in its meta.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "tg_int.h"
#include "tg_update.h"
#include "xmalloc.h"

#define TG_CLINICIAN	"@clinician"
#define TG_ROW_MAX	6	/* numbers in one row of a scale */
#define TG_SCALE_MAX	24	/* larger scales are typed */

/* ---- buttons ------------------------------------------------------ */

static int
tg_button(cJSON *row, const char *label, const char *data)
{
	cJSON	*b;

	if (strlen(data) > TG_DATA_MAX || label[0] == '\0')
		return -1;
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "text", label);
	cJSON_AddStringToObject(b, "callback_data", data);
	cJSON_AddItemToArray(row, b);
	return 0;
}

/* An answer button; a value too long for callback_data falls back to the
 * option's number, which the dialog takes as well. */
static int
tg_answer_button(cJSON *row, const char *prefix, const char *label,
    const char *value, int number)
{
	char	data[256];

	snprintf(data, sizeof data, "%s%s", prefix, value);
	if (strlen(data) > TG_DATA_MAX)
		snprintf(data, sizeof data, "%s%d", prefix, number);
	return tg_button(row, label, data);
}

static int
tg_keys_scale(cJSON *rows, const char *prefix, int min, int max)
{
	cJSON	*row = NULL;
	char	 v[16];
	int	 n = max - min + 1, nrows, per, i;

	if (n < 1 || n > TG_SCALE_MAX)
		return -1;
	/* Balanced rows: 0-10 is 0-5 and 6-10. */
	nrows = (n + TG_ROW_MAX - 1) / TG_ROW_MAX;
	per = (n + nrows - 1) / nrows;
	for (i = 0; i < n; i++) {
		if (i % per == 0)
			cJSON_AddItemToArray(rows, row = cJSON_CreateArray());
		snprintf(v, sizeof v, "%d", min + i);
		if (tg_answer_button(row, prefix, v, v, i + 1) != 0)
			return -1;
	}
	return 0;
}

static int
tg_keys_options(cJSON *rows, const char *prefix, const cJSON *opts,
    int yesno)
{
	const cJSON	*o;
	cJSON		*row = NULL;
	char		 num[16];
	const char	*label, *id;
	int		 i = 0;

	cJSON_ArrayForEach(o, opts) {
		label = cJSON_GetStringValue(cJSON_GetObjectItem(o, "text"));
		id = cJSON_GetStringValue(cJSON_GetObjectItem(o, "id"));
		if (label == NULL || id == NULL)
			return -1;
		/* Yes and no side by side; choices one a row. */
		if (row == NULL || !yesno)
			cJSON_AddItemToArray(rows, row = cJSON_CreateArray());
		snprintf(num, sizeof num, "%d", ++i);
		/* A choice is sent as its number: an option id could itself
		 * read as another option's number. */
		if (tg_answer_button(row, prefix, label, yesno ? id : num,
		    i) != 0)
			return -1;
	}
	return i > 0 ? 0 : -1;
}

static int
tg_keys_question(cJSON *rows, const cJSON *m)
{
	const char	*qnr, *answer;
	char		 prefix[128];
	cJSON		*row;

	qnr = cJSON_GetStringValue(cJSON_GetObjectItem(m, "questionnaire"));
	answer = cJSON_GetStringValue(cJSON_GetObjectItem(m, "answer"));
	if (qnr == NULL || answer == NULL)
		return -1;
	snprintf(prefix, sizeof prefix, "a:%s:%d:", qnr,
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "index")));
	if (strcmp(answer, "yesno") == 0)
		return tg_keys_options(rows, prefix,
		    cJSON_GetObjectItem(m, "options"), 1);
	if (strcmp(answer, "choice") == 0)
		return tg_keys_options(rows, prefix,
		    cJSON_GetObjectItem(m, "options"), 0);
	if (strcmp(answer, "integer") == 0)
		return tg_keys_scale(rows,  prefix,
		    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "min")),
		    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "max")));
	if (strcmp(answer, "timezone") == 0 || strcmp(answer, "time") == 0) {
		/* The question offers "reply 1" for its suggestion. */
		cJSON_AddItemToArray(rows, row = cJSON_CreateArray());
		return tg_answer_button(row, prefix, "1", "1", 1);
	}
	return -1;	/* free text: nothing to press */
}

static int
tg_keys_reminder(cJSON *rows, const cJSON *m)
{
	const cJSON	*c;
	cJSON		*row = cJSON_CreateArray();
	char		 data[TG_DATA_MAX + 8];

	cJSON_AddItemToArray(rows, row);
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "commands")) {
		if (!cJSON_IsString(c))
			continue;
		snprintf(data, sizeof data, "c:%s", c->valuestring);
		if (tg_button(row, c->valuestring, data) != 0)
			return -1;
	}
	return cJSON_GetArraySize(row) > 0 ? 0 : -1;
}

/* The inline keyboard for an outbox row's metadata, or NULL for none. */
cJSON *
tg_keyboard(const char *meta)
{
	cJSON		*m, *kb, *rows;
	const char	*type;
	int		 rc = -1;

	if (meta == NULL || (m = cJSON_Parse(meta)) == NULL)
		return NULL;
	kb = cJSON_CreateObject();
	rows = cJSON_AddArrayToObject(kb, "inline_keyboard");
	type = cJSON_GetStringValue(cJSON_GetObjectItem(m, "type"));
	if (type != NULL && strcmp(type, "question") == 0)
		rc = tg_keys_question(rows, m);
	else if (type != NULL && strcmp(type, "reminder") == 0)
		rc = tg_keys_reminder(rows, m);
	cJSON_Delete(m);
	if (rc != 0) {
		cJSON_Delete(kb);
		return NULL;
	}
	return kb;
}

/*
 * The text a button stands for: 1 with *text (caller frees) when it should
 * go to the engine, 0 for a button whose question has moved on, -1 for
 * data we never sent. "c:/cmd" buttons are commands; answers are the
 * engine's option ids (engine_answer_text).
 */
int
tg_button_text(struct telegram *t, int64_t chat, const char *data,
    char **text)
{
	char	id[32];

	*text = NULL;
	if (strncmp(data, "c:/", 3) == 0) {
		*text = xstrdup(data + 2);
		return 1;
	}
	snprintf(id, sizeof id, "%" PRId64, chat);
	return engine_answer_text(t->e, TG_ADAPTER, id, data, text);
}

/* ---- sending ------------------------------------------------------ */

static struct tg_chat *
tg_chat_get(struct telegram *t, int64_t id)
{
	struct tg_chat	*c;

	for (c = t->chats; c != NULL; c = c->next)
		if (c->id == id)
			return c;
	c = xcalloc(1, sizeof *c);
	c->id = id;
	c->tokens = t->rate_chat;
	c->last_ms = clock_now_ms();
	c->next = t->chats;
	t->chats = c;
	return c;
}

static void
tg_refill(double *tokens, int64_t *last, double rate, int64_t now)
{
	if (now > *last)
		*tokens += (double)(now - *last) * rate / 1000;
	if (*tokens > rate)
		*tokens = rate;
	*last = now;
}

/* Whole seconds: the outbox's not_before is in seconds, and a chat's
 * later rows must not overtake one put off to the next second. */
static int64_t
tg_round_up(int64_t ms)
{
	return (ms + 999) / 1000 * 1000;
}

/* 0, or -1 if the store could not record it (the row comes back at
 * once: tg_next() must not take it again in the same flush). */
static int
tg_defer(struct telegram *t, struct tg_chat *c, int64_t id, int64_t until)
{
	c->until_ms = tg_round_up(until);
	return store_outbox_retry(engine_store(t->e), id, c->until_ms / 1000);
}

/*
 * Records what Telegram took (t->owed): 0, or -1 while the store refuses.
 * Telegram has no idempotency key, so a row it took must never be taken
 * again: tg_flush() starts nothing until this succeeds.
 */
static int
tg_settle(struct telegram *t)
{
	struct tg_owed	*w = &t->owed;
	struct store	*s = engine_store(t->e);
	int		 rc;

	if (w->id == 0)
		return 0;
	if (w->upto != 0)
		rc = store_outbox_upto(s, w->id, w->upto);
	else
		rc = store_outbox_sent(s, w->id, clock_now());
	if (rc != 0) {
		if (!w->failed)
			log_error("event=telegram_record_failed row=%" PRId64
			    " hint=%s", w->id, log_q("sending waits until "
			    "the database takes the record"));
		w->failed = 1;
		return -1;
	}
	if (w->failed)
		log_info("event=telegram_recorded row=%" PRId64, w->id);
	if (w->upto == 0)
		metrics_adapter_count(TG_ADAPTER, METRICS_SENT, 1);
	memset(w, 0, sizeof *w);
	return 0;
}

/* Telegram took row `id` (up to `upto` of its body, 0 for all of it). */
static void
tg_took(struct telegram *t, int64_t id, int64_t upto)
{
	t->owed.id = id;
	t->owed.upto = upto;
	t->owed.failed = 0;
	tg_settle(t);
}

/* Out of the queue, but recorded as not delivered. 0 or -1 as
 * tg_defer(). */
static int
tg_mark_dropped(struct telegram *t, int64_t id, const char *why)
{
	return store_outbox_drop(engine_store(t->e), id, clock_now(), why);
}

/* The length of the text Telegram will show: it strips white space at the
 * end, and refuses a message (or a last part) of nothing else. */
static size_t
tg_text_len(const char *s)
{
	size_t	n = strlen(s);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' ||
	    s[n - 1] == '\r' || s[n - 1] == '\t'))
		n--;
	return n;
}

/* The end of the part of s[0..len) starting at `off`: at most TG_TEXT_MAX
 * bytes, at a line break when one is near, never inside a UTF-8
 * sequence. The part ending at `len` is the last. */
static size_t
tg_part_end(const char *s, size_t off, size_t len)
{
	size_t	end, i;

	if (len - off <= TG_TEXT_MAX)
		return len;
	end = off + TG_TEXT_MAX;
	for (i = end; i > off + TG_TEXT_MAX / 2; i--)
		if (s[i - 1] == '\n')
			return i;
	while (end > off + 1 && ((unsigned char)s[end] & 0xc0) == 0x80)
		end--;
	return end;
}

/* Where a row's next part starts: what the store says was delivered, if
 * that is a place tg_part_end() could have left (else from the start: a
 * part twice rather than a part lost). */
static size_t
tg_part_start(const struct store_out *row, size_t len)
{
	if (row->sent_upto <= 0 || (uint64_t)row->sent_upto >= len ||
	    ((unsigned char)row->body[row->sent_upto] & 0xc0) == 0x80)
		return 0;
	return (size_t)row->sent_upto;
}

static void	tg_send_done(void *, const struct fetch_result *);

/*
 * telegram.private_reminders: a reminder the patient did not ask for goes
 * out as the engine's neutral text (no session, pressure or steps: a
 * locked screen shows notifications) with one button that asks for the
 * details (/today), whose answer is a reply and so goes out in full.
 * Returns the neutral text (caller frees) and its keyboard, or NULL.
 */
static char *
tg_private(struct telegram *t, const char *meta, cJSON **kb)
{
	cJSON		*m, *rows, *row;
	const char	*type, *neutral, *details;
	char		*text = NULL;

	*kb = NULL;
	if (!t->private_reminders || meta == NULL ||
	    (m = cJSON_Parse(meta)) == NULL)
		return NULL;
	type = cJSON_GetStringValue(cJSON_GetObjectItem(m, "type"));
	neutral = cJSON_GetStringValue(cJSON_GetObjectItem(m, "neutral"));
	details = cJSON_GetStringValue(cJSON_GetObjectItem(m, "details"));
	if (type != NULL && strcmp(type, "reminder") == 0 && neutral != NULL &&
	    neutral[0] != '\0' && !cJSON_IsTrue(cJSON_GetObjectItem(m,
	    "reply"))) {
		text = xstrdup(neutral);
		*kb = cJSON_CreateObject();
		rows = cJSON_AddArrayToObject(*kb, "inline_keyboard");
		cJSON_AddItemToArray(rows, row = cJSON_CreateArray());
		if (tg_button(row, details != NULL && details[0] != '\0' ?
		    details : "/today", "c:/today") != 0) {
			cJSON_Delete(*kb);
			*kb = NULL;
		}
	}
	cJSON_Delete(m);
	return text;
}

/* A row with meta {"type":"edit","message_id":N} edits message N of its
 * chat to the row's text (tg_recv.c queues them for answered questions);
 * through the outbox, an edit waits for the chat's rate limit and 429s
 * like any message. Returns N, or 0 for a message to send. */
static int64_t
tg_edit_of(const char *meta)
{
	cJSON		*m;
	const char	*type;
	int64_t		 id = 0;

	if (meta == NULL || strstr(meta, "\"edit\"") == NULL ||
	    (m = cJSON_Parse(meta)) == NULL)
		return 0;
	type = cJSON_GetStringValue(cJSON_GetObjectItem(m, "type"));
	if (type == NULL || strcmp(type, "edit") != 0 ||
	    tg_json_id(cJSON_GetObjectItem(m, "message_id"), &id) != 0)
		id = 0;
	cJSON_Delete(m);
	return id;
}

static void
tg_send_edit(struct telegram *t)
{
	struct tg_out	*o = &t->out;
	cJSON		*b = cJSON_CreateObject();
	char		 id[32], *body;

	snprintf(id, sizeof id, "%" PRId64, o->chat);
	cJSON_AddRawToObject(b, "chat_id", id);
	snprintf(id, sizeof id, "%" PRId64, o->edit);
	cJSON_AddRawToObject(b, "message_id", id);
	cJSON_AddStringToObject(b, "text", o->row.body);
	body = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	log_debug("event=telegram_edit row=%" PRId64, o->row.id);
	tg_call(t, "editMessageText", body, 0, tg_send_done, t);
	cJSON_free(body);
}

static void
tg_send_part(struct telegram *t)
{
	struct tg_out	*o = &t->out;
	size_t		 end = tg_part_end(o->row.body, o->off, o->len);
	cJSON		*b, *kb;
	char		 id[32], *text, *body;

	if ((o->edit = tg_edit_of(o->row.meta)) != 0) {
		tg_send_edit(t);
		return;
	}
	b = cJSON_CreateObject();
	snprintf(id, sizeof id, "%" PRId64, o->chat);
	cJSON_AddRawToObject(b, "chat_id", id);	/* an Integer, exact */
	free(o->neutral);
	if ((o->neutral = tg_private(t, o->row.meta, &kb)) != NULL) {
		cJSON_AddStringToObject(b, "text", o->neutral);
		if (kb != NULL)
			cJSON_AddItemToObject(b, "reply_markup", kb);
		goto send;
	}
	text = xstrndup(o->row.body + o->off, end - o->off);
	cJSON_AddStringToObject(b, "text", text);
	free(text);
	/* The buttons go under the last part, where the question is. */
	if (end == o->len && (kb = tg_keyboard(o->row.meta)) != NULL)
		cJSON_AddItemToObject(b, "reply_markup", kb);
send:
	body = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	log_debug("event=telegram_send row=%" PRId64 " offset=%zu", o->row.id,
	    o->off);
	tg_call(t, "sendMessage", body, 0, tg_send_done, t);
	cJSON_free(body);
}

/* The chat id an outbox row's `chat` names: 0 with *id, or -1 (no
 * clinician chat configured, or not a chat id). */
static int
tg_chat_id(struct telegram *t, const char *chat, int64_t *id)
{
	char	*end;

	if (strcmp(chat, TG_CLINICIAN) == 0) {
		*id = t->clinician;
		return t->clinician != 0 ? 0 : -1;
	}
	errno = 0;
	*id = strtoll(chat, &end, 10);
	if (*end != '\0' || end == chat || *id == 0 || errno != 0)
		return -1;
	return 0;
}

/* Where a row goes: 0 with *chat, or -1 when it cannot go anywhere. */
static int
tg_destination(struct telegram *t, const struct store_out *row,
    int64_t *chat)
{
	if (tg_chat_id(t, row->chat, chat) == 0)
		return 0;
	if (strcmp(row->chat, TG_CLINICIAN) == 0)
		log_warn("event=telegram_no_clinician_chat row=%" PRId64
		    " hint=\"set telegram.clinician_chat\"", row->id);
	else
		log_warn("event=telegram_bad_chat row=%" PRId64, row->id);
	return -1;
}

/* A chat put off before a restart (a 429, a backoff: store_outbox_waits)
 * waits on, so its newer rows neither go early nor overtake that one. */
static void
tg_wait_restore(void *ud, const char *chat, int64_t not_before)
{
	struct telegram	*t = ud;
	int64_t		 id;

	if (tg_chat_id(t, chat, &id) == 0)
		tg_chat_get(t, id)->until_ms = not_before * 1000;
}

int
tg_send_restore(struct telegram *t)
{
	return store_outbox_waits(engine_store(t->e), TG_ADAPTER, clock_now(),
	    tg_wait_restore, t);
}

/* Takes the next row that may go now and starts it; 0 if one started, 1
 * if one was put off or dropped (look again), -1 if there is none or the
 * store could not record that (the row would come back at once: the send
 * timer tries again later instead). */
static int
tg_next(struct telegram *t, int64_t now)
{
	struct store_out	 row;
	struct tg_chat		*c;
	int64_t			 chat;
	int			 rc;

	if (store_outbox_next(engine_store(t->e), TG_ADAPTER, now / 1000,
	    &row) != 0)
		return -1;
	if (tg_destination(t, &row, &chat) != 0 || tg_text_len(row.body) == 0) {
		/* Never deliverable: out of the queue, or it would block
		 * it; recorded as undelivered. */
		rc = tg_mark_dropped(t, row.id, "undeliverable");
		store_out_clear(&row);
		return rc == 0 ? 1 : -1;
	}
	c = tg_chat_get(t, chat);
	tg_refill(&c->tokens, &c->last_ms, t->rate_chat, now);
	if (c->until_ms > now || c->tokens < 1) {
		rc = tg_defer(t, c, row.id, c->until_ms > now ? c->until_ms :
		    now + (int64_t)((1 - c->tokens) * 1000 / t->rate_chat));
		store_out_clear(&row);
		return rc == 0 ? 1 : -1;
	}
	c->tokens -= 1;
	t->gtokens -= 1;
	t->out.row = row;
	t->out.chat = chat;
	t->out.len = tg_text_len(row.body);
	t->out.off = tg_part_start(&row, t->out.len);
	t->out.active = 1;
	tg_send_part(t);
	return 0;
}

void
tg_flush(struct telegram *t)
{
	int64_t	now;
	int	rc;

	if (t->closing || t->flushing)
		return;
	tg_summary_poll(t);
	if (t->out.active || tg_settle(t) != 0)
		return;
	t->flushing = 1;
	do {
		now = clock_now_ms();
		tg_refill(&t->gtokens, &t->glast_ms, t->rate_global, now);
		/* The global bucket holds the queue; the send timer comes
		 * back within a second. */
		if (t->gtokens < 1)
			break;
		rc = tg_next(t, now);
	} while (rc == 1);
	t->flushing = 0;
}

static void
tg_blocked(struct telegram *t, const struct store_out *row)
{
	log_warn("event=telegram_blocked row=%" PRId64 " patient=%" PRId64,
	    row->id, row->patient_id);
	if (row->patient_id != 0)
		engine_unreachable(t->e, TG_ADAPTER, row->chat, "blocked",
		    clock_now());
}

/* The chat became a supergroup: the row (and the chat's other rows, and
 * its patient) go to the new id, at once. */
static void
tg_send_migrated(struct telegram *t, int64_t to)
{
	struct tg_out	*o = &t->out;
	char		 from[32], dest[32];
	int64_t		 n;

	snprintf(dest, sizeof dest, "%" PRId64, to);
	if (strcmp(o->row.chat, TG_CLINICIAN) == 0) {
		log_warn("event=telegram_clinician_chat_migrated hint=%s",
		    log_q("set telegram.clinician_chat to the new id"));
		t->clinician = to;
		return;
	}
	snprintf(from, sizeof from, "%" PRId64, o->chat);
	if (tg_chat_moved(t, from, dest, NULL, &n) != 0)
		tg_defer(t, tg_chat_get(t, o->chat), o->row.id,
		    clock_now_ms() + tg_backoff_ms(1));
}

/* What to do with the row after an answer other than 200. */
static void
tg_send_failed(struct telegram *t, struct tg_chat *c,
    const struct fetch_result *r)
{
	struct tg_out	*o = &t->out;
	struct tg_error	 err;
	int64_t		 now = clock_now_ms();
	long		 ra;

	memset(&err, 0, sizeof err);
	err.retry_after = -1;
	if (r->error == 0 && r->body != NULL)
		tg_parse_error(r->body, r->len, &err);
	if (o->edit != 0 && r->error == 0 && r->status == 400) {
		/* "message is not modified": it shows the answer already
		 * (a repeat). Another 400 (the message was deleted, is too
		 * old to edit) will not change with retrying. */
		if (strstr(err.description, "message is not modified") != NULL)
			tg_took(t, o->row.id, 0);
		else
			tg_mark_dropped(t, o->row.id, "edit_refused");
		return;
	}
	if (r->error == 0 && r->status == 429) {
		ra = (long)(tg_retry_after_ms(r) / 1000);
		log_info("event=telegram_rate_limited row=%" PRId64
		    " retry_after=%ld", o->row.id, ra);
		metrics_adapter_count(TG_ADAPTER, METRICS_RATE_LIMITED, 1);
		/* Only this chat waits; the others go on. */
		tg_defer(t, c, o->row.id, now + ra * 1000);
		return;
	}
	if (r->error == 0 && r->status == 403) {
		tg_blocked(t, &o->row);
		tg_mark_dropped(t, o->row.id, "blocked");
		return;
	}
	if (r->error == 0 && err.migrate_to != 0) {
		tg_send_migrated(t, err.migrate_to);
		return;
	}
	if (r->error == 0 && r->status == 400) {
		/* Telegram refuses the message itself (a chat that is not
		 * there, a text or keyboard it cannot take): sending it
		 * again would only hold the chat's later messages behind it
		 * for good. Recorded as undelivered, and said loudly. */
		log_error("event=telegram_send_rejected row=%" PRId64
		    " error=%s", o->row.id, log_q(err.description));
		tg_mark_dropped(t, o->row.id, "rejected");
		return;
	}
	/* Network errors, 5xx, and anything else: try again later. */
	c->fails++;
	log_warn("event=telegram_send_failed row=%" PRId64 " status=%ld "
	    "error=%s attempt=%d", o->row.id, r->status,
	    log_q(r->error != 0 ? r->message : err.description), c->fails);
	metrics_adapter_count(TG_ADAPTER, METRICS_RETRIES, 1);
	tg_defer(t, c, o->row.id, now + tg_backoff_ms(c->fails));
}

static void
tg_send_done(void *ud, const struct fetch_result *r)
{
	struct telegram	*t = ud;
	struct tg_out	*o = &t->out;
	struct tg_chat	*c;
	size_t		 end;

	/* While the adapter closes, a send's answer is still recorded
	 * (tg_close() waits for it), but nothing more starts. */
	if (r->error == FETCH_ECANCELED)
		return;
	c = tg_chat_get(t, o->chat);
	log_debug("event=telegram_sent row=%" PRId64 " status=%ld error=%d "
	    "ms=%" PRIu64, o->row.id, r->status, r->error,
	    r->elapsed_ns / 1000000);
	/* A 200 whose body is not {"ok":true} (a proxy's page, a cut
	 * answer) says nothing was sent: it is retried like a 5xx, as
	 * marking it sent could lose the message. */
	if (r->error == 0 && r->status == 200 && tg_parse_ok(r->body, r->len)) {
		c->fails = 0;
		end = tg_part_end(o->row.body, o->off, o->len);
		if (o->neutral == NULL && end < o->len) {
			/* The next part waits for the chat's bucket like
			 * any message; the row keeps its place, and the
			 * store where it goes on, for a restart. */
			tg_took(t, o->row.id, (int64_t)end);
			tg_defer(t, c, o->row.id, clock_now_ms() +
			    (int64_t)(1000 / t->rate_chat));
		} else
			tg_took(t, o->row.id, 0);
	} else
		tg_send_failed(t, c, r);
	store_out_clear(&o->row);
	free(o->neutral);
	o->neutral = NULL;
	o->active = 0;
	if (t->closing)
		tg_drained(t);
	else
		tg_flush(t);
}

void
tg_send_free(struct telegram *t)
{
	struct tg_chat	*c;

	if (t->out.active) {
		store_out_clear(&t->out.row);
		t->out.active = 0;
	}
	if (tg_settle(t) != 0)
		log_warn("event=telegram_unrecorded row=%" PRId64 " hint=%s",
		    t->owed.id, log_q("the message goes again at the next "
		    "start"));
	free(t->out.neutral);
	t->out.neutral = NULL;
	while ((c = t->chats) != NULL) {
		t->chats = c->next;
		free(c);
	}
}
