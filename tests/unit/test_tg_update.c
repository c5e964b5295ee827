/*
 * test_tg_update.c: parsing Telegram updates and error answers.
 */
#include <stdlib.h>
#include <string.h>

#include "telegram/tg_update.h"
#include "test.h"

static int
parse(const char *json, struct tg_update **v, int *n)
{
	char	*cause = NULL;
	int	 rc = tg_parse_updates(json, strlen(json), v, n, &cause);

	free(cause);
	return rc;
}

static void
test_message(void)
{
	struct tg_update	*v;
	int			 n;

	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":812345678,"
	    "\"message\":{\"message_id\":17,\"from\":{\"id\":5012345678,"
	    "\"is_bot\":false,\"first_name\":\"A\",\"language_code\":\"de\"},"
	    "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1,"
	    "\"text\":\"/start abc_DEF-1\"}}]}", &v, &n) == 0);
	CHECK_INT(n, 1);
	CHECK_INT(v[0].update_id, 812345678);
	CHECK_INT(v[0].kind, TG_MESSAGE);
	CHECK_INT(v[0].chat_id, 5012345678LL);
	CHECK_INT(v[0].user_id, 5012345678LL);
	CHECK_INT(v[0].message_id, 17);
	CHECK_INT(v[0].is_private, 1);
	CHECK_STR(v[0].text, "/start abc_DEF-1");
	CHECK_STR(v[0].lang, "de");
	tg_updates_free(v, n);
}

static void
test_callback(void)
{
	struct tg_update	*v;
	int			 n;

	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":2,"
	    "\"callback_query\":{\"id\":\"4382bfdwdsb323b2d9\",\"from\":{\"id\":"
	    "77,\"is_bot\":false,\"first_name\":\"B\"},\"message\":{"
	    "\"message_id\":99,\"chat\":{\"id\":77,\"type\":\"private\"},"
	    "\"date\":1},\"data\":\"a:checkin:soreness:3\"}}]}", &v, &n) == 0);
	CHECK_INT(n, 1);
	CHECK_INT(v[0].kind, TG_CALLBACK);
	CHECK_STR(v[0].callback_id, "4382bfdwdsb323b2d9");
	CHECK_STR(v[0].text, "a:checkin:soreness:3");
	CHECK_INT(v[0].chat_id, 77);
	CHECK_INT(v[0].message_id, 99);
	tg_updates_free(v, n);
}

/* Supergroup ids are near -10^12..-10^13; the largest user ids near 2^40.
 * Both survive exactly; a number past 2^53 is refused, never rounded. */
static void
test_large_ids(void)
{
	struct tg_update	*v;
	int			 n;

	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":9007199254740991,"
	    "\"message\":{\"message_id\":1,\"chat\":{\"id\":-1001234567890123,"
	    "\"type\":\"supergroup\"},\"date\":1,\"text\":\"x\"}}]}", &v,
	    &n) == 0);
	CHECK_INT(v[0].update_id, 9007199254740991LL);
	CHECK_INT(v[0].chat_id, -1001234567890123LL);
	CHECK_INT(v[0].is_private, 0);
	tg_updates_free(v, n);
	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":1,\"message\":{"
	    "\"message_id\":1,\"chat\":{\"id\":18014398509481985,\"type\":"
	    "\"private\"},\"text\":\"x\"}}]}", &v, &n) == 0);
	CHECK_INT(v[0].kind, TG_OTHER);	/* chat id unreadable: not handled */
	tg_updates_free(v, n);
	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":1.5}]}", &v,
	    &n) == -1);
}

static void
test_other_kinds(void)
{
	struct tg_update	*v;
	int			 n;

	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":3,"
	    "\"edited_message\":{}},{\"update_id\":4,\"message\":{"
	    "\"message_id\":5,\"chat\":{\"id\":6,\"type\":\"private\"},"
	    "\"photo\":[]}}]}", &v, &n) == 0);
	CHECK_INT(n, 2);
	CHECK_INT(v[0].kind, TG_OTHER);
	CHECK_INT(v[0].update_id, 3);
	CHECK_INT(v[1].kind, TG_MESSAGE);
	CHECK(v[1].text == NULL);	/* a photo: no text */
	tg_updates_free(v, n);
	CHECK(parse("{\"ok\":true,\"result\":[]}", &v, &n) == 0);
	CHECK_INT(n, 0);
	tg_updates_free(v, n);
}

