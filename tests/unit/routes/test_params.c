/*
 * test_params.c — unit tests for routes/params.c: opaque cursors round-trip,
 * and anything not issued under the expected tag is refused.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "routes/params.h"

Test(cursor, round_trips_a_payload_under_its_tag)
{
    char c[128], back[64];
    cr_assert_eq(rt_cursor_encode(c, sizeof(c), "l1:", "1234:-1"), 0);
    cr_expect_eq(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                 strlen(c), "base64url without padding: %s", c);
    cr_assert_eq(rt_cursor_decode(back, sizeof(back), "l1:", c), 7);
    cr_expect_str_eq(back, "1234:-1");
    cr_assert_eq(rt_cursor_encode(c, sizeof(c), "c1:", ""), 0);
    cr_assert_eq(rt_cursor_decode(back, sizeof(back), "c1:", c), 0, "an empty payload");
}

Test(cursor, refuses_another_tag_bad_base64url_a_nul_or_a_payload_too_long)
{
    char c[128], back[8];
    cr_assert_eq(rt_cursor_encode(c, sizeof(c), "j1:", "abc"), 0);
    cr_expect_eq(rt_cursor_decode(back, sizeof(back), "l1:", c), -1);
    cr_expect_eq(rt_cursor_decode(back, sizeof(back), "j1:", "not base64!"), -1);
    cr_expect_eq(rt_cursor_decode(back, sizeof(back), "j1:", ""), -1);
    cr_expect_eq(rt_cursor_decode(back, sizeof(back), "j1:", "ajE6AGE"), -1, "j1:\\0a");
    cr_assert_eq(rt_cursor_encode(c, sizeof(c), "j1:", "12345678"), 0);
    cr_expect_eq(rt_cursor_decode(back, sizeof(back), "j1:", c), -1, "8 bytes do not fit in 8");
}

Test(cursor, encode_fails_cleanly_when_the_output_is_too_small)
{
    char c[8] = "x";
    cr_expect_eq(rt_cursor_encode(c, sizeof(c), "l1:", "123456789"), -1);
    cr_expect_str_eq(c, "");
}

Test(etag, if_none_match_compares_weakly_and_accepts_lists_and_star)
{
    const char *tag = "\"0123456789abcdef0123456789abcdef\"";
    cr_expect_not(rt_etag_matches(NULL, tag), "no header");
    cr_expect(rt_etag_matches(tag, tag));
    cr_expect(rt_etag_matches("*", tag));
    cr_expect(rt_etag_matches("W/\"0123456789abcdef0123456789abcdef\"", tag), "weak comparison");
    cr_expect(rt_etag_matches("\"x\", \"0123456789abcdef0123456789abcdef\"", tag), "second");
    cr_expect(rt_etag_matches("\"a,b\",\t\"0123456789abcdef0123456789abcdef\"", tag),
              "a comma inside a quoted tag");
    cr_expect_not(rt_etag_matches("\"0123456789abcdef0123456789abcdee\"", tag), "other tag");
    cr_expect_not(rt_etag_matches("0123456789abcdef0123456789abcdef", tag), "unquoted");
    cr_expect_not(rt_etag_matches("\"0123456789abcdef0123456789abcdef", tag), "unterminated");
    cr_expect_not(rt_etag_matches("", tag), "empty");
    cr_expect_not(rt_etag_matches(" , ,", tag), "only separators");
}
