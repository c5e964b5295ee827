/*
 * test_clock.c: clock modes, ISO formatting and parsing; and log.c, whose
 * timestamps are the clock's (log.c has no test file of its own).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "test.h"

/* 2026-03-01T08:00:00Z */
#define T0	INT64_C(1772352000)

static void
test_real(void)
{
	int64_t	a, b;

	clock_init(CLOCK_REAL, T0);
	CHECK_INT(clock_mode(), CLOCK_REAL);
	a = clock_now();
	/* Later than this code was written, and not absurdly far off. */
	CHECK(a > INT64_C(1700000000));
	CHECK(a < INT64_C(4102444800));
	b = clock_now_ms();
	CHECK(b / 1000 >= a && b / 1000 <= a + 1);
	CHECK_INT(clock_advance(10), -EINVAL);
	CHECK_INT(clock_set(T0), -EINVAL);
}

static void
test_manual(void)
{
	clock_init(CLOCK_MANUAL, T0);
	CHECK_INT(clock_mode(), CLOCK_MANUAL);
	CHECK_INT(clock_now(), T0);
	CHECK_INT(clock_now_ms(), T0 * 1000);
	CHECK_INT(clock_now(), T0);		/* stands still */

	CHECK_INT(clock_advance(90), 0);
	CHECK_INT(clock_now(), T0 + 90);
	CHECK_INT(clock_advance(0), 0);
	CHECK_INT(clock_now(), T0 + 90);
	CHECK_INT(clock_advance(-1), -EINVAL);
	CHECK_INT(clock_now(), T0 + 90);
	CHECK_INT(clock_advance(INT64_MAX), -EINVAL);

	CHECK_INT(clock_set(T0 + 3600), 0);
	CHECK_INT(clock_now(), T0 + 3600);
	CHECK_INT(clock_set(T0 + 3600), 0);	/* same time is not the past */
	CHECK_INT(clock_set(T0), -EINVAL);	/* never backwards */
	CHECK_INT(clock_now(), T0 + 3600);
}

static void
test_manual_now(void)
{
	int64_t	real;

	/* A negative start means "the real time now". */
	clock_init(CLOCK_REAL, 0);
	real = clock_now();
	clock_init(CLOCK_MANUAL, -1);
	CHECK(clock_now() >= real && clock_now() <= real + 2);
}

static void
test_offset(void)
{
	uint64_t	t0;
	int64_t		ms;

	clock_init(CLOCK_OFFSET, T0);
	CHECK_INT(clock_mode(), CLOCK_OFFSET);
	CHECK(clock_now() >= T0 && clock_now() <= T0 + 1);

	/* Runs on with real time: wait ~30 ms on the monotonic clock. */
	ms = clock_now_ms();
	t0 = clock_mono_ns();
	while (clock_mono_ns() - t0 < 30000000u)
		;
	CHECK(clock_now_ms() >= ms + 30);
	CHECK(clock_now_ms() < ms + 5000);

	CHECK_INT(clock_advance(86400), 0);
	CHECK(clock_now() >= T0 + 86400 && clock_now() <= T0 + 86401);
	CHECK_INT(clock_advance(-5), -EINVAL);
	CHECK_INT(clock_set(T0 + 2 * 86400), -EINVAL);	/* MANUAL only */
}

static void
test_mono(void)
{
	uint64_t	a, b;

	a = clock_mono_ns();
	b = clock_mono_ns();
	CHECK(b >= a);
}

static void
test_iso(void)
{
	char	buf[32];

	CHECK_STR(clock_iso(T0, buf, sizeof buf), "2026-03-01T08:00:00Z");
	CHECK_STR(clock_iso(0, buf, sizeof buf), "1970-01-01T00:00:00Z");
	CHECK_STR(clock_iso(-1, buf, sizeof buf), "1969-12-31T23:59:59Z");
	CHECK_STR(clock_iso(INT64_C(951782400), buf, sizeof buf),
	    "2000-02-29T00:00:00Z");
	/* Exactly 21 bytes is enough. */
	CHECK_STR(clock_iso(T0 + 59, buf, 21), "2026-03-01T08:00:59Z");
	/* Too short truncates rather than overflows. */
	CHECK_STR(clock_iso(T0, buf, 5), "2026");
}

