/*
 * simulate.c: the simulator's patients and what they answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "config.h"
#include "dialog.h"
#include "engine.h"
#include "log.h"
#include "luajson.h"
#include "protocol.h"
#include "scenario.h"
#include "schedule.h"
#include "simulate.h"
#include "store.h"
#include "tz.h"
#include "xmalloc.h"

#define SIM_ADAPTER	"sim"

/* The kinds --json prints: what the engine did, as the issue names them. */
static const char *sim_kinds[] = { "session_reminder", "checkin_request",
    "pressure_changed", "postponed", "escalation", "paused",
    "course_finished", "message", NULL };

struct sim_patient {
	int	*cursor;	/* per scenario questionnaire: next line */
	int	*line;		/* per scenario questionnaire: line in use */
	int64_t	 asked_at;	/* the last question, to see it asked again */
	char	 asked[96];
	int	 repeats;
};

/* A message to a patient that wants an answer: a question (its metadata)
 * or a reminder (meta NULL). */
struct sim_msg {
	int	 n;
	char	*meta;
};

/* What a question's metadata says: which question of which questionnaire. */
struct sim_ask {
	char	qn[32];
	char	id[48];
	int	index;
};

struct sim {
	const struct sim_opts	*o;
	struct store		*st;
	struct engine		*e;
	struct protocol		*p;	/* the same file, for the questions */
	struct scenario		*sc;
	struct sim_patient	*pts;
	uint64_t		 seq;
	uint64_t		 kinds[16];
	int			 failed;
	char			*cause;		/* why the run failed, if known */
	unsigned		 batched;	/* events since the last commit */
	int			 mode;		/* STORE_BATCH_FAST or _SAFE */
	struct sim_msg		*q;		/* delivered, not yet answered */
	size_t			 qhead, qlen, qcap;
	FILE			*held;		/* a fast pass's lines, or NULL */
};

/*
 * The in-memory store needs no durability: events are grouped into batches
 * of this many, which saves SQLite a commit per event. A run is first
 * tried in fast batches (no journal, no savepoints: store.h); should an
 * event need undoing (a protocol error), that store is thrown away and the
 * run starts again in safe batches, where each event is a savepoint.
 */
#define SIM_BATCH	4096

/* At most this many patients' courses are cached (about 500 bytes each). */
#define SIM_CACHE_MAX	262144

/* ---- validating the answers file against the protocol --------------- */

static const struct proto_question *
sim_question(struct sim *s, const char *questionnaire, const char *id)
{
	const struct proto_questionnaire *qs;

	if ((qs = proto_questionnaire(s->p, questionnaire)) == NULL)
		return NULL;
	return proto_question(qs, id);
}

/* Every key must be a question and every value a valid answer, or the
 * simulated patient would be asked again forever. */
static int
sim_check_scenario(struct sim *s, char **cause)
{
	const struct scenario_q		*q;
	const struct scenario_line	*l;
	const struct proto_question	*pq;
	const char			*hint;
	char				*v;
	int				 i, j, k;

	for (i = 0; s->sc != NULL && i < s->sc->nqs; i++) {
		q = &s->sc->qs[i];
		if (strcmp(q->id, "setup") == 0)
			continue;
		if (proto_questionnaire(s->p, q->id) == NULL) {
			*cause = xasprintf("%s:%d: the protocol has no "
			    "questionnaire '%s'", s->sc->name,
			    q->lines[0].lineno, q->id);
			return -1;
		}
		for (j = 0; j < q->nlines; j++) {
			l = &q->lines[j];
			for (k = 0; k < l->n; k++) {
				if ((pq = sim_question(s, q->id,
				    l->keys[k])) == NULL) {
					*cause = xasprintf("%s:%d: '%s' has no "
					    "question '%s'", s->sc->name,
					    l->lineno, q->id, l->keys[k]);
					return -1;
				}
				if (dialog_parse(pq, l->values[k], s->p->lang,
				    NULL, &v, &hint) != 0) {
					*cause = xasprintf("%s:%d: '%s' is not "
					    "an answer to '%s' (%s)",
					    s->sc->name, l->lineno,
					    l->values[k], l->keys[k], hint);
					return -1;
				}
				free(v);
			}
		}
	}
	return 0;
}

/* ---- the patients' side --------------------------------------------- */

static int
sim_q_index(struct sim *s, const char *questionnaire)
{
	int	i;

	for (i = 0; s->sc != NULL && i < s->sc->nqs; i++)
		if (strcmp(s->sc->qs[i].id, questionnaire) == 0)
			return i;
	return -1;
}

