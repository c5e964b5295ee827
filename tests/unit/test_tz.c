/*
 * test_tz.c: zones, DST gaps and folds, quiet hours, "HH:MM".
 *
 * Instants are written as ISO strings through clock_parse_iso() so each
 * expectation can be checked against `zdump -v` by eye.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "test.h"
#include "tz.h"

static int64_t
at(const char *iso)
{
	int64_t	t = -1;

	if (clock_parse_iso(iso, &t) != 0)
		fprintf(stderr, "bad test time %s\n", iso);
	return t;
}

static int
hhmm(int h, int m)
{
	return h * 60 + m;
}

static void
test_valid(void)
{
	char	longname[80];

	CHECK_INT(tz_valid("UTC"), 1);
	CHECK_INT(tz_valid("Europe/Berlin"), 1);
	CHECK_INT(tz_valid("America/New_York"), 1);
	CHECK_INT(tz_valid("America/Argentina/Buenos_Aires"), 1);
	CHECK_INT(tz_valid("Etc/GMT+5"), 1);

	CHECK_INT(tz_valid(NULL), 0);
	CHECK_INT(tz_valid(""), 0);
	CHECK_INT(tz_valid("../etc/passwd"), 0);
	CHECK_INT(tz_valid("Europe/../../etc/passwd"), 0);
	CHECK_INT(tz_valid("/etc/passwd"), 0);
	CHECK_INT(tz_valid("/usr/share/zoneinfo/UTC"), 0);
	CHECK_INT(tz_valid("Nowhere/City"), 0);
	CHECK_INT(tz_valid("Europe"), 0);		/* a folder */
	CHECK_INT(tz_valid("Europe/Berlin "), 0);
	CHECK_INT(tz_valid("Europe/Berlin\n"), 0);
	CHECK_INT(tz_valid("Europe\\Berlin"), 0);
	CHECK_INT(tz_valid("zone.tab"), 0);		/* '.' not allowed */
	CHECK_INT(tz_valid("right/UTC"), 0);		/* leap seconds */
	CHECK_INT(tz_valid("CET;rm"), 0);

	memset(longname, 'A', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	CHECK_INT(tz_valid(longname), 0);
}

