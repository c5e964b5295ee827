/*
 * xmalloc.h: allocation that cannot return NULL.
 *
 * Running out of memory in the daemon is not a condition we can serve
 * patients through, so these abort with a message instead of returning NULL;
 * that keeps every caller free of impossible error paths. (Lua's own memory is
 * capped separately, through the sandbox allocator, and fails softly.)
 */
#ifndef STRIGIL_XMALLOC_H
#define STRIGIL_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t size);
void	*xcalloc(size_t n, size_t size);
void	*xrealloc(void *p, size_t size);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees it. */
char	*xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
