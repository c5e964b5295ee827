/*
 * engine.c: the engine's life cycle, its protocols, and the two ways an
 * event enters it: a patient's message and a due job. Each runs in one
 * transaction; see engine.h.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "clock.h"
#include "config.h"
#include "engine_int.h"
#include "log.h"
#include "luajson.h"
#include "xmalloc.h"

static void	engine_drop_deliveries(struct engine *e, int mark);

int
engine_new(struct engine **out, const struct config *cfg, struct store *st,
    char **cause)
{
	struct engine	*e = xcalloc(1, sizeof *e);

	e->cfg = cfg;
	e->st = st;
	e->limits.memory = cfg->lua_memory;
	e->limits.instructions = cfg->lua_instructions;
	if (catalog_load(cfg->lang_dir, &e->cat, cause) != 0) {
		free(e);
		return -1;
	}
	engine_ask_init(e);
	*out = e;
	return 0;
}

void
engine_free(struct engine *e)
{
	int	i;

	if (e == NULL)
		return;
	for (i = 0; i < e->nprotos; i++) {
		proto_free(e->protos[i].p);
		free(e->protos[i].path);
		free(e->protos[i].error);
	}
	free(e->protos);
	for (i = 0; i < e->nbad; i++)
		free(e->bad[i].path);
	free(e->bad);
	engine_version_free(e);
	for (i = 0; i < e->npending; i++)
		cJSON_Delete(e->pending[i].data);
	free(e->pending);
	engine_drop_deliveries(e, 0);
	free(e->deliv);
	engine_ask_free(e);
	catalog_free(e->cat);
	free(e);
}

/* ---- protocols ---------------------------------------------------- */

struct protocol *
engine_protocol(struct engine *e, const char *id)
{
	int	i;

	for (i = 0; i < e->nprotos; i++)
		if (strcmp(e->protos[i].p->id, id) == 0)
			return e->protos[i].p;
	return NULL;
}

struct protocol *
engine_default_protocol(struct engine *e)
{
	struct protocol	*p = NULL;

	if (e->cfg->default_protocol != NULL)
		p = engine_protocol(e, e->cfg->default_protocol);
	if (p == NULL && e->nprotos > 0)
		p = e->protos[0].p;
	return p;
}

static int
engine_is_lua(const char *name)
{
	size_t	n = strlen(name);

	return n > 4 && name[0] != '.' && strcmp(name + n - 4, ".lua") == 0;
}

/* The file's size, time and inode, all 0 if it cannot be read. */
static void
engine_stat(const char *path, struct engine_fsig *sig)
{
	struct stat	sb;

	memset(sig, 0, sizeof *sig);
	if (stat(path, &sb) != 0)
		return;
	sig->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
	    sb.st_mtim.tv_nsec;
	sig->size = (int64_t)sb.st_size;
	sig->ino = (int64_t)sb.st_ino;
}

/*
 * The helper files a protocol at `path` may require (lib/ beside it),
 * hashed: a sum of one FNV-1a per file, so the order readdir gives does
 * not matter. A change to any helper then reloads every protocol of the
 * folder, and those whose text (file and helpers) is the same pass
 * engine_version_check() unchanged.
 */
static uint64_t
engine_lib_sig(const char *path)
{
	struct engine_fsig	 h;
	struct dirent		*de;
	DIR			*d;
	char			*dir = proto_lib_dir(path), *file;
	uint64_t		 sum = 0, x;

	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (!engine_is_lua(de->d_name))
			continue;
		file = xasprintf("%s/%s", dir, de->d_name);
		engine_stat(file, &h);
		free(file);
		x = UINT64_C(14695981039346656037);
		x = (x ^ (uint64_t)h.mtime_ns) * UINT64_C(1099511628211);
		x = (x ^ (uint64_t)h.size) * UINT64_C(1099511628211);
		x = (x ^ (uint64_t)h.ino) * UINT64_C(1099511628211);
		sum += x;
	}
	closedir(d);
	free(dir);
	return sum;
}

/* The protocol file's signature, with its possible helpers'. */
static void
engine_file_sig(const char *path, struct engine_fsig *sig)
{
	engine_stat(path, sig);
	sig->helpers = engine_lib_sig(path);
}

/* The jobs courses on `id` failed on (its file broken or missing) get
 * another chance now that a good version is loaded: at a reload, at the
 * start, or when the file comes back. How many, 0 if the store failed.
 * Active courses begun before daemons planned their end get it too. */
static int64_t
engine_retry_failed(struct engine *e, const char *id, int64_t now)
{
	int64_t	n, ends;

	if (store_begin(e->st) != 0)
		return 0;
	if (store_job_retry_failed(e->st, id, now, &n) != 0 ||
	    store_job_end_missing(e->st, id, now, &ends) != 0 ||
	    store_commit(e->st) != 0) {
		store_rollback(e->st);
		return 0;
	}
	if (ends > 0)
		log_info("event=course_ends_planned protocol=%s count=%lld", id,
		    (long long)ends);
	return n;
}

