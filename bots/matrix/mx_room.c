/*
 * mx_room.c: invites, joins, and encrypted rooms.
 *
 * An invite from a user or server listed in matrix.allowed_inviters is
 * joined, and the room is greeted with how to start; any other invite is
 * declined (left with a reason). A patient who brings an invite code writes
 * "/start CODE" in the room once the bot is in.
 *
 * The bot cannot read end-to-end encrypted rooms. When it meets one (an
 * invite whose state has m.room.encryption, or a room that turned
 * encrypted) it opens a direct room of its own without encryption
 * (createRoom with is_direct, preset trusted_private_chat, the patient
 * invited, m.direct account data updated), and says so plainly in both
 * rooms: a notice sent unencrypted is still shown by Matrix clients. The
 * room is remembered in kv ("matrix.encrypted:<room>") so this happens once;
 * the room made is noted there first ("pending <new room>"), so a crash in
 * between carries on with it instead of making another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "mx_int.h"
#include "xmalloc.h"

/* The adapter's text `key` (scripts/lang: matrix_welcome, ...) in the
 * language of the room's patient, else the configured one. */
static const char *
mx_text(struct matrix *m, const char *room, const char *key)
{
	char	lang[16];

	return engine_text_for(m->e, room == NULL ? NULL : engine_lang_of(m->e,
	    MX_ADAPTER, room, lang, sizeof lang), key);
}

int
mx_inviter_allowed(const struct matrix *m, const char *user)
{
	const char	*p = m->inviters, *colon;
	size_t		 n, ulen = strlen(user);

	if (p == NULL || (colon = strchr(user, ':')) == NULL)
		return 0;
	for (;;) {
		p += strspn(p, ", \t");
		if (*p == '\0')
			return 0;
		n = strcspn(p, ", \t");
		/* "@dr:clinic.org" is that user; ":clinic.org" that server. */
		if (p[0] == '@' && n == ulen && strncmp(p, user, n) == 0)
			return 1;
		if (p[0] == ':' && strlen(colon) == n &&
		    strncmp(p, colon, n) == 0)
			return 1;
		p += n;
	}
}

/* Queues a notice to a room through the outbox (no patient): it goes out
 * with a transaction id like any message. 0 or -1. */
int
mx_queue_notice(struct matrix *m, const char *room, const char *text)
{
	return store_outbox_insert(engine_store(m->e), 0, MX_ADAPTER, room,
	    text, NULL, clock_now(), NULL);
}

static struct mx_room *
mx_task_room(struct matrix *m, const struct mx_task *t)
{
	return &m->batch.sync.rooms[t->room];
}

/* Network errors, 429 and 5xx are worth another try. */
static int
mx_transient(const struct fetch_result *r)
{
	return r->error != 0 || r->status == 429 || r->status >= 500;
}

static void
mx_join_done(struct matrix *m, void *ud, const struct fetch_result *r)
{
	struct mx_task	*t = ud;
	struct mx_error	 err;

	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	if (mx_transient(r)) {
		mx_task_done(m, 1);
		return;
	}
	if (r->status != 200) {
		/* The invite was withdrawn, say: nothing to join. */
		mx_result_error(r, &err);
		log_warn("event=matrix_join_failed status=%ld errcode=%s",
		    r->status, log_q(err.errcode));
	} else {
		log_info("event=matrix_joined");
		/* The clinicians' room is not a patient's: no greeting. */
		if (!mx_task_room(m, t)->encrypted && (m->clinician == NULL ||
		    strcmp(m->clinician, mx_task_room(m, t)->id) != 0))
			mx_queue_notice(m, mx_task_room(m, t)->id,
			    mx_text(m, mx_task_room(m, t)->id,
			    "matrix_welcome"));
	}
	mx_task_done(m, 0);
}

static void
mx_leave_done(struct matrix *m, void *ud, const struct fetch_result *r)
{
	(void)ud;
	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	if (mx_transient(r)) {
		mx_task_done(m, 1);
		return;
	}
	log_info("event=matrix_invite_declined status=%ld", r->status);
	mx_task_done(m, 0);
}

/* ---- encrypted rooms ------------------------------------------------ */

#define MX_PENDING	"pending "

static void	mx_encrypted_step(struct matrix *, struct mx_task *);

/* kv matrix.encrypted:<room> = prefix + value. */
static void
mx_encrypted_note(struct matrix *m, struct mx_task *t, const char *prefix,
    const char *value)
{
	char	*key = xasprintf("%s%s", MX_KV_ENCRYPTED,
		    m->batch.sync.rooms[t->room].id);
	char	*v = xasprintf("%s%s", prefix, value);

	mx_kv_set(m, key, v);
	free(v);
	free(key);
}

/* The room made before a crash, if any (caller frees). */
static char *
mx_encrypted_pending(struct matrix *m, struct mx_task *t)
{
	char	*key = xasprintf("%s%s", MX_KV_ENCRYPTED,
		    m->batch.sync.rooms[t->room].id);
	char	*v = mx_kv(m, key), *room = NULL;

	if (v != NULL && strncmp(v, MX_PENDING, strlen(MX_PENDING)) == 0)
		room = xstrdup(v + strlen(MX_PENDING));
	free(v);
	free(key);
	return room;
}

