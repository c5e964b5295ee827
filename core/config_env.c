/*
 * config_env.c: STRIGIL_* variables over the file's values, STRIGIL_X_FILE
 * naming a file that holds the value (Docker secrets), and refusing
 * variables that match no setting.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "xmalloc.h"

extern char **environ;

/*
 * STRIGIL_X_FILE names a file holding the value of STRIGIL_X (Docker
 * secrets). Its contents are never echoed in an error: they may be secret.
 */
#define CONFIG_FILE_SUFFIX	"_FILE"
#define CONFIG_FILE_SUFFIX_LEN	(sizeof CONFIG_FILE_SUFFIX - 1)
#define CONFIG_FILE_MAX		(64u << 10)	/* bytes in such a file */

/* STRIGIL_* variables that are not settings but are read by someone else. */
static const char *const config_env_ignored[] = {
	"STRIGIL_CONFIG",	/* the config file's path, read by main.c */
};

static int
config__env_ignored(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < sizeof config_env_ignored /
	    sizeof config_env_ignored[0]; i++) {
		if (strlen(config_env_ignored[i]) == len &&
		    strncmp(config_env_ignored[i], name, len) == 0)
			return 1;
	}
	return 0;
}

/* 1 if `var` (len bytes) is `name` or `name` + CONFIG_FILE_SUFFIX. */
static int
config__env_is(const char *name, const char *var, size_t len)
{
	size_t	n = strlen(name);

	if (strncmp(name, var, n) != 0)
		return 0;
	return n == len || (n + CONFIG_FILE_SUFFIX_LEN == len &&
	    strncmp(var + n, CONFIG_FILE_SUFFIX, CONFIG_FILE_SUFFIX_LEN) == 0);
}

/* Refuses STRIGIL_* variables that match no setting: likely typos. */
static int
config__env_unknown(char **cause)
{
	char		 name[CONFIG_HINT_MAX], var[CONFIG_HINT_MAX];
	char		 hint[CONFIG_HINT_MAX];
	char		**ep;
	const char	*eq;
	size_t		 len, i, vlen;
	int		 known, file;

	for (ep = environ; ep != NULL && *ep != NULL; ep++) {
		if (strncmp(*ep, "STRIGIL_", 8) != 0)
			continue;
		eq = strchr(*ep, '=');
		len = eq != NULL ? (size_t)(eq - *ep) : strlen(*ep);
		if (config__env_ignored(*ep, len))
			continue;
		known = 0;
		for (i = 0; i < CONFIG_NKEYS && !known; i++) {
			config__env_name(&config_keys[i], name, sizeof name);
			known = config__env_is(name, *ep, len);
		}
		if (known)
			continue;
		/* STRIGIL_DATABSE_FILE: suggest for the stem, keep _FILE. */
		snprintf(var, sizeof var, "%.*s", (int)len, *ep);
		vlen = strlen(var);
		file = vlen > CONFIG_FILE_SUFFIX_LEN && strcmp(var + vlen -
		    CONFIG_FILE_SUFFIX_LEN, CONFIG_FILE_SUFFIX) == 0;
		if (file)
			var[vlen - CONFIG_FILE_SUFFIX_LEN] = '\0';
		config__suggest(var, CONFIG_ENV, hint, sizeof hint);
		if (file)
			var[vlen - CONFIG_FILE_SUFFIX_LEN] = '_';
		*cause = xasprintf("unknown environment variable %s%s%s%s%s",
		    var, *hint ? " (did you mean " : "", hint,
		    *hint && file ? CONFIG_FILE_SUFFIX : "",
		    *hint ? "?)" : "");
		return -1;
	}
	return 0;
}

/*
 * Reads the value file named by the variable `var` into *out (caller frees
 * with config__wipe()), one trailing newline ("\n" or "\r\n") stripped.
 * 0, or -1 with *cause set; the cause names `var` and the path, never the
 * contents.
 */
