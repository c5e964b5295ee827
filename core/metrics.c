/*
 * metrics.c: Prometheus text exposition (format 0.0.4) of Strigil's numbers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "metrics.h"
#include "store.h"
#include "xmalloc.h"

struct metrics_adapter {
	char		name[32];
	uint64_t	counts[METRICS_NCOUNTERS];
};

/* The adapters seen so far; the loop's thread only. */
static struct metrics_adapter	metrics_adapters[METRICS_ADAPTERS_MAX];
static int			metrics_nadapters;

static struct metrics_adapter *
metrics_find(const char *adapter, int add)
{
	int	i;

	for (i = 0; i < metrics_nadapters; i++) {
		if (strcmp(metrics_adapters[i].name, adapter) == 0)
			return &metrics_adapters[i];
	}
	if (!add || metrics_nadapters == METRICS_ADAPTERS_MAX)
		return NULL;
	snprintf(metrics_adapters[i].name, sizeof metrics_adapters[i].name,
	    "%s", adapter);
	memset(metrics_adapters[i].counts, 0,
	    sizeof metrics_adapters[i].counts);
	metrics_nadapters++;
	return &metrics_adapters[i];
}

void
metrics_adapter_register(const char *adapter)
{
	metrics_find(adapter, 1);
}

void
metrics_adapter_count(const char *adapter, enum metrics_counter which,
    uint64_t n)
{
	struct metrics_adapter	*a = metrics_find(adapter, 1);

	if (a != NULL && which < METRICS_NCOUNTERS)
		a->counts[which] += n;
}

uint64_t
metrics_adapter_get(const char *adapter, enum metrics_counter which)
{
	struct metrics_adapter	*a = metrics_find(adapter, 0);

	return a != NULL && which < METRICS_NCOUNTERS ? a->counts[which] : 0;
}

void
metrics_reset(void)
{
	metrics_nadapters = 0;
}

/* ---- the text format ---------------------------------------------- */

/* Makes room for `n` more bytes and the terminating NUL. */
static void
metrics_reserve(struct metrics_out *o, size_t n)
{
	size_t	need = o->len + n + 1;

	if (need <= o->cap)
		return;
	o->cap = o->cap == 0 ? 4096 : o->cap;
	while (o->cap < need)
		o->cap *= 2;
	o->data = xrealloc(o->data, o->cap);
}

static void
metrics_append(struct metrics_out *o, const char *s, size_t n)
{
	metrics_reserve(o, n);
	memcpy(o->data + o->len, s, n);
	o->len += n;
	o->data[o->len] = '\0';
}

void
metrics_printf(struct metrics_out *o, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	metrics_reserve(o, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(o->data + o->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	o->len += (size_t)n;
}

void
metrics_family(struct metrics_out *o, const char *name, const char *type,
    const char *help)
{
	metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* Integers print as integers; the rest with enough digits to round-trip. */
static void
metrics_number(struct metrics_out *o, double v)
{
	if (v >= -9007199254740992.0 && v <= 9007199254740992.0 &&
	    v == (double)(int64_t)v)
		metrics_printf(o, "%lld", (long long)v);
	else
		metrics_printf(o, "%.17g", v);
}

void
metrics_sample(struct metrics_out *o, const char *name, const char *labels,
    double value)
{
	if (labels != NULL && *labels != '\0')
		metrics_printf(o, "%s{%s} ", name, labels);
	else
		metrics_printf(o, "%s ", name);
	metrics_number(o, value);
	metrics_printf(o, "\n");
}

/* Escapes \\, " and newline; copies the runs between them whole. */
void
metrics_label_value(struct metrics_out *o, const char *s)
{
	size_t	run;

	for (;;) {
		run = strcspn(s, "\\\"\n");
		metrics_append(o, s, run);
		s += run;
		if (*s == '\0')
			return;
		metrics_append(o, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" :
		    "\\\\", 2);
		s++;
	}
}

void
metrics_histogram(struct metrics_out *o, const char *name, const char *help,
    const double *bounds, const uint64_t *counts, int n, double sum)
{
	uint64_t	cum = 0;
	int		i;

	metrics_family(o, name, "histogram", help);
	for (i = 0; i < n; i++) {
		cum += counts[i];
		metrics_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name,
		    bounds[i], (unsigned long long)cum);
	}
	cum += counts[n];
	metrics_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)cum);
	metrics_printf(o, "%s_sum ", name);
	metrics_number(o, sum);
	metrics_printf(o, "\n%s_count %llu\n", name, (unsigned long long)cum);
}

/* ---- Strigil's metrics -------------------------------------------- */

static void
metrics_counter1(struct metrics_out *o, const char *name, const char *help,
    uint64_t v)
{
	metrics_family(o, name, "counter", help);
	metrics_sample(o, name, NULL, (double)v);
}

