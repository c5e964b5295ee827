/*
 * config_int.h: what the config's own files share (config.c, config_parse.c,
 * config_file.c, config_env.c). Nothing outside core/config*.c includes it.
 */
#ifndef STRIGIL_CONFIG_INT_H
#define STRIGIL_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CONFIG_NAME_MAX		64	/* longest dotted name we look at */
#define CONFIG_SHOW_MAX		60	/* bytes of a bad value echoed back */
#define CONFIG_HINT_MAX		(CONFIG_NAME_MAX + 16)	/* a suggested name */

enum config_type {
	CONFIG_STRING,
	CONFIG_INTEGER,
	CONFIG_BOOLEAN,
	CONFIG_TIME,		/* "HH:MM", stored as a minute of day */
	CONFIG_ZONE,		/* IANA name, checked with tz_valid() */
	CONFIG_LEVEL,		/* log level name, stored as enum log_level */
};

/* What a value is before a row's parser gives it meaning. */
enum config_kind { CONFIG_KSTRING, CONFIG_KINTEGER, CONFIG_KBOOLEAN };

struct config_value {
	enum config_kind	 kind;
	const char		*s;
	int64_t			 i;
	int			 b;
};

struct config_key;
typedef int (*config_parse_fn)(void *, const struct config_key *,
    const struct config_value *, char **);

struct config_key {
	const char		*name;		/* dotted: "quiet_hours.from" */
	enum config_type	 type;
	size_t			 offset;	/* of the field in struct config */
	config_parse_fn		 parse;
	const char		*def;		/* default, as env text */
	int64_t			 min, max;	/* CONFIG_INTEGER only */
};

/* How each type is named in "expected ..." and what kind it arrives as. */
struct config_type_info {
	const char		*noun;
	enum config_kind	 kind;
};

/* config.c: the settings, one row each, and their types. */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;
#define CONFIG_NKEYS	config_nkeys
extern const struct config_type_info config_types[];

/* config_parse.c: the parsers of config_keys[] and the look-ups. */
int	config__parse_string(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_username(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_optional(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_zone(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_time(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_level(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_boolean(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_megabytes(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_int64(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_url(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_room(void *, const struct config_key *,
    const struct config_value *, char **);
int	config__parse_inviters(void *, const struct config_key *,
    const struct config_value *, char **);

enum config_space { CONFIG_TOP, CONFIG_DOTTED, CONFIG_ENV };
int	config__apply(struct config *cfg, const struct config_key *key,
	    const struct config_value *v, char **why);
int	config__from_text(const struct config_key *key, const char *text,
	    struct config_value *v, char **why);
const struct config_key *config__find(const char *name);
int	config__top(const char *name);
void	config__env_name(const struct config_key *key, char *buf, size_t len);
void	config__suggest(const char *name, enum config_space space, char *buf,
	    size_t len);

/* config_file.c: the config file's values into cfg. */
int	config__file(struct config *cfg, const char *path, char **cause);

/* config_env.c: STRIGIL_* variables into cfg. */
int	config__env(struct config *cfg, char **cause);

#endif
