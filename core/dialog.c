/*
 * dialog.c: parsing answers to typed questions.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dialog.h"
#include "tz.h"
#include "xmalloc.h"

static const char *dialog_types[] = {
	[Q_INT] = "integer", [Q_CHOICE] = "choice", [Q_YESNO] = "yesno",
	[Q_TEXT] = "text", [Q_ZONE] = "timezone", [Q_TIME] = "time",
};

/* Words taken for yes and no, besides the option numbers 1 and 2. */
static const char *dialog_yes[] = { "yes", "y", "yeah", "yep", "ok", "true",
    "ja", "oui", "si", "sí", NULL };
static const char *dialog_no[] = { "no", "n", "nope", "false", "nein",
    "non", NULL };

const char *
dialog_type_name(enum proto_qtype type)
{
	return dialog_types[type];
}

/* Copies `text` without surrounding white space (and a trailing '.' or
 * '!', which phones like to add). The caller frees. */
static char *
dialog_trim(const char *text)
{
	const char	*end;

	while (isspace((unsigned char)*text))
		text++;
	end = text + strlen(text);
	while (end > text && (isspace((unsigned char)end[-1]) ||
	    end[-1] == '.' || end[-1] == '!'))
		end--;
	return xstrndup(text, (size_t)(end - text));
}

static int
dialog_word(const char *s, const char **words)
{
	int	i;

	for (i = 0; words[i] != NULL; i++)
		if (strcasecmp(s, words[i]) == 0)
			return 1;
	return 0;
}

/* Parses a whole number, allowing "7/10". 0 or -1. */
static int
dialog_number(const char *s, long *v)
{
	char	*end;

	errno = 0;
	*v = strtol(s, &end, 10);
	if (end == s || errno != 0)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (*end == '/') {
		end++;
		while (isdigit((unsigned char)*end) || isspace((unsigned char)*end))
			end++;
	}
	return *end == '\0' ? 0 : -1;
}

static int
dialog_parse_int(const struct proto_question *q, const char *s, char **value)
{
	long	v;

	if (dialog_number(s, &v) != 0 || v < q->min || v > q->max)
		return -1;
	*value = xasprintf("%ld", v);
	return 0;
}

static int
dialog_parse_yesno(const char *s, char **value)
{
	if (dialog_word(s, dialog_yes) || strcmp(s, "1") == 0)
		*value = xstrdup("yes");
	else if (dialog_word(s, dialog_no) || strcmp(s, "2") == 0)
		*value = xstrdup("no");
	else
		return -1;
	return 0;
}

static int
dialog_parse_choice(const struct proto_question *q, const char *s,
    const char *lang, char **value)
{
	long	n;
	int	i;

	if (dialog_number(s, &n) == 0) {
		if (n < 1 || n > q->noptions)
			return -1;
		*value = xstrdup(q->options[n - 1].id);
		return 0;
	}
	for (i = 0; i < q->noptions; i++) {
		if (strcasecmp(s, q->options[i].id) == 0 ||
		    strcasecmp(s, proto_text_get(&q->options[i].text,
		    lang)) == 0) {
			*value = xstrdup(q->options[i].id);
			return 0;
		}
	}
	return -1;
}

static int
dialog_parse_time(const char *s, const char *def, char **value)
{
	long	h;
	int	m;

	if (def != NULL && (strcmp(s, "1") == 0 || strcasecmp(s, "ok") == 0))
		s = def;
	if ((m = tz_parse_hhmm(s)) < 0) {
		/* "18" means 18:00. */
		if (dialog_number(s, &h) != 0 || h < 0 || h > 23 ||
		    strchr(s, '/') != NULL)
			return -1;
		m = (int)h * 60;
	}
	*value = xasprintf("%02d:%02d", m / 60, m % 60);
	return 0;
}

