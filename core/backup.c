/*
 * backup.c: a consistent copy of the live database (see backup.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "backup.h"
#include "xmalloc.h"

#define BACKUP_PAGES	64	/* pages per step (256 KiB at 4 KiB a page) */
#define BACKUP_PAUSE_MS	5	/* between steps: the daemon's writes go on */
#define BACKUP_BUSY_MAX	200	/* busy steps in a row before giving up */

/* Removes `path` and the journal files SQLite may keep beside it. */
static void
backup_unlink_db(const char *path)
{
	static const char	*suffix[] = { "", "-journal", "-wal", "-shm" };
	char			*p;
	size_t			 i;

	for (i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		p = xasprintf("%s%s", path, suffix[i]);
		unlink(p);
		free(p);
	}
}

/* 1 if `path` names the file `db` describes. */
static int
backup_same_file(const struct stat *db, const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0 && st.st_dev == db->st_dev &&
	    st.st_ino == db->st_ino;
}

static int
backup_same_tmp(const struct stat *db, const char *file)
{
	char	*tmp = xasprintf("%s.tmp", file);
	int	 same = backup_same_file(db, tmp);

	free(tmp);
	return same;
}

/* The single text value of `sql` (caller frees), or NULL. */
static char *
backup_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	char		*v = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

/* PRAGMA integrity_check of the copy: 0 if "ok", else -1 with *cause
 * holding its first complaint. */
static int
backup_check(sqlite3 *db, const char *file, char **cause)
{
	char	*v = backup_text(db, "PRAGMA integrity_check");

	if (v != NULL && strcmp(v, "ok") == 0) {
		free(v);
		return 0;
	}
	*cause = xasprintf("%s: integrity_check failed: %s", file,
	    v != NULL ? v : sqlite3_errmsg(db));
	free(v);
	return -1;
}

/* Counts the tables of the copy and their rows, for the summary. */
static int
backup_count(sqlite3 *db, struct backup_result *res)
{
	sqlite3_stmt	*st, *cnt;
	char		*sql;
	int		 rc = 0;

	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE "
	    "type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name", -1,
	    &st, NULL) != SQLITE_OK)
		return -1;
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\"",
		    (const char *)sqlite3_column_text(st, 0));
		if (sql == NULL ||
		    sqlite3_prepare_v2(db, sql, -1, &cnt, NULL) != SQLITE_OK)
			rc = -1;
		else {
			if (sqlite3_step(cnt) == SQLITE_ROW)
				res->rows += sqlite3_column_int64(cnt, 0);
			else
				rc = -1;
			sqlite3_finalize(cnt);
		}
		sqlite3_free(sql);
		res->tables++;
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * Copies `from` into `to` step by step. The source holds one read
 * transaction throughout (WAL), so writes by the daemon between steps
 * neither block nor restart the copy.
 */
