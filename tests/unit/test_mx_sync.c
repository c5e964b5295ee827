/*
 * test_mx_sync.c: parsing Matrix /sync, /messages and error answers.
 */
#include <stdlib.h>
#include <string.h>

#include "matrix/mx_sync.h"
#include "test.h"

#define SELF	"@bot:example.org"

static int
parse(const char *json, struct mx_sync *s)
{
	char	*cause = NULL;
	int	 rc = mx_sync_parse(json, strlen(json), SELF, s, &cause);

	CHECK(rc == 0 || cause != NULL);
	free(cause);
	return rc;
}

static const char *SYNC =
    "{\"next_batch\":\"s42\",\"account_data\":{\"events\":[{\"type\":"
    "\"m.direct\",\"content\":{\"@p:example.org\":[\"!d:example.org\"]}}]},"
    "\"rooms\":{\"join\":{\"!a:example.org\":{\"timeline\":{\"limited\":true,"
    "\"prev_batch\":\"s30\",\"events\":["
    "{\"event_id\":\"$1\",\"sender\":\"@p:example.org\",\"type\":"
    "\"m.room.message\",\"origin_server_ts\":1795000000123,\"content\":{"
    "\"msgtype\":\"m.text\",\"body\":\"hi\"}},"
    "{\"event_id\":\"$2\",\"sender\":\"@p:example.org\",\"type\":"
    "\"m.room.message\",\"content\":{\"msgtype\":\"m.text\",\"body\":"
    "\"> <@bot:example.org> How sore?\\n> more\\n\\n3\"}},"
    "{\"event_id\":\"$3\",\"sender\":\"@p:example.org\",\"type\":"
    "\"m.room.message\",\"content\":{\"msgtype\":\"m.text\",\"body\":\"* 4\","
    "\"m.relates_to\":{\"rel_type\":\"m.replace\",\"event_id\":\"$2\"}}},"
    "{\"event_id\":\"$4\",\"sender\":\"@p:example.org\",\"type\":"
    "\"m.room.message\",\"content\":{\"msgtype\":\"m.image\",\"body\":"
    "\"cat.png\"}},"
    "{\"event_id\":\"$5\",\"sender\":\"@p:example.org\",\"type\":"
    "\"org.matrix.msc3381.poll.response\",\"content\":{\"m.relates_to\":{"
    "\"rel_type\":\"m.reference\",\"event_id\":\"$poll\"},"
    "\"org.matrix.msc3381.poll.response\":{\"answers\":[\"a:q:1:yes\"]}}},"
    "{\"event_id\":\"$6\",\"sender\":\"@p:example.org\",\"type\":"
    "\"m.poll.response\",\"content\":{\"m.relates_to\":{\"rel_type\":"
    "\"m.reference\",\"event_id\":\"$poll\"},\"m.selections\":[\"a:q:2:4\"]}},"
    "{\"event_id\":\"$7\",\"sender\":\"@p:example.org\",\"type\":"
    "\"m.room.message\",\"content\":{}}"
    "]}},\"!b:example.org\":{\"state\":{\"events\":[{\"type\":"
    "\"m.room.encryption\",\"state_key\":\"\",\"sender\":\"@p:example.org\","
    "\"event_id\":\"$e\",\"content\":{\"algorithm\":\"m.megolm.v1.aes-sha2\"}}"
    "]},\"timeline\":{\"events\":[]}}},"
    "\"invite\":{\"!c:example.org\":{\"invite_state\":{\"events\":["
    "{\"type\":\"m.room.member\",\"state_key\":\"@p:example.org\",\"sender\":"
    "\"@p:example.org\",\"content\":{\"membership\":\"join\"}},"
    "{\"type\":\"m.room.member\",\"state_key\":\"@bot:example.org\","
    "\"sender\":\"@dr:clinic.org\",\"content\":{\"membership\":\"invite\"}}"
    "]}}},\"leave\":{\"!d:example.org\":{}}}}";

