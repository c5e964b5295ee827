/*
 * bench_schedule.c: the single-timer scheduler with 100,000 pending jobs.
 *
 *   bench_schedule [jobs]
 *
 * The scheduler keeps one timer for the earliest job; each wake-up asks the
 * store for the next due time (an index lookup) and takes due jobs one by
 * one. This measures those costs with many jobs pending, for an in-memory
 * and a WAL file database: insert rate, store_job_next_due and
 * engine_next_due (median of many calls), and take+close per transaction.
 * Run it from the repository root (the engine reads scripts/lang).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "store.h"

#define START	INT64_C(1772352000)
#define CALLS	20001

static char	tmp_dir[] = "/tmp/strigil-bsched-XXXXXX";

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
median_ns(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_u64);
	return (double)v[n / 2];
}

static void
run(const char *path, const struct config *cfg, int njobs)
{
	struct store		*st;
	struct engine		*e;
	struct store_job	 j;
	uint64_t		*lat, t0, t;
	int64_t			 due, n;
	char			*cause = NULL;
	int			 i, taken, per_tx;

	if (store_open(&st, path, &cause) != 0 ||
	    engine_new(&e, cfg, st, &cause) != 0) {
		fprintf(stderr, "bench_schedule: %s\n", cause);
		exit(1);
	}
	printf("%s:\n", strcmp(path, ":memory:") == 0 ? "in-memory" :
	    "file (WAL, synchronous=NORMAL)");

	/* Inserts: due times spread over six weeks, in random order. */
	srand(1);
	memset(&j, 0, sizeof j);
	snprintf(j.kind, sizeof j.kind, "session");
	t0 = clock_mono_ns();
	store_begin(st);
	for (i = 0; i < njobs; i++) {
		j.patient_id = j.enrolment_id = i + 1;
		j.due_at = START + 3600 + (int64_t)(rand() % (42 * 86400));
		if (store_job_insert(st, &j) != 0)
			exit(1);
	}
	store_commit(st);
	t = clock_mono_ns() - t0;
	printf("  insert %d jobs, one tx    %.0f jobs/s\n", njobs,
	    njobs / ((double)t / 1e9));
	/* And with a transaction each, as the engine adds them. */
	per_tx = njobs / 10;
	t0 = clock_mono_ns();
	for (i = 0; i < per_tx; i++) {
		store_begin(st);
		j.patient_id = j.enrolment_id = njobs + i + 1;
		j.due_at = START + 3600 + (int64_t)(rand() % (42 * 86400));
		store_job_insert(st, &j);
		store_commit(st);
	}
	t = clock_mono_ns() - t0;
	printf("  insert %d jobs, tx each    %.0f jobs/s\n", per_tx,
	    per_tx / ((double)t / 1e9));
	store_job_count(st, &n);
	printf("  pending jobs               %lld\n", (long long)n);

	lat = calloc(CALLS, sizeof *lat);
	for (i = 0; i < CALLS; i++) {
		t0 = clock_mono_ns();
		store_job_next_due(st, &due);
		lat[i] = clock_mono_ns() - t0;
	}
	printf("  store_job_next_due         %.0f ns median\n",
	    median_ns(lat, CALLS));
	for (i = 0; i < CALLS; i++) {
		t0 = clock_mono_ns();
		engine_next_due(e, &due);
		lat[i] = clock_mono_ns() - t0;
	}
	printf("  engine_next_due            %.0f ns median\n",
	    median_ns(lat, CALLS));
	/* An empty take: nothing due yet (the timer fired early). */
	for (i = 0; i < CALLS; i++) {
		t0 = clock_mono_ns();
		store_job_take(st, START, &j);
		lat[i] = clock_mono_ns() - t0;
	}
	printf("  store_job_take, none due   %.0f ns median\n",
	    median_ns(lat, CALLS));

	/* Take + close, one transaction each, like engine_run_one without
	 * the job's own work. */
	taken = njobs / 2;
	t0 = clock_mono_ns();
	for (i = 0; i < taken; i++) {
		store_begin(st);
		if (store_job_take(st, START + 43 * 86400, &j) != 0)
			exit(1);
		store_job_close(st, j.id, "done", NULL, START);
		store_commit(st);
	}
	t = clock_mono_ns() - t0;
	printf("  take+close, tx each        %.0f jobs/s (%d jobs)\n",
	    taken / ((double)t / 1e9), taken);
	for (i = 0; i < CALLS; i++) {
		t0 = clock_mono_ns();
		store_job_next_due(st, &due);
		lat[i] = clock_mono_ns() - t0;
	}
	printf("  next_due after the takes  %.0f ns median\n",
	    median_ns(lat, CALLS));
	free(lat);
	engine_free(e);
	store_close(st);
}

int
main(int argc, char **argv)
{
	struct config	 cfg;
	char		*cause = NULL, path[128], aux[160];
	int		 njobs = argc > 1 ? atoi(argv[1]) : 100000;

	if (njobs < 10) {
		fprintf(stderr, "usage: bench_schedule [jobs >= 10]\n");
		return 1;
	}
	if (mkdtemp(tmp_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (config_load(&cfg, NULL, &cause) != 0) {
		fprintf(stderr, "bench_schedule: %s\n", cause);
		return 1;
	}
	log_set_level(LOG_WARN);
	run(":memory:", &cfg, njobs);
	snprintf(path, sizeof path, "%s/jobs.db", tmp_dir);
	run(path, &cfg, njobs);
	unlink(path);
	snprintf(aux, sizeof aux, "%s-wal", path);
	unlink(aux);
	snprintf(aux, sizeof aux, "%s-shm", path);
	unlink(aux);
	rmdir(tmp_dir);
	config_free(&cfg);
	return 0;
}
