/*
 * fuzz_dialog.c: what patients type, parsed as an answer to a question of
 * every type (with and without a suggested default), as the engine does.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dialog.h"
#include "fuzz.h"

static char	*txt_en[] = { "en" };
static char	*txt_none[] = { "None at all" };
static char	*txt_mild[] = { "A little" };
static char	*lang_two[] = { "en", "de" };
static char	*txt_some[] = { "Some", "Etwas" };

static struct proto_option options[] = {
	{ "none", { 1, txt_en, txt_none } },
	{ "mild", { 1, txt_en, txt_mild } },
	{ "some", { 2, lang_two, txt_some } },
};

static struct proto_question questions[] = {
	{ "pain", Q_INT, { 0, NULL, NULL }, 0, 10, NULL, 0, "0" },
	{ "delta", Q_INT, { 0, NULL, NULL }, -5, 5, NULL, 0, "0" },
	{ "wide", Q_INT, { 0, NULL, NULL }, -2147483647 - 1, 2147483647,
	    NULL, 0, NULL },
	{ "bruising", Q_CHOICE, { 0, NULL, NULL }, 0, 0, options, 3, "none" },
	{ "redness", Q_YESNO, { 0, NULL, NULL }, 0, 0, NULL, 0, "no" },
	{ "notes", Q_TEXT, { 0, NULL, NULL }, 0, 0, NULL, 0, "-" },
	{ "timezone", Q_ZONE, { 0, NULL, NULL }, 0, 0, NULL, 0, NULL },
	{ "reminder", Q_TIME, { 0, NULL, NULL }, 0, 0, NULL, 0, NULL },
};

static const char *defaults[] = { NULL, "Europe/Berlin", "18:00" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct proto_question	*q;
	const char			*hint;
	char				*text, *value;
	cJSON				*j;
	size_t				 i, d;

	/* The engine hands over a C string: the text up to the first NUL. */
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	(void)dialog_text_ok(text);
	for (i = 0; i < sizeof questions / sizeof questions[0]; i++) {
		q = &questions[i];
		for (d = 0; d < sizeof defaults / sizeof defaults[0]; d++) {
			value = NULL;
			hint = NULL;
			if (dialog_parse(q, text, d == 0 ? "de" : "en",
			    defaults[d], &value, &hint) != 0) {
				if (hint == NULL || value != NULL)
					abort();	/* broken contract */
				continue;
			}
			if (value == NULL)
				abort();
			/* The canonical value must read back the same way. */
			j = dialog_json(q, value);
			cJSON_Delete(j);
			free(value);
		}
	}
	free(text);
	return 0;
}
