/*
 * daemon.h: the long-running process: `strigil run` and `strigil chat`.
 *
 * One libuv loop hosts the scheduler, the adapters and the signal handlers.
 * SIGINT/SIGTERM stop taking input and exit 0 once the loop is idle; since
 * every event runs to its commit inside one callback, no transaction is cut
 * short. SIGHUP reloads the protocols: a file that fails keeps its old
 * version running, and the log says why. `run` also watches the protocols
 * folder and reloads a changed file (or loads a new one) 300 ms after the
 * last write; `chat` does not watch.
 */
#ifndef STRIGIL_DAEMON_H
#define STRIGIL_DAEMON_H

#include <stdint.h>

struct config;

struct daemon_opts {
	const struct config	*cfg;
	int			 chat;		/* console with virtual time */
	const char		*protocol;	/* a file to load instead of the folder */
	const char		*database;	/* overrides cfg->database */
	int64_t			 start;		/* chat: virtual start, or -1 */
};

/* Runs until stopped; returns the process exit code. */
int	daemon_main(const struct daemon_opts *o);

#endif
