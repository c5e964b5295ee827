/*
 * store.h: everything Strigil remembers, in one SQLite database.
 *
 * The database runs in WAL mode with versioned migrations (PRAGMA
 * user_version). The engine wraps everything one event causes in one
 * transaction (store_begin .. store_commit), so a crash leaves either all of
 * it or none of it. Statements are prepared once and cached.
 *
 * Tables: patients, enrolments, protocol_state, sessions, answers, inbox
 * (unique by adapter and external id, so nothing is handled twice), outbox
 * (messages not yet delivered), jobs (scheduled work) and events (the audit
 * trail of what the engine did), protocol_versions (the source of every
 * protocol version loaded) and invites (codes that enrol on a protocol).
 *
 * Functions return 0, STORE_NOTFOUND / STORE_DUPLICATE where documented, or
 * -1 on a database error, which is logged (without patient data).
 */
#ifndef STRIGIL_STORE_H
#define STRIGIL_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_NOTFOUND	1
#define STORE_DUPLICATE	2

struct store;

struct store_patient {
	int64_t	 id;
	char	 adapter[32];
	char	 chat[128];		/* the adapter's chat or room id */
	char	 tz[64];		/* IANA zone */
	int	 remind_min;		/* preferred reminder, minute of day */
	char	 lang[16];
	int	 consent;
	int	 unreachable;
	/*
	 * The questionnaire in progress: what the next message answers. Its
	 * answers are the patient's rows in `answers` after ask_from (their
	 * last answer when it was asked); ask_i, the index of the question
	 * asked, is how many there are. ask_i is read, never written: a
	 * writer that sets ask_q or ask_from sets ask_i to match (0 for a
	 * questionnaire just asked, and with none), and each answer stored
	 * adds one.
	 */
	char	 ask_q[32];		/* questionnaire id, "" when none */
	int64_t	 ask_from;
	int	 ask_i;
	int64_t	 created_at;
	/* The questionnaire a /stop or /erase confirmation (ask_q "stop" or
	 * "erase") set aside, asked from its start if the patient says no;
	 * "" when none. */
	char	 ask_prev[32];
};

/* Enrolment status: one course of one protocol for one patient. */
#define ENROL_SETUP	"setup"		/* consent, zone, reminder time */
#define ENROL_SCREENING	"screening"
#define ENROL_ACTIVE	"active"
#define ENROL_PAUSED	"paused"	/* the patient paused; /resume lifts it */
#define ENROL_HOLD	"hold"		/* clinical hold; the clinician lifts it */
#define ENROL_FINISHED	"finished"
#define ENROL_STOPPED	"stopped"	/* the patient stopped */
#define ENROL_REFUSED	"refused"	/* screening refused home treatment */

struct store_enrolment {
	int64_t	 id;
	int64_t	 patient_id;
	char	 protocol[64];
	int	 version;
	char	 status[16];
	int	 pressure;		/* index into the protocol's levels */
	int	 sessions_done;
	int64_t	 enrolled_at;
	int64_t	 last_session_at;	/* 0 if none yet */
	int64_t	 ended_at;		/* 0 while running */
	char	*state;			/* protocol state, JSON; owned */
};

struct store_session {
	int64_t	 id;
	int64_t	 enrolment_id;
	int	 number;		/* 1, 2, ... */
	int	 pressure;
	int64_t	 due_at;
	char	 status[12];		/* due, done, skipped, missed */
};

struct store_job {
	int64_t	 id;
	int64_t	 patient_id;
	int64_t	 enrolment_id;
	char	 kind[16];		/* session, missed, ask, ... */
	char	 arg[64];
	int64_t	 due_at;
};

struct store_out {
	int64_t	 id;
	int64_t	 patient_id;		/* 0 for clinician messages */
	char	 adapter[32];
	char	 chat[128];
	char	*body;			/* owned */
	char	*meta;			/* JSON or NULL; owned */
	int	 attempts;
	int64_t	 sent_upto;		/* bytes of body delivered so far */
	int64_t	 created_at;
};

/* Opens (creating if needed) and migrates the database at `path`; ":memory:"
 * gives a private in-memory one. 0 or -1 with *cause set (caller frees). The
 * store is freed by store_close(). */
int	store_open(struct store **out, const char *path, char **cause);
void	store_close(struct store *s);
int	store_schema_version(struct store *s);

