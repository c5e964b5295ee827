/*
 * engine_ask.c: asking questionnaires one question at a time.
 *
 * A patient has at most one questionnaire in progress (patients.ask_q). Each
 * answer is checked against its question's type, stored in the answers
 * table, and only then acknowledged by the next question, so an answer the
 * bot has reacted to is never lost. A questionnaire asked while another is
 * open waits an hour.
 *
 * Three questionnaires are the engine's own: "setup" (consent, time zone,
 * reminder time) at enrolment, "stop" (confirm /stop) and "erase" (confirm
 * /erase). Their texts come
 * from the catalog (q_setup_consent, ...); protocols' from the protocol.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "config.h"
#include "dialog.h"
#include "engine_int.h"
#include "luajson.h"
#include "tz.h"
#include "xmalloc.h"

static void
engine_ask_question(struct proto_question *q, const char *id,
    enum proto_qtype type, const char *clear)
{
	memset(q, 0, sizeof *q);
	q->id = xstrdup(id);
	q->type = type;
	q->clear = xstrdup(clear);
}

void
engine_ask_init(struct engine *e)
{
	e->setup.id = xstrdup("setup");
	e->setup.n = 3;
	e->setup.q = xcalloc(3, sizeof *e->setup.q);
	engine_ask_question(&e->setup.q[0], "consent", Q_YESNO, "yes");
	engine_ask_question(&e->setup.q[1], "timezone", Q_ZONE, "1");
	engine_ask_question(&e->setup.q[2], "reminder", Q_TIME, "1");
	e->stop.id = xstrdup("stop");
	e->stop.n = 1;
	e->stop.q = xcalloc(1, sizeof *e->stop.q);
	engine_ask_question(&e->stop.q[0], "confirm", Q_YESNO, "yes");
	e->erase.id = xstrdup("erase");
	e->erase.n = 1;
	e->erase.q = xcalloc(1, sizeof *e->erase.q);
	engine_ask_question(&e->erase.q[0], "confirm", Q_YESNO, "no");
}

static void
engine_ask_free_one(struct proto_questionnaire *qs)
{
	int	i;

	for (i = 0; i < qs->n; i++) {
		free(qs->q[i].id);
		free(qs->q[i].clear);
		if (qs->meta != NULL) {
			free(qs->meta[i]);
			free(qs->meta_key[i]);
		}
	}
	free(qs->meta);
	free(qs->meta_key);
	free(qs->q);
	free(qs->id);
}

void
engine_ask_free(struct engine *e)
{
	engine_ask_free_one(&e->setup);
	engine_ask_free_one(&e->stop);
	engine_ask_free_one(&e->erase);
}

static int
engine_ask_builtin(const struct proto_questionnaire *qs)
{
	return strcmp(qs->id, "setup") == 0 || strcmp(qs->id, "stop") == 0 ||
	    strcmp(qs->id, "erase") == 0;
}

static const struct proto_questionnaire *
engine_ask_find(struct engine_op *op, const char *id)
{
	if (strcmp(id, "setup") == 0)
		return &op->e->setup;
	if (strcmp(id, "stop") == 0)
		return &op->e->stop;
	if (strcmp(id, "erase") == 0)
		return &op->e->erase;
	return op->p != NULL ? proto_questionnaire(op->p, id) : NULL;
}

/* The default that "1" stands for in the setup questions. */
static const char *
engine_ask_default(struct engine_op *op, const struct proto_question *q,
    char *buf, size_t size)
{
	const struct config	*cfg = op->e->cfg;

	if (q->type == Q_ZONE)
		return cfg->timezone;
	if (q->type == Q_TIME) {
		snprintf(buf, size, "%02d:%02d", cfg->reminder_time / 60,
		    cfg->reminder_time % 60);
		return buf;
	}
	return NULL;
}

/* The key a question's printed metadata is kept under: lang, yes and no,
 * each with its NUL (texts cannot hold one, so no two keys collide). */