static void
test_parse(void)
{
	int64_t	t;
	char	buf[32];

	CHECK_INT(clock_parse_iso("2026-03-01", &t), 0);
	CHECK_INT(t, T0 - 8 * 3600);
	CHECK_INT(clock_parse_iso("2026-03-01T08:00", &t), 0);
	CHECK_INT(t, T0);
	CHECK_INT(clock_parse_iso("2026-03-01T08:00:07", &t), 0);
	CHECK_INT(t, T0 + 7);
	CHECK_INT(clock_parse_iso("2026-03-01T08:00:00Z", &t), 0);
	CHECK_INT(t, T0);
	CHECK_INT(clock_parse_iso("2026-03-01T09:00:00+01:00", &t), 0);
	CHECK_INT(t, T0);
	CHECK_INT(clock_parse_iso("2026-03-01T09:30+01:30", &t), 0);
	CHECK_INT(t, T0);
	CHECK_INT(clock_parse_iso("2026-02-28T21:00:00-11:00", &t), 0);
	CHECK_INT(t, T0);
	CHECK_INT(clock_parse_iso("2024-02-29", &t), 0);	/* leap year */
	CHECK_INT(clock_parse_iso("2000-02-29T23:59:59Z", &t), 0);
	CHECK_INT(clock_parse_iso("1970-01-01T00:00:00Z", &t), 0);
	CHECK_INT(t, 0);

	/* Round trip. */
	CHECK_INT(clock_parse_iso(clock_iso(T0 + 12345, buf, sizeof buf), &t),
	    0);
	CHECK_INT(t, T0 + 12345);
}

static void
test_parse_bad(void)
{
	static const char *const bad[] = {
		"", "garbage", "2026", "2026-03", "2026-3-01", "2026-03-1",
		"26-03-01", "2026/03/01", "2026-13-01", "2026-00-10",
		"2026-03-00", "2026-03-32", "2026-02-29", "1900-02-29",
		"2026-04-31", "2026-03-01T", "2026-03-01T8:00",
		"2026-03-01T08", "2026-03-01T24:00", "2026-03-01T23:60",
		"2026-03-01T23:59:60", "2026-03-01T08:00:0",
		"2026-03-01T08:00:00z", "2026-03-01T08:00:00ZZ",
		"2026-03-01T08:00+1:00", "2026-03-01T08:00+01",
		"2026-03-01T08:00+0100", "2026-03-01T08:00+24:00",
		"2026-03-01T08:00+01:60", "2026-03-01Z", "2026-03-01 08:00",
		" 2026-03-01", "2026-03-01 ", "2026-03-01T08:00:00.5Z",
		"+2026-03-01", "2026-03-01T-8:00",
	};
	size_t	i;
	int64_t	t = 42;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (clock_parse_iso(bad[i], &t) != -EINVAL) {
			fprintf(stderr, "accepted \"%s\"\n", bad[i]);
			CHECK(!"bad ISO string accepted");
		}
	}
	CHECK_INT(t, 42);	/* untouched on failure */
	CHECK_INT(clock_parse_iso(NULL, &t), -EINVAL);
}

/* Runs log lines into a temporary file; returns what was written. */
static char	log_out[4096];

static FILE	*log_file;
static int	 log_saved = -1;

static void
log_capture(void)
{
	fflush(stderr);
	log_file = tmpfile();
	log_saved = dup(STDERR_FILENO);
	dup2(fileno(log_file), STDERR_FILENO);
}

static const char *
log_captured(void)
{
	size_t	n;

	fflush(stderr);
	dup2(log_saved, STDERR_FILENO);
	close(log_saved);
	rewind(log_file);
	n = fread(log_out, 1, sizeof log_out - 1, log_file);
	log_out[n] = '\0';
	fclose(log_file);
	return log_out;
}

