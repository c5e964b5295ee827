/*
 * test_protocol.c: loading protocol files (the declarative parts and their
 * errors, which must name file:line) and calling handlers (the actions they
 * record, their option checks, ctx.state, and failure leaving nothing).
 *
 * Protocols are written to a mkdtemp folder at run time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "catalog.h"
#include "protocol.h"
#include "test.h"

static char			test_dir[] = "/tmp/strigil-proto-XXXXXX";
static char			test_path[64];
static struct proto_limits	limits = { 32 * 1024 * 1024, 1000000 };
static struct catalog		*cat;

#define T0	INT64_C(1772352000)	/* 2026-03-01T08:00:00Z */

/*
 * A valid protocol. Its message handler does what ev.text says, so one file
 * exercises every ctx function; session_due and answered test the rest.
 */
static const char *valid =
    "-- a test protocol\n"
    "return {\n"
    "  id = \"tp\", version = 3,\n"
    "  title = { en = \"Test\", de = \"Prüfung\" },\n"
    "  course = { weeks = 6 },\n"
    "  interval = { min_hours = 48, target_hours = 60 },\n"
    "  pressure = { levels = { \"light\", \"moderate\", \"firm\" },"
    " start = \"moderate\" },\n"
    "  questionnaires = {\n"
    "    checkin = {\n"
    "      { id = \"soreness\", type = \"integer\", min = 0, max = 10,"
    " text = \"Soreness?\" },\n"
    "      { id = \"redness\", type = \"yesno\", text = \"Redness?\" },\n"
    "      { id = \"bruise\", type = \"choice\", text = \"Bruising?\",\n"
    "        options = { { id = \"none\", text = \"None\" },"
    " { id = \"some\", text = { en = \"Some\", de = \"Etwas\" } } } },\n"
    "      { id = \"notes\", type = \"text\", text = \"Notes?\","
    " clear = \"nothing\" },\n"
    "    },\n"
    "    screening = {\n"
    "      { id = \"thinners\", type = \"yesno\", text = \"Thinners?\","
    " clear = false },\n"
    "    },\n"
    "  },\n"
    "  steps = { \"Apply oil.\", { en = \"Glide.\", de = \"Gleiten.\" } },\n"
    "  messages = { en = { great = \"Great, {name}!\" },"
    " de = { great = \"Toll, {name}!\" } },\n"
    "  on = {\n"
    "    message = function(ctx, ev)\n"
    "      local t = ev.text\n"
    "      if t == \"schedule\" then\n"
    "        ctx.schedule{ days = 1, hours = 2, minutes = 3, at = \"07:30\","
    " from = \"session\" }\n"
    "      elseif t == \"schedule_default\" then\n"
    "        ctx.schedule()\n"
    "      elseif t == \"schedule_exact\" then\n"
    "        ctx.schedule{ hours = 1, at = \"exact\", from = \"now\" }\n"
    "      elseif t == \"ask\" then\n"
    "        ctx.ask(\"checkin\", { hours = 24 })\n"
    "        ctx.ask(\"screening\")\n"
    "      elseif t == \"say\" then\n"
    "        ctx.say(\"great\", { name = \"Ana\", n = 2 })\n"
    "        ctx.say(\"help\")\n"
    "      elseif t == \"postpone\" then\n"
    "        ctx.postpone{ hours = 24, reason = \"soreness\","
    " ask = \"checkin\" }\n"
    "        ctx.postpone{ days = 2, reason = \"tired\" }\n"
    "      elseif t == \"pressure\" then\n"
    "        assert(ctx.set_pressure(\"moderate\") == \"moderate\")\n"
    "        assert(ctx.step_pressure(-1) == \"light\")\n"
    "        assert(ctx.step_pressure(-5) == \"light\")\n"
    "        assert(ctx.step_pressure(9) == \"firm\")\n"
    "      elseif t == \"end\" then\n"
    "        ctx.pause{ reason = \"bleeding\" }\n"
    "        ctx.escalate{ reason = \"call them\" }\n"
    "        ctx.finish{ reason = \"done\" }\n"
    "      elseif t == \"ctx\" then\n"
    "        ctx.state.seen = { now = ctx.now, day = ctx.day,"
    " level = ctx.level, pressure = ctx.pressure, status = ctx.status,\n"
    "          tz = ctx.timezone, lang = ctx.language,"
    " done = ctx.sessions_done, days = ctx.course_days,\n"
    "          hours = ctx.hours_since_session, ev = ev.name }\n"
    "      elseif t == \"meta\" then\n"
    "        ctx.state.mt = getmetatable(ctx)\n"
    "        ctx.state.set = pcall(setmetatable, ctx, {})\n"
    "        ctx.schedule = function() end\n"
    "      elseif t == \"count\" then\n"
    "        ctx.state.count = (ctx.state.count or 0) + 1\n"
    "        ctx.state.list = ctx.state.list or {}\n"
    "        ctx.state.list[#ctx.state.list + 1] = ctx.state.count\n"
    "      elseif t == \"many\" then\n"
    "        for i = 1, 100 do ctx.say(\"great\") end\n"
    "      elseif t == \"loop\" then\n"
    "        ctx.say(\"great\")\n"
    "        while true do end\n"
    "      elseif t == \"badstate\" then\n"
    "        ctx.state.f = function() end\n"
    "      elseif t == \"fail\" then\n"
    "        ctx.say(\"great\")\n"
    "        ctx.state.touched = true\n"
    "        error(\"boom\")\n"
    "      end\n"
    "    end,\n"
    "    answered = function(ctx, ev)\n"
    "      ctx.state.q = ev.questionnaire\n"
    "      ctx.state.s = ev.answers.soreness\n"
    "      ctx.state.r = ev.answers.redness\n"
    "      if ev.answers.soreness > 2 then\n"
    "        ctx.postpone{ hours = 24, reason = \"soreness\","
    " ask = \"checkin\" }\n"
    "      end\n"
    "    end,\n"
    "    session_due = function(ctx, ev)\n"
    "      ctx.state.session = ev.session\n"
    "    end,\n"
    "  },\n"
    "}\n";

