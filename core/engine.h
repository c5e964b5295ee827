/*
 * engine.h: what happens when a patient writes or a job comes due.
 *
 * The engine is where an event becomes effects. Every entry point runs one
 * event in one database transaction: the inbound message (kept in the inbox
 * so it is never handled twice) or the due job, the protocol handler's
 * actions, the patient's new state, the messages it causes (queued in the
 * outbox) and the audit events. A protocol that fails has its effects
 * undone, the event marked failed (and kept), and the patient gets a safe
 * holding message; the next event runs as usual.
 *
 * The engine never reads the clock itself: callers pass `now` from clock.h.
 */
#ifndef STRIGIL_ENGINE_H
#define STRIGIL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct config;
struct engine;
struct store;

/* Called after commit for each thing the engine did (kinds in
 * docs/architecture.md: session_reminder, checkin_request, ...). */
typedef void engine_observer_fn(void *ud, int64_t patient, int64_t t,
    const char *kind, const cJSON *data);

/* A message for an adapter that delivers in this process (below). */
struct engine_message {
	int64_t		 id;		/* its outbox row */
	int64_t		 patient;	/* 0 for none */
	const char	*chat;
	const char	*body;
	const char	*meta;		/* or NULL */
};
typedef void engine_deliver_fn(void *ud, const struct engine_message *m);

/* Upper bounds (seconds) of the protocol evaluation time histogram. */
#define ENGINE_EVAL_BUCKETS	10
extern const double engine_eval_bounds[ENGINE_EVAL_BUCKETS];

struct engine_stats {
	uint64_t	events;		/* audit events emitted */
	uint64_t	inbound;	/* messages handled */
	uint64_t	duplicates;	/* messages seen before */
	uint64_t	jobs;		/* jobs run */
	uint64_t	lua_calls;	/* handler calls */
	uint64_t	lua_errors;	/* failed handler calls */
	uint64_t	lua_memory_limits;	/* ...stopped by the memory cap */
	uint64_t	lua_budget_limits;	/* ...stopped by the budget */
	/* Handler evaluation time: counts per bucket (cumulative is the
	 * reader's job), and the sum in seconds. */
	uint64_t	eval_buckets[ENGINE_EVAL_BUCKETS + 1];	/* last: +Inf */
	double		eval_seconds;
};

/* A loaded protocol as the health check reports it. */
struct engine_proto_status {
	const char	*id;
	const char	*path;
	int		 version;
	const char	*error;		/* why the last reload failed, or NULL */
};

/* Creates an engine over an open store; loads the catalog from
 * cfg->lang_dir. Protocols are added with engine_load_file/_dir. The config
 * and store must outlive the engine. 0 or -1 with *cause (caller frees). */
int	engine_new(struct engine **out, const struct config *cfg,
	    struct store *st, char **cause);
void	engine_free(struct engine *e);

/* Loads one protocol file, or every *.lua of a folder. The first protocol
 * loaded is the default unless cfg->default_protocol names another. Each
 * version's source is kept in the store; a version lower than one stored,
 * or a changed text under a stored version, is refused. */
int	engine_load_file(struct engine *e, const char *path, char **cause);
int	engine_load_dir(struct engine *e, const char *dir, char **cause);
/* Checks that the default protocol is loaded. */
int	engine_ready(struct engine *e, char **cause);
/* Re-reads every protocol file; one that fails keeps its old version and is
 * logged. Jobs that failed under a protocol now reloaded are due again at
 * `now`. Returns the number of files that failed. */
int	engine_reload(struct engine *e, int64_t now);
/* For the folder watch: reloads the loaded files that changed since they
 * were last read (size, time or inode), and loads the new *.lua files of
 * `dir` (one that fails is logged and tried again once it changes). A
 * deleted file keeps its protocol running (logged once). Returns the
 * number of files that failed. */
int	engine_rescan(struct engine *e, const char *dir, int64_t now);

void	engine_set_observer(struct engine *e, engine_observer_fn *fn, void *ud);
/*
 * For an adapter that delivers at once, in this process (the simulator):
 * its messages go into the outbox already sent (sent_at and attempts as if
 * an adapter had taken them at once, so the record is the same), and are
 * handed to `fn`, in order, after their transaction commits; a rollback
 * forgets them with the rows. `fn` must not call the engine; it copies
 * what it keeps. One such adapter at most; NULL fn for none.
 */
void	engine_set_deliver(struct engine *e, const char *adapter,
	    engine_deliver_fn *fn, void *ud);

/* Handles a message a patient sent. Returns 0, 1 if (adapter, external_id)
 * was handled before, or -1 on a database error (nothing was stored: the
 * adapter should offer it again later). */