static int
dialog_parse_zone(const char *s, const char *def, char **value)
{
	if (def != NULL && (strcmp(s, "1") == 0 || strcasecmp(s, "ok") == 0))
		s = def;
	if (!tz_valid(s))
		return -1;
	*value = xstrdup(s);
	return 0;
}

int
dialog_text_ok(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	int			 n;

	while (*p != '\0') {
		if (*p < 0x80) {
			if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
				return 0;
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
			n = 1;
		else if ((*p & 0xf0) == 0xe0)
			n = 2;
		else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
			n = 3;
		else
			return 0;
		/* No overlong forms, surrogates or code points past U+10FFFF. */
		if ((p[0] == 0xe0 && p[1] < 0xa0) ||
		    (p[0] == 0xed && p[1] >= 0xa0) ||
		    (p[0] == 0xf0 && p[1] < 0x90) ||
		    (p[0] == 0xf4 && p[1] >= 0x90))
			return 0;
		for (p++; n > 0; n--, p++)
			if ((*p & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

int
dialog_parse(const struct proto_question *q, const char *text,
    const char *lang, const char *def, char **value, const char **hint)
{
	char	*s;
	int	 rc = -1;

	*value = NULL;
	*hint = "hint_text";
	if (!dialog_text_ok(text))
		return -1;
	s = dialog_trim(text);
	switch (q->type) {
	case Q_INT:
		*hint = "hint_integer";
		rc = dialog_parse_int(q, s, value);
		break;
	case Q_YESNO:
		*hint = "hint_yesno";
		rc = dialog_parse_yesno(s, value);
		break;
	case Q_CHOICE:
		*hint = "hint_choice";
		rc = dialog_parse_choice(q, s, lang, value);
		break;
	case Q_TEXT:
		if (s[0] != '\0' && strlen(s) <= DIALOG_MAX_TEXT) {
			*value = xstrdup(s);
			rc = 0;
		}
		break;
	case Q_ZONE:
		*hint = "hint_timezone";
		rc = dialog_parse_zone(s, def, value);
		break;
	case Q_TIME:
		*hint = "hint_time";
		rc = dialog_parse_time(s, def, value);
		break;
	}
	free(s);
	return rc;
}

cJSON *
dialog_json(const struct proto_question *q, const char *value)
{
	switch (q->type) {
	case Q_INT:
		return cJSON_CreateNumber(strtol(value, NULL, 10));
	case Q_YESNO:
		return cJSON_CreateBool(strcmp(value, "yes") == 0);
	default:
		return cJSON_CreateString(value);
	}
}

static void
dialog_option(cJSON *arr, const char *id, const char *text)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "text", text);
	cJSON_AddItemToArray(arr, o);
}

cJSON *
dialog_meta(const char *questionnaire, const struct proto_question *q,
    const char *lang, int index, int count, const char *yes,
    const char *no)
{
	cJSON	*m = cJSON_CreateObject(), *opts;
	int	 i;

	cJSON_AddStringToObject(m, "type", "question");
	cJSON_AddStringToObject(m, "questionnaire", questionnaire);
	cJSON_AddStringToObject(m, "question", q->id);
	cJSON_AddStringToObject(m, "answer", dialog_types[q->type]);
	cJSON_AddNumberToObject(m, "index", index + 1);
	cJSON_AddNumberToObject(m, "count", count);
	if (q->type == Q_INT) {
		cJSON_AddNumberToObject(m, "min", q->min);
		cJSON_AddNumberToObject(m, "max", q->max);
	}
	if (q->type == Q_YESNO || q->type == Q_CHOICE) {
		opts = cJSON_AddArrayToObject(m, "options");
		if (q->type == Q_YESNO) {
			dialog_option(opts, "yes", yes);
			dialog_option(opts, "no", no);
		}
		for (i = 0; i < q->noptions; i++)
			dialog_option(opts, q->options[i].id,
			    proto_text_get(&q->options[i].text, lang));
	}
	return m;
}
