/*
 * catalog.h: the engine's own texts, by language.
 *
 * scripts/lang/<language>.lua returns a table of key = "text". Texts take
 * parameters as {name}. A protocol's own messages (protocol.h) come first;
 * the catalog supplies everything the engine says by itself: commands,
 * hints, reminders. A missing key falls back to English.
 */
#ifndef STRIGIL_CATALOG_H
#define STRIGIL_CATALOG_H

#include <stddef.h>

struct catalog;

/* Loads every <lang>.lua in `dir`; "en.lua" must exist. 0 with *out (free
 * with catalog_free) or -1 with *cause (caller frees). */
int	 catalog_load(const char *dir, struct catalog **out, char **cause);
void	 catalog_free(struct catalog *cat);

/* The text for `key` in `lang`, else in English, else NULL. */
const char *catalog_get(const struct catalog *cat, const char *lang,
	     const char *key);

/* Replaces each {name} in `tmpl` by params[name] (params is a JSON object
 * or NULL); unknown names stay as they are. Returns a new string the caller
 * frees. */
struct cJSON;

char	*catalog_render(const char *tmpl, const char *params);
/* The same with the parameters parsed already (may be NULL), for many
 * texts rendered with the same ones. */
char	*catalog_render_json(const char *tmpl, const struct cJSON *params);

#endif
