/*
 * fuzz_config.c: the config file, run through the sandboxed evaluation
 * exactly as `strigil run -c FILE` does. config_load() reads a path, so
 * each input is written to one temporary file first (no parallel copy of
 * the loader for a buffer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static char	fuzz_path[64];

static void
fuzz_cleanup(void)
{
	if (fuzz_path[0] != '\0')
		unlink(fuzz_path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	 cfg;
	char		*cause = NULL;
	FILE		*f;
	int		 fd;

	if (fuzz_path[0] == '\0') {
		snprintf(fuzz_path, sizeof fuzz_path,
		    "/tmp/strigil-fuzz-config.XXXXXX");
		if ((fd = mkstemp(fuzz_path)) == -1)
			abort();
		close(fd);
		atexit(fuzz_cleanup);
	}
	if ((f = fopen(fuzz_path, "wb")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);

	memset(&cfg, 0, sizeof cfg);
	if (config_load(&cfg, fuzz_path, &cause) != 0)
		free(cause);
	config_free(&cfg);
	return 0;
}