/* Option errors, one handler call each, on their own known lines. */
static const char *bad_calls =
    "return {\n"
    "  id = \"bc\", version = 1, title = \"B\", course = { days = 10 },\n"
    "  interval = { min_hours = 24 },\n"
    "  pressure = { levels = { \"light\" } },\n"
    "  questionnaires = { checkin = { { id = \"x\", type = \"yesno\","
    " text = \"X?\" } } },\n"
    "  steps = { \"s\" },\n"
    "  on = { message = function(ctx, ev)\n"
    "    local t = ev.text\n"
    "    if t == \"hour\" then ctx.schedule{ hour = 1 }\n"		/* 9 */
    "    elseif t == \"neg\" then ctx.schedule{ hours = -1 }\n"	/* 10 */
    "    elseif t == \"str\" then ctx.schedule{ hours = \"x\" }\n"	/* 11 */
    "    elseif t == \"year\" then ctx.schedule{ days = 400 }\n"	/* 12 */
    "    elseif t == \"at\" then ctx.schedule{ at = \"25:00\" }\n"	/* 13 */
    "    elseif t == \"from\" then ctx.schedule{ from = \"later\" }\n"	/* 14 */
    "    elseif t == \"ask\" then ctx.ask(\"nope\")\n"		/* 15 */
    "    elseif t == \"say\" then ctx.say(\"no_such_key\")\n"	/* 16 */
    "    elseif t == \"reason\" then ctx.pause{}\n"			/* 17 */
    "    elseif t == \"howlong\" then ctx.postpone{ reason = \"r\" }\n" /* 18 */
    "    elseif t == \"pask\" then ctx.postpone{ hours = 1, reason = \"r\","
    " ask = \"nope\" }\n"						/* 19 */
    "    elseif t == \"level\" then ctx.set_pressure(\"heavy\")\n"	/* 20 */
    "    elseif t == \"emptyr\" then ctx.finish{ reason = \"\" }\n"	/* 21 */
    "    elseif t == \"esc\" then ctx.escalate{ reason = \"r\", x = 1 }\n" /* 22 */
    "    elseif t == \"tbl\" then ctx.schedule(5)\n"			/* 23 */
    "    elseif t == \"sayp\" then ctx.say(\"help\", { f = ctx.say })\n"	/* 24 */
    "    elseif t == \"nan\" then ctx.postpone{ hours = 0/0, reason = \"r\" }\n" /* 25 */
    "    end\n"
    "  end },\n"
    "}\n";