static char *
engine_ask_key(const char *lang, const char *yes, const char *no)
{
	size_t	 nl = strlen(lang) + 1, ny = strlen(yes) + 1;
	size_t	 nn = strlen(no) + 1;
	char	*key = xmalloc(nl + ny + nn);

	memcpy(key, lang, nl);
	memcpy(key + nl, yes, ny);
	memcpy(key + nl + ny, no, nn);
	return key;
}

static int
engine_ask_key_is(const char *key, const char *lang, const char *yes,
    const char *no)
{
	if (strcmp(key, lang) != 0)
		return 0;
	key += strlen(key) + 1;
	if (strcmp(key, yes) != 0)
		return 0;
	key += strlen(key) + 1;
	return strcmp(key, no) == 0;
}

/*
 * The printed metadata of question `i` of `qs` in the patient's language.
 * It depends only on the question, the language and the yes/no texts, so
 * it is printed once and kept with the question (freed with it) until one
 * of those changes: building and printing it was a sixth of an answer.
 */
static const char *
engine_ask_meta(struct engine_op *op, const struct proto_questionnaire *cqs,
    int i)
{
	/* The cache is not part of what the questionnaire means. */
	struct proto_questionnaire	*qs = (struct proto_questionnaire *)cqs;
	const char			*yes = engine_text(op, "yes");
	const char			*no = engine_text(op, "no");
	cJSON				*meta;

	if (qs->meta == NULL) {
		qs->meta = xcalloc((size_t)qs->n, sizeof *qs->meta);
		qs->meta_key = xcalloc((size_t)qs->n, sizeof *qs->meta_key);
	}
	if (qs->meta[i] != NULL && engine_ask_key_is(qs->meta_key[i],
	    op->pt.lang, yes, no))
		return qs->meta[i];
	free(qs->meta[i]);
	free(qs->meta_key[i]);
	meta = dialog_meta(qs->id, &qs->q[i], op->pt.lang, i, qs->n, yes, no);
	qs->meta[i] = luajson_print(meta);
	cJSON_Delete(meta);
	qs->meta_key[i] = engine_ask_key(op->pt.lang, yes, no);
	return qs->meta[i];
}

/* Sends question `i` of `qs` with the metadata adapters render. */
static int
engine_ask_send(struct engine_op *op, const struct proto_questionnaire *qs,
    int i)
{
	const struct proto_question	*q = &qs->q[i];
	char				 key[96], params[160], buf[16], *body;
	const char			*def;
	int				 rc;

	if (engine_ask_builtin(qs)) {
		snprintf(key, sizeof key, "q_%s_%s", qs->id, q->id);
		def = engine_ask_default(op, q, buf, sizeof buf);
		snprintf(params, sizeof params, "{\"default\":\"%s\"}",
		    def != NULL ? def : "");
		body = catalog_render(engine_text(op, key), params);
	} else
		body = xstrdup(proto_text_get(&q->text, op->pt.lang));
	rc = engine_send_text(op, op->pt.chat, body,
	    engine_ask_meta(op, qs, i));
	free(body);
	return rc;
}

int
engine_ask_confirm(const char *id)
{
	return strcmp(id, "stop") == 0 || strcmp(id, "erase") == 0;
}

