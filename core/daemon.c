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
#include "health.h"
#include "http.h"
#include "log.h"
#include "schedule.h"
#include "store.h"
#include "telegram/telegram.h"
#include "matrix/matrix.h"
#include "xmalloc.h"

/* Editors write a file in several steps: reload once it is quiet. */
#define DAEMON_WATCH_MS	300

struct daemon {
	uv_loop_t	 loop;
	uv_signal_t	 sigint, sigterm, sighup;
	int		 nsignals;	/* how many of them are initialised */
	uv_fs_event_t	 watch;		/* the protocols folder (run only) */
	uv_fs_event_t	 watch_lib;	/* its helper files, lib/ */
	int		 lib_init;	/* watch_lib is initialised */
	int		 lib_watched;	/* and started */
	char		 lib_dir[1024];
	uv_timer_t	 watch_timer;	/* debounce */
	const char	*watch_dir;	/* NULL when not watching */
	struct store	*st;
	struct engine	*e;
	struct sched	*sched;
	struct console	*console;
	struct telegram	*tg;		/* NULL without telegram.token */
	struct matrix	*mx;		/* NULL without matrix.homeserver */
	struct http_server *http;	/* NULL when not serving */
	struct health_source health;
	int		 stopping;
};

static int
daemon_after_jobs(void *ud)
{
	struct daemon	*d = ud;

	if (d->console != NULL)
		console_flush(d->console);
	if (d->tg != NULL)
		tg_flush(d->tg);
	if (d->mx != NULL)
		mx_flush(d->mx);
	return 0;
}

/* The signal handles in the order daemon_signals() sets them up. */
static uv_signal_t *
daemon_signal_handle(struct daemon *d, int i)
{
	uv_signal_t	*hs[] = { &d->sigint, &d->sigterm, &d->sighup };

	return hs[i];
}

static void
daemon_stop(struct daemon *d, const char *why)
{
	int	i;

	if (d->stopping)
		return;
	d->stopping = 1;
	log_info("event=stopping reason=%s", why);
	if (d->console != NULL) {
		console_close(d->console);
		d->console = NULL;
	}
	if (d->tg != NULL) {
		tg_close(d->tg);
		d->tg = NULL;
	}
	if (d->mx != NULL) {
		mx_close(d->mx);
		d->mx = NULL;
	}
	if (d->http != NULL) {
		http_close(d->http);
		d->http = NULL;
	}
	sched_close(d->sched);
	/* Only the handles daemon_signals() initialised: libuv aborts on
	 * closing one it never saw. */
	for (i = 0; i < d->nsignals; i++)
		uv_close((uv_handle_t *)daemon_signal_handle(d, i), NULL);
	d->nsignals = 0;
	if (d->lib_init) {
		uv_close((uv_handle_t *)&d->watch_lib, NULL);
		d->lib_init = d->lib_watched = 0;
	}
	if (d->watch_dir != NULL) {
		uv_close((uv_handle_t *)&d->watch, NULL);
		uv_close((uv_handle_t *)&d->watch_timer, NULL);
		d->watch_dir = NULL;
	}
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

	/* Beside Telegram or Matrix the console's end is only its own;
	 * alone, its end is the daemon's. */
	if (d->tg != NULL || d->mx != NULL) {
		console_close(d->console);
		d->console = NULL;
		return;
	}
	daemon_stop(d, "end_of_input");
}

static int
daemon_signals(struct daemon *d)
{
	int	sigs[] = { SIGINT, SIGTERM, SIGHUP }, i, rc;

	for (i = 0; i < 3; i++) {
		if ((rc = uv_signal_init(&d->loop,
		    daemon_signal_handle(d, i))) != 0)
			return rc;
		d->nsignals++;
		daemon_signal_handle(d, i)->data = d;
		if ((rc = uv_signal_start(daemon_signal_handle(d, i),
		    daemon_signal, sigs[i])) != 0)
			return rc;
	}
	return 0;
}

/* The protocols folder went quiet: reload what changed, load what is new. */
static void
daemon_watch_fire(uv_timer_t *t)
{
	struct daemon	*d = t->data;

	if (d->stopping || d->watch_dir == NULL)
		return;
	engine_rescan(d->e, d->watch_dir, clock_now());
	sched_kick(d->sched);
}

static void	daemon_watch_lib(struct daemon *);

