/*
 * engine_cmd.c: the commands every adapter shares.
 *
 *   /start [CODE]  enrol (consent, time zone, reminder time, then the
 *                  protocol's own start, usually screening)
 *   /help /today /progress      say where things stand
 *   /done /skip /snooze         about the session that is due
 *   /pause /resume /stop        about the course
 *   /erase         delete everything stored about the patient (asks first)
 *
 * A command works in any state; one that does not fit the state says why
 * and changes nothing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "config.h"
#include "engine_int.h"
#include "invite.h"
#include "log.h"
#include "luajson.h"
#include "tz.h"
#include "xmalloc.h"

#define ENGINE_SNOOZE	3600	/* seconds a /snooze puts a reminder off */

int
engine_is_command(const char *text)
{
	while (isspace((unsigned char)*text))
		text++;
	return text[0] == '/' && isalpha((unsigned char)text[1]);
}

/* Says a catalog text with parameters. */
static int
engine_cmd_say(struct engine_op *op, const char *key, cJSON *params)
{
	char	*p = params != NULL ? luajson_print(params) : NULL;
	char	*body = catalog_render(engine_text(op, key), p);
	int	 rc = engine_send(op, op->pt.chat, body, NULL);

	free(body);
	free(p);
	cJSON_Delete(params);
	return rc;
}

/* "Tue 3 Mar, 18:00" in the patient's zone (%-d: glibc, no padding). */
static void
engine_cmd_when(struct engine_op *op, int64_t t, char *buf, size_t size)
{
	struct tm	tm;

	if (tz_local(op->pt.tz, t, &tm) != 0 ||
	    strftime(buf, size, "%a %-d %b, %H:%M", &tm) == 0)
		snprintf(buf, size, "?");
}

static int
engine_cmd_active(struct engine_op *op)
{
	return engine_running(op) && strcmp(op->en.status, ENROL_ACTIVE) == 0;
}

/* Explains why a session command does not apply now. */
static int
engine_cmd_not_now(struct engine_op *op)
{
	struct store_job	 j;
	char			 when[64];
	cJSON			*params;

	if (!engine_running(op))
		return engine_cmd_say(op, "not_enrolled", NULL);
	if (strcmp(op->en.status, ENROL_PAUSED) == 0)
		return engine_cmd_say(op, "status_paused", NULL);
	if (strcmp(op->en.status, ENROL_HOLD) == 0)
		return engine_cmd_say(op, "status_hold", NULL);
	if (strcmp(op->en.status, ENROL_SETUP) == 0)
		return engine_ask_again(op);
	if (store_job_pending(op->e->st, op->en.id, "session", &j) != 0) {
		/* Postponed: the next step is a questionnaire, not a session. */
		if (store_job_pending(op->e->st, op->en.id, "ask", &j) != 0)
			return engine_cmd_say(op, "no_session_planned", NULL);
		engine_cmd_when(op, j.due_at, when, sizeof when);
		params = cJSON_CreateObject();
		cJSON_AddStringToObject(params, "when", when);
		return engine_cmd_say(op, "next_question", params);
	}
	engine_cmd_when(op, j.due_at, when, sizeof when);
	params = cJSON_CreateObject();
	cJSON_AddStringToObject(params, "when", when);
	cJSON_AddStringToObject(params, "pressure",
	    op->p->levels[op->en.pressure]);
	return engine_cmd_say(op, "next_session", params);
}

/* ---- /start ------------------------------------------------------- */

static int
engine_cmd_enrol(struct engine_op *op, struct protocol *p)
{
	const struct config	*cfg = op->e->cfg;
	cJSON			*params;

	if (!op->has_pt) {
		snprintf(op->pt.tz, sizeof op->pt.tz, "%s", cfg->timezone);
		op->pt.remind_min = cfg->reminder_time;
		op->pt.created_at = op->now;
		if (store_patient_insert(op->e->st, &op->pt) != 0)
			return -1;
		op->has_pt = 1;
	}
	store_enrolment_clear(&op->en);
	memset(&op->en, 0, sizeof op->en);
	op->en.patient_id = op->pt.id;
	snprintf(op->en.protocol, sizeof op->en.protocol, "%s", p->id);
	op->en.version = p->version;
	snprintf(op->en.status, sizeof op->en.status, ENROL_SETUP);
	op->en.pressure = p->start_level;
	op->en.enrolled_at = op->now;
	op->en.state = xstrdup("{}");
	if (store_enrolment_insert(op->e->st, &op->en) != 0)
		return -1;
	op->has_en = 1;
	op->p = p;
	op->pt.ask_q[0] = '\0';
	op->pt.ask_prev[0] = '\0';
	params = cJSON_CreateObject();
	cJSON_AddStringToObject(params, "title",
	    proto_text_get(&p->title, op->pt.lang));
	if (engine_cmd_say(op, "welcome", params) != 0)
		return -1;
	return engine_ask(op, "setup");
}

