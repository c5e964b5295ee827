/*
 * mx_poll.c: receiving by /sync long polling.
 *
 * One /sync at a time, held by the server up to poll_timeout seconds, with
 * the filter made once (kv "matrix.filter") and set_presence=offline. An
 * answer becomes a batch: first its tasks run one after another (join or
 * decline invites, answer encrypted rooms, fill `limited` timelines from
 * /rooms/{roomId}/messages forward from the previous token), then its
 * messages go to the engine, the last one carrying the new sync token
 * (kv "matrix.next_batch") in its own transaction. A batch that fails
 * half way is dropped and the same /sync asked again: the inbox (unique by
 * event id) lets through only what was not stored, so a crash at any point
 * loses nothing and handles nothing twice.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "schedule.h"
#include "mx_int.h"
#include "xmalloc.h"

#define MX_SYNC_SLACK_S		15	/* transfer timeout beyond the poll's */
/* A /sync not ended this long after its own transfer timeout is stalled
 * (a lost timer, a socket that never wakes): the watchdog cancels it and
 * syncs again, as Telegram's poll does. */
#define MX_WATCHDOG_SLACK_S	30
#define MX_GAP_LIMIT		100	/* events a /messages page */
#define MX_GAP_PAGES		50	/* then the gap is given up, logged */

/* What the filter asks for: only what mx_sync.c reads. Membership events
 * are in the timeline, and members lazy-loaded, so that a room where only
 * the patient left still comes, with its summary (the member count):
 * Synapse sends a summary only to a client that lazy-loads members. */
#define MX_FILTER \
	"{\"presence\":{\"types\":[]}," \
	"\"account_data\":{\"types\":[]}," \
	"\"room\":{\"timeline\":{\"limit\":50,\"types\":" \
	"[\"m.room.message\",\"m.room.encryption\",\"m.room.member\"," \
	"\"org.matrix.msc3381.poll.response\",\"m.poll.response\"]}," \
	"\"state\":{\"types\":[\"m.room.encryption\",\"m.room.member\"]," \
	"\"lazy_load_members\":true}," \
	"\"ephemeral\":{\"types\":[]},\"account_data\":{\"types\":[]}}}"

/* One message for the engine (or, from the clinician room, a command). */
struct mx_item {
	const char	*room;
	const char	*event_id;
	char		*text;		/* owned */
	int		 clinician;	/* from matrix.clinician_room */
	int		 vote;		/* a poll answer: text is its answer id */
	const char	*poll;		/* ...and this the poll's event id */
};

static void	mx_sync_done(struct matrix *, void *,
		    const struct fetch_result *);
static void	mx_batch_next(struct matrix *);

static void
mx_poll_timer_fired(uv_timer_t *h)
{
	struct matrix	*m = h->data;

	if (m->batch.active)
		mx_batch_next(m);	/* a task's retry */
	else
		mx_poll_start(m);
}

/* After an error: wait, then the same /sync (or task) again. */
static void
mx_poll_backoff(struct matrix *m, const char *why,
    const struct fetch_result *r)
{
	struct mx_error	err;
	int64_t		ms;

	m->connected = 0;
	mx_result_error(r, &err);
	if (r->error == 0 && r->status == 429)
		ms = mx_retry_ms(r, &err);
	else
		ms = mx_backoff_ms(++m->poll_fails);
	log_warn("event=matrix_poll_failed reason=%s status=%ld errcode=%s "
	    "retry_ms=%" PRId64, why, r->status, log_q(err.errcode), ms);
	uv_timer_start(&m->poll_timer, mx_poll_timer_fired, (uint64_t)ms, 0);
}

void
mx_batch_clear(struct mx_batch *b)
{
	int	i;

	mx_sync_clear(&b->sync);
	for (i = 0; i < b->ntasks; i++)
		free(b->tasks[i].user);
	free(b->tasks);
	mx_events_free(b->gap, b->ngap);
	free(b->gap_from);
	free(b->new_room);
	memset(b, 0, sizeof *b);
	b->gap_room = -1;
}

