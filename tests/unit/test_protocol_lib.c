/*
 * test_protocol_lib.c: require(), a protocol's helper files.
 *
 * A protocol in a mkdtemp folder requires helpers from lib/ beside it:
 * each runs once, what it returns is what require() gives, and every one
 * is kept with the protocol (p->helpers). Bad names, missing files, errors
 * inside a helper and cycles fail the load with the file and line to fix.
 * Loaded from stored texts (an older version), require() finds only the
 * helpers stored with it, whatever the disk holds. A declarative error in
 * a table a helper built names the helper's line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol.h"
#include "test.h"

static char			test_dir[] = "/tmp/strigil-lib-XXXXXX";
static char			lib_dir[64], proto_path[64];
static struct proto_limits	limits = { 32 * 1024 * 1024, 1000000 };

/* The smallest protocol, built by the helper "shape" from a title. */
static const char *shape =
    "local M = {}\n"
    "function M.protocol(title)\n"
    "  return { id = \"lp\", version = 1, title = title,\n"
    "    course = { weeks = 2 }, interval = { min_hours = 48 },\n"
    "    pressure = { levels = { \"light\" } }, steps = { \"Rest.\" } }\n"
    "end\n"
    "return M\n";

static void
write_lib(const char *name, const char *text)
{
	char	path[128];

	snprintf(path, sizeof path, "%s/%s.lua", lib_dir, name);
	test_write_file(path, text);
}

static void
unlink_lib(const char *name)
{
	char	path[128];

	snprintf(path, sizeof path, "%s/%s.lua", lib_dir, name);
	unlink(path);
}

/* Loads `text` as the protocol; the error, or NULL (then *out is set). */
static char *
load(const char *text, struct protocol **out)
{
	char	*cause = NULL;

	test_write_file(proto_path, text);
	*out = NULL;
	if (proto_load(proto_path, &limits, out, &cause) != 0)
		return cause;
	return NULL;
}

/* Expects the load to fail with "<dir>/<file>:<line>: ..." (no line if
 * 0) containing `want`. */
static void
fails_(int srcline, const char *text, const char *file, int line,
    const char *want)
{
	struct protocol	*p;
	char		*cause = load(text, &p), prefix[160];

	if (line > 0)
		snprintf(prefix, sizeof prefix, "%s/%s:%d: ", test_dir, file,
		    line);
	else
		snprintf(prefix, sizeof prefix, "%s/%s: ", test_dir, file);
	if (cause == NULL) {
		fprintf(stderr, "%s:%d: loaded, expected %s...%s\n", __FILE__,
		    srcline, prefix, want);
		test_failed_checks++;
		proto_free(p);
		return;
	}
	if (strncmp(cause, prefix, strlen(prefix)) != 0 ||
	    strstr(cause, want) == NULL) {
		fprintf(stderr, "%s:%d: \"%s\", expected \"%s...%s...\"\n",
		    __FILE__, srcline, cause, prefix, want);
		test_failed_checks++;
	}
	free(cause);
}

#define FAILS(text, file, line, want) \
	fails_(__LINE__, text, file, line, want)

/* ---- tests ------------------------------------------------------------ */

/* Each helper runs once however often it is required; all are kept, in
 * the order first required, with their text. */
