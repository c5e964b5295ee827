/*
 * test_engine_versions.c: protocol versions and the folder rescan.
 *
 * A patient keeps the version they enrolled with when a new one is loaded
 * (its source comes from protocol_versions, also after a restart), unless
 * the new one declares upgrade.from their version: then they move to it at
 * their next event, with an audit event and the upgraded handler's state.
 * Reloads of a lower version or of a changed text under the same version
 * are refused. engine_rescan() loads new files, reloads changed ones and
 * keeps a deleted one running.
 *
 * Each version says its own text for a message (`hi`), so which version
 * handled an event shows in the outbox.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "protocol.h"
#include "store.h"
#include "test.h"
#include "test_db.h"

#define T0	INT64_C(1772352000)	/* 2026-03-01T08:00:00Z */
#define HOUR	INT64_C(3600)
#define AD	"console"

static char		test_dir[] = "/tmp/strigil-versions-XXXXXX";
static char		proto_path[128];
static struct config	cfg;

/* ---- helpers ---------------------------------------------------------- */

/*
 * Writes version `version` of protocol "vp": its message handler says `hi`
 * (with {n} = ctx.state.moved), `extra` goes into the table and `handlers`
 * into `on`.
 */
static void
write_proto(const char *path, int version, const char *hi, const char *extra,
    const char *handlers)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(2);
	}
	fprintf(f, "return {\n"
	    "  id = \"vp\", version = %d, title = \"Versioned\",\n"
	    "  course = { weeks = 2 },\n"
	    "  interval = { min_hours = 48 },\n"
	    "  pressure = { levels = { \"light\", \"moderate\" } },\n"
	    "  steps = { \"Apply oil.\" },\n"
	    "  messages = { en = { hi = \"%s\" } },\n"
	    "%s"
	    "  on = {\n"
	    "    message = function(ctx, ev)\n"
	    "      ctx.say(\"hi\", { n = ctx.state.moved or 0 })\n"
	    "    end,\n"
	    "%s"
	    "  },\n"
	    "}\n", version, hi, extra, handlers);
	fclose(f);
}

struct world {
	struct store	*st;
	struct engine	*e;
};

static int
world_open(struct world *w, const char *db)
{
	char	*cause = NULL;

	memset(w, 0, sizeof *w);
	if (store_open(&w->st, db, &cause) != 0 ||
	    engine_new(&w->e, &cfg, w->st, &cause) != 0 ||
	    engine_load_file(w->e, proto_path, &cause) != 0) {
		fprintf(stderr, "world_open: %s\n", cause);
		free(cause);
		test_failed_checks++;
		engine_free(w->e);
		store_close(w->st);
		memset(w, 0, sizeof *w);
		return -1;
	}
	return 0;
}

static void
world_close(struct world *w)
{
	engine_free(w->e);
	store_close(w->st);
	memset(w, 0, sizeof *w);
}

static uint64_t	msg_seq;

static int
say(struct world *w, const char *chat, const char *text, int64_t now)
{
	char	id[32];

	snprintf(id, sizeof id, "v%llu", (unsigned long long)++msg_seq);
	return engine_inbound(w->e, AD, chat, id, text, now);
}

/* The bodies of every deliverable message to `chat`, joined by "|";
 * marks them sent. */
static char *
drain(struct world *w, const char *chat, int64_t now)
{
	struct store_out	 o;
	char			*all = strdup(""), *tmp;

	while (store_outbox_next(w->st, AD, now, &o) == 0) {
		store_outbox_sent(w->st, o.id, now);
		if (strcmp(o.chat, chat) == 0) {
			tmp = malloc(strlen(all) + strlen(o.body) + 2);
			sprintf(tmp, "%s%s|", all, o.body);
			free(all);
			all = tmp;
		}
		store_out_clear(&o);
	}
	return all;
}

