/*
 * test_dialog.c: what patients type, parsed against each question type;
 * the JSON answers and the adapters' metadata.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dialog.h"
#include "test.h"

static char	*txt_en[] = { "en" };
static char	*txt_none[] = { "None at all" };
static char	*txt_mild[] = { "A little" };
static char	*txt_lots[] = { "A lot" };
static char	*lang_two[] = { "en", "de" };
static char	*txt_some[] = { "Some", "Etwas" };

static struct proto_option options[] = {
	{ "none", { 1, txt_en, txt_none } },
	{ "mild", { 1, txt_en, txt_mild } },
	{ "some", { 2, lang_two, txt_some } },
	{ "lots", { 1, txt_en, txt_lots } },
};

static struct proto_question q_int = { "pain", Q_INT, { 0, NULL, NULL },
    0, 10, NULL, 0, "0" };
static struct proto_question q_neg = { "delta", Q_INT, { 0, NULL, NULL },
    -5, 5, NULL, 0, "0" };
static struct proto_question q_choice = { "bruising", Q_CHOICE,
    { 0, NULL, NULL }, 0, 0, options, 4, "none" };
static struct proto_question q_yesno = { "redness", Q_YESNO,
    { 0, NULL, NULL }, 0, 0, NULL, 0, "no" };
static struct proto_question q_text = { "notes", Q_TEXT, { 0, NULL, NULL },
    0, 0, NULL, 0, "-" };
static struct proto_question q_zone = { "timezone", Q_ZONE,
    { 0, NULL, NULL }, 0, 0, NULL, 0, "1" };
static struct proto_question q_time = { "reminder", Q_TIME,
    { 0, NULL, NULL }, 0, 0, NULL, 0, "1" };

/* Parses and expects the canonical value. */
static void
ok_(int line, const struct proto_question *q, const char *text,
    const char *def, const char *want)
{
	char		*v = NULL;
	const char	*hint = NULL;

	if (dialog_parse(q, text, "en", def, &v, &hint) != 0) {
		fprintf(stderr, "%s:%d: \"%s\" refused (%s), expected \"%s\"\n",
		    __FILE__, line, text, hint, want);
		test_failed_checks++;
		return;
	}
	if (v == NULL || strcmp(v, want) != 0) {
		fprintf(stderr, "%s:%d: \"%s\" gave \"%s\", expected \"%s\"\n",
		    __FILE__, line, text, v ? v : "(null)", want);
		test_failed_checks++;
	}
	free(v);
}

/* Parses and expects refusal with `hint`. */
static void
bad_(int line, const struct proto_question *q, const char *text,
    const char *def, const char *want_hint)
{
	char		*v = NULL;
	const char	*hint = NULL;

	if (dialog_parse(q, text, "en", def, &v, &hint) == 0) {
		fprintf(stderr, "%s:%d: \"%s\" accepted as \"%s\"\n",
		    __FILE__, line, text, v);
		test_failed_checks++;
		free(v);
		return;
	}
	if (v != NULL) {
		fprintf(stderr, "%s:%d: value set on failure\n", __FILE__,
		    line);
		test_failed_checks++;
	}
	if (hint == NULL || strcmp(hint, want_hint) != 0) {
		fprintf(stderr, "%s:%d: \"%s\" hint %s, expected %s\n",
		    __FILE__, line, text, hint ? hint : "(null)", want_hint);
		test_failed_checks++;
	}
}

#define OK(q, text, def, want)	ok_(__LINE__, q, text, def, want)
#define BAD(q, text, def, hint)	bad_(__LINE__, q, text, def, hint)

