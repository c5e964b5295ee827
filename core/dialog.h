/*
 * dialog.h: typed questions and the answers patients type to them.
 *
 * Patients answer in free text: a number, "yes", an option's number or its
 * words. dialog_parse() turns that into the canonical answer (what is stored
 * and handed to the protocol) or says which hint to show. dialog_meta()
 * describes a question for the adapters, which render it as they can
 * (numbered lines on the console, buttons on Telegram).
 */
#ifndef STRIGIL_DIALOG_H
#define STRIGIL_DIALOG_H

#include <cjson/cJSON.h>

#include "protocol.h"

#define DIALOG_MAX_TEXT	2000	/* bytes of a free-text answer */

/*
 * Parses `text` as an answer to `q`. `def` is what "1" or an empty-ish "ok"
 * means for timezone and time questions (the suggested default), or NULL.
 * Returns 0 with *value set (canonical text: "7", "yes", an option id, the
 * trimmed text, a zone name, "HH:MM"; caller frees), or -1 if the answer
 * does not fit, with *hint set to a catalog key ("hint_integer", ...).
 */
int	 dialog_parse(const struct proto_question *q, const char *text,
	     const char *lang, const char *def, char **value, const char **hint);

/* The canonical answer as a JSON value for the protocol: integers as
 * numbers, yes/no as booleans, the rest as strings. */
cJSON	*dialog_json(const struct proto_question *q, const char *value);

/* A JSON description of the question for adapters: type, bounds, options
 * (id and text in `lang`; `yes` and `no` label a yes/no question), and
 * the questionnaire and question ids. The caller owns the result. */
cJSON	*dialog_meta(const char *questionnaire, const struct proto_question *q,
	     const char *lang, int index, int count,
	     const char *yes, const char *no);

const char *dialog_type_name(enum proto_qtype type);

/* 1 if `s` is valid UTF-8 with no control characters but tab and newline. */
int	 dialog_text_ok(const char *s);

#endif