int
engine_load_file(struct engine *e, const char *path, char **cause)
{
	struct protocol		*p;
	struct engine_fsig	 sig;
	int64_t			 retried;

	engine_file_sig(path, &sig);
	if (proto_load(path, &e->limits, &p, cause) != 0)
		return -1;
	if (engine_protocol(e, p->id) != NULL) {
		*cause = xasprintf("%s: a protocol with id '%s' is loaded "
		    "already", path, p->id);
		proto_free(p);
		return -1;
	}
	if (engine_version_check(e, p, path, clock_now(), cause) != 0) {
		proto_free(p);
		return -1;
	}
	e->protos = xrealloc(e->protos, (size_t)(e->nprotos + 1) *
	    sizeof *e->protos);
	memset(&e->protos[e->nprotos], 0, sizeof e->protos[e->nprotos]);
	e->protos[e->nprotos].path = xstrdup(path);
	e->protos[e->nprotos].p = p;
	e->protos[e->nprotos].error = NULL;
	e->protos[e->nprotos].sig = sig;
	e->nprotos++;
	retried = engine_retry_failed(e, p->id, clock_now());
	log_info("event=protocol_loaded protocol=%s version=%d "
	    "retried_jobs=%lld", p->id, p->version, (long long)retried);
	return 0;
}

static int
engine_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.lua files of `dir`, sorted (caller frees); -1 if it cannot be
 * read. */
static int
engine_dir_names(const char *dir, char ***out)
{
	DIR		*d;
	struct dirent	*de;
	char		**names = NULL;
	int		 n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!engine_is_lua(de->d_name))
			continue;
		names = xrealloc(names, (size_t)(n + 1) * sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	/* Sorted, so which protocol comes first never depends on the disk. */
	if (n > 0)
		qsort(names, (size_t)n, sizeof *names, engine_name_cmp);
	*out = names;
	return n;
}

int
engine_load_dir(struct engine *e, const char *dir, char **cause)
{
	char		**names = NULL, *path;
	int		 n, i, rc = 0;

	if ((n = engine_dir_names(dir, &names)) < 0) {
		*cause = xasprintf("%s: cannot open the protocol folder", dir);
		return -1;
	}
	for (i = 0; i < n; i++) {
		path = xasprintf("%s/%s", dir, names[i]);
		if (rc == 0)
			rc = engine_load_file(e, path, cause);
		free(path);
		free(names[i]);
	}
	free(names);
	return rc;
}

int
engine_ready(struct engine *e, char **cause)
{
	if (e->nprotos == 0) {
		*cause = xstrdup("no protocol is loaded");
		return -1;
	}
	if (e->cfg->default_protocol != NULL &&
	    engine_protocol(e, e->cfg->default_protocol) == NULL &&
	    e->nprotos > 1) {
		*cause = xasprintf("default_protocol '%s' is not among the "
		    "loaded protocols", e->cfg->default_protocol);
		return -1;
	}
	return 0;
}

/* Re-reads the i-th protocol file; 0, or 1 if it failed (logged, and kept
 * for the health check). */
static int
engine_reload_at(struct engine *e, int i, int64_t now)
{
	struct engine_proto	*ep = &e->protos[i];
	struct protocol		*p;
	char			*cause = NULL;
	int64_t			 retried;

	engine_file_sig(ep->path, &ep->sig);
	if (proto_load(ep->path, &e->limits, &p, &cause) == 0 &&
	    strcmp(p->id, ep->p->id) != 0) {
		cause = xasprintf("%s: the protocol id changed (from '%s' to "
		    "'%s')", ep->path, ep->p->id, p->id);
		proto_free(p);
	} else if (cause == NULL &&
	    engine_version_check(e, p, ep->path, now, &cause) != 0)
		proto_free(p);
	if (cause != NULL) {
		log_error("event=protocol_reload_failed path=%s error=%s",
		    log_q(ep->path), log_q(cause));
		free(ep->error);
		ep->error = cause;
		return 1;
	}
	proto_free(ep->p);
	ep->p = p;
	free(ep->error);
	ep->error = NULL;
	retried = engine_retry_failed(e, p->id, now);
	log_info("event=protocol_reloaded protocol=%s version=%d "
	    "retried_jobs=%lld", p->id, p->version, (long long)retried);
	return 0;
}

int
engine_reload(struct engine *e, int64_t now)
{
	int	i, failed = 0;

	for (i = 0; i < e->nprotos; i++)
		failed += engine_reload_at(e, i, now);
	return failed;
}

static int
engine_sig_eq(const struct engine_fsig *a, const struct engine_fsig *b)
{
	return a->mtime_ns == b->mtime_ns && a->size == b->size &&
	    a->ino == b->ino && a->helpers == b->helpers;
}

