/*
 * test_scenario.c: the grammar of the simulator's answers file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scenario.h"
#include "test.h"

static struct scenario *
parse(const char *text)
{
	struct scenario	*sc = NULL;
	char		*cause = NULL;

	if (scenario_parse(text, strlen(text), "a.txt", &sc, &cause) != 0) {
		fprintf(stderr, "unexpected: %s\n", cause);
		free(cause);
		test_failed_checks++;
		return NULL;
	}
	return sc;
}

/* Expects failure with exactly `want`. */
static void
fails_(int line, const char *text, size_t len, const char *want)
{
	struct scenario	*sc = NULL;
	char		*cause = NULL;

	if (scenario_parse(text, len, "a.txt", &sc, &cause) == 0) {
		fprintf(stderr, "%s:%d: parsed, expected \"%s\"\n", __FILE__,
		    line, want);
		test_failed_checks++;
		scenario_free(sc);
		return;
	}
	if (cause == NULL || strcmp(cause, want) != 0) {
		fprintf(stderr, "%s:%d: \"%s\", expected \"%s\"\n", __FILE__,
		    line, cause ? cause : "(null)", want);
		test_failed_checks++;
	}
	free(cause);
}

#define FAILS(text, want)	fails_(__LINE__, text, strlen(text), want)

#define PAIRS_ERR ": expected key=value pairs (like soreness=3), optionally" \
	" led by a questionnaire id and a colon"

static void
test_basic(void)
{
	struct scenario			*sc;
	const struct scenario_q		*q;

	sc = parse("soreness=3 bruising=1 redness=no pain=4\n"
	    "soreness=2\n");
	if (sc == NULL)
		return;
	CHECK_STR(sc->name, "a.txt");
	CHECK_INT(sc->nqs, 1);
	q = scenario_find(sc, "checkin");
	CHECK(q != NULL);
	if (q != NULL) {
		CHECK_INT(q->nlines, 2);
		CHECK_INT(q->lines[0].lineno, 1);
		CHECK_INT(q->lines[0].n, 4);
		CHECK_STR(scenario_value(&q->lines[0], "soreness"), "3");
		CHECK_STR(scenario_value(&q->lines[0], "redness"), "no");
		CHECK_STR(scenario_value(&q->lines[0], "pain"), "4");
		CHECK(scenario_value(&q->lines[0], "nothing") == NULL);
		CHECK_INT(q->lines[1].lineno, 2);
		CHECK_STR(scenario_value(&q->lines[1], "soreness"), "2");
		CHECK(scenario_value(&q->lines[1], "pain") == NULL);
	}
	CHECK(scenario_find(sc, "screening") == NULL);
	CHECK(scenario_value(NULL, "x") == NULL);
	CHECK(scenario_find(NULL, "checkin") == NULL);
	scenario_free(sc);
}

static void
test_ids(void)
{
	struct scenario			*sc;
	const struct scenario_q		*q;

	sc = parse("screening: blood_thinners=yes\n"
	    "setup:reminder=18:00 timezone=Europe/Berlin\n"
	    "  reminder=18:00\n");
	if (sc == NULL)
		return;
	q = scenario_find(sc, "screening");
	CHECK(q != NULL && q->nlines == 1);
	if (q != NULL)
		CHECK_STR(scenario_value(&q->lines[0], "blood_thinners"), "yes");
	q = scenario_find(sc, "setup");
	CHECK(q != NULL && q->nlines == 1);
	if (q != NULL) {
		CHECK_INT(q->lines[0].lineno, 2);
		CHECK_STR(scenario_value(&q->lines[0], "reminder"), "18:00");
		CHECK_STR(scenario_value(&q->lines[0], "timezone"),
		    "Europe/Berlin");
	}
	/* "reminder=18:00" has its colon after the '=': no id, checkin. */
	q = scenario_find(sc, "checkin");
	CHECK(q == NULL || q->nlines >= 1);
	if (q != NULL) {
		CHECK_STR(scenario_value(&q->lines[0], "reminder"), "18:00");
		CHECK_INT(q->lines[0].lineno, 3);
	}
	scenario_free(sc);
}

static void
test_id_space_before_colon(void)
{
	FAILS("checkin : soreness=1\n",
	    "a.txt:1: 'checkin ' is not a questionnaire id");
	FAILS("Checkin: soreness=1\n",
	    "a.txt:1: 'Checkin' is not a questionnaire id");
	FAILS(": soreness=1\n", "a.txt:1: '' is not a questionnaire id");
}

