/*
 * tz.c: local time in IANA zones, from the system tz database.
 *
 * The C library knows one local zone at a time, named by the TZ variable, so
 * every call switches TZ to ":Zone/Name" first (the leading colon makes glibc
 * read the file instead of parsing a POSIX rule string). The zone last set is
 * cached so the common case, the same zone many times in a row, costs no
 * tzset(). This makes the module, like setenv() itself, unsafe to call from
 * several threads; the daemon runs one loop thread.
 *
 * An invalid zone is refused by tz_valid() before it ever reaches a patient
 * record; should one slip through, the int64_t functions below compute in UTC
 * rather than fail, so a reminder is late by some hours rather than lost.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tz.h"

#define TZ_NAME_MAX	64
#define TZ_DEFAULT_DIR	"/usr/share/zoneinfo"

/* The zone TZ is set to now; "" before the first switch. */
static char	tz_current[TZ_NAME_MAX + 1];

static int
tz_name_ok(const char *zone)
{
	const char	*p;
	size_t		 len;

	if (zone == NULL || *zone == '\0' || *zone == '/')
		return 0;
	len = strlen(zone);
	if (len > TZ_NAME_MAX || strstr(zone, "..") != NULL)
		return 0;
	for (p = zone; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '/' || *p == '_' ||
		    *p == '+' || *p == '-')
			continue;
		return 0;
	}
	/*
	 * right/ zones count leap seconds: glibc would then read our POSIX
	 * time_t as TAI-like and every local time would be some seconds off.
	 */
	if (strncmp(zone, "right/", 6) == 0)
		return 0;
	return 1;
}

int
tz_valid(const char *zone)
{
	const char	*dir;
	char		 path[4096], magic[4];
	struct stat	 sb;
	int		 fd, ok = 0;

	if (!tz_name_ok(zone))
		return 0;
	dir = getenv("TZDIR");
	if (dir == NULL || *dir == '\0')
		dir = TZ_DEFAULT_DIR;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, zone) >=
	    sizeof path)
		return 0;

	/* O_NONBLOCK: a FIFO planted in the folder must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1)
		return 0;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    read(fd, magic, sizeof magic) == (ssize_t)sizeof magic &&
	    memcmp(magic, "TZif", 4) == 0)
		ok = 1;
	close(fd);
	return ok;
}

/* Makes `zone` the C library's local zone. 0, or -EINVAL if invalid. */
static int
tz_use(const char *zone)
{
	char	env[TZ_NAME_MAX + 2];

	if (zone != NULL && strcmp(zone, tz_current) == 0)
		return 0;
	if (!tz_valid(zone))
		return -EINVAL;
	snprintf(env, sizeof env, ":%s", zone);
	if (setenv("TZ", env, 1) != 0)
		return -EINVAL;
	tzset();
	/* Only now: a failed switch must not leave a stale cache entry. */
	snprintf(tz_current, sizeof tz_current, "%s", zone);
	return 0;
}

/* Like tz_use(), falling back to UTC for an invalid zone (see the top). */
static void
tz_use_or_utc(const char *zone)
{
	if (tz_use(zone) == 0)
		return;
	if (tz_use("UTC") == 0)
		return;
	/* No tz database at all: a POSIX rule string needs no file. */
	setenv("TZ", "UTC0", 1);
	tzset();
	tz_current[0] = '\0';
}

int
tz_local(const char *zone, int64_t t, struct tm *out)
{
	time_t	tt = (time_t)t;

	if (out == NULL || tz_use(zone) != 0)
		return -EINVAL;
	if (localtime_r(&tt, out) == NULL)
		return -EINVAL;
	return 0;
}

/* Local wall time of `t` as seconds on a UTC-like axis, in the current zone. */
static int64_t
tz_wall(int64_t t)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (localtime_r(&tt, &tm) == NULL)
		return t;
	return t + tm.tm_gmtoff;
}

static int64_t
tz_offset(int64_t t)
{
	return tz_wall(t) - t;
}

/*
 * The instant for wall time `w` (local fields read as if UTC) in the current
 * zone: if it occurs twice (fold), the earlier one not before `not_before`,
 * failing that the earlier one; if not at all (gap), the first instant after
 * the gap.
 *
 * Rather than trust mktime()'s tm_isdst = -1 guess, which differs between C
 * libraries exactly on these edge cases, try t = w - offset for each offset
 * in force within a day either side, and keep the smallest t that really
 * reads back as w. A transition between those probes is assumed to be the
 * only one; the tz database has no zone with two within a day.
 */
