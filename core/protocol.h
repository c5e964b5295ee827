/*
 * protocol.h: a clinic's treatment protocol, loaded from Lua.
 *
 * A protocol file returns a table: declarative parts (id, version, course,
 * interval, pressure levels, questionnaires, session steps, messages) that
 * proto_load() copies into C and validates, and handlers in `on` that the
 * engine calls for each event. A handler acts only through the functions of
 * its `ctx` argument; each call records an action, and the engine applies the
 * recorded actions, all or none, in the event's transaction. The Lua API is
 * documented in docs/protocols.md.
 */
#ifndef STRIGIL_PROTOCOL_H
#define STRIGIL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

struct catalog;
struct sandbox;

/* A text in one or more languages: { en = "...", de = "..." } or a string,
 * which counts as the protocol's default language. */
struct proto_text {
	int	  n;
	char	**lang;
	char	**text;
};

enum proto_qtype { Q_INT, Q_CHOICE, Q_YESNO, Q_TEXT, Q_ZONE, Q_TIME };

struct proto_option {
	char		*id;
	struct proto_text text;
};

struct proto_question {
	char			*id;
	enum proto_qtype	 type;
	struct proto_text	 text;
	int			 min, max;	/* Q_INT */
	struct proto_option	*options;	/* Q_CHOICE */
	int			 noptions;
	char			*clear;		/* the all-clear answer, as text */
};

struct proto_questionnaire {
	char			*id;
	struct proto_question	*q;
	int			 n;
	/* Per question (NULL until first asked): the metadata the engine
	 * last sent with it, printed, and the language and yes/no texts it
	 * was printed with (engine_ask.c); every question of every check-in
	 * needs it. */
	char			**meta;
	char			**meta_key;
};

struct proto_message {
	char	*lang;
	char	*key;
	char	*text;
};

/* A helper file a protocol ran with require() while it loaded
 * (protocol_lib.c). */
struct proto_helper {
	char	*name;		/* "iastm": the file lib/iastm.lua */
	char	*path;		/* for errors: "dir/lib/iastm.lua" */
	char	*source;	/* the text that was compiled */
	size_t	 len;
};

/* The events a protocol can handle. */
enum proto_event {
	EV_ENROLLED, EV_SESSION_DUE, EV_SESSION_DONE, EV_SESSION_SKIPPED,
	EV_SESSION_MISSED, EV_ANSWERED, EV_MESSAGE, EV_RESUMED, EV_UPGRADED,
	EV_COUNT
};

struct protocol {
	char		*id;
	int		 version;
	char		*path;
	struct proto_text title;
	char		*lang;		/* default language, "en" */
	int		 course_days;
	int		 min_interval_h;
	int		 target_interval_h;
	int		 miss_after_h;	/* an unconfirmed session counts as missed */
	char		**levels;
	int		 nlevels;
	int		 start_level;
	struct proto_questionnaire *qs;
	int		 nqs;
	struct proto_text *steps;
	int		 nsteps;
	struct proto_message *msgs;
	int		 nmsgs;
	int		 has[EV_COUNT];	/* which handlers exist */
	char		*params;	/* `params` as JSON, or NULL: {name} in steps */
	struct cJSON	*params_json;	/* the same parsed once, for each reminder */
	int		*upgrade_from;	/* `upgrade.from`: versions it takes over */
	int		 nupgrade_from;
	char		*source;	/* the text that was compiled */
	size_t		 source_len;
	struct proto_helper *helpers;	/* in the order first required */
	int		 nhelpers;

	struct sandbox	*sb;
	int		 ref;		/* registry ref to the protocol table */
	int		 ctx_funcs;	/* registry ref to ctx's metatable, made at
					 * the first call (protocol_ctx.c); 0 */
	struct proto_call *call;	/* the call in progress, if any */
	struct proto_lib *lib;		/* require()'s state while loading */
};

/* When something should happen, relative to the event (or the last session).
 * at: PROTO_AT_EXACT, PROTO_AT_REMINDER, or a local minute of day. */
#define PROTO_AT_EXACT		(-1)
#define PROTO_AT_REMINDER	(-2)
struct proto_when {
	int64_t	offset;		/* seconds */
	int	at;
	int	from_session;	/* offset counts from the last session */
};

