/*
 * mx_sync.c: parsing /sync, /messages and error answers (see mx_sync.h).
 *
 * Text is taken from m.room.message bodies with the reply fallback ("> "
 * quote lines and the blank line after them) removed, so a patient who
 * answers by replying to the question is read as what they wrote. Edits
 * (m.replace) are ignored: the first version was already handled, and an
 * answer is never taken twice.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mx_sync.h"
#include "xmalloc.h"

#define MX_POLL_RESPONSE_UNSTABLE	"org.matrix.msc3381.poll.response"
#define MX_POLL_RESPONSE		"m.poll.response"

static const char *
mx_str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* The body without a reply fallback; caller frees. */
static char *
mx_strip_reply(const char *body)
{
	const char	*p = body, *nl;

	if (strncmp(p, "> ", 2) != 0)
		return xstrdup(body);
	while (strncmp(p, "> ", 2) == 0 || strncmp(p, ">\n", 2) == 0) {
		if ((nl = strchr(p, '\n')) == NULL)
			return xstrdup(body);	/* all quote: keep it */
		p = nl + 1;
	}
	if (*p == '\n')
		p++;
	return xstrdup(p);
}

/* The answer id of a poll response, or NULL. */
static const char *
mx_poll_answer(const cJSON *content)
{
	const cJSON	*r, *a;

	r = cJSON_GetObjectItemCaseSensitive(content,
	    MX_POLL_RESPONSE_UNSTABLE);
	a = cJSON_GetObjectItemCaseSensitive(r, "answers");
	if (a == NULL)
		a = cJSON_GetObjectItemCaseSensitive(content, "m.selections");
	if (!cJSON_IsArray(a))
		return NULL;
	return cJSON_GetStringValue(cJSON_GetArrayItem(a, 0));
}

/* Fills *ev from one event; -1 if it lacks an id or a sender. */
static int
mx_event_parse(const cJSON *o, struct mx_event *ev)
{
	const cJSON	*content, *rel, *ts;
	const char	*id, *sender, *type, *msgtype, *body, *ans, *rt;

	memset(ev, 0, sizeof *ev);
	id = mx_str(o, "event_id");
	sender = mx_str(o, "sender");
	type = mx_str(o, "type");
	if (id == NULL || sender == NULL || type == NULL)
		return -1;
	ev->event_id = xstrdup(id);
	ev->sender = xstrdup(sender);
	ts = cJSON_GetObjectItemCaseSensitive(o, "origin_server_ts");
	if (cJSON_IsNumber(ts) && ts->valuedouble > 0 &&
	    ts->valuedouble < 9e15)
		ev->ts = (int64_t)ts->valuedouble;
	content = cJSON_GetObjectItemCaseSensitive(o, "content");
	if (!cJSON_IsObject(content))
		return 0;
	rel = cJSON_GetObjectItemCaseSensitive(content, "m.relates_to");
	rt = mx_str(rel, "rel_type");
	if (strcmp(type, "m.room.encryption") == 0) {
		ev->kind = MX_EV_ENCRYPTION;
		return 0;
	}
	if (strcmp(type, "m.room.message") == 0) {
		if (rt != NULL && strcmp(rt, "m.replace") == 0)
			return 0;	/* an edit */
		msgtype = mx_str(content, "msgtype");
		body = mx_str(content, "body");
		if (msgtype == NULL || body == NULL)
			return 0;	/* redacted */
		ev->kind = MX_EV_TEXT;
		/* Media carry a file name as body: the engine gets "" and
		 * asks for words, as it does for a Telegram photo. */
		if (strcmp(msgtype, "m.text") == 0 ||
		    strcmp(msgtype, "m.notice") == 0 ||
		    strcmp(msgtype, "m.emote") == 0)
			ev->text = mx_strip_reply(body);
		else
			ev->text = xstrdup("");
		return 0;
	}
	if (strcmp(type, MX_POLL_RESPONSE_UNSTABLE) == 0 ||
	    strcmp(type, MX_POLL_RESPONSE) == 0) {
		ans = mx_poll_answer(content);
		if (ans == NULL || mx_str(rel, "event_id") == NULL)
			return 0;
		ev->kind = MX_EV_POLL_RESPONSE;
		ev->text = xstrdup(ans);
		ev->relates = xstrdup(mx_str(rel, "event_id"));
	}
	return 0;
}

