/*
 * engine_act.c: calling a protocol's handlers and applying the actions they
 * record; sending messages; the jobs that drive a course (session, missed,
 * ask, remind).
 *
 * The engine, not the protocol, holds the safety floor: no session is ever
 * scheduled sooner than the protocol's min_hours after the last one, nothing
 * is sent in quiet hours, and a course ends at its declared length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "clock.h"
#include "config.h"
#include "engine_int.h"
#include "log.h"
#include "luajson.h"
#include "tz.h"
#include "xmalloc.h"

/* ---- texts and sending -------------------------------------------- */

/* The engine's text for `key` in the patient's language (never NULL); the
 * protocol's own message of that key comes first (catalog.h). */
const char *
engine_text(struct engine_op *op, const char *key)
{
	const char	*lang = op->has_pt ? op->pt.lang : op->e->cfg->language;
	const char	*t = NULL;

	if (op->p != NULL)
		t = proto_message(op->p, lang, key);
	if (t == NULL)
		t = catalog_get(op->e->cat, lang, key);
	return t != NULL ? t : key;
}

/* Queues a message; takes `meta`. chat ENGINE_CLINICIAN goes to the
 * clinician of the patient's adapter. */
int
engine_send(struct engine_op *op, const char *chat, const char *body,
    cJSON *meta)
{
	char	*m = meta != NULL ? luajson_print(meta) : NULL;
	int	 rc;

	rc = engine_send_text(op, chat, body, m);
	free(m);
	cJSON_Delete(meta);
	return rc;
}

/* engine_send() with the metadata printed already (or NULL). */
int
engine_send_text(struct engine_op *op, const char *chat, const char *body,
    const char *meta)
{
	char	*b, *m;
	int	 rc;

	/* A protocol can build any bytes (string.char(255)); invalid UTF-8
	 * must never reach an adapter, where it would make the JSON of a
	 * Telegram or Matrix request invalid and the message undeliverable. */
	b = engine_utf8_clean(body, SIZE_MAX);
	m = meta != NULL ? engine_utf8_clean(meta, SIZE_MAX) : NULL;
	rc = engine_queue(op, op->pt.id, chat, b != NULL ? b : body,
	    m != NULL ? m : meta);
	free(b);
	free(m);
	return rc;
}

/* Length of the valid UTF-8 character at `p` (1 to 4), or 0. */
static size_t
engine_utf8_char(const unsigned char *p)
{
	size_t	n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* No overlong forms, surrogates or code points past U+10FFFF. */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	for (i = 1; i < n; i++)		/* stops at the NUL too */
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

char *
engine_utf8_clean(const char *s, size_t max)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			*out;
	size_t			 i, n, len = 0;
	int			 bad = 0;
	uint64_t		 w;

	/* Plain ASCII first, eight bytes at a time (bounded by the length,
	 * so never past the end): nearly every text is, and every message
	 * and its metadata pass here. */
	n = strlen(s);
	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		if (w & UINT64_C(0x8080808080808080))
			break;
	}
	for (; p[i] != '\0'; i += n ? n : 1) {
		if ((n = engine_utf8_char(p + i)) == 0)
			bad = 1;
	}
	if (!bad && i <= max)
		return NULL;
	/* At most 3 bytes (U+FFFD) for each byte in. */
	out = xmalloc(i * 3 + 1);
	for (i = 0; p[i] != '\0'; i += n ? n : 1) {
		n = engine_utf8_char(p + i);
		if (len + (n ? n : 3) > max)
			break;
		if (n == 0) {
			memcpy(out + len, "\xef\xbf\xbd", 3);
			len += 3;
		} else {
			memcpy(out + len, p + i, n);
			len += n;
		}
	}
	out[len] = '\0';
	return out;
}