/* Sends `text`; 1 if the reply has `needle`. */
static int
reply_has(struct world *w, const char *chat, const char *text,
    const char *needle, int64_t now)
{
	char	*got;
	int	 ok;

	CHECK_INT(say(w, chat, text, now), 0);
	got = drain(w, chat, now);
	ok = strstr(got, needle) != NULL;
	if (!ok)
		fprintf(stderr, "  reply to \"%s\": %s (wanted \"%s\")\n", text,
		    got, needle);
	free(got);
	return ok;
}

/* /start, consent, default zone and reminder. */
static void
enrol(struct world *w, const char *chat, int64_t now)
{
	CHECK_INT(say(w, chat, "/start", now), 0);
	CHECK_INT(say(w, chat, "yes", now), 0);
	CHECK_INT(say(w, chat, "1", now), 0);
	CHECK_INT(say(w, chat, "1", now), 0);
	free(drain(w, chat, now));
}

static int
version_of(struct world *w, const char *chat)
{
	struct store_patient	p;
	struct store_enrolment	en;
	int			v = -1;

	if (store_patient_find(w->st, AD, chat, &p) != 0)
		return -1;
	if (store_enrolment_current(w->st, p.id, &en) == 0) {
		v = en.version;
		store_enrolment_clear(&en);
	}
	return v;
}

/* The error the health check shows for the protocol, or NULL. */
static const char *
proto_error_of(struct world *w)
{
	struct engine_proto_status	s[4];

	if (engine_protocols(w->e, s, 4) < 1)
		return "none loaded";
	return s[0].error;
}

static int
loaded_version(struct world *w)
{
	struct engine_proto_status	s[4];

	if (engine_protocols(w->e, s, 4) < 1)
		return -1;
	return s[0].version;
}

/* ---- tests ------------------------------------------------------------ */

/* v2 without upgrade: the v1 patient keeps v1, a new one gets v2; also
 * after a restart, when v1 comes from the database. */
static void
test_keep_version(void)
{
	struct world	w;
	char		db[256];

	clock_init(CLOCK_MANUAL, T0);
	snprintf(db, sizeof db, "%s/keep.db", test_dir);
	write_proto(proto_path, 1, "one", "", "");
	if (world_open(&w, db) != 0)
		return;
	enrol(&w, "a", T0);
	CHECK_INT(version_of(&w, "a"), 1);
	CHECK(reply_has(&w, "a", "hello", "one", T0));

	write_proto(proto_path, 2, "two two", "", "");
	CHECK_INT(engine_reload(w.e, T0 + HOUR), 0);
	CHECK_INT(loaded_version(&w), 2);
	CHECK(reply_has(&w, "a", "hello", "one", T0 + HOUR));
	CHECK_INT(version_of(&w, "a"), 1);
	enrol(&w, "b", T0 + HOUR);
	CHECK_INT(version_of(&w, "b"), 2);
	CHECK(reply_has(&w, "b", "hello", "two two", T0 + HOUR));
	/* Jobs of the v1 patient run on v1 too. */
	CHECK(engine_run_due(w.e, T0 + 2 * 86400) >= 1);
	CHECK(reply_has(&w, "a", "hello", "one", T0 + 2 * 86400));
	world_close(&w);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM protocol_versions"), 2);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM events WHERE kind = "
	    "'protocol_upgraded'"), 0);

	/* Restart: v1 is only in the database now. */
	if (world_open(&w, db) != 0)
		return;
	CHECK(reply_has(&w, "a", "hello", "one", T0 + 3 * 86400));
	CHECK(reply_has(&w, "b", "hello", "two two", T0 + 3 * 86400));
	CHECK_INT(version_of(&w, "a"), 1);
	world_close(&w);
	db_unlink(db);
}

/* v3 declares upgrade.from = { 1 }: the v1 patient moves at their next
 * event, its upgraded handler sees from_version, an audit event is kept,
 * and a restart keeps them on v3. */