int	store_begin(struct store *s);
int	store_commit(struct store *s);
int	store_rollback(struct store *s);
/*
 * A batch groups many events into one transaction, for the simulator,
 * where holding many events before they are durable is acceptable; the
 * daemon commits each event on its own.
 *
 * In a safe batch, store_begin/commit/rollback become a savepoint, its
 * release and its rollback, so each event stays all-or-nothing while the
 * database pays for one commit per batch.
 *
 * A fast batch (a ":memory:" store only) has no journal and no
 * savepoints: they cost more than the events. A rollback of anything
 * that changed, or any failed statement, instead spoils it: every later
 * begin fails, store_batch_spoiled() says so, and the caller must throw
 * the store away and run the same events again in a safe batch.
 */
#define STORE_BATCH_SAFE	1
#define STORE_BATCH_FAST	2
int	store_batch_begin(struct store *s, int mode);
int	store_batch_commit(struct store *s);	/* -1 once spoiled */
int	store_batch_spoiled(const struct store *s);
/*
 * Keeps the current course of up to `entries` patients in memory after
 * store_patient_find_current() / _get_current() read it, so that the next
 * event of the same patient starts without a query (store_cache.c). Every
 * write keeps it equal to the database or empties it. For the simulator,
 * where that read was a sixth of the work; off unless asked for.
 */
void	store_cache_enable(struct store *s, int entries);
/* A nested point inside a transaction, to undo a failed handler's work. */
int	store_savepoint(struct store *s);
int	store_rollback_savepoint(struct store *s);
int	store_release_savepoint(struct store *s);

/* Patients (a record owns no memory). */
int	store_patient_find(struct store *s, const char *adapter,
	    const char *chat, struct store_patient *p);	/* or STORE_NOTFOUND */
int	store_patient_get(struct store *s, int64_t id, struct store_patient *p);
/* _find / _get with the patient's latest enrolment and its state in the
 * same read: *has_en is 0 (and *e zeroed) when they have none. Free both
 * with their _clear(). */
int	store_patient_find_current(struct store *s, const char *adapter,
	    const char *chat, struct store_patient *p,
	    struct store_enrolment *e, int *has_en);	/* or STORE_NOTFOUND */
int	store_patient_get_current(struct store *s, int64_t id,
	    struct store_patient *p, struct store_enrolment *e, int *has_en);
int	store_patient_insert(struct store *s, struct store_patient *p);
int	store_patient_update(struct store *s, const struct store_patient *p);

/* The patient's latest enrolment, or STORE_NOTFOUND. */
int	store_enrolment_current(struct store *s, int64_t patient_id,
	    struct store_enrolment *e);
int	store_enrolment_get(struct store *s, int64_t id,
	    struct store_enrolment *e);
int	store_enrolment_insert(struct store *s, struct store_enrolment *e);
/* Updates the row and its protocol state. */
int	store_enrolment_update(struct store *s, const struct store_enrolment *e);
/* As _update, writing only the parts that changed: the row if `row`, the
 * protocol state if `state`. */
int	store_enrolment_save(struct store *s, const struct store_enrolment *e,
	    int row, int state);
void	store_enrolment_clear(struct store_enrolment *e);

/* Sessions. _open returns the session still "due", or STORE_NOTFOUND. */
int	store_session_insert(struct store *s, struct store_session *ss);
int	store_session_open(struct store *s, int64_t enrolment_id,
	    struct store_session *ss);
int	store_session_close(struct store *s, int64_t id, const char *status,
	    int64_t t);

/* Answers. _insert adds one to the patient's ask_i; _last gives the id of
 * the patient's last answer (0 if none), the ask_from of a questionnaire
 * asked now; _since calls fn with each of the patient's answers after
 * `after`, in the order given. */
int	store_answer_insert(struct store *s, int64_t patient_id,
	    int64_t enrolment_id, const char *questionnaire,
	    const char *question, const char *value, int64_t t);
int	store_answer_last(struct store *s, int64_t patient_id, int64_t *id);
int	store_answer_since(struct store *s, int64_t patient_id, int64_t after,
	    void (*fn)(void *ud, const char *question, const char *value),
	    void *ud);

/* Inbox: STORE_DUPLICATE if (adapter, external_id) was stored before. The
 * row is stored as "done": it is inserted in the transaction that handles
 * the message, so it is never seen before that commits, and one failing
 * is closed as "failed" in the same transaction. */
int	store_inbox_insert(struct store *s, const char *adapter,
	    const char *external_id, const char *chat, const char *body,
	    int64_t t, int64_t *id);
int	store_inbox_close(struct store *s, int64_t id, const char *status,
	    const char *error);

/* Outbox. _next gives the oldest undelivered message for `adapter` whose
 * not_before has come, or STORE_NOTFOUND; free with store_out_clear(). */