/*
 * Copies the code of "/start CODE" into `code` (trailing blanks dropped) if
 * it has the form of a code (invite_code_valid); else 0. Anything else
 * cannot be a code we issued, so it is refused without a look-up.
 */
static int
engine_cmd_invite_code(const char *arg, char *code, size_t size)
{
	size_t	n = strlen(arg);

	while (n > 0 && isspace((unsigned char)arg[n - 1]))
		n--;
	if (n == 0 || n >= size)
		return 0;
	memcpy(code, arg, n);
	code[n] = '\0';
	return invite_code_valid(code);
}

/*
 * /start CODE: enrols on the invite's protocol, records the code on the
 * course and takes one use, all in this event's transaction, so a failure
 * later in the event gives the use back.
 */
static int
engine_cmd_start_invite(struct engine_op *op, const char *arg)
{
	struct store_invite	 inv;
	struct protocol		*p;
	char			 code[STORE_INVITE_CODE_MAX + 1];
	int			 rc;

	if (!engine_cmd_invite_code(arg, code, sizeof code))
		return engine_cmd_say(op, "invite_unknown", NULL);
	if ((rc = store_invite_get(op->e->st, code, &inv)) != 0)
		return rc == STORE_NOTFOUND ?
		    engine_cmd_say(op, "invite_unknown", NULL) : -1;
	if (op->now >= inv.expires_at)
		return engine_cmd_say(op, "invite_expired", NULL);
	if (inv.uses_left == 0)
		return engine_cmd_say(op, "invite_used", NULL);
	/* A valid code for a protocol that is not loaded (removed from the
	 * folder, a failed reload): nothing is enrolled and the use is kept,
	 * so the same code works once the operator, told by the log, fixes
	 * it; the patient is told to try the same link later, which is more
	 * than the generic holding message says. The code is never logged. */
	if ((p = engine_protocol(op->e, inv.protocol)) == NULL) {
		log_error("event=invite_protocol_missing protocol=%s",
		    inv.protocol);
		return engine_cmd_say(op, "invite_unavailable", NULL);
	}
	if (store_invite_consume(op->e->st, code, op->now) != 0)
		return -1;
	if ((rc = engine_cmd_enrol(op, p)) != 0)
		return rc;
	return store_enrolment_set_invite(op->e->st, op->en.id, code);
}

/*
 * A course that ends in its setup (consent declined, /stop before it was
 * given) gives back the use its invite took: else a single-use code would
 * be spent on a "no", and the patient who changes their mind could not
 * start again with the link they were given. An erasure does not: it
 * forgets the patient, and the clinic's used code stays used.
 */
int
engine_invite_give_back(struct engine_op *op)
{
	if (!op->has_en || strcmp(op->en.status, ENROL_SETUP) != 0)
		return 0;
	return store_invite_give_back(op->e->st, op->en.id);
}

static int
engine_cmd_start(struct engine_op *op, const char *arg)
{
	struct protocol	*p;

	/* Checked first, so an enrolled patient's code is never used up. */
	if (op->has_pt && engine_running(op)) {
		if (strcmp(op->en.status, ENROL_SETUP) == 0)
			return engine_ask_again(op);
		return engine_cmd_say(op, "already_enrolled", NULL);
	}
	if (arg[0] != '\0')
		return engine_cmd_start_invite(op, arg);
	/* Without a code, the default protocol. A clinic that wants every
	 * patient to come with a code would refuse here (a later
	 * require_invite setting). */
	if ((p = engine_default_protocol(op->e)) == NULL) {
		op->error = xstrdup("no protocol is loaded");
		return ENGINE_EPROTO;
	}
	return engine_cmd_enrol(op, p);
}

/* ---- session commands --------------------------------------------- */

static int
engine_cmd_close_session(struct engine_op *op, const char *status,
    struct store_session *ss)
{
	int	rc;

	if ((rc = store_session_open(op->e->st, op->en.id, ss)) != 0)
		return rc;
	if (store_session_close(op->e->st, ss->id, status, op->now) != 0 ||
	    store_job_cancel2(op->e->st, op->en.id, "missed", "remind",
	    op->now) != 0)
		return -1;
	op->session = ss->number;
	return 0;
}

/*
 * /done and /skip: close the session that is due as `status` ("done" or
 * "skipped"), tell the patient, and let the protocol plan what comes next.
 */
