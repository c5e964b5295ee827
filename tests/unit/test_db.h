/*
 * test_db.h: a test's database: opening a store, naming and removing its
 * files, and looking into it from the side.
 *
 * The tests check what the store wrote through a second SQLite connection,
 * as an operator with the sqlite3 shell would, instead of trusting the
 * store's own reads. Static inline so a test file may use any subset.
 */
#ifndef STRIGIL_TEST_DB_H
#define STRIGIL_TEST_DB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

/* The schema version the store migrates to: bump with each migration. */
#define SCHEMA_LATEST	9

/* The first column of the first row of `sql` as an integer, or -1. */
static inline long long
raw_int(const char *path, const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	long long	 v = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	} else
		fprintf(stderr, "raw_int: %s\n", sqlite3_errmsg(db));
	sqlite3_close(db);
	return v;
}

/* The same as text (caller frees), or NULL. */
static inline char *
raw_text(const char *path, const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		*v = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_text(st, 0) != NULL)
			v = strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

/* Runs statements that return nothing; 0 or -1. */
static inline int
raw_exec(const char *path, const char *sql)
{
	sqlite3	*db;
	int	 rc;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Opens a store at `path` (":memory:" too), or ends the test run. */
static inline struct store *
db_store(const char *path)
{
	struct store	*s = NULL;
	char		*cause = NULL;

	if (store_open(&s, path, &cause) != 0) {
		fprintf(stderr, "store_open: %s\n", cause);
		free(cause);
		exit(2);
	}
	return s;
}

/* A name for a new database file in /tmp, `size` at least 32; the file
 * does not exist. */
static inline void
db_temp_path(char *buf, size_t size)
{
	int	fd;

	snprintf(buf, size, "/tmp/strigil-test-XXXXXX");
	if ((fd = mkstemp(buf)) < 0) {
		perror("mkstemp");
		exit(2);
	}
	close(fd);
	unlink(buf);
}

/* Removes a database file and its -wal and -shm. */
static inline void
db_unlink(const char *path)
{
	char	buf[256];

	unlink(path);
	snprintf(buf, sizeof buf, "%s-wal", path);
	unlink(buf);
	snprintf(buf, sizeof buf, "%s-shm", path);
	unlink(buf);
}

/* A store_answer_since() callback: appends "question=value;" to `ud`, a
 * buffer of DB_ANSWERS_MAX bytes holding a string. */
#define DB_ANSWERS_MAX	512

static inline void
db_collect_answer(void *ud, const char *question, const char *value)
{
	char	*buf = ud;
	size_t	 n = strlen(buf);

	snprintf(buf + n, DB_ANSWERS_MAX - n, "%s=%s;", question, value);
}

#endif