static void
test_upgrade(void)
{
	struct world	w;
	char		db[256], *data;

	clock_init(CLOCK_MANUAL, T0);
	snprintf(db, sizeof db, "%s/upgrade.db", test_dir);
	write_proto(proto_path, 1, "one", "", "");
	if (world_open(&w, db) != 0)
		return;
	enrol(&w, "a", T0);
	write_proto(proto_path, 2, "two two", "", "");
	CHECK_INT(engine_reload(w.e, T0), 0);
	enrol(&w, "b", T0);
	CHECK_INT(version_of(&w, "b"), 2);

	/* The upgrade handler fails: the patient stays on v1 for now. */
	write_proto(proto_path, 3, "three {n}",
	    "  upgrade = { from = { 1 } },\n",
	    "    upgraded = function(ctx, ev) error(\"not yet\") end,\n");
	CHECK_INT(engine_reload(w.e, T0 + HOUR), 0);
	CHECK(reply_has(&w, "a", "hello", "one", T0 + HOUR));
	CHECK_INT(version_of(&w, "a"), 1);

	write_proto(proto_path, 4, "four {n}",
	    "  upgrade = { from = { 1, 3 } },\n",
	    "    upgraded = function(ctx, ev)\n"
	    "      ctx.state.moved = ev.from_version * 10 + ev.to_version\n"
	    "    end,\n");
	CHECK_INT(engine_reload(w.e, T0 + 2 * HOUR), 0);
	CHECK(reply_has(&w, "a", "hello", "four 14", T0 + 2 * HOUR));
	CHECK_INT(version_of(&w, "a"), 4);
	/* v2 is not in upgrade.from: b stays. */
	CHECK(reply_has(&w, "b", "hello", "two two", T0 + 2 * HOUR));
	CHECK_INT(version_of(&w, "b"), 2);
	world_close(&w);

	CHECK_INT(raw_int(db, "SELECT count(*) FROM events WHERE kind = "
	    "'protocol_upgraded'"), 1);
	data = raw_text(db, "SELECT data FROM events WHERE kind = "
	    "'protocol_upgraded'");
	CHECK_STR(data, "{\"protocol\":\"vp\",\"from\":1,\"to\":4}");
	free(data);
	CHECK_INT(raw_int(db, "SELECT version FROM enrolments WHERE id = "
	    "(SELECT min(id) FROM enrolments)"), 4);

	/* Restart: still v4, nothing upgraded twice. */
	if (world_open(&w, db) != 0)
		return;
	CHECK(reply_has(&w, "a", "hello", "four 14", T0 + 3 * HOUR));
	CHECK_INT(version_of(&w, "a"), 4);
	world_close(&w);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM events WHERE kind = "
	    "'protocol_upgraded'"), 1);
	db_unlink(db);
}

/* A lower version, or another text under the same version: refused, on a
 * reload and at a restart; the loaded version stays. */
static void
test_refused(void)
{
	struct world	 w;
	struct engine	*e2;
	const char	*err;
	char		 db[256], *cause = NULL;

	clock_init(CLOCK_MANUAL, T0);
	snprintf(db, sizeof db, "%s/refused.db", test_dir);
	write_proto(proto_path, 2, "two two", "", "");
	if (world_open(&w, db) != 0)
		return;
	enrol(&w, "a", T0);

	write_proto(proto_path, 2, "two, changed", "", "");
	CHECK_INT(engine_reload(w.e, T0), 1);
	err = proto_error_of(&w);
	CHECK(err != NULL && strstr(err, "version 2 of 'vp' was loaded "
	    "before with a different text") != NULL);
	CHECK(err != NULL && strstr(err, proto_path) == err);
	CHECK_INT(loaded_version(&w), 2);
	CHECK(reply_has(&w, "a", "hello", "two two", T0));

	write_proto(proto_path, 1, "one", "", "");
	CHECK_INT(engine_reload(w.e, T0), 1);
	err = proto_error_of(&w);
	CHECK(err != NULL && strstr(err, "version 1 of 'vp' is below version "
	    "2") != NULL);
	CHECK(reply_has(&w, "a", "hello", "two two", T0));

	/* Back to the stored text: accepted again, the error cleared. */
	write_proto(proto_path, 2, "two two", "", "");
	CHECK_INT(engine_reload(w.e, T0), 0);
	CHECK(proto_error_of(&w) == NULL);

	/* At a start, a lower version than the database knows is refused. */
	write_proto(proto_path, 1, "one", "", "");
	CHECK_INT(engine_new(&e2, &cfg, w.st, &cause), 0);
	CHECK_INT(engine_load_file(e2, proto_path, &cause), -1);
	CHECK(cause != NULL && strstr(cause, "below version 2") != NULL);
	free(cause);
	engine_free(e2);
	world_close(&w);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM protocol_versions"), 1);
	db_unlink(db);
}