/* Says a message by key, the protocol's own text first; emits `message`. */
int
engine_say(struct engine_op *op, const char *key, const char *params)
{
	const char	*tmpl = NULL;
	char		*body;
	cJSON		*data;
	int		 rc;

	if (op->p != NULL)
		tmpl = proto_message(op->p, op->pt.lang, key);
	if (tmpl == NULL)
		tmpl = engine_text(op, key);
	body = catalog_render(tmpl, params);
	rc = engine_send(op, op->pt.chat, body, NULL);
	data = cJSON_CreateObject();
	cJSON_AddStringToObject(data, "key", key);
	cJSON_AddStringToObject(data, "text", body);
	engine_emit(op, "message", data);
	free(body);
	return rc;
}

/* ---- time --------------------------------------------------------- */

static int64_t
engine_align(struct engine_op *op, int64_t t, int at)
{
	const struct config	*cfg = op->e->cfg;

	if (at == PROTO_AT_REMINDER)
		t = tz_next_minute(op->pt.tz, t, op->pt.remind_min);
	else if (at >= 0)
		t = tz_next_minute(op->pt.tz, t, at);
	return tz_after_quiet(op->pt.tz, t, cfg->quiet_from, cfg->quiet_to);
}

/* Turns a protocol's `when` into an instant, never in the past. */
int
engine_when(struct engine_op *op, const struct proto_when *w, int64_t *t)
{
	int64_t	base = op->now;

	if (w->from_session && op->en.last_session_at > 0)
		base = op->en.last_session_at;
	base += w->offset;
	if (base < op->now)
		base = op->now;
	*t = engine_align(op, base, w->at);
	return 0;
}

/* ---- jobs and sessions -------------------------------------------- */

int
engine_job(struct engine_op *op, const char *kind, const char *arg,
    int64_t due)
{
	struct store_job	j;

	memset(&j, 0, sizeof j);
	j.patient_id = op->pt.id;
	j.enrolment_id = op->en.id;
	snprintf(j.kind, sizeof j.kind, "%s", kind);
	snprintf(j.arg, sizeof j.arg, "%s", arg != NULL ? arg : "");
	j.due_at = due;
	return store_job_insert(op->e->st, &j);
}

/* A job about session `ss` (missed, remind): its id is the job's arg. */
int
engine_session_job(struct engine_op *op, const char *kind,
    const struct store_session *ss, int64_t due)
{
	char	arg[24];

	snprintf(arg, sizeof arg, "%lld", (long long)ss->id);
	return engine_job(op, kind, arg, due);
}

/*
 * Plans the next session at `due`, or later if the protocol's minimum
 * interval after the last session is not over by then. One next session at
 * a time: a new plan replaces the old (and the same plan again keeps it).
 */
int
engine_schedule_session(struct engine_op *op, int64_t due)
{
	struct store_job	j;
	int64_t			floor = 0;

	if (op->en.last_session_at > 0)
		floor = op->en.last_session_at +
		    (int64_t)op->p->min_interval_h * 3600;
	if (due < floor)
		due = engine_align(op, floor, PROTO_AT_REMINDER);
	memset(&j, 0, sizeof j);
	j.patient_id = op->pt.id;
	j.enrolment_id = op->en.id;
	snprintf(j.kind, sizeof j.kind, "session");
	j.due_at = due;
	return store_job_plan(op->e->st, &j, op->now);
}

/*
 * A course's end, for its "end" job: a day after its last day, the grace
 * letting the check-in about a session on that day come in. (A session
 * that comes due on or after the last day ends the course sooner.)
 */
static int64_t
engine_course_end(const struct engine_op *op)
{
	return op->en.enrolled_at + ((int64_t)op->p->course_days + 1) * 86400;
}

/*
 * Plans the course's "end" job. A course ends at its end whatever its
 * protocol planned: one that waits for an answer that never comes, or
 * puts the next session off day after day, must not stay open for good.
 * Planned whenever a course becomes active (consent, /resume, a lifted
 * hold, an upgrade); a pause cancels it with every other job.
 */
int
engine_plan_end(struct engine_op *op)
{
	struct store_job	j;

	memset(&j, 0, sizeof j);
	j.patient_id = op->pt.id;
	j.enrolment_id = op->en.id;
	snprintf(j.kind, sizeof j.kind, "end");
	j.due_at = engine_course_end(op);
	return store_job_plan(op->e->st, &j, op->now);
}