static void
test_require(void)
{
	struct protocol	*p;
	char		*cause;

	write_lib("shape", shape);
	write_lib("count", "runs = (runs or 0) + 1\nreturn runs\n");
	write_lib("nothing", "local x = 1\n");
	cause = load("local shape = require(\"shape\")\n"
	    "local a, b = require(\"count\"), require(\"count\")\n"
	    "assert(require(\"nothing\") == true)\n"
	    "assert(require(\"shape\") == shape)\n"
	    "return shape.protocol(\"T\" .. a .. b)\n", &p);
	CHECK(cause == NULL);
	if (cause != NULL) {
		fprintf(stderr, "  %s\n", cause);
		free(cause);
		return;
	}
	CHECK_STR(proto_text_get(&p->title, "en"), "T11");
	CHECK_INT(p->nhelpers, 3);
	if (p->nhelpers == 3) {
		CHECK_STR(p->helpers[0].name, "shape");
		CHECK_STR(p->helpers[0].source, shape);
		CHECK_INT(p->helpers[0].len, strlen(shape));
		CHECK_STR(p->helpers[1].name, "count");
		CHECK_STR(p->helpers[2].name, "nothing");
		CHECK(strstr(p->helpers[1].path, "/lib/count.lua") != NULL);
	}
	proto_free(p);

	/* A protocol that requires nothing keeps no helper. */
	cause = load("return (function(t) return t end){ id = \"lp\","
	    " version = 1, title = \"T\", course = { weeks = 2 },"
	    " interval = { min_hours = 48 }, pressure = { levels = {"
	    " \"light\" } }, steps = { \"Rest.\" } }\n", &p);
	CHECK(cause == NULL);
	free(cause);
	if (p != NULL)
		CHECK_INT(p->nhelpers, 0);
	proto_free(p);
	unlink_lib("count");
	unlink_lib("nothing");
}

/* What cannot be a helper, or fails in one, stops the load and says
 * where. */
static void
test_require_errors(void)
{
	char	want[160];

	FAILS("local x = require(\"../p\")\nreturn {}\n", "p.lua", 1,
	    "require: '../p' is not a helper name");
	FAILS("\nlocal x = require(\"Shape\")\nreturn {}\n", "p.lua", 2,
	    "is not a helper name");
	FAILS("local x = require(\"\")\nreturn {}\n", "p.lua", 1,
	    "is not a helper name");
	FAILS("local x = require(42)\nreturn {}\n", "p.lua", 1,
	    "bad argument #1 to 'require' (string expected, got number)");
	FAILS("local x = require()\nreturn {}\n", "p.lua", 1,
	    "bad argument #1 to 'require'");
	snprintf(want, sizeof want, "require: %s/lib/absent.lua: No such file",
	    test_dir);
	FAILS("local x = require(\"absent\")\nreturn {}\n", "p.lua", 1, want);

	/* An error in a helper names the helper's line. */
	write_lib("broken", "local M = {}\nM.x = nil .. 1\nreturn M\n");
	FAILS("local b = require(\"broken\")\nreturn {}\n", "lib/broken.lua", 2,
	    "attempt to concatenate a nil value");
	write_lib("broken", "local M = {\nreturn M\n");
	FAILS("local b = require(\"broken\")\nreturn {}\n", "lib/broken.lua", 2,
	    "unexpected symbol near 'return'");
	unlink_lib("broken");

	/* A declarative error in a table a helper built names the helper's
	 * line of that field (the protocol file has none). */
	write_lib("badshape", "return { id = \"lp\", version = 1, title = \"T\",\n"
	    "  course = \"six weeks\", interval = { min_hours = 48 },\n"
	    "  pressure = { levels = { \"light\" } }, steps = { \"Rest.\" } }\n");
	FAILS("return require(\"badshape\")\n", "lib/badshape.lua", 2,
	    "course must be a table");
	unlink_lib("badshape");

	/* A cycle is refused where it closes. */
	write_lib("ca", "local b = require(\"cb\")\nreturn { b = b }\n");
	write_lib("cb", "\nlocal a = require(\"ca\")\nreturn { a = a }\n");
	FAILS("local a = require(\"ca\")\nreturn {}\n", "lib/cb.lua", 2,
	    "require: helper 'ca' requires itself (a cycle)");
	unlink_lib("ca");
	unlink_lib("cb");

	/* Helpers are Lua text like the protocol: no bytecode. */
	write_lib("bin", "\033Lua");
	FAILS("local b = require(\"bin\")\nreturn {}\n", "lib/bin.lua", 0,
	    "binary chunks are not allowed");
	unlink_lib("bin");
}