int
engine_ask(struct engine_op *op, const char *id)
{
	const struct proto_questionnaire	*qs = engine_ask_find(op, id);
	char					 key[64];
	cJSON					*data;
	const char				*open = op->pt.ask_q;

	if (qs == NULL)
		return 0;
	/*
	 * One questionnaire at a time. A confirmation sets the one it
	 * interrupts aside (ask_prev), and one that comes due while a
	 * confirmation is open waits there too: both are asked when the
	 * patient says no. Any other waits an hour.
	 */
	if (open[0] != '\0' && strcmp(open, id) != 0) {
		if (engine_ask_confirm(open) && !engine_ask_confirm(id)) {
			snprintf(op->pt.ask_prev, sizeof op->pt.ask_prev,
			    "%s", id);
			return 0;
		}
		if (!engine_ask_confirm(id))
			return engine_job(op, "ask", id, op->now + 3600);
		if (!engine_ask_confirm(open))
			snprintf(op->pt.ask_prev, sizeof op->pt.ask_prev,
			    "%s", open);
	}
	snprintf(op->pt.ask_q, sizeof op->pt.ask_q, "%s", id);
	if (store_answer_last(op->e->st, op->pt.id, &op->pt.ask_from) != 0)
		return -1;
	op->pt.ask_i = 0;
	if (!engine_ask_builtin(qs)) {
		data = cJSON_CreateObject();
		cJSON_AddStringToObject(data, "questionnaire", id);
		engine_emit(op, "checkin_request", data);
		snprintf(key, sizeof key, "intro_%s", id);
		if ((op->p != NULL && proto_message(op->p, op->pt.lang,
		    key) != NULL) || catalog_get(op->e->cat, op->pt.lang,
		    key) != NULL)
			engine_say(op, key, NULL);
	}
	return engine_ask_send(op, qs, 0);
}

int
engine_ask_again(struct engine_op *op)
{
	const struct proto_questionnaire	*qs;

	if (op->pt.ask_q[0] == '\0' ||
	    (qs = engine_ask_find(op, op->pt.ask_q)) == NULL ||
	    op->pt.ask_i >= qs->n)
		return 0;
	return engine_ask_send(op, qs, op->pt.ask_i);
}

/* ---- completing a questionnaire ----------------------------------- */

static int
engine_ask_setup_done(struct engine_op *op, cJSON *answers)
{
	cJSON	*consent = cJSON_GetObjectItem(answers, "consent");
	cJSON	*zone = cJSON_GetObjectItem(answers, "timezone");
	cJSON	*remind = cJSON_GetObjectItem(answers, "reminder");
	char	 params[160];
	char	*body;

	if (!cJSON_IsTrue(consent)) {
		if (engine_invite_give_back(op) != 0)
			return -1;
		snprintf(op->en.status, sizeof op->en.status, ENROL_STOPPED);
		op->en.ended_at = op->now;
		op->pt.consent = 0;
		return engine_send(op, op->pt.chat,
		    engine_text(op, "consent_declined"), NULL);
	}
	op->pt.consent = 1;
	snprintf(op->pt.tz, sizeof op->pt.tz, "%s", zone->valuestring);
	op->pt.remind_min = tz_parse_hhmm(remind->valuestring);
	snprintf(op->en.status, sizeof op->en.status, ENROL_ACTIVE);
	op->en.enrolled_at = op->now;
	snprintf(params, sizeof params, "{\"zone\":\"%s\",\"time\":\"%s\"}",
	    op->pt.tz, remind->valuestring);
	body = catalog_render(engine_text(op, "setup_done"), params);
	engine_send(op, op->pt.chat, body, NULL);
	free(body);
	engine_emit(op, "enrolled", NULL);
	if (engine_plan_end(op) != 0)
		return -1;
	return engine_call(op, EV_ENROLLED, NULL, NULL, NULL);
}

/* The patient said no to /stop or /erase: the questionnaire it set aside
 * is asked again, from its start (the answers given before the
 * interruption stay stored, but the patient sees whole questionnaires). */
static int
engine_ask_cancelled(struct engine_op *op, const char *key)
{
	char	id[sizeof op->pt.ask_prev];

	if (engine_send(op, op->pt.chat, engine_text(op, key), NULL) != 0)
		return -1;
	if (op->pt.ask_prev[0] == '\0')
		return 0;
	snprintf(id, sizeof id, "%s", op->pt.ask_prev);
	op->pt.ask_prev[0] = '\0';
	/* Answered while the protocol is missing (engine_inbound): its
	 * questionnaire is asked by a job, which waits for the protocol
	 * (failed, then retried when it loads). */
	if (engine_ask_find(op, id) == NULL && op->p == NULL)
		return engine_job(op, "ask", id, op->now);
	return engine_ask(op, id);
}

