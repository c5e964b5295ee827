/*
 * backup.h: `strigil backup FILE`, a consistent copy of the database while
 * the daemon runs.
 *
 * The copy goes through SQLite's online backup API from a read-only
 * connection, a few pages at a time with a short pause between steps, inside
 * one read transaction: in WAL mode the daemon keeps writing meanwhile, and
 * the copy is the database as it was when the backup started. It is written
 * to FILE.tmp, made a single self-contained file (no -wal), checked with
 * PRAGMA integrity_check and only then renamed to FILE, so FILE is never a
 * half backup. Restoring is moving it into place as the database file while
 * the daemon is stopped (README, "Backup and restore").
 */
#ifndef STRIGIL_BACKUP_H
#define STRIGIL_BACKUP_H

#include <stdint.h>

struct backup_result {
	int64_t	bytes;		/* size of FILE */
	int	pages;		/* pages copied */
	int	tables;
	int64_t	rows;		/* in all tables */
};

/* Copies the database at `db` to `file`. An existing `file` is refused
 * unless `force`. 0 with *res, or -1 with *cause (caller frees). */
int	backup_run(const char *db, const char *file, int force,
	    struct backup_result *res, char **cause);

#endif
