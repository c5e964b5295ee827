/*
 * bench_simulate.c: the whole engine under load, and SQLite's floor.
 *
 *   bench_simulate [-n] [protocol.lua [patients [days]]]
 *
 * -n skips the SQLite floor (for profiling the engine alone).
 * Runs sim_run() (the `strigil simulate` path: real engine, store in memory,
 * manual clock) for 10,000 patients through a 6-week course, then measures
 * raw SQLite inserts per second with the store's settings: one transaction
 * per insert (as the daemon commits once per event), batched, and in the
 * simulator's fast batches. Prints numbers only; run it from the
 * repository root (it reads scripts/lang).
 */
#include <sys/resource.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "protocol.h"
#include "simulate.h"

#define START	INT64_C(1772352000)	/* 2026-03-01T08:00:00Z */

/* A six-week protocol with a check-in after each session; it ends the
 * course early when pain reaches 0, so the answers keep pain above 0. */
static const char *builtin =
    "return {\n"
    "  id = \"bench\", version = 1, title = \"Bench\",\n"
    "  course = { weeks = 6 },\n"
    "  interval = { min_hours = 48, target_hours = 60 },\n"
    "  pressure = { levels = { \"light\", \"moderate\", \"firm\" } },\n"
    "  questionnaires = {\n"
    "    checkin = {\n"
    "      { id = \"soreness\", type = \"integer\", min = 0, max = 10,"
    " text = \"Soreness 0-10?\" },\n"
    "      { id = \"redness\", type = \"yesno\", text = \"Redness?\" },\n"
    "      { id = \"pain\", type = \"integer\", min = 0, max = 10,"
    " text = \"Pain 0-10?\" },\n"
    "    },\n"
    "  },\n"
    "  steps = { \"Apply oil.\", \"Glide lightly.\" },\n"
    "  on = {\n"
    "    answered = function(ctx, ev)\n"
    "      local a = ev.answers\n"
    "      ctx.state.checkins = (ctx.state.checkins or 0) + 1\n"
    "      if a.pain == 0 then\n"
    "        ctx.finish{ reason = \"pain free\" }\n"
    "      elseif a.soreness > 2 then\n"
    "        ctx.postpone{ hours = 24, reason = \"soreness\","
    " ask = \"checkin\" }\n"
    "      else\n"
    "        if a.soreness == 0 and ctx.level < 3 then\n"
    "          ctx.step_pressure(1)\n"
    "        end\n"
    "        ctx.schedule{ hours = 48, from = \"session\" }\n"
    "      end\n"
    "    end,\n"
    "  },\n"
    "}\n";

static char	tmp_dir[] = "/tmp/strigil-bench-XXXXXX";