int	engine_inbound(struct engine *e, const char *adapter, const char *chat,
	    const char *external_id, const char *text, int64_t now);

/* An adapter's receive cursor (store_kv key and value: a poll offset, a
 * sync token). */
struct engine_cursor {
	const char	*key;
	const char	*value;
};
/* As engine_inbound(), and writes `cur` (if not NULL) in the message's own
 * transaction, so the message and the cursor past it commit together:
 * after a crash nothing is lost and nothing is handled twice. For a message
 * seen before, the cursor is written on its own. */
int	engine_inbound_at(struct engine *e, const char *adapter,
	    const char *chat, const char *external_id, const char *text,
	    const struct engine_cursor *cur, int64_t now);
/* Writes a cursor in a transaction of its own (an update with nothing for
 * the engine). 0 or -1. */
int	engine_cursor(struct engine *e, const struct engine_cursor *cur,
	    int64_t now);

/* The adapter cannot reach the patient at (adapter, chat) any more (they
 * blocked the bot, left the room): reminders are withheld until they write
 * again. Recorded as the audit event "unreachable" with `reason`. Returns
 * 0, 1 if there is no such patient or they were marked already, or -1. */
int	engine_unreachable(struct engine *e, const char *adapter,
	    const char *chat, const char *reason, int64_t now);

/* The clinician lifts a clinical hold (ctx.pause, e.g. after clearing a
 * relative contraindication): the course goes on and the protocol's
 * `resumed` handler runs with ev.by = "clinician". Returns 0, 1 if the
 * patient is unknown or not on hold (nothing changed), 2 if their protocol
 * is not loaded or its handler failed (logged; the hold stays), or -1. */
int	engine_clear(struct engine *e, const char *adapter, const char *chat,
	    int64_t now);
/* A clinician's "/clear <patient number>" from an adapter's clinician chat
 * or room: `arg` is what follows the command ("12" or "#12"). Lifts that
 * patient's hold with engine_clear() (which commits on its own) and sets
 * *reply to what to tell the clinician, in the configured language: how to
 * use it, no such patient, hold lifted, not on hold, or the protocol
 * failed and the hold stays. The caller queues
 * it and frees it. 0, or -1 on a database error (*reply NULL). */
int	engine_clear_command(struct engine *e, const char *arg, int64_t now,
	    char **reply);

/*
 * The answer a button or poll option stands for. Options carry the id
 * "a:<questionnaire>:<question index>:<value>" (dialog metadata). Returns 1
 * with *text (the value; caller frees) when that question is still the one
 * the patient at (adapter, chat) is asked, 0 for an option of a question
 * that has moved on (a stale button: nothing goes to the engine), -1 for an
 * id the engine never made, ENGINE_EDB when the database could not say
 * (the caller leaves the press to be delivered again, rather than call it
 * stale and lose the answer).
 */
#define ENGINE_EDB	(-2)
int	engine_answer_text(struct engine *e, const char *adapter,
	    const char *chat, const char *id, char **text);

/* Runs every job due at or before `now`, each in its own transaction.
 * Returns the number run, or -1 on a database error. */
int	engine_run_due(struct engine *e, int64_t now);
/* The earliest pending job's due time: 0, or 1 when there is none. */
int	engine_next_due(struct engine *e, int64_t *t);

const struct engine_stats *engine_stats(struct engine *e);
/* Fills up to `max` entries; returns how many protocols are loaded. The
 * strings live until the next reload. */
int	engine_protocols(struct engine *e, struct engine_proto_status *out,
	    int max);
struct store *engine_store(struct engine *e);

/*
 * The engine's texts for the adapters' own messages (scripts/lang:
 * greetings, the clinician's replies, summaries), so they are translated
 * like the engine's. `lang` NULL or "" is the configured language (the
 * clinician's); a key missing in `lang` falls back to English, a key
 * missing everywhere to the key itself. engine_text_for() never returns
 * NULL; the text belongs to the engine and lives until engine_free().
 * engine_render() replaces each {name} from `params` (a JSON object, or
 * NULL) and returns a new string the caller frees.
 */
const char *engine_text_for(struct engine *e, const char *lang,
	    const char *key);
char	*engine_render(struct engine *e, const char *lang, const char *key,
	    const cJSON *params);
/* The language of the patient on (adapter, chat) into `buf`, else (no such
 * patient, a database error) the configured one. Returns buf. */
const char *engine_lang_of(struct engine *e, const char *adapter,
	    const char *chat, char *buf, size_t size);

#endif
