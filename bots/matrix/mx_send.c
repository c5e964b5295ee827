/*
 * mx_send.c: the outbox to Matrix, and poll answers back to text.
 *
 * One PUT /rooms/{roomId}/send/{eventType}/{txnId} at a time, oldest row
 * first. The txnId is "s<prefix>-<row id>" (the prefix is random per
 * database, kv "matrix.txn_prefix"), the same on every retry, so the
 * homeserver answers a retry of a request it already took with the same
 * event instead of posting twice. A room that must wait (429, or a backoff
 * after errors) has its rows put off in the outbox; the other rooms' rows
 * go on. A row is marked sent only after the homeserver took it.
 *
 * Every row is an m.notice with a plain body and an HTML formatted_body. A
 * question with choices lists them numbered in the body (the typed reply
 * works in any client) and is followed by a poll
 * (org.matrix.msc3381.poll.start, txnId "...-poll") whose answer ids carry
 * "a:<questionnaire>:<index>:<value>" like Telegram's buttons. A vote that
 * answers its question ends the poll (org.matrix.msc3381.poll.end, a row of
 * its own).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "mx_int.h"
#include "xmalloc.h"

#define MX_ID_MAX	128	/* bytes of a poll answer id */
#define MX_REPLY_HINT	"Reply with the number or the words."

/* ---- text ---------------------------------------------------------- */

/* HTML-escaped text with line breaks as <br>. Caller frees. */
char *
mx_html_escape(const char *s)
{
	char	*out = xmalloc(strlen(s) * 6 + 1), *p = out;

	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			p = stpcpy(p, "&amp;");
			break;
		case '<':
			p = stpcpy(p, "&lt;");
			break;
		case '>':
			p = stpcpy(p, "&gt;");
			break;
		case '"':
			p = stpcpy(p, "&quot;");
			break;
		case '\'':
			p = stpcpy(p, "&#39;");
			break;
		case '\n':
			p = stpcpy(p, "<br>");
			break;
		default:
			*p++ = *s;
		}
	}
	*p = '\0';
	return out;
}

/* A growing string. */
struct mx_buf {
	char	*s;
	size_t	 len;
};

static void
mx_cat(struct mx_buf *b, const char *s)
{
	size_t	n = strlen(s);

	b->s = xrealloc(b->s, b->len + n + 1);
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

static void
mx_cat_html(struct mx_buf *b, const char *s)
{
	char	*h = mx_html_escape(s);

	mx_cat(b, h);
	free(h);
}

/* One choice of a question: its label and the poll answer id. */
struct mx_choice {
	char	 label[256];
	char	 id[MX_ID_MAX];
};

/*
 * The choices a question offers, from its metadata: 0 with *out (caller
 * frees) and *n, or -1 when it has none to pick from (free text, a zone, a
 * scale too long for a poll).
 */
static int
mx_choices(const cJSON *m, struct mx_choice **out, int *n)
{
	const char	*qnr, *answer, *label, *id;
	const cJSON	*o;
	struct mx_choice *v = NULL;
	char		 prefix[96];
	int		 k = 0, yesno, lo, hi, i;

	*out = NULL;
	*n = 0;
	qnr = cJSON_GetStringValue(cJSON_GetObjectItem(m, "questionnaire"));
	answer = cJSON_GetStringValue(cJSON_GetObjectItem(m, "answer"));
	if (qnr == NULL || answer == NULL || strlen(qnr) > 48)
		return -1;
	snprintf(prefix, sizeof prefix, "a:%s:%d:", qnr,
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "index")));
	yesno = strcmp(answer, "yesno") == 0;
	if (yesno || strcmp(answer, "choice") == 0) {
		cJSON_ArrayForEach(o, cJSON_GetObjectItem(m, "options")) {
			label = cJSON_GetStringValue(cJSON_GetObjectItem(o,
			    "text"));
			id = cJSON_GetStringValue(cJSON_GetObjectItem(o, "id"));
			if (label == NULL || id == NULL || k == MX_POLL_MAX)
				break;
			v = xrealloc(v, (size_t)(k + 1) * sizeof *v);
			snprintf(v[k].label, sizeof v[k].label, "%s", label);
			/* A choice goes back as its number: an option id
			 * could read as another option's number. */
			if (yesno && strlen(id) < 32)
				snprintf(v[k].id, sizeof v[k].id, "%s%s",
				    prefix, id);
			else
				snprintf(v[k].id, sizeof v[k].id, "%s%d",
				    prefix, k + 1);
			k++;
		}
	} else if (strcmp(answer, "integer") == 0) {
		lo = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "min"));
		hi = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "max"));
		if (hi < lo || hi - lo + 1 > MX_POLL_MAX)
			return -1;
		v = xcalloc((size_t)(hi - lo + 1), sizeof *v);
		for (i = lo; i <= hi; i++, k++) {
			snprintf(v[k].label, sizeof v[k].label, "%d", i);
			snprintf(v[k].id, sizeof v[k].id, "%s%d", prefix, i);
		}
	}
	if (k == 0) {
		free(v);
		return -1;
	}
	*out = v;
	*n = k;
	return 0;
}