/* Remembers the room as answered; says so in it (and in the new room). */
static void
mx_encrypted_finish(struct matrix *m, struct mx_task *t)
{
	struct mx_room	*r = mx_task_room(m, t);
	struct store	*st = engine_store(m->e);
	const char	*nr = m->batch.new_room;

	/* The notices and the mark commit together: never twice. */
	store_begin(st);
	mx_queue_notice(m, r->id, mx_text(m, r->id, nr != NULL ?
	    "matrix_encrypted" : "matrix_encrypted_alone"));
	if (nr != NULL)
		mx_queue_notice(m, nr, mx_text(m, r->id, "matrix_welcome"));
	mx_encrypted_note(m, t, "", nr != NULL ? nr : "-");
	store_commit(st);
	log_info("event=matrix_encrypted_room direct_room=%d", nr != NULL);
	mx_task_done(m, 0);
}

static void
mx_direct_done(struct matrix *m, void *ud, const struct fetch_result *r)
{
	struct mx_task	*t = ud;

	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	if (mx_transient(r)) {
		mx_task_done(m, 1);
		return;
	}
	if (r->status != 200)
		log_warn("event=matrix_direct_failed status=%ld", r->status);
	m->batch.step = 2;
	mx_encrypted_finish(m, t);
}

/* Adds the new room to m.direct under the patient, keeping the rest (as
 * the homeserver has it now), once. */
static void
mx_direct_got(struct matrix *m, void *ud, const struct fetch_result *r)
{
	struct mx_task	*t = ud;
	cJSON		*d = NULL, *list, *x;
	char		*body, *user, *path;

	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	if (mx_transient(r)) {
		mx_task_done(m, 1);
		return;
	}
	/* 404 M_NOT_FOUND: none yet. */
	if (r->status == 200)
		d = cJSON_ParseWithLength(r->body, r->len);
	if (!cJSON_IsObject(d)) {
		cJSON_Delete(d);
		d = cJSON_CreateObject();
	}
	list = cJSON_GetObjectItemCaseSensitive(d, t->user);
	if (!cJSON_IsArray(list)) {
		cJSON_DeleteItemFromObjectCaseSensitive(d, t->user);
		list = cJSON_AddArrayToObject(d, t->user);
	}
	cJSON_ArrayForEach(x, list)
		if (cJSON_IsString(x) &&
		    strcmp(x->valuestring, m->batch.new_room) == 0)
			break;
	if (x == NULL)
		cJSON_AddItemToArray(list,
		    cJSON_CreateString(m->batch.new_room));
	body = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	user = mx_escape(m->self);
	path = xasprintf("/user/%s/account_data/m.direct", user);
	mx_call(m, "PUT", path, body, 0, mx_direct_done, t);
	free(path);
	free(user);
	cJSON_free(body);
}

static void
mx_direct_update(struct matrix *m, struct mx_task *t)
{
	char	*user = mx_escape(m->self), *path;

	path = xasprintf("/user/%s/account_data/m.direct", user);
	mx_call(m, "GET", path, NULL, 0, mx_direct_got, t);
	free(path);
	free(user);
}

static void
mx_create_done(struct matrix *m, void *ud, const struct fetch_result *r)
{
	struct mx_task	*t = ud;
	cJSON		*o;
	const char	*id;

	if (r->error == FETCH_ECANCELED || m->closing)
		return;
	if (mx_transient(r)) {
		mx_task_done(m, 1);
		return;
	}
	o = r->status == 200 ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	id = cJSON_GetStringValue(cJSON_GetObjectItem(o, "room_id"));
	if (id == NULL) {
		log_warn("event=matrix_create_room_failed status=%ld",
		    r->status);
		m->batch.step = 2;
		cJSON_Delete(o);
		mx_encrypted_finish(m, t);
		return;
	}
	m->batch.new_room = xstrdup(id);
	cJSON_Delete(o);
	mx_encrypted_note(m, t, MX_PENDING, m->batch.new_room);
	m->batch.step = 1;
	mx_encrypted_step(m, t);
}

static void
mx_encrypted_step(struct matrix *m, struct mx_task *t)
{
	cJSON	*o, *inv;
	char	*body;

	if (t->user == NULL) {
		mx_encrypted_finish(m, t);
		return;
	}
	if (m->batch.step == 0 &&
	    (m->batch.new_room = mx_encrypted_pending(m, t)) != NULL)
		m->batch.step = 1;
	switch (m->batch.step) {
	case 0:
		o = cJSON_CreateObject();
		cJSON_AddTrueToObject(o, "is_direct");
		cJSON_AddStringToObject(o, "preset", "trusted_private_chat");
		inv = cJSON_AddArrayToObject(o, "invite");
		cJSON_AddItemToArray(inv, cJSON_CreateString(t->user));
		body = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		mx_call(m, "POST", "/createRoom", body, 0, mx_create_done, t);
		cJSON_free(body);
		return;
	case 1:
		mx_direct_update(m, t);
		return;
	default:
		mx_encrypted_finish(m, t);
		return;
	}
}

void
mx_room_task(struct matrix *m, struct mx_task *t)
{
	struct mx_room	*r = mx_task_room(m, t);
	char		*room = mx_escape(r->id), *path, *body;
	cJSON		*o;

	switch (t->kind) {
	case MX_T_JOIN:
		path = xasprintf("/rooms/%s/join", room);
		mx_call(m, "POST", path, "{}", 0, mx_join_done, t);
		free(path);
		break;
	case MX_T_LEAVE:
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "reason", mx_text(m, NULL,
		    "matrix_declined"));
		body = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		path = xasprintf("/rooms/%s/leave", room);
		mx_call(m, "POST", path, body, 0, mx_leave_done, t);
		cJSON_free(body);
		free(path);
		break;
	case MX_T_ENCRYPTED:
		mx_encrypted_step(m, t);
		break;
	case MX_T_GAP:
		break;		/* mx_poll.c's */
	}
	free(room);
}
