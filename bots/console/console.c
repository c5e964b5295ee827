/*
 * console.c: the console adapter.
 *
 * Input is read with libuv (a TTY or a pipe; a regular file is read with
 * uv_fs_read) and split into lines; each line is one inbound message with a
 * unique id. Output is the outbox for adapter "console", printed and marked
 * sent in order.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "console.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "schedule.h"
#include "store.h"
#include "tz.h"
#include "xmalloc.h"

#define CONSOLE_ADAPTER	"console"
#define CONSOLE_CHAT	"patient"
#define CONSOLE_LINE	8192

struct console {
	union {
		uv_handle_t	handle;
		uv_stream_t	stream;
		uv_tty_t	tty;
		uv_pipe_t	pipe;
	} in;
	int		 is_file;	/* stdin is a regular file */
	uv_fs_t		 fs;
	char		 fsbuf[4096];
	uv_loop_t	*loop;
	struct engine	*e;
	struct sched	*s;
	int		 virtual_time;
	console_eof_fn	*eof;
	void		*ud;
	char		 line[CONSOLE_LINE];
	size_t		 len;
	int		 overlong;	/* the line in progress was too long */
	unsigned long long nonce;	/* makes message ids unique per run */
	unsigned long long seq;
	/* The commands of the last reminder, so "1" can mean /done. */
	char		 commands[4][16];
	int		 ncommands;
	int		 closing;
};

/* ---- output ------------------------------------------------------- */

static void
console_options(struct console *c, const cJSON *meta)
{
	const cJSON	*opts, *o, *cmds;
	const char	*type;
	int		 i = 0;

	type = cJSON_GetStringValue(cJSON_GetObjectItem(meta, "type"));
	c->ncommands = 0;
	if (type != NULL && strcmp(type, "reminder") == 0) {
		cmds = cJSON_GetObjectItem(meta, "commands");
		cJSON_ArrayForEach(o, cmds) {
			if (!cJSON_IsString(o) || c->ncommands == 4)
				continue;
			snprintf(c->commands[c->ncommands],
			    sizeof c->commands[0], "%s", o->valuestring);
			printf("  %d. %s\n", ++c->ncommands, o->valuestring);
		}
		return;
	}
	if (cJSON_GetObjectItem(meta, "min") != NULL)
		printf("  (%d-%d)\n",
		    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(meta, "min")),
		    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(meta, "max")));
	opts = cJSON_GetObjectItem(meta, "options");
	cJSON_ArrayForEach(o, opts)
		printf("  %d. %s\n", ++i,
		    cJSON_GetStringValue(cJSON_GetObjectItem(o, "text")));
}

static void
console_print(struct console *c, const struct store_out *o)
{
	cJSON	*meta = o->meta != NULL ? cJSON_Parse(o->meta) : NULL;

	if (o->chat[0] == '@')
		printf("[to the clinician] %s\n", o->body);
	else {
		printf("bot> %s\n", o->body);
		if (meta != NULL)
			console_options(c, meta);
	}
	cJSON_Delete(meta);
}

void
console_flush(struct console *c)
{
	struct store	*st = engine_store(c->e);
	struct store_out o;

	while (store_outbox_next(st, CONSOLE_ADAPTER, clock_now(), &o) == 0) {
		console_print(c, &o);
		/* Out before it is marked sent: a crash may repeat it, not lose it. */
		fflush(stdout);
		if (store_outbox_sent(st, o.id, clock_now()) == 0)
			metrics_adapter_count(CONSOLE_ADAPTER, METRICS_SENT, 1);
		store_out_clear(&o);
	}
	fflush(stdout);
}

/* ---- input -------------------------------------------------------- */

long long
console_duration(const char *s)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno != 0 || v < 0 || v > 1000000)
		return -1;
	switch (*end) {
	case 'w': v *= 7 * 86400; end++; break;
	case 'd': v *= 86400; end++; break;
	case 'h': v *= 3600; end++; break;
	case 'm': v *= 60; end++; break;
	case 's': end++; break;
	}
	return *end == '\0' ? v : -1;
}

static void
console_show_time(void)
{
	char	buf[32];

	printf("-- it is now %s\n", clock_iso(clock_now(), buf, sizeof buf));
}

static int
console_after(void *ud)
{
	console_flush(ud);
	return 0;
}

/* "/wait [DURATION]": moves virtual time, running what comes due. */
static void
console_wait(struct console *c, const char *arg)
{
	long long	d;
	int64_t		due;

	while (isspace((unsigned char)*arg))
		arg++;
	if (!c->virtual_time) {
		printf("-- /wait works in `strigil chat`, where time is "
		    "virtual\n");
		return;
	}
	if (*arg == '\0') {
		if (engine_next_due(c->e, &due) != 0) {
			printf("-- nothing is planned\n");
			return;
		}
		d = due > clock_now() ? due - clock_now() : 0;
	} else if ((d = console_duration(arg)) < 0) {
		printf("-- usage: /wait 26h (or 90m, 3d, 2w; alone: until the "
		    "next thing happens)\n");
		return;
	}
	if (sched_run_until(c->e, clock_now() + d, console_after, c) < 0)
		printf("-- the database failed; see the log\n");
	console_show_time();
	sched_kick(c->s);
}

/* A number typed after a reminder picks its command. */
static const char *
console_pick(struct console *c, const char *line)
{
	char	*end;
	long	 n = strtol(line, &end, 10);

	if (c->ncommands == 0 || end == line || *end != '\0' || n < 1 ||
	    n > c->ncommands)
		return line;
	return c->commands[n - 1];
}

