/*
 * sqlmem.c: a recycling allocator for SQLite; see sqlmem.h.
 *
 * Every block has a 16-byte header holding its usable size (a multiple of
 * 16), so xSize needs no lookup and the block stays 16-byte aligned. A
 * freed block of up to SQLMEM_MAX bytes goes on the free list of its size
 * and is never given back to malloc: what is kept is at most what SQLite
 * once used at its peak. The lists are per thread, so no lock is taken; a
 * block freed by another thread simply joins that thread's list.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sqlmem.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SQLMEM_ASAN	1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SQLMEM_ASAN	1
#endif

#ifndef SQLMEM_ASAN
#define SQLMEM_HDR	16
#define SQLMEM_CLASSES	(SQLMEM_MAX / 16 + 1)

struct sqlmem_free {
	struct sqlmem_free	*next;
};

static _Thread_local struct sqlmem_free *sqlmem_lists[SQLMEM_CLASSES];

static int
sqlmem_roundup(int n)
{
	return n <= 0 ? 16 : (int)(((unsigned)n + 15) & ~15u);
}

static int
sqlmem_size(void *p)
{
	if (p == NULL)
		return 0;
	return (int)*(int64_t *)(void *)((char *)p - SQLMEM_HDR);
}

static void *
sqlmem_malloc(int n)
{
	struct sqlmem_free	*f;
	int			 size = sqlmem_roundup(n);
	char			*h;

	if (size <= SQLMEM_MAX && (f = sqlmem_lists[size / 16]) != NULL) {
		sqlmem_lists[size / 16] = f->next;
		return f;
	}
	if ((h = malloc((size_t)size + SQLMEM_HDR)) == NULL)
		return NULL;
	*(int64_t *)(void *)h = size;
	return h + SQLMEM_HDR;
}

static void
sqlmem_release(void *p)
{
	struct sqlmem_free	*f = p;
	int			 size;

	if (p == NULL)
		return;
	size = sqlmem_size(p);
	if (size <= SQLMEM_MAX) {
		f->next = sqlmem_lists[size / 16];
		sqlmem_lists[size / 16] = f;
		return;
	}
	free((char *)p - SQLMEM_HDR);
}

static void *
sqlmem_realloc(void *p, int n)
{
	void	*q;
	int	 old = sqlmem_size(p);

	if (p != NULL && sqlmem_roundup(n) <= old)
		return p;
	if ((q = sqlmem_malloc(n)) == NULL)
		return NULL;
	if (p != NULL) {
		memcpy(q, p, (size_t)old);
		sqlmem_release(p);
	}
	return q;
}

static int
sqlmem_init(void *ud)
{
	(void)ud;
	return SQLITE_OK;
}

static void
sqlmem_shutdown(void *ud)
{
	(void)ud;
}

#endif /* !SQLMEM_ASAN */

int
sqlmem_install(void)
{
#ifdef SQLMEM_ASAN
	return -1;
#else
	static const sqlite3_mem_methods m = {
		sqlmem_malloc, sqlmem_release, sqlmem_realloc, sqlmem_size,
		sqlmem_roundup, sqlmem_init, sqlmem_shutdown, NULL
	};

	return sqlite3_config(SQLITE_CONFIG_MALLOC, &m) == SQLITE_OK ? 0 : -1;
#endif
}
