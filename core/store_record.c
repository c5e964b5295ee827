/*
 * store_record.c: the audit trail (events), the source of every protocol
 * version loaded, invite codes and the adapters' named values (kv).
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

/* ---- events ------------------------------------------------------- */

int
store_event_insert(struct store *s, int64_t patient_id, int64_t enrolment_id,
    int64_t t, const char *kind, const char *data)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_EVENT_INSERT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, patient_id);
	sqlite3_bind_int64(st, 2, enrolment_id);
	sqlite3_bind_int64(st, 3, t);
	store_bind_text(st, 4, kind);
	store_bind_text(st, 5, data);
	return store_exec(s, st, "event_insert");
}

/* ---- protocol versions -------------------------------------------- */

/* A text column copied whole (it may hold NULs), NUL-terminated. */
static char *
store_blob_dup(sqlite3_stmt *st, int col, size_t *len)
{
	const void	*src = sqlite3_column_text(st, col);
	char		*buf;

	*len = (size_t)sqlite3_column_bytes(st, col);
	buf = xmalloc(*len + 1);
	if (*len > 0)
		memcpy(buf, src, *len);
	buf[*len] = '\0';
	return buf;
}

/* Reads the helpers stored with a version into v. */
static int
store_phelpers_get(struct store *s, const char *protocol, int version,
    struct store_pversion *v)
{
	sqlite3_stmt		*st = store_stmt(s, SQL_PHELPER_LIST);
	struct store_phelper	*h;
	int			 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	sqlite3_bind_int(st, 2, version);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v->helpers = xrealloc(v->helpers, (size_t)(v->nhelpers + 1) *
		    sizeof *v->helpers);
		h = &v->helpers[v->nhelpers++];
		h->name = store_dup(st, 0);
		h->source = store_blob_dup(st, 1, &h->len);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, "phelper_list");
	return 0;
}

int
store_pversion_get(struct store *s, const char *protocol, int version,
    struct store_pversion *v)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PVERSION_GET);
	int		 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	sqlite3_bind_int(st, 2, version);
	if ((rc = store_row(s, st, "pversion_get")) != 0)
		return rc;
	memset(v, 0, sizeof *v);
	v->source = store_blob_dup(st, 0, &v->len);
	v->path = store_dup(st, 1);
	if (v->path == NULL)
		v->path = xstrdup("");
	sqlite3_reset(st);
	if (store_phelpers_get(s, protocol, version, v) != 0) {
		store_pversion_clear(v);
		return -1;
	}
	return 0;
}

int
store_pversion_max(struct store *s, const char *protocol, int *version)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PVERSION_MAX);
	int		 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	if ((rc = store_row(s, st, "pversion_max")) != 0)
		return rc;
	rc = sqlite3_column_type(st, 0) == SQLITE_NULL ? STORE_NOTFOUND : 0;
	*version = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return rc;
}

int
store_pversion_insert(struct store *s, const char *protocol, int version,
    const char *source, size_t len, const char *path, int64_t t)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PVERSION_INSERT);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	sqlite3_bind_int(st, 2, version);
	sqlite3_bind_text64(st, 3, source, len, SQLITE_STATIC, SQLITE_UTF8);
	store_bind_text(st, 4, path);
	sqlite3_bind_int64(st, 5, t);
	return store_exec(s, st, "pversion_insert");
}

int
store_phelper_insert(struct store *s, const char *protocol, int version,
    const char *name, const char *source, size_t len)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_PHELPER_INSERT);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, protocol);
	sqlite3_bind_int(st, 2, version);
	store_bind_text(st, 3, name);
	sqlite3_bind_text64(st, 4, source, len, SQLITE_STATIC, SQLITE_UTF8);
	return store_exec(s, st, "phelper_insert");
}

void
store_pversion_clear(struct store_pversion *v)
{
	int	i;

	for (i = 0; i < v->nhelpers; i++) {
		free(v->helpers[i].name);
		free(v->helpers[i].source);
	}
	free(v->helpers);
	free(v->source);
	free(v->path);
	memset(v, 0, sizeof *v);
}

/* ---- invites ------------------------------------------------------ */

/* Binds text, or NULL for NULL or "". */
static void
store_bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL || v[0] == '\0')
		sqlite3_bind_null(st, i);
	else
		store_bind_text(st, i, v);
}

int
store_invite_insert(struct store *s, const struct store_invite *inv)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_INVITE_INSERT);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, inv->code);
	store_bind_text(st, 2, inv->protocol);
	store_bind_opt(st, 3, inv->clinician);
	store_bind_opt(st, 4, inv->note);
	sqlite3_bind_int64(st, 5, inv->created_at);
	sqlite3_bind_int64(st, 6, inv->expires_at);
	sqlite3_bind_int(st, 7, inv->uses_left);
	if (store_exec(s, st, "invite_insert") != 0)
		return -1;
	return sqlite3_changes(s->db) == 1 ? 0 : STORE_DUPLICATE;
}

int
store_invite_get(struct store *s, const char *code, struct store_invite *inv)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_INVITE_GET);
	int		 rc;

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, code);
	if ((rc = store_row(s, st, "invite_get")) != 0)
		return rc;
	memset(inv, 0, sizeof *inv);
	store_copy(inv->code, sizeof inv->code, st, 0);
	store_copy(inv->protocol, sizeof inv->protocol, st, 1);
	store_copy(inv->clinician, sizeof inv->clinician, st, 2);
	store_copy(inv->note, sizeof inv->note, st, 3);
	inv->created_at = sqlite3_column_int64(st, 4);
	inv->expires_at = sqlite3_column_int64(st, 5);
	inv->uses_left = sqlite3_column_int(st, 6);
	sqlite3_reset(st);
	return 0;
}

int
store_invite_consume(struct store *s, const char *code, int64_t now)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_INVITE_CONSUME);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, code);
	sqlite3_bind_int64(st, 2, now);
	if (store_exec(s, st, "invite_consume") != 0)
		return -1;
	return sqlite3_changes(s->db) == 1 ? 0 : STORE_NOTFOUND;
}

int
store_invite_give_back(struct store *s, int64_t enrolment_id)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_INVITE_GIVE_BACK);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, enrolment_id);
	return store_exec(s, st, "invite_give_back");
}

int
store_enrolment_set_invite(struct store *s, int64_t id, const char *code)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_ENROL_INVITE);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	store_bind_opt(st, 2, code);
	return store_exec(s, st, "enrolment_invite");
}

/* ---- adapter state ------------------------------------------------ */

int
store_kv_get(struct store *s, const char *key, char **value)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_KV_GET);
	int		 rc;

	*value = NULL;
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, key);
	if ((rc = store_row(s, st, "kv_get")) != 0)
		return rc;
	*value = store_dup(st, 0);
	if (*value == NULL)
		*value = xstrdup("");
	sqlite3_reset(st);
	return 0;
}

int
store_kv_set(struct store *s, const char *key, const char *value, int64_t t)
{
	sqlite3_stmt	*st = store_stmt(s, SQL_KV_SET);

	if (st == NULL)
		return -1;
	store_bind_text(st, 1, key);
	store_bind_text(st, 2, value);
	sqlite3_bind_int64(st, 3, t);
	return store_exec(s, st, "kv_set");
}