/* What patient `n` answers to a question; its scenario line is chosen at
 * the first question of each questionnaire. */
static const char *
sim_answer(struct sim *s, int n, const struct sim_ask *a)
{
	const char			*qn, *id, *v = NULL;
	const struct proto_question	*pq;
	const struct scenario_q		*sq;
	struct sim_patient		*pt = &s->pts[n - 1];
	int				 qi, index;

	qn = a->qn;
	id = a->id;
	index = a->index;
	if ((qi = sim_q_index(s, qn)) >= 0) {
		sq = &s->sc->qs[qi];
		if (index == 1) {
			pt->line[qi] = pt->cursor[qi] < sq->nlines ?
			    pt->cursor[qi]++ : sq->nlines - 1;
		}
		v = scenario_value(&sq->lines[pt->line[qi]], id);
	}
	if (v != NULL)
		return v;
	if (strcmp(qn, "setup") == 0) {
		if (strcmp(id, "timezone") == 0)
			return s->o->tz;
		return strcmp(id, "consent") == 0 ? "yes" : "1";
	}
	if ((pq = sim_question(s, qn, id)) == NULL)
		return NULL;
	return pq->clear;
}

/* The same question asked again at the same instant means the engine
 * refused the answer (a hint was sent); answering it again would loop
 * forever, so the run stops naming the answer. */
static int
sim_refused(struct sim *s, int n, const struct sim_ask *a, const char *answer)
{
	struct sim_patient	*pt = &s->pts[n - 1];
	const char		*qn, *id;
	char			 key[96];
	size_t			 nq, ni;
	int			 qi, line = 0;

	qn = a->qn;
	id = a->id;
	/* qn and id are at most 31 and 47 bytes (struct sim_ask). */
	nq = strlen(qn);
	ni = strlen(id);
	memcpy(key, qn, nq);
	key[nq] = '.';
	memcpy(key + nq + 1, id, ni + 1);
	if (pt->asked_at != clock_now() || strcmp(pt->asked, key) != 0) {
		pt->asked_at = clock_now();
		memcpy(pt->asked, key, nq + ni + 2);
		pt->repeats = 0;
		return 0;
	}
	if (++pt->repeats < 3)
		return 0;
	if ((qi = sim_q_index(s, qn)) >= 0 && scenario_value(
	    &s->sc->qs[qi].lines[pt->line[qi]], id) != NULL)
		line = s->sc->qs[qi].lines[pt->line[qi]].lineno;
	if (line > 0)
		s->cause = xasprintf("%s:%d: '%s' is refused as an answer to "
		    "'%s'", s->sc->name, line, answer, key);
	else
		s->cause = xasprintf("patient %d: the all-clear answer '%s' "
		    "is refused by '%s'", n, answer, key);
	s->failed = 1;
	return 1;
}

/* Writes `prefix` (at most 3 bytes) and `n` in decimal, at least `width`
 * (at most 20) digits, into buf (24 bytes): this runs for every message,
 * where snprintf cost more than the rest of the simulator's side. */