static const char *
write_proto(const char *text)
{
	FILE	*f;

	snprintf(test_path, sizeof test_path, "%s/p.lua", test_dir);
	if ((f = fopen(test_path, "w")) == NULL) {
		perror(test_path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	return test_path;
}

/* The 1-based line of the n-th (1-based) occurrence of `needle`. */
static int
line_of(const char *text, const char *needle, int nth)
{
	const char	*p = text, *hit = NULL, *q;
	int		 line = 1;

	while (nth-- > 0) {
		if ((hit = strstr(p, needle)) == NULL)
			return -1;
		p = hit + 1;
	}
	for (q = text; q < hit; q++)
		if (*q == '\n')
			line++;
	return line;
}

/* Replaces the first `from` in `text` by `to`; caller frees. */
static char *
subst(const char *text, const char *from, const char *to)
{
	const char	*hit = strstr(text, from);
	size_t		 n;
	char		*out;

	if (hit == NULL) {
		fprintf(stderr, "subst: '%s' not found\n", from);
		exit(2);
	}
	n = strlen(text) - strlen(from) + strlen(to) + 1;
	out = malloc(n);
	snprintf(out, n, "%.*s%s%s", (int)(hit - text), text, to,
	    hit + strlen(from));
	return out;
}

/* Compares JSON texts by value (Lua tables have no key order). */
static void
json_eq_(int line, const char *got, const char *want)
{
	cJSON	*a = got != NULL ? cJSON_Parse(got) : NULL;
	cJSON	*b = cJSON_Parse(want);

	if (a == NULL || !cJSON_Compare(a, b, 1)) {
		fprintf(stderr, "%s:%d: %s, expected %s\n", __FILE__, line,
		    got ? got : "(null)", want);
		test_failed_checks++;
	}
	cJSON_Delete(a);
	cJSON_Delete(b);
}

#define JSON_EQ(got, want)	json_eq_(__LINE__, got, want)

static struct protocol *
load_ok(const char *text)
{
	struct protocol	*p = NULL;
	char		*cause = NULL;

	if (proto_load(write_proto(text), &limits, &p, &cause) != 0) {
		fprintf(stderr, "proto_load: %s\n", cause);
		free(cause);
		test_failed_checks++;
		return NULL;
	}
	return p;
}

/*
 * Loads `text` with `from` replaced by `to` and expects the error
 * "path:LINE: msg" where LINE is that of the nth `at` in the new text
 * (0: no line) and msg contains `want`.
 */
static void
load_fails_(int srcline, const char *from, const char *to, const char *at,
    int nth, const char *want)
{
	struct protocol	*p = NULL;
	char		*text = subst(valid, from, to), *cause = NULL;
	char		 prefix[128];
	int		 line = at != NULL ? line_of(text, at, nth) : 0;

	if (line > 0)
		snprintf(prefix, sizeof prefix, "%s/p.lua:%d: ", test_dir, line);
	else
		snprintf(prefix, sizeof prefix, "%s/p.lua: ", test_dir);
	if (proto_load(write_proto(text), &limits, &p, &cause) == 0) {
		fprintf(stderr, "%s:%d: loaded, expected %s%s\n", __FILE__,
		    srcline, prefix, want);
		test_failed_checks++;
		proto_free(p);
	} else if (strncmp(cause, prefix, strlen(prefix)) != 0 ||
	    strstr(cause + strlen(prefix), want) == NULL) {
		fprintf(stderr, "%s:%d: \"%s\", expected \"%s...%s...\"\n",
		    __FILE__, srcline, cause, prefix, want);
		test_failed_checks++;
	}
	free(cause);
	free(text);
}

#define LOAD_FAILS(from, to, at, nth, want) \
	load_fails_(__LINE__, from, to, at, nth, want)

/* ---- loading ---------------------------------------------------------- */

static void
test_load_valid(void)
{
	struct protocol				*p = load_ok(valid);
	const struct proto_questionnaire	*qs;
	const struct proto_question		*q;

	if (p == NULL)
		return;
	CHECK_STR(p->id, "tp");
	CHECK_INT(p->version, 3);
	CHECK_STR(p->path, test_path);
	CHECK_STR(p->lang, "en");
	CHECK_STR(proto_text_get(&p->title, "de"), "Prüfung");
	CHECK_STR(proto_text_get(&p->title, "fr"), "Test");
	CHECK_INT(p->course_days, 42);
	CHECK_INT(p->min_interval_h, 48);
	CHECK_INT(p->target_interval_h, 60);
	CHECK_INT(p->miss_after_h, 24);
	CHECK_INT(p->nlevels, 3);
	CHECK_STR(p->levels[2], "firm");
	CHECK_INT(p->start_level, 1);
	CHECK_INT(proto_level(p, "light"), 0);
	CHECK_INT(proto_level(p, "heavy"), -1);
	CHECK_INT(p->nqs, 2);
	CHECK_INT(p->nsteps, 2);
	CHECK_STR(proto_text_get(&p->steps[1], "de"), "Gleiten.");
	CHECK_STR(proto_text_get(&p->steps[0], "de"), "Apply oil.");

	qs = proto_questionnaire(p, "checkin");
	CHECK(qs != NULL);
	CHECK(proto_questionnaire(p, "nope") == NULL);
	if (qs != NULL) {
		CHECK_INT(qs->n, 4);
		q = proto_question(qs, "soreness");
		CHECK(q != NULL && q->type == Q_INT && q->min == 0 &&
		    q->max == 10);
		CHECK(q != NULL && strcmp(q->clear, "0") == 0);
		q = proto_question(qs, "redness");
		CHECK(q != NULL && q->type == Q_YESNO &&
		    strcmp(q->clear, "no") == 0);
		q = proto_question(qs, "bruise");
		CHECK(q != NULL && q->type == Q_CHOICE && q->noptions == 2);
		if (q != NULL && q->noptions == 2) {
			CHECK_STR(q->options[1].id, "some");
			CHECK_STR(proto_text_get(&q->options[1].text, "de"),
			    "Etwas");
			CHECK_STR(q->clear, "none");
		}
		q = proto_question(qs, "notes");
		CHECK(q != NULL && strcmp(q->clear, "nothing") == 0);
		CHECK(proto_question(qs, "nope") == NULL);
	}
	qs = proto_questionnaire(p, "screening");
	CHECK(qs != NULL && qs->n == 1 && strcmp(qs->q[0].clear, "no") == 0);

	CHECK_STR(proto_message(p, "de", "great"), "Toll, {name}!");
	CHECK_STR(proto_message(p, "en", "great"), "Great, {name}!");
	CHECK_STR(proto_message(p, "fr", "great"), "Great, {name}!");
	CHECK(proto_message(p, "en", "nope") == NULL);

	CHECK(p->has[EV_MESSAGE]);
	CHECK(p->has[EV_ANSWERED]);
	CHECK(p->has[EV_SESSION_DUE]);
	CHECK(!p->has[EV_ENROLLED]);
	CHECK(!p->has[EV_SESSION_DONE]);
	CHECK_STR(proto_event_name(EV_SESSION_MISSED), "session_missed");
	proto_free(p);
}

static void
test_load_mini(void)
{
	/* The minimal protocol of the engine tests. */
	struct protocol	*p = load_ok(
	    "return {\n"
	    "  id = \"mini\", version = 1, title = \"Mini\",\n"
	    "  course = { weeks = 2 },\n"
	    "  interval = { min_hours = 48, target_hours = 60 },\n"
	    "  pressure = { levels = { \"light\", \"moderate\" } },\n"
	    "  steps = { \"Apply oil.\" },\n"
	    "}\n");

	if (p == NULL)
		return;
	CHECK_INT(p->course_days, 14);
	CHECK_INT(p->start_level, 0);
	CHECK_INT(p->nqs, 0);
	CHECK_INT(p->nmsgs, 0);
	proto_free(p);
}

/* Many keys in three languages, given in no order: each is found, in its
 * language or else the protocol's; a key between or beyond them is not. */
static void
test_load_messages(void)
{
	struct protocol	*p;
	char		*text, *en, *de, *fr, key[16], want[32];
	size_t		 n = 0, m = 0, k = 0;
	int		 i;

	en = calloc(1, 4096);
	de = calloc(1, 4096);
	fr = calloc(1, 4096);
	text = calloc(1, 16384);
	for (i = 39; i >= 0; i--) {
		n += (size_t)snprintf(en + n, 4096 - n, "k%02d = \"en%d\", ",
		    i * 2, i);
		if (i % 3 == 0)
			m += (size_t)snprintf(de + m, 4096 - m,
			    "k%02d = \"de%d\", ", i * 2, i);
		if (i % 5 == 0)
			k += (size_t)snprintf(fr + k, 4096 - k,
			    "k%02d = \"fr%d\", ", i * 2, i);
	}
	snprintf(text, 16384,
	    "return {\n"
	    "  id = \"msgs\", version = 1, title = \"Msgs\",\n"
	    "  course = { weeks = 2 },\n"
	    "  interval = { min_hours = 48, target_hours = 60 },\n"
	    "  pressure = { levels = { \"light\" } },\n"
	    "  steps = { \"Apply oil.\" },\n"
	    "  messages = { fr = { %s}, en = { %s}, de = { %s} },\n"
	    "}\n", fr, en, de);
	p = load_ok(text);
	free(text);
	free(en);
	free(de);
	free(fr);
	if (p == NULL)
		return;
	CHECK_INT(p->nmsgs, 40 + 14 + 8);
	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof key, "k%02d", i * 2);
		snprintf(want, sizeof want, "en%d", i);
		CHECK_STR(proto_message(p, "en", key), want);
		CHECK_STR(proto_message(p, "it", key), want);
		snprintf(want, sizeof want, "%s%d", i % 3 == 0 ? "de" : "en", i);
		CHECK_STR(proto_message(p, "de", key), want);
		snprintf(want, sizeof want, "%s%d", i % 5 == 0 ? "fr" : "en", i);
		CHECK_STR(proto_message(p, "fr", key), want);
		snprintf(key, sizeof key, "k%02d", i * 2 + 1);
		CHECK(proto_message(p, "en", key) == NULL);
	}
	CHECK(proto_message(p, "en", "a") == NULL);
	CHECK(proto_message(p, "en", "z") == NULL);
	proto_free(p);
}

