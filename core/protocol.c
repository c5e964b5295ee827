/*
 * protocol.c: loading a protocol file and validating its declarative parts.
 *
 * The file runs once in its own sandbox and must return a table. Everything
 * the engine needs outside a handler call (ids, intervals, levels,
 * questionnaires, texts) is copied into C here, so a protocol cannot change
 * it later and the engine never runs Lua to read it. Tables are read with raw
 * access only: a protocol's metatables never run outside a budgeted call.
 *
 * Declarative errors have no Lua line of their own; proto_find_line() and
 * proto_find_quoted() (protocol_field.c) find the line of the offending
 * field in the source text so `strigil check` still points the clinician at
 * file:line.
 *
 * This file holds compiling, freeing and the look-ups; protocol_field.c
 * reads fields and reports errors, protocol_read.c the declarative parts,
 * protocol_ask.c the questionnaires, protocol_ctx.c calls the handlers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "luajson.h"
#include "protocol.h"
#include "protocol_int.h"
#include "sandbox.h"
#include "xmalloc.h"

const char *proto_event_names[EV_COUNT] = {
	[EV_ENROLLED] = "enrolled",
	[EV_SESSION_DUE] = "session_due",
	[EV_SESSION_DONE] = "session_done",
	[EV_SESSION_SKIPPED] = "session_skipped",
	[EV_SESSION_MISSED] = "session_missed",
	[EV_ANSWERED] = "answered",
	[EV_MESSAGE] = "message",
	[EV_RESUMED] = "resumed",
	[EV_UPGRADED] = "upgraded",
};

const char *
proto_event_name(enum proto_event ev)
{
	return proto_event_names[ev];
}

struct proto_read_args {
	struct proto_loader	*pl;
	struct protocol		*p;
	int			 rc;
};

static int
proto_read_run(lua_State *L)
{
	struct proto_read_args	*a = lua_touserdata(L, 1);

	lua_remove(L, 1);
	a->rc = proto_read(a->pl, 1, a->p);
	if (a->rc == 0)
		a->rc = proto_params(a->pl, 1, a->p);
	return 0;
}

/*
 * Reads the returned table (on top of the stack, left there) inside a
 * protected call: reading allocates, and a memory error must become a
 * message, not an abort.
 */
static int
proto_read_protected(struct proto_loader *pl, struct protocol *p,
    char **cause)
{
	struct proto_read_args	 a = { pl, p, -1 };
	lua_State		*L = pl->L;

	lua_pushcfunction(L, proto_read_run);
	lua_pushlightuserdata(L, &a);
	lua_pushvalue(L, -3);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		*cause = xasprintf("%s: %s", pl->path, lua_type(L, -1) ==
		    LUA_TSTRING ? lua_tostring(L, -1) : "error while reading");
		lua_pop(L, 1);
		free(pl->cause);
		pl->cause = NULL;
		return -1;
	}
	if (a.rc != 0) {
		*cause = pl->cause;
		return -1;
	}
	return 0;
}

/* Runs the protocol's chunk, with require() open while it does; leaves
 * the table it returned. */
static int
proto_run_chunk(struct protocol *p, const struct proto_src *ps,
    const char *src, size_t len, char **cause)
{
	char	*chunk;
	int	 rc;

	if (proto_lib_open(p, ps, cause) != 0)
		return -1;
	chunk = xasprintf("@%s", p->path);
	rc = sandbox_load(p->sb, chunk, src, len, cause);
	free(chunk);
	if (rc == 0)
		rc = sandbox_call(p->sb, 0, 1, cause);
	proto_lib_close(p);
	return rc;
}

/* Compiles and reads `src`; `name` is the file (or "file#v2") errors name. */
static int
proto_load_chunk(const char *name, const struct proto_src *ps,
    const char *src, size_t len, const struct proto_limits *limits,
    struct protocol **out, char **cause)
{
	struct protocol		*p = xcalloc(1, sizeof *p);
	struct proto_loader	 pl = { NULL, p, name, NULL, NULL, NULL, 0 };

	p->path = xstrdup(name);
	p->ref = LUA_NOREF;
	p->source = xmalloc(len + 1);
	memcpy(p->source, src, len);
	p->source[len] = '\0';
	p->source_len = len;
	pl.src = p->source;
	if ((p->sb = sandbox_new(limits->memory, limits->instructions,
	    cause)) == NULL)
		goto fail;
	pl.L = sandbox_state(p->sb);
	if (proto_run_chunk(p, ps, src, len, cause) != 0)
		goto fail;
	sandbox_freeze_globals(p->sb);
	if (lua_type(pl.L, -1) != LUA_TTABLE) {
		lua_pop(pl.L, 1);
		*cause = xasprintf("%s: the protocol must return a table", name);
		goto fail;
	}
	if (proto_read_protected(&pl, p, cause) != 0)
		goto fail;
	p->ref = luaL_ref(pl.L, LUA_REGISTRYINDEX);
	*out = p;
	return 0;
fail:
	proto_free(p);
	return -1;
}

