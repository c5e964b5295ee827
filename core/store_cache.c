/*
 * store_cache.c: the current course of recently read patients, so that an
 * event need not join three tables to start (see store.h).
 *
 * An entry is a copy of what store_patient_find_current() or _get_current()
 * read: the patient, their latest enrolment and its protocol state. It must
 * equal the database whenever it is used, so:
 *
 * - the two writers of those rows that events use (store_patient_update,
 *   store_enrolment_save) copy the columns they wrote into the entry, and
 *   store_answer_insert counts the answer in the patient's ask_i;
 * - a new enrolment drops its patient's entry (their latest one changed);
 * - any other change to patients, answers, enrolments or protocol_state,
 *   seen by SQLite's update hook, empties the cache, and so does every
 *   rollback that undoes anything (store_tx.c);
 * - another connection's commit (PRAGMA data_version) empties it too.
 *
 * Entries are chained in two hash tables, by patient id and by adapter and
 * chat. A dropped entry stays in its chains, dead, until the cache fills
 * up and starts again empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

struct store_cent {
	struct store_patient	 pt;
	struct store_enrolment	 en;		/* state owned */
	/* The answers of the questionnaire in progress, "question\0value\0"
	 * each (owned), when known: from its asking, seen by this cache. */
	char			*asked;
	size_t			 asked_len;
	int			 asked_known;
	int			 has_en;
	int			 live;
	int32_t			 next_id;	/* chains; -1 ends */
	int32_t			 next_chat;
};

struct store_cache {
	struct store_cent	*v;
	int32_t			 n, cap, max;
	int32_t			*by_id, *by_chat;
	uint32_t		 mask;		/* buckets - 1 */
	int64_t			 data_version;	/* other connections' commits */
};

static uint32_t
store_cache_hash_id(int64_t id)
{
	return (uint32_t)(((uint64_t)id * 0x9e3779b97f4a7c15ULL) >> 32);
}

static uint32_t
store_cache_hash_chat(const char *adapter, const char *chat)
{
	uint32_t	h = 2166136261U;

	while (*adapter != '\0')
		h = (h ^ (unsigned char)*adapter++) * 16777619U;
	h = (h ^ 0xff) * 16777619U;
	while (*chat != '\0')
		h = (h ^ (unsigned char)*chat++) * 16777619U;
	return h;
}

static char *
store_cache_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* Every chain empty (-1). */
static void
store_cache_empty_buckets(struct store_cache *c)
{
	memset(c->by_id, 0xff, ((size_t)c->mask + 1) * sizeof *c->by_id);
	memset(c->by_chat, 0xff, ((size_t)c->mask + 1) * sizeof *c->by_chat);
}

/* Forgets every entry. */
void
store_cache_clear(struct store *s)
{
	struct store_cache	*c = s->cache;
	int32_t			 i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->v[i].en.state);
		free(c->v[i].asked);
	}
	c->n = 0;
	store_cache_empty_buckets(c);
}

/* Buckets for `cap` entries: a power of two at least as large. */
static void
store_cache_size(struct store_cache *c, int32_t cap)
{
	uint32_t	nb = 1024;

	while (nb < (uint32_t)cap)
		nb <<= 1;
	c->v = xrealloc(c->v, (size_t)cap * sizeof *c->v);
	c->cap = cap;
	c->mask = nb - 1;
	c->by_id = xrealloc(c->by_id, nb * sizeof *c->by_id);
	c->by_chat = xrealloc(c->by_chat, nb * sizeof *c->by_chat);
}

static void
store_cache_link(struct store_cache *c, int32_t i)
{
	struct store_cent	*ce = &c->v[i];
	uint32_t		 b;

	b = store_cache_hash_id(ce->pt.id) & c->mask;
	ce->next_id = c->by_id[b];
	c->by_id[b] = i;
	b = store_cache_hash_chat(ce->pt.adapter, ce->pt.chat) & c->mask;
	ce->next_chat = c->by_chat[b];
	c->by_chat[b] = i;
}

void
store_cache_enable(struct store *s, int entries)
{
	struct store_cache	*c;

	if (s->cache != NULL || entries <= 0)
		return;
	c = xcalloc(1, sizeof *c);
	c->max = entries;
	c->data_version = -1;
	store_cache_size(c, entries < 1024 ? entries : 1024);
	s->cache = c;
	store_cache_clear(s);
}

void
store_cache_free(struct store *s)
{
	struct store_cache	*c = s->cache;

	if (c == NULL)
		return;
	store_cache_clear(s);
	free(c->v);
	free(c->by_id);
	free(c->by_chat);
	free(c);
	s->cache = NULL;
}