static void
test_load_errors(void)
{
	/* Unknown top-level field, pointing at its line. */
	LOAD_FAILS("  course = {", "  intervall = { min_hours = 1 },\n"
	    "  course = {", "intervall", 1, "unknown field 'intervall'");
	LOAD_FAILS("version = 3", "version = 0", "version = 0", 1,
	    "version must be a whole number from 1 to 1000000");
	LOAD_FAILS("version = 3", "version = 1.5", "version = 1.5", 1,
	    "version must be a whole number");
	LOAD_FAILS("version = 3", "version = \"3\"", "version =", 1,
	    "version must be a whole number");
	LOAD_FAILS("version = 3,", "", NULL, 0, "version is required");
	LOAD_FAILS("id = \"tp\"", "id = \"Tp\"", "id = \"Tp\"", 1,
	    "id must be a name");
	LOAD_FAILS("levels = { \"light\", \"moderate\", \"firm\" }",
	    "levels = {}", "levels = {}", 1,
	    "pressure.levels must list 1 to 16 level names");
	LOAD_FAILS("\"firm\" }", "\"Firm\" }", "levels =", 1,
	    "pressure.levels[3] must be a name");
	LOAD_FAILS("start = \"moderate\"", "start = \"heavy\"",
	    "start = \"heavy\"", 1, "pressure.start must be one of "
	    "pressure.levels");
	LOAD_FAILS("course = { weeks = 6 }", "course = { weeks = 0 }",
	    "weeks = 0", 1, "course.weeks must be a whole number from 1 to 104");
	LOAD_FAILS("course = { weeks = 6 }", "course = 6", "course = 6", 1,
	    "course must be a table");
	LOAD_FAILS("course = { weeks = 6 }", "course = {}", "course = {}", 1,
	    "course needs weeks or days");
	LOAD_FAILS("min_hours = 48, target_hours = 60",
	    "min_hours = 48, target_hours = 6", "target_hours = 6", 1,
	    "interval.target_hours must not be below interval.min_hours");
	LOAD_FAILS("min_hours = 48, target_hours = 60", "target_hours = 60",
	    "interval =", 1, "interval.min_hours is required");
	LOAD_FAILS("steps = { \"Apply oil.\", { en = \"Glide.\","
	    " de = \"Gleiten.\" } }", "steps = {}", "steps = {}", 1,
	    "steps must list 1 to 30 session steps");
	/* Questions: their errors point at the question's own line. */
	LOAD_FAILS("{ id = \"redness\", type = \"yesno\"",
	    "{ id = \"soreness\", type = \"yesno\"", "id = \"soreness\"", 2,
	    "questionnaire 'checkin' asks 'soreness' twice");
	LOAD_FAILS("type = \"yesno\", text = \"Redness?\"",
	    "type = \"slider\", text = \"Redness?\"", "id = \"redness\"", 1,
	    "question 'redness': type must be integer, choice, yesno, text,"
	    " timezone or time");
	LOAD_FAILS("\"Bruising?\",\n        options = { { id = \"none\","
	    " text = \"None\" }, { id = \"some\", text = { en = \"Some\","
	    " de = \"Etwas\" } } } },",
	    "\"Bruising?\" },", "id = \"bruise\"", 1,
	    "question 'bruise' needs 2 to 20 options");
	LOAD_FAILS("min = 0, max = 10", "min = 10, max = 0", "id = \"soreness\"",
	    1, "question 'soreness': min is above max");
	LOAD_FAILS("    screening = {", "    setup = {", "questionnaires =", 1,
	    "\"setup\" is the engine's own");
	/* Handlers: an unknown event names the line of the handler. */
	LOAD_FAILS("    session_due = function", "    session_dew = function",
	    "session_dew", 1, "on: unknown event or not a function");
	LOAD_FAILS("    answered = function(ctx, ev)\n",
	    "    answered = 42, answerd = function(ctx, ev)\n", "answered = 42",
	    1, "on: unknown event or not a function");
	LOAD_FAILS("messages = { en = { great = \"Great, {name}!\" },",
	    "messages = { en = { Great = \"Great, {name}!\" },",
	    "messages =", 1, "messages.en: each entry must be key = \"text\"");
}

