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

/* What a protocol file looked like when last read: a change to any of
 * these makes the folder watch reload it. */
struct engine_fsig {
	int64_t		 mtime_ns;
	int64_t		 size;
	int64_t		 ino;
	uint64_t	 helpers;	/* the same of the lib folder's files */
};

struct engine_proto {
	char		*path;
	struct protocol	*p;
	char		*error;		/* the last reload's failure, or NULL */
	struct engine_fsig sig;		/* the file when last (re)loaded */
	int		 gone;		/* the file was deleted (logged once) */
};

/* A new file of the folder that failed to load, not retried unchanged. */
struct engine_badfile {
	char		*path;
	struct engine_fsig sig;
};

/* An older version of a loaded protocol, compiled from its stored source
 * for the patients still on it (engine_ver.c). */
struct engine_old {
	char		*id;
	int		 version;
	struct protocol	*p;		/* NULL: its source was never stored */
};

struct engine_event {
	int64_t	 patient;
	int64_t	 t;
	char	 kind[24];
	cJSON	*data;
};

/* A message for the in-process adapter, held until the commit. */
struct engine_delivery {
	int64_t	 id;
	int64_t	 patient;
	char	*chat;
	char	*body;
	char	*meta;
};

struct engine {
	const struct config	*cfg;
	struct store		*st;
	int			 erased;	/* a patient was erased: wipe
						 * the WAL after the commit */
	struct catalog		*cat;
	struct proto_limits	 limits;
	struct engine_proto	*protos;
	int			 nprotos;
	struct engine_old	*old;		/* older versions in use */
	int			 nold;
	struct engine_badfile	*bad;		/* new files that failed */
	int			 nbad;
	engine_observer_fn	*observer;
	void			*observer_ud;
	/* Events of the transaction in progress, told after it commits. */
	struct engine_event	*pending;
	int			 npending, cappending;
	/* The in-process adapter (engine_set_deliver) and its messages of
	 * the transaction in progress. */
	char			 deliver_adapter[32];	/* as a patient's */
	engine_deliver_fn	*deliver;
	void			*deliver_ud;
	struct engine_delivery	*deliv;
	int			 ndeliv, capdeliv;
	struct engine_stats	 stats;
	/* Built-in questionnaires (setup, stop, erase), texts from the
	 * catalog. */
	struct proto_questionnaire setup, stop, erase;
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
	int			 inbound;	/* a patient's message (a reply) */
	int			 from_version;	/* EV_UPGRADED: the old version */
	char			*error;		/* why the protocol failed */
	/* The rows as loaded, so that unchanged ones are not written back. */
	struct store_patient	 pt0;
	struct store_enrolment	 en0;
	int			 has_pt0, has_en0;
};

#define ENGINE_CLINICIAN	"@clinician"	/* outbox chat of the clinician */
#define ENGINE_EPROTO		(-2)		/* the protocol failed */

/* engine.c */
int	engine_queue(struct engine_op *op, int64_t patient, const char *chat,
	    const char *body, const char *meta);
void	engine_forget_deliveries(struct engine *e, int64_t patient,
	    const char *chat);
struct protocol *engine_protocol(struct engine *e, const char *id);
struct protocol *engine_default_protocol(struct engine *e);
void	engine_emit(struct engine_op *op, const char *kind, cJSON *data);
int	engine_running(const struct engine_op *op);
int	engine_op_guarded(struct engine_op *op,
	    int (*fn)(struct engine_op *, void *), void *arg);

/* engine_ver.c: protocol versions. _check stores a newly loaded version's
 * source, or refuses a lower version or a changed text under a stored
 * version number. engine_version() picks the protocol for an enrolment on
 * another version than the loaded one: it moves the patient to the loaded
 * version if that declares upgrade.from their version, else gives them
 * their own version, compiled from its stored source. */
int	engine_version_check(struct engine *e, const struct protocol *p,
	    const char *path, int64_t now, char **cause);
int	engine_version(struct engine_op *op);
void	engine_version_free(struct engine *e);

/* engine_act.c: calling handlers and applying what they ask for. */
int	engine_call(struct engine_op *op, enum proto_event ev,
	    const char *questionnaire, const char *answers, const char *text);
int	engine_when(struct engine_op *op, const struct proto_when *w,
	    int64_t *t);
int	engine_send(struct engine_op *op, const char *chat, const char *body,
	    cJSON *meta);
int	engine_send_text(struct engine_op *op, const char *chat,
	    const char *body, const char *meta);
/* Bytes of an inbound text kept; the rest is dropped (engine_inbound_at). */
#define ENGINE_MAX_INBOUND	16384

/* Returns a copy of `s` cut to at most `max` bytes (at a character
 * boundary) with every invalid UTF-8 sequence replaced by U+FFFD (caller
 * frees), or NULL if `s` is valid and short enough as it is. */
char	*engine_utf8_clean(const char *s, size_t max);
int	engine_say(struct engine_op *op, const char *key, const char *params);
const char *engine_text(struct engine_op *op, const char *key);
int	engine_schedule_session(struct engine_op *op, int64_t due);
int	engine_plan_end(struct engine_op *op);
int	engine_job(struct engine_op *op, const char *kind, const char *arg,
	    int64_t due);
int	engine_session_job(struct engine_op *op, const char *kind,
	    const struct store_session *ss, int64_t due);
int	engine_finish(struct engine_op *op, const char *reason);
int	engine_remind(struct engine_op *op, const struct store_session *ss);
int	engine_run_job(struct engine_op *op, const struct store_job *j);

/* engine_ask.c: questionnaires, the engine's own and the protocol's. */
void	engine_ask_init(struct engine *e);
void	engine_ask_free(struct engine *e);
int	engine_ask(struct engine_op *op, const char *questionnaire);
int	engine_answer(struct engine_op *op, const char *text);
int	engine_ask_again(struct engine_op *op);
/* 1 if `id` is /stop's or /erase's yes-or-no, which may interrupt any
 * other questionnaire and needs no protocol. */
int	engine_ask_confirm(const char *id);

/* engine_cmd.c: the commands every adapter shares. */
int	engine_command(struct engine_op *op, const char *adapter,
	    const char *chat, const char *text);
int	engine_is_command(const char *text);
/* The lower-case name of command `text` ("/Done@bot x" -> "done") into
 * `name`; returns where its argument starts. */
/* An enrolment ended in setup gives its invite's use back (0 or -1). */
int	engine_invite_give_back(struct engine_op *op);
const char *engine_command_name(const char *text, char *name, size_t size);
/* The patient confirmed /erase: deletes everything stored about them,
 * keeps an "erased" event with only their internal id and the time, and
 * says goodbye. The op holds no patient afterwards. */
int	engine_erase(struct engine_op *op);

#endif
