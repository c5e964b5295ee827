/*
 * engine_int.h: what the engine's own files share (engine.c, engine_act.c,
 * engine_ask.c, engine_cmd.c). Nothing outside core/engine*.c includes it.
 */
#ifndef STRIGIL_ENGINE_INT_H
#define STRIGIL_ENGINE_INT_H

#include "engine.h"
#include "protocol.h"
#include "store.h"

struct catalog;

struct engine_proto {
	char		*path;
	struct protocol	*p;
	char		*error;		/* the last reload's failure, or NULL */
};

struct engine_event {
	int64_t	 patient;
	int64_t	 t;
	char	 kind[24];
	cJSON	*data;
};

struct engine {
	const struct config	*cfg;
	struct store		*st;
	struct catalog		*cat;
	struct proto_limits	 limits;
	struct engine_proto	*protos;
	int			 nprotos;
	engine_observer_fn	*observer;
	void			*observer_ud;
	/* Events of the transaction in progress, told after it commits. */
	struct engine_event	*pending;
	int			 npending, cappending;
	struct engine_stats	 stats;
	/* Built-in questionnaires (setup, stop), texts from the catalog. */
	struct proto_questionnaire setup, stop;
};

/* One event being handled: the patient, their course and its protocol. */
struct engine_op {
	struct engine		*e;
	int64_t			 now;
	struct store_patient	 pt;
	int			 has_pt;
	struct store_enrolment	 en;
	int			 has_en;
	struct protocol		*p;
	int			 session;	/* session the event is about */
	int			 held;		/* postponed, paused or finished */
	const char		*by;		/* who resumed: patient, clinician */
	char			*error;		/* why the protocol failed */
};

#define ENGINE_CLINICIAN	"@clinician"	/* outbox chat of the clinician */
#define ENGINE_EPROTO		(-2)		/* the protocol failed */

/* engine.c */
struct protocol *engine_protocol(struct engine *e, const char *id);
struct protocol *engine_default_protocol(struct engine *e);
void	engine_emit(struct engine_op *op, const char *kind, cJSON *data);
int	engine_running(const struct engine_op *op);

/* engine_act.c: calling handlers and applying what they ask for. */
int	engine_call(struct engine_op *op, enum proto_event ev,
	    const char *questionnaire, const char *answers, const char *text);
int	engine_when(struct engine_op *op, const struct proto_when *w,
	    int64_t *t);
int	engine_send(struct engine_op *op, const char *chat, const char *body,
	    cJSON *meta);
int	engine_say(struct engine_op *op, const char *key, const char *params);
const char *engine_text(struct engine_op *op, const char *key);
int	engine_schedule_session(struct engine_op *op, int64_t due);
int	engine_job(struct engine_op *op, const char *kind, const char *arg,
	    int64_t due);
int	engine_finish(struct engine_op *op, const char *reason);
int	engine_remind(struct engine_op *op, const struct store_session *ss);
int	engine_run_job(struct engine_op *op, const struct store_job *j);

/* engine_ask.c: questionnaires, the engine's own and the protocol's. */
void	engine_ask_init(struct engine *e);
void	engine_ask_free(struct engine *e);
int	engine_ask(struct engine_op *op, const char *questionnaire);
int	engine_answer(struct engine_op *op, const char *text);
int	engine_ask_again(struct engine_op *op);

/* engine_cmd.c: the commands every adapter shares. */
int	engine_command(struct engine_op *op, const char *adapter,
	    const char *chat, const char *text);
int	engine_is_command(const char *text);

#endif