/* The "end" job: the course ends, unless it is longer than planned (an
 * upgrade, or a job planned at the start of a daemon that did not plan
 * them yet), when the job plans itself again. */
static int
engine_job_end(struct engine_op *op)
{
	if (op->now < engine_course_end(op))
		return engine_plan_end(op);
	return engine_finish(op, "course_complete");
}

/* Ends the course: no more jobs, and the patient is told. */
int
engine_finish(struct engine_op *op, const char *reason)
{
	cJSON		*data;
	char		 key[96];
	const char	*text;

	snprintf(op->en.status, sizeof op->en.status, "%s", ENROL_FINISHED);
	op->en.ended_at = op->now;
	op->held = 1;
	if (store_job_cancel(op->e->st, op->en.id, NULL, op->now) != 0)
		return -1;
	data = cJSON_CreateObject();
	cJSON_AddStringToObject(data, "reason", reason);
	engine_emit(op, "course_finished", data);
	/* "course_finished_pain_free" if the protocol or catalog has it. */
	snprintf(key, sizeof key, "course_finished_%s", reason);
	text = engine_text(op, key);
	if (strcmp(text, key) == 0)
		text = engine_text(op, "course_finished");
	return engine_send(op, op->pt.chat, text, NULL);
}

static char *
engine_iso(int64_t t)
{
	char	buf[32];

	return xstrdup(clock_iso(t, buf, sizeof buf));
}

/* ---- applying actions --------------------------------------------- */

static int
engine_act_pressure(struct engine_op *op, int level)
{
	cJSON	*data = cJSON_CreateObject();
	char	 params[128];
	char	*body;

	cJSON_AddStringToObject(data, "from", op->p->levels[op->en.pressure]);
	cJSON_AddStringToObject(data, "to", op->p->levels[level]);
	engine_emit(op, "pressure_changed", data);
	op->en.pressure = level;
	snprintf(params, sizeof params, "{\"pressure\":\"%s\"}",
	    op->p->levels[level]);
	body = catalog_render(engine_text(op, "pressure_changed"), params);
	engine_send(op, op->pt.chat, body, NULL);
	free(body);
	return 0;
}

static int
engine_act_postpone(struct engine_op *op, const struct proto_action *a)
{
	cJSON	*data;
	int64_t	 until;
	char	*iso;

	engine_when(op, &a->when, &until);
	/* engine_schedule_session() replaces the planned session itself. */
	if (a->name != NULL) {
		if (store_job_cancel(op->e->st, op->en.id, "session",
		    op->now) != 0 || engine_job(op, "ask", a->name, until) != 0)
			return -1;
	} else if (engine_schedule_session(op, until) != 0)
		return -1;
	op->held = 1;
	data = cJSON_CreateObject();
	iso = engine_iso(until);
	cJSON_AddStringToObject(data, "until", iso);
	cJSON_AddStringToObject(data, "reason", a->reason);
	free(iso);
	engine_emit(op, "postponed", data);
	return 0;
}

static int
engine_act_pause(struct engine_op *op, const char *reason)
{
	cJSON	*data = cJSON_CreateObject();

	snprintf(op->en.status, sizeof op->en.status, "%s", ENROL_HOLD);
	op->held = 1;
	if (store_job_cancel(op->e->st, op->en.id, NULL, op->now) != 0)
		return -1;
	cJSON_AddStringToObject(data, "reason", reason);
	engine_emit(op, "paused", data);
	return engine_send(op, op->pt.chat, engine_text(op, "paused_hold"),
	    NULL);
}

