/*
 * test_metrics.c: the Prometheus text format helpers and the per-adapter
 * counters. The whole /metrics page is tested end to end in
 * tests/e2e/test_http.py.
 */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "test.h"

static void
test_label_escape(void)
{
	struct metrics_out	o = { 0 };

	metrics_label_value(&o, "plain");
	CHECK_STR(o.data, "plain");
	o.len = 0;
	metrics_label_value(&o, "a\\b\"c\nd");
	CHECK_STR(o.data, "a\\\\b\\\"c\\nd");
	o.len = 0;
	metrics_label_value(&o, "\n\n");
	CHECK_STR(o.data, "\\n\\n");
	o.len = 0;
	metrics_label_value(&o, "");
	CHECK_INT(o.len, 0);
	free(o.data);
}

/* The buffer grows past its first allocation without losing text. */
static void
test_growth(void)
{
	struct metrics_out	o = { 0 };
	char			want[16];
	int			i;

	for (i = 0; i < 2000; i++)
		metrics_printf(&o, "%04d\n", i);
	CHECK_INT(o.len, 2000 * 5);
	CHECK_INT(strlen(o.data), 2000 * 5);
	CHECK(strncmp(o.data, "0000\n0001\n", 10) == 0);
	snprintf(want, sizeof want, "%04d\n", 1999);
	CHECK_STR(o.data + o.len - 5, want);
	free(o.data);
}

static void
test_sample(void)
{
	struct metrics_out	o = { 0 };

	metrics_sample(&o, "x_total", NULL, 3);
	metrics_sample(&o, "y", "a=\"b\"", 0.5);
	metrics_sample(&o, "z", "", 1e300);
	CHECK_STR(o.data, "x_total 3\ny{a=\"b\"} 0.5\nz 1.0000000000000001e+300\n");
	free(o.data);
}

static void
test_adapter_counters(void)
{
	metrics_reset();
	CHECK_INT(metrics_adapter_get("telegram", METRICS_SENT), 0);
	metrics_adapter_count("telegram", METRICS_SENT, 2);
	metrics_adapter_count("telegram", METRICS_SENT, 1);
	metrics_adapter_count("matrix", METRICS_RATE_LIMITED, 1);
	CHECK_INT(metrics_adapter_get("telegram", METRICS_SENT), 3);
	CHECK_INT(metrics_adapter_get("telegram", METRICS_RETRIES), 0);
	CHECK_INT(metrics_adapter_get("matrix", METRICS_RATE_LIMITED), 1);
	metrics_reset();
	CHECK_INT(metrics_adapter_get("telegram", METRICS_SENT), 0);
}

int
main(void)
{
	TEST(test_label_escape);
	TEST(test_growth);
	TEST(test_sample);
	TEST(test_adapter_counters);
	return TEST_END();
}