static void
test_integer(void)
{
	OK(&q_int, "7", NULL, "7");
	OK(&q_int, "  7 ", NULL, "7");
	OK(&q_int, "\t10\n", NULL, "10");
	OK(&q_int, "0", NULL, "0");
	OK(&q_int, "7/10", NULL, "7");
	OK(&q_int, "7 / 10", NULL, "7");
	OK(&q_int, "3.", NULL, "3");		/* phones add a full stop */
	OK(&q_int, "03", NULL, "3");
	BAD(&q_int, "11", NULL, "hint_integer");
	BAD(&q_int, "-1", NULL, "hint_integer");
	BAD(&q_int, "7 8", NULL, "hint_integer");
	BAD(&q_int, "seven", NULL, "hint_integer");
	BAD(&q_int, "", NULL, "hint_integer");
	BAD(&q_int, "   ", NULL, "hint_integer");
	BAD(&q_int, "7x", NULL, "hint_integer");
	BAD(&q_int, "7/ten", NULL, "hint_integer");
	BAD(&q_int, "2.5", NULL, "hint_integer");
	BAD(&q_int, "99999999999999999999999", NULL, "hint_integer");
	OK(&q_neg, "-5", NULL, "-5");
	OK(&q_neg, "5", NULL, "5");
	BAD(&q_neg, "-6", NULL, "hint_integer");
}

static void
test_choice(void)
{
	OK(&q_choice, "1", NULL, "none");
	OK(&q_choice, " 4 ", NULL, "lots");
	BAD(&q_choice, "0", NULL, "hint_choice");
	BAD(&q_choice, "5", NULL, "hint_choice");
	OK(&q_choice, "mild", NULL, "mild");		/* by id */
	OK(&q_choice, "MILD", NULL, "mild");
	OK(&q_choice, "a lot", NULL, "lots");		/* by text */
	OK(&q_choice, "None at all", NULL, "none");
	OK(&q_choice, "Some", NULL, "some");
	BAD(&q_choice, "a little bit", NULL, "hint_choice");
	BAD(&q_choice, "", NULL, "hint_choice");
}

static void
test_choice_lang(void)
{
	char		*v = NULL;
	const char	*hint;

	CHECK_INT(dialog_parse(&q_choice, "etwas", "de", NULL, &v, &hint), 0);
	CHECK_STR(v, "some");
	free(v);
	/* The German text is not an English answer. */
	CHECK_INT(dialog_parse(&q_choice, "etwas", "en", NULL, &v, &hint), -1);
}

static void
test_yesno(void)
{
	const char	*yes[] = { "yes", "Yes", "YES", "y", "yeah", "yep", "ok",
	    "true", "ja", "oui", "si", "1", " yes. ", "Yes!", NULL };
	const char	*no[] = { "no", "No", "n", "nope", "false", "nein",
	    "non", "2", "no.", NULL };
	int		 i;

	for (i = 0; yes[i] != NULL; i++)
		OK(&q_yesno, yes[i], NULL, "yes");
	for (i = 0; no[i] != NULL; i++)
		OK(&q_yesno, no[i], NULL, "no");
	BAD(&q_yesno, "maybe", NULL, "hint_yesno");
	BAD(&q_yesno, "3", NULL, "hint_yesno");
	BAD(&q_yesno, "yes no", NULL, "hint_yesno");
	BAD(&q_yesno, "", NULL, "hint_yesno");
}

static void
test_text(void)
{
	char	*big;

	OK(&q_text, "  it was fine  ", NULL, "it was fine");
	OK(&q_text, "line one\nline two", NULL, "line one\nline two");
	OK(&q_text, "tab\there", NULL, "tab\there");
	OK(&q_text, "Grüße, ça va — 日本", NULL, "Grüße, ça va — 日本");
	OK(&q_text, "emoji \xf0\x9f\x98\x80", NULL, "emoji \xf0\x9f\x98\x80");
	BAD(&q_text, "", NULL, "hint_text");
	BAD(&q_text, "  \n ", NULL, "hint_text");
	/* Control characters and broken UTF-8 are refused. */
	BAD(&q_text, "bell\a", NULL, "hint_text");
	BAD(&q_text, "esc\x1b[31m", NULL, "hint_text");
	BAD(&q_text, "bad \xff byte", NULL, "hint_text");
	BAD(&q_text, "cut \xc3", NULL, "hint_text");
	BAD(&q_text, "overlong \xc0\xaf", NULL, "hint_text");
	BAD(&q_text, "lone \x80 continuation", NULL, "hint_text");
	BAD(&q_text, "\xf5\x80\x80\x80", NULL, "hint_text");
	/* Even an integer question refuses broken text with the text hint. */
	BAD(&q_int, "7\x01", NULL, "hint_text");

	/* At most DIALOG_MAX_TEXT bytes. */
	big = malloc(DIALOG_MAX_TEXT + 2);
	memset(big, 'a', DIALOG_MAX_TEXT);
	big[DIALOG_MAX_TEXT] = '\0';
	OK(&q_text, big, NULL, big);
	big[DIALOG_MAX_TEXT] = 'a';
	big[DIALOG_MAX_TEXT + 1] = '\0';
	BAD(&q_text, big, NULL, "hint_text");
	free(big);
}