/* A file another process may write: its commits empty the cache. */
static void
store_cache_check_others(struct store *s)
{
	struct store_cache	*c = s->cache;
	sqlite3_stmt		*st;
	int64_t			 v;

	if (s->memory || (st = store_stmt(s, SQL_DATA_VERSION)) == NULL)
		return;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		store_cache_clear(s);
		return;
	}
	v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (v != c->data_version)
		store_cache_clear(s);
	c->data_version = v;
}

static struct store_cent *
store_cache_by_id(struct store_cache *c, int64_t id)
{
	int32_t	i = c->by_id[store_cache_hash_id(id) & c->mask];

	for (; i >= 0; i = c->v[i].next_id)
		if (c->v[i].live && c->v[i].pt.id == id)
			return &c->v[i];
	return NULL;
}

static struct store_cent *
store_cache_by_chat(struct store_cache *c, const char *adapter,
    const char *chat)
{
	struct store_cent	*ce;
	int32_t			 i;

	i = c->by_chat[store_cache_hash_chat(adapter, chat) & c->mask];
	for (; i >= 0; i = ce->next_chat) {
		ce = &c->v[i];
		if (ce->live && strcmp(ce->pt.chat, chat) == 0 &&
		    strcmp(ce->pt.adapter, adapter) == 0)
			return ce;
	}
	return NULL;
}

/* Copies an entry out: 0, or 1 if there is none. */
static int
store_cache_out(const struct store_cent *ce, struct store_patient *p,
    struct store_enrolment *e, int *has_en)
{
	if (ce == NULL)
		return 1;
	*p = ce->pt;
	*has_en = ce->has_en;
	*e = ce->en;
	e->state = store_cache_dup(ce->en.state);
	return 0;
}

int
store_cache_find(struct store *s, const char *adapter, const char *chat,
    struct store_patient *p, struct store_enrolment *e, int *has_en)
{
	if (s->cache == NULL)
		return 1;
	store_cache_check_others(s);
	return store_cache_out(store_cache_by_chat(s->cache, adapter, chat), p,
	    e, has_en);
}

int
store_cache_get(struct store *s, int64_t id, struct store_patient *p,
    struct store_enrolment *e, int *has_en)
{
	if (s->cache == NULL)
		return 1;
	store_cache_check_others(s);
	return store_cache_out(store_cache_by_id(s->cache, id), p, e, has_en);
}

/* Keeps what was just read from the database. */
void
store_cache_put(struct store *s, const struct store_patient *p,
    const struct store_enrolment *e, int has_en)
{
	struct store_cache	*c = s->cache;
	struct store_cent	*ce;
	int32_t			 i;

	if (c == NULL)
		return;
	if ((ce = store_cache_by_id(c, p->id)) != NULL)
		ce->live = 0;
	if (c->n == c->cap) {
		if (c->cap < c->max) {
			store_cache_size(c, c->cap * 2 < c->max ?
			    c->cap * 2 : c->max);
			store_cache_empty_buckets(c);
			for (i = 0; i < c->n; i++)
				store_cache_link(c, i);
		} else
			store_cache_clear(s);
	}
	ce = &c->v[c->n];
	ce->pt = *p;
	ce->asked = NULL;
	ce->asked_len = 0;
	ce->asked_known = p->ask_q[0] == '\0' || p->ask_i == 0;
	ce->has_en = has_en;
	ce->en = *e;
	ce->en.state = store_cache_dup(e->state);
	ce->live = 1;
	store_cache_link(c, c->n++);
}

/* store_patient_update() wrote these columns. */
void
store_cache_patient_written(struct store *s, const struct store_patient *p)
{
	struct store_cent	*ce;

	if (s->cache == NULL || (ce = store_cache_by_id(s->cache, p->id)) ==
	    NULL)
		return;
	memcpy(ce->pt.tz, p->tz, sizeof ce->pt.tz);
	ce->pt.remind_min = p->remind_min;
	memcpy(ce->pt.lang, p->lang, sizeof ce->pt.lang);
	ce->pt.consent = p->consent;
	ce->pt.unreachable = p->unreachable;
	/* ask_i is not a column: the entry counts answers itself, and a
	 * writer's copy may be older than the last one. Only a questionnaire
	 * asked anew (ask_i 0 then, by store.h's rule) or closed resets it. */
	if (strcmp(ce->pt.ask_q, p->ask_q) != 0 ||
	    ce->pt.ask_from != p->ask_from) {
		ce->pt.ask_i = p->ask_q[0] != '\0' ? p->ask_i : 0;
		ce->asked_len = 0;
		ce->asked_known = ce->pt.ask_i == 0;
	}
	memcpy(ce->pt.ask_q, p->ask_q, sizeof ce->pt.ask_q);
	ce->pt.ask_from = p->ask_from;
	memcpy(ce->pt.ask_prev, p->ask_prev, sizeof ce->pt.ask_prev);
}