/* A new file of the folder: loaded unless it failed before unchanged. */
static int
engine_rescan_new(struct engine *e, const char *path)
{
	struct engine_fsig	 sig;
	char			*cause = NULL;
	int			 i;

	engine_file_sig(path, &sig);
	for (i = 0; i < e->nbad; i++)
		if (strcmp(e->bad[i].path, path) == 0)
			break;
	if (i < e->nbad && engine_sig_eq(&e->bad[i].sig, &sig))
		return 1;
	if (engine_load_file(e, path, &cause) == 0) {
		if (i < e->nbad) {
			free(e->bad[i].path);
			e->bad[i] = e->bad[--e->nbad];
		}
		return 0;
	}
	log_error("event=protocol_load_failed path=%s error=%s", log_q(path),
	    log_q(cause));
	free(cause);
	if (i == e->nbad) {
		e->bad = xrealloc(e->bad, (size_t)(e->nbad + 1) *
		    sizeof *e->bad);
		e->bad[e->nbad++].path = xstrdup(path);
	}
	e->bad[i].sig = sig;
	return 1;
}

int
engine_rescan(struct engine *e, const char *dir, int64_t now)
{
	struct engine_proto	*ep;
	struct engine_fsig	 sig;
	struct stat		 sb;
	char			**names = NULL, *path;
	int			 n, i, j, failed = 0;

	for (i = 0; i < e->nprotos; i++) {
		ep = &e->protos[i];
		if (stat(ep->path, &sb) != 0 && errno == ENOENT) {
			/* What runs stays: patients are mid-course. */
			if (!ep->gone)
				log_warn("event=protocol_file_deleted "
				    "protocol=%s path=%s keeps_running=1",
				    ep->p->id, log_q(ep->path));
			ep->gone = 1;
			continue;
		}
		engine_file_sig(ep->path, &sig);
		if (!ep->gone && engine_sig_eq(&sig, &ep->sig))
			continue;
		ep->gone = 0;
		failed += engine_reload_at(e, i, now);
	}
	if ((n = engine_dir_names(dir, &names)) < 0) {
		log_error("event=protocol_folder_unreadable path=%s",
		    log_q(dir));
		return failed;
	}
	for (i = 0; i < n; i++) {
		path = xasprintf("%s/%s", dir, names[i]);
		for (j = 0; j < e->nprotos; j++)
			if (strcmp(e->protos[j].path, path) == 0)
				break;
		if (j == e->nprotos)
			failed += engine_rescan_new(e, path);
		free(path);
		free(names[i]);
	}
	free(names);
	return failed;
}

void
engine_set_observer(struct engine *e, engine_observer_fn *fn, void *ud)
{
	e->observer = fn;
	e->observer_ud = ud;
}

void
engine_set_deliver(struct engine *e, const char *adapter,
    engine_deliver_fn *fn, void *ud)
{
	snprintf(e->deliver_adapter, sizeof e->deliver_adapter, "%s",
	    fn != NULL ? adapter : "");
	e->deliver = fn;
	e->deliver_ud = ud;
}

const struct engine_stats *
engine_stats(struct engine *e)
{
	return &e->stats;
}

int
engine_protocols(struct engine *e, struct engine_proto_status *out, int max)
{
	int	i;

	for (i = 0; i < e->nprotos && i < max; i++) {
		out[i].id = e->protos[i].p->id;
		out[i].path = e->protos[i].path;
		out[i].version = e->protos[i].p->version;
		out[i].error = e->protos[i].error;
	}
	return e->nprotos;
}

struct store *
engine_store(struct engine *e)
{
	return e->st;
}

const char *
engine_text_for(struct engine *e, const char *lang, const char *key)
{
	const char	*t;

	if (lang == NULL || lang[0] == '\0')
		lang = e->cfg->language;
	t = catalog_get(e->cat, lang, key);
	return t != NULL ? t : key;
}

char *
engine_render(struct engine *e, const char *lang, const char *key,
    const cJSON *params)
{
	return catalog_render_json(engine_text_for(e, lang, key), params);
}

const char *
engine_lang_of(struct engine *e, const char *adapter, const char *chat,
    char *buf, size_t size)
{
	struct store_patient	p;

	memset(&p, 0, sizeof p);
	snprintf(buf, size, "%s", e->cfg->language);
	if (store_patient_find(e->st, adapter, chat, &p) == 0 &&
	    p.lang[0] != '\0')
		snprintf(buf, size, "%s", p.lang);
	return buf;
}

/* ---- events ------------------------------------------------------- */

/*
 * Records an event in the audit trail now and queues it for the observer,
 * which hears of it only once the transaction has committed. Takes `data`.
 */
void
engine_emit(struct engine_op *op, const char *kind, cJSON *data)
{
	struct engine		*e = op->e;
	struct engine_event	*ev;
	char			*text;

	if (data == NULL)
		data = cJSON_CreateObject();
	text = luajson_print(data);
	store_event_insert(e->st, op->pt.id, op->has_en ? op->en.id : 0,
	    op->now, kind, text);
	free(text);
	if (e->npending == e->cappending) {
		e->cappending = e->cappending ? e->cappending * 2 : 16;
		e->pending = xrealloc(e->pending, (size_t)e->cappending *
		    sizeof *e->pending);
	}
	ev = &e->pending[e->npending++];
	ev->patient = op->pt.id;
	ev->t = op->now;
	snprintf(ev->kind, sizeof ev->kind, "%s", kind);
	ev->data = data;
}