static void
test_text_ok(void)
{
	CHECK_INT(dialog_text_ok(""), 1);
	CHECK_INT(dialog_text_ok("plain"), 1);
	CHECK_INT(dialog_text_ok("a\tb\nc"), 1);
	CHECK_INT(dialog_text_ok("\xe2\x82\xac"), 1);		/* € */
	CHECK_INT(dialog_text_ok("\xe2\x82"), 0);		/* cut */
	CHECK_INT(dialog_text_ok("\xe0\x80\xaf"), 0);		/* overlong */
	CHECK_INT(dialog_text_ok("\xed\xa0\x80"), 0);		/* surrogate */
	CHECK_INT(dialog_text_ok("\xf4\x90\x80\x80"), 0);	/* > U+10FFFF */
	CHECK_INT(dialog_text_ok("\xf0\x8f\xbf\xbf"), 0);	/* overlong */
	CHECK_INT(dialog_text_ok("\x1f"), 0);
	CHECK_INT(dialog_text_ok("\xf4\x8f\xbf\xbf"), 1);	/* U+10FFFF */
}

static void
test_zone(void)
{
	OK(&q_zone, "Europe/Berlin", NULL, "Europe/Berlin");
	OK(&q_zone, " America/New_York ", NULL, "America/New_York");
	OK(&q_zone, "UTC", NULL, "UTC");
	OK(&q_zone, "1", "Europe/Vienna", "Europe/Vienna");
	OK(&q_zone, "ok", "Europe/Vienna", "Europe/Vienna");
	BAD(&q_zone, "1", NULL, "hint_timezone");
	BAD(&q_zone, "Mars/Olympus", NULL, "hint_timezone");
	BAD(&q_zone, "../../etc/passwd", NULL, "hint_timezone");
	BAD(&q_zone, "", NULL, "hint_timezone");
}

static void
test_time(void)
{
	OK(&q_time, "07:30", NULL, "07:30");
	OK(&q_time, "7:30", NULL, "07:30");
	OK(&q_time, "18:00", NULL, "18:00");
	OK(&q_time, "18", NULL, "18:00");
	OK(&q_time, "0", NULL, "00:00");
	OK(&q_time, "23:59", NULL, "23:59");
	OK(&q_time, "1", "18:00", "18:00");
	OK(&q_time, "OK", "09:15", "09:15");
	OK(&q_time, "1", NULL, "01:00");	/* no default: one o'clock */
	BAD(&q_time, "24:00", NULL, "hint_time");
	BAD(&q_time, "24", NULL, "hint_time");
	BAD(&q_time, "12:60", NULL, "hint_time");
	BAD(&q_time, "18/2", NULL, "hint_time");
	BAD(&q_time, "evening", NULL, "hint_time");
	BAD(&q_time, "-1", NULL, "hint_time");
	BAD(&q_time, "", NULL, "hint_time");
}

static void
test_json(void)
{
	cJSON	*j;

	j = dialog_json(&q_int, "7");
	CHECK(cJSON_IsNumber(j));
	CHECK_INT(j->valuedouble, 7);
	cJSON_Delete(j);
	j = dialog_json(&q_neg, "-3");
	CHECK(cJSON_IsNumber(j) && j->valuedouble == -3);
	cJSON_Delete(j);
	j = dialog_json(&q_yesno, "yes");
	CHECK(cJSON_IsTrue(j));
	cJSON_Delete(j);
	j = dialog_json(&q_yesno, "no");
	CHECK(cJSON_IsFalse(j));
	cJSON_Delete(j);
	j = dialog_json(&q_choice, "mild");
	CHECK(cJSON_IsString(j));
	CHECK_STR(cJSON_GetStringValue(j), "mild");
	cJSON_Delete(j);
	j = dialog_json(&q_text, "hello");
	CHECK_STR(cJSON_GetStringValue(j), "hello");
	cJSON_Delete(j);
	j = dialog_json(&q_time, "07:30");
	CHECK_STR(cJSON_GetStringValue(j), "07:30");
	cJSON_Delete(j);
	j = dialog_json(&q_zone, "UTC");
	CHECK_STR(cJSON_GetStringValue(j), "UTC");
	cJSON_Delete(j);
}

