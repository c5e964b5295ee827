/*
 * metrics.h: the daemon's numbers in Prometheus text format (GET /metrics).
 *
 * Most of what /metrics shows is read when it is asked for: the engine's
 * statistics (engine_stats), the loaded protocols, and counts from the
 * store (outbox depth, pending and due jobs). Adapters count what only
 * they see (messages marked sent, retries, HTTP 429s) with
 * metrics_adapter_count(), kept here per adapter name. Like everything
 * else this runs on the loop's thread only.
 *
 * No metric carries patient data: labels are adapter names and limit
 * kinds.
 */
#ifndef STRIGIL_METRICS_H
#define STRIGIL_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct engine;

enum metrics_counter {
	METRICS_SENT,		/* outbox rows marked sent */
	METRICS_RETRIES,	/* deliveries put off to try again */
	METRICS_RATE_LIMITED,	/* the chat service answered 429 */
	METRICS_NCOUNTERS
};

#define METRICS_ADAPTERS_MAX	8

/* Makes an adapter's counters show (at 0) before it counts anything. */
void	metrics_adapter_register(const char *adapter);
/* Adds n to one of an adapter's counters (registering the adapter). */
void	metrics_adapter_count(const char *adapter, enum metrics_counter which,
	    uint64_t n);
/* The counter's value, 0 for an adapter never seen. */
uint64_t metrics_adapter_get(const char *adapter, enum metrics_counter which);
/* Forgets every adapter (tests). */
void	metrics_reset(void);

/* A growing text buffer for the exposition. */
struct metrics_out {
	char	*data;			/* owned; NUL-terminated */
	size_t	 len, cap;
};

void	metrics_printf(struct metrics_out *o, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void	metrics_family(struct metrics_out *o, const char *name,
	    const char *type, const char *help);
/* "name{labels} value"; labels may be NULL or "" (already escaped). */
void	metrics_sample(struct metrics_out *o, const char *name,
	    const char *labels, double value);
/* A whole histogram family: per-bucket counts (not cumulative; n bounds,
 * then +Inf at counts[n]) and the sum. */
void	metrics_histogram(struct metrics_out *o, const char *name,
	    const char *help, const double *bounds, const uint64_t *counts,
	    int n, double sum);
/* Writes `s` escaped as a label value (backslash, quote, newline). */
void	metrics_label_value(struct metrics_out *o, const char *s);

/* Renders every Strigil metric into `o`. `now` is clock_now(); `started`
 * is when the daemon started, in Unix seconds. 0, or -1 if the database
 * failed (what could be read is rendered). */
int	metrics_render(struct metrics_out *o, struct engine *e, int64_t now,
	    double started);

#endif
