/*
 * log.c: one key=value line per event on stderr.
 *
 * Each line goes out in a single fwrite() so lines from the daemon and from a
 * child (or a second process sharing the terminal) never interleave mid-line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"

#define LOG_Q_MAX	200	/* bytes of a log_q() result, quotes included */
#define LOG_Q_BUFS	4

static enum log_level	log_level = LOG_INFO;

static const char *const log_names[] = {
	[LOG_DEBUG] = "debug",
	[LOG_INFO] = "info",
	[LOG_WARN] = "warn",
	[LOG_ERROR] = "error",
};

void
log_set_level(enum log_level level)
{
	if (level >= LOG_DEBUG && level <= LOG_ERROR)
		log_level = level;
}

int
log_level_parse(const char *name)
{
	size_t	i;

	if (name == NULL)
		return -1;
	for (i = 0; i < sizeof log_names / sizeof log_names[0]; i++) {
		if (strcmp(name, log_names[i]) == 0)
			return (int)i;
	}
	return -1;
}

void
log_write(enum log_level level, const char *fmt, ...)
{
	char		 stackbuf[512], ts[32], *line = stackbuf, *big = NULL;
	va_list		 ap;
	int		 head, n;
	size_t		 len;

	if (level < log_level || level > LOG_ERROR)
		return;

	clock_iso(clock_now(), ts, sizeof ts);
	head = snprintf(stackbuf, sizeof stackbuf, "ts=%s level=%s ", ts,
	    log_names[level]);
	if (head < 0 || (size_t)head >= sizeof stackbuf)
		return;

	va_start(ap, fmt);
	n = vsnprintf(stackbuf + head, sizeof stackbuf - (size_t)head, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len = (size_t)head + (size_t)n;

	/* Rare long line: format again into a buffer that fits. */
	if (len + 1 >= sizeof stackbuf) {
		big = xmalloc(len + 2);
		memcpy(big, stackbuf, (size_t)head);
		va_start(ap, fmt);
		vsnprintf(big + head, (size_t)n + 1, fmt, ap);
		va_end(ap);
		line = big;
	}
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
	free(big);
}

/* Whether `s` can stand as a bare value: non-empty, nothing to escape. */
static int
log_q_bare(const char *s)
{
	const unsigned char	*p;

	if (*s == '\0')
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' ||
		    *p == 0x7f)
			return 0;
	}
	return 1;
}

/*
 * Writes the escape for byte `c` into out (at least 5 bytes) and returns its
 * length.
 */
static size_t
log_q_escape(unsigned char c, char *out)
{
	switch (c) {
	case '\n':
		memcpy(out, "\\n", 2);
		return 2;
	case '\r':
		memcpy(out, "\\r", 2);
		return 2;
	case '\t':
		memcpy(out, "\\t", 2);
		return 2;
	case '"':
	case '\\':
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	}
	if (c < ' ' || c == 0x7f) {
		snprintf(out, 5, "\\x%02x", c);
		return 4;
	}
	out[0] = (char)c;
	return 1;
}

/*
 * Returns `used`, or less so that buf[1..used) does not end in the middle of a
 * UTF-8 sequence.
 */
static size_t
log_q_utf8_cut(const char *buf, size_t used)
{
	size_t		i = used, need;
	unsigned char	c;

	while (i > 1 && used - i < 3 &&
	    ((unsigned char)buf[i - 1] & 0xc0) == 0x80)
		i--;
	if (i <= 1)
		return used;
	c = (unsigned char)buf[i - 1];
	if (c < 0xc0)
		return used;	/* ASCII, or bytes that were never UTF-8 */
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	if (used - (i - 1) < need)
		return i - 1;
	return used;
}

const char *
log_q(const char *s)
{
	static _Thread_local char	 bufs[LOG_Q_BUFS][LOG_Q_MAX + 1];
	static _Thread_local unsigned	 next;
	const unsigned char		*p;
	char				*buf, esc[5];
	size_t				 used, n, keep;

	buf = bufs[next++ % LOG_Q_BUFS];
	if (s == NULL)
		s = "(null)";

	if (log_q_bare(s) && strlen(s) <= LOG_Q_MAX) {
		memcpy(buf, s, strlen(s) + 1);
		return buf;
	}

	/*
	 * Quoted: leave room for the closing quote, and for "..." should the
	 * value be cut. A cut never splits an escape, nor a UTF-8 sequence,
	 * so the line stays valid text.
	 */
	buf[0] = '"';
	used = 1;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		n = log_q_escape(*p, esc);
		if (used + n > LOG_Q_MAX - 1 - 3)
			break;
		memcpy(buf + used, esc, n);
		used += n;
	}
	if (*p != '\0') {
		/* Did the rest fit after all, without the "..." reserve? */
		keep = used;
		for (; *p != '\0'; p++) {
			n = log_q_escape(*p, esc);
			if (used + n > LOG_Q_MAX - 1)
				break;
			memcpy(buf + used, esc, n);
			used += n;
		}
		if (*p != '\0') {
			used = log_q_utf8_cut(buf, keep);
			memcpy(buf + used, "...", 3);
			used += 3;
		}
	}
	buf[used++] = '"';
	buf[used] = '\0';
	return buf;
}