static char *
sim_u64(char *buf, const char *prefix, uint64_t n, size_t width)
{
	char	 digits[21];
	size_t	 k = 0, len = strlen(prefix);

	do {
		digits[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0 || k < width);
	memcpy(buf, prefix, len);
	while (k > 0)
		buf[len++] = digits[--k];
	buf[len] = '\0';
	return buf;
}

static void
sim_reply(struct sim *s, const char *chat, const char *text)
{
	char	id[32];

	/* Zero-padded, so that ids sort as they are made (as a Telegram
	 * update id does): each goes in at the end of the inbox's unique
	 * index instead of somewhere in its middle. */
	sim_u64(id, "s", ++s->seq, 12);
	if (engine_inbound(s->e, SIM_ADAPTER, chat, id, text, clock_now()) < 0)
		s->failed = 1;
	s->batched++;
}

static void
sim_batch_next(struct sim *s)
{
	if (s->batched < SIM_BATCH)
		return;
	s->batched = 0;
	if (store_batch_commit(s->st) != 0 ||
	    store_batch_begin(s->st, s->mode) != 0)
		s->failed = 1;
}

/*
 * The type of a message's metadata. The engine writes "type" first, so a
 * prefix test spares parsing every reminder; anything else is parsed.
 */
static const char *
sim_meta_type(const char *meta, char *buf, size_t size)
{
	static const char	*known[] = { "question", "reminder", NULL };
	cJSON			*json;
	const char		*t;
	size_t			 n;
	int			 i;

	if (meta == NULL)
		return NULL;
	for (i = 0; known[i] != NULL; i++) {
		n = strlen(known[i]);
		if (strncmp(meta, "{\"type\":\"", 9) == 0 &&
		    strncmp(meta + 9, known[i], n) == 0 && meta[9 + n] == '"')
			return known[i];
	}
	json = cJSON_Parse(meta);
	t = cJSON_GetStringValue(cJSON_GetObjectItem(json, "type"));
	snprintf(buf, size, "%s", t != NULL ? t : "");
	cJSON_Delete(json);
	return buf;
}

/* Copies the plain string after `key` (no escapes), 0 or -1. */
static int
sim_scan_string(const char *meta, const char *key, char *buf, size_t size)
{
	const char	*p = strstr(meta, key);
	size_t		 n = 0;

	if (p == NULL)
		return -1;
	for (p += strlen(key); *p != '"'; p++) {
		if (*p == '\0' || *p == '\\' || n + 1 >= size)
			return -1;
		buf[n++] = *p;
	}
	buf[n] = '\0';
	return 0;
}

/*
 * Reads the question from its metadata. The engine prints ids without
 * escapes, so scanning the text spares a parse per question; anything
 * unexpected is parsed.
 */
static int
sim_ask_read(const char *meta, struct sim_ask *a)
{
	const char	*p, *qn, *id;
	cJSON		*json;
	int		 rc = -1;

	if (sim_scan_string(meta, "\"questionnaire\":\"", a->qn,
	    sizeof a->qn) == 0 && sim_scan_string(meta, "\"question\":\"",
	    a->id, sizeof a->id) == 0 &&
	    (p = strstr(meta, "\"index\":")) != NULL) {
		a->index = atoi(p + 8);
		return 0;
	}
	json = cJSON_Parse(meta);
	qn = cJSON_GetStringValue(cJSON_GetObjectItem(json, "questionnaire"));
	id = cJSON_GetStringValue(cJSON_GetObjectItem(json, "question"));
	if (qn != NULL && id != NULL) {
		snprintf(a->qn, sizeof a->qn, "%s", qn);
		snprintf(a->id, sizeof a->id, "%s", id);
		a->index = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(json,
		    "index"));
		rc = 0;
	}
	cJSON_Delete(json);
	return rc;
}

/* Answers a question; NULL if there is nothing (more) to say. */
static const char *
sim_answer_question(struct sim *s, int n, const char *meta)
{
	struct sim_ask	 a;
	const char	*answer;

	if (sim_ask_read(meta, &a) != 0)
		return NULL;
	answer = sim_answer(s, n, &a);
	if (answer != NULL && sim_refused(s, n, &a, answer))
		answer = NULL;
	return answer;
}

/*
 * The simulator is the "sim" adapter and delivers in this process: the
 * engine stores each of its messages as sent and hands it over after the
 * commit (engine_set_deliver). Questions and reminders to patients are
 * kept to be answered in order; the rest needs no answer.
 */
static void
sim_take(void *ud, const struct engine_message *m)
{
	struct sim	*s = ud;
	const char	*type;
	char		 tbuf[32];
	int		 question;

	if (s->failed || m->chat[0] == '@')
		return;
	if ((type = sim_meta_type(m->meta, tbuf, sizeof tbuf)) == NULL)
		return;
	question = strcmp(type, "question") == 0;
	if (!question && strcmp(type, "reminder") != 0)
		return;
	if (s->qlen == s->qcap) {
		s->qcap = s->qcap ? s->qcap * 2 : 64;
		s->q = xrealloc(s->q, s->qcap * sizeof *s->q);
	}
	s->q[s->qlen].n = atoi(m->chat);
	s->q[s->qlen++].meta = question ? xstrdup(m->meta) : NULL;
}

/* Answers what the bot sent, in the order it was sent, until nothing is
 * left; -1 stops the run once it failed. */
static int
sim_deliver(void *ud)
{
	struct sim	*s = ud;
	struct sim_msg	 m;
	const char	*answer;
	char		 chat[24];

	while (!s->failed && s->qhead < s->qlen) {
		m = s->q[s->qhead++];
		if (m.meta != NULL)
			answer = sim_answer_question(s, m.n, m.meta);
		else
			answer = "/done";
		if (answer != NULL)
			sim_reply(s, sim_u64(chat, "", (uint64_t)m.n, 1),
			    answer);
		free(m.meta);
	}
	if (s->qhead == s->qlen)
		s->qhead = s->qlen = 0;
	sim_batch_next(s);
	return s->failed ? -1 : 0;
}

/* ---- output --------------------------------------------------------- */