static int
engine_cmd_end_session(struct engine_op *op, const char *status,
    enum proto_event ev)
{
	struct store_session	 ss;
	char			 kind[24];
	cJSON			*data;
	int			 rc;

	if (!engine_cmd_active(op))
		return engine_cmd_not_now(op);
	if ((rc = engine_cmd_close_session(op, status, &ss)) != 0)
		return rc == STORE_NOTFOUND ? engine_cmd_not_now(op) : -1;
	if (ev == EV_SESSION_DONE) {
		op->en.sessions_done++;
		op->en.last_session_at = op->now;
	}
	snprintf(kind, sizeof kind, "session_%s", status);
	data = cJSON_CreateObject();
	cJSON_AddNumberToObject(data, "session", ss.number);
	engine_emit(op, kind, data);
	if (engine_cmd_say(op, kind, NULL) != 0)
		return -1;
	return engine_call(op, ev, NULL, NULL, NULL);
}

static int
engine_cmd_snooze(struct engine_op *op)
{
	struct store_session	 ss;
	struct proto_when	 w = { ENGINE_SNOOZE, PROTO_AT_EXACT, 0 };
	int64_t			 t;
	char			 when[64];
	cJSON			*params;
	int			 rc;

	if (!engine_cmd_active(op))
		return engine_cmd_not_now(op);
	if ((rc = store_session_open(op->e->st, op->en.id, &ss)) != 0)
		return rc == STORE_NOTFOUND ? engine_cmd_not_now(op) : -1;
	engine_when(op, &w, &t);
	if (store_job_cancel(op->e->st, op->en.id, "remind", op->now) != 0 ||
	    engine_session_job(op, "remind", &ss, t) != 0)
		return -1;
	engine_cmd_when(op, t, when, sizeof when);
	params = cJSON_CreateObject();
	cJSON_AddStringToObject(params, "when", when);
	return engine_cmd_say(op, "snoozed", params);
}

/* ---- course commands ---------------------------------------------- */

static int
engine_cmd_today(struct engine_op *op)
{
	struct store_session	ss;

	if (op->pt.ask_q[0] != '\0')
		return engine_ask_again(op);
	if (engine_cmd_active(op) &&
	    store_session_open(op->e->st, op->en.id, &ss) == 0)
		return engine_remind(op, &ss);
	return engine_cmd_not_now(op);
}

/* The course's day (1, 2, ...) now, or the day it ended on: an ended
 * course does not go on counting, and none counts past its length (the
 * last session job ends it a little after). */
static int64_t
engine_cmd_day(struct engine_op *op)
{
	int64_t	until = op->en.ended_at != 0 ? op->en.ended_at : op->now;
	int64_t	day = (until - op->en.enrolled_at) / 86400 + 1;

	if (day > op->p->course_days)
		day = op->p->course_days;
	return day < 1 ? 1 : day;
}

static int
engine_cmd_progress(struct engine_op *op)
{
	cJSON	*params;

	/* (No protocol: an ended course whose protocol is gone.) */
	if (!op->has_en || strcmp(op->en.status, ENROL_SETUP) == 0 ||
	    op->p == NULL)
		return engine_cmd_say(op, "not_enrolled", NULL);
	params = cJSON_CreateObject();
	cJSON_AddNumberToObject(params, "done", op->en.sessions_done);
	cJSON_AddNumberToObject(params, "day", (double)engine_cmd_day(op));
	cJSON_AddNumberToObject(params, "days", op->p->course_days);
	cJSON_AddStringToObject(params, "pressure",
	    op->p->levels[op->en.pressure]);
	cJSON_AddStringToObject(params, "status", op->en.status);
	return engine_cmd_say(op, "progress", params);
}

static int
engine_cmd_pause(struct engine_op *op)
{
	cJSON	*data;

	if (!engine_cmd_active(op))
		return engine_cmd_not_now(op);
	snprintf(op->en.status, sizeof op->en.status, ENROL_PAUSED);
	if (store_job_cancel(op->e->st, op->en.id, NULL, op->now) != 0)
		return -1;
	data = cJSON_CreateObject();
	cJSON_AddStringToObject(data, "reason", "patient");
	engine_emit(op, "paused", data);
	return engine_cmd_say(op, "paused", NULL);
}

