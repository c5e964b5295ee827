/*
 * scenario.c: parsing the simulator's answers file.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"
#include "xmalloc.h"

#define SCENARIO_MAX_BYTES	(4 * 1024 * 1024)

static int
scenario_is_name(const char *s, size_t n)
{
	size_t	i;

	if (n == 0 || n > 63)
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

static struct scenario_q *
scenario_q_get(struct scenario *sc, const char *id, size_t n)
{
	struct scenario_q	*q;
	int			 i;

	for (i = 0; i < sc->nqs; i++)
		if (strlen(sc->qs[i].id) == n && strncmp(sc->qs[i].id, id, n) == 0)
			return &sc->qs[i];
	sc->qs = xrealloc(sc->qs, (size_t)(sc->nqs + 1) * sizeof *sc->qs);
	q = &sc->qs[sc->nqs++];
	memset(q, 0, sizeof *q);
	q->id = xstrndup(id, n);
	return q;
}

static void
scenario_add(struct scenario_line *l, const char *k, size_t kn,
    const char *v, size_t vn)
{
	l->keys = xrealloc(l->keys, (size_t)(l->n + 1) * sizeof *l->keys);
	l->values = xrealloc(l->values, (size_t)(l->n + 1) * sizeof *l->values);
	l->keys[l->n] = xstrndup(k, kn);
	l->values[l->n] = xstrndup(v, vn);
	l->n++;
}

/* Parses the pairs of one line (comment and id already removed). */
static int
scenario_pairs(const char *p, const char *end, struct scenario_line *l,
    const char *name, int lineno, char **cause)
{
	const char	*k, *eq, *v;
	size_t		 vn;
	int		 i;

	for (;;) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p == end)
			return 0;
		k = p;
		while (p < end && *p != '=' && !isspace((unsigned char)*p))
			p++;
		eq = p;
		if (eq == end || *eq != '=' || !scenario_is_name(k,
		    (size_t)(eq - k)))
			goto bad;
		v = ++p;
		if (p < end && *p == '"') {
			v = ++p;
			while (p < end && *p != '"')
				p++;
			if (p == end)
				goto bad;
			vn = (size_t)(p++ - v);
		} else {
			while (p < end && !isspace((unsigned char)*p))
				p++;
			vn = (size_t)(p - v);
		}
		if (vn == 0)
			goto bad;
		for (i = 0; i < l->n; i++)
			if (strlen(l->keys[i]) == (size_t)(eq - k) &&
			    strncmp(l->keys[i], k, (size_t)(eq - k)) == 0) {
				*cause = xasprintf("%s:%d: '%.*s' is given twice",
				    name, lineno, (int)(eq - k), k);
				return -1;
			}
		scenario_add(l, k, (size_t)(eq - k), v, vn);
	}
bad:
	*cause = xasprintf("%s:%d: expected key=value pairs (like soreness=3),"
	    " optionally led by a questionnaire id and a colon", name, lineno);
	return -1;
}

static int
scenario_line(struct scenario *sc, const char *p, const char *end,
    int lineno, char **cause)
{
	const char		*colon, *eq, *hash, *id = "checkin";
	size_t			 idn = 7;
	struct scenario_line	 l;
	struct scenario_q	*q;

	if ((hash = memchr(p, '#', (size_t)(end - p))) != NULL)
		end = hash;
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	if (p == end)
		return 0;
	colon = memchr(p, ':', (size_t)(end - p));
	eq = memchr(p, '=', (size_t)(end - p));
	/* "screening: x=1" has its colon before any '='; "reminder=18:00"
	 * does not. */
	if (colon != NULL && (eq == NULL || colon < eq)) {
		if (!scenario_is_name(p, (size_t)(colon - p))) {
			*cause = xasprintf("%s:%d: '%.*s' is not a "
			    "questionnaire id", sc->name, lineno,
			    (int)(colon - p), p);
			return -1;
		}
		id = p;
		idn = (size_t)(colon - p);
		p = colon + 1;
	}
	memset(&l, 0, sizeof l);
	l.lineno = lineno;
	if (scenario_pairs(p, end, &l, sc->name, lineno, cause) != 0) {
		q = scenario_q_get(sc, id, idn);
		q->lines = xrealloc(q->lines, (size_t)(q->nlines + 1) *
		    sizeof *q->lines);
		q->lines[q->nlines++] = l;	/* freed with the scenario */
		return -1;
	}
	q = scenario_q_get(sc, id, idn);
	q->lines = xrealloc(q->lines, (size_t)(q->nlines + 1) *
	    sizeof *q->lines);
	q->lines[q->nlines++] = l;
	return 0;
}

int
scenario_parse(const char *text, size_t len, const char *name,
    struct scenario **out, char **cause)
{
	struct scenario	*sc = xcalloc(1, sizeof *sc);
	const char	*p = text, *end = text + len, *nl;
	int		 lineno = 0;

	sc->name = xstrdup(name);
	if (memchr(text, '\0', len) != NULL) {
		*cause = xasprintf("%s: not a text file", name);
		goto fail;
	}
	while (p < end) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (scenario_line(sc, p, nl, lineno, cause) != 0)
			goto fail;
		p = nl + 1;
	}
	*out = sc;
	return 0;
fail:
	scenario_free(sc);
	return -1;
}

int
scenario_load(const char *path, struct scenario **out, char **cause)
{
	FILE	*f = fopen(path, "rb");
	char	*buf;
	size_t	 n;
	int	 rc;

	if (f == NULL) {
		*cause = xasprintf("%s: cannot open", path);
		return -1;
	}
	buf = xmalloc(SCENARIO_MAX_BYTES + 1);
	n = fread(buf, 1, SCENARIO_MAX_BYTES + 1, f);
	fclose(f);
	if (n > SCENARIO_MAX_BYTES) {
		*cause = xasprintf("%s: larger than %d bytes", path,
		    SCENARIO_MAX_BYTES);
		free(buf);
		return -1;
	}
	rc = scenario_parse(buf, n, path, out, cause);
	free(buf);
	return rc;
}

void
scenario_free(struct scenario *sc)
{
	int	i, j, k;

	if (sc == NULL)
		return;
	for (i = 0; i < sc->nqs; i++) {
		for (j = 0; j < sc->qs[i].nlines; j++) {
			struct scenario_line *l = &sc->qs[i].lines[j];

			for (k = 0; k < l->n; k++) {
				free(l->keys[k]);
				free(l->values[k]);
			}
			free(l->keys);
			free(l->values);
		}
		free(sc->qs[i].lines);
		free(sc->qs[i].id);
	}
	free(sc->qs);
	free(sc->name);
	free(sc);
}

const struct scenario_q *
scenario_find(const struct scenario *sc, const char *questionnaire)
{
	int	i;

	for (i = 0; sc != NULL && i < sc->nqs; i++)
		if (strcmp(sc->qs[i].id, questionnaire) == 0)
			return &sc->qs[i];
	return NULL;
}

const char *
scenario_value(const struct scenario_line *l, const char *key)
{
	int	i;

	for (i = 0; l != NULL && i < l->n; i++)
		if (strcmp(l->keys[i], key) == 0)
			return l->values[i];
	return NULL;
}