/* ---- the filter ---------------------------------------------------- */

/*
 * kv "matrix.filter" holds the filter's JSON, a newline and the id the
 * homeserver gave it: a build that asks for another filter (an older
 * one stored only the id) makes a new one instead of syncing with the
 * old.
 */
char *
mx_filter_stored(struct matrix *m)
{
	char	*v = mx_kv(m, MX_KV_FILTER), *id = NULL;
	size_t	 n = strlen(MX_FILTER);

	if (v != NULL && strncmp(v, MX_FILTER, n) == 0 && v[n] == '\n' &&
	    v[n + 1] != '\0')
		id = xstrdup(v + n + 1);
	free(v);
	return id;
}

static void
mx_filter_done(struct matrix *m, void *ud, const struct fetch_result *r)
{
	cJSON		*o;
	const char	*id;
	char		*kept;

	(void)ud;
	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	if (r->error != 0 || r->status != 200) {
		/* A dead session was logged and ends here; any other 401 (a
		 * proxy's page, a locked user) is tried again like /sync's,
		 * or syncing would never start. */
		if (r->error == 0 && r->status == 401 &&
		    m->session == MX_S_DEAD)
			return;
		mx_poll_backoff(m, "filter", r);
		return;
	}
	o = cJSON_ParseWithLength(r->body, r->len);
	id = cJSON_GetStringValue(cJSON_GetObjectItem(o, "filter_id"));
	kept = id != NULL ? xasprintf("%s\n%s", MX_FILTER, id) : NULL;
	if (id == NULL || id[0] == '\0' ||
	    mx_kv_set(m, MX_KV_FILTER, kept) != 0) {
		free(kept);
		cJSON_Delete(o);
		mx_poll_backoff(m, "filter", r);
		return;
	}
	free(kept);
	m->filter = xstrdup(id);
	cJSON_Delete(o);
	log_info("event=matrix_filter_created");
	mx_poll_start(m);
}

/* ---- /sync ---------------------------------------------------------- */

static void
mx_poll_watchdog(uv_timer_t *h)
{
	struct matrix	*m = h->data;
	struct mx_req	*q = m->sync_req;

	if (m->closing || q == NULL || m->session == MX_S_DEAD)
		return;
	/* Waiting for a new token is the session's business: look again
	 * later. */
	if (mx_req_cancel(m, q) == 0) {
		uv_timer_start(&m->poll_watch, mx_poll_watchdog,
		    (uint64_t)(m->poll_timeout + MX_SYNC_SLACK_S +
		    MX_WATCHDOG_SLACK_S) * 1000, 0);
		return;
	}
	/* mx_sync_done() saw FETCH_ECANCELED and did nothing more. */
	m->stalls++;
	log_warn("event=matrix_sync_stalled action=restart stalls=%" PRIu64,
	    m->stalls);
	mx_poll_start(m);
}

void
mx_poll_start(struct matrix *m)
{
	char	*path, *user, *filter, *since = NULL;

	if (m->closing || m->session == MX_S_DEAD)
		return;
	if (m->filter == NULL) {
		user = mx_escape(m->self);
		path = xasprintf("/user/%s/filter", user);
		mx_call(m, "POST", path, MX_FILTER, 0, mx_filter_done, NULL);
		free(path);
		free(user);
		return;
	}
	filter = mx_escape(m->filter);
	if (m->since != NULL)
		since = mx_escape(m->since);
	/* The first sync returns at once: there is no token to wait on. */
	path = xasprintf("/sync?filter=%s&set_presence=offline&timeout=%ld%s%s",
	    filter, m->since != NULL ? m->poll_timeout * 1000 : 0L,
	    since != NULL ? "&since=" : "", since != NULL ? since : "");
	m->sync_req = mx_call(m, "GET", path, NULL, (m->poll_timeout +
	    MX_SYNC_SLACK_S) * 1000, mx_sync_done, NULL);
	if (m->sync_req != NULL)
		uv_timer_start(&m->poll_watch, mx_poll_watchdog,
		    (uint64_t)(m->poll_timeout + MX_SYNC_SLACK_S +
		    MX_WATCHDOG_SLACK_S) * 1000, 0);
	free(path);
	free(filter);
	free(since);
}

