/*
 * protocol_field.c: reading a protocol's table field by field: raw access,
 * checked integers, names and texts (one string, or one per language), and
 * errors that point at the line of the offending field.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "protocol.h"
#include "protocol_int.h"
#include "xmalloc.h"

/* ---- errors that point at a line ---------------------------------- */

/* Returns the 1-based line of the first "key =" in the source, or 0. */
int
proto_find_line(const char *src, const char *key)
{
	size_t		 klen = strlen(key);
	const char	*p, *q;
	int		 line = 1;

	for (p = src; *p != '\0'; p++) {
		if (*p == '\n') {
			line++;
			continue;
		}
		if (strncmp(p, key, klen) != 0 ||
		    (p > src && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
			continue;
		for (q = p + klen; *q == ' ' || *q == '\t'; q++)
			;
		if (*q == '=' && q[1] != '=')
			return line;
	}
	return 0;
}

/*
 * Returns the line of the nth quoted mention of `word` ("soreness") after
 * the line of "after =", or 0. Questions have no key of their own: this
 * finds them by their id inside their questionnaire.
 */
static int
proto_find_quoted(const char *src, const char *after, const char *word,
    int nth)
{
	size_t		 wlen = strlen(word);
	const char	*p;
	int		 line = 1, start;

	if ((start = proto_find_line(src, after)) == 0)
		return 0;
	for (p = src; *p != '\0'; p++) {
		if (*p == '\n') {
			line++;
			continue;
		}
		if (line < start || (*p != '"' && *p != '\'') ||
		    strncmp(p + 1, word, wlen) != 0 || p[1 + wlen] != *p)
			continue;
		if (--nth == 0)
			return line;
	}
	return 0;
}

/* The line of `key` in `src` (or, inside a questionnaire, of the question
 * whose id is `key`), or 0. */
static int
proto_key_line(const struct proto_loader *pl, const char *src,
    const char *key)
{
	int	line = proto_find_line(src, key);

	if (line == 0 && pl->qs != NULL)
		line = proto_find_quoted(src, pl->qs, key,
		    pl->nth > 0 ? pl->nth : 1);
	return line;
}

/* Records the first error as "path:line: message", the line being that of
 * `key` when it can be found: in the protocol file, else in a helper it
 * required (whose path it then names), where a table may have been built.
 * Returns -1 for the caller to pass on. */
int __attribute__((format(printf, 3, 4)))
proto_error(struct proto_loader *pl, const char *key, const char *fmt, ...)
{
	const char	*path = pl->path;
	va_list		 ap;
	char		 msg[512];
	int		 i, line = 0;

	if (pl->cause != NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (key != NULL)
		line = proto_key_line(pl, pl->src, key);
	for (i = 0; key != NULL && line == 0 && i < pl->p->nhelpers; i++) {
		line = proto_key_line(pl, pl->p->helpers[i].source, key);
		path = pl->p->helpers[i].path;
	}
	if (line > 0)
		pl->cause = xasprintf("%s:%d: %s", path, line, msg);
	else
		pl->cause = xasprintf("%s: %s", pl->path, msg);
	return -1;
}

/* ---- raw field access --------------------------------------------- */

/* Pushes t[key] without metamethods; returns its type. */
int
proto_field(lua_State *L, int t, const char *key)
{
	lua_pushstring(L, key);
	return lua_rawget(L, t < 0 ? t - 1 : t);
}

int
proto_is_name(const char *s, size_t max)
{
	size_t	i;

	if (s[0] == '\0' || strlen(s) > max)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

/* Reads an optional integer field in [min, max]; `def` if absent. */
int
proto_int(struct proto_loader *pl, int t, const char *key, const char *where,
    int def, int min, int max, int *out)
{
	lua_State	*L = pl->L;
	int		 type = proto_field(L, t, key), isint;
	lua_Integer	 v;

	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		*out = def;
		return 0;
	}
	v = lua_tointegerx(L, -1, &isint);
	lua_pop(L, 1);
	if (type != LUA_TNUMBER || !isint || v < min || v > max)
		return proto_error(pl, key, "%s must be a whole number from "
		    "%d to %d", where, min, max);
	*out = (int)v;
	return 0;
}

/* Reads a required string field matching [a-z0-9_]. */
int
proto_name(struct proto_loader *pl, int t, const char *key, const char *where,
    char **out)
{
	lua_State	*L = pl->L;

	if (proto_field(L, t, key) != LUA_TSTRING ||
	    !proto_is_name(lua_tostring(L, -1), 63)) {
		lua_pop(L, 1);
		return proto_error(pl, key, "%s must be a name of lower-case "
		    "letters, digits and _", where);
	}
	*out = xstrdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	return 0;
}

/* Reads the text at the top of the stack: a string, or a table of language
 * -> string. Pops it. */
int
proto_text(struct proto_loader *pl, const char *key, const char *where,
    const char *lang, struct proto_text *out)
{
	lua_State	*L = pl->L;
	int		 t = lua_gettop(L), i;
	char		*tmp;

	memset(out, 0, sizeof *out);
	if (lua_type(L, t) == LUA_TSTRING) {
		out->lang = xmalloc(sizeof *out->lang);
		out->text = xmalloc(sizeof *out->text);
		out->lang[0] = xstrdup(lang);
		out->text[0] = xstrdup(lua_tostring(L, t));
		out->n = 1;
		lua_pop(L, 1);
		return 0;
	}
	if (lua_type(L, t) != LUA_TTABLE) {
		lua_pop(L, 1);
		return proto_error(pl, key, "%s must be a text or a table of "
		    "texts by language", where);
	}
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING ||
		    lua_type(L, -1) != LUA_TSTRING) {
			lua_settop(L, t - 1);
			return proto_error(pl, key, "%s: each language must map "
			    "to a text", where);
		}
		out->lang = xrealloc(out->lang, (out->n + 1) * sizeof *out->lang);
		out->text = xrealloc(out->text, (out->n + 1) * sizeof *out->text);
		out->lang[out->n] = xstrdup(lua_tostring(L, -2));
		out->text[out->n] = xstrdup(lua_tostring(L, -1));
		out->n++;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (out->n == 0)
		return proto_error(pl, key, "%s has no text", where);
	/* The protocol's language first: proto_text_get() falls back to it,
	 * not to whichever language the table happened to list first. */
	for (i = 1; i < out->n; i++) {
		if (strcmp(out->lang[i], lang) != 0)
			continue;
		tmp = out->lang[0];
		out->lang[0] = out->lang[i];
		out->lang[i] = tmp;
		tmp = out->text[0];
		out->text[0] = out->text[i];
		out->text[i] = tmp;
	}
	return 0;
}

void
proto_text_free(struct proto_text *t)
{
	int	i;

	for (i = 0; i < t->n; i++) {
		free(t->lang[i]);
		free(t->text[i]);
	}
	free(t->lang);
	free(t->text);
	memset(t, 0, sizeof *t);
}

const char *
proto_text_get(const struct proto_text *t, const char *lang)
{
	int	i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->lang[i], lang) == 0)
			return t->text[i];
	return t->n > 0 ? t->text[0] : "";
}
