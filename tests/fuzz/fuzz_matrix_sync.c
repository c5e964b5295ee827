/*
 * fuzz_matrix_sync.c: what a Matrix homeserver (or someone posing as it)
 * sends: /sync answers, /rooms/{roomId}/messages pages and error answers.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "matrix/mx_sync.h"

/* Reads every string the adapter reads, so ASan checks each. */
static void
fuzz_events(const struct mx_event *v, int n)
{
	int	i;

	for (i = 0; i < n; i++) {
		(void)strlen(v[i].event_id);
		(void)strlen(v[i].sender);
		if (v[i].text != NULL)
			(void)strlen(v[i].text);
		if (v[i].relates != NULL)
			(void)strlen(v[i].relates);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*json = (const char *)data;
	struct mx_sync	 s;
	struct mx_page	 p;
	struct mx_error	 e;
	char		*cause = NULL;
	int		 i;

	memset(&s, 0, sizeof s);
	if (mx_sync_parse(json, size, "@bot:example.org", &s, &cause) == 0) {
		(void)strlen(s.next_batch);
		for (i = 0; i < s.nrooms; i++) {
			(void)strlen(s.rooms[i].id);
			if (s.rooms[i].prev_batch != NULL)
				(void)strlen(s.rooms[i].prev_batch);
			if (s.rooms[i].inviter != NULL)
				(void)strlen(s.rooms[i].inviter);
			fuzz_events(s.rooms[i].events, s.rooms[i].nevents);
		}
		if (s.direct != NULL)
			(void)strlen(s.direct);
		mx_sync_clear(&s);
	} else
		free(cause);
	cause = NULL;

	memset(&p, 0, sizeof p);
	if (mx_page_parse(json, size, &p, &cause) == 0) {
		if (p.end != NULL)
			(void)strlen(p.end);
		fuzz_events(p.events, p.nevents);
		mx_page_clear(&p);
	} else
		free(cause);

	memset(&e, 0, sizeof e);
	if (mx_error_parse(json, size, &e) == 0)
		(void)strlen(e.error);
	return 0;
}