/* Writes version `version` of "vp" whose `hi` comes from the helper
 * lib/words.lua, and that helper saying `hi`. */
static void
write_with_helper(int version, const char *hi)
{
	char	path[192];
	FILE	*f;

	snprintf(path, sizeof path, "%s/lib/words.lua", test_dir);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(2);
	}
	fprintf(f, "return { hi = \"%s\" }\n", hi);
	fclose(f);
	write_proto(proto_path, version, "\" .. require(\"words\").hi .. \"",
	    "", "");
}

/* A version is its file and its helpers: a helper changed under the same
 * version is refused (also when only a rescan sees it), and a patient on
 * an older version runs the helper stored with it, not today's file. */
static void
test_helpers(void)
{
	struct world	 w;
	const char	*err;
	char		 db[256], lib[128], words[160];

	clock_init(CLOCK_MANUAL, T0);
	snprintf(db, sizeof db, "%s/helpers.db", test_dir);
	snprintf(lib, sizeof lib, "%s/lib", test_dir);
	snprintf(words, sizeof words, "%s/words.lua", lib);
	CHECK_INT(mkdir(lib, 0700), 0);
	write_with_helper(1, "one");
	if (world_open(&w, db) != 0)
		return;
	enrol(&w, "a", T0);
	CHECK(reply_has(&w, "a", "hello", "one", T0));

	/* The helper changed, the version not: refused, v1 runs on. */
	write_with_helper(1, "uno");
	CHECK_INT(engine_rescan(w.e, test_dir, T0), 1);
	err = proto_error_of(&w);
	CHECK(err != NULL && strstr(err, "version 1 of 'vp' was loaded "
	    "before with a different text (of the file or a helper") != NULL);
	CHECK(reply_has(&w, "a", "hello", "one", T0));

	/* Version 2 with a new helper text: a stays on v1 and its helper. */
	write_with_helper(2, "two two");
	CHECK_INT(engine_reload(w.e, T0 + HOUR), 0);
	CHECK_INT(loaded_version(&w), 2);
	CHECK(reply_has(&w, "a", "hello", "one", T0 + HOUR));
	enrol(&w, "b", T0 + HOUR);
	CHECK(reply_has(&w, "b", "hello", "two two", T0 + HOUR));
	world_close(&w);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM protocol_helpers"), 2);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM protocol_helpers WHERE "
	    "protocol = 'vp' AND version = 1 AND name = 'words' AND source = "
	    "'return { hi = \"one\" }\n'"), 1);

	/* Restart: v1's helper comes from the database only. */
	if (world_open(&w, db) != 0)
		return;
	CHECK(reply_has(&w, "a", "hello", "one", T0 + 2 * HOUR));
	CHECK(reply_has(&w, "b", "hello", "two two", T0 + 2 * HOUR));
	world_close(&w);
	unlink(words);
	rmdir(lib);
	db_unlink(db);
}