static int
backup_copy(sqlite3 *from, sqlite3 *to, struct backup_result *res,
    char **cause)
{
	sqlite3_backup	*b;
	int		 rc, busy = 0;

	if ((b = sqlite3_backup_init(to, "main", from, "main")) == NULL) {
		*cause = xasprintf("cannot start the backup: %s",
		    sqlite3_errmsg(to));
		return -1;
	}
	for (;;) {
		rc = sqlite3_backup_step(b, BACKUP_PAGES);
		if (rc == SQLITE_DONE)
			break;
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
			if (++busy > BACKUP_BUSY_MAX)
				break;
		} else if (rc == SQLITE_OK)
			busy = 0;
		else
			break;
		sqlite3_sleep(BACKUP_PAUSE_MS);
	}
	res->pages = sqlite3_backup_pagecount(b);
	if (sqlite3_backup_finish(b) != SQLITE_OK || rc != SQLITE_DONE) {
		*cause = xasprintf("the backup failed: %s", rc == SQLITE_BUSY ||
		    rc == SQLITE_LOCKED ? "the database stayed locked" :
		    sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

/* Makes the rename durable: fsync of the folder holding `file`. */
static void
backup_sync_dir(const char *file)
{
	char	*dir = xstrdup(file), *slash = strrchr(dir, '/');
	int	 fd;

	if (slash == NULL)
		snprintf(dir, strlen(dir) + 1, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

int
backup_run(const char *db, const char *file, int force,
    struct backup_result *res, char **cause)
{
	static const char	*sidecar[] = { "-journal", "-wal", "-shm" };
	sqlite3			*from = NULL, *to = NULL;
	struct stat		 sb;
	char			*tmp = NULL, *mode = NULL, *p;
	size_t			 i;
	int			 wal;

	memset(res, 0, sizeof *res);
	if (strcmp(db, ":memory:") == 0) {
		*cause = xstrdup("the database is in memory: there is nothing "
		    "to back up");
		return -1;
	}
	if (!force && lstat(file, &sb) == 0) {
		*cause = xasprintf("%s exists: give another name, or --force "
		    "to overwrite it", file);
		return -1;
	}
	if (stat(db, &sb) != 0) {
		*cause = xasprintf("%s: %s", db, strerror(errno));
		return -1;
	}
	/* Even with --force, never the database itself (or its .tmp): the
	 * rename would leave the running daemon writing to deleted files. */
	if (backup_same_file(&sb, file) || backup_same_tmp(&sb, file)) {
		*cause = xasprintf("%s is the database itself: back up to "
		    "another file", file);
		return -1;
	}

	/* The source: read-only, and patient with the daemon's locks. */
	if (sqlite3_open_v2(db, &from, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		*cause = xasprintf("%s: %s", db, from != NULL ?
		    sqlite3_errmsg(from) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(from, 5000);
	if ((mode = backup_text(from, "PRAGMA journal_mode")) == NULL) {
		*cause = xasprintf("%s: %s", db, sqlite3_errmsg(from));
		goto fail;
	}
	/* Only in WAL mode does a long read leave writers alone. */
	wal = strcmp(mode, "wal") == 0;
	if (wal && sqlite3_exec(from, "BEGIN; SELECT count(*) FROM "
	    "sqlite_master;", NULL, NULL, NULL) != SQLITE_OK) {
		*cause = xasprintf("%s: %s", db, sqlite3_errmsg(from));
		goto fail;
	}

	/* The copy: FILE.tmp (a leftover of a failed run is replaced). */
	tmp = xasprintf("%s.tmp", file);
	backup_unlink_db(tmp);
	if (sqlite3_open_v2(tmp, &to, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		*cause = xasprintf("%s: %s", tmp, to != NULL ?
		    sqlite3_errmsg(to) : "cannot open");
		goto fail;
	}
	if (backup_copy(from, to, res, cause) != 0)
		goto fail;
	if (wal)
		sqlite3_exec(from, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(from);
	from = NULL;

	/* One self-contained file, checked before it takes the name. */
	free(mode);
	if ((mode = backup_text(to, "PRAGMA journal_mode = DELETE")) == NULL ||
	    strcmp(mode, "delete") != 0) {
		*cause = xasprintf("%s: cannot leave WAL mode: %s", tmp,
		    sqlite3_errmsg(to));
		goto fail;
	}
	if (backup_check(to, tmp, cause) != 0)
		goto fail;
	if (backup_count(to, res) != 0) {
		*cause = xasprintf("%s: cannot count the rows: %s", tmp,
		    sqlite3_errmsg(to));
		goto fail;
	}
	if (sqlite3_close(to) != SQLITE_OK) {
		*cause = xasprintf("%s: %s", tmp, sqlite3_errmsg(to));
		goto fail;
	}
	to = NULL;

	/* An old database's -wal or -journal beside FILE would be replayed
	 * into the copy on its first open. */
	if (force) {
		for (i = 0; i < sizeof sidecar / sizeof sidecar[0]; i++) {
			p = xasprintf("%s%s", file, sidecar[i]);
			unlink(p);
			free(p);
		}
	}
	if (rename(tmp, file) != 0) {
		*cause = xasprintf("%s: %s", file, strerror(errno));
		goto fail;
	}
	backup_sync_dir(file);
	if (stat(file, &sb) == 0)
		res->bytes = (int64_t)sb.st_size;
	free(tmp);
	free(mode);
	return 0;
fail:
	if (from != NULL)
		sqlite3_close(from);	/* also ends its read transaction */
	if (to != NULL)
		sqlite3_close(to);
	if (tmp != NULL)
		backup_unlink_db(tmp);
	free(tmp);
	free(mode);
	return -1;
}
