/*
 * tg_update.c: Telegram updates and errors, from JSON to structs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg_update.h"
#include "xmalloc.h"

#define TG_ID_LIMIT	9007199254740992.0	/* 2^53 */

int
tg_json_id(const cJSON *item, int64_t *id)
{
	double	d;

	if (!cJSON_IsNumber(item))
		return -1;
	d = item->valuedouble;
	if (!isfinite(d) || d != floor(d) || fabs(d) > TG_ID_LIMIT)
		return -1;
	*id = (int64_t)d;
	return 0;
}

static int
tg_id_field(const cJSON *obj, const char *name, int64_t *id)
{
	return tg_json_id(cJSON_GetObjectItemCaseSensitive(obj, name), id);
}

static char *
tg_string(const cJSON *obj, const char *name)
{
	const char	*s = cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(obj, name));

	return s != NULL ? xstrdup(s) : NULL;
}

/* Fills what a message carries; -1 if it has no readable chat. */
static int
tg_read_message(const cJSON *m, struct tg_update *u)
{
	const cJSON	*chat = cJSON_GetObjectItemCaseSensitive(m, "chat");
	const cJSON	*from = cJSON_GetObjectItemCaseSensitive(m, "from");
	const char	*type, *lang;

	if (!cJSON_IsObject(m) || tg_id_field(chat, "id", &u->chat_id) != 0)
		return -1;
	type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(chat,
	    "type"));
	u->is_private = type != NULL && strcmp(type, "private") == 0;
	if (tg_id_field(m, "message_id", &u->message_id) != 0)
		u->message_id = 0;
	if (tg_id_field(from, "id", &u->user_id) != 0)
		u->user_id = 0;
	lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(from,
	    "language_code"));
	if (lang != NULL)
		snprintf(u->lang, sizeof u->lang, "%s", lang);
	if (tg_id_field(m, "migrate_to_chat_id", &u->migrate_to) != 0)
		u->migrate_to = 0;
	return 0;
}

/* The label of the inline button with callback_data `data` on message
 * `m`, or NULL. */
static char *
tg_label(const cJSON *m, const char *data)
{
	const cJSON	*kb, *row, *b;
	const char	*d;

	kb = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    m, "reply_markup"), "inline_keyboard");
	cJSON_ArrayForEach(row, kb) {
		cJSON_ArrayForEach(b, row) {
			d = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(b, "callback_data"));
			if (d != NULL && strcmp(d, data) == 0)
				return tg_string(b, "text");
		}
	}
	return NULL;
}

static int
tg_read_callback(const cJSON *q, struct tg_update *u)
{
	const cJSON	*from = cJSON_GetObjectItemCaseSensitive(q, "from");
	const cJSON	*msg = cJSON_GetObjectItemCaseSensitive(q, "message");

	if ((u->callback_id = tg_string(q, "id")) == NULL ||
	    tg_id_field(from, "id", &u->user_id) != 0)
		return -1;
	/* The chat is the one the button's message is in; a button on a
	 * message too old to be sent along still has the user. */
	if (msg == NULL || tg_read_message(msg, u) != 0) {
		u->chat_id = u->user_id;
		u->is_private = 1;
	}
	u->text = tg_string(q, "data");
	if (msg != NULL) {
		u->msg_text = tg_string(msg, "text");
		if (u->text != NULL)
			u->label = tg_label(msg, u->text);
	}
	return 0;
}

/* Reads one Update object into *u (cleared first). */
static int
tg_read_update(const cJSON *obj, struct tg_update *u, char **cause)
{
	const cJSON	*m, *q;

	memset(u, 0, sizeof *u);
	if (!cJSON_IsObject(obj) ||
	    tg_id_field(obj, "update_id", &u->update_id) != 0) {
		*cause = xstrdup("an update without a valid update_id");
		return -1;
	}
	u->kind = TG_OTHER;
	if ((m = cJSON_GetObjectItemCaseSensitive(obj, "message")) != NULL) {
		if (tg_read_message(m, u) == 0) {
			u->kind = TG_MESSAGE;
			u->text = tg_string(m, "text");
		}
	} else if ((q = cJSON_GetObjectItemCaseSensitive(obj,
	    "callback_query")) != NULL) {
		if (tg_read_callback(q, u) == 0)
			u->kind = TG_CALLBACK;
		else {
			tg_update_clear(u);
			u->kind = TG_OTHER;
		}
	}
	return 0;
}

int
tg_parse_update(const char *json, size_t len, struct tg_update *u,
    char **cause)
{
	cJSON	*obj = cJSON_ParseWithLength(json, len);
	int	 rc;

	if (obj == NULL) {
		*cause = xstrdup("not JSON");
		return -1;
	}
	rc = tg_read_update(obj, u, cause);
	cJSON_Delete(obj);
	return rc;
}

int
tg_parse_updates(const char *json, size_t len, struct tg_update **out,
    int *n, char **cause)
{
	cJSON		*obj = cJSON_ParseWithLength(json, len), *res, *item;
	struct tg_update *v = NULL;
	int		 count = 0, i = 0;

	*out = NULL;
	*n = 0;
	res = cJSON_GetObjectItemCaseSensitive(obj, "result");
	if (obj == NULL || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj,
	    "ok")) || !cJSON_IsArray(res)) {
		*cause = xstrdup(obj == NULL ? "not JSON" :
		    "not a getUpdates answer");
		cJSON_Delete(obj);
		return -1;
	}
	count = cJSON_GetArraySize(res);
	if (count > 0)
		v = xcalloc((size_t)count, sizeof *v);
	cJSON_ArrayForEach(item, res) {
		if (tg_read_update(item, &v[i], cause) != 0) {
			/* Without an update_id the batch cannot be confirmed
			 * safely: refuse it whole. */
			tg_updates_free(v, i);
			cJSON_Delete(obj);
			return -1;
		}
		i++;
	}
	cJSON_Delete(obj);
	*out = v;
	*n = i;
	return 0;
}

void
tg_update_clear(struct tg_update *u)
{
	free(u->text);
	free(u->callback_id);
	free(u->msg_text);
	free(u->label);
	u->text = u->callback_id = u->msg_text = u->label = NULL;
}

void
tg_updates_free(struct tg_update *v, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		tg_update_clear(&v[i]);
	free(v);
}

int
tg_parse_ok(const char *json, size_t len)
{
	cJSON	*obj;
	int	 ok;

	if (json == NULL)
		return 0;
	obj = cJSON_ParseWithLength(json, len);
	ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "ok"));
	cJSON_Delete(obj);
	return ok;
}

int
tg_parse_error(const char *json, size_t len, struct tg_error *e)
{
	cJSON		*obj = cJSON_ParseWithLength(json, len), *params, *v;
	const char	*desc;

	memset(e, 0, sizeof *e);
	e->retry_after = -1;
	if (obj == NULL || !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(obj,
	    "ok"))) {
		cJSON_Delete(obj);
		return -1;
	}
	v = cJSON_GetObjectItemCaseSensitive(obj, "error_code");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1000)
		e->code = (int)v->valuedouble;
	desc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj,
	    "description"));
	snprintf(e->description, sizeof e->description, "%s",
	    desc != NULL ? desc : "");
	params = cJSON_GetObjectItemCaseSensitive(obj, "parameters");
	v = cJSON_GetObjectItemCaseSensitive(params, "retry_after");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
	    v->valuedouble <= 86400)
		e->retry_after = (long)v->valuedouble;
	if (tg_id_field(params, "migrate_to_chat_id", &e->migrate_to) != 0)
		e->migrate_to = 0;
	cJSON_Delete(obj);
	return 0;
}
