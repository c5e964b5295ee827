/*
 * protocol_int.h: what the protocol loader's files share (protocol.c,
 * protocol_field.c, protocol_read.c, protocol_ask.c). Nothing outside
 * core/protocol*.c includes it.
 */
#ifndef STRIGIL_PROTOCOL_INT_H
#define STRIGIL_PROTOCOL_INT_H

#include <stddef.h>

#include <lua.h>

#include "protocol.h"

/* The state of one proto_load(): the source for line lookups and the first
 * error found. */
struct proto_loader {
	lua_State	*L;
	const struct protocol *p;	/* its helpers, for lines */
	const char	*path;
	char		*src;
	char		*cause;
	const char	*qs;	/* questionnaire being read, for lines */
	int		 nth;	/* which mention of a question id is meant */
};

/* Where require() finds helpers while a protocol loads. */
struct proto_src {
	const char		*path;		/* the protocol file */
	const char		*suffix;	/* ends helper names: "", "#v2" */
	int			 disk;		/* read "lib" beside path */
	const struct proto_helper *stored;	/* else only these */
	int			 nstored;
};

/* protocol_lib.c: require() while a protocol loads. _open installs it
 * for p; _close makes it refuse from then on. 0, or -1 with *cause. */
int	proto_lib_open(struct protocol *p, const struct proto_src *ps,
	    char **cause);
void	proto_lib_close(struct protocol *p);

/* protocol.c: each event's name, as in `on`. */
extern const char *proto_event_names[EV_COUNT];

/* protocol_field.c: reading fields; errors that point at a line. */
int	proto_find_line(const char *src, const char *key);
int	proto_error(struct proto_loader *pl, const char *key, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));
int	proto_field(lua_State *L, int t, const char *key);
int	proto_is_name(const char *s, size_t max);
int	proto_int(struct proto_loader *pl, int t, const char *key,
	    const char *where, int def, int min, int max, int *out);
int	proto_name(struct proto_loader *pl, int t, const char *key,
	    const char *where, char **out);
int	proto_text(struct proto_loader *pl, const char *key, const char *where,
	    const char *lang, struct proto_text *out);
void	proto_text_free(struct proto_text *t);

/* protocol_ask.c: the questionnaires. */
int	proto_read_questionnaires(struct proto_loader *pl, int t,
	    struct protocol *p);

/* protocol_read.c: the declarative parts; params. */
int	proto_read(struct proto_loader *pl, int t, struct protocol *p);
int	proto_params(struct proto_loader *pl, int t, struct protocol *p);

#endif