static int64_t
tz_resolve_wall(int64_t w, int64_t not_before)
{
	int64_t	offs[3], lo, hi, mid, t, best = INT64_MAX, after = INT64_MAX;
	int	i;

	offs[0] = tz_offset(w - 86400);
	offs[1] = tz_offset(w);
	offs[2] = tz_offset(w + 86400);
	for (i = 0; i < 3; i++) {
		t = w - offs[i];
		if (tz_wall(t) != w)
			continue;
		if (t < best)
			best = t;
		if (t >= not_before && t < after)
			after = t;
	}
	if (after != INT64_MAX)
		return after;
	if (best != INT64_MAX)
		return best;

	/*
	 * A gap: w - (largest offset) lies before the jump and reads earlier
	 * than w, w - (smallest offset) after it and reads later. Bisect for
	 * the first instant that reads later than w: the end of the gap.
	 */
	lo = hi = w - offs[0];
	for (i = 1; i < 3; i++) {
		t = w - offs[i];
		if (t < lo)
			lo = t;
		if (t > hi)
			hi = t;
	}
	if (tz_wall(lo) >= w || tz_wall(hi) <= w)
		return w - offs[1];	/* not a shape we know; best effort */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (tz_wall(mid) > w)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/*
 * tz_next_minute() in the current zone. Without `repeat` each local day
 * yields exactly one instant for `minute`, even on a fold day: a scheduler
 * asking again from just after the first 02:30 gets tomorrow's, never the
 * repeated 02:30, so nobody is reminded twice in an hour. With `repeat` the
 * repeated one counts: quiet hours ending at 02:30 end there too.
 */
static int64_t
tz_next(int64_t not_before, int minute, int repeat)
{
	time_t		tt = (time_t)not_before;
	struct tm	tm, day;
	int64_t		t;
	int		d;

	if (localtime_r(&tt, &tm) == NULL)
		return -EINVAL;

	/*
	 * Today's instant may already be past; tomorrow's is then the answer,
	 * unless tomorrow was skipped altogether (Samoa, 2011), hence a few.
	 */
	for (d = 0; d < 4; d++) {
		memset(&day, 0, sizeof day);
		day.tm_year = tm.tm_year;
		day.tm_mon = tm.tm_mon;
		day.tm_mday = tm.tm_mday + d;	/* timegm() normalises */
		day.tm_hour = minute / 60;
		day.tm_min = minute % 60;
		t = tz_resolve_wall((int64_t)timegm(&day),
		    repeat ? not_before : INT64_MIN);
		if (t >= not_before)
			return t;
	}
	return not_before;
}

int64_t
tz_next_minute(const char *zone, int64_t not_before, int minute)
{
	if (minute < 0 || minute > 1439)
		return -EINVAL;
	tz_use_or_utc(zone);
	return tz_next(not_before, minute, 0);
}

int
tz_minute_of_day(const char *zone, int64_t t)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	tz_use_or_utc(zone);
	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return tm.tm_hour * 60 + tm.tm_min;
}

int
tz_quiet_minute(int m, int from, int to)
{
	if (from == to)
		return 0;
	if (from < to)
		return m >= from && m < to;
	return m >= from || m < to;
}

/* 1 if `t` is inside quiet hours [from, to) in the current zone. */
static int
tz_quiet(int64_t t, int from, int to)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return tz_quiet_minute(tm.tm_hour * 60 + tm.tm_min, from, to);
}

int64_t
tz_after_quiet(const char *zone, int64_t t, int from, int to)
{
	int64_t	u = t, n;
	int	i;

	if (from == to || from < 0 || from > 1439 || to < 0 || to > 1439)
		return t;
	tz_use_or_utc(zone);

	/*
	 * Quiet hours end when the clock next reads `to`, or where a gap skips
	 * it, just after the gap. That instant can be quiet again: Samoa went
	 * from 29 December 2011 23:59:59 straight to the 31st 00:00, inside
	 * 21:00-08:00. So check again; a few rounds do, as only a gap lands
	 * inside and the tz database has no two within a day.
	 */
	for (i = 0; i < 4 && tz_quiet(u, from, to); i++) {
		/* u is quiet, so its minute is not `to`: the end is later. */
		if ((n = tz_next(u + 1, to, 1)) <= u)
			break;
		u = n;
	}
	return u;
}

int
tz_parse_hhmm(const char *s)
{
	int	h, m;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	h = s[0] - '0';
	s++;
	if (*s >= '0' && *s <= '9')
		h = h * 10 + (*s++ - '0');
	if (*s++ != ':')
		return -1;
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
	    s[2] != '\0')
		return -1;
	m = (s[0] - '0') * 10 + (s[1] - '0');
	if (h > 23 || m > 59)
		return -1;
	return h * 60 + m;
}