/* store_answer_insert() added an answer: one more after ask_from (it is
 * the patient's newest), which counts while a questionnaire is open. */
void
store_cache_answered(struct store *s, int64_t patient_id,
    const char *question, const char *value)
{
	struct store_cent	*ce;
	size_t			 nq, nv;

	if (s->cache == NULL ||
	    (ce = store_cache_by_id(s->cache, patient_id)) == NULL ||
	    ce->pt.ask_q[0] == '\0')
		return;
	ce->pt.ask_i++;
	if (!ce->asked_known)
		return;
	nq = strlen(question) + 1;
	nv = strlen(value) + 1;
	ce->asked = xrealloc(ce->asked, ce->asked_len + nq + nv);
	memcpy(ce->asked + ce->asked_len, question, nq);
	memcpy(ce->asked + ce->asked_len + nq, value, nv);
	ce->asked_len += nq + nv;
}

/* store_answer_since() for the questionnaire in progress, if the cache
 * knows its answers: 0, or 1 to ask the database. */
int
store_cache_since(struct store *s, int64_t patient_id, int64_t after,
    void (*fn)(void *, const char *, const char *), void *ud)
{
	struct store_cent	*ce;
	const char		*q, *v;
	size_t			 i = 0;

	if (s->cache == NULL ||
	    (ce = store_cache_by_id(s->cache, patient_id)) == NULL ||
	    !ce->asked_known || ce->pt.ask_q[0] == '\0' ||
	    ce->pt.ask_from != after)
		return 1;
	while (i < ce->asked_len) {
		q = ce->asked + i;
		v = q + strlen(q) + 1;
		fn(ud, q, v);
		i = (size_t)(v - ce->asked) + strlen(v) + 1;
	}
	return 0;
}

/* store_enrolment_save() wrote the row's columns (`row`) and the state
 * (`state`, NULL stored as "{}") of enrolment e->id. */
void
store_cache_enrolment_written(struct store *s,
    const struct store_enrolment *e, int row, int state)
{
	struct store_cent	*ce;

	if (s->cache == NULL ||
	    (ce = store_cache_by_id(s->cache, e->patient_id)) == NULL)
		return;
	if (!ce->has_en || ce->en.id != e->id) {
		/* Not the course we hold: whatever it was, drop it. */
		ce->live = 0;
		return;
	}
	if (row) {
		memcpy(ce->en.status, e->status, sizeof ce->en.status);
		ce->en.pressure = e->pressure;
		ce->en.sessions_done = e->sessions_done;
		ce->en.last_session_at = e->last_session_at;
		ce->en.ended_at = e->ended_at;
		ce->en.version = e->version;
		ce->en.enrolled_at = e->enrolled_at;
	}
	if (state) {
		free(ce->en.state);
		ce->en.state = xstrdup(e->state != NULL ? e->state : "{}");
	}
}

/* The patient's latest enrolment changed (a new one). */
void
store_cache_forget(struct store *s, int64_t patient_id)
{
	struct store_cent	*ce;

	if (s->cache != NULL &&
	    (ce = store_cache_by_id(s->cache, patient_id)) != NULL)
		ce->live = 0;
}

/*
 * SQLite's update hook: a row of `table` changed. The writers above say
 * what they change (s->cache_known); anything else about patients, their
 * answers, enrolments or states empties the cache.
 */
void
store_cache_hook(void *ud, int op, const char *db, const char *table,
    sqlite3_int64 rowid)
{
	struct store	*s = ud;

	(void)op;
	(void)db;
	(void)rowid;
	/* Every row written comes here: the first letter rules out most. */
	if (s->cache == NULL || s->cache_known ||
	    (table[0] != 'p' && table[0] != 'e' && table[0] != 'a'))
		return;
	if (strcmp(table, "patients") == 0 ||
	    strcmp(table, "answers") == 0 ||
	    strcmp(table, "enrolments") == 0 ||
	    strcmp(table, "protocol_state") == 0)
		store_cache_clear(s);
}
