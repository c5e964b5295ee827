/*
 * config_parse.c: the parsers behind config_keys[] (one per kind of setting),
 * reading text (an environment value, a default) as a row's kind, and the
 * look-ups by name, with "did you mean" for a likely typo.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "tz.h"
#include "xmalloc.h"

/* Parsers. Each stores into `field`, or returns -1 with *why (caller frees). */

int
config__parse_string(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	char	**sp = field;

	(void)key;
	if (*v->s == '\0') {
		*why = xstrdup("must not be empty");
		return -1;
	}
	free(*sp);
	*sp = xstrdup(v->s);
	return 0;
}

/* A string that may be empty: "" turns a feature off (telegram.token). */
/* A Telegram bot username, with or without its '@': 5 to 32 of
 * [A-Za-z0-9_] (it goes into a link, so nothing else may pass). */
int
config__parse_username(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	const char	*u = v->s + (v->s[0] == '@');
	size_t		 n = strlen(u);

	if (*v->s != '\0' && (n < 5 || n > 32 ||
	    strspn(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_") != n)) {
		*why = xstrdup("must be a bot username: 5 to 32 letters, "
		    "digits or _");
		return -1;
	}
	return config__parse_optional(field, key, v, why);
}

int
config__parse_optional(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	char	**sp = field;

	(void)key;
	(void)why;
	free(*sp);
	*sp = xstrdup(v->s);
	return 0;
}

int
config__parse_zone(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (!tz_valid(v->s)) {
		*why = xasprintf("unknown time zone \"%.*s\"", CONFIG_SHOW_MAX,
		    v->s);
		return -1;
	}
	return config__parse_string(field, key, v, why);
}

int
config__parse_time(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	int	m;

	(void)key;
	if ((m = tz_parse_hhmm(v->s)) < 0) {
		*why = xasprintf("expected a time \"HH:MM\", got \"%.*s\"",
		    CONFIG_SHOW_MAX, v->s);
		return -1;
	}
	*(int *)field = m;
	return 0;
}

int
config__parse_level(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	int	level;

	(void)key;
	if ((level = log_level_parse(v->s)) < 0) {
		*why = xasprintf("expected debug, info, warn or error, "
		    "got \"%.*s\"", CONFIG_SHOW_MAX, v->s);
		return -1;
	}
	*(int *)field = level;
	return 0;
}

int
config__parse_boolean(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	(void)key;
	(void)why;
	*(int *)field = v->b;
	return 0;
}

static int
config__range(const struct config_key *key, int64_t i, char **why)
{
	if (i < key->min || i > key->max) {
		*why = xasprintf("must be between %" PRId64 " and %" PRId64
		    ", got %" PRId64, key->min, key->max, i);
		return -1;
	}
	return 0;
}

int
config__parse_megabytes(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (config__range(key, v->i, why) != 0)
		return -1;
	*(size_t *)field = (size_t)v->i << 20;
	return 0;
}

int
config__parse_int64(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (config__range(key, v->i, why) != 0)
		return -1;
	*(int64_t *)field = v->i;
	return 0;
}

/* An http(s) base URL, or "" (the feature is off). */
int
config__parse_url(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (*v->s != '\0' && strncmp(v->s, "http://", 7) != 0 &&
	    strncmp(v->s, "https://", 8) != 0) {
		*why = xasprintf("expected an http:// or https:// URL, got "
		    "\"%.*s\"", CONFIG_SHOW_MAX, v->s);
		return -1;
	}
	return config__parse_optional(field, key, v, why);
}

/* A Matrix room id "!opaque:server", or "". */
int
config__parse_room(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	if (*v->s != '\0' && (v->s[0] != '!' || strchr(v->s, ':') == NULL)) {
		*why = xasprintf("expected a room id such as "
		    "\"!abc:example.org\", got \"%.*s\"", CONFIG_SHOW_MAX,
		    v->s);
		return -1;
	}
	return config__parse_optional(field, key, v, why);
}

/*
 * Who may invite the Matrix bot: user ids ("@dr:clinic.org") and servers
 * (":clinic.org"), separated by commas or spaces. A string rather than a
 * table, so the environment variable can say the same thing.
 */
int
config__parse_inviters(void *field, const struct config_key *key,
    const struct config_value *v, char **why)
{
	const char	*p = v->s, *end;
	size_t		 n;

	for (;;) {
		p += strspn(p, ", \t");
		if (*p == '\0')
			break;
		n = strcspn(p, ", \t");
		end = memchr(p, ':', n);
		if ((p[0] != '@' && p[0] != ':') || end == NULL ||
		    end + 1 == p + n || (p[0] == '@' && end == p + 1)) {
			*why = xasprintf("expected user ids (\"@dr:example.org"
			    "\") or servers (\":example.org\") separated by "
			    "commas, got \"%.*s\"", (int)(n < CONFIG_SHOW_MAX ?
			    n : CONFIG_SHOW_MAX), p);
			return -1;
		}
		p += n;
	}
	return config__parse_optional(field, key, v, why);
}

int
config__apply(struct config *cfg, const struct config_key *key,
    const struct config_value *v, char **why)
{
	return key->parse((char *)cfg + key->offset, key, v, why);
}

/*
 * Reads text (an environment value, or a row's default) as the kind the row
 * wants. 0, or -1 with *why set (caller frees).
 */
int
config__from_text(const struct config_key *key, const char *text,
    struct config_value *v, char **why)
{
	static const char *const yes[] = { "true", "1", "yes" };
	static const char *const no[] = { "false", "0", "no" };
	const char	*p;
	char		*end;
	long long	 ll;
	size_t		 i;

	memset(v, 0, sizeof *v);
	v->kind = config_types[key->type].kind;
	v->s = text;
	switch (v->kind) {
	case CONFIG_KSTRING:
		return 0;
	case CONFIG_KINTEGER:
		/* strtoll() alone would take " 12", "+12" and "12abc". */
		p = text[0] == '-' ? text + 1 : text;
		if (*p < '0' || *p > '9')
			break;
		errno = 0;
		ll = strtoll(text, &end, 10);
		if (errno != 0 || *end != '\0')
			break;
		v->i = ll;
		return 0;
	case CONFIG_KBOOLEAN:
		for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
			if (strcasecmp(text, yes[i]) == 0) {
				v->b = 1;
				return 0;
			}
			if (strcasecmp(text, no[i]) == 0) {
				v->b = 0;
				return 0;
			}
		}
		*why = xasprintf("expected true/false/1/0/yes/no, got \"%.*s\"",
		    CONFIG_SHOW_MAX, text);
		return -1;
	}
	*why = xasprintf("expected %s, got \"%.*s\"",
	    config_types[key->type].noun, CONFIG_SHOW_MAX, text);
	return -1;
}

const struct config_key *
config__find(const char *name)
{
	size_t	i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

/*
 * 1 if `name` is a top-level setting, 2 if a section, else 0. A dotted name
 * is neither: _ENV["lua.memory_mb"] would otherwise be recorded and ignored.
 */
int
config__top(const char *name)
{
	size_t	i, n = strlen(name);

	if (strchr(name, '.') != NULL)
		return 0;
	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].name, name) == 0)
			return 1;
		if (strncmp(config_keys[i].name, name, n) == 0 &&
		    config_keys[i].name[n] == '.')
			return 2;
	}
	return 0;
}

