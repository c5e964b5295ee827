/*
 * mx_sync.h: reading what a Matrix homeserver sends us.
 *
 * /sync answers, /rooms/{roomId}/messages pages and error answers are parsed
 * here into plain structs, so the adapter never walks JSON itself. These are
 * pure functions over a buffer (no I/O, no clock, no globals): a fuzz target
 * can call mx_sync_parse() on any bytes.
 *
 * Only what the bot acts on is kept: text messages, poll responses, the
 * m.room.encryption state, a joined room's member count, and for invites
 * who invited us. Everything else
 * in a timeline comes back as MX_EV_OTHER (or is not listed at all).
 */
#ifndef STRIGIL_MX_SYNC_H
#define STRIGIL_MX_SYNC_H

#include <stddef.h>
#include <stdint.h>

enum mx_ev_kind {
	MX_EV_OTHER,		/* not for the bot: state, an edit... */
	MX_EV_TEXT,		/* m.room.message: the body ("" for media) */
	MX_EV_POLL_RESPONSE,	/* a poll answer: text is the answer id */
	MX_EV_ENCRYPTION	/* m.room.encryption: the room is encrypted */
};

struct mx_event {
	enum mx_ev_kind	 kind;
	char		*event_id;	/* owned; never NULL */
	char		*sender;	/* owned; never NULL */
	char		*text;		/* owned; NULL for OTHER/ENCRYPTION */
	char		*relates;	/* the poll's event id or NULL; owned */
	int64_t		 ts;		/* origin_server_ts (ms), or 0 */
};

enum mx_membership { MX_JOIN, MX_INVITE, MX_LEAVE };

struct mx_room {
	char			*id;		/* owned */
	enum mx_membership	 membership;
	int			 limited;	/* the timeline has a gap */
	char			*prev_batch;	/* owned, or NULL */
	int			 encrypted;	/* m.room.encryption seen */
	int			 joined;	/* m.joined_member_count, -1 if
						 * not sent (unchanged) */
	char			*inviter;	/* MX_INVITE: who; owned */
	struct mx_event		*events;	/* the timeline, oldest first */
	int			 nevents;
};

struct mx_sync {
	char		*next_batch;	/* owned; never NULL after a parse */
	struct mx_room	*rooms;		/* join, then invite, then leave */
	int		 nrooms;
	char		*direct;	/* m.direct content (JSON) or NULL */
};

/* A /rooms/{roomId}/messages page. */
struct mx_page {
	char		*end;		/* owned; NULL when there is no more */
	struct mx_event	*events;	/* in the order of the chunk */
	int		 nevents;
};

/* An error answer: {"errcode": ..., "error": ...}. */
struct mx_error {
	char	 errcode[64];		/* "" if absent */
	char	 error[256];
	int	 soft_logout;
	long	 retry_after_ms;	/* -1 if absent */
};

/*
 * Parses a /sync answer. `self` is the bot's user id: an invite's inviter is
 * the sender of the m.room.member event whose state_key is `self`. Returns 0
 * with *out filled (free with mx_sync_clear) or -1 with *cause (caller
 * frees) when the answer is not one (no next_batch, not JSON). Malformed
 * rooms and events inside a good answer are skipped, never fatal.
 */
int	mx_sync_parse(const char *json, size_t len, const char *self,
	    struct mx_sync *out, char **cause);
void	mx_sync_clear(struct mx_sync *s);

/* Parses a /messages answer. 0, or -1 with *cause. */
int	mx_page_parse(const char *json, size_t len, struct mx_page *out,
	    char **cause);
void	mx_page_clear(struct mx_page *p);

/* Parses an error answer. 0, or -1 if it is not JSON of that shape. */
int	mx_error_parse(const char *json, size_t len, struct mx_error *e);

/* The events of one list, freed. */
void	mx_events_free(struct mx_event *v, int n);

#endif