static void
console_line(struct console *c, char *line)
{
	char	 id[64];
	size_t	 n = strlen(line);

	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
		line[--n] = '\0';
	if (n == 0)
		return;
	if (strncmp(line, "/wait", 5) == 0 &&
	    (line[5] == '\0' || isspace((unsigned char)line[5]))) {
		console_wait(c, line + 5);
		return;
	}
	if (strcmp(line, "/clinic clear") == 0) {
		/* The console plays the clinician too: lift a clinical hold. */
		switch (engine_clear(c->e, CONSOLE_ADAPTER, CONSOLE_CHAT,
		    clock_now())) {
		case 1:
			printf("-- the patient is not on hold\n");
			break;
		case 2:
			printf("-- the protocol failed (see the log): "
			    "the hold stays\n");
			break;
		}
		console_flush(c);
		sched_kick(c->s);
		return;
	}
	if (strcmp(line, "/time") == 0) {
		console_show_time();
		return;
	}
	if (strcmp(line, "/quit") == 0) {
		/* The owner closes the console, as at the end of input. */
		if (c->eof != NULL)
			c->eof(c->ud);
		return;
	}
	snprintf(id, sizeof id, "%llx-%llu", c->nonce, ++c->seq);
	line = (char *)console_pick(c, line);
	if (engine_inbound(c->e, CONSOLE_ADAPTER, CONSOLE_CHAT, id, line,
	    clock_now()) < 0)
		printf("-- the database failed; see the log\n");
	console_flush(c);
	sched_kick(c->s);
}

/* Splits input into lines; a line past CONSOLE_LINE bytes is refused. */
static void
console_feed(struct console *c, const char *buf, size_t n)
{
	size_t	i;

	for (i = 0; i < n && !c->closing; i++) {
		if (buf[i] != '\n') {
			if (c->len < sizeof c->line - 1)
				c->line[c->len++] = buf[i];
			else
				c->overlong = 1;
			continue;
		}
		c->line[c->len] = '\0';
		if (c->overlong)
			printf("-- that line was too long (over %d bytes) and "
			    "was not sent\n", CONSOLE_LINE - 1);
		else
			console_line(c, c->line);
		c->len = 0;
		c->overlong = 0;
	}
	/* "-- it is now ..." and other console notes: a pipe buffers. */
	fflush(stdout);
}

static void
console_end(struct console *c)
{
	if (c->len > 0 && !c->closing) {
		c->line[c->len] = '\0';
		console_line(c, c->line);
		c->len = 0;
	}
	if (!c->closing && c->eof != NULL)
		c->eof(c->ud);
}

static void
console_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	(void)h;
	buf->base = xmalloc(size);
	buf->len = size;
}

static void
console_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct console	*c = stream->data;

	if (n > 0)
		console_feed(c, buf->base, (size_t)n);
	free(buf->base);
	if (n < 0) {
		uv_read_stop(stream);
		console_end(c);
	}
}

static void console_fs_read(uv_fs_t *req);

static void
console_fs_next(struct console *c)
{
	uv_buf_t	buf = uv_buf_init(c->fsbuf, sizeof c->fsbuf);

	uv_fs_read(c->loop, &c->fs, STDIN_FILENO, &buf, 1, -1,
	    console_fs_read);
}

static void
console_fs_read(uv_fs_t *req)
{
	struct console	*c = req->data;
	ssize_t		 n = req->result;

	uv_fs_req_cleanup(req);
	if (n > 0 && !c->closing) {
		console_feed(c, c->fsbuf, (size_t)n);
		if (!c->closing) {
			console_fs_next(c);
			return;
		}
	}
	/* At the end of the file the owner closes the console (console_end ->
	 * eof); no read is in flight then, so it is freed here, not by a
	 * uv_close() of the stream handle a file never had. */
	if (!c->closing)
		console_end(c);
	if (c->closing)
		free(c);
}

static unsigned long long
console_nonce(void)
{
	unsigned long long	v = 0;
	int			fd = open("/dev/urandom", O_RDONLY);

	if (fd >= 0) {
		if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
			v = 0;
		close(fd);
	}
	return v ^ (unsigned long long)clock_mono_ns();
}

int
console_new(struct console **out, uv_loop_t *loop, struct engine *e,
    struct sched *s, int virtual_time, console_eof_fn *eof, void *ud,
    char **cause)
{
	struct console	*c = xcalloc(1, sizeof *c);
	int		 rc = 0;

	c->loop = loop;
	c->e = e;
	c->s = s;
	c->virtual_time = virtual_time;
	c->eof = eof;
	c->ud = ud;
	c->nonce = console_nonce();
	metrics_adapter_register(CONSOLE_ADAPTER);
	switch (uv_guess_handle(STDIN_FILENO)) {
	case UV_TTY:
		rc = uv_tty_init(loop, &c->in.tty, STDIN_FILENO, 1);
		break;
	case UV_NAMED_PIPE:
		if ((rc = uv_pipe_init(loop, &c->in.pipe, 0)) == 0)
			rc = uv_pipe_open(&c->in.pipe, STDIN_FILENO);
		break;
	case UV_FILE:
		c->is_file = 1;
		c->fs.data = c;
		console_fs_next(c);
		*out = c;
		return 0;
	default:
		rc = UV_EINVAL;
		break;
	}
	if (rc == 0) {
		c->in.handle.data = c;
		rc = uv_read_start(&c->in.stream, console_alloc, console_read);
	}
	if (rc != 0) {
		*cause = xasprintf("cannot read standard input: %s",
		    uv_strerror(rc));
		free(c);
		return -1;
	}
	*out = c;
	return 0;
}

static void
console_closed(uv_handle_t *h)
{
	free(h->data);
}

void
console_close(struct console *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (c->is_file) {
		/* The read in flight frees the console when it completes. */
		uv_cancel((uv_req_t *)&c->fs);
		return;
	}
	uv_close(&c->in.handle, console_closed);
}