/* upgrade is checked when the file loads. */
static void
test_upgrade_declaration(void)
{
	static const struct {
		int		 version;
		const char	*extra, *handlers, *want;
	} bad[] = {
		{ 2, "  upgrade = { from = { 2 } },\n", "",
		  "upgrade.from: each entry must be a version below this one "
		  "(2)" },
		{ 2, "  upgrade = { from = { 0 } },\n", "", "below this one" },
		{ 2, "  upgrade = { from = { \"1\" } },\n", "", "below this one" },
		{ 2, "  upgrade = { from = {} },\n", "",
		  "upgrade.from must list" },
		{ 2, "  upgrade = { 1 },\n", "", "upgrade must be a table" },
		{ 2, "  upgrade = { from = { 1 }, to = 2 },\n", "",
		  "upgrade must be a table" },
		{ 2, "  upgrade = 1,\n", "", "upgrade must be a table" },
		{ 2, "", "    upgraded = function(ctx, ev) end,\n",
		  "on.upgraded needs upgrade = { from = { ... } }" },
	};
	struct proto_limits	 lim = { cfg.lua_memory, cfg.lua_instructions };
	struct protocol		*p = NULL;
	char			 path[256], *cause = NULL;
	size_t			 i;

	snprintf(path, sizeof path, "%s/decl.lua", test_dir);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_proto(path, bad[i].version, "x", bad[i].extra,
		    bad[i].handlers);
		CHECK_INT(proto_load(path, &lim, &p, &cause), -1);
		if (cause == NULL || strstr(cause, bad[i].want) == NULL)
			fprintf(stderr, "  case %zu: %s\n", i, cause);
		CHECK(cause != NULL && strstr(cause, bad[i].want) != NULL);
		/* file:line of the field */
		CHECK(cause != NULL && strncmp(cause, path, strlen(path)) == 0 &&
		    cause[strlen(path)] == ':' && cause[strlen(path) + 1] >= '1' &&
		    cause[strlen(path) + 1] <= '9');
		free(cause);
		cause = NULL;
	}
	write_proto(path, 3, "x", "  upgrade = { from = { 1, 2, 1 } },\n",
	    "    upgraded = function(ctx, ev) end,\n");
	CHECK_INT(proto_load(path, &lim, &p, &cause), 0);
	if (p != NULL) {
		CHECK_INT(p->nupgrade_from, 2);
		CHECK(proto_upgrades_from(p, 1) && proto_upgrades_from(p, 2));
		CHECK(!proto_upgrades_from(p, 3));
		CHECK(p->has[EV_UPGRADED]);
		proto_free(p);
	}
	unlink(path);
}

/* A database from before protocol_versions: migrated, and a patient whose
 * version was never stored runs on the loaded one. */
static void
test_migration(void)
{
	struct world	w;
	char		db[256];

	clock_init(CLOCK_MANUAL, T0);
	snprintf(db, sizeof db, "%s/old.db", test_dir);
	write_proto(proto_path, 1, "one", "", "");
	if (world_open(&w, db) != 0)
		return;
	enrol(&w, "a", T0);
	world_close(&w);
	/* As schema 1 left it (3 added invites and enrolments.invite, 4
	 * outbox.failed, 5 kv, 6 patients.ask_from for ask_i and ask_a,
	 * 7 outbox.sent_upto, 8 protocol_helpers, 9 patients.ask_prev). */
	CHECK_INT(raw_exec(db, "DROP TABLE protocol_helpers; "
	    "ALTER TABLE patients DROP COLUMN ask_prev; "
	    "DROP TABLE protocol_versions; "
	    "DROP TABLE invites; ALTER TABLE enrolments DROP COLUMN invite; "
	    "ALTER TABLE outbox DROP COLUMN failed; DROP TABLE kv; "
	    "ALTER TABLE outbox DROP COLUMN sent_upto; "
	    "ALTER TABLE patients DROP COLUMN ask_from; "
	    "ALTER TABLE patients ADD COLUMN ask_i INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE patients ADD COLUMN ask_a TEXT; "
	    "PRAGMA user_version = 1;"), 0);
	CHECK_INT(raw_int(db, "PRAGMA user_version"), 1);

	write_proto(proto_path, 2, "two two", "", "");
	if (world_open(&w, db) != 0)
		return;
	CHECK_INT(store_schema_version(w.st), SCHEMA_LATEST);
	CHECK_INT(version_of(&w, "a"), 1);
	CHECK(reply_has(&w, "a", "hello", "two two", T0));
	world_close(&w);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM protocol_versions"), 1);
	db_unlink(db);
}

/* engine_rescan(): changed files reload, new ones load, deleted ones keep
 * running, a broken one keeps the old version. */