/* A question's metadata, or NULL. Caller deletes. */
static cJSON *
mx_question(const char *meta)
{
	cJSON		*m;
	const char	*type;

	if (meta == NULL || (m = cJSON_Parse(meta)) == NULL)
		return NULL;
	type = cJSON_GetStringValue(cJSON_GetObjectItem(m, "type"));
	if (type == NULL || strcmp(type, "question") != 0) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

/* The m.notice content of a row. Caller frees (cJSON_free). */
char *
mx_notice(const struct store_out *row)
{
	cJSON			*m = mx_question(row->meta), *o;
	struct mx_choice	*v = NULL;
	struct mx_buf		 plain = { NULL, 0 }, html = { NULL, 0 };
	char			 num[16], *out;
	int			 n = 0, i, list;

	mx_cat(&plain, row->body);
	mx_cat_html(&html, row->body);
	/* Scales are typed; yes/no and choices are listed. */
	list = m != NULL && mx_choices(m, &v, &n) == 0 &&
	    cJSON_GetObjectItem(m, "options") != NULL;
	if (list) {
		mx_cat(&plain, "\n");
		mx_cat(&html, "<ol>");
		for (i = 0; i < n; i++) {
			snprintf(num, sizeof num, "\n%d. ", i + 1);
			mx_cat(&plain, num);
			mx_cat(&plain, v[i].label);
			mx_cat(&html, "<li>");
			mx_cat_html(&html, v[i].label);
			mx_cat(&html, "</li>");
		}
		mx_cat(&plain, "\n\n" MX_REPLY_HINT);
		mx_cat(&html, "</ol><p>" MX_REPLY_HINT "</p>");
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "msgtype", "m.notice");
	cJSON_AddStringToObject(o, "body", plain.s);
	cJSON_AddStringToObject(o, "format", "org.matrix.custom.html");
	cJSON_AddStringToObject(o, "formatted_body", html.s);
	out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cJSON_Delete(m);
	free(v);
	free(plain.s);
	free(html.s);
	return out;
}

/* The poll that follows a question with choices, or NULL. Caller frees
 * (cJSON_free). */
char *
mx_poll(const struct store_out *row)
{
	cJSON			*m = mx_question(row->meta), *o, *p, *q, *a, *x;
	struct mx_choice	*v = NULL;
	char			*out;
	int			 n, i;

	if (m == NULL || mx_choices(m, &v, &n) != 0) {
		cJSON_Delete(m);
		return NULL;
	}
	cJSON_Delete(m);
	o = cJSON_CreateObject();
	p = cJSON_AddObjectToObject(o, "org.matrix.msc3381.poll.start");
	q = cJSON_AddObjectToObject(p, "question");
	cJSON_AddStringToObject(q, "org.matrix.msc1767.text", row->body);
	cJSON_AddStringToObject(q, "body", row->body);
	cJSON_AddStringToObject(p, "kind", "org.matrix.msc3381.poll.disclosed");
	cJSON_AddNumberToObject(p, "max_selections", 1);
	a = cJSON_AddArrayToObject(p, "answers");
	for (i = 0; i < n; i++) {
		x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "id", v[i].id);
		cJSON_AddStringToObject(x, "org.matrix.msc1767.text",
		    v[i].label);
		cJSON_AddItemToArray(a, x);
	}
	/* Clients without polls show this. */
	cJSON_AddStringToObject(o, "org.matrix.msc1767.text", row->body);
	out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	free(v);
	return out;
}