/* Is there a message from someone else in the room's timeline? Used to
 * find whom to invite when a room turned encrypted. */
static const char *
mx_other_sender(const struct matrix *m, const struct mx_room *r)
{
	int	i;

	for (i = r->nevents - 1; i >= 0; i--)
		if (strcmp(r->events[i].sender, m->self) != 0)
			return r->events[i].sender;
	return NULL;
}

static void
mx_task_add(struct mx_batch *b, enum mx_task_kind kind, int room,
    const char *user)
{
	struct mx_task	*t;

	b->tasks = xrealloc(b->tasks, (size_t)(b->ntasks + 1) *
	    sizeof *b->tasks);
	t = &b->tasks[b->ntasks++];
	t->kind = kind;
	t->room = room;
	t->user = user != NULL ? xstrdup(user) : NULL;
}

/* 1 if the encrypted room was answered before (kv). */
static int
mx_encrypted_known(struct matrix *m, const char *room)
{
	char	*key = xasprintf("%s%s", MX_KV_ENCRYPTED, room), *v;
	int	 known;

	v = mx_kv(m, key);
	/* "pending ...": a room was made, the rest is still to do. */
	known = v != NULL && strncmp(v, "pending ", 8) != 0;
	free(key);
	free(v);
	return known;
}

/* What must happen before the batch's messages go in. */
static void
mx_plan(struct matrix *m)
{
	struct mx_batch	*b = &m->batch;
	struct mx_room	*r;
	int		 i;

	for (i = 0; i < b->sync.nrooms; i++) {
		r = &b->sync.rooms[i];
		switch (r->membership) {
		case MX_INVITE:
			if (r->inviter == NULL ||
			    !mx_inviter_allowed(m, r->inviter)) {
				mx_task_add(b, MX_T_LEAVE, i, NULL);
				break;
			}
			mx_task_add(b, MX_T_JOIN, i, NULL);
			if (r->encrypted)
				mx_task_add(b, MX_T_ENCRYPTED, i, r->inviter);
			break;
		case MX_JOIN:
			/* The clinicians' room: its commands are read (gaps
			 * filled too), but it is never a patient's. */
			if (m->clinician != NULL &&
			    strcmp(r->id, m->clinician) == 0) {
				if (r->limited && m->since != NULL &&
				    !r->encrypted)
					mx_task_add(b, MX_T_GAP, i, NULL);
				break;
			}
			if (r->encrypted && !mx_encrypted_known(m, r->id))
				mx_task_add(b, MX_T_ENCRYPTED, i,
				    mx_other_sender(m, r));
			if (r->limited && m->since != NULL && !r->encrypted)
				mx_task_add(b, MX_T_GAP, i, NULL);
			break;
		case MX_LEAVE:
			break;
		}
	}
}

static void
mx_sync_done(struct matrix *m, void *ud, const struct fetch_result *r)
{
	char	*cause = NULL;

	(void)ud;
	m->sync_req = NULL;
	if (!m->closing)
		uv_timer_stop(&m->poll_watch);
	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	if (r->error == 0 && r->status == 401 && m->session == MX_S_DEAD) {
		m->connected = 0;	/* the session is dead: logged */
		return;
	}
	/* Any other 401 (a proxy's page, no errcode: mx_req_done() passes
	 * on only a token's) falls through to the backoff: stopping here
	 * would leave nothing to sync again. */
	if (r->error != 0) {
		/* A timeout or a dropped connection: no answer. */
		mx_poll_backoff(m, "network", r);
		return;
	}
	if ((r->status == 400 || r->status == 404) && m->filter != NULL) {
		/* The homeserver forgot our filter (its data was reset,
		 * say): make it again. */
		free(m->filter);
		m->filter = NULL;
		mx_kv_set(m, MX_KV_FILTER, "");
	}
	if (r->status != 200) {
		mx_poll_backoff(m, "status", r);
		return;
	}
	mx_batch_clear(&m->batch);
	if (mx_sync_parse(r->body, r->len, m->self, &m->batch.sync,
	    &cause) != 0) {
		log_warn("event=matrix_bad_answer path=/sync error=%s",
		    log_q(cause));
		free(cause);
		mx_poll_backoff(m, "bad_answer", r);
		return;
	}
	m->poll_fails = 0;
	m->connected = 1;
	m->batch.active = 1;
	mx_plan(m);
	mx_batch_next(m);
}