static int
sim_kind(const char *kind)
{
	int	i;

	for (i = 0; sim_kinds[i] != NULL; i++)
		if (strcmp(sim_kinds[i], kind) == 0)
			return i;
	return -1;
}

/*
 * Prints a --json line, or holds it in a fast pass. A fast pass's lines
 * wait in a temporary file until it ends: should it be spoiled, the safe
 * pass prints them all again (protocols iterating a table may order things
 * differently in a new Lua state). A file, as a large run's output can
 * outgrow memory.
 */
static void
sim_print(struct sim *s, const char *text)
{
	if (s->held == NULL) {
		puts(text);
		return;
	}
	fputs(text, s->held);
	putc('\n', s->held);
}

/* Prints what a fast pass held; 0, or -1 if it could not be kept. */
static int
sim_release(FILE *held)
{
	char	buf[65536];
	size_t	n;

	if (fflush(held) != 0 || ferror(held) || fseek(held, 0, SEEK_SET) != 0)
		return -1;
	while ((n = fread(buf, 1, sizeof buf, held)) > 0)
		fwrite(buf, 1, n, stdout);
	return ferror(held) ? -1 : 0;
}

static void
sim_observe(void *ud, int64_t patient, int64_t t, const char *kind,
    const cJSON *data)
{
	struct sim	*s = ud;
	cJSON		*line, *item;
	char		 iso[32], *text;
	int		 k = sim_kind(kind);

	if (k < 0)
		return;
	s->kinds[k]++;
	if (!s->o->json || s->o->quiet)
		return;
	line = cJSON_CreateObject();
	cJSON_AddStringToObject(line, "t", clock_iso(t, iso, sizeof iso));
	cJSON_AddNumberToObject(line, "patient", (double)patient);
	cJSON_AddStringToObject(line, "kind", kind);
	cJSON_ArrayForEach(item, data)
		cJSON_AddItemToObject(line, item->string,
		    cJSON_Duplicate(item, 1));
	text = luajson_print(line);
	sim_print(s, text);
	free(text);
	cJSON_Delete(line);
}

static void
sim_summary(const struct sim_opts *o, const struct sim_result *r)
{
	int	i;

	if (o->json)
		return;
	printf("simulated %d patient(s) for %d days: %llu engine events, "
	    "%llu messages, %llu jobs in %.3f s\n", o->patients, o->days,
	    (unsigned long long)r->events, (unsigned long long)r->inbound,
	    (unsigned long long)r->jobs, r->seconds);
	for (i = 0; sim_kinds[i] != NULL; i++)
		printf("  %-18s %llu\n", sim_kinds[i],
		    (unsigned long long)r->kinds[i]);
	if (r->lua_errors > 0)
		printf("  protocol errors    %llu (see the log)\n",
		    (unsigned long long)r->lua_errors);
}

/* ---- the run -------------------------------------------------------- */

static int
sim_setup(struct sim *s, char **cause)
{
	const struct sim_opts	*o = s->o;
	struct proto_limits	 limits = { o->cfg->lua_memory,
	    o->cfg->lua_instructions };
	int			 i, nq;

	if (o->patients < 1 || o->patients > 1000000 || o->days < 1 ||
	    o->days > 3650) {
		*cause = xstrdup("--patients must be 1 to 1000000 and --days 1 "
		    "to 3650");
		return -1;
	}
	if (!tz_valid(o->tz)) {
		*cause = xasprintf("--tz: unknown time zone '%s'", o->tz);
		return -1;
	}
	if (proto_load(o->protocol, &limits, &s->p, cause) != 0)
		return -1;
	if (o->answers != NULL && scenario_load(o->answers, &s->sc, cause) != 0)
		return -1;
	if (sim_check_scenario(s, cause) != 0)
		return -1;
	if (store_open(&s->st, ":memory:", cause) != 0 ||
	    engine_new(&s->e, o->cfg, s->st, cause) != 0 ||
	    engine_load_file(s->e, o->protocol, cause) != 0)
		return -1;
	/* Every patient's course stays in memory between their events; room
	 * for the courses given up at enrolment too (store_cache.c). */
	store_cache_enable(s->st, o->patients < SIM_CACHE_MAX / 2 ?
	    2 * o->patients + 64 : SIM_CACHE_MAX);
	engine_set_observer(s->e, sim_observe, s);
	engine_set_deliver(s->e, SIM_ADAPTER, sim_take, s);
	nq = s->sc != NULL ? s->sc->nqs : 0;
	s->pts = xcalloc((size_t)o->patients, sizeof *s->pts);
	for (i = 0; i < o->patients; i++) {
		s->pts[i].cursor = xcalloc((size_t)nq + 1, sizeof(int));
		s->pts[i].line = xcalloc((size_t)nq + 1, sizeof(int));
	}
	return 0;
}