enum proto_act {
	ACT_SCHEDULE, ACT_ASK, ACT_SAY, ACT_PRESSURE, ACT_POSTPONE, ACT_PAUSE,
	ACT_ESCALATE, ACT_FINISH
};

struct proto_action {
	enum proto_act	 kind;
	struct proto_when when;
	char		*name;		/* questionnaire, message key */
	char		*reason;
	char		*params;	/* ACT_SAY: JSON object, or NULL */
	int		 level;		/* ACT_PRESSURE: the new level index */
};

/* What a handler call sees: a snapshot of the patient's course. */
struct proto_ctx {
	const struct catalog *catalog;		/* engine texts, for ctx.say */
	int64_t		 now;
	const char	*tz;
	const char	*lang;
	const char	*status;
	int		 pressure;
	int		 sessions_done;
	int		 session;		/* session the event is about, or 0 */
	int64_t		 enrolled_at;
	int64_t		 last_session_at;	/* 0 if none */
	const char	*state;			/* JSON, or NULL */
	/* The event's own data. */
	const char	*questionnaire;		/* EV_ANSWERED */
	const char	*answers;		/* EV_ANSWERED: JSON object */
	const char	*text;			/* EV_MESSAGE */
	const char	*by;			/* EV_RESUMED: patient, clinician */
	int		 from_version;		/* EV_UPGRADED */
};

struct proto_result {
	struct proto_action	*v;
	int			 n, cap;
	char			*state;		/* JSON after the call */
};

struct proto_limits {
	size_t	memory;
	int64_t	instructions;
};

/* Loads and validates the protocol at `path`; require("x") reads the
 * helper lib/x.lua beside it. 0 with *out (free with proto_free), or -1
 * with *cause ("file:line: message", caller frees). */
int	proto_load(const char *path, const struct proto_limits *limits,
	    struct protocol **out, char **cause);
/* The same from texts kept earlier: version `version` of the file once at
 * `path`, whose require() finds only the `nhelpers` helpers given (what
 * that version required). Errors call it "path#v2". */
int	proto_load_source(const char *path, int version, const char *src,
	    size_t len, const struct proto_helper *helpers, int nhelpers,
	    const struct proto_limits *limits, struct protocol **out,
	    char **cause);
void	proto_free(struct protocol *p);
/* The folder of the helpers a protocol at `path` may require: "lib"
 * beside it (caller frees). */
char	*proto_lib_dir(const char *path);
/* 1 if `p` declares it takes over patients enrolled on `version`. */
int	proto_upgrades_from(const struct protocol *p, int version);

const char *proto_event_name(enum proto_event ev);
const struct proto_questionnaire *proto_questionnaire(const struct protocol *p,
	    const char *id);
const struct proto_question *proto_question(const struct proto_questionnaire *q,
	    const char *id);
/* A message of the protocol in `lang` (falling back to its default
 * language), or NULL. */
const char *proto_message(const struct protocol *p, const char *lang,
	    const char *key);
/* The text in `lang`, else the first language given. */
const char *proto_text_get(const struct proto_text *t, const char *lang);
int	proto_level(const struct protocol *p, const char *name);

/* 1 if the table at `t` has a key not in the NULL-ended `known` list, with
 * that key pushed; else 0. For protocol.c and protocol_ctx.c, which refuse
 * unknown names so that a typo fails loudly. */
struct lua_State;
int	proto_unknown_key(struct lua_State *L, int t, const char *const *known);

/* Calls the handler for `ev`. On success returns 0 with the actions in *res
 * (free with proto_result_clear); a protocol with no handler for `ev` returns
 * 0 with no actions. -1 with *cause if the handler failed: then *res holds
 * nothing and the state is unchanged. */
int	proto_call(struct protocol *p, enum proto_event ev,
	    const struct proto_ctx *ctx, struct proto_result *res, char **cause);
void	proto_result_clear(struct proto_result *res);
/* The limit that stopped the last failed call ("memory", "instructions"),
 * or NULL. */
const char *proto_last_limit(struct protocol *p);

#endif