int
proto_load(const char *path, const struct proto_limits *limits,
    struct protocol **out, char **cause)
{
	struct proto_src	 ps = { path, "", 1, NULL, 0 };
	char			*src;
	size_t			 len;
	int			 rc;

	/* Read once: the very text compiled is the one searched for lines and
	 * kept in p->source (the engine stores every version it loads), even if
	 * an editor rewrites the file meanwhile. */
	if ((src = sandbox_read_file(path, &len, cause)) == NULL)
		return -1;
	rc = proto_load_chunk(path, &ps, src, len, limits, out, cause);
	free(src);
	return rc;
}

int
proto_load_source(const char *path, int version, const char *src,
    size_t len, const struct proto_helper *helpers, int nhelpers,
    const struct proto_limits *limits, struct protocol **out, char **cause)
{
	struct proto_src	 ps = { path, NULL, 0, helpers, nhelpers };
	char			 suffix[24], *name;
	int			 rc;

	snprintf(suffix, sizeof suffix, "#v%d", version);
	ps.suffix = suffix;
	name = xasprintf("%s%s", path, suffix);
	rc = proto_load_chunk(name, &ps, src, len, limits, out, cause);
	free(name);
	return rc;
}

void
proto_free(struct protocol *p)
{
	int	i, j;

	if (p == NULL)
		return;
	for (i = 0; i < p->nqs; i++) {
		for (j = 0; j < p->qs[i].n; j++) {
			struct proto_question *q = &p->qs[i].q[j];

			free(q->id);
			free(q->clear);
			proto_text_free(&q->text);
			while (q->noptions-- > 0) {
				free(q->options[q->noptions].id);
				proto_text_free(&q->options[q->noptions].text);
			}
			free(q->options);
		}
		for (j = 0; p->qs[i].meta != NULL && j < p->qs[i].n; j++) {
			free(p->qs[i].meta[j]);
			free(p->qs[i].meta_key[j]);
		}
		free(p->qs[i].meta);
		free(p->qs[i].meta_key);
		free(p->qs[i].q);
		free(p->qs[i].id);
	}
	free(p->qs);
	for (i = 0; i < p->nsteps; i++)
		proto_text_free(&p->steps[i]);
	free(p->steps);
	for (i = 0; i < p->nhelpers; i++) {
		free(p->helpers[i].name);
		free(p->helpers[i].path);
		free(p->helpers[i].source);
	}
	free(p->helpers);
	for (i = 0; i < p->nlevels; i++)
		free(p->levels[i]);
	free(p->levels);
	for (i = 0; i < p->nmsgs; i++) {
		free(p->msgs[i].lang);
		free(p->msgs[i].key);
		free(p->msgs[i].text);
	}
	free(p->msgs);
	proto_text_free(&p->title);
	free(p->params);
	cJSON_Delete(p->params_json);
	free(p->upgrade_from);
	free(p->source);
	if (p->sb != NULL)
		sandbox_free(p->sb);
	free(p->lang);
	free(p->id);
	free(p->path);
	free(p);
}

/* ---- lookups ------------------------------------------------------ */

const struct proto_questionnaire *
proto_questionnaire(const struct protocol *p, const char *id)
{
	int	i;

	for (i = 0; i < p->nqs; i++)
		if (strcmp(p->qs[i].id, id) == 0)
			return &p->qs[i];
	return NULL;
}

const struct proto_question *
proto_question(const struct proto_questionnaire *q, const char *id)
{
	int	i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->q[i].id, id) == 0)
			return &q->q[i];
	return NULL;
}

const char *
proto_message(const struct protocol *p, const char *lang, const char *key)
{
	const char	*fallback = NULL;
	int		 lo = 0, hi = p->nmsgs, mid, i;

	/* The first entry of `key` (sorted at load), then its languages. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(p->msgs[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < p->nmsgs && strcmp(p->msgs[i].key, key) == 0; i++) {
		if (strcmp(p->msgs[i].lang, lang) == 0)
			return p->msgs[i].text;
		if (strcmp(p->msgs[i].lang, p->lang) == 0)
			fallback = p->msgs[i].text;
	}
	return fallback;
}

int
proto_level(const struct protocol *p, const char *name)
{
	int	i;

	for (i = 0; i < p->nlevels; i++)
		if (strcmp(p->levels[i], name) == 0)
			return i;
	return -1;
}
