/*
 * simulate.h: `strigil simulate`, virtual patients through the real engine.
 *
 * Each patient enrols at the start through /start and the setup questions,
 * does every session when reminded (/done), and answers each questionnaire
 * with the next line of the answers file meant for it (see scenario.h). The
 * engine, store (in memory) and scheduler are the daemon's; only the clock
 * is manual, moved from job to job, and the simulator is an adapter that
 * delivers in process (engine_set_deliver).
 */
#ifndef STRIGIL_SIMULATE_H
#define STRIGIL_SIMULATE_H

#include <stdint.h>

struct config;

struct sim_opts {
	const struct config	*cfg;
	const char		*protocol;	/* file */
	const char		*answers;	/* file, or NULL */
	int64_t			 start;		/* -1: now */
	int			 days;
	int			 patients;
	const char		*tz;
	int			 json;
	int			 quiet;		/* no output but the summary */
};

struct sim_result {
	uint64_t	events;
	uint64_t	inbound;
	uint64_t	jobs;
	uint64_t	lua_errors;
	uint64_t	kinds[16];	/* engine events by --json kind */
	int		passes;		/* 2 if it ran again in safe batches */
	double		seconds;	/* wall time of the run, both passes */
};

/* Runs the simulation, printing as the options ask; returns the exit code.
 * If res is given it receives the counts. */
int	sim_run(const struct sim_opts *o, struct sim_result *res);
int	sim_main(const struct sim_opts *o);

#endif
