/*
 * catalog.c: loading the engine's texts and filling in their parameters.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>

#include "catalog.h"
#include "sandbox.h"
#include "xmalloc.h"

/* A text file is small; these limits only stop a broken one. */
#define CATALOG_MEMORY		(8 * 1024 * 1024)
#define CATALOG_INSTRUCTIONS	1000000

struct catalog_entry {
	char	*lang;
	char	*key;
	char	*text;
};

struct catalog {
	struct catalog_entry	*v;
	int			 n;
};

static void
catalog_add(struct catalog *cat, const char *lang, const char *key,
    const char *text)
{
	struct catalog_entry	*e;

	cat->v = xrealloc(cat->v, (size_t)(cat->n + 1) * sizeof *cat->v);
	e = &cat->v[cat->n++];
	e->lang = xstrdup(lang);
	e->key = xstrdup(key);
	e->text = xstrdup(text);
}

/* Runs one language file and copies its table of texts. */
static int
catalog_load_file(struct catalog *cat, const char *path, const char *lang,
    char **cause)
{
	struct sandbox	*sb;
	lua_State	*L;
	int		 rc = -1;

	if ((sb = sandbox_new(CATALOG_MEMORY, CATALOG_INSTRUCTIONS,
	    cause)) == NULL)
		return -1;
	L = sandbox_state(sb);
	if (sandbox_load_file(sb, path, cause) != 0 ||
	    sandbox_call(sb, 0, 1, cause) != 0)
		goto out;
	if (!lua_istable(L, -1)) {
		*cause = xasprintf("%s: must return a table of texts", path);
		goto out;
	}
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING ||
		    lua_type(L, -1) != LUA_TSTRING) {
			*cause = xasprintf("%s: every entry must be key = "
			    "\"text\"", path);
			goto out;
		}
		catalog_add(cat, lang, lua_tostring(L, -2),
		    lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	rc = 0;
out:
	sandbox_free(sb);
	return rc;
}

/* A language file is named like "en.lua" or "pt_BR.lua". */
static int
catalog_lang_name(const char *file, char *lang, size_t size)
{
	size_t	n = strlen(file), i;

	if (n < 5 || n - 4 >= size || strcmp(file + n - 4, ".lua") != 0)
		return -1;
	for (i = 0; i < n - 4; i++)
		if (!isalpha((unsigned char)file[i]) && file[i] != '_' &&
		    file[i] != '-')
			return -1;
	memcpy(lang, file, n - 4);
	lang[n - 4] = '\0';
	return 0;
}

static int
catalog_cmp(const void *a, const void *b)
{
	const struct catalog_entry	*x = a, *y = b;
	int				 c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->lang, y->lang);
}

int
catalog_load(const char *dir, struct catalog **out, char **cause)
{
	struct catalog	*cat = xcalloc(1, sizeof *cat);
	DIR		*d;
	struct dirent	*de;
	char		 lang[16], *path;
	int		 rc;

	if ((d = opendir(dir)) == NULL) {
		*cause = xasprintf("%s: cannot open the language folder", dir);
		free(cat);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (catalog_lang_name(de->d_name, lang, sizeof lang) != 0)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		rc = catalog_load_file(cat, path, lang, cause);
		free(path);
		if (rc != 0)
			goto fail;
	}
	closedir(d);
	d = NULL;
	/* By key, then language: catalog_get() searches it for every text
	 * the engine says. A language has each key once. */
	if (cat->n > 1)
		qsort(cat->v, (size_t)cat->n, sizeof *cat->v, catalog_cmp);
	if (catalog_get(cat, "en", "help") == NULL) {
		*cause = xasprintf("%s/en.lua: missing, or has no 'help' text",
		    dir);
		goto fail;
	}
	*out = cat;
	return 0;
fail:
	if (d != NULL)
		closedir(d);
	catalog_free(cat);
	return -1;
}

void
catalog_free(struct catalog *cat)
{
	int	i;

	if (cat == NULL)
		return;
	for (i = 0; i < cat->n; i++) {
		free(cat->v[i].lang);
		free(cat->v[i].key);
		free(cat->v[i].text);
	}
	free(cat->v);
	free(cat);
}

const char *
catalog_get(const struct catalog *cat, const char *lang, const char *key)
{
	const char	*en = NULL;
	int		 lo = 0, hi = cat->n, mid, i;

	/* The first entry of `key` (sorted at load), then its languages. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(cat->v[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < cat->n && strcmp(cat->v[i].key, key) == 0; i++) {
		if (strcmp(cat->v[i].lang, lang) == 0)
			return cat->v[i].text;
		if (strcmp(cat->v[i].lang, "en") == 0)
			en = cat->v[i].text;
	}
	return en;
}

/* Appends the parameter's value, or NULL if there is none. */
static const char *
catalog_param(const cJSON *params, const char *name, char *buf, size_t size)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(params, name);

	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsNumber(v)) {
		snprintf(buf, size, "%.15g", v->valuedouble);
		return buf;
	}
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) ? "yes" : "no";
	return NULL;
}

char *
catalog_render(const char *tmpl, const char *params)
{
	cJSON	*json;
	char	*out;

	/* Most texts name no parameter: skip parsing them. */
	if (params == NULL || strchr(tmpl, '{') == NULL)
		return xstrdup(tmpl);
	json = cJSON_Parse(params);
	out = catalog_render_json(tmpl, json);
	cJSON_Delete(json);
	return out;
}

char *
catalog_render_json(const char *tmpl, const cJSON *json)
{
	size_t		 cap, n = 0, len, k;
	char		*out, name[64], num[32];
	const char	*p, *end, *v;

	if (json == NULL || strchr(tmpl, '{') == NULL)
		return xstrdup(tmpl);
	cap = strlen(tmpl) + 64;
	out = xmalloc(cap);
	for (p = tmpl; *p != '\0'; p++) {
		v = NULL;
		if (*p == '{' && (end = strchr(p + 1, '}')) != NULL &&
		    (k = (size_t)(end - p - 1)) > 0 && k < sizeof name) {
			memcpy(name, p + 1, k);
			name[k] = '\0';
			v = catalog_param(json, name, num, sizeof num);
		}
		if (v != NULL) {
			p = end;
			len = strlen(v);
		} else {
			/* Up to the next '{' as it is, in one go. */
			v = p;
			len = 1 + strcspn(p + 1, "{");
			p += len - 1;
		}
		if (n + len + 1 > cap)
			out = xrealloc(out, cap = (n + len + 1) * 2);
		memcpy(out + n, v, len);
		n += len;
	}
	out[n] = '\0';
	return out;
}
