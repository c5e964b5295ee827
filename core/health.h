/*
 * health.h: the daemon's HTTP endpoints, GET /healthz and GET /metrics.
 *
 * /healthz answers JSON:
 *
 *   {"status":"ok","database":"ok","scheduler":"ok",
 *    "adapters":[{"name":"console","connected":true}],
 *    "protocols":[{"id":"iastm_home","version":3,"error":null}]}
 *
 * with 200 while the database takes a write (in a transaction rolled back;
 * probed at most once a second, so a monitor polling hard costs the
 * patients' events nothing) and the scheduler's timer has woken within 3 x SCHED_MAX_SLEEP_MS, 503
 * ("failing") otherwise. A protocol whose last reload failed makes it
 * "degraded", still 200: its old version runs on, and "error" is "failed
 * to load; see the log" (the log's event=protocol_reload_failed has the
 * file:line cause). /healthz may face a load balancer unauthenticated, so
 * it shows no file system paths. /metrics is metrics_render()'s text and
 * strigil_webhook_refused_total (http_refused_total()). Neither shows
 * patient data.
 */
#ifndef STRIGIL_HEALTH_H
#define STRIGIL_HEALTH_H

#include <stdint.h>

struct engine;
struct http_server;
struct sched;

struct health_adapter {
	const char	*name;
	int		 connected;
};

/* Fills up to `max` adapters and returns how many there are. */
typedef int health_adapters_fn(void *ud, struct health_adapter *out,
    int max);

struct health_source {
	struct engine		*e;
	struct sched		*sched;
	double			 started;	/* Unix seconds */
	health_adapters_fn	*adapters;	/* may be NULL */
	void			*ud;
	struct http_server	*http;		/* set by health_routes() */

	/* The last database probe, kept by health.c. */
	uint64_t		 probe_ns;	/* clock_mono_ns() of it; 0: none */
	int			 probe_ok;
};

/* Registers both routes; `src` must outlive the server. 0 or a uv error. */
int	health_routes(struct http_server *srv, struct health_source *src);

#endif