static int
engine_cmd_resume(struct engine_op *op)
{
	char	q[sizeof op->pt.ask_q];
	int64_t	from;
	int	rc;

	if (!engine_running(op) || strcmp(op->en.status, ENROL_PAUSED) != 0) {
		if (engine_running(op) && strcmp(op->en.status, ENROL_HOLD) == 0)
			return engine_cmd_say(op, "status_hold", NULL);
		return engine_cmd_say(op, "not_paused", NULL);
	}
	snprintf(op->en.status, sizeof op->en.status, ENROL_ACTIVE);
	engine_emit(op, "resumed", NULL);
	if (engine_cmd_say(op, "resumed", NULL) != 0 ||
	    engine_plan_end(op) != 0)
		return -1;
	op->by = "patient";
	snprintf(q, sizeof q, "%s", op->pt.ask_q);
	from = op->pt.ask_from;
	if ((rc = engine_call(op, EV_RESUMED, NULL, NULL, NULL)) != 0)
		return rc;
	/* A questionnaire left open at the pause: its question again, so
	 * the patient sees what their next message answers (unless the
	 * handler asked something itself). */
	if (q[0] != '\0' && strcmp(q, op->pt.ask_q) == 0 &&
	    from == op->pt.ask_from)
		return engine_ask_again(op);
	return 0;
}

static int
engine_cmd_stop(struct engine_op *op)
{
	if (!engine_running(op))
		return engine_cmd_say(op, "not_enrolled", NULL);
	return engine_ask(op, "stop");
}

/* ---- erasure ------------------------------------------------------ */

/*
 * Runs in the event's transaction, after the confirming answer was stored
 * (it goes too). The audit trail keeps one "erased" event: the internal id,
 * which nothing links to a person once the patient row is gone, and the
 * time. The goodbye goes out under patient 0, so no row ties that id to the
 * chat; it is the only trace of the chat left, a fixed text. The op then
 * holds no patient or course, so nothing is written back after.
 */
int
engine_erase(struct engine_op *op)
{
	struct store	*st = op->e->st;
	int64_t		 id = op->pt.id;
	int		 rc;

	if (store_patient_erase(st, id, op->pt.adapter, op->pt.chat,
	    op->now) != 0 ||
	    store_event_insert(st, id, 0, op->now, "erased", NULL) != 0)
		return -1;
	if (op->e->deliver != NULL &&
	    strcmp(op->pt.adapter, op->e->deliver_adapter) == 0)
		engine_forget_deliveries(op->e, id, op->pt.chat);
	rc = engine_queue(op, 0, op->pt.chat, engine_text(op, "erased"),
	    NULL);
	log_info("event=patient_erased patient=%lld", (long long)id);
	op->e->erased = 1;
	op->has_pt = 0;
	op->has_en = 0;
	return rc;
}

/* ---- dispatch ----------------------------------------------------- */

const char *
engine_command_name(const char *text, char *name, size_t size)
{
	const char	*arg;
	size_t		 n = 0;

	while (isspace((unsigned char)*text))
		text++;
	text++;
	/* "/done@strigil_bot" on Telegram groups: the suffix names the bot. */
	while (isalpha((unsigned char)text[n]) && n < size - 1) {
		name[n] = (char)tolower((unsigned char)text[n]);
		n++;
	}
	name[n] = '\0';
	for (arg = text + n; *arg != '\0' && !isspace((unsigned char)*arg);)
		arg++;
	while (isspace((unsigned char)*arg))
		arg++;
	return arg;
}

int
engine_command(struct engine_op *op, const char *adapter, const char *chat,
    const char *text)
{
	char		 name[16];
	const char	*arg;

	(void)adapter;
	(void)chat;
	arg = engine_command_name(text, name, sizeof name);
	if (strcmp(name, "start") == 0)
		return engine_cmd_start(op, arg);
	if (!op->has_pt)
		return engine_cmd_say(op, "unknown_patient", NULL);
	if (strcmp(name, "help") == 0)
		return engine_cmd_say(op, "help", NULL);
	if (strcmp(name, "today") == 0)
		return engine_cmd_today(op);
	if (strcmp(name, "done") == 0)
		return engine_cmd_end_session(op, "done", EV_SESSION_DONE);
	if (strcmp(name, "skip") == 0)
		return engine_cmd_end_session(op, "skipped",
		    EV_SESSION_SKIPPED);
	if (strcmp(name, "snooze") == 0)
		return engine_cmd_snooze(op);
	if (strcmp(name, "progress") == 0)
		return engine_cmd_progress(op);
	if (strcmp(name, "pause") == 0)
		return engine_cmd_pause(op);
	if (strcmp(name, "resume") == 0)
		return engine_cmd_resume(op);
	if (strcmp(name, "stop") == 0)
		return engine_cmd_stop(op);
	if (strcmp(name, "erase") == 0)
		return engine_ask(op, "erase");
	return engine_cmd_say(op, "unknown_command", NULL);
}