static void
test_sync(void)
{
	struct mx_sync	 s;
	struct mx_room	*a, *b, *c;

	CHECK(parse(SYNC, &s) == 0);
	CHECK_STR(s.next_batch, "s42");
	CHECK_INT(s.nrooms, 4);
	if (s.nrooms != 4)
		return;
	a = &s.rooms[0];
	CHECK_STR(a->id, "!a:example.org");
	CHECK_INT(a->membership, MX_JOIN);
	CHECK_INT(a->limited, 1);
	CHECK_STR(a->prev_batch, "s30");
	CHECK_INT(a->encrypted, 0);
	CHECK_INT(a->nevents, 7);
	CHECK_INT(a->events[0].kind, MX_EV_TEXT);
	CHECK_STR(a->events[0].text, "hi");
	CHECK_STR(a->events[0].event_id, "$1");
	CHECK_STR(a->events[0].sender, "@p:example.org");
	CHECK_INT(a->events[0].ts, 1795000000123LL);
	CHECK_INT(a->events[1].ts, 0);
	CHECK_STR(a->events[1].text, "3");	/* no reply fallback */
	CHECK_INT(a->events[2].kind, MX_EV_OTHER);	/* an edit */
	CHECK_INT(a->events[3].kind, MX_EV_TEXT);
	CHECK_STR(a->events[3].text, "");		/* media */
	CHECK_INT(a->events[4].kind, MX_EV_POLL_RESPONSE);
	CHECK_STR(a->events[4].text, "a:q:1:yes");
	CHECK_STR(a->events[4].relates, "$poll");
	CHECK_INT(a->events[5].kind, MX_EV_POLL_RESPONSE);
	CHECK_STR(a->events[5].text, "a:q:2:4");
	CHECK_INT(a->events[6].kind, MX_EV_OTHER);	/* redacted */
	b = &s.rooms[1];
	CHECK_INT(b->encrypted, 1);
	CHECK_INT(b->limited, 0);
	CHECK(b->prev_batch == NULL);
	c = &s.rooms[2];
	CHECK_INT(c->membership, MX_INVITE);
	CHECK_STR(c->inviter, "@dr:clinic.org");
	CHECK_INT(s.rooms[3].membership, MX_LEAVE);
	CHECK(s.direct != NULL && strstr(s.direct, "!d:example.org") != NULL);
	mx_sync_clear(&s);
}

static void
test_bad(void)
{
	struct mx_sync	s;

	CHECK(parse("", &s) == -1);
	CHECK(parse("[]", &s) == -1);
	CHECK(parse("{\"rooms\":{}}", &s) == -1);
	CHECK(parse("{\"next_batch\":7}", &s) == -1);
	/* Junk inside a good answer is skipped, not fatal. */
	CHECK(parse("{\"next_batch\":\"x\",\"rooms\":{\"join\":[1,2],"
	    "\"invite\":{\"!i:x\":{\"invite_state\":{\"events\":[{\"type\":"
	    "\"m.room.member\"}]}}},\"leave\":7}}", &s) == 0);
	CHECK_INT(s.nrooms, 1);
	CHECK(s.nrooms == 1 && s.rooms[0].inviter == NULL);
	mx_sync_clear(&s);
	CHECK(parse("{\"next_batch\":\"x\",\"rooms\":{\"join\":{\"!a:x\":{"
	    "\"timeline\":{\"events\":[{\"type\":\"m.room.message\"},"
	    "{\"event_id\":\"$1\",\"sender\":\"@a:x\",\"type\":7},"
	    "{\"event_id\":\"$2\",\"sender\":\"@a:x\",\"type\":"
	    "\"m.room.message\",\"content\":{\"msgtype\":\"m.text\","
	    "\"body\":\"> only a quote\"}}]}}}}}", &s) == 0);
	CHECK_INT(s.nrooms, 1);
	CHECK(s.nrooms == 1 && s.rooms[0].nevents == 1);
	if (s.nrooms == 1 && s.rooms[0].nevents == 1)
		CHECK_STR(s.rooms[0].events[0].text, "> only a quote");
	mx_sync_clear(&s);
}

/* A joined room's member count comes from its summary, when it is sent
 * and is a count. */