static void
test_rescan(void)
{
	struct world			 w;
	struct engine_proto_status	 s[4];
	char				 dir[200], p1[256], p2[256], *cause = NULL;
	FILE				*f;

	clock_init(CLOCK_MANUAL, T0);
	snprintf(dir, sizeof dir, "%s/protocols", test_dir);
	CHECK_INT(mkdir(dir, 0700), 0);
	snprintf(p1, sizeof p1, "%s/vp.lua", dir);
	snprintf(p2, sizeof p2, "%s/other.lua", dir);
	write_proto(p1, 1, "one", "", "");
	memset(&w, 0, sizeof w);
	CHECK_INT(store_open(&w.st, ":memory:", &cause), 0);
	CHECK_INT(engine_new(&w.e, &cfg, w.st, &cause), 0);
	CHECK_INT(engine_load_dir(w.e, dir, &cause), 0);

	/* Nothing changed: nothing reloaded. */
	CHECK_INT(engine_rescan(w.e, dir, T0), 0);
	CHECK_INT(engine_protocols(w.e, s, 4), 1);

	/* A changed file (another size) and a new one. */
	write_proto(p1, 2, "two two", "", "");
	if ((f = fopen(p2, "w")) != NULL) {
		fputs("return { id = \"other\", version = 1, title = \"O\",\n"
		    "  course = { days = 7 }, interval = { min_hours = 24 },\n"
		    "  pressure = { levels = { \"light\" } },\n"
		    "  steps = { \"Rest.\" } }\n", f);
		fclose(f);
	}
	CHECK_INT(engine_rescan(w.e, dir, T0), 0);
	CHECK_INT(engine_protocols(w.e, s, 4), 2);
	CHECK_INT(s[0].version, 2);
	CHECK_STR(s[1].id, "other");

	/* Broken: the old version stays, the error is kept; unchanged, it is
	 * not tried again. */
	if ((f = fopen(p1, "w")) != NULL) {
		fputs("return {\n  id = \"vp\",\n  version = = 3,\n}\n", f);
		fclose(f);
	}
	CHECK_INT(engine_rescan(w.e, dir, T0), 1);
	CHECK_INT(engine_protocols(w.e, s, 4), 2);
	CHECK_INT(s[0].version, 2);
	CHECK(s[0].error != NULL && strstr(s[0].error, "vp.lua:3:") != NULL);
	CHECK_INT(engine_rescan(w.e, dir, T0), 0);

	/* Deleted: still running. */
	unlink(p2);
	CHECK_INT(engine_rescan(w.e, dir, T0), 0);
	CHECK_INT(engine_protocols(w.e, s, 4), 2);
	CHECK_STR(s[1].id, "other");

	/* A broken new file is not loaded, nor tried again unchanged. */
	snprintf(p2, sizeof p2, "%s/third.lua", dir);
	if ((f = fopen(p2, "w")) != NULL) {
		fputs("return 42\n", f);
		fclose(f);
	}
	CHECK_INT(engine_rescan(w.e, dir, T0), 1);
	CHECK_INT(engine_protocols(w.e, s, 4), 2);
	CHECK_INT(engine_rescan(w.e, dir, T0), 1);
	unlink(p1);
	unlink(p2);
	CHECK_INT(engine_rescan(w.e, dir, T0), 0);
	CHECK_INT(engine_protocols(w.e, s, 4), 2);
	world_close(&w);
	rmdir(dir);
}

/* A job that failed on a broken version runs again once a good one is
 * loaded at the start (a restart is a reload too), not only at SIGHUP. */
