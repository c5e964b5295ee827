/*
 * fuzz_scenario.c: the answers file of `strigil simulate`.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "scenario.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scenario		*sc = NULL;
	const struct scenario_q	*q;
	char			*cause = NULL;
	int			 i, j, k;

	if (scenario_parse((const char *)data, size, "fuzz.txt", &sc,
	    &cause) != 0) {
		free(cause);
		return 0;
	}
	/* Walk everything simulate reads. */
	for (i = 0; i < sc->nqs; i++) {
		q = scenario_find(sc, sc->qs[i].id);
		for (j = 0; q != NULL && j < q->nlines; j++) {
			for (k = 0; k < q->lines[j].n; k++) {
				(void)strlen(q->lines[j].keys[k]);
				(void)scenario_value(&q->lines[j],
				    q->lines[j].keys[k]);
			}
		}
	}
	(void)scenario_find(sc, "checkin");
	scenario_free(sc);
	return 0;
}