/* ---- the end of a poll ---------------------------------------------- */

#define MX_POLL_END	"org.matrix.msc3381.poll.end"

/*
 * Queues the end of the poll `poll` in `room`, answered with `answer`:
 * clients show it closed, with the vote, as Telegram's question loses its
 * keyboard. A row of its own (meta {"type":"poll_end","poll":...}), so it
 * waits behind the room's rows and a 429 like a message; a crash before it
 * is queued loses only this. 0 or -1.
 */
int
mx_queue_poll_end(struct matrix *m, const char *room, const char *poll,
    const char *answer)
{
	cJSON	*o = cJSON_CreateObject();
	char	*meta, *text;
	int	 rc;

	cJSON_AddStringToObject(o, "type", "poll_end");
	cJSON_AddStringToObject(o, "poll", poll);
	meta = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	text = xasprintf("\xe2\x9c\x93 %s", answer);
	rc = store_outbox_insert(engine_store(m->e), 0, MX_ADAPTER, room, text,
	    meta, clock_now(), NULL);
	free(text);
	cJSON_free(meta);
	return rc;
}

/* The poll a row ends (owned by *meta: cJSON_Delete it), or NULL when the
 * row is no poll end. */
static const char *
mx_ended_poll(const struct store_out *row, cJSON **meta)
{
	const char	*type;

	*meta = row->meta != NULL ? cJSON_Parse(row->meta) : NULL;
	type = cJSON_GetStringValue(cJSON_GetObjectItem(*meta, "type"));
	if (type == NULL || strcmp(type, "poll_end") != 0)
		return NULL;
	return cJSON_GetStringValue(cJSON_GetObjectItem(*meta, "poll"));
}

/* The poll end content of a row (MSC3381: a reference to the poll, and a
 * text for clients without polls), or NULL when the row is no poll end.
 * Caller frees (cJSON_free). */
char *
mx_poll_end(const struct store_out *row)
{
	cJSON		*meta, *o, *rel;
	const char	*poll;
	char		*out = NULL;

	if ((poll = mx_ended_poll(row, &meta)) != NULL) {
		o = cJSON_CreateObject();
		rel = cJSON_AddObjectToObject(o, "m.relates_to");
		cJSON_AddStringToObject(rel, "rel_type", "m.reference");
		cJSON_AddStringToObject(rel, "event_id", poll);
		cJSON_AddObjectToObject(o, MX_POLL_END);
		cJSON_AddStringToObject(o, "org.matrix.msc1767.text",
		    row->body);
		out = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
	}
	cJSON_Delete(meta);
	return out;
}

/* ---- poll answers --------------------------------------------------- */

/*
 * The text a poll answer id stands for: 1 with *text (caller frees) when it
 * should go to the engine, 0 for an answer to a question that has moved
 * on, -1 for an id we never sent (engine_answer_text).
 */
int
mx_answer_text(struct matrix *m, const char *room, const char *id,
    char **text)
{
	return engine_answer_text(m->e, MX_ADAPTER, room, id, text);
}

/* ---- sending ------------------------------------------------------ */

static struct mx_sroom *
mx_sroom_get(struct matrix *m, const char *id)
{
	struct mx_sroom	*c;

	for (c = m->rooms; c != NULL; c = c->next)
		if (strcmp(c->id, id) == 0)
			return c;
	c = xcalloc(1, sizeof *c);
	c->id = xstrdup(id);
	c->next = m->rooms;
	m->rooms = c;
	return c;
}

/* Whole seconds: the outbox's not_before is in seconds, and a room's
 * later rows must not overtake one put off to the next second. */
static int
mx_defer(struct matrix *m, struct mx_sroom *c, int64_t id, int64_t until)
{
	c->until_ms = (until + 999) / 1000 * 1000;
	return store_outbox_retry(engine_store(m->e), id, c->until_ms / 1000);
}

static void	mx_send_done(struct matrix *, void *,
		    const struct fetch_result *);