static void
sim_teardown(struct sim *s)
{
	int	i;

	for (i = 0; s->pts != NULL && i < s->o->patients; i++) {
		free(s->pts[i].cursor);
		free(s->pts[i].line);
	}
	free(s->pts);
	while (s->qhead < s->qlen)
		free(s->q[s->qhead++].meta);
	free(s->q);
	engine_free(s->e);
	store_close(s->st);
	scenario_free(s->sc);
	proto_free(s->p);
}

/* Enrols every patient and runs the course: 0, or -1 (s->failed). */
static int
sim_go(struct sim *s, int64_t start)
{
	const struct sim_opts	*o = s->o;
	char			 chat[24];
	int			 i;

	if (store_batch_begin(s->st, s->mode) != 0)
		s->failed = 1;
	for (i = 1; i <= o->patients && !s->failed; i++) {
		sim_u64(chat, "", (uint64_t)i, 1);
		sim_reply(s, chat, "/start");
		sim_deliver(s);
	}
	if (!s->failed && sched_run_until(s->e, start + (int64_t)o->days *
	    86400, sim_deliver, s) < 0)
		s->failed = 1;
	if (store_batch_commit(s->st) != 0)
		s->failed = 1;
	return s->failed ? -1 : 0;
}

#define SIM_SPOILED	1

/* One pass over the whole run on a store of its own: 0, SIM_SPOILED (run
 * it again in safe batches), or -1 with *cause set. */
static int
sim_pass(const struct sim_opts *o, int mode, int64_t start, FILE *held,
    struct sim_result *r, char **cause)
{
	struct sim		 s;
	const struct engine_stats *st;
	int			 rc = -1;

	memset(&s, 0, sizeof s);
	s.o = o;
	s.mode = mode;
	s.held = held;
	clock_init(CLOCK_MANUAL, start);
	if (sim_setup(&s, cause) != 0)
		goto out;
	if (sim_go(&s, start) != 0) {
		if (s.cause == NULL && store_batch_spoiled(s.st)) {
			rc = SIM_SPOILED;
			goto out;
		}
		*cause = s.cause != NULL ? s.cause :
		    xstrdup("the database failed during the simulation");
		s.cause = NULL;
		goto out;
	}
	st = engine_stats(s.e);
	r->events = st->events;
	r->inbound = st->inbound;
	r->jobs = st->jobs;
	r->lua_errors = st->lua_errors;
	memcpy(r->kinds, s.kinds, sizeof r->kinds);
	rc = 0;
out:
	free(s.cause);
	sim_teardown(&s);
	return rc;
}

int
sim_run(const struct sim_opts *o, struct sim_result *res)
{
	struct sim_result	 r;
	FILE			*held = NULL;
	char			*cause = NULL;
	uint64_t		 t0;
	int64_t			 start;
	int			 rc, mode = STORE_BATCH_FAST;

	memset(&r, 0, sizeof r);
	start = o->start >= 0 ? o->start : clock_now();
	t0 = clock_mono_ns();
	if (o->json && !o->quiet && (held = tmpfile()) == NULL) {
		/* Nowhere to hold the output: safe batches print as they go. */
		log_warn("event=simulate_no_tmpfile mode=safe");
		mode = STORE_BATCH_SAFE;
	}
	rc = sim_pass(o, mode, start, held, &r, &cause);
	r.passes = 1;
	if (rc == SIM_SPOILED) {
		/* An event had to be undone: start again where that works. */
		log_info("event=simulate_again mode=safe");
		if (held != NULL)
			fclose(held);
		held = NULL;
		rc = sim_pass(o, STORE_BATCH_SAFE, start, NULL, &r, &cause);
		r.passes = 2;
	}
	if (held != NULL) {
		if (sim_release(held) != 0 && rc == 0) {
			cause = xstrdup("the simulation's output could not be "
			    "kept in a temporary file");
			rc = -1;
		}
		fclose(held);
	}
	if (rc != 0) {
		fprintf(stderr, "strigil: %s\n", cause != NULL ? cause :
		    "the simulation failed");
		free(cause);
		return 1;
	}
	r.seconds = (double)(clock_mono_ns() - t0) / 1e9;
	sim_summary(o, &r);
	if (res != NULL)
		*res = r;
	return 0;
}

int
sim_main(const struct sim_opts *o)
{
	return sim_run(o, NULL);
}