/* The row's variable: STRIGIL_ + the dotted name upper-cased, '.' as '_'. */
void
config__env_name(const struct config_key *key, char *buf, size_t len)
{
	size_t	i;
	int	n;

	n = snprintf(buf, len, "STRIGIL_%s", key->name);
	for (i = 0; i < (size_t)n && buf[i] != '\0'; i++) {
		if (buf[i] == '.')
			buf[i] = '_';
		else if (buf[i] >= 'a' && buf[i] <= 'z')
			buf[i] = (char)(buf[i] - 'a' + 'A');
	}
}

/* Edit distance, for "did you mean"; names longer than the cap never match. */
static size_t
config__distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b), i, j, prev, cur, up;
	size_t	row[CONFIG_NAME_MAX + 8];

	if (la > CONFIG_NAME_MAX || lb > CONFIG_NAME_MAX)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			cur = prev + (a[i - 1] != b[j - 1]);
			if (up + 1 < cur)
				cur = up + 1;
			if (row[j - 1] + 1 < cur)
				cur = row[j - 1] + 1;
			row[j] = cur;
			prev = up;
		}
	}
	return row[lb];
}

/*
 * Writes into buf the known name closest to `name` in the given name space,
 * or "" if none is close enough to be a likely typo.
 */
void
config__suggest(const char *name, enum config_space space, char *buf,
    size_t len)
{
	char	 cand[CONFIG_HINT_MAX];
	size_t	 i, d, best = 3;	/* at most two edits */
	char	*dot;

	buf[0] = '\0';
	for (i = 0; i < CONFIG_NKEYS; i++) {
		switch (space) {
		case CONFIG_TOP:
			snprintf(cand, sizeof cand, "%s", config_keys[i].name);
			if ((dot = strchr(cand, '.')) != NULL)
				*dot = '\0';
			break;
		case CONFIG_DOTTED:
			snprintf(cand, sizeof cand, "%s", config_keys[i].name);
			break;
		case CONFIG_ENV:
			config__env_name(&config_keys[i], cand, sizeof cand);
			break;
		}
		d = config__distance(name, cand);
		if (d < best && d < strlen(name)) {
			best = d;
			snprintf(buf, len, "%s", cand);
		}
	}
}