static int
engine_act_escalate(struct engine_op *op, const char *reason)
{
	cJSON	*data = cJSON_CreateObject();
	char	*body, *params;
	cJSON	*pj = cJSON_CreateObject();

	cJSON_AddStringToObject(data, "reason", reason);
	engine_emit(op, "escalation", data);
	cJSON_AddNumberToObject(pj, "patient", (double)op->pt.id);
	cJSON_AddStringToObject(pj, "protocol", op->p->id);
	cJSON_AddNumberToObject(pj, "day", (double)((op->now -
	    op->en.enrolled_at) / 86400));
	cJSON_AddStringToObject(pj, "reason", reason);
	params = luajson_print(pj);
	cJSON_Delete(pj);
	body = catalog_render(engine_text(op, "escalation"), params);
	free(params);
	data = cJSON_CreateObject();
	cJSON_AddStringToObject(data, "type", "escalation");
	cJSON_AddNumberToObject(data, "patient", (double)op->pt.id);
	engine_send(op, ENGINE_CLINICIAN, body, data);
	free(body);
	return 0;
}

static int
engine_act_ask(struct engine_op *op, const struct proto_action *a)
{
	int64_t	t;

	if (a->when.offset == 0 && a->when.at == PROTO_AT_EXACT &&
	    !a->when.from_session)
		return engine_ask(op, a->name);
	engine_when(op, &a->when, &t);
	return engine_job(op, "ask", a->name, t);
}

/*
 * May the handler's action apply to a course that is not active? Words and
 * escalations always may. A paused course (or one on hold) still takes
 * what ends it or makes it safer: a questionnaire answered while paused
 * (the patient paused half way through the screening) may find a
 * contraindication, and dropping that finish or hold would let /resume
 * start the sessions. What plans a session or a question waits for
 * /resume (or the clinician's /clear), whose handler plans again.
 */
static int
engine_act_allowed(const struct engine_op *op, int kind)
{
	if (kind == ACT_SAY || kind == ACT_ESCALATE)
		return 1;
	if (!engine_running(op))
		return 0;
	if (strcmp(op->en.status, ENROL_ACTIVE) == 0)
		return 1;
	if (strcmp(op->en.status, ENROL_PAUSED) != 0 &&
	    strcmp(op->en.status, ENROL_HOLD) != 0)
		return 0;
	return kind == ACT_FINISH || kind == ACT_PRESSURE ||
	    (kind == ACT_PAUSE && strcmp(op->en.status, ENROL_PAUSED) == 0);
}

static int
engine_apply(struct engine_op *op, const struct proto_action *a)
{
	int64_t	t;

	if (!engine_act_allowed(op, a->kind))
		return 0;
	switch (a->kind) {
	case ACT_SCHEDULE:
		engine_when(op, &a->when, &t);
		return engine_schedule_session(op, t);
	case ACT_ASK:
		return engine_act_ask(op, a);
	case ACT_SAY:
		return engine_say(op, a->name, a->params);
	case ACT_PRESSURE:
		return engine_act_pressure(op, a->level);
	case ACT_POSTPONE:
		return engine_act_postpone(op, a);
	case ACT_PAUSE:
		return engine_act_pause(op, a->reason);
	case ACT_ESCALATE:
		return engine_act_escalate(op, a->reason);
	case ACT_FINISH:
		return engine_finish(op, a->reason);
	}
	return 0;
}

/* ---- handlers and their defaults ---------------------------------- */

/*
 * What happens for an event the protocol has no handler for: the sensible
 * course of a plain protocol, so a small one needs few handlers.
 */
static int
engine_default(struct engine_op *op, enum proto_event ev,
    struct proto_result *res)
{
	struct proto_action	*a;