static void
test_comments_quotes(void)
{
	struct scenario			*sc;
	const struct scenario_q		*q;

	sc = parse("# a comment line\n"
	    "\n"
	    "   \t\n"
	    "soreness=3 # trailing comment\n"
	    "notes=\"it hurt a bit\" soreness=0\r\n"
	    "screening: notes=\"a=b: c\"\n");
	if (sc == NULL)
		return;
	q = scenario_find(sc, "checkin");
	CHECK(q != NULL && q->nlines == 2);
	if (q != NULL && q->nlines == 2) {
		CHECK_INT(q->lines[0].lineno, 4);
		CHECK_INT(q->lines[0].n, 1);
		CHECK_STR(scenario_value(&q->lines[0], "soreness"), "3");
		CHECK_INT(q->lines[1].lineno, 5);
		CHECK_STR(scenario_value(&q->lines[1], "notes"),
		    "it hurt a bit");
		CHECK_STR(scenario_value(&q->lines[1], "soreness"), "0");
	}
	q = scenario_find(sc, "screening");
	CHECK(q != NULL);
	if (q != NULL)
		CHECK_STR(scenario_value(&q->lines[0], "notes"), "a=b: c");
	scenario_free(sc);

	/* An empty file is an empty scenario. */
	sc = parse("");
	if (sc != NULL) {
		CHECK_INT(sc->nqs, 0);
		scenario_free(sc);
	}
}

static void
test_errors(void)
{
	FAILS("soreness=3\nsoreness=1 soreness=2\n",
	    "a.txt:2: 'soreness' is given twice");
	FAILS("soreness=3\n\nthis is garbage\n", "a.txt:3" PAIRS_ERR);
	FAILS("soreness\n", "a.txt:1" PAIRS_ERR);
	FAILS("soreness=\n", "a.txt:1" PAIRS_ERR);
	FAILS("soreness=\"\"\n", "a.txt:1" PAIRS_ERR);
	FAILS("notes=\"unterminated\n", "a.txt:1" PAIRS_ERR);
	FAILS("Soreness=3\n", "a.txt:1" PAIRS_ERR);
	FAILS("=3\n", "a.txt:1" PAIRS_ERR);
	FAILS("# ok\nsoreness=1\nx=1 y\n", "a.txt:3" PAIRS_ERR);
}

static void
test_nul(void)
{
	static const char	text[] = "soreness=3\n\0pain=1\n";

	fails_(__LINE__, text, sizeof text - 1, "a.txt: not a text file");
}

static void
test_no_trailing_newline(void)
{
	struct scenario		*sc = parse("a=1\nb=2");
	const struct scenario_q	*q;

	if (sc == NULL)
		return;
	q = scenario_find(sc, "checkin");
	CHECK(q != NULL && q->nlines == 2);
	if (q != NULL && q->nlines == 2)
		CHECK_STR(scenario_value(&q->lines[1], "b"), "2");
	scenario_free(sc);
}

static void
test_load(void)
{
	char			 dir[] = "/tmp/strigil-scn-XXXXXX", path[64];
	struct scenario		*sc = NULL;
	char			*cause = NULL;
	FILE			*f;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		test_failed_checks++;
		return;
	}
	snprintf(path, sizeof path, "%s/answers.txt", dir);
	f = fopen(path, "w");
	fputs("screening: blood_thinners=no\nsoreness=4 pain=3\nbad line\n", f);
	fclose(f);
	CHECK_INT(scenario_load(path, &sc, &cause), -1);
	{
		char	want[256];

		snprintf(want, sizeof want, "%s:3" PAIRS_ERR, path);
		CHECK_STR(cause, want);
	}
	free(cause);
	cause = NULL;

	f = fopen(path, "w");
	fputs("screening: blood_thinners=no\nsoreness=4 pain=3\n", f);
	fclose(f);
	CHECK_INT(scenario_load(path, &sc, &cause), 0);
	if (sc != NULL) {
		CHECK_INT(sc->nqs, 2);
		CHECK_STR(sc->name, path);
		scenario_free(sc);
	}
	unlink(path);
	CHECK_INT(scenario_load(path, &sc, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "cannot open") != NULL);
	free(cause);
	rmdir(dir);
}

int
main(void)
{
	TEST(test_basic);
	TEST(test_ids);
	TEST(test_id_space_before_colon);
	TEST(test_comments_quotes);
	TEST(test_errors);
	TEST(test_nul);
	TEST(test_no_trailing_newline);
	TEST(test_load);
	return TEST_END();
}
