/*
 * clock.h: the one place Strigil reads the time.
 *
 * Nothing else in the tree calls time(), clock_gettime() or gettimeofday():
 * every scheduling path asks clock_now(). That is what lets the simulator and
 * the tests run weeks of virtual time in milliseconds.
 *
 * Three modes:
 *   CLOCK_REAL    wall-clock UTC (the daemon).
 *   CLOCK_OFFSET  real time plus an offset that only grows: starts at `start`
 *                 and runs on with the wall clock; clock_advance() jumps it
 *                 forward (the console's /wait).
 *   CLOCK_MANUAL  stands still until clock_set()/clock_advance() move it (the
 *                 simulator and unit tests).
 * Times are seconds since the Unix epoch, UTC.
 */
#ifndef STRIGIL_CLOCK_H
#define STRIGIL_CLOCK_H

#include <stdint.h>

enum clock_mode { CLOCK_REAL, CLOCK_OFFSET, CLOCK_MANUAL };

/* Selects the mode; `start` is ignored for CLOCK_REAL, and a negative start
 * means "the real time now". */
void	clock_init(enum clock_mode mode, int64_t start);
enum clock_mode clock_mode(void);

int64_t	clock_now(void);		/* seconds, UTC */
int64_t	clock_now_ms(void);		/* milliseconds, UTC */

/* Moves virtual time forward by `seconds` (>= 0). -EINVAL in CLOCK_REAL or
 * for a negative step. */
int	clock_advance(int64_t seconds);
/* Sets CLOCK_MANUAL time; -EINVAL in another mode or if `t` is in the past:
 * virtual time never runs backwards. */
int	clock_set(int64_t t);

/* Monotonic nanoseconds, for measuring durations only (benchmarks, metrics);
 * never for scheduling. */
uint64_t clock_mono_ns(void);

/* Formats `t` as ISO-8601 UTC ("2026-03-01T08:00:00Z") into buf (>= 21 bytes). */
char	*clock_iso(int64_t t, char *buf, int len);
/* Parses "2026-03-01", "2026-03-01T08:00", "2026-03-01T08:00:00Z" or with a
 * "+01:00" offset. Returns 0 and sets *t, or -EINVAL. */
int	clock_parse_iso(const char *s, int64_t *t);

#endif
