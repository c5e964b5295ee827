/*
 * health.c: GET /healthz and GET /metrics for the daemon's HTTP server.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "engine.h"
#include "health.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "schedule.h"
#include "store.h"
#include "xmalloc.h"

#define HEALTH_ADAPTERS_MAX	8
/* The scheduler is stuck if its timer has not woken for this long. */
#define HEALTH_SCHED_STALE_NS	(3 * (uint64_t)SCHED_MAX_SLEEP_MS * 1000000)
/* A probe takes the write lock; one a second is plenty for a monitor. */
#define HEALTH_PROBE_TTL_NS	1000000000ULL
/* What /healthz says of a protocol whose last reload failed. The cause
 * names the file (path:line) and may quote its code: the log has it, an
 * unauthenticated endpoint does not. */
#define HEALTH_PROTO_FAILED	"failed to load; see the log"

/* Whether the database takes writes, probed at most once a TTL. */
static int
health_db_ok(struct health_source *src)
{
	uint64_t	now = clock_mono_ns();

	if (src->probe_ns == 0 || now - src->probe_ns >= HEALTH_PROBE_TTL_NS) {
		src->probe_ok = store_probe_write(engine_store(src->e)) == 0;
		src->probe_ns = now;
	}
	return src->probe_ok;
}

static void
health_protocols(cJSON *root, struct engine *e, int *failed)
{
	struct engine_proto_status	*ps;
	cJSON				*arr, *o;
	int				 n, i;

	arr = cJSON_AddArrayToObject(root, "protocols");
	n = engine_protocols(e, NULL, 0);
	ps = xcalloc(n > 0 ? (size_t)n : 1, sizeof *ps);
	n = engine_protocols(e, ps, n);
	for (i = 0; i < n; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", ps[i].id);
		cJSON_AddNumberToObject(o, "version", ps[i].version);
		/* No path: file system detail is not the monitor's. */
		if (ps[i].error != NULL) {
			cJSON_AddStringToObject(o, "error", HEALTH_PROTO_FAILED);
			(*failed)++;
		} else
			cJSON_AddNullToObject(o, "error");
		cJSON_AddItemToArray(arr, o);
	}
	free(ps);
}

static void
health_adapters(cJSON *root, const struct health_source *src)
{
	struct health_adapter	 as[HEALTH_ADAPTERS_MAX];
	cJSON			*arr, *o;
	int			 n = 0, i;

	arr = cJSON_AddArrayToObject(root, "adapters");
	if (src->adapters != NULL)
		n = src->adapters(src->ud, as, HEALTH_ADAPTERS_MAX);
	for (i = 0; i < n && i < HEALTH_ADAPTERS_MAX; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", as[i].name);
		cJSON_AddBoolToObject(o, "connected", as[i].connected);
		cJSON_AddItemToArray(arr, o);
	}
}

static int
health_get(const struct http_request *req, struct http_response *res,
    void *ud)
{
	struct health_source		*src = ud;
	cJSON				*root;
	char				*text;
	int				 db_ok, sched_ok, failed = 0;
	uint64_t			 idle;

	(void)req;
	db_ok = health_db_ok(src);
	idle = clock_mono_ns() - sched_last_wake(src->sched);
	sched_ok = idle <= HEALTH_SCHED_STALE_NS;

	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "status", "ok");	/* set below */
	cJSON_AddStringToObject(root, "database", db_ok ? "ok" : "failing");
	cJSON_AddStringToObject(root, "scheduler",
	    sched_ok ? "ok" : "stalled");
	cJSON_AddNumberToObject(root, "scheduler_idle_seconds",
	    (double)(idle / 1000000000));
	health_adapters(root, src);
	health_protocols(root, src->e, &failed);
	if (!db_ok || !sched_ok) {
		cJSON_ReplaceItemInObject(root, "status",
		    cJSON_CreateString("failing"));
		res->status = 503;
		log_warn("event=health_failing database=%s scheduler=%s",
		    db_ok ? "ok" : "failing", sched_ok ? "ok" : "stalled");
	} else if (failed > 0)
		cJSON_ReplaceItemInObject(root, "status",
		    cJSON_CreateString("degraded"));

	if ((text = cJSON_PrintUnformatted(root)) == NULL) {
		cJSON_Delete(root);
		return -1;
	}
	res->content_type = "application/json";
	http_response_header(res, "Cache-Control", "no-store");
	http_response_append(res, text, strlen(text));
	http_response_append(res, "\n", 1);
	cJSON_free(text);
	cJSON_Delete(root);
	return 0;
}

static int
health_metrics(const struct http_request *req, struct http_response *res,
    void *ud)
{
	const struct health_source	*src = ud;
	struct metrics_out		 o;

	(void)req;
	memset(&o, 0, sizeof o);
	if (metrics_render(&o, src->e, clock_now(), src->started) != 0)
		log_warn("event=metrics_incomplete");
	/* The HTTP server's own count, which metrics.c does not see. */
	metrics_family(&o, "strigil_webhook_refused_total", "counter",
	    "POSTs refused: no or a wrong webhook secret, or no such route.");
	metrics_sample(&o, "strigil_webhook_refused_total", NULL,
	    (double)http_refused_total(src->http));
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
	http_response_header(res, "Cache-Control", "no-store");
	http_response_append(res, o.data, o.len);
	free(o.data);
	return 0;
}

int
health_routes(struct http_server *srv, struct health_source *src)
{
	int	rc;

	src->http = srv;
	if ((rc = http_route(srv, "GET", "/healthz", health_get,
	    src)) != 0)
		return rc;
	return http_route(srv, "GET", "/metrics", health_metrics, src);
}