/*
 * Stores a message in the outbox, queued for its adapter; for the
 * in-process adapter (engine_set_deliver), stored as sent and held for it
 * until the commit. Copies what it keeps.
 */
int
engine_queue(struct engine_op *op, int64_t patient, const char *chat,
    const char *body, const char *meta)
{
	struct engine		*e = op->e;
	struct engine_delivery	*d;
	int64_t			 id;

	if (e->deliver == NULL ||
	    strcmp(op->pt.adapter, e->deliver_adapter) != 0)
		return store_outbox_insert(e->st, patient, op->pt.adapter,
		    chat, body, meta, op->now, NULL);
	if (store_outbox_insert_sent(e->st, patient, op->pt.adapter, chat,
	    body, meta, op->now, &id) != 0)
		return -1;
	if (e->ndeliv == e->capdeliv) {
		e->capdeliv = e->capdeliv ? e->capdeliv * 2 : 16;
		e->deliv = xrealloc(e->deliv, (size_t)e->capdeliv *
		    sizeof *e->deliv);
	}
	d = &e->deliv[e->ndeliv++];
	d->id = id;
	d->patient = patient;
	d->chat = xstrdup(chat);
	d->body = xstrdup(body);
	d->meta = meta != NULL ? xstrdup(meta) : NULL;
	return 0;
}

static void
engine_delivery_free(struct engine_delivery *d)
{
	free(d->chat);
	free(d->body);
	free(d->meta);
}

/* Forgets the messages held since `mark` (a rollback). */
static void
engine_drop_deliveries(struct engine *e, int mark)
{
	while (e->ndeliv > mark)
		engine_delivery_free(&e->deliv[--e->ndeliv]);
}

/* An erasure deleted the outbox rows of this patient or chat, those of
 * this transaction too: their held messages go with them. */
void
engine_forget_deliveries(struct engine *e, int64_t patient, const char *chat)
{
	struct engine_delivery	*d;
	int			 i, n = 0;

	for (i = 0; i < e->ndeliv; i++) {
		d = &e->deliv[i];
		if (d->patient == patient || strcmp(d->chat, chat) == 0)
			engine_delivery_free(d);
		else
			e->deliv[n++] = *d;
	}
	e->ndeliv = n;
}

/* After commit: tells the observer and delivers the held messages. After
 * rollback: forgets both. */
static void
engine_flush_events(struct engine *e, int committed)
{
	struct engine_message	 m;
	struct engine_delivery	*d;
	int			 i;

	for (i = 0; i < e->npending; i++) {
		if (committed) {
			e->stats.events++;
			if (e->observer != NULL)
				e->observer(e->observer_ud, e->pending[i].patient,
				    e->pending[i].t, e->pending[i].kind,
				    e->pending[i].data);
		}
		cJSON_Delete(e->pending[i].data);
	}
	e->npending = 0;
	for (i = 0; committed && e->deliver != NULL && i < e->ndeliv; i++) {
		d = &e->deliv[i];
		m.id = d->id;
		m.patient = d->patient;
		m.chat = d->chat;
		m.body = d->body;
		m.meta = d->meta;
		e->deliver(e->deliver_ud, &m);
	}
	engine_drop_deliveries(e, 0);
}

/* Forgets the events queued since `mark` (a rolled-back savepoint). */
static void
engine_drop_events(struct engine *e, int mark)
{
	while (e->npending > mark)
		cJSON_Delete(e->pending[--e->npending].data);
}

/* ---- the operation: load, save ------------------------------------ */

int
engine_running(const struct engine_op *op)
{
	return op->has_en && op->en.ended_at == 0 &&
	    strcmp(op->en.status, ENROL_FINISHED) != 0 &&
	    strcmp(op->en.status, ENROL_STOPPED) != 0;
}

static void
engine_op_clear(struct engine_op *op)
{
	store_enrolment_clear(&op->en);
	store_enrolment_clear(&op->en0);
	free(op->error);
	op->error = NULL;
}

/*
 * The protocol of the enrolment just read (op->has_en, op->en). A course
 * that has ended needs none: a patient whose old course's protocol is gone
 * can still /start again, and their jobs close without effect (op->p is
 * then NULL).
 */
static int
engine_op_protocol(struct engine_op *op)
{
	int	rc;

	if (op->has_en) {
		op->p = engine_protocol(op->e, op->en.protocol);
		if (op->p == NULL && !engine_running(op))
			return 0;
		if (op->p == NULL) {
			op->error = xasprintf("protocol '%s' is not loaded",
			    op->en.protocol);
			return ENGINE_EPROTO;
		}
		/* The patient keeps the version they enrolled with, unless
		 * the loaded one takes them over (engine_ver.c). */
		if (op->p->version != op->en.version &&
		    (rc = engine_version(op)) != 0) {
			if (rc != ENGINE_EPROTO || engine_running(op))
				return rc;
			free(op->error);	/* ended: none needed */
			op->error = NULL;
			op->p = NULL;
		}
	}
	return 0;
}

