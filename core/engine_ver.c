/*
 * engine_ver.c: protocol versions.
 *
 * Every version of a protocol the engine loads has its source text stored
 * (protocol_versions) the first time it is seen. A patient stays on the
 * version they enrolled with (enrolments.version): when it is not the loaded
 * one, that version is compiled again from its stored source in a sandbox of
 * its own and kept here for the next event. Unless the loaded version
 * declares `upgrade = { from = { ... } }` with the patient's version: then
 * the patient moves to it at their next event, in that event's transaction,
 * through the protocol's optional `upgraded` handler, with an audit event
 * `protocol_upgraded`.
 *
 * A version number is the promise that the text behind it never changes:
 * loading a lower version than one stored, or another text under a stored
 * version number, is refused. The text is the protocol file and every
 * helper it required (lib/name.lua, protocol_lib.c): they are stored
 * together, and a changed helper needs a higher `version` too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "log.h"
#include "xmalloc.h"

/* 1 if the stored version v is the text of p: the file and its helpers. */
static int
engine_version_same(const struct store_pversion *v, const struct protocol *p)
{
	const struct store_phelper	*sh;
	const struct proto_helper	*ph;
	int				 i, j;

	if (v->len != p->source_len || memcmp(v->source, p->source, v->len) != 0)
		return 0;
	if (v->nhelpers != p->nhelpers)
		return 0;
	for (i = 0; i < p->nhelpers; i++) {
		ph = &p->helpers[i];
		for (j = 0; j < v->nhelpers; j++)
			if (strcmp(v->helpers[j].name, ph->name) == 0)
				break;
		if (j == v->nhelpers)
			return 0;
		sh = &v->helpers[j];
		if (sh->len != ph->len || memcmp(sh->source, ph->source,
		    ph->len) != 0)
			return 0;
	}
	return 1;
}

/* Stores a new version: the file and its helpers, all or nothing. */
static int
engine_version_store(struct engine *e, const struct protocol *p,
    const char *path, int64_t now)
{
	int	i, rc;

	if (store_begin(e->st) != 0)
		return -1;
	rc = store_pversion_insert(e->st, p->id, p->version, p->source,
	    p->source_len, path, now);
	for (i = 0; rc == 0 && i < p->nhelpers; i++)
		rc = store_phelper_insert(e->st, p->id, p->version,
		    p->helpers[i].name, p->helpers[i].source, p->helpers[i].len);
	if (rc == 0 && store_commit(e->st) == 0)
		return 0;
	store_rollback(e->st);
	return -1;
}

int
engine_version_check(struct engine *e, const struct protocol *p,
    const char *path, int64_t now, char **cause)
{
	struct store_pversion	v;
	int			rc, same, max;

	if ((rc = store_pversion_max(e->st, p->id, &max)) < 0)
		goto fail;
	if (rc == 0 && max > p->version) {
		*cause = xasprintf("%s: version %d of '%s' is below version %d, "
		    "loaded before: a changed protocol needs a higher `version`",
		    path, p->version, p->id, max);
		return -1;
	}
	if ((rc = store_pversion_get(e->st, p->id, p->version, &v)) < 0)
		goto fail;
	if (rc == 0) {
		same = engine_version_same(&v, p);
		store_pversion_clear(&v);
		if (same)
			return 0;
		*cause = xasprintf("%s: version %d of '%s' was loaded before "
		    "with a different text (of the file or a helper it "
		    "requires): raise `version` with every change",
		    path, p->version, p->id);
		return -1;
	}
	if (engine_version_store(e, p, path, now) != 0)
		goto fail;
	return 0;
fail:
	*cause = xasprintf("%s: cannot read or store the versions of '%s' in "
	    "the database", path, p->id);
	return -1;
}

/*
 * Returns in *out the older `version` of the loaded protocol `cur`, compiled
 * from its stored source on first use; NULL when the source was never
 * stored (an enrolment older than protocol_versions): the caller then uses
 * `cur`, as before versions were kept. 0, or -1 with *cause.
 */
static int
engine_old_version(struct engine *e, const struct protocol *cur, int version,
    struct protocol **out, char **cause)
{
	struct store_pversion	 v;
	struct protocol		*p = NULL;
	struct proto_helper	*helpers;
	int			 i, rc;