static void
mx_event_clear(struct mx_event *ev)
{
	free(ev->event_id);
	free(ev->sender);
	free(ev->text);
	free(ev->relates);
	memset(ev, 0, sizeof *ev);
}

void
mx_events_free(struct mx_event *v, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		mx_event_clear(&v[i]);
	free(v);
}

/* Appends the parsable events of the array `a` to *v. */
static void
mx_events_add(const cJSON *a, struct mx_event **v, int *n)
{
	const cJSON	*o;
	struct mx_event	 ev;

	if (!cJSON_IsArray(a))
		return;
	cJSON_ArrayForEach(o, a) {
		if (!cJSON_IsObject(o))
			continue;	/* a null or an array: not an event */
		if (mx_event_parse(o, &ev) != 0) {
			mx_event_clear(&ev);
			continue;
		}
		*v = xrealloc(*v, (size_t)(*n + 1) * sizeof **v);
		(*v)[(*n)++] = ev;
	}
}

/* 1 if the state list `a` holds an m.room.encryption event. */
static int
mx_has_encryption(const cJSON *a)
{
	const cJSON	*o;
	const char	*type;

	cJSON_ArrayForEach(o, a) {
		type = mx_str(o, "type");
		if (type != NULL && strcmp(type, "m.room.encryption") == 0)
			return 1;
	}
	return 0;
}

static struct mx_room *
mx_room_add(struct mx_sync *s, const char *id, enum mx_membership ms)
{
	struct mx_room	*r;

	s->rooms = xrealloc(s->rooms, (size_t)(s->nrooms + 1) *
	    sizeof *s->rooms);
	r = &s->rooms[s->nrooms++];
	memset(r, 0, sizeof *r);
	r->id = xstrdup(id);
	r->membership = ms;
	r->joined = -1;
	return r;
}

/* The summary's m.joined_member_count, or -1 when it was left out (the
 * spec allows that only when it did not change) or is not a count. */
static int
mx_joined_count(const cJSON *room)
{
	const cJSON	*n;

	n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    room, "summary"), "m.joined_member_count");
	if (!cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble > 1e9)
		return -1;
	return (int)n->valuedouble;
}

static void
mx_rooms_join(struct mx_sync *s, const cJSON *join)
{
	const cJSON	*o, *tl, *state;
	struct mx_room	*r;
	int		 i;

	cJSON_ArrayForEach(o, join) {
		if (o->string == NULL || !cJSON_IsObject(o))
			continue;
		r = mx_room_add(s, o->string, MX_JOIN);
		r->joined = mx_joined_count(o);
		tl = cJSON_GetObjectItemCaseSensitive(o, "timeline");
		r->limited = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tl,
		    "limited"));
		if (mx_str(tl, "prev_batch") != NULL)
			r->prev_batch = xstrdup(mx_str(tl, "prev_batch"));
		state = cJSON_GetObjectItemCaseSensitive(o, "state");
		r->encrypted = mx_has_encryption(
		    cJSON_GetObjectItemCaseSensitive(state, "events"));
		mx_events_add(cJSON_GetObjectItemCaseSensitive(tl, "events"),
		    &r->events, &r->nevents);
		for (i = 0; i < r->nevents; i++)
			if (r->events[i].kind == MX_EV_ENCRYPTION)
				r->encrypted = 1;
	}
}

static void
mx_rooms_invite(struct mx_sync *s, const cJSON *invite, const char *self)
{
	const cJSON	*o, *ev, *events, *content;
	struct mx_room	*r;
	const char	*type, *key, *ms;

	cJSON_ArrayForEach(o, invite) {
		if (o->string == NULL || !cJSON_IsObject(o))
			continue;
		r = mx_room_add(s, o->string, MX_INVITE);
		events = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(o, "invite_state"),
		    "events");
		if (!cJSON_IsArray(events))
			continue;
		r->encrypted = mx_has_encryption(events);
		cJSON_ArrayForEach(ev, events) {
			type = mx_str(ev, "type");
			key = mx_str(ev, "state_key");
			content = cJSON_GetObjectItemCaseSensitive(ev,
			    "content");
			ms = mx_str(content, "membership");
			if (type == NULL || key == NULL || ms == NULL ||
			    strcmp(type, "m.room.member") != 0 ||
			    strcmp(key, self) != 0 ||
			    strcmp(ms, "invite") != 0 ||
			    mx_str(ev, "sender") == NULL)
				continue;
			free(r->inviter);
			r->inviter = xstrdup(mx_str(ev, "sender"));
		}
	}
}