static int
engine_ask_stop_done(struct engine_op *op, cJSON *answers)
{
	if (!cJSON_IsTrue(cJSON_GetObjectItem(answers, "confirm")))
		return engine_ask_cancelled(op, "stop_cancelled");
	if (engine_invite_give_back(op) != 0)
		return -1;
	op->pt.ask_prev[0] = '\0';
	snprintf(op->en.status, sizeof op->en.status, ENROL_STOPPED);
	op->en.ended_at = op->now;
	if (store_job_cancel(op->e->st, op->en.id, NULL, op->now) != 0)
		return -1;
	engine_emit(op, "stopped", NULL);
	return engine_send(op, op->pt.chat, engine_text(op, "stopped"), NULL);
}

static int
engine_ask_done(struct engine_op *op, const char *id, const char *answers)
{
	cJSON	*json;
	int	 rc;

	if (strcmp(id, "setup") == 0 || strcmp(id, "stop") == 0 ||
	    strcmp(id, "erase") == 0) {
		json = cJSON_Parse(answers);
		if (strcmp(id, "erase") == 0)
			rc = cJSON_IsTrue(cJSON_GetObjectItem(json, "confirm")) ?
			    engine_erase(op) :
			    engine_ask_cancelled(op, "erase_cancelled");
		else
			rc = strcmp(id, "setup") == 0 ?
			    engine_ask_setup_done(op, json) :
			    engine_ask_stop_done(op, json);
		cJSON_Delete(json);
		return rc;
	}
	if (engine_send(op, op->pt.chat, engine_text(op, "thanks"), NULL) != 0)
		return -1;
	return engine_call(op, EV_ANSWERED, id, answers, NULL);
}

/* ---- an answer ---------------------------------------------------- */

static int
engine_ask_quiet(struct engine_op *op, const char *hhmm)
{
	const struct config	*cfg = op->e->cfg;

	return tz_quiet_minute(tz_parse_hhmm(hhmm), cfg->quiet_from,
	    cfg->quiet_to);
}

static int
engine_ask_hint(struct engine_op *op, const struct proto_question *q,
    const char *hint)
{
	const struct config	*cfg = op->e->cfg;
	char			 params[160];
	char			*body;

	snprintf(params, sizeof params, "{\"min\":%d,\"max\":%d,\"from\":"
	    "\"%02d:%02d\",\"to\":\"%02d:%02d\",\"count\":%d}", q->min, q->max,
	    cfg->quiet_from / 60, cfg->quiet_from % 60, cfg->quiet_to / 60,
	    cfg->quiet_to % 60, q->noptions);
	body = catalog_render(engine_text(op, hint), params);
	engine_send(op, op->pt.chat, body, NULL);
	free(body);
	return engine_ask_again(op);
}

/* The answers so far, in a JSON object as each question's type gives them
 * (a question the protocol no longer has gives its text); a question
 * answered twice keeps the later answer. */
struct engine_answers {
	const struct proto_questionnaire	*qs;
	cJSON					*obj;
};

static void
engine_ask_collect(void *ud, const char *question, const char *value)
{
	struct engine_answers		*a = ud;
	const struct proto_question	*q = proto_question(a->qs, question);

	cJSON_DeleteItemFromObject(a->obj, question);
	cJSON_AddItemToObject(a->obj, question, q != NULL ?
	    dialog_json(q, value) : cJSON_CreateString(value));
}

/* Returns the answers of the questionnaire in progress as JSON text (free
 * it), or NULL if the store failed. */
