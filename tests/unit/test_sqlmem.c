/*
 * test_sqlmem.c: the recycling allocator behind SQLite.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sqlmem.h"
#include "test.h"

static int	installed;

static void
test_blocks(void)
{
	char	*a, *b, *c;
	int	 i;

	if (!installed)
		return;		/* AddressSanitizer: SQLite's own allocator */
	a = sqlite3_malloc(10);
	CHECK(a != NULL);
	CHECK(((uintptr_t)a & 15) == 0);
	CHECK_INT(sqlite3_msize(a), 16);
	memset(a, 'x', 10);
	/* Growing within the block keeps it; beyond, the content moves. */
	b = sqlite3_realloc(a, 16);
	CHECK(b == a);
	b = sqlite3_realloc(b, 100);
	CHECK(b != NULL);
	CHECK_INT(sqlite3_msize(b), 112);
	for (i = 0; i < 10; i++)
		CHECK(b[i] == 'x');
	/* A freed block of a size comes back for that size. */
	sqlite3_free(b);
	c = sqlite3_malloc(100);
	CHECK(c == b);
	sqlite3_free(c);
	/* Past SQLMEM_MAX: malloc's, given back. */
	a = sqlite3_malloc(SQLMEM_MAX + 1);
	CHECK(a != NULL);
	CHECK(sqlite3_msize(a) >= SQLMEM_MAX + 1);
	memset(a, 0, SQLMEM_MAX + 1);
	sqlite3_free(a);
	sqlite3_free(NULL);
}

/* A database under it: many rows, savepoints rolled back and released
 * (the in-memory journal's 1 KiB chunks come and go). */
static void
test_database(void)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		 sql[160];
	int		 i;

	CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY,"
	    " v TEXT); CREATE INDEX tv ON t(v); BEGIN", NULL, NULL,
	    NULL) == SQLITE_OK);
	for (i = 0; i < 2000; i++) {
		snprintf(sql, sizeof sql, "SAVEPOINT e; INSERT INTO t (v)"
		    " VALUES (printf('%%0500d', %d)); %s", i, i % 3 == 0 ?
		    "ROLLBACK TO e; RELEASE e;" : "RELEASE e;");
		CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	}
	CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "SELECT count(*), sum(CAST(v AS INTEGER)"
	    " % 3 = 0) FROM t", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(st, 0), 1333);
	CHECK_INT(sqlite3_column_int(st, 1), 0);
	sqlite3_finalize(st);
	CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st,
	    NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

int
main(void)
{
	installed = sqlmem_install() == 0;
	TEST(test_blocks);
	TEST(test_database);
	return TEST_END();
}
