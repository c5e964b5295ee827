/*
 * daemon.c: wiring the store, engine, scheduler and adapters to one loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "clock.h"
#include "config.h"
#include "console/console.h"
#include "daemon.h"
#include "engine.h"
#include "log.h"
#include "schedule.h"
#include "store.h"
#include "xmalloc.h"

struct daemon {
	uv_loop_t	 loop;
	uv_signal_t	 sigint, sigterm, sighup;
	struct store	*st;
	struct engine	*e;
	struct sched	*sched;
	struct console	*console;
	int		 stopping;
};

static void
daemon_after_jobs(void *ud)
{
	struct daemon	*d = ud;

	if (d->console != NULL)
		console_flush(d->console);
}

static void
daemon_stop(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	log_info("event=stopping reason=%s", why);
	if (d->console != NULL) {
		console_close(d->console);
		d->console = NULL;
	}
	sched_close(d->sched);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void
daemon_signal(uv_signal_t *h, int signum)
{
	struct daemon	*d = h->data;
	int		 failed;

	if (signum == SIGHUP) {
		failed = engine_reload(d->e, clock_now());
		log_info("event=reloaded failed=%d", failed);
		sched_kick(d->sched);
		return;
	}
	daemon_stop(d, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void
daemon_console_eof(void *ud)
{
	struct daemon	*d = ud;

	/* The console is the only adapter so far: its end is the end. */
	daemon_stop(d, "end_of_input");
}

static int
daemon_signals(struct daemon *d)
{
	uv_signal_t	*hs[] = { &d->sigint, &d->sigterm, &d->sighup };
	int		 sigs[] = { SIGINT, SIGTERM, SIGHUP }, i, rc;

	for (i = 0; i < 3; i++) {
		if ((rc = uv_signal_init(&d->loop, hs[i])) != 0)
			return rc;
		hs[i]->data = d;
		if ((rc = uv_signal_start(hs[i], daemon_signal, sigs[i])) != 0)
			return rc;
	}
	return 0;
}

/* Creates the folder of a database file, so ./data/ need not exist. */
static void
daemon_mkdir_for(const char *path)
{
	char	*dir = xstrdup(path), *slash = strrchr(dir, '/');

	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			log_warn("event=mkdir_failed path=%s", log_q(dir));
	}
	free(dir);
}

static int
daemon_open(struct daemon *d, const struct daemon_opts *o, char **cause)
{
	const struct config	*cfg = o->cfg;
	const char		*db = o->database ? o->database : cfg->database;

	if (strcmp(db, ":memory:") != 0)
		daemon_mkdir_for(db);
	if (store_open(&d->st, db, cause) != 0)
		return -1;
	if (engine_new(&d->e, cfg, d->st, cause) != 0)
		return -1;
	if (o->protocol != NULL) {
		if (engine_load_file(d->e, o->protocol, cause) != 0)
			return -1;
	} else if (engine_load_dir(d->e, cfg->protocols, cause) != 0)
		return -1;
	return engine_ready(d->e, cause);
}

static void
daemon_banner(void)
{
	printf("Strigil chat. Time here is virtual: /wait 26h moves it on "
	    "(/wait alone: to the next event), /time shows it, /quit leaves.\n"
	    "/clinic clear plays the clinician lifting a hold.\n"
	    "Send /start to begin, /help for the commands.\n");
	fflush(stdout);
}

int
daemon_main(const struct daemon_opts *o)
{
	struct daemon	 d;
	char		*cause = NULL;
	int		 rc = 1;

	memset(&d, 0, sizeof d);
	clock_init(o->chat ? CLOCK_OFFSET : CLOCK_REAL, o->start);
	if (uv_loop_init(&d.loop) != 0) {
		fprintf(stderr, "strigil: cannot start the event loop\n");
		return 1;
	}
	if (daemon_open(&d, o, &cause) != 0)
		goto out;
	if (sched_new(&d.sched, &d.loop, d.e, daemon_after_jobs, &d) != 0 ||
	    daemon_signals(&d) != 0) {
		cause = xstrdup("cannot set up timers and signals");
		goto out;
	}
	if (o->chat || o->cfg->console) {
		if (o->chat)
			daemon_banner();
		if (console_new(&d.console, &d.loop, d.e, d.sched, o->chat,
		    daemon_console_eof, &d, &cause) != 0)
			goto out;
		console_flush(d.console);
	}
	log_info("event=started mode=%s version=%s", o->chat ? "chat" : "run",
	    STRIGIL_VERSION);
	/* Jobs that came due while we were down run now, each once. */
	sched_kick(d.sched);
	uv_run(&d.loop, UV_RUN_DEFAULT);
	rc = 0;
	log_info("event=stopped");
out:
	if (cause != NULL) {
		fprintf(stderr, "strigil: %s\n", cause);
		free(cause);
	}
	if (rc != 0 && d.sched != NULL && !d.stopping)
		daemon_stop(&d, "error");
	uv_run(&d.loop, UV_RUN_DEFAULT);
	uv_loop_close(&d.loop);
	engine_free(d.e);
	store_close(d.st);
	return rc;
}