int	store_outbox_insert(struct store *s, int64_t patient_id,
	    const char *adapter, const char *chat, const char *body,
	    const char *meta, int64_t t, int64_t *id);
/* A message its adapter delivered as it was made (in this process): the
 * row _insert and _sent would leave, in one statement. */
int	store_outbox_insert_sent(struct store *s, int64_t patient_id,
	    const char *adapter, const char *chat, const char *body,
	    const char *meta, int64_t t, int64_t *id);
int	store_outbox_next(struct store *s, const char *adapter, int64_t now,
	    struct store_out *o);
int	store_outbox_sent(struct store *s, int64_t id, int64_t t);
/* Gives a message up for good (the chat blocked the bot, no clinician chat
 * is configured): it leaves the queue with `why` recorded, and is never
 * counted as delivered. */
int	store_outbox_drop(struct store *s, int64_t id, int64_t t,
	    const char *why);
int	store_outbox_retry(struct store *s, int64_t id, int64_t not_before);
/* A long text delivered in parts: the first `upto` bytes of its body are
 * delivered; the row stays queued for the rest. */
int	store_outbox_upto(struct store *s, int64_t id, int64_t upto);
int	store_outbox_depth(struct store *s, int64_t *n);
/* Each chat of `adapter` with an undelivered row put off past `now`
 * (seconds), with the latest such time: fn(ud, chat, not_before). A
 * restarted adapter keeps such a chat waiting (a 429's retry_after, a
 * backoff), so its newer rows neither hit the service early nor overtake
 * the one put off. 0 or -1. */
int	store_outbox_waits(struct store *s, const char *adapter, int64_t now,
	    void (*fn)(void *ud, const char *chat, int64_t not_before),
	    void *ud);
void	store_out_clear(struct store_out *o);

/* Jobs. _next_due gives the earliest pending due time or STORE_NOTFOUND;
 * _take the earliest pending job due at or before `now`. */
int	store_job_insert(struct store *s, struct store_job *j);
int	store_job_next_due(struct store *s, int64_t *due);
int	store_job_take(struct store *s, int64_t now, struct store_job *j);
int	store_job_close(struct store *s, int64_t id, const char *status,
	    const char *error, int64_t t);
/* Cancels the enrolment's pending jobs of `kind` (all kinds if NULL). */
int	store_job_cancel(struct store *s, int64_t enrolment_id,
	    const char *kind, int64_t t);
/* The same for two kinds. (Two queries: SQLite answers "kind IN (?, ?)"
 * on a partial index by building a temporary table first.) */
int	store_job_cancel2(struct store *s, int64_t enrolment_id,
	    const char *kind1, const char *kind2, int64_t t);
/* Makes `j` the enrolment's one pending job of its kind. A plan that
 * stands (the only pending job of that kind, with j's due time and arg) is
 * kept, and j->id set to it; otherwise the pending ones are cancelled at
 * `t` and `j` is inserted. */
int	store_job_plan(struct store *s, struct store_job *j, int64_t t);
/* The due time of the enrolment's pending job of `kind`, or STORE_NOTFOUND. */
int	store_job_pending(struct store *s, int64_t enrolment_id,
	    const char *kind, struct store_job *j);
int	store_job_count(struct store *s, int64_t *n);
/* Puts the failed jobs of courses on `protocol` back as due at `now` (after
 * the protocol was fixed and reloaded); *n gets how many. One whose kind and
 * arg the course has pending already (planned since) is closed as
 * "superseded" instead. Call it in a transaction. */
int	store_job_retry_failed(struct store *s, const char *protocol,
	    int64_t now, int64_t *n);
/* Gives every active course on `protocol` that has no pending "end" job
 * one, due at `now` (courses begun before daemons planned them); *n gets
 * how many. The job plans itself again for the course's real end. */
int	store_job_end_missing(struct store *s, const char *protocol,
	    int64_t now, int64_t *n);

/* Events: the audit trail (kind plus a JSON object of details). */
int	store_event_insert(struct store *s, int64_t patient_id,
	    int64_t enrolment_id, int64_t t, const char *kind,
	    const char *data);

/* Health and metrics. _due_count: pending jobs due at or before `now`.
 * _probe_write takes the write lock and writes a row in a transaction it
 * rolls back, so nothing is left behind; 0 if the database takes writes. */
int	store_job_due_count(struct store *s, int64_t now, int64_t *n);
int	store_probe_write(struct store *s);

/* Protocol versions: the source text of each (protocol, version) the
 * engine loaded, kept so patients can stay on the version they enrolled
 * with. _get and _max return STORE_NOTFOUND when there is none; _insert
 * keeps the first text stored for a version. */