static void
test_tzdir(void)
{
	char	dir[] = "/tmp/strigil-tzdir-XXXXXX", path[128];
	FILE	*f;

	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof path, "%s/Fake", dir);
	if ((f = fopen(path, "w")) != NULL) {
		fputs("TZif2 and then some", f);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/Text", dir);
	if ((f = fopen(path, "w")) != NULL) {
		fputs("not a zone", f);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/Short", dir);
	if ((f = fopen(path, "w")) != NULL) {
		fputs("TZ", f);
		fclose(f);
	}

	setenv("TZDIR", dir, 1);
	CHECK_INT(tz_valid("Fake"), 1);
	CHECK_INT(tz_valid("Text"), 0);
	CHECK_INT(tz_valid("Short"), 0);
	CHECK_INT(tz_valid("Europe/Berlin"), 0);	/* not in this dir */
	unsetenv("TZDIR");
	CHECK_INT(tz_valid("Fake"), 0);
	CHECK_INT(tz_valid("Europe/Berlin"), 1);

	snprintf(path, sizeof path, "%s/Fake", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/Text", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/Short", dir);
	unlink(path);
	rmdir(dir);
}

static void
test_local(void)
{
	struct tm	tm;

	CHECK_INT(tz_local("Europe/Berlin", at("2026-07-01T10:00:00Z"), &tm),
	    0);
	CHECK_INT(tm.tm_hour, 12);
	CHECK_INT(tm.tm_isdst, 1);
	CHECK_INT(tz_local("Europe/Berlin", at("2026-01-01T10:00:00Z"), &tm),
	    0);
	CHECK_INT(tm.tm_hour, 11);
	CHECK_INT(tz_local("UTC", at("2026-01-01T10:00:00Z"), &tm), 0);
	CHECK_INT(tm.tm_hour, 10);
	CHECK_INT(tz_local("America/New_York", at("2026-01-01T03:00:00Z"),
	    &tm), 0);
	CHECK_INT(tm.tm_hour, 22);
	CHECK_INT(tm.tm_mday, 31);
	CHECK_INT(tm.tm_year, 2025 - 1900);

	/* Switching back and forth uses the right zone each time. */
	CHECK_INT(tz_minute_of_day("Europe/Berlin",
	    at("2026-01-01T10:00:00Z")), hhmm(11, 0));
	CHECK_INT(tz_minute_of_day("UTC", at("2026-01-01T10:00:00Z")),
	    hhmm(10, 0));
	CHECK_INT(tz_minute_of_day("Europe/Berlin",
	    at("2026-01-01T10:00:00Z")), hhmm(11, 0));
	CHECK_INT(tz_minute_of_day("Asia/Kolkata",
	    at("2026-01-01T10:00:00Z")), hhmm(15, 30));

	CHECK_INT(tz_local("Nowhere/City", 0, &tm), -EINVAL);
	CHECK_INT(tz_local("../etc/passwd", 0, &tm), -EINVAL);
	CHECK_INT(tz_local("", 0, &tm), -EINVAL);
	/* A failed switch leaves the previous zone working. */
	CHECK_INT(tz_local("Europe/Berlin", at("2026-01-01T10:00:00Z"), &tm),
	    0);
	CHECK_INT(tm.tm_hour, 11);
	/* Invalid zones compute as UTC rather than fail. */
	CHECK_INT(tz_minute_of_day("Nowhere/City",
	    at("2026-01-01T10:00:00Z")), hhmm(10, 0));
}

static void
test_next_plain(void)
{
	int64_t	t;

	/* Later today. */
	t = tz_next_minute("UTC", at("2026-03-01T08:00:00Z"), hhmm(18, 0));
	CHECK_INT(t, at("2026-03-01T18:00:00Z"));
	/* Exactly now counts. */
	t = tz_next_minute("UTC", at("2026-03-01T18:00:00Z"), hhmm(18, 0));
	CHECK_INT(t, at("2026-03-01T18:00:00Z"));
	/* A second past: tomorrow. */
	t = tz_next_minute("UTC", at("2026-03-01T18:00:01Z"), hhmm(18, 0));
	CHECK_INT(t, at("2026-03-02T18:00:00Z"));
	/* Across midnight and across a month end. */
	t = tz_next_minute("UTC", at("2026-02-28T23:50:00Z"), hhmm(0, 10));
	CHECK_INT(t, at("2026-03-01T00:10:00Z"));
	/* Across the year end, in a zone behind UTC. */
	t = tz_next_minute("America/New_York", at("2026-12-31T23:00:00-05:00"),
	    hhmm(7, 30));
	CHECK_INT(t, at("2027-01-01T07:30:00-05:00"));
	/* The local date, not the UTC date, decides "today". */
	t = tz_next_minute("Europe/Berlin", at("2026-01-10T23:30:00Z"),
	    hhmm(0, 45));
	CHECK_INT(t, at("2026-01-11T00:45:00+01:00"));
	t = tz_next_minute("Europe/Berlin", at("2026-01-10T23:30:00Z"),
	    hhmm(18, 0));
	CHECK_INT(t, at("2026-01-11T18:00:00+01:00"));
	/* 23:59 works. */
	t = tz_next_minute("Europe/Berlin", at("2026-01-10T12:00:00Z"),
	    hhmm(23, 59));
	CHECK_INT(t, at("2026-01-10T23:59:00+01:00"));

	CHECK(tz_next_minute("UTC", 0, -1) < 0);
	CHECK(tz_next_minute("UTC", 0, 1440) < 0);
}

static void
test_next_berlin_spring(void)
{
	int64_t	t;

	/* 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z). */
	t = tz_next_minute("Europe/Berlin", at("2026-03-28T12:00:00Z"),
	    hhmm(18, 0));
	CHECK_INT(t, at("2026-03-28T18:00:00+01:00"));
	/* 18:00 the next day is in summer time: one hour less in UTC. */
	t = tz_next_minute("Europe/Berlin", t + 1, hhmm(18, 0));
	CHECK_INT(t, at("2026-03-29T18:00:00+02:00"));
	CHECK_INT(t, at("2026-03-29T16:00:00Z"));

	/* 02:30 does not exist: the instant right after the gap, 03:00. */
	t = tz_next_minute("Europe/Berlin", at("2026-03-28T12:00:00Z"),
	    hhmm(2, 30));
	CHECK_INT(t, at("2026-03-29T01:00:00Z"));
	CHECK_INT(tz_minute_of_day("Europe/Berlin", t), hhmm(3, 0));
	t = tz_next_minute("Europe/Berlin", at("2026-03-28T12:00:00Z"),
	    hhmm(2, 0));
	CHECK_INT(t, at("2026-03-29T01:00:00Z"));
	t = tz_next_minute("Europe/Berlin", at("2026-03-28T12:00:00Z"),
	    hhmm(2, 59));
	CHECK_INT(t, at("2026-03-29T01:00:00Z"));
	/* Either side of the gap is ordinary. */
	t = tz_next_minute("Europe/Berlin", at("2026-03-28T12:00:00Z"),
	    hhmm(1, 59));
	CHECK_INT(t, at("2026-03-29T01:59:00+01:00"));
	t = tz_next_minute("Europe/Berlin", at("2026-03-28T12:00:00Z"),
	    hhmm(3, 0));
	CHECK_INT(t, at("2026-03-29T03:00:00+02:00"));
	CHECK_INT(t, at("2026-03-29T01:00:00Z"));
	/* Asked from inside the day after the jump: the next day's 02:30. */
	t = tz_next_minute("Europe/Berlin", at("2026-03-29T01:00:01Z"),
	    hhmm(2, 30));
	CHECK_INT(t, at("2026-03-30T02:30:00+02:00"));
}

static void
test_next_berlin_fall(void)
{
	int64_t	t;

	/* 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z). */
	t = tz_next_minute("Europe/Berlin", at("2026-10-24T12:00:00Z"),
	    hhmm(2, 30));
	CHECK_INT(t, at("2026-10-25T02:30:00+02:00"));	/* the earlier */
	CHECK_INT(t, at("2026-10-25T00:30:00Z"));
	/* Not again an hour later: the next one is a day later. */
	t = tz_next_minute("Europe/Berlin", t + 60, hhmm(2, 30));
	CHECK_INT(t, at("2026-10-26T02:30:00+01:00"));
	/* Just outside the fold. */
	t = tz_next_minute("Europe/Berlin", at("2026-10-24T12:00:00Z"),
	    hhmm(1, 59));
	CHECK_INT(t, at("2026-10-25T01:59:00+02:00"));
	t = tz_next_minute("Europe/Berlin", at("2026-10-24T12:00:00Z"),
	    hhmm(3, 0));
	CHECK_INT(t, at("2026-10-25T03:00:00+01:00"));
	/* 02:00 is the first minute of the fold: the summer-time one. */
	t = tz_next_minute("Europe/Berlin", at("2026-10-24T12:00:00Z"),
	    hhmm(2, 0));
	CHECK_INT(t, at("2026-10-25T00:00:00Z"));
	/* The fall-back day is 25 hours long; 18:00 is still 18:00. */
	t = tz_next_minute("Europe/Berlin", at("2026-10-24T12:00:00Z"),
	    hhmm(18, 0));
	CHECK_INT(t, at("2026-10-24T18:00:00+02:00"));
	t = tz_next_minute("Europe/Berlin", t + 1, hhmm(18, 0));
	CHECK_INT(t, at("2026-10-25T18:00:00+01:00"));
	CHECK_INT(t, at("2026-10-25T17:00:00Z"));
}

static void
test_next_new_york(void)
{
	int64_t	t;

	/* 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z). */
	t = tz_next_minute("America/New_York", at("2026-03-07T12:00:00Z"),
	    hhmm(2, 15));
	CHECK_INT(t, at("2026-03-08T07:00:00Z"));
	t = tz_next_minute("America/New_York", at("2026-03-07T12:00:00Z"),
	    hhmm(8, 0));
	CHECK_INT(t, at("2026-03-07T08:00:00-05:00"));
	t = tz_next_minute("America/New_York", t + 1, hhmm(8, 0));
	CHECK_INT(t, at("2026-03-08T08:00:00-04:00"));
	/* 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00Z). */
	t = tz_next_minute("America/New_York", at("2026-10-31T12:00:00Z"),
	    hhmm(1, 30));
	CHECK_INT(t, at("2026-11-01T01:30:00-04:00"));
	CHECK_INT(t, at("2026-11-01T05:30:00Z"));
	t = tz_next_minute("America/New_York", t + 1, hhmm(1, 30));
	CHECK_INT(t, at("2026-11-02T01:30:00-05:00"));
}

static void
test_next_lord_howe(void)
{
	int64_t	t;

	if (!tz_valid("Australia/Lord_Howe")) {
		fprintf(stderr, "skip: no Australia/Lord_Howe\n");
		return;
	}
	/* 2026-10-04: 02:00 +10:30 jumps to 02:30 +11 (15:30Z the day before). */
	t = tz_next_minute("Australia/Lord_Howe", at("2026-10-03T00:00:00Z"),
	    hhmm(2, 15));
	CHECK_INT(t, at("2026-10-03T15:30:00Z"));
	CHECK_INT(tz_minute_of_day("Australia/Lord_Howe", t), hhmm(2, 30));
	t = tz_next_minute("Australia/Lord_Howe", at("2026-10-03T00:00:00Z"),
	    hhmm(2, 30));
	CHECK_INT(t, at("2026-10-04T02:30:00+11:00"));
	/* 2026-04-05: 02:00 +11 falls back to 01:30 +10:30. */
	t = tz_next_minute("Australia/Lord_Howe", at("2026-04-04T00:00:00Z"),
	    hhmm(1, 45));
	CHECK_INT(t, at("2026-04-05T01:45:00+11:00"));
	t = tz_next_minute("Australia/Lord_Howe", t + 1, hhmm(1, 45));
	CHECK_INT(t, at("2026-04-06T01:45:00+10:30"));
}

static void
test_quiet(void)
{
	const char	*z = "Europe/Berlin";
	int		 from = hhmm(21, 0), to = hhmm(8, 0);
	int64_t		 t;

	/* Outside: unchanged. */
	t = at("2026-03-02T12:00:00+01:00");
	CHECK_INT(tz_after_quiet(z, t, from, to), t);
	t = at("2026-03-02T20:59:59+01:00");
	CHECK_INT(tz_after_quiet(z, t, from, to), t);
	t = at("2026-03-02T08:00:00+01:00");		/* `to` is outside */
	CHECK_INT(tz_after_quiet(z, t, from, to), t);
	/* Inside, before midnight: ends tomorrow morning. */
	t = at("2026-03-02T21:00:00+01:00");
	CHECK_INT(tz_after_quiet(z, t, from, to),
	    at("2026-03-03T08:00:00+01:00"));
	t = at("2026-03-02T23:30:00+01:00");
	CHECK_INT(tz_after_quiet(z, t, from, to),
	    at("2026-03-03T08:00:00+01:00"));
	/* Inside, after midnight: ends this morning. */
	t = at("2026-03-03T07:59:59+01:00");
	CHECK_INT(tz_after_quiet(z, t, from, to),
	    at("2026-03-03T08:00:00+01:00"));
	t = at("2026-03-03T00:00:00+01:00");
	CHECK_INT(tz_after_quiet(z, t, from, to),
	    at("2026-03-03T08:00:00+01:00"));
	/* Across the spring-forward night: 08:00 is CEST by then. */
	t = at("2026-03-28T23:00:00+01:00");
	CHECK_INT(tz_after_quiet(z, t, from, to),
	    at("2026-03-29T08:00:00+02:00"));

	/* A window that does not wrap. */
	t = at("2026-03-02T13:30:00+01:00");
	CHECK_INT(tz_after_quiet(z, t, hhmm(13, 0), hhmm(14, 0)),
	    at("2026-03-02T14:00:00+01:00"));
	t = at("2026-03-02T12:59:00+01:00");
	CHECK_INT(tz_after_quiet(z, t, hhmm(13, 0), hhmm(14, 0)), t);
	/* from == to: no quiet hours. */
	CHECK_INT(tz_after_quiet(z, t, hhmm(9, 0), hhmm(9, 0)), t);
	/* In UTC too. */
	t = at("2026-03-02T22:00:00Z");
	CHECK_INT(tz_after_quiet("UTC", t, from, to),
	    at("2026-03-03T08:00:00Z"));
}

/*
 * Quiet hours that end inside the repeated hour: after the first 01:30 the
 * clock reads 01:00-01:29 again, quiet once more, and that stretch ends at
 * the second 01:30, not at 01:30 the next night.
 */
static void
test_quiet_fold(void)
{
	const char	*z = "America/New_York";
	int		 from = hhmm(21, 0), to = hhmm(1, 30);
	int64_t		 t;

	/* 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00Z). */
	t = at("2026-10-31T23:00:00-04:00");
	CHECK_INT(tz_after_quiet(z, t, from, to), at("2026-11-01T05:30:00Z"));
	t = at("2026-11-01T01:15:00-04:00");		/* first pass */
	CHECK_INT(tz_after_quiet(z, t, from, to), at("2026-11-01T05:30:00Z"));
	t = at("2026-11-01T01:45:00-04:00");		/* between the two */
	CHECK_INT(tz_after_quiet(z, t, from, to), t);
	t = at("2026-11-01T01:00:00-05:00");		/* second pass */
	CHECK_INT(tz_after_quiet(z, t, from, to), at("2026-11-01T06:30:00Z"));
	t = at("2026-11-01T01:15:00-05:00");
	CHECK_INT(tz_after_quiet(z, t, from, to), at("2026-11-01T06:30:00Z"));
	t = at("2026-11-01T01:29:59-05:00");
	CHECK_INT(tz_after_quiet(z, t, from, to), at("2026-11-01T06:30:00Z"));
	/* A window that does not wrap, in another zone: London, 25 October. */
	t = at("2026-10-25T01:10:00+00:00");		/* second pass, GMT */
	CHECK_INT(tz_after_quiet("Europe/London", t, hhmm(0, 30), hhmm(1, 30)),
	    at("2026-10-25T01:30:00+00:00"));
	/* tz_next_minute() itself still gives one instant a day. */
	CHECK_INT(tz_next_minute(z, at("2026-11-01T01:15:00-05:00"), to),
	    at("2026-11-02T01:30:00-05:00"));
}

/*
 * Where the end of quiet hours is skipped, the clock lands after the gap;
 * that instant may still be quiet and must be checked again.
 */
static void
test_quiet_gap(void)
{
	const char	*z = "Pacific/Apia";
	int		 from = hhmm(21, 0), to = hhmm(8, 0);
	int64_t		 t, end;

	if (!tz_valid(z)) {
		fprintf(stderr, "skip: no Pacific/Apia\n");
		return;
	}
	/* 2011-12-29 23:59:59 -10 is followed by 2011-12-31 00:00:00 +14. */
	t = at("2011-12-29T22:00:00-10:00");
	end = tz_after_quiet(z, t, from, to);
	CHECK_INT(end, at("2011-12-31T08:00:00+14:00"));
	CHECK_INT(tz_minute_of_day(z, end), hhmm(8, 0));
	t = at("2011-12-29T23:59:59-10:00");
	CHECK_INT(tz_after_quiet(z, t, from, to),
	    at("2011-12-31T08:00:00+14:00"));
	/* From just after the jump, too. */
	t = at("2011-12-31T00:00:00+14:00");
	CHECK_INT(tz_after_quiet(z, t, from, to),
	    at("2011-12-31T08:00:00+14:00"));
	/* The day before, nothing unusual. */
	t = at("2011-12-28T22:00:00-10:00");
	CHECK_INT(tz_after_quiet(z, t, from, to),
	    at("2011-12-29T08:00:00-10:00"));

	/*
	 * An ordinary DST gap does the same to a window that covers all but
	 * 02:30-02:45: Berlin, 2026-03-29, 02:00 CET jumps to 03:00 CEST, and
	 * 03:00 is quiet again. The first non-quiet minute is a day later.
	 */
	t = at("2026-03-29T01:30:00+01:00");
	end = tz_after_quiet("Europe/Berlin", t, hhmm(2, 45), hhmm(2, 30));
	CHECK_INT(end, at("2026-03-30T02:30:00+02:00"));
	t = at("2026-03-29T03:00:00+02:00");
	CHECK_INT(tz_after_quiet("Europe/Berlin", t, hhmm(2, 45), hhmm(2, 30)),
	    at("2026-03-30T02:30:00+02:00"));
}

static void
test_hhmm(void)
{
	static const char *const bad[] = {
		"", "8", "08", "8:", "8:0", "08:0", "24:00", "23:60", "123:00",
		"08:000", " 8:00", "8:00 ", "+8:00", "-1:00", "08.00", "ab:cd",
		"08:5x", "0x8:00",
	};
	size_t	i;

	CHECK_INT(tz_parse_hhmm("00:00"), 0);
	CHECK_INT(tz_parse_hhmm("08:00"), 480);
	CHECK_INT(tz_parse_hhmm("8:00"), 480);
	CHECK_INT(tz_parse_hhmm("18:00"), 1080);
	CHECK_INT(tz_parse_hhmm("23:59"), 1439);
	CHECK_INT(tz_parse_hhmm("0:05"), 5);
	CHECK_INT(tz_parse_hhmm(NULL), -1);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (tz_parse_hhmm(bad[i]) != -1) {
			fprintf(stderr, "accepted \"%s\"\n", bad[i]);
			CHECK(!"bad HH:MM accepted");
		}
	}
}

int
main(void)
{
	TEST(test_valid);
	TEST(test_tzdir);
	TEST(test_local);
	TEST(test_next_plain);
	TEST(test_next_berlin_spring);
	TEST(test_next_berlin_fall);
	TEST(test_next_new_york);
	TEST(test_next_lord_howe);
	TEST(test_quiet);
	TEST(test_quiet_fold);
	TEST(test_quiet_gap);
	TEST(test_hhmm);
	return TEST_END();
}