static void
test_load_lua_errors(void)
{
	struct protocol	*p = NULL;
	char		*cause = NULL, want[128];
	const char	*path;

	path = write_proto("return {\n  id = \"x\",\n  version = = 1,\n}\n");
	CHECK_INT(proto_load(path, &limits, &p, &cause), -1);
	snprintf(want, sizeof want, "%s:3:", path);
	CHECK(cause != NULL && strncmp(cause, want, strlen(want)) == 0);
	free(cause);

	path = write_proto("local x = nil\nreturn x.y\n");
	CHECK_INT(proto_load(path, &limits, &p, &cause), -1);
	snprintf(want, sizeof want, "%s:2:", path);
	CHECK(cause != NULL && strncmp(cause, want, strlen(want)) == 0);
	free(cause);

	path = write_proto("return 42\n");
	CHECK_INT(proto_load(path, &limits, &p, &cause), -1);
	snprintf(want, sizeof want, "%s: the protocol must return a table",
	    path);
	CHECK_STR(cause, want);
	free(cause);

	/* Sandboxed: no io, os or require. */
	path = write_proto("os.exit(1)\nreturn {}\n");
	CHECK_INT(proto_load(path, &limits, &p, &cause), -1);
	snprintf(want, sizeof want, "%s:1:", path);
	CHECK(cause != NULL && strncmp(cause, want, strlen(want)) == 0);
	free(cause);

	CHECK_INT(proto_load("/nonexistent/p.lua", &limits, &p, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "/nonexistent/p.lua") != NULL);
	free(cause);
}

/* ---- calling handlers ------------------------------------------------- */

static void
ctx_init(struct proto_ctx *ctx)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->catalog = cat;
	ctx->now = T0;
	ctx->tz = "Europe/Berlin";
	ctx->lang = "en";
	ctx->status = "active";
	ctx->pressure = 1;
	ctx->sessions_done = 2;
	ctx->enrolled_at = T0 - 3 * 86400;
	ctx->last_session_at = T0 - 5 * 3600;
	ctx->state = "{}";
}

