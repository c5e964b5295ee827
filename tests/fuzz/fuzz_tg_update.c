/*
 * fuzz_tg_update.c: what the Telegram Bot API (or someone posing as it)
 * sends: getUpdates answers, webhook bodies and error answers.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "telegram/tg_update.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*json = (const char *)data;
	struct tg_update	*v = NULL, u;
	struct tg_error		 e;
	char			*cause = NULL;
	int			 n = 0, i;

	if (tg_parse_updates(json, size, &v, &n, &cause) == 0) {
		/* What the adapter reads of each; ASan checks the strings. */
		for (i = 0; i < n; i++) {
			if (v[i].text != NULL)
				(void)strlen(v[i].text);
			if (v[i].callback_id != NULL)
				(void)strlen(v[i].callback_id);
			(void)strlen(v[i].lang);
		}
		tg_updates_free(v, n);
	} else
		free(cause);
	cause = NULL;

	memset(&u, 0, sizeof u);
	if (tg_parse_update(json, size, &u, &cause) != 0)
		free(cause);
	tg_update_clear(&u);

	memset(&e, 0, sizeof e);
	if (tg_parse_error(json, size, &e) == 0)
		(void)strlen(e.description);
	return 0;
}