static void
test_summary(void)
{
	struct mx_sync	s;

	CHECK(parse("{\"next_batch\":\"x\",\"rooms\":{\"join\":{"
	    "\"!a:x\":{\"summary\":{\"m.joined_member_count\":1},"
	    "\"timeline\":{\"events\":[{\"event_id\":\"$1\",\"sender\":"
	    "\"@p:x\",\"type\":\"m.room.member\",\"state_key\":\"@p:x\","
	    "\"content\":{\"membership\":\"leave\"}}]}},"
	    "\"!b:x\":{\"summary\":{\"m.heroes\":[\"@p:x\"]}},"
	    "\"!c:x\":{\"summary\":{\"m.joined_member_count\":\"2\"}},"
	    "\"!d:x\":{\"summary\":{\"m.joined_member_count\":-3}},"
	    "\"!e:x\":{\"summary\":{\"m.joined_member_count\":3}}}}}",
	    &s) == 0);
	CHECK_INT(s.nrooms, 5);
	if (s.nrooms == 5) {
		CHECK_INT(s.rooms[0].joined, 1);
		CHECK_INT(s.rooms[0].nevents, 1);
		CHECK_INT(s.rooms[0].events[0].kind, MX_EV_OTHER);
		CHECK_INT(s.rooms[1].joined, -1);	/* unchanged */
		CHECK_INT(s.rooms[2].joined, -1);	/* not a number */
		CHECK_INT(s.rooms[3].joined, -1);
		CHECK_INT(s.rooms[4].joined, 3);
	}
	mx_sync_clear(&s);
}

/* Every prefix of a good answer parses or fails cleanly (ASan watches). */
static void
test_prefixes(void)
{
	struct mx_sync	 s;
	char		*cause;
	size_t		 n = strlen(SYNC), i;
	int		 ok = 0;

	for (i = 0; i < n; i++) {
		cause = NULL;
		if (mx_sync_parse(SYNC, i, SELF, &s, &cause) == 0) {
			ok++;
			mx_sync_clear(&s);
		}
		free(cause);
	}
	CHECK_INT(ok, 0);
}

static void
test_page(void)
{
	struct mx_page	 p;
	char		*cause = NULL;
	const char	*j = "{\"start\":\"s1\",\"end\":\"s9\",\"chunk\":["
	    "{\"event_id\":\"$1\",\"sender\":\"@p:x\",\"type\":"
	    "\"m.room.message\",\"content\":{\"msgtype\":\"m.text\","
	    "\"body\":\"yes\"}}]}";

	CHECK(mx_page_parse(j, strlen(j), &p, &cause) == 0);
	CHECK_STR(p.end, "s9");
	CHECK_INT(p.nevents, 1);
	CHECK(p.nevents == 1 && strcmp(p.events[0].text, "yes") == 0);
	mx_page_clear(&p);
	CHECK(mx_page_parse("{\"chunk\":[]}", 12, &p, &cause) == 0);
	CHECK(p.end == NULL);
	CHECK_INT(p.nevents, 0);
	mx_page_clear(&p);
	CHECK(mx_page_parse("{}", 2, &p, &cause) == -1);
	free(cause);
}

static void
test_error(void)
{
	struct mx_error	 e;
	const char	*j = "{\"errcode\":\"M_LIMIT_EXCEEDED\",\"error\":"
	    "\"Too many\",\"retry_after_ms\":1500}";
	const char	*k = "{\"errcode\":\"M_UNKNOWN_TOKEN\",\"soft_logout\":"
	    "true}";

	CHECK(mx_error_parse(j, strlen(j), &e) == 0);
	CHECK_STR(e.errcode, "M_LIMIT_EXCEEDED");
	CHECK_INT(e.retry_after_ms, 1500);
	CHECK_INT(e.soft_logout, 0);
	CHECK(mx_error_parse(k, strlen(k), &e) == 0);
	CHECK_STR(e.errcode, "M_UNKNOWN_TOKEN");
	CHECK_INT(e.soft_logout, 1);
	CHECK_INT(e.retry_after_ms, -1);
	CHECK(mx_error_parse("<html>", 6, &e) == -1);
	CHECK(mx_error_parse("[1]", 3, &e) == -1);
	CHECK_STR(e.errcode, "");
}

int
main(void)
{
	TEST(test_sync);
	TEST(test_bad);
	TEST(test_summary);
	TEST(test_prefixes);
	TEST(test_page);
	TEST(test_error);
	return TEST_END();
}