	res->v = xcalloc(1, sizeof *res->v);
	a = &res->v[0];
	a->when.at = PROTO_AT_REMINDER;
	switch (ev) {
	case EV_ENROLLED:
		if (proto_questionnaire(op->p, "screening") != NULL) {
			a->kind = ACT_ASK;
			a->name = xstrdup("screening");
			a->when.at = PROTO_AT_EXACT;
		} else
			a->kind = ACT_SCHEDULE;
		break;
	case EV_SESSION_DONE:
		if (proto_questionnaire(op->p, "checkin") != NULL) {
			a->kind = ACT_ASK;
			a->name = xstrdup("checkin");
			a->when.offset = 24 * 3600;
			a->when.at = PROTO_AT_EXACT;
		} else {
			a->kind = ACT_SCHEDULE;
			a->when.offset = (int64_t)op->p->target_interval_h * 3600;
			a->when.from_session = 1;
		}
		break;
	case EV_SESSION_SKIPPED:
	case EV_SESSION_MISSED:
		a->kind = ACT_SCHEDULE;
		a->when.offset = 12 * 3600;
		break;
	case EV_RESUMED:
		a->kind = ACT_SCHEDULE;
		break;
	case EV_ANSWERED:
		/* Else the course would stall after screening or a check-in:
		 * the next session, the first at the next reminder time. */
		a->kind = ACT_SCHEDULE;
		if (op->en.sessions_done > 0) {
			a->when.offset = (int64_t)op->p->target_interval_h * 3600;
			a->when.from_session = 1;
		}
		break;
	default:
		return 0;
	}
	res->n = res->cap = 1;
	return 0;
}

const double engine_eval_bounds[ENGINE_EVAL_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1
};

/* proto_call(), counted and timed for the metrics. */
static int
engine_timed_call(struct engine_op *op, enum proto_event ev,
    const struct proto_ctx *ctx, struct proto_result *res)
{
	struct engine_stats	*st = &op->e->stats;
	const char		*limit;
	uint64_t		 t0;
	double			 s;
	int			 rc, i;

	if (!op->p->has[ev])
		return proto_call(op->p, ev, ctx, res, &op->error);
	t0 = clock_mono_ns();
	rc = proto_call(op->p, ev, ctx, res, &op->error);
	s = (double)(clock_mono_ns() - t0) / 1e9;
	st->lua_calls++;
	st->eval_seconds += s;
	for (i = 0; i < ENGINE_EVAL_BUCKETS && s > engine_eval_bounds[i]; i++)
		;
	st->eval_buckets[i]++;
	if (rc != 0 && (limit = proto_last_limit(op->p)) != NULL) {
		if (strcmp(limit, "memory") == 0)
			st->lua_memory_limits++;
		else
			st->lua_budget_limits++;
	}
	return rc;
}

int
engine_call(struct engine_op *op, enum proto_event ev,
    const char *questionnaire, const char *answers, const char *text)
{
	struct proto_ctx	 ctx;
	struct proto_result	 res;
	int			 i, rc = 0;

	memset(&ctx, 0, sizeof ctx);
	ctx.catalog = op->e->cat;
	ctx.now = op->now;
	ctx.tz = op->pt.tz;
	ctx.lang = op->pt.lang;
	ctx.status = op->en.status;
	ctx.pressure = op->en.pressure;
	ctx.sessions_done = op->en.sessions_done;
	ctx.session = op->session;
	ctx.enrolled_at = op->en.enrolled_at;
	ctx.last_session_at = op->en.last_session_at;
	ctx.state = op->en.state;
	ctx.questionnaire = questionnaire;
	ctx.answers = answers;
	ctx.text = text;
	ctx.by = op->by;
	ctx.from_version = op->from_version;
	if (engine_timed_call(op, ev, &ctx, &res) != 0)
		return ENGINE_EPROTO;
	if (!op->p->has[ev])
		engine_default(op, ev, &res);
	free(op->en.state);
	op->en.state = res.state;
	res.state = NULL;
	for (i = 0; i < res.n && rc == 0; i++)
		rc = engine_apply(op, &res.v[i]);
	proto_result_clear(&res);
	return rc;
}

/* ---- the jobs ----------------------------------------------------- */

/* Appends `s` to the text being built in *buf (length *n, size *cap). */
static void
engine_append(char **buf, size_t *n, size_t *cap, const char *s)
{
	size_t	len = strlen(s);

	if (*n + len + 1 > *cap) {
		*cap = (*n + len + 1) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *n, s, len + 1);
	*n += len;
}

/* The reminder's text: the heading, the numbered steps, the closing line.
 * Built in one buffer, with the protocol's params parsed at its load. */