static void
daemon_watch_event(uv_fs_event_t *h, const char *name, int events,
    int status)
{
	struct daemon	*d = h->data;

	(void)events;
	if (status < 0) {
		log_warn("event=watch_error path=%s error=%s",
		    log_q(d->watch_dir), log_q(uv_strerror(status)));
		return;
	}
	/*
	 * Any change rescans, whatever its name: the rescan compares each
	 * *.lua file's size, time and inode, so an editor's swap file costs
	 * one cheap pass, while a change that names no protocol file (a
	 * Kubernetes ConfigMap swaps a "..data" symlink; some editors
	 * rename a temporary into place) is still seen.
	 */
	uv_timer_start(&d->watch_timer, daemon_watch_fire, DAEMON_WATCH_MS, 0);
	/* lib/ made, or made anew, after the start: watched from now. */
	if (h == &d->watch && name != NULL && strcmp(name, "lib") == 0)
		daemon_watch_lib(d);
}

/*
 * (Re)starts the watch of the protocols' helper files, lib/ (inotify does
 * not see into a subfolder). Called at the start and whenever an entry
 * named "lib" changes in the folder, so a lib/ made (or removed and made
 * again) later is watched too; without one, nothing is watched and
 * nothing said.
 */
static void
daemon_watch_lib(struct daemon *d)
{
	int	rc;

	if (!d->lib_init)
		return;
	if (d->lib_watched)
		uv_fs_event_stop(&d->watch_lib);
	d->lib_watched = 0;
	rc = uv_fs_event_start(&d->watch_lib, daemon_watch_event, d->lib_dir,
	    0);
	if (rc != 0) {
		if (rc != UV_ENOENT && rc != UV_ENOTDIR)
			log_warn("event=watch_failed path=%s error=%s",
			    log_q(d->lib_dir), log_q(uv_strerror(rc)));
		return;
	}
	d->lib_watched = 1;
	log_info("event=watching path=%s", log_q(d->lib_dir));
}

/* Watches the protocols folder; without it (say, no inotify) SIGHUP still
 * reloads, so a failure is only logged. */
static void
daemon_watch(struct daemon *d, const char *dir)
{
	int	rc;

	if ((rc = uv_timer_init(&d->loop, &d->watch_timer)) != 0)
		goto fail;
	d->watch_timer.data = d;
	if ((rc = uv_fs_event_init(&d->loop, &d->watch)) != 0) {
		uv_close((uv_handle_t *)&d->watch_timer, NULL);
		goto fail;
	}
	d->watch.data = d;
	d->watch_dir = dir;
	if ((rc = uv_fs_event_start(&d->watch, daemon_watch_event, dir,
	    0)) != 0) {
		uv_close((uv_handle_t *)&d->watch, NULL);
		uv_close((uv_handle_t *)&d->watch_timer, NULL);
		d->watch_dir = NULL;
		goto fail;
	}
	log_info("event=watching path=%s", log_q(dir));
	if ((size_t)snprintf(d->lib_dir, sizeof d->lib_dir, "%s/lib", dir) <
	    sizeof d->lib_dir && uv_fs_event_init(&d->loop, &d->watch_lib) == 0) {
		d->watch_lib.data = d;
		d->lib_init = 1;
		daemon_watch_lib(d);
	}
	return;
fail:
	log_warn("event=watch_failed path=%s error=%s", log_q(dir),
	    log_q(uv_strerror(rc)));
}

static int
daemon_adapters(void *ud, struct health_adapter *out, int max)
{
	struct daemon	*d = ud;
	int		 n = 0;

	if (d->console != NULL && n < max) {
		out[n].name = "console";
		out[n++].connected = 1;	/* its end is the daemon's */
	}
	if (d->tg != NULL && n < max) {
		out[n].name = "telegram";
		out[n++].connected = tg_connected(d->tg);
	}
	if (d->mx != NULL && n < max) {
		out[n].name = "matrix";
		out[n++].connected = mx_connected(d->mx);
	}
	return n;
}

/*
 * test_clock (tests only): `run` keeps a virtual clock, and POST
 * /test/wait?seconds=N moves it on, running each job at its own due time
 * like the console's /wait. The time reached is kept in kv "test.clock",
 * so a restarted daemon goes on from there, never back.
 */
#define DAEMON_TEST_CLOCK_KEY	"test.clock"

static int
daemon_test_wait(const struct http_request *req, struct http_response *res,
    void *ud)
{
	struct daemon	*d = ud;
	char		*end, v[32];
	long long	 s = -1;
	int		 n;

	if (strncmp(req->query, "seconds=", 8) == 0)
		s = strtoll(req->query + 8, &end, 10);
	if (s < 0 || s > 366LL * 86400 || *end != '\0') {
		res->status = 400;
		http_response_printf(res, "seconds=N (0 to a year)\n");
		return 0;
	}
	n = sched_run_until(d->e, clock_now() + s, daemon_after_jobs, d);
	snprintf(v, sizeof v, "%lld", (long long)clock_now());
	if (n < 0 || store_kv_set(d->st, DAEMON_TEST_CLOCK_KEY, v,
	    clock_now()) != 0)
		return -1;
	daemon_after_jobs(d);
	sched_kick(d->sched);
	res->content_type = "application/json";
	http_response_printf(res, "{\"now\":%s,\"jobs\":%d}\n", v, n);
	return 0;
}