/* Calls the message handler with `text`; returns proto_call's result. */
static int
call_msg(struct protocol *p, const char *text, struct proto_result *res,
    char **cause)
{
	struct proto_ctx	ctx;

	ctx_init(&ctx);
	if (ctx.pressure >= p->nlevels)
		ctx.pressure = p->nlevels - 1;
	ctx.text = text;
	*cause = NULL;
	return proto_call(p, EV_MESSAGE, &ctx, res, cause);
}

static void
test_call_schedule(void)
{
	struct protocol		*p = load_ok(valid);
	struct proto_result	 res;
	char			*cause;

	if (p == NULL)
		return;
	CHECK_INT(call_msg(p, "schedule", &res, &cause), 0);
	CHECK_INT(res.n, 1);
	if (res.n == 1) {
		CHECK_INT(res.v[0].kind, ACT_SCHEDULE);
		CHECK_INT(res.v[0].when.offset, 86400 + 2 * 3600 + 3 * 60);
		CHECK_INT(res.v[0].when.at, 7 * 60 + 30);
		CHECK_INT(res.v[0].when.from_session, 1);
	}
	CHECK_STR(res.state, "{}");
	proto_result_clear(&res);
	CHECK(res.v == NULL && res.n == 0 && res.state == NULL);

	CHECK_INT(call_msg(p, "schedule_default", &res, &cause), 0);
	CHECK_INT(res.n, 1);
	if (res.n == 1) {
		CHECK_INT(res.v[0].when.offset, 0);
		CHECK_INT(res.v[0].when.at, PROTO_AT_REMINDER);
		CHECK_INT(res.v[0].when.from_session, 0);
	}
	proto_result_clear(&res);

	CHECK_INT(call_msg(p, "schedule_exact", &res, &cause), 0);
	CHECK_INT(res.n, 1);
	if (res.n == 1) {
		CHECK_INT(res.v[0].when.offset, 3600);
		CHECK_INT(res.v[0].when.at, PROTO_AT_EXACT);
	}
	proto_result_clear(&res);
	proto_free(p);
}

static void
test_call_actions(void)
{
	struct protocol		*p = load_ok(valid);
	struct proto_result	 res;
	char			*cause;
	cJSON			*j;

	if (p == NULL)
		return;
	CHECK_INT(call_msg(p, "ask", &res, &cause), 0);
	CHECK_INT(res.n, 2);
	if (res.n == 2) {
		CHECK_INT(res.v[0].kind, ACT_ASK);
		CHECK_STR(res.v[0].name, "checkin");
		CHECK_INT(res.v[0].when.offset, 86400);
		CHECK_INT(res.v[0].when.at, PROTO_AT_EXACT);
		CHECK_STR(res.v[1].name, "screening");
		CHECK_INT(res.v[1].when.offset, 0);
	}
	proto_result_clear(&res);

	CHECK_INT(call_msg(p, "say", &res, &cause), 0);
	CHECK_INT(res.n, 2);
	if (res.n == 2) {
		CHECK_INT(res.v[0].kind, ACT_SAY);
		CHECK_STR(res.v[0].name, "great");
		j = cJSON_Parse(res.v[0].params);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "name")),
		    "Ana");
		CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "n")), 2);
		cJSON_Delete(j);
		/* A catalog key works too. */
		CHECK_STR(res.v[1].name, "help");
		CHECK(res.v[1].params == NULL);
	}
	proto_result_clear(&res);

	CHECK_INT(call_msg(p, "postpone", &res, &cause), 0);
	CHECK_INT(res.n, 2);
	if (res.n == 2) {
		CHECK_INT(res.v[0].kind, ACT_POSTPONE);
		CHECK_STR(res.v[0].name, "checkin");
		CHECK_STR(res.v[0].reason, "soreness");
		CHECK_INT(res.v[0].when.offset, 86400);
		CHECK_INT(res.v[0].when.at, PROTO_AT_EXACT);
		CHECK(res.v[1].name == NULL);
		CHECK_STR(res.v[1].reason, "tired");
		CHECK_INT(res.v[1].when.offset, 2 * 86400);
		CHECK_INT(res.v[1].when.at, PROTO_AT_REMINDER);
	}
	proto_result_clear(&res);

	/* Pressure starts at ctx->pressure (1); setting the same level
	 * records nothing, clamping records only real changes. */
	CHECK_INT(call_msg(p, "pressure", &res, &cause), 0);
	if (cause != NULL)
		fprintf(stderr, "%s\n", cause);
	CHECK_INT(res.n, 2);
	if (res.n == 2) {
		CHECK_INT(res.v[0].kind, ACT_PRESSURE);
		CHECK_INT(res.v[0].level, 0);
		CHECK_INT(res.v[1].kind, ACT_PRESSURE);
		CHECK_INT(res.v[1].level, 2);
	}
	proto_result_clear(&res);

	CHECK_INT(call_msg(p, "end", &res, &cause), 0);
	CHECK_INT(res.n, 3);
	if (res.n == 3) {
		CHECK_INT(res.v[0].kind, ACT_PAUSE);
		CHECK_STR(res.v[0].reason, "bleeding");
		CHECK_INT(res.v[1].kind, ACT_ESCALATE);
		CHECK_STR(res.v[1].reason, "call them");
		CHECK_INT(res.v[2].kind, ACT_FINISH);
		CHECK_STR(res.v[2].reason, "done");
	}
	proto_result_clear(&res);

	/* A text the handler ignores records nothing. */
	CHECK_INT(call_msg(p, "hello", &res, &cause), 0);
	CHECK_INT(res.n, 0);
	proto_result_clear(&res);
	proto_free(p);
}