/* At most 32 helpers: the 33rd is refused where it is required. */
static void
test_require_limit(void)
{
	char	name[16], src[33 * 24 + 32] = "";
	int	i;

	for (i = 1; i <= 33; i++) {
		snprintf(name, sizeof name, "h%d", i);
		write_lib(name, "return 1\n");
		snprintf(src + strlen(src), sizeof src - strlen(src),
		    "require(\"%s\")\n", name);
	}
	strcat(src, "return {}\n");
	FAILS(src, "p.lua", 33, "require: more than 32 helpers");
	for (i = 1; i <= 33; i++) {
		snprintf(name, sizeof name, "h%d", i);
		unlink_lib(name);
	}
}

/* The helper runs in the protocol's sandbox, under its budget. */
static void
test_require_sandboxed(void)
{
	write_lib("escape", "return io.open(\"/etc/passwd\")\n");
	FAILS("local e = require(\"escape\")\nreturn {}\n", "lib/escape.lua", 1,
	    "attempt to index a nil value (global 'io')");
	unlink_lib("escape");
	write_lib("spin", "while true do end\n");
	FAILS("local s = require(\"spin\")\nreturn {}\n", "lib/spin.lua", 1,
	    "instruction budget exceeded");
	unlink_lib("spin");
}

/* From stored texts, require() reads the stored helper, never the disk:
 * a patient on an older version runs the helper as it was. */
static void
test_require_stored(void)
{
	struct protocol		*p = NULL;
	struct proto_helper	 h[1];
	const char		*src = "local s = require(\"shape\")\n"
	    "return s.protocol(s.title or \"stored?\")\n";
	char			*cause = NULL, old[512];

	/* On disk, shape.lua has changed since. */
	write_lib("shape", "local M = { title = \"disk\" }\n"
	    "function M.protocol(t) error(\"the disk was read\") end\n"
	    "return M\n");
	/* The stored helper: shape, with a title. */
	snprintf(old, sizeof old, "%.*sM.title = \"stored\"\nreturn M\n",
	    (int)(strlen(shape) - strlen("return M\n")), shape);
	h[0].name = "shape";
	h[0].path = NULL;
	h[0].source = old;
	h[0].len = strlen(old);
	CHECK_INT(proto_load_source(proto_path, 2, src, strlen(src), h, 1,
	    &limits, &p, &cause), 0);
	if (p != NULL) {
		CHECK_STR(proto_text_get(&p->title, "en"), "stored");
		CHECK_INT(p->nhelpers, 1);
		CHECK_STR(p->helpers[0].source, old);
		CHECK(strstr(p->helpers[0].path, "lib/shape.lua#v2") != NULL);
	} else {
		fprintf(stderr, "  %s\n", cause);
	}
	proto_free(p);
	free(cause);
	cause = NULL;

	/* A helper the version did not store is not read from the disk. */
	CHECK_INT(proto_load_source(proto_path, 2, src, strlen(src), NULL, 0,
	    &limits, &p, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "p.lua#v2:1: require: ") != NULL &&
	    strstr(cause, "lib/shape.lua#v2: not stored with this version") !=
	    NULL);
	free(cause);
	unlink_lib("shape");
}

int
main(void)
{
	int	rc;

	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(lib_dir, sizeof lib_dir, "%s/lib", test_dir);
	snprintf(proto_path, sizeof proto_path, "%s/p.lua", test_dir);
	if (mkdir(lib_dir, 0700) != 0) {
		perror(lib_dir);
		return 2;
	}
	TEST(test_require);
	TEST(test_require_errors);
	TEST(test_require_limit);
	TEST(test_require_sandboxed);
	TEST(test_require_stored);
	rc = TEST_END();
	unlink_lib("shape");
	unlink(proto_path);
	rmdir(lib_dir);
	rmdir(test_dir);
	return rc;
}
