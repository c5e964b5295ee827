/*
 * test_mx_config.c: the matrix.* settings (core/config.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "test.h"

extern char **environ;

static char	test_dir[] = "/tmp/strigil-mxcfg-XXXXXX";
static char	test_path[64];

static const char *
conf(const char *text)
{
	FILE	*f;

	snprintf(test_path, sizeof test_path, "%s/t.lua", test_dir);
	if ((f = fopen(test_path, "w")) == NULL) {
		perror(test_path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	return test_path;
}

static void
env_clear(void)
{
	char	name[256], **ep;
	size_t	len;

again:
	for (ep = environ; *ep != NULL; ep++) {
		if (strncmp(*ep, "STRIGIL_", 8) != 0)
			continue;
		len = strcspn(*ep, "=");
		snprintf(name, sizeof name, "%.*s", (int)len, *ep);
		unsetenv(name);
		goto again;
	}
}

/* Loads and expects failure with `part` in the cause. */
static void
fails_with(const char *path, const char *part)
{
	struct config	 cfg;
	char		*cause = NULL;

	CHECK_INT(config_load(&cfg, path, &cause), -1);
	CHECK(cause != NULL && strstr(cause, part) != NULL);
	if (cause != NULL && strstr(cause, part) == NULL)
		fprintf(stderr, "  cause: %s\n  wanted: ...%s...\n", cause,
		    part);
	free(cause);
	config_free(&cfg);
}

static void
test_defaults(void)
{
	struct config	 cfg;
	char		*cause = NULL;

	env_clear();
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.mx_homeserver, "");
	CHECK_INT(cfg.mx_poll_timeout, 30);
	CHECK_INT(cfg.console, 1);
	config_free(&cfg);
}

static void
test_file(void)
{
	struct config	 cfg;
	char		*cause = NULL;

	env_clear();
	CHECK_INT(config_load(&cfg, conf(
	    "matrix = {\n"
	    "  homeserver = \"https://matrix.clinic.org/\",\n"
	    "  user = \"@strigil:clinic.org\",\n"
	    "  password = \"pw\",\n"
	    "  clinician_room = \"!abc:clinic.org\",\n"
	    "  allowed_inviters = \"@dr:clinic.org, :clinic.org\",\n"
	    "  poll_timeout = 45,\n"
	    "}\n"), &cause), 0);
	CHECK(cause == NULL);
	CHECK_STR(cfg.mx_homeserver, "https://matrix.clinic.org/");
	CHECK_STR(cfg.mx_user, "@strigil:clinic.org");
	CHECK_STR(cfg.mx_clinician_room, "!abc:clinic.org");
	CHECK_STR(cfg.mx_allowed_inviters, "@dr:clinic.org, :clinic.org");
	CHECK_INT(cfg.mx_poll_timeout, 45);
	CHECK_INT(cfg.console, 0);	/* a chat adapter runs */
	config_free(&cfg);
}

static void
test_errors(void)
{
	env_clear();
	fails_with(conf("matrix = {\n homeserver = \"matrix.org\" }\n"),
	    ":2: matrix.homeserver: expected an http:// or https:// URL");
	fails_with(conf("matrix = {\n\n allowed_inviters = \"dr@x\" }\n"),
	    ":3: matrix.allowed_inviters: expected user ids");
	fails_with(conf("matrix = { allowed_inviters = \"@dr\" }\n"),
	    "matrix.allowed_inviters: expected user ids");
	fails_with(conf("matrix = { clinician_room = \"#clinic:x\" }\n"),
	    "matrix.clinician_room: expected a room id");
	fails_with(conf("matrix = { homeserver = \"https://x\" }\n"),
	    "matrix.user is not");
	fails_with(conf("matrix = { homeserver = \"https://x\", "
	    "user = \"bot\" }\n"), "neither matrix.password nor");
	fails_with(conf("matrix = { homeserver = \"https://x\", "
	    "user = \"@bot\", password = \"p\" }\n"), "matrix.user: expected");
	fails_with(conf("matrix = { poll_timeout = 0 }\n"),
	    "matrix.poll_timeout: must be between 1 and 600");
}

static void
test_env_file(void)
{
	struct config	 cfg;
	char		*cause = NULL, path[96];
	FILE		*f;

	env_clear();
	snprintf(path, sizeof path, "%s/token", test_dir);
	f = fopen(path, "w");
	fputs("syt_secret\n", f);
	fclose(f);
	setenv("STRIGIL_MATRIX_HOMESERVER", "http://127.0.0.1:1", 1);
	setenv("STRIGIL_MATRIX_USER", "bot", 1);
	setenv("STRIGIL_MATRIX_ACCESS_TOKEN_FILE", path, 1);
	CHECK_INT(config_load(&cfg, NULL, &cause), 0);
	CHECK_STR(cfg.mx_access_token, "syt_secret");
	config_free(&cfg);
	setenv("STRIGIL_MATRIX_ALLOWED_INVITERS", "nobody", 1);
	fails_with(NULL, "STRIGIL_MATRIX_ALLOWED_INVITERS: expected user ids");
	env_clear();
	unlink(path);
}

int
main(void)
{
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	TEST(test_defaults);
	TEST(test_file);
	TEST(test_errors);
	TEST(test_env_file);
	unlink(test_path);
	rmdir(test_dir);
	return TEST_END();
}
