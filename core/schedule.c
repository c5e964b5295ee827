/*
 * schedule.c: one timer for the earliest due job.
 */
#include <stdlib.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "schedule.h"
#include "xmalloc.h"

struct sched {
	uv_timer_t	 timer;
	struct engine	*e;
	sched_after_fn	*after;
	void		*ud;
	uint64_t	 last_wake;	/* clock_mono_ns() */
};

static void
sched_fire(uv_timer_t *timer)
{
	struct sched	*s = timer->data;

	s->last_wake = clock_mono_ns();
	if (engine_run_due(s->e, clock_now()) < 0)
		log_error("event=sched_run_failed");
	if (s->after != NULL)
		(void)s->after(s->ud);
	sched_kick(s);
}

void
sched_kick(struct sched *s)
{
	int64_t		due, now = clock_now();
	uint64_t	ms = SCHED_MAX_SLEEP_MS;

	if (engine_next_due(s->e, &due) == 0)
		ms = due <= now ? 0 : (uint64_t)(due - now) * 1000;
	if (ms > SCHED_MAX_SLEEP_MS)
		ms = SCHED_MAX_SLEEP_MS;
	/* Never later than already armed: see SCHED_MAX_SLEEP_MS. */
	if (uv_is_active((uv_handle_t *)&s->timer) &&
	    uv_timer_get_due_in(&s->timer) <= ms)
		return;
	uv_timer_start(&s->timer, sched_fire, ms, 0);
}

int
sched_new(struct sched **out, uv_loop_t *loop, struct engine *e,
    sched_after_fn *after, void *ud)
{
	struct sched	*s = xcalloc(1, sizeof *s);
	int		 rc;

	if ((rc = uv_timer_init(loop, &s->timer)) != 0) {
		free(s);
		return rc;
	}
	s->timer.data = s;
	s->e = e;
	s->after = after;
	s->ud = ud;
	s->last_wake = clock_mono_ns();
	*out = s;
	return 0;
}

uint64_t
sched_last_wake(const struct sched *s)
{
	return s->last_wake;
}

static void
sched_closed(uv_handle_t *h)
{
	free(h->data);
}

void
sched_close(struct sched *s)
{
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, sched_closed);
}

int
sched_run_until(struct engine *e, int64_t target, sched_after_fn *after,
    void *ud)
{
	int64_t	due, now;
	int	n = 0, rc;

	while ((rc = engine_next_due(e, &due)) == 0 && due <= target) {
		if (due > (now = clock_now()))
			clock_advance(due - now);
		if ((rc = engine_run_due(e, clock_now())) < 0)
			return -1;
		n += rc;
		if (after != NULL && after(ud) != 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (target > (now = clock_now()))
		clock_advance(target - now);
	return n;
}
