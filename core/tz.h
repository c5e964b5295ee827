/*
 * tz.h: local time in IANA zones, from the system tz database.
 *
 * Built on the C library's localtime_r()/mktime() with TZ switched per call
 * (glibc reads /usr/share/zoneinfo), so DST rules are the system's and stay
 * up to date with the tzdata package. The current zone is cached: switching
 * costs only when the zone changes. Times are UTC seconds; "minute of day" is
 * 0..1439 in local time.
 */
#ifndef STRIGIL_TZ_H
#define STRIGIL_TZ_H

#include <stdint.h>
#include <time.h>

/* 1 if `zone` names a zone of the system database ("Europe/Berlin", "UTC"),
 * else 0. Rejects names that could escape the zoneinfo folder. */
int	tz_valid(const char *zone);

/* Breaks UTC `t` into local time in `zone`. 0 or -EINVAL. */
int	tz_local(const char *zone, int64_t t, struct tm *out);

/* The first instant >= `not_before` whose local time of day in `zone` is
 * `minute` (0..1439). On a DST gap (the minute does not exist that day) the
 * instant just after the gap is used; on a fold, the earlier one. */
int64_t	tz_next_minute(const char *zone, int64_t not_before, int minute);

/* Local minute of day of `t` in `zone`. */
int	tz_minute_of_day(const char *zone, int64_t t);

/* Quiet hours [from, to) in local minutes; from > to wraps midnight
 * (21:00-08:00). from == to means no quiet hours. If `t` falls inside them,
 * returns the instant they end, never inside them; otherwise `t`. They end
 * when the clock next reads `to`, a fold's repeat included (from the second
 * 01:15, at the second 01:30, not tomorrow's), or where a gap skips `to`, just
 * after the gap unless that is quiet too (Samoa skipped 30 December 2011:
 * 21:00-08:00 ends at 08:00 on the 31st). A clock set back out of the window
 * (Cairo, 24:00 to 23:00, quiet from 23:30) does not end them early. */
int64_t	tz_after_quiet(const char *zone, int64_t t, int from, int to);
/* 1 if local minute of day `m` is inside quiet hours [from, to) as above. */
int	tz_quiet_minute(int m, int from, int to);

/* Parses "HH:MM" (00:00..23:59) into a minute of day; -1 if malformed. */
int	tz_parse_hhmm(const char *s);

#endif