static void
metrics_gauge1(struct metrics_out *o, const char *name, const char *help,
    double v)
{
	metrics_family(o, name, "gauge", help);
	metrics_sample(o, name, NULL, v);
}

static void
metrics_per_adapter(struct metrics_out *o, const char *name,
    const char *help, enum metrics_counter which)
{
	struct metrics_adapter	*a;
	int			 i;

	metrics_family(o, name, "counter", help);
	for (i = 0; i < metrics_nadapters; i++) {
		a = &metrics_adapters[i];
		metrics_printf(o, "%s{adapter=\"", name);
		metrics_label_value(o, a->name);
		metrics_printf(o, "\"} %llu\n",
		    (unsigned long long)a->counts[which]);
	}
}

static void
metrics_protocols(struct metrics_out *o, struct engine *e)
{
	struct engine_proto_status	*ps;
	int				 n, i, failed = 0;

	n = engine_protocols(e, NULL, 0);
	ps = xcalloc(n > 0 ? (size_t)n : 1, sizeof *ps);
	n = engine_protocols(e, ps, n);
	for (i = 0; i < n; i++)
		failed += ps[i].error != NULL;
	free(ps);
	metrics_gauge1(o, "strigil_protocols_loaded",
	    "Protocols loaded and in use.", n);
	metrics_gauge1(o, "strigil_protocol_reload_failures",
	    "Protocols whose last reload failed (the old version runs on).",
	    failed);
}

/* A gauge read from the store; NaN (and *failed) if the read failed. */
static void
metrics_store_gauge(struct metrics_out *o, const char *name,
    const char *help, int rc, const int64_t *v, int *failed)
{
	metrics_family(o, name, "gauge", help);
	if (rc != 0) {
		*failed = 1;
		metrics_printf(o, "%s NaN\n", name);
	} else
		metrics_sample(o, name, NULL, (double)*v);
}

int
metrics_render(struct metrics_out *o, struct engine *e, int64_t now,
    double started)
{
	const struct engine_stats	*st = engine_stats(e);
	struct store			*s = engine_store(e);
	int64_t				 v = 0;
	int				 rc, failed = 0;

	metrics_family(o, "strigil_build_info", "gauge",
	    "The running version, as a label.");
	metrics_printf(o, "strigil_build_info{version=\"%s\"} 1\n",
	    STRIGIL_VERSION);
	metrics_gauge1(o, "process_start_time_seconds",
	    "When the daemon started, in Unix seconds.", started);

	metrics_counter1(o, "strigil_updates_received_total",
	    "Messages from patients handled by the engine.", st->inbound);
	metrics_counter1(o, "strigil_duplicates_total",
	    "Messages received again and ignored.", st->duplicates);
	metrics_per_adapter(o, "strigil_messages_sent_total",
	    "Messages delivered and marked sent.", METRICS_SENT);
	metrics_per_adapter(o, "strigil_retries_total",
	    "Deliveries put off to try again.", METRICS_RETRIES);
	metrics_per_adapter(o, "strigil_rate_limited_total",
	    "Deliveries refused by the chat service with 429.",
	    METRICS_RATE_LIMITED);

	/* rc first: arguments are evaluated in no set order. */
	rc = store_outbox_depth(s, &v);
	metrics_store_gauge(o, "strigil_outbox_depth",
	    "Messages waiting to be delivered.", rc, &v, &failed);
	rc = store_job_count(s, &v);
	metrics_store_gauge(o, "strigil_jobs_pending",
	    "Scheduled jobs not yet run.", rc, &v, &failed);
	rc = store_job_due_count(s, now, &v);
	metrics_store_gauge(o, "strigil_jobs_due",
	    "Pending jobs whose time has come.", rc, &v, &failed);
	metrics_counter1(o, "strigil_jobs_run_total", "Jobs run.", st->jobs);

	metrics_counter1(o, "strigil_lua_calls_total",
	    "Protocol handler calls.", st->lua_calls);
	metrics_counter1(o, "strigil_lua_errors_total",
	    "Protocol handler calls that failed.", st->lua_errors);
	metrics_family(o, "strigil_lua_limit_hits_total", "counter",
	    "Handler calls stopped by a sandbox limit.");
	metrics_sample(o, "strigil_lua_limit_hits_total", "limit=\"memory\"",
	    (double)st->lua_memory_limits);
	metrics_sample(o, "strigil_lua_limit_hits_total",
	    "limit=\"instructions\"", (double)st->lua_budget_limits);
	metrics_histogram(o, "strigil_protocol_eval_seconds",
	    "Time spent in protocol handlers, per call.", engine_eval_bounds,
	    st->eval_buckets, ENGINE_EVAL_BUCKETS, st->eval_seconds);
	metrics_protocols(o, e);
	return failed ? -1 : 0;
}
