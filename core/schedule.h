/*
 * schedule.h: running jobs when they come due.
 *
 * The jobs themselves live in the store (indexed by due time); the
 * scheduler only keeps one libuv timer armed for the earliest of them, so
 * 100,000 pending jobs cost one index lookup per wake-up, not a timer each.
 * Call sched_kick() after anything that may have added an earlier job.
 *
 * sched_run_until() is the virtual-time path: it moves a CLOCK_MANUAL or
 * CLOCK_OFFSET clock from job to job up to a target, running each job at its
 * own due time, so weeks pass in milliseconds with the same engine calls the
 * daemon makes.
 */
#ifndef STRIGIL_SCHEDULE_H
#define STRIGIL_SCHEDULE_H

#include <stdint.h>

#include <uv.h>

struct engine;
struct sched;

/* Called after jobs ran, to deliver what they queued; anything but 0 stops
 * sched_run_until() (the timer's wake-ups go on regardless). */
typedef int sched_after_fn(void *ud);

/*
 * The longest the timer sleeps before looking again. Jobs are in UTC
 * seconds, the timer in loop milliseconds; waking at least once a minute
 * bounds the error after a wall-clock step or suspend to a minute, at the
 * cost of one indexed query a minute when idle. sched_kick() only ever
 * moves the timer earlier, so it wakes this often however often it is
 * kicked, and a scheduler that has not woken for a few times this long is
 * stuck (the health check's test).
 */
#define SCHED_MAX_SLEEP_MS	60000

/* Creates the scheduler on `loop`; it owns its timer until sched_close(),
 * which frees it from the timer's close callback. 0 or a negative uv error. */
int	sched_new(struct sched **out, uv_loop_t *loop, struct engine *e,
	    sched_after_fn *after, void *ud);
void	sched_kick(struct sched *s);
void	sched_close(struct sched *s);
/* When the timer last fired (or the scheduler was created), in
 * clock_mono_ns() nanoseconds. */
uint64_t sched_last_wake(const struct sched *s);

/* Runs every job due up to `target` in due order, setting the clock to each
 * job's due time first, then leaves the clock at `target`. Returns the
 * number of jobs run, or -1 on a database error or when `after` says
 * stop. */
int	sched_run_until(struct engine *e, int64_t target, sched_after_fn *after,
	    void *ud);

#endif
