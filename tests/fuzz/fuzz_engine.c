/*
 * fuzz_engine.c: what patients send, through the whole engine.
 *
 * Each input is a conversation: lines (split at '\n') sent in order by one
 * of four patients (the first byte of a line picks which, the rest is the
 * text), on a fresh in-memory database with the shipped iastm_home
 * protocol. A line that is just "~" runs the jobs of the next day, so
 * reminders, check-ins and missed sessions come into play. After each
 * step every message the engine queued must be valid UTF-8 (what an
 * adapter would put into JSON), and the engine must never fail outright.
 * Runs from the repository root (protocol and texts are read from there).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "fuzz.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define FUZZ_T0		INT64_C(1772352000)	/* 2026-03-01T08:00:00Z */
#define FUZZ_PROTOCOL	"scripts/protocols/iastm_home.lua"
#define FUZZ_MAX_LINES	64

static struct config	fuzz_cfg;
static int		fuzz_ready;

/* 1 if `s` is valid UTF-8 (no overlong forms, surrogates, or past
 * U+10FFFF). */
static int
fuzz_utf8(const unsigned char *s)
{
	size_t	n, i;

	while (*s != '\0') {
		if (*s < 0x80) {
			s++;
			continue;
		}
		if (*s >= 0xc2 && *s <= 0xdf)
			n = 2;
		else if ((*s & 0xf0) == 0xe0)
			n = 3;
		else if (*s >= 0xf0 && *s <= 0xf4)
			n = 4;
		else
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) ||
		    (s[0] == 0xed && s[1] >= 0xa0) ||
		    (s[0] == 0xf0 && s[1] < 0x90) ||
		    (s[0] == 0xf4 && s[1] >= 0x90))
			return 0;
		for (i = 1; i < n; i++)
			if ((s[i] & 0xc0) != 0x80)
				return 0;
		s += n;
	}
	return 1;
}

/* Delivers the outbox as an adapter would, checking every text. */
static void
fuzz_drain(struct store *st, int64_t now)
{
	struct store_out	o;

	while (store_outbox_next(st, "console", now, &o) == 0) {
		if (!fuzz_utf8((const unsigned char *)o.body) ||
		    (o.meta != NULL &&
		    !fuzz_utf8((const unsigned char *)o.meta)))
			abort();	/* invalid UTF-8 would reach an adapter */
		store_outbox_sent(st, o.id, now);
		store_out_clear(&o);
	}
}

static void
fuzz_init(void)
{
	char	*cause = NULL;

	log_set_level(LOG_ERROR);
	if (config_load(&fuzz_cfg, NULL, &cause) != 0)
		abort();
	free(fuzz_cfg.default_protocol);
	fuzz_cfg.default_protocol = xstrdup("iastm_home");
	fuzz_cfg.lua_instructions = 1000000;
	fuzz_ready = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store	*st = NULL;
	struct engine	*e = NULL;
	char		*cause = NULL, *text, *line, *next, chat[2], id[16];
	int64_t		 now = FUZZ_T0;
	int		 n = 0, seq = 0;

	if (!fuzz_ready)
		fuzz_init();
	clock_init(CLOCK_MANUAL, now);
	if (store_open(&st, ":memory:", &cause) != 0 ||
	    engine_new(&e, &fuzz_cfg, st, &cause) != 0 ||
	    engine_load_file(e, FUZZ_PROTOCOL, &cause) != 0 ||
	    engine_ready(e, &cause) != 0) {
		fprintf(stderr, "fuzz_engine: %s\n", cause);
		abort();
	}
	text = xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	for (line = text; line != NULL && n < FUZZ_MAX_LINES; line = next,
	    n++) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (strcmp(line, "~") == 0) {
			now += 86400;
			clock_set(now);
			if (engine_run_due(e, now) < 0)
				abort();
		} else if (line[0] != '\0') {
			chat[0] = (char)('a' + ((unsigned char)line[0] & 3));
			chat[1] = '\0';
			snprintf(id, sizeof id, "m%d", ++seq);
			now += 60;
			clock_set(now);
			if (engine_inbound(e, "console", chat, id, line + 1,
			    now) < 0)
				abort();
		}
		fuzz_drain(st, now);
	}
	free(text);
	engine_free(e);
	store_close(st);
	return 0;
}