static void
test_malformed(void)
{
	struct tg_update	*v, u;
	char			*cause = NULL;
	int			 n;

	CHECK(parse("", &v, &n) == -1);
	CHECK(parse("<html>502 Bad Gateway</html>", &v, &n) == -1);
	CHECK(parse("{\"ok\":false,\"error_code\":409}", &v, &n) == -1);
	CHECK(parse("{\"ok\":true,\"result\":{}}", &v, &n) == -1);
	CHECK(parse("{\"ok\":true,\"result\":[{\"message\":{}}]}", &v,
	    &n) == -1);
	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":\"7\"}]}", &v,
	    &n) == -1);
	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":1,"
	    "\"callback_query\":{\"from\":{\"id\":1}}}]}", &v, &n) == 0);
	CHECK_INT(v[0].kind, TG_OTHER);	/* no query id: cannot answer it */
	tg_updates_free(v, n);
	CHECK(tg_parse_update("{\"update_id\":8}", 15, &u, &cause) == 0);
	CHECK_INT(u.update_id, 8);
	tg_update_clear(&u);
	CHECK(tg_parse_update("{\"update_id\":8", 14, &u, &cause) == -1);
	free(cause);
}

static void
test_errors(void)
{
	struct tg_error	e;
	const char	*j;

	j = "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many "
	    "Requests: retry after 5\",\"parameters\":{\"retry_after\":5}}";
	CHECK(tg_parse_error(j, strlen(j), &e) == 0);
	CHECK_INT(e.code, 429);
	CHECK_INT(e.retry_after, 5);
	CHECK(strstr(e.description, "Too Many") != NULL);
	j = "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: "
	    "group chat was upgraded to a supergroup chat\",\"parameters\":"
	    "{\"migrate_to_chat_id\":-1001234567890123}}";
	CHECK(tg_parse_error(j, strlen(j), &e) == 0);
	CHECK_INT(e.migrate_to, -1001234567890123LL);
	CHECK_INT(e.retry_after, -1);
	j = "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot "
	    "was blocked by the user\"}";
	CHECK(tg_parse_error(j, strlen(j), &e) == 0);
	CHECK_INT(e.code, 403);
	j = "<html>oops</html>";
	CHECK(tg_parse_error(j, strlen(j), &e) == -1);
	j = "{\"ok\":true,\"result\":true}";
	CHECK(tg_parse_error(j, strlen(j), &e) == -1);
}

/* A press carries the text of its message and, from the keyboard, the
 * label of the button pressed (for the edit that shows the answer). */
static void
test_callback_label(void)
{
	struct tg_update	*v;
	int			 n;

	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":3,"
	    "\"callback_query\":{\"id\":\"q1\",\"from\":{\"id\":7,"
	    "\"is_bot\":false,\"first_name\":\"A\"},\"chat_instance\":\"c\","
	    "\"data\":\"a:checkin:2:no\",\"message\":{\"message_id\":9,"
	    "\"date\":1,\"chat\":{\"id\":7,\"type\":\"private\"},"
	    "\"text\":\"Is the skin red?\",\"reply_markup\":{"
	    "\"inline_keyboard\":[[{\"text\":\"Yes\",\"callback_data\":"
	    "\"a:checkin:2:yes\"},{\"text\":\"No\",\"callback_data\":"
	    "\"a:checkin:2:no\"}]]}}}}]}", &v, &n) == 0);
	CHECK_INT(n, 1);
	CHECK_INT(v[0].kind, TG_CALLBACK);
	CHECK_INT(v[0].message_id, 9);
	CHECK_STR(v[0].msg_text, "Is the skin red?");
	CHECK_STR(v[0].label, "No");
	tg_updates_free(v, n);
	/* Without the message (too old to be sent along): no label. */
	CHECK(parse("{\"ok\":true,\"result\":[{\"update_id\":4,"
	    "\"callback_query\":{\"id\":\"q2\",\"from\":{\"id\":7,"
	    "\"is_bot\":false,\"first_name\":\"A\"},\"chat_instance\":\"c\","
	    "\"data\":\"c:/done\"}}]}", &v, &n) == 0);
	CHECK(v[0].msg_text == NULL && v[0].label == NULL);
	CHECK_INT(v[0].chat_id, 7);
	tg_updates_free(v, n);
}

/* Only {"ok":true} says the Bot API did it; a 200 with anything else
 * (a proxy's page, a cut answer) must be retried, never marked sent. */
static void
test_ok(void)
{
	const char	*good = "{\"ok\":true,\"result\":{\"message_id\":5}}";
	const char	*cut = "{\"ok\":true,\"result\":{\"mess";

	CHECK_INT(tg_parse_ok(good, strlen(good)), 1);
	CHECK_INT(tg_parse_ok(cut, strlen(cut)), 0);
	CHECK_INT(tg_parse_ok("<html>bad gateway</html>", 24), 0);
	CHECK_INT(tg_parse_ok("{\"ok\":false}", 12), 0);
	CHECK_INT(tg_parse_ok("{\"ok\":\"true\"}", 13), 0);
	CHECK_INT(tg_parse_ok("[]", 2), 0);
	CHECK_INT(tg_parse_ok(NULL, 0), 0);
}

int
main(void)
{
	TEST(test_message);
	TEST(test_callback);
	TEST(test_callback_label);
	TEST(test_large_ids);
	TEST(test_other_kinds);
	TEST(test_malformed);
	TEST(test_errors);
	TEST(test_ok);
	return TEST_END();
}