/* ---- gaps ---------------------------------------------------------- */

static void	mx_gap_page(struct matrix *);

/* The gap's events go in front of the room's timeline. */
static void
mx_gap_merge(struct mx_batch *b, struct mx_room *r)
{
	struct mx_event	*v;

	if (b->ngap == 0)
		return;
	v = xmalloc((size_t)(b->ngap + r->nevents) * sizeof *v);
	memcpy(v, b->gap, (size_t)b->ngap * sizeof *v);
	if (r->nevents > 0)
		memcpy(v + b->ngap, r->events, (size_t)r->nevents * sizeof *v);
	free(r->events);
	free(b->gap);
	r->events = v;
	r->nevents += b->ngap;
	b->gap = NULL;
	b->ngap = 0;
}

static void
mx_gap_done(struct matrix *m, void *ud, const struct fetch_result *r)
{
	struct mx_batch	*b = &m->batch;
	struct mx_room	*room;
	struct mx_page	 pg;
	char		*cause = NULL;
	const char	*first;
	int		 i, end = 0;

	(void)ud;
	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	if (r->error != 0 || r->status == 429 || r->status >= 500) {
		mx_task_done(m, 1);
		return;
	}
	room = &b->sync.rooms[b->gap_room];
	if (r->status != 200 || mx_page_parse(r->body, r->len, &pg,
	    &cause) != 0) {
		/* The token is too old, say: what the timeline holds is all
		 * we can have. */
		log_warn("event=matrix_gap_lost status=%ld error=%s",
		    r->status, log_q(cause));
		free(cause);
		mx_task_done(m, 0);
		return;
	}
	first = room->nevents > 0 ? room->events[0].event_id : NULL;
	for (i = 0; i < pg.nevents && !end; i++) {
		if (first != NULL &&
		    strcmp(pg.events[i].event_id, first) == 0) {
			end = 1;	/* reached the timeline we have */
			break;
		}
		b->gap = xrealloc(b->gap, (size_t)(b->ngap + 1) *
		    sizeof *b->gap);
		b->gap[b->ngap++] = pg.events[i];
		memset(&pg.events[i], 0, sizeof pg.events[i]);
	}
	if (pg.nevents == 0 || pg.end == NULL)
		end = 1;
	else if (!end && ++b->gap_pages >= MX_GAP_PAGES) {
		/* What lies past this many pages is not read: say so. */
		log_warn("event=matrix_gap_given_up pages=%d", b->gap_pages);
		end = 1;
	}
	if (!end) {
		free(b->gap_from);
		b->gap_from = xstrdup(pg.end);
	}
	log_debug("event=matrix_gap_page events=%d end=%d", pg.nevents, end);
	mx_page_clear(&pg);
	if (end) {
		mx_gap_merge(b, room);
		mx_task_done(m, 0);
		return;
	}
	mx_gap_page(m);
}

static void
mx_gap_page(struct matrix *m)
{
	struct mx_batch	*b = &m->batch;
	char		*room, *from, *path;

	room = mx_escape(b->sync.rooms[b->gap_room].id);
	from = mx_escape(b->gap_from);
	path = xasprintf("/rooms/%s/messages?dir=f&limit=%d&from=%s", room,
	    MX_GAP_LIMIT, from);
	mx_call(m, "GET", path, NULL, 0, mx_gap_done, NULL);
	free(path);
	free(from);
	free(room);
}