static void
test_call_ctx(void)
{
	struct protocol		*p = load_ok(valid);
	struct proto_result	 res;
	char			*cause;
	cJSON			*j, *seen;

	if (p == NULL)
		return;
	CHECK_INT(call_msg(p, "ctx", &res, &cause), 0);
	j = cJSON_Parse(res.state);
	seen = cJSON_GetObjectItem(j, "seen");
	CHECK(seen != NULL);
	CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(seen, "now")), T0);
	CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(seen, "day")), 3);
	CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(seen, "level")), 2);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(seen, "pressure")),
	    "moderate");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(seen, "status")),
	    "active");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(seen, "tz")),
	    "Europe/Berlin");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(seen, "lang")), "en");
	CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(seen, "done")), 2);
	CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(seen, "days")), 42);
	CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(seen, "hours")), 5);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(seen, "ev")),
	    "message");
	cJSON_Delete(j);
	proto_result_clear(&res);

	/* ctx's functions come from a locked metatable: a handler cannot
	 * change it, and what it does to its ctx is gone by the next call. */
	CHECK_INT(call_msg(p, "meta", &res, &cause), 0);
	CHECK_STR(res.state, "{\"mt\":\"locked\",\"set\":false}");
	proto_result_clear(&res);
	CHECK_INT(call_msg(p, "schedule", &res, &cause), 0);
	CHECK_INT(res.n, 1);
	proto_result_clear(&res);
	proto_free(p);
}

static void
test_call_state(void)
{
	struct protocol		*p = load_ok(valid);
	struct proto_result	 res;
	struct proto_ctx	 ctx;
	char			*cause = NULL, *state;

	if (p == NULL)
		return;
	CHECK_INT(call_msg(p, "count", &res, &cause), 0);
	JSON_EQ(res.state, "{\"count\":1,\"list\":[1]}");
	/* The next call sees the saved state. */
	ctx_init(&ctx);
	ctx.text = "count";
	ctx.state = state = res.state;
	res.state = NULL;
	proto_result_clear(&res);
	CHECK_INT(proto_call(p, EV_MESSAGE, &ctx, &res, &cause), 0);
	JSON_EQ(res.state, "{\"count\":2,\"list\":[1,2]}");
	free(state);
	proto_result_clear(&res);

	/* ctx.state NULL is an empty table. */
	ctx_init(&ctx);
	ctx.text = "count";
	ctx.state = NULL;
	CHECK_INT(proto_call(p, EV_MESSAGE, &ctx, &res, &cause), 0);
	JSON_EQ(res.state, "{\"count\":1,\"list\":[1]}");
	proto_result_clear(&res);

	/* An event without a handler keeps the state as it was. */
	ctx_init(&ctx);
	ctx.state = "{\"keep\":true}";
	CHECK_INT(proto_call(p, EV_ENROLLED, &ctx, &res, &cause), 0);
	CHECK_INT(res.n, 0);
	CHECK_STR(res.state, "{\"keep\":true}");
	proto_result_clear(&res);

	/* State that cannot be saved fails the call. */
	CHECK_INT(call_msg(p, "badstate", &res, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "ctx.state") != NULL &&
	    strstr(cause, "function") != NULL);
	CHECK(res.state == NULL && res.n == 0);
	free(cause);
	proto_free(p);
}

static void
test_call_answered(void)
{
	struct protocol		*p = load_ok(valid);
	struct proto_result	 res;
	struct proto_ctx	 ctx;
	char			*cause = NULL;

	if (p == NULL)
		return;
	ctx_init(&ctx);
	ctx.questionnaire = "checkin";
	ctx.answers = "{\"soreness\":4,\"redness\":false}";
	CHECK_INT(proto_call(p, EV_ANSWERED, &ctx, &res, &cause), 0);
	CHECK_INT(res.n, 1);
	if (res.n == 1)
		CHECK_INT(res.v[0].kind, ACT_POSTPONE);
	{
		cJSON	*j = cJSON_Parse(res.state);

		CHECK_INT(cJSON_GetArraySize(j), 3);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "q")),
		    "checkin");
		CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "s")), 4);
		CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "r")));
		cJSON_Delete(j);
	}
	proto_result_clear(&res);

	ctx.answers = "{\"soreness\":1,\"redness\":true}";
	CHECK_INT(proto_call(p, EV_ANSWERED, &ctx, &res, &cause), 0);
	CHECK_INT(res.n, 0);
	proto_result_clear(&res);

	ctx_init(&ctx);
	ctx.session = 7;
	CHECK_INT(proto_call(p, EV_SESSION_DUE, &ctx, &res, &cause), 0);
	CHECK_STR(res.state, "{\"session\":7}");
	proto_result_clear(&res);
	proto_free(p);
}

