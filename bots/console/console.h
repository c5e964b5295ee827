/*
 * console.h: chat with the bot in a terminal.
 *
 * The embedded default adapter: one patient ("console") types on standard
 * input and reads the bot's messages on standard output; messages for the
 * clinician are shown marked as such. Options are numbered and the patient
 * types a number or the text. With virtual time (strigil chat), the
 * console-only command /wait moves the clock ("/wait 26h", "/wait 3d", or
 * "/wait" alone: until the next thing happens). The console also plays the
 * clinician: "/clinic clear" lifts a clinical hold, as the clinician would
 * once they have cleared the patient.
 */
#ifndef STRIGIL_CONSOLE_H
#define STRIGIL_CONSOLE_H

#include <uv.h>

struct console;
struct engine;
struct sched;

/* Called once when standard input ends (or /quit). */
typedef void console_eof_fn(void *ud);

/* Starts reading standard input on `loop`. `virtual_time` enables /wait.
 * 0 or -1 with *cause (caller frees). Free with console_close(), which
 * closes the input handle and frees the console from its close callback. */
int	console_new(struct console **out, uv_loop_t *loop, struct engine *e,
	    struct sched *s, int virtual_time, console_eof_fn *eof, void *ud,
	    char **cause);
void	console_close(struct console *c);

/* Prints every message queued for the console and marks it delivered. */
void	console_flush(struct console *c);

/* Parses "26h", "90m", "3d", "2w" or plain seconds; -1 if malformed. */
long long console_duration(const char *s);

#endif