/* Goes on from the virtual time a test reached before a restart. */
static void
daemon_test_clock(struct daemon *d)
{
	char	*v = NULL;
	int64_t	 t;

	if (store_kv_get(d->st, DAEMON_TEST_CLOCK_KEY, &v) == 0) {
		t = strtoll(v, NULL, 10);
		if (t > clock_now())
			clock_advance(t - clock_now());
	}
	free(v);
	log_warn("event=test_clock hint=%s", log_q("virtual time: for tests "
	    "only (POST /test/wait?seconds=N)"));
}

/*
 * Serves /healthz and /metrics. An address that is not one, or a port we
 * cannot have (taken, say), stops the start with a clear message: a daemon
 * running without the endpoints its health check and monitoring expect
 * would fail later and less clearly. (Tests ask for port 0: any free one.)
 */
static int
daemon_http(struct daemon *d, const struct config *cfg, char **cause)
{
	struct sockaddr_in	sa4;
	struct sockaddr_in6	sa6;
	int			rc;

	if (uv_ip4_addr(cfg->http_listen, 0, &sa4) != 0 &&
	    uv_ip6_addr(cfg->http_listen, 0, &sa6) != 0) {
		*cause = xasprintf("http.listen: \"%s\" is not an IP address",
		    cfg->http_listen);
		return -1;
	}
	d->health.e = d->e;
	d->health.sched = d->sched;
	d->health.started = (double)clock_now_ms() / 1000;
	d->health.adapters = daemon_adapters;
	d->health.ud = d;
	if ((rc = http_new(&d->http, &d->loop, NULL)) != 0) {
		d->http = NULL;
		goto fail;
	}
	if ((rc = health_routes(d->http, &d->health)) != 0 ||
	    (d->tg != NULL && (rc = tg_routes(d->tg, d->http)) != 0) ||
	    (cfg->test_clock && (rc = http_route(d->http, "POST",
	    "/test/wait", daemon_test_wait, d)) != 0) ||
	    (rc = http_listen(d->http, cfg->http_listen,
	    (int)cfg->http_port)) != 0) {
		http_close(d->http);
		d->http = NULL;
		goto fail;
	}
	return 0;
fail:
	*cause = xasprintf("http: cannot listen on %s port %d: %s (set "
	    "http.port, or http.enabled = false)", cfg->http_listen,
	    (int)cfg->http_port, uv_strerror(rc));
	return -1;
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
	clock_init(o->chat || o->cfg->test_clock ? CLOCK_OFFSET : CLOCK_REAL,
	    o->start);
	if (uv_loop_init(&d.loop) != 0) {
		fprintf(stderr, "strigil: cannot start the event loop\n");
		return 1;
	}
	if (daemon_open(&d, o, &cause) != 0)
		goto out;
	if (!o->chat && o->cfg->test_clock)
		daemon_test_clock(&d);
	if (sched_new(&d.sched, &d.loop, d.e, daemon_after_jobs, &d) != 0 ||
	    daemon_signals(&d) != 0) {
		cause = xstrdup("cannot set up timers and signals");
		goto out;
	}
	/* `run` reloads a protocol file when it changes; `chat` does not. */
	if (!o->chat && o->protocol == NULL)
		daemon_watch(&d, o->cfg->protocols);
	if (o->chat || o->cfg->console) {
		if (o->chat)
			daemon_banner();
		if (console_new(&d.console, &d.loop, d.e, d.sched, o->chat,
		    daemon_console_eof, &d, &cause) != 0)
			goto out;
		console_flush(d.console);
	}
	if (!o->chat && o->cfg->tg_token[0] != '\0') {
		if (tg_new(&d.tg, &d.loop, d.e, d.sched, o->cfg, &cause) != 0)
			goto out;
		/* What a crash left unsent goes out now. */
		tg_flush(d.tg);
	}
	if (!o->chat && o->cfg->mx_homeserver[0] != '\0') {
		if (mx_new(&d.mx, &d.loop, d.e, d.sched, o->cfg, &cause) != 0)
			goto out;
		/* Unsent rows go once the session is there. */
		mx_flush(d.mx);
	}
	if (!o->chat && o->cfg->http_enabled &&
	    daemon_http(&d, o->cfg, &cause) != 0)
		goto out;
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