static void
test_call_fails(void)
{
	struct protocol		*p = load_ok(valid);
	struct proto_result	 res;
	char			*cause, want[128];

	if (p == NULL)
		return;
	/* An error after actions and a state change: nothing survives. */
	CHECK_INT(call_msg(p, "fail", &res, &cause), -1);
	CHECK_INT(res.n, 0);
	CHECK(res.v == NULL);
	CHECK(res.state == NULL);
	snprintf(want, sizeof want, "%s:%d: boom", test_path,
	    line_of(valid, "error(\"boom\")", 1));
	CHECK_STR(cause, want);
	free(cause);

	CHECK_INT(call_msg(p, "many", &res, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "more than 64 actions") != NULL);
	CHECK_INT(res.n, 0);
	free(cause);

	CHECK_INT(call_msg(p, "loop", &res, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "instruction budget exceeded") !=
	    NULL);
	CHECK_INT(res.n, 0);
	free(cause);

	/* The protocol still works afterwards. */
	CHECK_INT(call_msg(p, "count", &res, &cause), 0);
	JSON_EQ(res.state, "{\"count\":1,\"list\":[1]}");
	proto_result_clear(&res);
	proto_free(p);
}

static void
bad_call_(int srcline, struct protocol *p, const char *text, int line,
    const char *msg)
{
	struct proto_result	 res;
	char			*cause, want[256];

	snprintf(want, sizeof want, "%s:%d: %s", test_path, line, msg);
	if (call_msg(p, text, &res, &cause) == 0) {
		fprintf(stderr, "%s:%d: %s: succeeded, expected %s\n", __FILE__,
		    srcline, text, want);
		test_failed_checks++;
		proto_result_clear(&res);
		return;
	}
	if (cause == NULL || strcmp(cause, want) != 0) {
		fprintf(stderr, "%s:%d: \"%s\", expected \"%s\"\n", __FILE__,
		    srcline, cause ? cause : "(null)", want);
		test_failed_checks++;
	}
	if (res.n != 0 || res.v != NULL || res.state != NULL) {
		fprintf(stderr, "%s:%d: actions left after failure\n",
		    __FILE__, srcline);
		test_failed_checks++;
	}
	free(cause);
}

#define BAD_CALL(p, text, line, msg) bad_call_(__LINE__, p, text, line, msg)

static void
test_call_option_errors(void)
{
	struct protocol	*p = load_ok(bad_calls);

	if (p == NULL)
		return;
	BAD_CALL(p, "hour", 9, "schedule: unknown option 'hour'");
	BAD_CALL(p, "neg", 10, "schedule: hours must be a number of at least 0");
	BAD_CALL(p, "str", 11, "schedule: hours must be a number of at least 0");
	BAD_CALL(p, "year", 12, "schedule: more than a year ahead");
	BAD_CALL(p, "at", 13, "schedule: at must be \"HH:MM\", \"reminder\" or "
	    "\"exact\"");
	BAD_CALL(p, "from", 14, "schedule: from must be \"now\" or \"session\"");
	BAD_CALL(p, "ask", 15, "ask: no questionnaire 'nope'");
	BAD_CALL(p, "say", 16, "say: no message 'no_such_key'");
	BAD_CALL(p, "reason", 17, "pause: a reason is required");
	BAD_CALL(p, "howlong", 18, "postpone: say how long (hours = 24)");
	BAD_CALL(p, "pask", 19, "postpone: no questionnaire 'nope'");
	BAD_CALL(p, "level", 20, "set_pressure: unknown level 'heavy'");
	BAD_CALL(p, "emptyr", 21, "finish: reason must be 1 to 500 characters");
	BAD_CALL(p, "esc", 22, "escalate: unknown option 'x'");
	BAD_CALL(p, "tbl", 23, "bad argument #1 to 'schedule' (table expected, "
	    "got number)");
	BAD_CALL(p, "sayp", 24, "say: state cannot hold a function value");
	/* NaN compares false both ways: refused, not cast (undefined). */
	BAD_CALL(p, "nan", 25, "postpone: hours must be a number of at least 0");
	proto_free(p);
}

int
main(void)
{
	char	*cause = NULL;

	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	if (catalog_load("scripts/lang", &cat, &cause) != 0) {
		fprintf(stderr, "catalog: %s\n", cause);
		return 2;
	}
	TEST(test_load_valid);
	TEST(test_load_mini);
	TEST(test_load_messages);
	TEST(test_load_errors);
	TEST(test_load_lua_errors);
	TEST(test_call_schedule);
	TEST(test_call_actions);
	TEST(test_call_ctx);
	TEST(test_call_state);
	TEST(test_call_answered);
	TEST(test_call_fails);
	TEST(test_call_option_errors);
	catalog_free(cat);
	unlink(test_path);
	rmdir(test_dir);
	return TEST_END();
}
