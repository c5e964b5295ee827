/*
 * protocol_ask.c: reading a protocol's questionnaires: their questions,
 * each question's type, options and all-clear answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "protocol.h"
#include "protocol_int.h"
#include "xmalloc.h"

static const char *proto_qtype_names[] = {
	[Q_INT] = "integer", [Q_CHOICE] = "choice", [Q_YESNO] = "yesno",
	[Q_TEXT] = "text", [Q_ZONE] = "timezone", [Q_TIME] = "time",
};


static int
proto_read_options(struct proto_loader *pl, int t, struct proto_question *q,
    const char *lang)
{
	lua_State	*L = pl->L;
	lua_Integer	 i, n;
	char		 where[96];
	int		 top;

	if (proto_field(L, t, "options") != LUA_TTABLE ||
	    (n = (lua_Integer)lua_rawlen(L, -1)) < 2 || n > 20) {
		lua_pop(L, 1);
		return proto_error(pl, q->id, "question '%s' needs 2 to 20 "
		    "options", q->id);
	}
	top = lua_gettop(L);
	q->options = xcalloc((size_t)n, sizeof *q->options);
	for (i = 1; i <= n; i++) {
		snprintf(where, sizeof where, "question '%s' option %lld", q->id,
		    (long long)i);
		if (lua_rawgeti(L, top, i) != LUA_TTABLE) {
			lua_settop(L, top - 1);
			return proto_error(pl, q->id, "%s must be a table such as "
			    "{ id = \"none\", text = \"None\" }", where);
		}
		q->noptions++;
		if (proto_name(pl, -1, "id", where, &q->options[i - 1].id) != 0)
			return -1;
		proto_field(L, -1, "text");
		if (proto_text(pl, q->id, where, lang,
		    &q->options[i - 1].text) != 0)
			return -1;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

static int
proto_qtype(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof proto_qtype_names / sizeof *proto_qtype_names; i++)
		if (strcmp(name, proto_qtype_names[i]) == 0)
			return (int)i;
	return -1;
}

/* The all-clear answer: given, or the mildest value of the type. */
static int
proto_read_clear(struct proto_loader *pl, int t, struct proto_question *q)
{
	lua_State	*L = pl->L;
	char		 buf[32];

	switch (proto_field(L, t, "clear")) {
	case LUA_TNIL:
		lua_pop(L, 1);
		if (q->type == Q_INT)
			snprintf(buf, sizeof buf, "%d", q->min);
		else if (q->type == Q_YESNO)
			snprintf(buf, sizeof buf, "no");
		else if (q->type == Q_CHOICE)
			snprintf(buf, sizeof buf, "%s", q->options[0].id);
		else
			snprintf(buf, sizeof buf, "-");
		q->clear = xstrdup(buf);
		return 0;
	case LUA_TSTRING:
	case LUA_TNUMBER:
		q->clear = xstrdup(lua_tostring(L, -1));
		lua_pop(L, 1);
		return 0;
	case LUA_TBOOLEAN:
		q->clear = xstrdup(lua_toboolean(L, -1) ? "yes" : "no");
		lua_pop(L, 1);
		return 0;
	default:
		lua_pop(L, 1);
		return proto_error(pl, q->id, "question '%s': clear must be an "
		    "answer", q->id);
	}
}

static int
proto_read_question(struct proto_loader *pl, int t, struct proto_question *q,
    const char *lang)
{
	lua_State	*L = pl->L;
	int		 type;

	if (proto_name(pl, t, "id", "every question's id", &q->id) != 0)
		return -1;
	if (proto_field(L, t, "type") != LUA_TSTRING ||
	    (type = proto_qtype(lua_tostring(L, -1))) < 0) {
		lua_pop(L, 1);
		return proto_error(pl, q->id, "question '%s': type must be "
		    "integer, choice, yesno, text, timezone or time", q->id);
	}
	lua_pop(L, 1);
	q->type = (enum proto_qtype)type;
	proto_field(L, t, "text");
	if (proto_text(pl, q->id, "question text", lang, &q->text) != 0)
		return -1;
	if (q->type == Q_INT) {
		if (proto_int(pl, t, "min", "min", 0, -1000000, 1000000,
		    &q->min) != 0 ||
		    proto_int(pl, t, "max", "max", 10, -1000000, 1000000,
		    &q->max) != 0)
			return -1;
		if (q->min > q->max)
			return proto_error(pl, q->id, "question '%s': min is above "
			    "max", q->id);
	}
	if (q->type == Q_CHOICE && proto_read_options(pl, t, q, lang) != 0)
		return -1;
	return proto_read_clear(pl, t, q);
}

static int
proto_read_questionnaire(struct proto_loader *pl, struct proto_questionnaire *qs,
    const char *lang)
{
	lua_State	*L = pl->L;
	int		 t = lua_gettop(L), i, j;
	lua_Integer	 n = (lua_Integer)lua_rawlen(L, t);

	if (n < 1 || n > 50)
		return proto_error(pl, qs->id, "questionnaire '%s' must list 1 "
		    "to 50 questions", qs->id);
	pl->qs = qs->id;
	qs->q = xcalloc((size_t)n, sizeof *qs->q);
	for (i = 1; i <= n; i++) {
		if (lua_rawgeti(L, t, i) != LUA_TTABLE) {
			lua_settop(L, t);
			return proto_error(pl, qs->id, "questionnaire '%s': "
			    "question %d must be a table", qs->id, i);
		}
		qs->n++;
		if (proto_read_question(pl, lua_gettop(L), &qs->q[i - 1],
		    lang) != 0)
			return -1;
		lua_pop(L, 1);
		for (j = 0; j < i - 1; j++)
			if (strcmp(qs->q[j].id, qs->q[i - 1].id) == 0) {
				pl->nth = 2;	/* the second mention */
				return proto_error(pl, qs->q[j].id, "questionnaire "
				    "'%s' asks '%s' twice", qs->id, qs->q[j].id);
			}
	}
	pl->qs = NULL;
	return 0;
}

int
proto_read_questionnaires(struct proto_loader *pl, int t, struct protocol *p)
{
	lua_State	*L = pl->L;
	int		 top, n = 0;

	if (proto_field(L, t, "questionnaires") == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (lua_type(L, -1) != LUA_TTABLE) {
		lua_pop(L, 1);
		return proto_error(pl, "questionnaires", "questionnaires must be a "
		    "table of questionnaire id -> list of questions");
	}
	top = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, top) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING ||
		    !proto_is_name(lua_tostring(L, -2), 31) ||
		    strcmp(lua_tostring(L, -2), "setup") == 0 ||
		    lua_type(L, -1) != LUA_TTABLE) {
			lua_settop(L, top - 1);
			return proto_error(pl, "questionnaires", "questionnaires: "
			    "each entry must be name = { questions } (\"setup\" "
			    "is the engine's own)");
		}
		p->qs = xrealloc(p->qs, (size_t)(n + 1) * sizeof *p->qs);
		memset(&p->qs[n], 0, sizeof p->qs[n]);
		p->qs[n].id = xstrdup(lua_tostring(L, -2));
		p->nqs = ++n;
		if (proto_read_questionnaire(pl, &p->qs[n - 1], p->lang) != 0)
			return -1;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}