	for (i = 0; i < e->nold; i++) {
		if (e->old[i].version == version &&
		    strcmp(e->old[i].id, cur->id) == 0) {
			*out = e->old[i].p;
			return 0;
		}
	}
	rc = store_pversion_get(e->st, cur->id, version, &v);
	if (rc < 0) {
		*cause = xasprintf("cannot read version %d of '%s'", version,
		    cur->id);
		return -1;
	}
	if (rc == STORE_NOTFOUND)
		log_warn("event=protocol_version_missing protocol=%s "
		    "version=%d using=%d", cur->id, version, cur->version);
	else {
		/* "file#v2": errors still name the file, and the version. */
		helpers = xcalloc((size_t)v.nhelpers + 1, sizeof *helpers);
		for (i = 0; i < v.nhelpers; i++) {
			helpers[i].name = v.helpers[i].name;
			helpers[i].source = v.helpers[i].source;
			helpers[i].len = v.helpers[i].len;
		}
		rc = proto_load_source(v.path, version, v.source, v.len,
		    helpers, v.nhelpers, &e->limits, &p, cause);
		free(helpers);
		store_pversion_clear(&v);
		if (rc != 0)
			return -1;
		if (strcmp(p->id, cur->id) != 0 || p->version != version) {
			*cause = xasprintf("%s: the stored text is '%s' version "
			    "%d", p->path, p->id, p->version);
			proto_free(p);
			return -1;
		}
		log_info("event=protocol_version_loaded protocol=%s version=%d",
		    cur->id, version);
	}
	e->old = xrealloc(e->old, (size_t)(e->nold + 1) * sizeof *e->old);
	e->old[e->nold].id = xstrdup(cur->id);
	e->old[e->nold].version = version;
	e->old[e->nold].p = p;
	e->nold++;
	*out = p;
	return 0;
}

void
engine_version_free(struct engine *e)
{
	int	i;

	for (i = 0; i < e->nold; i++) {
		proto_free(e->old[i].p);
		free(e->old[i].id);
	}
	free(e->old);
	e->old = NULL;
	e->nold = 0;
}

/* Moves the patient to the loaded version (inside a savepoint). */
static int
engine_upgrade(struct engine_op *op, void *arg)
{
	int	from = op->en.version, rc;
	cJSON	*data;

	(void)arg;
	/* A level the new version no longer has: its firmest. */
	if (op->en.pressure >= op->p->nlevels)
		op->en.pressure = op->p->nlevels - 1;
	op->from_version = from;
	rc = engine_call(op, EV_UPGRADED, NULL, NULL, NULL);
	op->from_version = 0;
	if (rc != 0)
		return rc;
	op->en.version = op->p->version;
	/* The new version's course may be longer or shorter. */
	if (strcmp(op->en.status, ENROL_ACTIVE) == 0 &&
	    engine_plan_end(op) != 0)
		return -1;
	data = cJSON_CreateObject();
	cJSON_AddStringToObject(data, "protocol", op->p->id);
	cJSON_AddNumberToObject(data, "from", from);
	cJSON_AddNumberToObject(data, "to", op->p->version);
	engine_emit(op, "protocol_upgraded", data);
	log_info("event=protocol_upgraded protocol=%s patient=%lld from=%d "
	    "to=%d", op->p->id, (long long)op->pt.id, from, op->p->version);
	return 0;
}

int
engine_version(struct engine_op *op)
{
	struct engine	*e = op->e;
	struct protocol	*cur = op->p, *old;
	int		 rc;

	if (engine_running(op) && proto_upgrades_from(cur, op->en.version)) {
		rc = engine_op_guarded(op, engine_upgrade, NULL);
		if (rc != ENGINE_EPROTO)
			return rc;
		/*
		 * The upgrade handler failed: its work is undone. The patient
		 * stays on their version for this event and the move is tried
		 * again at the next one; the clinic sees why in the log.
		 */
		e->stats.lua_errors++;
		log_error("event=protocol_upgrade_failed protocol=%s "
		    "patient=%lld from=%d to=%d error=%s", cur->id,
		    (long long)op->pt.id, op->en.version, cur->version,
		    log_q(op->error));
		free(op->error);
		op->error = NULL;
		op->p = cur;
		store_enrolment_clear(&op->en);
		if (store_patient_get(e->st, op->en.patient_id, &op->pt) != 0 ||
		    store_enrolment_get(e->st, op->en.id, &op->en) != 0)
			return -1;
	}
	if (engine_old_version(e, cur, op->en.version, &old, &op->error) != 0)
		return ENGINE_EPROTO;
	op->p = old != NULL ? old : cur;
	return 0;
}