struct store_phelper {
	char	*name;			/* owned: "iastm" for lib/iastm.lua */
	char	*source;		/* owned, NUL-terminated */
	size_t	 len;
};
struct store_pversion {
	char	*source;		/* owned, NUL-terminated */
	size_t	 len;
	char	*path;			/* owned */
	struct store_phelper *helpers;	/* owned, by name */
	int	 nhelpers;
};
int	store_pversion_get(struct store *s, const char *protocol, int version,
	    struct store_pversion *v);
int	store_pversion_max(struct store *s, const char *protocol, int *version);
int	store_pversion_insert(struct store *s, const char *protocol,
	    int version, const char *source, size_t len, const char *path,
	    int64_t t);
/* Stores a helper the version at (protocol, version) ran; insert the
 * version first. */
int	store_phelper_insert(struct store *s, const char *protocol,
	    int version, const char *name, const char *source, size_t len);
void	store_pversion_clear(struct store_pversion *v);

/*
 * Invites: a code a clinic hands out that enrols a patient on a protocol.
 * The code is a credential: it is never logged. uses_left is how many
 * enrolments it still allows, STORE_INVITE_UNLIMITED for any number.
 * _insert returns STORE_DUPLICATE if the code exists; _get STORE_NOTFOUND.
 * _consume takes one use inside the caller's transaction, and returns
 * STORE_NOTFOUND (changing nothing) when the code is unknown, expired at
 * `now` or used up.
 */
#define STORE_INVITE_UNLIMITED	(-1)
#define STORE_INVITE_CODE_MAX	64

struct store_invite {
	char	 code[STORE_INVITE_CODE_MAX + 1];
	char	 protocol[64];
	char	 clinician[128];	/* "" when none */
	char	 note[256];		/* "" when none */
	int64_t	 created_at;
	int64_t	 expires_at;		/* the code works before this time */
	int	 uses_left;
};
int	store_invite_insert(struct store *s, const struct store_invite *inv);
int	store_invite_get(struct store *s, const char *code,
	    struct store_invite *inv);
int	store_invite_consume(struct store *s, const char *code, int64_t now);
/* Gives back the use the invite of enrolment `id` took (none: nothing). */
int	store_invite_give_back(struct store *s, int64_t enrolment_id);
/* Records the invite code an enrolment was made with. */
int	store_enrolment_set_invite(struct store *s, int64_t id,
	    const char *code);

/*
 * Adapter state: small named values kept across restarts (a poll offset, a
 * sync token, a device id). Keys are "<adapter>.<name>". _get gives a copy
 * the caller frees, or STORE_NOTFOUND (and NULL). _set writes inside the
 * caller's transaction, so a cursor commits with the update it follows.
 */
int	store_kv_get(struct store *s, const char *key, char **value);
int	store_kv_set(struct store *s, const char *key, const char *value,
	    int64_t t);

/* Deletes everything stored about patient `id`, whose chat is (adapter,
 * chat): the patient, enrolments, state, sessions, answers, jobs, events,
 * every message in and out of that chat. Invite codes (the clinic's) and
 * the adapters' kv state stay; kv STORE_ERASED_MAX keeps the highest id
 * erased, which no new patient gets. Run it inside a transaction. */
#define STORE_ERASED_MAX	"store.erased_max"
/* Checkpoints and truncates the WAL (outside a transaction). */
void	store_wal_wipe(struct store *s);
int	store_patient_erase(struct store *s, int64_t id, const char *adapter,
	    const char *chat, int64_t t);

/* A chat moved (Telegram's migrate_to_chat_id): the patient of
 * (adapter, from) and their undelivered messages move to `to`. Run it
 * inside a transaction. *n gets the patients moved (0 or 1). */
int	store_chat_move(struct store *s, const char *adapter, const char *from,
	    const char *to, int64_t *n);

/* For a daily summary to the clinician: counts over [from, to), and the
 * first `max` patients whose course is on clinical hold. */
struct store_summary {
	int64_t	 active;		/* patients with an active course */
	int64_t	 sessions_done;		/* sessions closed as done */
	int64_t	 checkins;		/* check-ins asked */
	int64_t	 answers;		/* answers given (each question) */
	int64_t	 escalations;
	int64_t	 holds;			/* courses on hold now */
	int64_t	*hold_ids;		/* owned; nhold_ids of them */
	int	 nhold_ids;
};
int	store_summary(struct store *s, int64_t from, int64_t to, int max,
	    struct store_summary *out);
void	store_summary_clear(struct store_summary *sum);

#endif