/* Fills a limited timeline from the previous sync token forward. */
static void
mx_gap_start(struct matrix *m, struct mx_task *t)
{
	struct mx_batch	*b = &m->batch;

	mx_events_free(b->gap, b->ngap);
	b->gap = NULL;
	b->ngap = 0;
	b->gap_pages = 0;
	b->gap_room = t->room;
	free(b->gap_from);
	b->gap_from = xstrdup(m->since);
	log_info("event=matrix_gap_fill");
	mx_gap_page(m);
}

/* ---- delivering ----------------------------------------------------- */

static void
mx_items_free(struct mx_item *v, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		free(v[i].text);
	free(v);
}

/* The messages of the batch for the engine, in order (poll answers as
 * their answer ids, resolved as they are delivered). */
static int
mx_items(struct matrix *m, struct mx_item **out)
{
	struct mx_sync	*s = &m->batch.sync;
	struct mx_room	*r;
	struct mx_event	*ev;
	struct mx_item	*v = NULL;
	int		 n = 0, i, j, clinician;

	*out = NULL;
	for (i = 0; i < s->nrooms; i++) {
		r = &s->rooms[i];
		if (r->membership != MX_JOIN || r->encrypted)
			continue;
		clinician = m->clinician != NULL &&
		    strcmp(r->id, m->clinician) == 0;
		for (j = 0; j < r->nevents; j++) {
			ev = &r->events[j];
			if (strcmp(ev->sender, m->self) == 0)
				continue;
			/* The first sync of a database shows the rooms' past:
			 * history, not messages to answer now. */
			if (m->since == NULL &&
			    ev->ts < m->started_ms - MX_SKEW_MS)
				continue;
			if (ev->kind != MX_EV_TEXT &&
			    (ev->kind != MX_EV_POLL_RESPONSE || clinician))
				continue;
			v = xrealloc(v, (size_t)(n + 1) * sizeof *v);
			v[n].room = r->id;
			v[n].event_id = ev->event_id;
			v[n].clinician = clinician;
			v[n].vote = ev->kind == MX_EV_POLL_RESPONSE;
			v[n].poll = ev->relates;
			v[n++].text = xstrdup(ev->text);
		}
	}
	*out = v;
	return n;
}

/*
 * A poll answer becomes the text of the option chosen if its question is
 * still the one asked, judged now, after the batch's earlier messages: two
 * votes on one poll in a batch (the patient changed their mind while the
 * bot was away) must not make the second the next question's answer. A
 * stale one only moves the cursor, when it is the batch's last. A live one
 * ends its poll.
 */
static int
mx_deliver_vote(struct matrix *m, const struct mx_item *it,
    const struct engine_cursor *cur)
{
	char	*text;
	int	 rc;

	if ((rc = mx_answer_text(m, it->room, it->text, &text)) == ENGINE_EDB)
		return -1;	/* the batch comes again; it may be live */
	if (rc != 1)
		return cur != NULL ? engine_cursor(m->e, cur, clock_now()) : 0;
	rc = engine_inbound_at(m->e, MX_ADAPTER, it->room, it->event_id, text,
	    cur, clock_now());
	/* Only the first delivery ends the poll: a repeat (1) found it
	 * done. */
	if (rc == 0 && mx_queue_poll_end(m, it->room, it->poll, text) != 0)
		log_info("event=matrix_poll_end_not_queued");
	free(text);
	return rc;
}

/*
 * A patient's room where the bot is now alone (the summary's member
 * count, which the spec requires whenever it changed): the patient left,
 * and what the bot says there reaches no one. They are marked unreachable,
 * as a Telegram patient who blocked the bot is, so reminders are withheld
 * and recorded; if they join again and write, they are welcomed back.
 */
static int
mx_left(const struct matrix *m, const struct mx_room *r)
{
	return r->membership == MX_JOIN && r->joined == 1 &&
	    (m->clinician == NULL || strcmp(r->id, m->clinician) != 0);
}