static char *
engine_remind_body(struct engine_op *op, const struct store_session *ss)
{
	const struct protocol	*p = op->p;
	char			 params[160], num[16], *body, *step;
	size_t			 n = 0, cap = 0;
	const cJSON		*pj = p->params_json;
	int			 i;

	snprintf(params, sizeof params, "{\"session\":%d,\"pressure\":\"%s\"}",
	    ss->number, p->levels[ss->pressure]);
	body = catalog_render(engine_text(op, "session_reminder"), params);
	n = strlen(body);
	cap = n + 1;
	for (i = 0; i < p->nsteps; i++) {
		/* Steps may name the protocol's params: "{seconds} seconds". */
		step = catalog_render_json(proto_text_get(&p->steps[i],
		    op->pt.lang), pj);
		snprintf(num, sizeof num, "\n%d. ", i + 1);
		engine_append(&body, &n, &cap, num);
		engine_append(&body, &n, &cap, step);
		free(step);
	}
	engine_append(&body, &n, &cap, "\n");
	engine_append(&body, &n, &cap, engine_text(op, "session_reminder_end"));
	return body;
}

/* Sends the reminder for an open session, with the steps and buttons. */
int
engine_remind(struct engine_op *op, const struct store_session *ss)
{
	const struct protocol	*p = op->p;
	cJSON			*meta, *data, *buttons;
	char			*body;

	/* The adapter found them unreachable (they blocked the bot): queue
	 * nothing that cannot arrive, but record it. They hear where they
	 * are when they write again (engine_returned). */
	if (op->pt.unreachable && !op->inbound) {
		data = cJSON_CreateObject();
		cJSON_AddNumberToObject(data, "session", ss->number);
		cJSON_AddStringToObject(data, "reason", "unreachable");
		engine_emit(op, "reminder_withheld", data);
		return 0;
	}
	body = engine_remind_body(op, ss);
	meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "type", "reminder");
	cJSON_AddNumberToObject(meta, "session", ss->number);
	/* For adapters that keep clinical detail off the screen until asked
	 * (telegram.private_reminders); a reply to the patient is asked. */
	cJSON_AddStringToObject(meta, "neutral",
	    engine_text(op, "session_reminder_private"));
	cJSON_AddStringToObject(meta, "details",
	    engine_text(op, "session_reminder_details"));
	if (op->inbound)
		cJSON_AddTrueToObject(meta, "reply");
	buttons = cJSON_AddArrayToObject(meta, "commands");
	cJSON_AddItemToArray(buttons, cJSON_CreateString("/done"));
	cJSON_AddItemToArray(buttons, cJSON_CreateString("/snooze"));
	cJSON_AddItemToArray(buttons, cJSON_CreateString("/skip"));
	engine_send(op, op->pt.chat, body, meta);
	free(body);
	data = cJSON_CreateObject();
	cJSON_AddNumberToObject(data, "session", ss->number);
	cJSON_AddStringToObject(data, "pressure", p->levels[ss->pressure]);
	engine_emit(op, "session_reminder", data);
	return 0;
}

/* A session comes due: open it, let the protocol object, remind. */
static int
engine_job_session(struct engine_op *op)
{
	struct store_session	ss;
	int			rc;

	if (op->now >= op->en.enrolled_at + (int64_t)op->p->course_days * 86400)
		return engine_finish(op, "course_complete");
	/* A session still open was neither done nor skipped: missed, and
	 * its own missed and snooze jobs go with it. */
	if (store_session_open(op->e->st, op->en.id, &ss) == 0 &&
	    (store_session_close(op->e->st, ss.id, "missed", op->now) != 0 ||
	    store_job_cancel2(op->e->st, op->en.id, "missed", "remind",
	    op->now) != 0))
		return -1;
	memset(&ss, 0, sizeof ss);
	ss.enrolment_id = op->en.id;
	ss.number = op->en.sessions_done + 1;
	ss.pressure = op->en.pressure;
	ss.due_at = op->now;
	snprintf(ss.status, sizeof ss.status, "due");
	if (store_session_insert(op->e->st, &ss) != 0)
		return -1;
	op->session = ss.number;
	if ((rc = engine_call(op, EV_SESSION_DUE, NULL, NULL, NULL)) != 0)
		return rc;
	if (op->held)
		return store_session_close(op->e->st, ss.id, "postponed",
		    op->now);
	ss.pressure = op->en.pressure;
	if (engine_remind(op, &ss) != 0)
		return -1;
	return engine_session_job(op, "missed", &ss, op->now +
	    (int64_t)op->p->miss_after_h * 3600);
}