static int
config__read_value(const char *var, const char *path, char **out,
    char **cause)
{
	FILE	*f;
	char	*buf;
	size_t	 n;
	int	 err = 0;

	*out = NULL;
	if (*path == '\0') {
		*cause = xasprintf("%s is empty: set it to the path of a file "
		    "that holds the value", var);
		return -1;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		*cause = xasprintf("%s: cannot read %s: %s", var, path,
		    strerror(errno));
		return -1;
	}
	buf = xmalloc(CONFIG_FILE_MAX + 1);
	errno = 0;
	n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
	if (ferror(f))
		err = errno != 0 ? errno : EIO;
	fclose(f);
	if (err != 0)
		*cause = xasprintf("%s: cannot read %s: %s", var, path,
		    strerror(err));
	else if (n > CONFIG_FILE_MAX)
		*cause = xasprintf("%s: %s is larger than %u bytes", var, path,
		    CONFIG_FILE_MAX);
	else if (memchr(buf, '\0', n) != NULL)
		*cause = xasprintf("%s: %s contains a NUL byte", var, path);
	if (err != 0 || n > CONFIG_FILE_MAX || memchr(buf, '\0', n) != NULL) {
		explicit_bzero(buf, CONFIG_FILE_MAX + 1);
		free(buf);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\n') {
		n--;
		if (n > 0 && buf[n - 1] == '\r')
			n--;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static void
config__wipe(char *buf)
{
	if (buf != NULL) {
		explicit_bzero(buf, CONFIG_FILE_MAX + 1);
		free(buf);
	}
}

/* What a row accepts, in words that quote no value (for *_FILE errors). */
static void
config__expected(const struct config_key *key, char *buf, size_t len)
{
	switch (key->type) {
	case CONFIG_STRING:
		snprintf(buf, len, "a non-empty string");
		break;
	case CONFIG_INTEGER:
		snprintf(buf, len, "an integer from %" PRId64 " to %" PRId64,
		    key->min, key->max);
		break;
	case CONFIG_BOOLEAN:
		snprintf(buf, len, "true/false/1/0/yes/no");
		break;
	case CONFIG_LEVEL:
		snprintf(buf, len, "debug, info, warn or error");
		break;
	default:
		snprintf(buf, len, "%s", config_types[key->type].noun);
		break;
	}
}

int
config__env(struct config *cfg, char **cause)
{
	const struct config_key	*key;
	struct config_value	 v;
	char			 name[CONFIG_HINT_MAX], *why = NULL;
	char			 fname[CONFIG_HINT_MAX + 8], want[96];
	char			*buf;
	const char		*text, *path;
	size_t			 i;

	if (config__env_unknown(cause) != 0)
		return -1;
	for (i = 0; i < CONFIG_NKEYS; i++) {
		key = &config_keys[i];
		config__env_name(key, name, sizeof name);
		snprintf(fname, sizeof fname, "%s%s", name, CONFIG_FILE_SUFFIX);
		text = getenv(name);
		if ((path = getenv(fname)) != NULL && text != NULL) {
			*cause = xasprintf("%s and %s are both set: use one",
			    name, fname);
			return -1;
		}
		buf = NULL;
		if (path != NULL) {
			if (config__read_value(fname, path, &buf, cause) != 0)
				return -1;
			text = buf;
		}
		if (text == NULL)
			continue;
		if (config__from_text(key, text, &v, &why) != 0 ||
		    config__apply(cfg, key, &v, &why) != 0) {
			if (buf != NULL) {
				/* why may quote the contents: a secret. */
				config__expected(key, want, sizeof want);
				*cause = xasprintf("%s: %s: expected %s (the "
				    "contents are not shown)", fname, path,
				    want);
			} else
				*cause = xasprintf("%s: %s", name, why);
			free(why);
			config__wipe(buf);
			return -1;
		}
		config__wipe(buf);
	}
	return 0;
}