static void
write_file(const char *path, const char *text)
{
	FILE	*f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

/* 1 if questionnaire `qid` of the protocol at `path` asks `id`. */
static int
has_question(const char *path, const struct config *cfg, const char *qid,
    const char *id)
{
	struct proto_limits			 limits = { cfg->lua_memory,
	    cfg->lua_instructions };
	struct protocol				*p;
	const struct proto_questionnaire	*qs;
	char					*cause = NULL;
	int					 found;

	if (proto_load(path, &limits, &p, &cause) != 0) {
		fprintf(stderr, "bench_simulate: %s\n", cause);
		free(cause);
		exit(1);
	}
	qs = proto_questionnaire(p, qid);
	found = qs != NULL && proto_question(qs, id) != NULL;
	proto_free(p);
	return found;
}

static long
peak_rss_kb(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* ---- SQLite floor ------------------------------------------------------ */

static void
sql(sqlite3 *db, const char *text)
{
	char	*err = NULL;

	if (sqlite3_exec(db, text, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sqlite: %s: %s\n", text, err);
		exit(1);
	}
}

/* Inserts n event-like rows, `per_tx` to a transaction; returns rows/s.
 * `fast`: the simulator's fast batches (store_tx.c): 16 KiB pages, no
 * journal. */
static double
sqlite_rate(const char *path, int n, int per_tx, int fast)
{
	sqlite3		*db;
	sqlite3_stmt	*ins, *begin, *commit;
	uint64_t	 t0;
	int		 i;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlite: cannot open %s\n", path);
		exit(1);
	}
	/* The store's settings (store.c: store_configure). */
	sql(db, "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;");
	if (strcmp(path, ":memory:") != 0)
		sql(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
	else if (fast)
		sql(db, "PRAGMA page_size = 16384; PRAGMA journal_mode = OFF;");
	sql(db, "CREATE TABLE events (id INTEGER PRIMARY KEY,"
	    " patient_id INTEGER NOT NULL, enrolment_id INTEGER NOT NULL,"
	    " t INTEGER NOT NULL, kind TEXT NOT NULL, data TEXT)");
	sqlite3_prepare_v3(db, "INSERT INTO events (patient_id, enrolment_id,"
	    " t, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)", -1,
	    SQLITE_PREPARE_PERSISTENT, &ins, NULL);
	sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL);
	sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL);
	t0 = clock_mono_ns();
	for (i = 0; i < n; i++) {
		if (i % per_tx == 0) {
			sqlite3_step(begin);
			sqlite3_reset(begin);
		}
		sqlite3_bind_int64(ins, 1, i % 10000 + 1);
		sqlite3_bind_int64(ins, 2, i % 10000 + 1);
		sqlite3_bind_int64(ins, 3, START + i);
		sqlite3_bind_text(ins, 4, "session_reminder", -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 5, "{\"session\":3,\"pressure\":"
		    "\"light\"}", -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
			exit(1);
		}
		sqlite3_reset(ins);
		if (i % per_tx == per_tx - 1 || i == n - 1) {
			sqlite3_step(commit);
			sqlite3_reset(commit);
		}
	}
	t0 = clock_mono_ns() - t0;
	sqlite3_finalize(ins);
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	sqlite3_close(db);
	return (double)n / ((double)t0 / 1e9);
}

int
main(int argc, char **argv)
{
	struct config		 cfg;
	struct sim_opts		 o;
	struct sim_result	 r;
	char			 proto[160], answers[128], dbfile[128];
	char			*cause = NULL;
	const char		*path;
	int			 patients = 10000, days = 43, floor = 1;

	if (mkdtemp(tmp_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (config_load(&cfg, NULL, &cause) != 0) {
		fprintf(stderr, "bench_simulate: %s\n", cause);
		return 1;
	}
	log_set_level(LOG_WARN);
	if (argc > 1 && strcmp(argv[1], "-n") == 0) {
		floor = 0;
		argc--;
		argv++;
	}
	if (argc > 1)
		path = argv[1];
	else if (access("scripts/protocols/iastm_home.lua", R_OK) == 0)
		path = "scripts/protocols/iastm_home.lua";
	else {
		snprintf(proto, sizeof proto, "%s/bench.lua", tmp_dir);
		write_file(proto, builtin);
		path = proto;
	}
	if (argc > 2)
		patients = atoi(argv[2]);
	if (argc > 3)
		days = atoi(argv[3]);

	/* Answers that keep pain above 0, so the course runs its length;
	 * every other question gets its all-clear answer. */
	answers[0] = '\0';
	if (has_question(path, &cfg, "checkin", "pain")) {
		snprintf(answers, sizeof answers, "%s/answers.txt", tmp_dir);
		/* A baseline at screening, if there is one, that 2 does not
		 * rise above (iastm_home pauses on a rise of 2). */
		write_file(answers, has_question(path, &cfg, "screening",
		    "pain") ? "screening: pain=3\npain=2\n" : "pain=2\n");
	}

	memset(&o, 0, sizeof o);
	o.cfg = &cfg;
	o.protocol = path;
	o.answers = answers[0] != '\0' ? answers : NULL;
	o.start = START;
	o.days = days;
	o.patients = patients;
	o.tz = "UTC";
	o.quiet = 1;
	memset(&r, 0, sizeof r);
	printf("simulate: %s, %d patients, %d days, answers %s\n", path,
	    patients, days, o.answers != NULL ? "pain=2 (baseline 3)" : "(all clear)");
	fflush(stdout);
	if (sim_run(&o, &r) != 0)
		return 1;
	printf("  engine events      %llu\n", (unsigned long long)r.events);
	printf("  events/s           %.0f\n", (double)r.events / r.seconds);
	printf("  messages handled   %llu\n", (unsigned long long)r.inbound);
	printf("  jobs run           %llu\n", (unsigned long long)r.jobs);
	printf("  messages and jobs/s %.0f (each all-or-nothing)\n",
	    (double)(r.inbound + r.jobs) / r.seconds);
	printf("  passes             %d\n", r.passes);
	printf("  protocol errors    %llu\n", (unsigned long long)r.lua_errors);
	printf("  wall time          %.3f s\n", r.seconds);
	printf("  peak RSS           %.1f MiB\n", peak_rss_kb() / 1024.0);

	if (!floor)
		goto done;
	printf("sqlite floor (events table, store settings):\n");
	printf("  memory, 1 insert/tx      %.0f rows/s\n",
	    sqlite_rate(":memory:", 200000, 1, 0));
	printf("  memory, 1000 inserts/tx  %.0f rows/s\n",
	    sqlite_rate(":memory:", 1000000, 1000, 0));
	printf("  memory, simulator's fast batch (4096/tx, no journal, 16 KiB "
	    "pages)  %.0f rows/s\n", sqlite_rate(":memory:", 1000000, 4096, 1));
	snprintf(dbfile, sizeof dbfile, "%s/floor.db", tmp_dir);
	printf("  file WAL, 1 insert/tx    %.0f rows/s\n",
	    sqlite_rate(dbfile, 50000, 1, 0));
	unlink(dbfile);
	snprintf(proto, sizeof proto, "%s-wal", dbfile);
	unlink(proto);
	snprintf(proto, sizeof proto, "%s-shm", dbfile);
	unlink(proto);

done:
	if (answers[0] != '\0')
		unlink(answers);
	snprintf(proto, sizeof proto, "%s/bench.lua", tmp_dir);
	unlink(proto);
	rmdir(tmp_dir);
	config_free(&cfg);
	return 0;
}