/*
 * The open session a missed or snooze job is about. The job names its
 * session's id, so one that outlived its session (closed by a newer one, a
 * retry after a failure) finds nothing open and does nothing, instead of
 * acting on the next session. Jobs of older daemons name none: any open
 * session, as then.
 */
static int
engine_job_open_session(struct engine_op *op, const struct store_job *j,
    struct store_session *ss)
{
	int	rc;

	if ((rc = store_session_open(op->e->st, op->en.id, ss)) != 0)
		return rc;
	if (j->arg[0] != '\0' && strtoll(j->arg, NULL, 10) != ss->id)
		return STORE_NOTFOUND;
	return 0;
}

static int
engine_job_missed(struct engine_op *op, const struct store_job *j)
{
	struct store_session	ss;
	int			rc;

	if ((rc = engine_job_open_session(op, j, &ss)) != 0)
		return rc == STORE_NOTFOUND ? 0 : -1;
	if (store_session_close(op->e->st, ss.id, "missed", op->now) != 0)
		return -1;
	op->session = ss.number;
	return engine_call(op, EV_SESSION_MISSED, NULL, NULL, NULL);
}

/* A snoozed reminder: remind again if the session is still open. */
static int
engine_job_remind(struct engine_op *op, const struct store_job *j)
{
	struct store_session	ss;
	int			rc;

	if ((rc = engine_job_open_session(op, j, &ss)) != 0)
		return rc == STORE_NOTFOUND ? 0 : -1;
	return engine_remind(op, &ss);
}

/*
 * A job is planned outside quiet hours, but may still run inside them: the
 * daemon was down when it came due, a failed job is retried at a reload at
 * night, a `missed` job runs a day of real hours after a reminder across a
 * clock change. What it says would wake the patient, so it runs again at
 * the end of quiet hours instead: 1 when put off, 0 to run it now.
 */
static int
engine_job_quiet(struct engine_op *op, const struct store_job *j)
{
	const struct config	*cfg = op->e->cfg;
	int64_t			 t;

	t = tz_after_quiet(op->pt.tz, op->now, cfg->quiet_from, cfg->quiet_to);
	if (t <= op->now)
		return 0;
	return engine_job(op, j->kind, j->arg, t) == 0 ? 1 : -1;
}

int
engine_run_job(struct engine_op *op, const struct store_job *j)
{
	int	rc;

	/* Jobs are cancelled when a course pauses or ends; one that slipped
	 * through (an older daemon's) is closed without effect. */
	if (!engine_running(op) || strcmp(op->en.status, ENROL_ACTIVE) != 0)
		return 0;
	if ((rc = engine_job_quiet(op, j)) != 0)
		return rc < 0 ? -1 : 0;
	if (strcmp(j->kind, "session") == 0)
		return engine_job_session(op);
	if (strcmp(j->kind, "missed") == 0)
		return engine_job_missed(op, j);
	if (strcmp(j->kind, "remind") == 0)
		return engine_job_remind(op, j);
	if (strcmp(j->kind, "end") == 0)
		return engine_job_end(op);
	if (strcmp(j->kind, "ask") == 0) {
		if (proto_questionnaire(op->p, j->arg) == NULL) {
			op->error = xasprintf("no questionnaire '%s'", j->arg);
			return ENGINE_EPROTO;
		}
		return engine_ask(op, j->arg);
	}
	log_warn("event=job_unknown kind=%s", log_q(j->kind));
	return 0;
}
