/*
 * test_mx_send.c: what the Matrix adapter sends for an outbox row.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "matrix/mx_int.h"
#include "test.h"

static cJSON *
render(char *(*fn)(const struct store_out *), const char *body,
    const char *meta)
{
	struct store_out	 row;
	char			*s;
	cJSON			*o;

	memset(&row, 0, sizeof row);
	row.id = 7;
	row.body = (char *)body;
	row.meta = (char *)meta;
	if ((s = fn(&row)) == NULL)
		return NULL;
	o = cJSON_Parse(s);
	cJSON_free(s);
	return o;
}

static const char *
str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static void
test_escape(void)
{
	char	*h = mx_html_escape("a<b>&\"c'\nd");

	CHECK_STR(h, "a&lt;b&gt;&amp;&quot;c&#39;<br>d");
	free(h);
}

static void
test_plain(void)
{
	cJSON	*o = render(mx_notice, "Hi <there> & you\nbye", NULL);

	CHECK_STR(str(o, "msgtype"), "m.notice");
	CHECK_STR(str(o, "body"), "Hi <there> & you\nbye");
	CHECK_STR(str(o, "format"), "org.matrix.custom.html");
	CHECK_STR(str(o, "formatted_body"),
	    "Hi &lt;there&gt; &amp; you<br>bye");
	cJSON_Delete(o);
	CHECK(render(mx_poll, "Hi", NULL) == NULL);
	CHECK(render(mx_poll, "Hi", "{\"type\":\"reminder\","
	    "\"commands\":[\"/done\"]}") == NULL);
}

static const char *YESNO = "{\"type\":\"question\",\"questionnaire\":"
    "\"setup\",\"question\":\"consent\",\"answer\":\"yesno\",\"index\":1,"
    "\"options\":[{\"id\":\"yes\",\"text\":\"Yes\"},{\"id\":\"no\","
    "\"text\":\"No <never>\"}]}";

static void
test_yesno(void)
{
	cJSON		*o = render(mx_notice, "Agree?", YESNO), *p, *a;

	CHECK_STR(str(o, "body"), "Agree?\n\n1. Yes\n2. No <never>\n\n"
	    "Reply with the number or the words.");
	CHECK_STR(str(o, "formatted_body"), "Agree?<ol><li>Yes</li><li>No "
	    "&lt;never&gt;</li></ol><p>Reply with the number or the words."
	    "</p>");
	cJSON_Delete(o);
	o = render(mx_poll, "Agree?", YESNO);
	CHECK(o != NULL);
	p = cJSON_GetObjectItem(o, "org.matrix.msc3381.poll.start");
	CHECK_STR(str(cJSON_GetObjectItem(p, "question"),
	    "org.matrix.msc1767.text"), "Agree?");
	CHECK_STR(str(p, "kind"), "org.matrix.msc3381.poll.disclosed");
	a = cJSON_GetObjectItem(p, "answers");
	CHECK_INT(cJSON_GetArraySize(a), 2);
	CHECK_STR(str(cJSON_GetArrayItem(a, 0), "id"), "a:setup:1:yes");
	CHECK_STR(str(cJSON_GetArrayItem(a, 1), "id"), "a:setup:1:no");
	CHECK_STR(str(cJSON_GetArrayItem(a, 1), "org.matrix.msc1767.text"),
	    "No <never>");
	CHECK_STR(str(o, "org.matrix.msc1767.text"), "Agree?");
	cJSON_Delete(o);
}

static void
test_choice_and_scale(void)
{
	cJSON	*o, *a;

	/* A choice goes back as its number. */
	o = render(mx_poll, "Any?", "{\"type\":\"question\",\"questionnaire\":"
	    "\"checkin\",\"answer\":\"choice\",\"index\":5,\"options\":["
	    "{\"id\":\"none\",\"text\":\"None\"},{\"id\":\"numb\",\"text\":"
	    "\"Numbness\"}]}");
	a = cJSON_GetObjectItem(cJSON_GetObjectItem(o,
	    "org.matrix.msc3381.poll.start"), "answers");
	CHECK_STR(str(cJSON_GetArrayItem(a, 1), "id"), "a:checkin:5:2");
	cJSON_Delete(o);
	/* A scale is a poll but not a list: the question names it. */
	o = render(mx_notice, "How sore?", "{\"type\":\"question\","
	    "\"questionnaire\":\"checkin\",\"answer\":\"integer\",\"index\":1,"
	    "\"min\":0,\"max\":10}");
	CHECK_STR(str(o, "body"), "How sore?");
	cJSON_Delete(o);
	o = render(mx_poll, "How sore?", "{\"type\":\"question\","
	    "\"questionnaire\":\"checkin\",\"answer\":\"integer\",\"index\":1,"
	    "\"min\":0,\"max\":10}");
	a = cJSON_GetObjectItem(cJSON_GetObjectItem(o,
	    "org.matrix.msc3381.poll.start"), "answers");
	CHECK_INT(cJSON_GetArraySize(a), 11);
	CHECK_STR(str(cJSON_GetArrayItem(a, 10), "id"), "a:checkin:1:10");
	cJSON_Delete(o);
	/* Too long for a poll: typed only. */
	CHECK(render(mx_poll, "Count?", "{\"type\":\"question\","
	    "\"questionnaire\":\"q\",\"answer\":\"integer\",\"index\":1,"
	    "\"min\":0,\"max\":100}") == NULL);
	CHECK(render(mx_poll, "Note?", "{\"type\":\"question\","
	    "\"questionnaire\":\"q\",\"answer\":\"text\",\"index\":2}") == NULL);
}

/* A poll end row: a reference to the poll and the answer as fallback; no
 * other row is one. */
static void
test_poll_end(void)
{
	cJSON	*o, *rel;

	o = render(mx_poll_end, "\xe2\x9c\x93 Yes",
	    "{\"type\":\"poll_end\",\"poll\":\"$p1:x\"}");
	CHECK(o != NULL);
	rel = cJSON_GetObjectItemCaseSensitive(o, "m.relates_to");
	CHECK_STR(str(rel, "rel_type"), "m.reference");
	CHECK_STR(str(rel, "event_id"), "$p1:x");
	CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o,
	    "org.matrix.msc3381.poll.end")));
	CHECK_STR(str(o, "org.matrix.msc1767.text"), "\xe2\x9c\x93 Yes");
	cJSON_Delete(o);
	CHECK(render(mx_poll_end, "Hi", NULL) == NULL);
	CHECK(render(mx_poll_end, "Hi", "not json") == NULL);
	CHECK(render(mx_poll_end, "Hi", "{\"type\":\"poll_end\"}") == NULL);
	CHECK(render(mx_poll_end, "Hi", "{\"type\":\"question\","
	    "\"poll\":\"$p\"}") == NULL);
}

int
main(void)
{
	TEST(test_escape);
	TEST(test_plain);
	TEST(test_yesno);
	TEST(test_choice_and_scale);
	TEST(test_poll_end);
	return TEST_END();
}
