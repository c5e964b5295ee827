/*
 * sqlmem.h: a recycling allocator for SQLite.
 *
 * Debian's SQLite is built without lookaside memory (SQLITE_OMIT_LOOKASIDE),
 * so every cursor, record and string of every statement is a malloc and a
 * free, and each savepoint copies the pages it touches into a journal of
 * 1 KiB chunks that are all freed at its release. That churn was about a
 * seventh of a simulation's instructions in glibc's malloc. sqlmem keeps
 * freed blocks of up to SQLMEM_MAX bytes on per-size free lists and hands
 * them out again; larger blocks go to malloc as before.
 */
#ifndef STRIGIL_SQLMEM_H
#define STRIGIL_SQLMEM_H

#define SQLMEM_MAX	1024	/* largest recycled block, in bytes */

/* Makes SQLite allocate through sqlmem. Must run before SQLite's first
 * use (store_open() calls it); later it is refused and SQLite keeps its
 * own allocator, which is harmless. A no-op under AddressSanitizer, which
 * must see every block. Returns 0, or -1 if refused. */
int	sqlmem_install(void);

#endif