static void
test_retry_at_start(void)
{
	struct world	w;
	char		db[256], *got;
	int64_t		now = T0 + 2 * 86400 + HOUR;

	clock_init(CLOCK_MANUAL, T0);
	snprintf(db, sizeof db, "%s/retry.db", test_dir);
	write_proto(proto_path, 1, "one", "",
	    "    session_due = function(ctx, ev) error(\"broken\") end,\n");
	if (world_open(&w, db) != 0)
		return;
	enrol(&w, "a", T0);
	CHECK(engine_run_due(w.e, T0 + 2 * 86400) >= 1);
	/* The patient said nothing: not thanked, told their plan waits. */
	got = drain(&w, "a", T0 + 2 * 86400);
	CHECK(strstr(got, "held up") != NULL);
	CHECK(strstr(got, "saved that") == NULL);
	free(got);
	world_close(&w);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM jobs WHERE kind = "
	    "'session' AND status = 'failed'"), 1);

	write_proto(proto_path, 2, "two", "  upgrade = { from = { 1 } },\n",
	    "");
	clock_init(CLOCK_MANUAL, now);
	if (world_open(&w, db) != 0)
		return;
	CHECK_INT(raw_int(db, "SELECT count(*) FROM jobs WHERE kind = "
	    "'session' AND status = 'pending'"), 1);
	free(drain(&w, "a", now));
	CHECK(engine_run_due(w.e, now) >= 1);
	got = drain(&w, "a", now);
	CHECK(strstr(got, "Time for session 1") != NULL);
	free(got);
	CHECK_INT(version_of(&w, "a"), 2);
	world_close(&w);
	db_unlink(db);
}

/*
 * A missed job that failed (its handler broke), retried at the reload that
 * fixed the protocol after its session was done and the next one opened,
 * must not close the new session: it names its own.
 */
static void
test_stale_missed_retried(void)
{
	struct world		w;
	struct store_patient	p;
	struct store_enrolment	en;
	struct store_job	j;
	char			db[256];
	int64_t			s2 = 0;

	clock_init(CLOCK_MANUAL, T0);
	snprintf(db, sizeof db, "%s/stale.db", test_dir);
	write_proto(proto_path, 1, "one", "",
	    "    session_missed = function(ctx, ev) error(\"broken\") end,\n");
	if (world_open(&w, db) != 0)
		return;
	enrol(&w, "a", T0);
	CHECK(engine_run_due(w.e, T0 + 10 * HOUR) >= 1);	/* 1 opens */
	CHECK(engine_run_due(w.e, T0 + 34 * HOUR) >= 1);	/* missed fails */
	CHECK_INT(say(&w, "a", "/done", T0 + 35 * HOUR), 0);
	free(drain(&w, "a", T0 + 35 * HOUR));
	memset(&en, 0, sizeof en);
	if (store_patient_find(w.st, AD, "a", &p) == 0 &&
	    store_enrolment_current(w.st, p.id, &en) == 0 &&
	    store_job_pending(w.st, en.id, "session", &j) == 0)
		s2 = j.due_at;
	store_enrolment_clear(&en);
	CHECK(s2 > T0 + 35 * HOUR);
	CHECK(engine_run_due(w.e, s2) >= 1);			/* 2 opens */
	world_close(&w);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM jobs WHERE kind = "
	    "'missed' AND status = 'failed'"), 1);

	write_proto(proto_path, 2, "two", "  upgrade = { from = { 1 } },\n",
	    "");
	clock_init(CLOCK_MANUAL, s2 + HOUR);
	if (world_open(&w, db) != 0)
		return;
	CHECK(engine_run_due(w.e, s2 + HOUR) >= 1);		/* the old one */
	world_close(&w);
	CHECK_INT(raw_int(db, "SELECT count(*) FROM sessions WHERE status = "
	    "'due'"), 1);
	db_unlink(db);
}

int
main(void)
{
	char	*cause = NULL;
	int	 rc;

	log_set_level(LOG_ERROR);
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(proto_path, sizeof proto_path, "%s/vp.lua", test_dir);
	if (config_load(&cfg, NULL, &cause) != 0) {
		fprintf(stderr, "config: %s\n", cause);
		return 2;
	}
	TEST(test_keep_version);
	TEST(test_upgrade);
	TEST(test_refused);
	TEST(test_helpers);
	TEST(test_upgrade_declaration);
	TEST(test_migration);
	TEST(test_rescan);
	TEST(test_retry_at_start);
	TEST(test_stale_missed_retried);
	rc = TEST_END();
	config_free(&cfg);
	unlink(proto_path);
	rmdir(test_dir);
	return rc;
}
