/*
 * test_catalog.c: the engine's texts (the real scripts/lang folder and
 * folders written here), rendering parameters, falling back to English.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "test.h"

static char	test_dir[] = "/tmp/strigil-cat-XXXXXX";

static void
write_file(const char *name, const char *text)
{
	char	 path[128];
	FILE	*f;

	snprintf(path, sizeof path, "%s/%s", test_dir, name);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static void
remove_file(const char *name)
{
	char	path[128];

	snprintf(path, sizeof path, "%s/%s", test_dir, name);
	unlink(path);
}

static void
test_real_catalog(void)
{
	struct catalog	*cat = NULL;
	char		*cause = NULL;

	CHECK_INT(catalog_load("scripts/lang", &cat, &cause), 0);
	if (cat == NULL) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		return;
	}
	CHECK(catalog_get(cat, "en", "help") != NULL);
	CHECK(strstr(catalog_get(cat, "en", "help"), "/done") != NULL);
	CHECK(catalog_get(cat, "en", "hint_integer") != NULL);
	CHECK(catalog_get(cat, "en", "holding") != NULL);
	CHECK(catalog_get(cat, "en", "no_such_key_at_all") == NULL);
	/* A language without the key falls back to English. */
	CHECK_STR(catalog_get(cat, "xx", "yes"), catalog_get(cat, "en", "yes"));
	catalog_free(cat);
}

static void
test_fallback(void)
{
	struct catalog	*cat = NULL;
	char		*cause = NULL;

	write_file("en.lua", "return { help = \"Help\", yes = \"Yes\","
	    " only_en = \"English only\" }\n");
	write_file("de.lua", "return { yes = \"Ja\", only_de = \"Nur\" }\n");
	write_file("README", "not a language\n");
	write_file("x1.lua", "return { yes = \"ignored: not a language name\" }\n");
	CHECK_INT(catalog_load(test_dir, &cat, &cause), 0);
	if (cat == NULL) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		return;
	}
	CHECK_STR(catalog_get(cat, "de", "yes"), "Ja");
	CHECK_STR(catalog_get(cat, "en", "yes"), "Yes");
	CHECK_STR(catalog_get(cat, "de", "only_en"), "English only");
	CHECK_STR(catalog_get(cat, "fr", "yes"), "Yes");
	CHECK_STR(catalog_get(cat, "de", "only_de"), "Nur");
	CHECK(catalog_get(cat, "en", "only_de") == NULL);
	catalog_free(cat);
	remove_file("README");
	remove_file("x1.lua");
}

static void
test_load_errors(void)
{
	struct catalog	*cat = NULL;
	char		*cause = NULL, want[128];

	CHECK_INT(catalog_load("/nonexistent/lang", &cat, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "/nonexistent/lang") != NULL);
	free(cause);

	/* English must exist and have help. */
	remove_file("en.lua");
	CHECK_INT(catalog_load(test_dir, &cat, &cause), -1);
	snprintf(want, sizeof want, "%s/en.lua: missing, or has no 'help' text",
	    test_dir);
	CHECK_STR(cause, want);
	free(cause);

	write_file("en.lua", "return { help = 3 }\n");
	CHECK_INT(catalog_load(test_dir, &cat, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "every entry must be") != NULL);
	free(cause);

	write_file("en.lua", "return \"nope\"\n");
	CHECK_INT(catalog_load(test_dir, &cat, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "must return a table") != NULL);
	free(cause);

	write_file("en.lua", "return { help = \n");
	CHECK_INT(catalog_load(test_dir, &cat, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "en.lua:") != NULL);
	free(cause);

	/* Sandboxed: no io. */
	write_file("en.lua", "io.write('x') return { help = \"h\" }\n");
	CHECK_INT(catalog_load(test_dir, &cat, &cause), -1);
	CHECK(cause != NULL);
	free(cause);
	remove_file("en.lua");
	remove_file("de.lua");
}

static void
render_(int line, const char *tmpl, const char *params, const char *want)
{
	char	*got = catalog_render(tmpl, params);

	if (strcmp(got, want) != 0) {
		fprintf(stderr, "%s:%d: \"%s\", expected \"%s\"\n", __FILE__,
		    line, got, want);
		test_failed_checks++;
	}
	free(got);
}

#define RENDER(t, p, w)	render_(__LINE__, t, p, w)

static void
test_render(void)
{
	RENDER("plain", NULL, "plain");
	RENDER("", NULL, "");
	RENDER("Hi {name}!", "{\"name\":\"Ana\"}", "Hi Ana!");
	RENDER("{a}{b}{a}", "{\"a\":\"x\",\"b\":\"y\"}", "xyx");
	RENDER("Day {day} of {days}", "{\"day\":3,\"days\":42}",
	    "Day 3 of 42");
	RENDER("{n}", "{\"n\":2.5}", "2.5");
	RENDER("{b}/{c}", "{\"b\":true,\"c\":false}", "yes/no");
	/* Unknown or missing parameters stay as written. */
	RENDER("Hi {name}, {missing}", "{\"name\":\"Ana\"}",
	    "Hi Ana, {missing}");
	RENDER("Hi {name}", NULL, "Hi {name}");
	RENDER("Hi {name}", "not json", "Hi {name}");
	RENDER("{} and { and }", "{\"\":\"x\"}", "{} and { and }");
	RENDER("{obj}", "{\"obj\":{\"a\":1}}", "{obj}");
	RENDER("{{a}} {a", "{\"a\":\"x\"}", "{x} {a");
	/* A value that looks like a parameter is not expanded again. */
	RENDER("{a}", "{\"a\":\"{b}\",\"b\":\"no\"}", "{b}");
	/* Values longer than the template grow the buffer. */
	{
		char	params[2200], want[2100];

		memset(want, 'z', 2000);
		want[2000] = '\0';
		snprintf(params, sizeof params, "{\"v\":\"%s\"}", want);
		RENDER("{v}", params, want);
	}
}

int
main(void)
{
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	TEST(test_real_catalog);
	TEST(test_fallback);
	TEST(test_load_errors);
	TEST(test_render);
	rmdir(test_dir);
	return TEST_END();
}