static const char *
meta_str(const cJSON *m, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, key));
}

static double
meta_num(const cJSON *m, const char *key)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, key));
}

static void
test_meta(void)
{
	cJSON	*m, *opts, *o;

	m = dialog_meta("checkin", &q_int, "en", 0, 3, "Yes", "No");
	CHECK_STR(meta_str(m, "type"), "question");
	CHECK_STR(meta_str(m, "questionnaire"), "checkin");
	CHECK_STR(meta_str(m, "question"), "pain");
	CHECK_STR(meta_str(m, "answer"), "integer");
	CHECK_INT(meta_num(m, "index"), 1);	/* 1-based */
	CHECK_INT(meta_num(m, "count"), 3);
	CHECK_INT(meta_num(m, "min"), 0);
	CHECK_INT(meta_num(m, "max"), 10);
	CHECK(cJSON_GetObjectItem(m, "options") == NULL);
	cJSON_Delete(m);

	m = dialog_meta("checkin", &q_yesno, "en", 2, 3, "Ja", "Nein");
	CHECK_STR(meta_str(m, "answer"), "yesno");
	CHECK_INT(meta_num(m, "index"), 3);
	CHECK(cJSON_GetObjectItem(m, "min") == NULL);
	opts = cJSON_GetObjectItem(m, "options");
	CHECK_INT(cJSON_GetArraySize(opts), 2);
	o = cJSON_GetArrayItem(opts, 0);
	CHECK_STR(meta_str(o, "id"), "yes");
	CHECK_STR(meta_str(o, "text"), "Ja");
	o = cJSON_GetArrayItem(opts, 1);
	CHECK_STR(meta_str(o, "id"), "no");
	CHECK_STR(meta_str(o, "text"), "Nein");
	cJSON_Delete(m);

	m = dialog_meta("checkin", &q_choice, "de", 1, 3, "Yes", "No");
	CHECK_STR(meta_str(m, "answer"), "choice");
	opts = cJSON_GetObjectItem(m, "options");
	CHECK_INT(cJSON_GetArraySize(opts), 4);
	CHECK_STR(meta_str(cJSON_GetArrayItem(opts, 0), "id"), "none");
	/* No German text: the first given. */
	CHECK_STR(meta_str(cJSON_GetArrayItem(opts, 0), "text"), "None at all");
	CHECK_STR(meta_str(cJSON_GetArrayItem(opts, 2), "text"), "Etwas");
	cJSON_Delete(m);

	m = dialog_meta("setup", &q_time, "en", 2, 3, "Yes", "No");
	CHECK_STR(meta_str(m, "answer"), "time");
	CHECK(cJSON_GetObjectItem(m, "options") == NULL);
	cJSON_Delete(m);
	m = dialog_meta("setup", &q_zone, "en", 1, 3, "Yes", "No");
	CHECK_STR(meta_str(m, "answer"), "timezone");
	cJSON_Delete(m);
	m = dialog_meta("x", &q_text, "en", 0, 1, "Yes", "No");
	CHECK_STR(meta_str(m, "answer"), "text");
	cJSON_Delete(m);
}

static void
test_type_names(void)
{
	CHECK_STR(dialog_type_name(Q_INT), "integer");
	CHECK_STR(dialog_type_name(Q_CHOICE), "choice");
	CHECK_STR(dialog_type_name(Q_YESNO), "yesno");
	CHECK_STR(dialog_type_name(Q_TEXT), "text");
	CHECK_STR(dialog_type_name(Q_ZONE), "timezone");
	CHECK_STR(dialog_type_name(Q_TIME), "time");
}

int
main(void)
{
	TEST(test_integer);
	TEST(test_choice);
	TEST(test_choice_lang);
	TEST(test_yesno);
	TEST(test_text);
	TEST(test_text_ok);
	TEST(test_zone);
	TEST(test_time);
	TEST(test_json);
	TEST(test_meta);
	TEST(test_type_names);
	return TEST_END();
}
