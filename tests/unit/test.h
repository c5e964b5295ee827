/*
 * test.h: the smallest useful unit-test harness.
 *
 * A test file defines functions `static void test_x(void)` and a main() that
 * calls TEST(test_x) for each, then returns TEST_END(). A failed CHECK prints
 * file:line and the expression, marks the test failed and goes on, so one run
 * shows every failure. The closing line is "N passed, N failed".
 */
#ifndef STRIGIL_TEST_H
#define STRIGIL_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_checks;
static int test_passed, test_failed;

#define CHECK(expr) do {						\
	if (!(expr)) {							\
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n",		\
		    __FILE__, __LINE__, #expr);				\
		test_failed_checks++;					\
	}								\
} while (0)

#define CHECK_INT(a, b) do {						\
	long long test__a = (long long)(a), test__b = (long long)(b);	\
	if (test__a != test__b) {					\
		fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n",	\
		    __FILE__, __LINE__, #a, test__a, test__b);		\
		test_failed_checks++;					\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *test__a = (a), *test__b = (b);			\
	if (test__a == NULL || test__b == NULL ||			\
	    strcmp(test__a, test__b) != 0) {				\
		fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n",\
		    __FILE__, __LINE__, #a, test__a ? test__a : "(null)",\
		    test__b ? test__b : "(null)");			\
		test_failed_checks++;					\
	}								\
} while (0)

#define TEST(fn) do {							\
	int test__before = test_failed_checks;				\
	if (getenv("TEST_VERBOSE") != NULL)				\
		fprintf(stderr, "RUN %s\n", #fn);			\
	fn();								\
	if (test_failed_checks == test__before) {			\
		test_passed++;						\
	} else {							\
		fprintf(stderr, "FAIL %s\n", #fn);			\
		test_failed++;						\
	}								\
} while (0)

#define TEST_END() (printf("%d passed, %d failed\n", test_passed,	\
    test_failed), test_failed == 0 ? 0 : 1)

/* Writes `text` to the file at `path`; a test cannot go on without it. */
static inline void
test_write_file(const char *path, const char *text)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

#endif