/* Marks the patients who left; after the batch's messages, since one
 * written before leaving would otherwise make them reachable again. 0, or
 * -1 when the database failed. */
static int
mx_departures(struct matrix *m)
{
	struct mx_sync	*s = &m->batch.sync;
	int		 i;

	for (i = 0; i < s->nrooms; i++)
		if (mx_left(m, &s->rooms[i]) &&
		    engine_unreachable(m->e, MX_ADAPTER, s->rooms[i].id,
		    "left", clock_now()) < 0)
			return -1;
	return 0;
}

/* Hands the batch to the engine. -1 when the database failed: nothing
 * after the failure was stored and the token stays where it was (what was
 * stored is not handled twice: the inbox knows each event id, and a
 * patient marked unreachable is marked once). */
static int
mx_deliver(struct matrix *m)
{
	struct engine_cursor	 cur;
	const struct engine_cursor *last;
	struct mx_item		*v;
	int			 n, i, rc = 0, left = 0;

	cur.key = MX_KV_SINCE;
	cur.value = m->batch.sync.next_batch;
	for (i = 0; i < m->batch.sync.nrooms; i++)
		left |= mx_left(m, &m->batch.sync.rooms[i]);
	n = mx_items(m, &v);
	for (i = 0; i < n && rc >= 0; i++) {
		/* The token goes with the last message, or after the
		 * departures when there are any. */
		last = i == n - 1 && !left ? &cur : NULL;
		if (v[i].clinician)
			rc = mx_clinic_message(m, v[i].event_id, v[i].text,
			    last);
		else if (v[i].vote)
			rc = mx_deliver_vote(m, &v[i], last);
		else
			rc = engine_inbound_at(m->e, MX_ADAPTER, v[i].room,
			    v[i].event_id, v[i].text, last, clock_now());
	}
	if (rc >= 0 && left)
		rc = mx_departures(m);
	if (rc >= 0 && (n == 0 || left))
		rc = engine_cursor(m->e, &cur, clock_now());
	mx_items_free(v, n);
	if (n > 0)
		log_debug("event=matrix_batch messages=%d", n);
	return rc < 0 ? -1 : 0;
}

static void
mx_batch_end(struct matrix *m)
{
	struct fetch_result	r;
	struct mx_batch		*b = &m->batch;

	if (mx_deliver(m) != 0) {
		mx_batch_clear(b);
		memset(&r, 0, sizeof r);
		r.retry_after = -1;
		mx_poll_backoff(m, "database", &r);
		return;
	}
	free(m->since);
	m->since = xstrdup(b->sync.next_batch);
	mx_batch_clear(b);
	mx_flush(m);
	sched_kick(m->s);
	mx_poll_start(m);
}

static void
mx_batch_next(struct matrix *m)
{
	struct mx_batch	*b = &m->batch;
	struct mx_task	*t;

	if (m->closing)
		return;
	if (m->session == MX_S_DEAD) {
		/* Its tasks ended with the session's 401, not done: the
		 * batch is dropped, not delivered, so next_batch stays
		 * where it was and a start with working credentials syncs
		 * it again. */
		mx_batch_clear(b);
		return;
	}
	if (b->next >= b->ntasks) {
		mx_batch_end(m);
		return;
	}
	t = &b->tasks[b->next];
	if (t->kind == MX_T_GAP)
		mx_gap_start(m, t);
	else
		mx_room_task(m, t);
}

void
mx_task_done(struct matrix *m, int retry)
{
	struct fetch_result	r;

	if (m->closing)
		return;
	if (retry) {
		memset(&r, 0, sizeof r);
		r.retry_after = -1;
		mx_poll_backoff(m, "task", &r);
		return;
	}
	m->poll_fails = 0;
	m->batch.next++;
	m->batch.step = 0;
	free(m->batch.new_room);
	m->batch.new_room = NULL;
	mx_batch_next(m);
}