static void
test_log_write(void)
{
	char	big[1200], want[1300];

	clock_init(CLOCK_MANUAL, T0);
	log_set_level(LOG_INFO);
	log_capture();
	log_info("event=start n=%d", 1);
	log_debug("event=hidden");
	log_error("event=bad what=%s", log_q("two words"));
	log_set_level(LOG_DEBUG);
	log_debug("event=shown");
	log_set_level(LOG_INFO);
	CHECK_STR(log_captured(),
	    "ts=2026-03-01T08:00:00Z level=info event=start n=1\n"
	    "ts=2026-03-01T08:00:00Z level=error event=bad what=\"two words\"\n"
	    "ts=2026-03-01T08:00:00Z level=debug event=shown\n");

	/* Longer than the stack buffer: still whole, still one line. */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_capture();
	log_warn("event=big v=%s", big);
	snprintf(want, sizeof want,
	    "ts=2026-03-01T08:00:00Z level=warn event=big v=%s\n", big);
	CHECK_STR(log_captured(), want);

	CHECK_INT(log_level_parse("debug"), LOG_DEBUG);
	CHECK_INT(log_level_parse("info"), LOG_INFO);
	CHECK_INT(log_level_parse("warn"), LOG_WARN);
	CHECK_INT(log_level_parse("error"), LOG_ERROR);
	CHECK_INT(log_level_parse("INFO"), -1);
	CHECK_INT(log_level_parse("warning"), -1);
	CHECK_INT(log_level_parse(NULL), -1);
}

static void
test_log_q(void)
{
	const char	*a, *b, *c, *d, *e;
	char		 in[600];
	size_t		 len, i;

	CHECK_STR(log_q("plain"), "plain");
	CHECK_STR(log_q("a b"), "\"a b\"");
	CHECK_STR(log_q(""), "\"\"");
	CHECK_STR(log_q("k=v"), "\"k=v\"");
	CHECK_STR(log_q("say \"hi\""), "\"say \\\"hi\\\"\"");
	CHECK_STR(log_q("one\ntwo"), "\"one\\ntwo\"");
	CHECK_STR(log_q("back\\slash"), "\"back\\\\slash\"");
	CHECK_STR(log_q("tab\there"), "\"tab\\there\"");
	CHECK_STR(log_q("bell\a"), "\"bell\\x07\"");
	CHECK_STR(log_q("caf\xc3\xa9"), "caf\xc3\xa9");
	CHECK_STR(log_q(NULL), "(null)");

	/* Four results stay valid together; the fifth reuses the first. */
	a = log_q("a a");
	b = log_q("b b");
	c = log_q("c c");
	d = log_q("d d");
	CHECK_STR(a, "\"a a\"");
	CHECK_STR(b, "\"b b\"");
	CHECK_STR(c, "\"c c\"");
	CHECK_STR(d, "\"d d\"");
	e = log_q("e e");
	CHECK(e == a);

	/* Cut at 200 bytes, marked, quotes kept. */
	memset(in, 'y', sizeof in - 1);
	in[sizeof in - 1] = '\0';
	a = log_q(in);
	len = strlen(a);
	CHECK(len <= 200);
	CHECK(len >= 190);
	CHECK(a[0] == '"');
	CHECK(strcmp(a + len - 4, "...\"") == 0);

	/* Exactly 200 bare bytes fit as they are. */
	in[200] = '\0';
	CHECK_INT(strlen(log_q(in)), 200);

	/* A cut never splits an escape... */
	for (i = 0; i < sizeof in - 1; i++)
		in[i] = '\n';
	in[sizeof in - 1] = '\0';
	a = log_q(in);
	len = strlen(a);
	CHECK(len <= 200);
	CHECK(strcmp(a + len - 4, "...\"") == 0);
	CHECK(a[len - 5] == 'n' && a[len - 6] == '\\');

	/* ...nor a UTF-8 sequence. */
	for (i = 0; i + 3 < sizeof in; i += 3)
		memcpy(in + i, " \xc3\xa9", 3);
	in[i] = '\0';
	for (i = 0; i < 3; i++) {
		/* Shift the cut through every byte of a sequence. */
		a = log_q(in + i);
		len = strlen(a);
		CHECK(len <= 200);
		CHECK(strcmp(a + len - 4, "...\"") == 0);
		CHECK((unsigned char)a[len - 5] == 0xa9 || a[len - 5] == ' ');
	}
}

int
main(void)
{
	TEST(test_real);
	TEST(test_manual);
	TEST(test_manual_now);
	TEST(test_offset);
	TEST(test_mono);
	TEST(test_iso);
	TEST(test_parse);
	TEST(test_parse_bad);
	TEST(test_log_write);
	TEST(test_log_q);
	return TEST_END();
}