static void
mx_rooms_leave(struct mx_sync *s, const cJSON *leave)
{
	const cJSON	*o;

	cJSON_ArrayForEach(o, leave) {
		if (o->string != NULL && cJSON_IsObject(o))
			mx_room_add(s, o->string, MX_LEAVE);
	}
}

/* The m.direct account data, printed, or NULL. */
static char *
mx_direct(const cJSON *root)
{
	const cJSON	*o;
	const char	*type;

	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(root, "account_data"), "events")) {
		type = mx_str(o, "type");
		if (type != NULL && strcmp(type, "m.direct") == 0 &&
		    cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o,
		    "content")))
			return cJSON_PrintUnformatted(
			    cJSON_GetObjectItemCaseSensitive(o, "content"));
	}
	return NULL;
}

int
mx_sync_parse(const char *json, size_t len, const char *self,
    struct mx_sync *out, char **cause)
{
	cJSON		*root;
	const cJSON	*rooms;
	const char	*nb;

	memset(out, 0, sizeof *out);
	if (json == NULL || (root = cJSON_ParseWithLength(json, len)) == NULL) {
		*cause = xstrdup("not JSON");
		return -1;
	}
	if ((nb = mx_str(root, "next_batch")) == NULL) {
		cJSON_Delete(root);
		*cause = xstrdup("no next_batch");
		return -1;
	}
	out->next_batch = xstrdup(nb);
	rooms = cJSON_GetObjectItemCaseSensitive(root, "rooms");
	mx_rooms_join(out, cJSON_GetObjectItemCaseSensitive(rooms, "join"));
	mx_rooms_invite(out, cJSON_GetObjectItemCaseSensitive(rooms, "invite"),
	    self != NULL ? self : "");
	mx_rooms_leave(out, cJSON_GetObjectItemCaseSensitive(rooms, "leave"));
	out->direct = mx_direct(root);
	cJSON_Delete(root);
	return 0;
}

void
mx_sync_clear(struct mx_sync *s)
{
	int	i;

	for (i = 0; i < s->nrooms; i++) {
		free(s->rooms[i].id);
		free(s->rooms[i].prev_batch);
		free(s->rooms[i].inviter);
		mx_events_free(s->rooms[i].events, s->rooms[i].nevents);
	}
	free(s->rooms);
	free(s->next_batch);
	if (s->direct != NULL)
		cJSON_free(s->direct);
	memset(s, 0, sizeof *s);
}

int
mx_page_parse(const char *json, size_t len, struct mx_page *out,
    char **cause)
{
	cJSON		*root;
	const cJSON	*chunk;

	memset(out, 0, sizeof *out);
	if (json == NULL || (root = cJSON_ParseWithLength(json, len)) == NULL) {
		*cause = xstrdup("not JSON");
		return -1;
	}
	chunk = cJSON_GetObjectItemCaseSensitive(root, "chunk");
	if (!cJSON_IsArray(chunk)) {
		cJSON_Delete(root);
		*cause = xstrdup("no chunk");
		return -1;
	}
	mx_events_add(chunk, &out->events, &out->nevents);
	if (mx_str(root, "end") != NULL)
		out->end = xstrdup(mx_str(root, "end"));
	cJSON_Delete(root);
	return 0;
}

void
mx_page_clear(struct mx_page *p)
{
	mx_events_free(p->events, p->nevents);
	free(p->end);
	memset(p, 0, sizeof *p);
}

int
mx_error_parse(const char *json, size_t len, struct mx_error *e)
{
	cJSON		*root;
	const cJSON	*ra;
	const char	*s;

	memset(e, 0, sizeof *e);
	e->retry_after_ms = -1;
	if (json == NULL || (root = cJSON_ParseWithLength(json, len)) == NULL)
		return -1;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return -1;
	}
	if ((s = mx_str(root, "errcode")) != NULL)
		strncpy(e->errcode, s, sizeof e->errcode - 1);
	if ((s = mx_str(root, "error")) != NULL)
		strncpy(e->error, s, sizeof e->error - 1);
	e->soft_logout = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root,
	    "soft_logout"));
	ra = cJSON_GetObjectItemCaseSensitive(root, "retry_after_ms");
	if (cJSON_IsNumber(ra) && ra->valuedouble >= 0 &&
	    ra->valuedouble < 86400000.0)
		e->retry_after_ms = (long)ra->valuedouble;
	cJSON_Delete(root);
	return 0;
}
