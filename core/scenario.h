/*
 * scenario.h: the answers file of `strigil simulate`.
 *
 * One line per questionnaire answered: `key=value` pairs separated by
 * spaces, optionally led by a questionnaire id and a colon; a line without
 * one is for "checkin". `#` starts a comment; a value with spaces is written
 * in double quotes.
 *
 *   screening: blood_thinners=yes
 *   soreness=3 bruising=1 redness=no pain=4
 */
#ifndef STRIGIL_SCENARIO_H
#define STRIGIL_SCENARIO_H

#include <stddef.h>

struct scenario_line {
	int	  lineno;
	int	  n;
	char	**keys;
	char	**values;
};

struct scenario_q {
	char			*id;
	struct scenario_line	*lines;
	int			 nlines;
};

struct scenario {
	char			*name;
	struct scenario_q	*qs;
	int			 nqs;
};

/* Parses a whole answers file held in memory; `name` is used in errors
 * ("answers.txt:3: ..."). 0 with *out (free with scenario_free) or -1 with
 * *cause (caller frees). */
int	scenario_parse(const char *text, size_t len, const char *name,
	    struct scenario **out, char **cause);
/* Reads and parses the file at `path`. */
int	scenario_load(const char *path, struct scenario **out, char **cause);
void	scenario_free(struct scenario *sc);

const struct scenario_q *scenario_find(const struct scenario *sc,
	    const char *questionnaire);
/* The value a line gives `key`, or NULL. */
const char *scenario_value(const struct scenario_line *l, const char *key);

#endif