/* FNV-1a: a short digest of the body for the txnId. */
static uint32_t
mx_digest(const char *s)
{
	uint32_t	h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/*
 * The txnId is the same on every try of a row, so a retry after a lost
 * answer never posts twice. Row ids alone can come back (an erasure
 * deletes the highest rows, a restored backup goes back to lower ones)
 * and a homeserver may remember a txnId for good: the row's creation
 * time and a digest of its text make a new row's txnId its own.
 */
static void
mx_send_part(struct matrix *m)
{
	struct mx_out	*o = &m->out;
	const char	*type;
	char		*content, *room, *path;

	if ((content = mx_poll_end(&o->row)) != NULL)
		type = MX_POLL_END;
	else if (o->part == 0) {
		content = mx_notice(&o->row);
		type = "m.room.message";
	} else {
		content = mx_poll(&o->row);
		type = "org.matrix.msc3381.poll.start";
	}
	room = mx_escape(o->room);
	path = xasprintf("/rooms/%s/send/%s/s%s-%" PRId64 "-%" PRId64 "-%08"
	    PRIx32 "%s", room, type, m->txn_prefix, o->row.id,
	    o->row.created_at, mx_digest(o->row.body),
	    o->part == 0 ? "" : "-poll");
	log_debug("event=matrix_send row=%" PRId64 " part=%d", o->row.id,
	    o->part);
	mx_call(m, "PUT", path, content, 0, mx_send_done, NULL);
	free(path);
	free(room);
	cJSON_free(content);
}

/* A room put off before a restart (a 429, a backoff: store_outbox_waits)
 * waits on, so its newer rows neither go early nor overtake that one. */
static void
mx_wait_restore(void *ud, const char *chat, int64_t not_before)
{
	struct matrix	*m = ud;
	const char	*room = chat;

	if (strcmp(chat, MX_CLINICIAN) == 0)
		room = m->clinician;
	if (room != NULL)
		mx_sroom_get(m, room)->until_ms = not_before * 1000;
}

int
mx_send_restore(struct matrix *m)
{
	return store_outbox_waits(engine_store(m->e), MX_ADAPTER, clock_now(),
	    mx_wait_restore, m);
}

/* Where a row goes: its room (caller frees), or NULL when nowhere. */
static char *
mx_destination(struct matrix *m, const struct store_out *row)
{
	if (strcmp(row->chat, MX_CLINICIAN) == 0) {
		if (m->clinician == NULL) {
			log_warn("event=matrix_no_clinician_room row=%" PRId64
			    " hint=\"set matrix.clinician_room\"", row->id);
			return NULL;
		}
		return xstrdup(m->clinician);
	}
	if (row->chat[0] != '!' || strchr(row->chat, ':') == NULL) {
		log_warn("event=matrix_bad_room row=%" PRId64, row->id);
		return NULL;
	}
	return xstrdup(row->chat);
}

/* Takes the next row that may go now and starts it; 0 if one started, 1
 * if one was put off or dropped (look again), -1 if there is none or the
 * store could not record that (the row would come back at once: the send
 * timer tries again later instead). */
static int
mx_next(struct matrix *m, int64_t now)
{
	struct store_out	 row;
	struct mx_sroom		*c;
	char			*room;
	int			 rc;

	if (store_outbox_next(engine_store(m->e), MX_ADAPTER, now / 1000,
	    &row) != 0)
		return -1;
	if ((room = mx_destination(m, &row)) == NULL || row.body[0] == '\0') {
		rc = store_outbox_drop(engine_store(m->e), row.id, clock_now(),
		    "undeliverable");
		free(room);
		store_out_clear(&row);
		return rc == 0 ? 1 : -1;
	}
	c = mx_sroom_get(m, room);
	if (c->until_ms > now) {
		rc = mx_defer(m, c, row.id, c->until_ms);
		free(room);
		store_out_clear(&row);
		return rc == 0 ? 1 : -1;
	}
	m->out.row = row;
	m->out.room = room;
	m->out.part = c->poll_row == row.id ? 1 : 0;
	m->out.active = 1;
	mx_send_part(m);
	return 0;
}

void
mx_flush(struct matrix *m)
{
	int	rc;

	if (m->closing || m->out.active || m->flushing ||
	    m->session == MX_S_DEAD || m->txn_prefix == NULL)
		return;
	m->flushing = 1;
	do
		rc = mx_next(m, clock_now_ms());
	while (rc == 1);
	m->flushing = 0;
}

/* The room refuses us (we left, or were kicked): the patient cannot be
 * reached there, and retrying could never succeed. */
static void
mx_forbidden(struct matrix *m, const struct store_out *row)
{
	log_warn("event=matrix_forbidden row=%" PRId64 " patient=%" PRId64,
	    row->id, row->patient_id);
	if (row->patient_id != 0)
		engine_unreachable(m->e, MX_ADAPTER, row->chat, "forbidden",
		    clock_now());
	store_outbox_drop(engine_store(m->e), row->id, clock_now(),
	    "forbidden");
}

static void
mx_send_failed(struct matrix *m, struct mx_sroom *c,
    const struct fetch_result *r)
{
	struct mx_out	*o = &m->out;
	struct mx_error	 err;
	int64_t		 now = clock_now_ms(), ms;

	mx_result_error(r, &err);
	if (r->error == 0 && r->status == 429) {
		ms = mx_retry_ms(r, &err);
		log_info("event=matrix_rate_limited row=%" PRId64
		    " retry_ms=%" PRId64, o->row.id, ms);
		metrics_adapter_count(MX_ADAPTER, METRICS_RATE_LIMITED, 1);
		/* Only this room waits; the others go on. */
		mx_defer(m, c, o->row.id, now + ms);
		return;
	}
	if (r->error == 0 && r->status == 403 &&
	    strcmp(err.errcode, "M_FORBIDDEN") == 0) {
		mx_forbidden(m, &o->row);
		return;
	}
	if (r->error == 0 && r->status == 400) {
		/* The homeserver refuses the event itself: sending it again
		 * would only block the room's queue. */
		log_error("event=matrix_send_rejected row=%" PRId64
		    " errcode=%s", o->row.id, log_q(err.errcode));
		store_outbox_drop(engine_store(m->e), o->row.id, clock_now(),
		    "rejected");
		return;
	}
	/* Network errors, 5xx, and anything else: try again later. */
	c->fails++;
	log_warn("event=matrix_send_failed row=%" PRId64 " status=%ld "
	    "errcode=%s attempt=%d", o->row.id, r->status, log_q(r->error != 0 ?
	    "network" : err.errcode), c->fails);
	metrics_adapter_count(MX_ADAPTER, METRICS_RETRIES, 1);
	mx_defer(m, c, o->row.id, now + mx_backoff_ms(c->fails));
}

static void
mx_out_clear(struct mx_out *o)
{
	store_out_clear(&o->row);
	free(o->room);
	o->room = NULL;
	o->active = 0;
}

static void
mx_send_done(struct matrix *m, void *ud, const struct fetch_result *r)
{
	struct mx_out	*o = &m->out;
	struct mx_sroom	*c;
	char		*poll;

	(void)ud;
	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	c = mx_sroom_get(m, o->room);
	log_debug("event=matrix_sent row=%" PRId64 " part=%d status=%ld "
	    "error=%d", o->row.id, o->part, r->status, r->error);
	if (r->error == 0 && r->status == 200) {
		c->fails = 0;
		if (o->part == 0 && (poll = mx_poll(&o->row)) != NULL) {
			cJSON_free(poll);
			c->poll_row = o->row.id;
			o->part = 1;
			mx_send_part(m);
			return;
		}
		c->poll_row = 0;
		if (store_outbox_sent(engine_store(m->e), o->row.id,
		    clock_now()) == 0)
			metrics_adapter_count(MX_ADAPTER, METRICS_SENT, 1);
	} else
		mx_send_failed(m, c, r);
	mx_out_clear(o);
	mx_flush(m);
}

void
mx_send_free(struct matrix *m)
{
	struct mx_sroom	*c;

	if (m->out.active)
		mx_out_clear(&m->out);
	while ((c = m->rooms) != NULL) {
		m->rooms = c->next;
		free(c->id);
		free(c);
	}
}
