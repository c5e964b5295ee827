/*
 * log.h: one key=value line per event on stderr.
 *
 *   ts=2026-03-01T08:00:00Z level=info event=job_done job=12 patient=3
 *
 * Callers write the "event=... key=value" part with printf formatting; values
 * that may hold spaces or quotes go through log_q(), which quotes and escapes.
 * Never pass a token, a password, a patient's name or anything a patient
 * wrote: patients appear only by internal id.
 */
#ifndef STRIGIL_LOG_H
#define STRIGIL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void	log_set_level(enum log_level level);
/* Parses "debug", "info", "warn", "error"; -1 if unknown. */
int	log_level_parse(const char *name);

void	log_write(enum log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
#define log_debug(...)	log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)	log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)	log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...)	log_write(LOG_ERROR, __VA_ARGS__)

/* Returns `s` quoted for a log value ("a b" -> "\"a b\"", newlines escaped,
 * cut at 200 bytes). The result lives in one of 4 rotating static buffers, so
 * up to 4 log_q() calls can appear in one log_write(). */
const char *log_q(const char *s);

#endif