static int
engine_strdiff(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/* Remembers the rows as loaded (see engine_op_save). */
static void
engine_op_snapshot(struct engine_op *op)
{
	/* A second guarded step (after a version upgrade) snapshots again. */
	store_enrolment_clear(&op->en0);
	if ((op->has_pt0 = op->has_pt))
		op->pt0 = op->pt;
	if ((op->has_en0 = op->has_en)) {
		op->en0 = op->en;
		op->en0.state = op->en.state ? xstrdup(op->en.state) : NULL;
	}
}

static int
engine_patient_changed(const struct engine_op *op)
{
	const struct store_patient	*a = &op->pt, *b = &op->pt0;

	return !op->has_pt0 || a->id != b->id || strcmp(a->tz, b->tz) != 0 ||
	    a->remind_min != b->remind_min || strcmp(a->lang, b->lang) != 0 ||
	    a->consent != b->consent || a->unreachable != b->unreachable ||
	    strcmp(a->ask_q, b->ask_q) != 0 || a->ask_from != b->ask_from ||
	    strcmp(a->ask_prev, b->ask_prev) != 0;
}

static int
engine_enrolment_changed(const struct engine_op *op)
{
	const struct store_enrolment	*a = &op->en, *b = &op->en0;

	return !op->has_en0 || a->id != b->id || a->version != b->version ||
	    strcmp(a->status, b->status) != 0 || a->pressure != b->pressure ||
	    a->sessions_done != b->sessions_done ||
	    a->enrolled_at != b->enrolled_at ||
	    a->last_session_at != b->last_session_at ||
	    a->ended_at != b->ended_at;
}

/* Writes back the patient, the enrolment and the protocol state, each only
 * if it changed: most events change one of them, and every skipped
 * statement counts. */
static int
engine_op_save(struct engine_op *op)
{
	int	row, state;

	if (op->has_pt && engine_patient_changed(op) &&
	    store_patient_update(op->e->st, &op->pt) != 0)
		return -1;
	if (!op->has_en)
		return 0;
	row = engine_enrolment_changed(op);
	state = !op->has_en0 || op->en.id != op->en0.id ||
	    engine_strdiff(op->en.state, op->en0.state);
	if ((row || state) &&
	    store_enrolment_save(op->e->st, &op->en, row, state) != 0)
		return -1;
	return 0;
}

/* The id of the protocol the event is about, loaded or not ("-": none). */
static const char *
engine_op_protocol_id(const struct engine_op *op)
{
	if (op->p != NULL)
		return op->p->id;
	return op->has_en ? op->en.protocol : "-";
}

/* Tells the clinician about the patient with the catalog text `key`. */
static void
engine_clinician_alert(struct engine_op *op, const char *key)
{
	char	params[160], *body;
	cJSON	*meta = cJSON_CreateObject();

	snprintf(params, sizeof params, "{\"patient\":%lld,\"protocol\":\"%s\"}",
	    (long long)op->pt.id, engine_op_protocol_id(op));
	body = catalog_render(engine_text(op, key), params);
	cJSON_AddStringToObject(meta, "type", "alert");
	cJSON_AddNumberToObject(meta, "patient", (double)op->pt.id);
	engine_send(op, ENGINE_CLINICIAN, body, meta);
	free(body);
}

/*
 * The protocol failed: its work is already undone (savepoint). Record why
 * with the event, log it without patient data, and tell whoever waits:
 * the patient who wrote, the patient whose planned step did not come, or
 * (for "clear") the clinician, whose reply says so.
 */
static void
engine_op_failed(struct engine_op *op, const char *what, int64_t id)
{
	struct engine	*e = op->e;
	int		 job = strcmp(what, "job") == 0;

	e->stats.lua_errors++;
	log_error("event=protocol_error protocol=%s patient=%lld %s=%lld "
	    "error=%s", engine_op_protocol_id(op), (long long)op->pt.id,
	    what, (long long)id, log_q(op->error));
	/* Everyone who wrote hears back, a newcomer too: engine_inbound()
	 * fills in where a message came from before the patient exists. As a
	 * `message` event too, so simulate shows it. A patient who said
	 * nothing is not thanked for it: they hear that their plan waits. */
	if (strcmp(what, "clear") != 0 && op->pt.chat[0] != '\0')
		engine_say(op, job ? "holding_job" : "holding", NULL);
	/* A failed job stalls the course until the protocol is fixed and
	 * reloaded: the clinician must know, not only the log. */
	if (op->has_pt && job)
		engine_clinician_alert(op, "protocol_failed");
}

/*
 * Runs `fn` between a savepoint and its release. On a protocol failure the
 * savepoint is rolled back, so the event's other effects are kept only if
 * they were made before.
 */
int
engine_op_guarded(struct engine_op *op, int (*fn)(struct engine_op *, void *),
    void *arg)
{
	int	mark = op->e->npending, dmark = op->e->ndeliv, rc;

	if (store_savepoint(op->e->st) != 0)
		return -1;
	engine_op_snapshot(op);
	rc = fn(op, arg);
	if (rc == 0)
		rc = engine_op_save(op);
	if (rc == 0)
		return store_release_savepoint(op->e->st);
	if (store_rollback_savepoint(op->e->st) != 0)
		return -1;
	engine_drop_events(op->e, mark);
	engine_drop_deliveries(op->e, dmark);
	return rc;
}

static int
engine_finish_tx(struct engine *e, int rc)
{
	if (rc < 0 && rc != ENGINE_EPROTO) {
		store_rollback(e->st);
		engine_flush_events(e, 0);
		return -1;
	}
	if (store_commit(e->st) != 0) {
		store_rollback(e->st);
		engine_flush_events(e, 0);
		return -1;
	}
	engine_flush_events(e, 1);
	return 0;
}

/* ---- a patient's message ------------------------------------------ */

struct engine_msg {
	const char	*adapter;
	const char	*chat;
	const char	*text;
};

/* The patient wrote after being unreachable: reachable again, and told
 * where their course stands (reminders were withheld meanwhile). */
static int
engine_returned(struct engine_op *op)
{
	char	params[160];

	op->pt.unreachable = 0;
	engine_emit(op, "reachable", NULL);
	if (!op->has_en || op->p == NULL)
		return 0;
	snprintf(params, sizeof params, "{\"done\":%d,\"status\":\"%s\"}",
	    op->en.sessions_done, op->en.status);
	return engine_say(op, "welcome_back", params);
}

static int
engine_msg_handle(struct engine_op *op, void *arg)
{
	struct engine_msg	*m = arg;
	int			 rc, back = 0;

	/* The adapter could not reach them (they blocked the bot); writing
	 * again brings them back, told where their course stands. */
	if (op->has_pt && op->pt.unreachable) {
		back = 1;
		if (engine_returned(op) != 0)
			return -1;
	}
	if (engine_is_command(m->text))
		return engine_command(op, m->adapter, m->chat, m->text);
	if (!op->has_pt)
		return engine_send(op, m->chat, engine_text(op, "unknown_patient"),
		    NULL);
	/* A question they never saw: asked again, not answered by this. */
	if (back && op->pt.ask_q[0] != '\0')
		return engine_ask_again(op);
	if (op->pt.ask_q[0] != '\0')
		return engine_answer(op, m->text);
	if (!engine_running(op) || op->p == NULL || !op->p->has[EV_MESSAGE])
		return engine_send(op, op->pt.chat,
		    engine_text(op, "not_understood"), NULL);
	rc = engine_call(op, EV_MESSAGE, NULL, NULL, m->text);
	return rc;
}

/*
 * Whether the message can be handled while the patient's protocol is
 * missing (not loaded, or their version's source lost): /stop, /erase and
 * the answers to their confirmations are the engine's own, and a patient
 * must be able to leave or be forgotten whatever state the clinic's files
 * are in. Everything else waits for the protocol.
 */
static int
engine_msg_needs_protocol(const struct engine_op *op, const char *text)
{
	char	name[16];

	if (!op->has_pt)
		return 1;
	if (engine_is_command(text)) {
		engine_command_name(text, name, sizeof name);
		return !engine_ask_confirm(name);	/* /stop, /erase */
	}
	return !engine_ask_confirm(op->pt.ask_q);
}

/* Writes the adapter's cursor in its own transaction, for an update the
 * engine did not take (seen before, or nothing for a patient). */
int
engine_cursor(struct engine *e, const struct engine_cursor *cur, int64_t now)
{
	if (cur == NULL || cur->key == NULL)
		return 0;
	if (store_begin(e->st) != 0)
		return -1;
	if (store_kv_set(e->st, cur->key, cur->value, now) != 0) {
		store_rollback(e->st);
		return -1;
	}
	if (store_commit(e->st) != 0) {
		store_rollback(e->st);
		return -1;
	}
	return 0;
}

int
engine_inbound(struct engine *e, const char *adapter, const char *chat,
    const char *external_id, const char *text, int64_t now)
{
	return engine_inbound_at(e, adapter, chat, external_id, text, NULL,
	    now);
}

/* engine_inbound_at() once the text is clean. */
static int
engine_inbound_text(struct engine *e, const char *adapter, const char *chat,
    const char *external_id, const char *text,
    const struct engine_cursor *cur, int64_t now)
{
	struct engine_op	 op = { .e = e, .now = now, .inbound = 1 };
	struct engine_msg	 m = { adapter, chat, text };
	int64_t			 id;
	int			 rc;

	if (store_begin(e->st) != 0)
		return -1;
	rc = store_inbox_insert(e->st, adapter, external_id, chat, text, now,
	    &id);
	if (rc == STORE_DUPLICATE) {
		store_rollback(e->st);
		e->stats.duplicates++;
		return engine_cursor(e, cur, now) != 0 ? -1 : 1;
	}
	if (rc == 0 && cur != NULL && cur->key != NULL)
		rc = store_kv_set(e->st, cur->key, cur->value, now);
	if (rc != 0)
		return engine_finish_tx(e, -1);
	e->stats.inbound++;
	/* The patient and their course in one read. */
	rc = store_patient_find_current(e->st, adapter, chat, &op.pt, &op.en,
	    &op.has_en);
	if (rc < 0)
		goto out;
	op.has_pt = rc == 0;
	if (!op.has_pt) {
		/* Someone new: replies go back where the message came from. */
		snprintf(op.pt.adapter, sizeof op.pt.adapter, "%s", adapter);
		snprintf(op.pt.chat, sizeof op.pt.chat, "%s", chat);
		snprintf(op.pt.lang, sizeof op.pt.lang, "%s", e->cfg->language);
	}
	rc = engine_op_protocol(&op);
	if (rc == ENGINE_EPROTO && !engine_msg_needs_protocol(&op, text)) {
		log_warn("event=protocol_missing protocol=%s patient=%lld "
		    "error=%s handled=without", op.en.protocol,
		    (long long)op.pt.id, log_q(op.error));
		free(op.error);
		op.error = NULL;
		op.p = NULL;
		rc = 0;
	}
	if (rc == 0)
		rc = engine_op_guarded(&op, engine_msg_handle, &m);
	/* The row went in as "done"; only a failure changes it. */
	if (rc == ENGINE_EPROTO) {
		engine_op_failed(&op, "inbox", id);
		rc = store_inbox_close(e->st, id, "failed", op.error);
	}
out:
	rc = engine_finish_tx(e, rc);
	engine_op_clear(&op);
	return rc;
}

int
engine_inbound_at(struct engine *e, const char *adapter, const char *chat,
    const char *external_id, const char *text,
    const struct engine_cursor *cur, int64_t now)
{
	char	*clean;
	int	 rc;

	/* What a patient sends is stored and handled as valid UTF-8 of at
	 * most ENGINE_MAX_INBOUND bytes: broken sequences become U+FFFD and
	 * the rest of a longer text is dropped (Telegram allows 4096
	 * characters; a console line, a Matrix client or a forged update
	 * may send more). So no protocol, answer or reply ever sees bytes
	 * an adapter could not send back. */
	clean = engine_utf8_clean(text, ENGINE_MAX_INBOUND);
	rc = engine_inbound_text(e, adapter, chat, external_id,
	    clean != NULL ? clean : text, cur, now);
	free(clean);
	/* The WAL may still hold pages from before an erasure. */
	if (e->erased) {
		e->erased = 0;
		store_wal_wipe(e->st);
	}
	return rc;
}

/* ---- the clinician lifts a hold ------------------------------------ */

static int
engine_clear_handle(struct engine_op *op, void *arg)
{
	(void)arg;
	snprintf(op->en.status, sizeof op->en.status, "%s", ENROL_ACTIVE);
	engine_emit(op, "cleared", NULL);
	if (engine_send(op, op->pt.chat, engine_text(op, "cleared"), NULL) != 0 ||
	    engine_plan_end(op) != 0)
		return -1;
	op->by = "clinician";
	return engine_call(op, EV_RESUMED, NULL, NULL, NULL);
}

int
engine_unreachable(struct engine *e, const char *adapter, const char *chat,
    const char *reason, int64_t now)
{
	struct engine_op	 op = { .e = e, .now = now };
	cJSON			*data;
	int			 rc;

	if (store_begin(e->st) != 0)
		return -1;
	rc = store_patient_find_current(e->st, adapter, chat, &op.pt, &op.en,
	    &op.has_en);
	if (rc == 0 && op.pt.unreachable)
		rc = STORE_NOTFOUND;
	if (rc == STORE_NOTFOUND) {
		engine_op_clear(&op);
		return store_rollback(e->st) != 0 ? -1 : 1;
	}
	op.has_pt = rc == 0;
	op.pt.unreachable = 1;
	if (rc == 0 && (rc = store_patient_update(e->st, &op.pt)) == 0) {
		data = cJSON_CreateObject();
		cJSON_AddStringToObject(data, "reason", reason);
		engine_emit(&op, "unreachable", data);
		log_info("event=unreachable patient=%lld reason=%s",
		    (long long)op.pt.id, reason);
	}
	rc = engine_finish_tx(e, rc);
	engine_op_clear(&op);
	return rc;
}

static int
engine_held(const struct engine_op *op)
{
	return engine_running(op) && strcmp(op->en.status, ENROL_HOLD) == 0;
}

int
engine_clear(struct engine *e, const char *adapter, const char *chat,
    int64_t now)
{
	struct engine_op	 op = { .e = e, .now = now };
	int			 rc, failed;

	if (store_begin(e->st) != 0)
		return -1;
	rc = store_patient_find_current(e->st, adapter, chat, &op.pt, &op.en,
	    &op.has_en);
	op.has_pt = rc == 0;
	/* Held before the protocol is looked for (a patient not on hold is
	 * told so, whatever their protocol) and after (a version upgrade on
	 * the way may have changed the course). */
	if (rc == 0 && !engine_held(&op))
		rc = STORE_NOTFOUND;
	if (rc == 0)
		rc = engine_op_protocol(&op);
	if (rc == 0 && !engine_held(&op))
		rc = STORE_NOTFOUND;
	if (rc == 0)
		rc = engine_op_guarded(&op, engine_clear_handle, NULL);
	if (rc == ENGINE_EPROTO)
		engine_op_failed(&op, "clear", op.pt.id);
	if (rc == STORE_NOTFOUND) {
		/* Not on hold: nothing happens, not even what a version
		 * upgrade on the way queued. */
		rc = store_rollback(e->st) != 0 ? -1 : 1;
		engine_flush_events(e, 0);
		engine_op_clear(&op);
		return rc;
	}
	failed = rc == ENGINE_EPROTO;
	rc = engine_finish_tx(e, rc);
	engine_op_clear(&op);
	return rc == 0 && failed ? 2 : rc;
}

/* The clinician's reply `key` about patient `id`, in the config language. */
static char *
engine_clear_reply(struct engine *e, const char *key, long long id)
{
	cJSON	*p = cJSON_CreateObject();
	char	*s;

	cJSON_AddNumberToObject(p, "patient", (double)id);
	s = engine_render(e, NULL, key, p);
	cJSON_Delete(p);
	return s;
}

int
engine_clear_command(struct engine *e, const char *arg, int64_t now,
    char **reply)
{
	struct store_patient	 p;
	char			*end;
	long long		 id;
	int			 rc;

	*reply = NULL;
	while (*arg == ' ')
		arg++;
	if (*arg == '#')
		arg++;
	id = strtoll(arg, &end, 10);
	while (*end == ' ' || *end == '\n')
		end++;
	if (end == arg || *end != '\0' || id <= 0) {
		*reply = engine_render(e, NULL, "clinician_clear_usage", NULL);
		return 0;
	}
	memset(&p, 0, sizeof p);
	if ((rc = store_patient_get(e->st, id, &p)) < 0)
		return -1;
	if (rc == STORE_NOTFOUND) {
		*reply = engine_clear_reply(e, "clinician_clear_unknown", id);
		return 0;
	}
	rc = engine_clear(e, p.adapter, p.chat, now);
	if (rc < 0)
		return -1;
	log_info("event=clinician_clear patient=%lld changed=%d", id, rc == 0);
	*reply = engine_clear_reply(e, rc == 0 ? "clinician_clear_done" :
	    rc == 2 ? "clinician_clear_failed" : "clinician_clear_not_held",
	    id);
	return 0;
}

/* ---- due jobs ----------------------------------------------------- */

static int
engine_job_handle(struct engine_op *op, void *arg)
{
	return engine_run_job(op, arg);
}

/* Runs one due job; 1 when there was none. */
static int
engine_run_one(struct engine *e, int64_t now)
{
	struct engine_op	 op = { .e = e, .now = now };
	struct store_job	 j;
	int			 rc;

	if (store_begin(e->st) != 0)
		return -1;
	if ((rc = store_job_take(e->st, now, &j)) != 0) {
		store_rollback(e->st);
		return rc == STORE_NOTFOUND ? 1 : -1;
	}
	e->stats.jobs++;
	if ((rc = store_patient_get_current(e->st, j.patient_id, &op.pt,
	    &op.en, &op.has_en)) != 0) {
		/* Closed, or it would be taken again forever. */
		if (rc == STORE_NOTFOUND)
			rc = store_job_close(e->st, j.id, "stale", NULL, now);
		goto out;
	}
	op.has_pt = 1;
	rc = engine_op_protocol(&op);
	/* A job belongs to one enrolment; a newer course makes it stale. */
	if (rc == 0 && (!op.has_en || op.en.id != j.enrolment_id))
		rc = store_job_close(e->st, j.id, "stale", NULL, now);
	else if (rc == 0)
		rc = engine_op_guarded(&op, engine_job_handle, &j);
	if (rc == ENGINE_EPROTO) {
		engine_op_failed(&op, "job", j.id);
		rc = store_job_close(e->st, j.id, "failed", op.error, now);
	} else if (rc == 0)
		rc = store_job_close(e->st, j.id, "done", NULL, now);
out:
	rc = engine_finish_tx(e, rc);
	engine_op_clear(&op);
	return rc;
}

int
engine_run_due(struct engine *e, int64_t now)
{
	int	n = 0, rc;

	while ((rc = engine_run_one(e, now)) == 0)
		n++;
	return rc < 0 ? -1 : n;
}

int
engine_next_due(struct engine *e, int64_t *t)
{
	int	rc = store_job_next_due(e->st, t);

	return rc == STORE_NOTFOUND ? 1 : rc;
}