static char *
engine_ask_answers(struct engine_op *op, const struct proto_questionnaire *qs)
{
	struct engine_answers	a = { qs, cJSON_CreateObject() };
	char			*text = NULL;

	if (store_answer_since(op->e->st, op->pt.id, op->pt.ask_from,
	    engine_ask_collect, &a) == 0)
		text = luajson_print(a.obj);
	cJSON_Delete(a.obj);
	return text;
}

int
engine_answer(struct engine_op *op, const char *text)
{
	const struct proto_questionnaire	*qs;
	const struct proto_question		*q;
	const char				*hint, *def;
	char					 buf[16], id[32], *value, *answers;
	int					 rc, declined;

	qs = engine_ask_find(op, op->pt.ask_q);
	if (qs == NULL || op->pt.ask_i >= qs->n) {
		/* The protocol was changed under an open questionnaire. */
		op->pt.ask_q[0] = '\0';
		return engine_send(op, op->pt.chat,
		    engine_text(op, "not_understood"), NULL);
	}
	q = &qs->q[op->pt.ask_i];
	def = engine_ask_default(op, q, buf, sizeof buf);
	if (dialog_parse(q, text, op->pt.lang, def, &value, &hint) != 0)
		return engine_ask_hint(op, q, hint);
	if (q->type == Q_TIME && engine_ask_quiet(op, value)) {
		free(value);
		return engine_ask_hint(op, q, "hint_time_quiet");
	}
	rc = store_answer_insert(op->e->st, op->pt.id, op->has_en ? op->en.id : 0,
	    qs->id, q->id, value, op->now);
	/* Declining consent ends setup at once: nothing more is asked. */
	declined = strcmp(qs->id, "setup") == 0 && q->type == Q_YESNO &&
	    strcmp(value, "no") == 0;
	free(value);
	if (rc != 0)
		return -1;
	if (++op->pt.ask_i < qs->n && !declined)
		return engine_ask_send(op, qs, op->pt.ask_i);
	if ((answers = engine_ask_answers(op, qs)) == NULL)
		return -1;
	snprintf(id, sizeof id, "%s", op->pt.ask_q);
	op->pt.ask_q[0] = '\0';
	op->pt.ask_i = 0;
	rc = engine_ask_done(op, id, answers);
	free(answers);
	return rc;
}

/* ---- buttons and poll options -------------------------------------- */

/* Is question `idx` (1-based) of `qnr` still the one the patient at
 * (adapter, chat) is asked? 1, 0, or -1 on a database error. */
static int
engine_question_live(struct engine *e, const char *adapter,
    const char *chat, const char *qnr, size_t qlen, long idx)
{
	struct store_patient	p;
	int			live, rc;

	memset(&p, 0, sizeof p);
	if ((rc = store_patient_find(e->st, adapter, chat, &p)) != 0)
		return rc < 0 ? -1 : 0;
	live = strlen(p.ask_q) == qlen && strncmp(p.ask_q, qnr, qlen) == 0 &&
	    p.ask_i + 1 == idx;
	return live;
}

int
engine_answer_text(struct engine *e, const char *adapter, const char *chat,
    const char *id, char **text)
{
	const char	*qnr, *value, *colon;
	char		*end;
	long		 idx;

	*text = NULL;
	if (strncmp(id, "a:", 2) != 0 ||
	    (value = strrchr(id, ':')) == id + 1)
		return -1;
	/* Values and indexes hold no ':'; the questionnaire id might. */
	for (colon = value - 1; colon > id + 1 && *colon != ':'; colon--)
		;
	if (colon <= id + 1)
		return -1;
	qnr = id + 2;
	idx = strtol(colon + 1, &end, 10);
	if (end != value || value[1] == '\0')
		return -1;
	switch (engine_question_live(e, adapter, chat, qnr,
	    (size_t)(colon - qnr), idx)) {
	case 1:
		break;
	case 0:
		return 0;
	default:
		return ENGINE_EDB;
	}
	*text = xstrdup(value + 1);
	return 1;
}
