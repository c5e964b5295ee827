/*
 * clock.c: the one place Strigil reads the time.
 *
 * Virtual time is kept in milliseconds. CLOCK_OFFSET runs on from an anchor
 * with the monotonic clock, not the wall clock, so a wall-clock step (NTP,
 * an operator fixing the date) can never make virtual time run backwards.
 *
 * The daemon is single-threaded (one libuv loop); the state below is not
 * locked.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static enum clock_mode	clock_current = CLOCK_REAL;
static int64_t		clock_virtual_ms;	/* OFFSET, MANUAL: time at anchor */
static uint64_t		clock_anchor_ns;	/* OFFSET: monotonic at anchor */

static int64_t
clock_real_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
clock_mono_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
clock_init(enum clock_mode mode, int64_t start)
{
	clock_current = mode;
	if (mode == CLOCK_REAL)
		return;
	if (start < 0 || start > INT64_MAX / 1000)
		clock_virtual_ms = clock_real_ms();
	else
		clock_virtual_ms = start * 1000;
	clock_anchor_ns = clock_mono_ns();
}

enum clock_mode
clock_mode(void)
{
	return clock_current;
}

int64_t
clock_now_ms(void)
{
	switch (clock_current) {
	case CLOCK_OFFSET:
		return clock_virtual_ms +
		    (int64_t)((clock_mono_ns() - clock_anchor_ns) / 1000000);
	case CLOCK_MANUAL:
		return clock_virtual_ms;
	case CLOCK_REAL:
		break;
	}
	return clock_real_ms();
}

int64_t
clock_now(void)
{
	int64_t	ms = clock_now_ms();

	/* Floor, not truncation, should anyone run before 1970. */
	return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

int
clock_advance(int64_t seconds)
{
	int64_t	now;

	if (clock_current == CLOCK_REAL || seconds < 0)
		return -EINVAL;
	now = clock_now_ms();
	if (seconds > (INT64_MAX - now) / 1000)
		return -EINVAL;
	/* Re-anchor so the jump lands on top of the time already run. */
	clock_virtual_ms = now + seconds * 1000;
	clock_anchor_ns = clock_mono_ns();
	return 0;
}

int
clock_set(int64_t t)
{
	if (clock_current != CLOCK_MANUAL)
		return -EINVAL;
	if (t < clock_now() || t > INT64_MAX / 1000)
		return -EINVAL;
	/*
	 * t == clock_now() may still lie below the current milliseconds;
	 * keep those rather than step back within the second.
	 */
	if (t * 1000 > clock_virtual_ms)
		clock_virtual_ms = t * 1000;
	return 0;
}

char *
clock_iso(int64_t t, char *buf, int len)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (buf == NULL || len <= 0)
		return buf;
	if (gmtime_r(&tt, &tm) == NULL) {
		buf[0] = '\0';
		return buf;
	}
	snprintf(buf, (size_t)len, "%04d-%02d-%02dT%02d:%02d:%02dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	return buf;
}

/* Reads exactly `n` digits at *sp into *out and moves *sp past them. */
static int
clock_digits(const char **sp, int n, int *out)
{
	const char	*s = *sp;
	int		 v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*sp = s + n;
	*out = v;
	return 0;
}

static int
clock_days_in_month(int year, int month)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	int	leap;

	leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (month == 2 && leap)
		return 29;
	return days[month - 1];
}

/*
 * Strict on purpose: these strings come from the console and from test
 * scripts, and a date silently read as something else moves a patient's
 * whole schedule.
 */
int
clock_parse_iso(const char *s, int64_t *t)
{
	struct tm	tm;
	time_t		tt;
	int		y, mo, d, h = 0, mi = 0, sec = 0, oh, om, off = 0;

	if (s == NULL || t == NULL)
		return -EINVAL;
	if (clock_digits(&s, 4, &y) != 0 || *s++ != '-' ||
	    clock_digits(&s, 2, &mo) != 0 || *s++ != '-' ||
	    clock_digits(&s, 2, &d) != 0)
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > clock_days_in_month(y, mo))
		return -EINVAL;

	if (*s == 'T') {
		s++;
		if (clock_digits(&s, 2, &h) != 0 || *s++ != ':' ||
		    clock_digits(&s, 2, &mi) != 0)
			return -EINVAL;
		if (*s == ':') {
			s++;
			if (clock_digits(&s, 2, &sec) != 0)
				return -EINVAL;
		}
		if (h > 23 || mi > 59 || sec > 59)
			return -EINVAL;

		/* An offset only makes sense after a time of day. */
		if (*s == 'Z')
			s++;
		else if (*s == '+' || *s == '-') {
			int	sign = *s++ == '-' ? -1 : 1;

			if (clock_digits(&s, 2, &oh) != 0 || *s++ != ':' ||
			    clock_digits(&s, 2, &om) != 0)
				return -EINVAL;
			if (oh > 23 || om > 59)
				return -EINVAL;
			off = sign * (oh * 3600 + om * 60);
		}
	}
	if (*s != '\0')
		return -EINVAL;

	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	/* Years 0000..9999 always fit a 64-bit time_t: no failure case. */
	tt = timegm(&tm);
	*t = (int64_t)tt - off;
	return 0;
}
