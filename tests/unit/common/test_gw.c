/*
 * test_gw.c — unit tests for server/gw.c: the bounded buffer, JSON string
 * escaping, checked integer parsing, time formatting, hex and error detail.
 * Pure functions only: no network, no database, no environment.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"
#include "common/json.h"
#include "common/parse.h"
#include "common/time.h"
#include "common/utf8.h"

/* ---- gw_buf ------------------------------------------------------------ */

Test(server_gw, buf_accepts_content_exactly_at_its_maximum)
{
    struct gw_buf b;
    gw_buf_init(&b, 8);
    cr_assert_eq(gw_buf_add(&b, "1234", 4), GW_OK);
    cr_assert_eq(gw_buf_add(&b, "5678", 4), GW_OK);
    cr_assert_eq(b.len, 8);
    cr_assert_str_eq(b.data, "12345678");
    gw_buf_dispose(&b);
}

Test(server_gw, buf_refuses_one_byte_over_its_maximum_and_keeps_its_content)
{
    struct gw_buf b;
    gw_buf_init(&b, 8);
    cr_assert_eq(gw_buf_adds(&b, "12345678"), GW_OK);
    cr_assert_eq(gw_buf_add(&b, "9", 1), GW_ETOOBIG);
    cr_assert_eq(b.len, 8);
    cr_assert_str_eq(b.data, "12345678");
    cr_assert_eq(gw_buf_printf(&b, "%d", 9), GW_ETOOBIG);
    cr_assert_str_eq(b.data, "12345678");
    gw_buf_dispose(&b);
}

Test(server_gw, buf_refuses_a_single_add_larger_than_its_maximum_without_allocating)
{
    struct gw_buf b;
    gw_buf_init(&b, 8);
    cr_assert_eq(gw_buf_add(&b, "123456789", 9), GW_ETOOBIG);
    cr_assert_eq(b.len, 0);
    cr_assert_null(b.data);
    gw_buf_dispose(&b);
}

Test(server_gw, buf_refuses_a_length_that_would_overflow_the_size_arithmetic)
{
    struct gw_buf b;
    gw_buf_init(&b, 16);
    cr_assert_eq(gw_buf_adds(&b, "abc"), GW_OK);
    /* len + SIZE_MAX wraps around; the check must not be fooled by it. */
    cr_assert_eq(gw_buf_add(&b, "x", SIZE_MAX), GW_ETOOBIG);
    cr_assert_eq(gw_buf_add(&b, "x", SIZE_MAX - 1), GW_ETOOBIG);
    cr_assert_str_eq(b.data, "abc");
    gw_buf_dispose(&b);
}

Test(server_gw, buf_content_is_always_nul_terminated)
{
    struct gw_buf b;
    gw_buf_init(&b, 1024);
    cr_assert_eq(gw_buf_add(&b, "abcdef", 3), GW_OK);
    cr_assert_eq(b.len, 3);
    cr_assert_eq(b.data[3], '\0');
    cr_assert_str_eq(b.data, "abc");
    cr_assert_eq(gw_buf_add(&b, "\0z", 2), GW_OK); /* embedded NUL is kept */
    cr_assert_eq(b.len, 5);
    cr_assert_eq(memcmp(b.data, "abc\0z", 5), 0);
    cr_assert_eq(b.data[5], '\0');
    gw_buf_dispose(&b);
}

Test(server_gw, buf_adding_nothing_to_an_empty_buffer_yields_an_empty_string)
{
    struct gw_buf b;
    gw_buf_init(&b, 16);
    cr_assert_eq(gw_buf_add(&b, "", 0), GW_OK);
    cr_assert_not_null(b.data);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(b.len, 0);
    gw_buf_dispose(&b);
}

Test(server_gw, buf_with_zero_maximum_holds_only_the_empty_string)
{
    struct gw_buf b;
    gw_buf_init(&b, 0);
    cr_assert_eq(gw_buf_add(&b, "a", 1), GW_ETOOBIG);
    cr_assert_eq(gw_buf_add(&b, "", 0), GW_OK);
    cr_assert_str_eq(b.data, "");
    gw_buf_dispose(&b);
}

Test(server_gw, buf_grows_across_many_small_appends)
{
    struct gw_buf b;
    gw_buf_init(&b, 10000);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(gw_buf_add(&b, "0123456789", 10), GW_OK);
    cr_assert_eq(b.len, 10000);
    cr_assert_eq(strlen(b.data), 10000);
    cr_assert_eq(memcmp(b.data + 9990, "0123456789", 10), 0);
    cr_assert_eq(gw_buf_add(&b, "x", 1), GW_ETOOBIG);
    gw_buf_dispose(&b);
}

Test(server_gw, buf_printf_formats_output_longer_than_its_512_byte_scratch)
{
    char big[1500];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)('a' + (char)(i % 26));
    big[sizeof(big) - 1] = '\0';

    struct gw_buf b;
    gw_buf_init(&b, 4096);
    cr_assert_eq(gw_buf_printf(&b, "[%s]", "start"), GW_OK);
    cr_assert_eq(gw_buf_printf(&b, "<%s|%d>", big, 42), GW_OK);
    cr_assert_eq(b.len, strlen("[start]") + 1 + strlen(big) + 4);
    cr_assert_eq(strncmp(b.data, "[start]<", 8), 0);
    cr_assert_eq(memcmp(b.data + 8, big, strlen(big)), 0);
    cr_assert_str_eq(b.data + 8 + strlen(big), "|42>");
    gw_buf_dispose(&b);
}

Test(server_gw, buf_printf_of_exactly_512_bytes_takes_the_large_path_and_is_complete)
{
    char s[513];
    memset(s, 'q', 512);
    s[512] = '\0';
    struct gw_buf b;
    gw_buf_init(&b, 1024);
    cr_assert_eq(gw_buf_printf(&b, "%s", s), GW_OK);
    cr_assert_eq(b.len, 512);
    cr_assert_str_eq(b.data, s);
    gw_buf_dispose(&b);
}

Test(server_gw, buf_printf_over_the_maximum_is_too_big_and_leaves_content)
{
    char big[700];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct gw_buf b;
    gw_buf_init(&b, 600);
    cr_assert_eq(gw_buf_adds(&b, "keep"), GW_OK);
    cr_assert_eq(gw_buf_printf(&b, "%s", big), GW_ETOOBIG);
    cr_assert_str_eq(b.data, "keep");
    cr_assert_eq(b.len, 4);
    gw_buf_dispose(&b);
}

Test(server_gw, buf_steal_hands_over_the_content_and_empties_the_buffer)
{
    struct gw_buf b;
    gw_buf_init(&b, 64);
    cr_assert_eq(gw_buf_adds(&b, "hello"), GW_OK);
    char *s = gw_buf_steal(&b);
    cr_assert_str_eq(s, "hello");
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    /* The buffer is usable again and its max is unchanged. */
    cr_assert_eq(gw_buf_adds(&b, "again"), GW_OK);
    cr_assert_str_eq(b.data, "again");
    cr_assert_eq(b.max, 64);
    free(s);
    gw_buf_dispose(&b);
}

Test(server_gw, buf_steal_of_an_untouched_buffer_returns_an_empty_string)
{
    struct gw_buf b;
    gw_buf_init(&b, 64);
    char *s = gw_buf_steal(&b);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(server_gw, buf_reset_empties_the_content_but_keeps_the_memory)
{
    struct gw_buf b;
    gw_buf_init(&b, 64);
    cr_assert_eq(gw_buf_adds(&b, "something"), GW_OK);
    char *before = b.data;
    gw_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(b.data, before);
    cr_assert_eq(gw_buf_adds(&b, "new"), GW_OK);
    cr_assert_str_eq(b.data, "new");
    gw_buf_dispose(&b);
}

Test(server_gw, buf_reset_of_an_untouched_buffer_is_harmless)
{
    struct gw_buf b;
    gw_buf_init(&b, 64);
    gw_buf_reset(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
}

Test(server_gw, buf_dispose_frees_and_tolerates_null)
{
    struct gw_buf b;
    gw_buf_init(&b, 64);
    cr_assert_eq(gw_buf_adds(&b, "x"), GW_OK);
    gw_buf_dispose(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    gw_buf_dispose(&b); /* twice is fine */
    gw_buf_dispose(NULL);
}

/* ---- gw_buf_add_json_escaped ------------------------------------------- */

static char *escaped(const char *s)
{
    struct gw_buf b;
    gw_buf_init(&b, 4096);
    cr_assert_eq(gw_buf_add_json_escaped(&b, s), GW_OK);
    return gw_buf_steal(&b);
}

Test(server_gw, json_escape_backslashes_quotes_and_backslash)
{
    char *s = escaped("say \"hi\" \\ bye");
    cr_assert_str_eq(s, "say \\\"hi\\\" \\\\ bye");
    free(s);
}

Test(server_gw, json_escape_writes_newline_return_and_tab_as_short_escapes)
{
    char *s = escaped("a\nb\rc\td");
    cr_assert_str_eq(s, "a\\nb\\rc\\td");
    free(s);
}

Test(server_gw, json_escape_writes_other_control_characters_as_u00xx)
{
    char *s = escaped("\x01x\x08y\x0c\x1f\x1b");
    cr_assert_str_eq(s, "\\u0001x\\u0008y\\u000c\\u001f\\u001b");
    free(s);
}

Test(server_gw, json_escape_passes_utf8_and_del_through_unchanged)
{
    const char *in = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f";
    char *s = escaped(in);
    cr_assert_str_eq(s, in);
    free(s);
}

Test(server_gw, json_escape_handles_escapes_at_both_ends_and_in_a_row)
{
    char *s = escaped("\"\"\n\\");
    cr_assert_str_eq(s, "\\\"\\\"\\n\\\\");
    free(s);
}

Test(server_gw, json_escape_appends_to_existing_content_without_quotes)
{
    struct gw_buf b;
    gw_buf_init(&b, 64);
    cr_assert_eq(gw_buf_adds(&b, "{\"k\":\""), GW_OK);
    cr_assert_eq(gw_buf_add_json_escaped(&b, "v\""), GW_OK);
    cr_assert_eq(gw_buf_add_json_escaped(&b, ""), GW_OK);
    cr_assert_eq(gw_buf_adds(&b, "\"}"), GW_OK);
    cr_assert_str_eq(b.data, "{\"k\":\"v\\\"\"}");
    gw_buf_dispose(&b);
}

Test(server_gw, json_escape_over_the_maximum_is_too_big)
{
    struct gw_buf b;
    gw_buf_init(&b, 5);
    /* Five input bytes, but the quote escapes to two. */
    cr_assert_eq(gw_buf_add_json_escaped(&b, "abcd\""), GW_ETOOBIG);
    cr_assert_leq(b.len, 5);
    gw_buf_reset(&b);
    cr_assert_eq(gw_buf_add_json_escaped(&b, "\x01"), GW_ETOOBIG); /* \u0001 is 6 bytes */
    gw_buf_dispose(&b);
}

/* ---- gw_parse_ll -------------------------------------------------------- */

Test(server_gw, parse_ll_accepts_plain_decimal_inside_the_bounds)
{
    long long v = -1;
    cr_assert_eq(gw_parse_ll(&v, "42", 0, 100), GW_OK);
    cr_assert_eq(v, 42);
    cr_assert_eq(gw_parse_ll(&v, "0", 0, 100), GW_OK);
    cr_assert_eq(v, 0);
    cr_assert_eq(gw_parse_ll(&v, "-17", -100, 100), GW_OK);
    cr_assert_eq(v, -17);
}

Test(server_gw, parse_ll_bounds_are_inclusive)
{
    long long v = 0;
    cr_assert_eq(gw_parse_ll(&v, "1", 1, 1000), GW_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(gw_parse_ll(&v, "1000", 1, 1000), GW_OK);
    cr_assert_eq(v, 1000);
    cr_assert_eq(gw_parse_ll(&v, "0", 1, 1000), GW_EINVAL);
    cr_assert_eq(gw_parse_ll(&v, "1001", 1, 1000), GW_EINVAL);
    cr_assert_eq(gw_parse_ll(&v, "-1", 0, 10), GW_EINVAL);
}

Test(server_gw, parse_ll_rejects_signs_spaces_and_trailing_garbage)
{
    static const char *const bad[] = {
        "+5",  " 5", "5 ", "\t5", "5\n", "5x",  "x5", "0x10",  "1e3",
        "1.0", "",   "-",  "--5", "-+5", "- 5", "5-", "1,000", "\xd9\xa1",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        long long v = 12345;
        cr_assert_eq(gw_parse_ll(&v, bad[i], LLONG_MIN, LLONG_MAX), GW_EINVAL,
                     "\"%s\" should be rejected", bad[i]);
        cr_assert_eq(v, 12345, "\"%s\" wrote the output on failure", bad[i]);
    }
}

Test(server_gw, parse_ll_rejects_null)
{
    long long v = 7;
    cr_assert_eq(gw_parse_ll(&v, NULL, 0, 10), GW_EINVAL);
    cr_assert_eq(v, 7);
}

Test(server_gw, parse_ll_accepts_the_extremes_of_long_long)
{
    long long v = 0;
    cr_assert_eq(gw_parse_ll(&v, "9223372036854775807", LLONG_MIN, LLONG_MAX), GW_OK);
    cr_assert_eq(v, LLONG_MAX);
    cr_assert_eq(gw_parse_ll(&v, "-9223372036854775808", LLONG_MIN, LLONG_MAX), GW_OK);
    cr_assert_eq(v, LLONG_MIN);
}

Test(server_gw, parse_ll_rejects_overflow_instead_of_clamping)
{
    long long v = 3;
    cr_assert_eq(gw_parse_ll(&v, "9223372036854775808", LLONG_MIN, LLONG_MAX), GW_EINVAL);
    cr_assert_eq(gw_parse_ll(&v, "-9223372036854775809", LLONG_MIN, LLONG_MAX), GW_EINVAL);
    cr_assert_eq(gw_parse_ll(&v, "99999999999999999999999", LLONG_MIN, LLONG_MAX), GW_EINVAL);
    cr_assert_eq(v, 3);
}

Test(server_gw, parse_ll_reads_leading_zeros_as_decimal_not_octal)
{
    long long v = 0;
    cr_assert_eq(gw_parse_ll(&v, "010", 0, 100), GW_OK);
    cr_assert_eq(v, 10);
}

/* ---- gw_format_time_ms -------------------------------------------------- */

Test(server_gw, format_time_ms_writes_the_epoch_as_rfc3339_with_milliseconds)
{
    char out[32];
    gw_format_time_ms(out, sizeof(out), 0);
    cr_assert_str_eq(out, "1970-01-01T00:00:00.000Z");
}

Test(server_gw, format_time_ms_writes_known_instants_exactly)
{
    char out[32];
    gw_format_time_ms(out, sizeof(out), 1700000000123LL);
    cr_assert_str_eq(out, "2023-11-14T22:13:20.123Z");
    gw_format_time_ms(out, sizeof(out), 951782400999LL); /* a leap day */
    cr_assert_str_eq(out, "2000-02-29T00:00:00.999Z");
    gw_format_time_ms(out, sizeof(out), 4102444799001LL);
    cr_assert_str_eq(out, "2099-12-31T23:59:59.001Z");
    gw_format_time_ms(out, sizeof(out), 1050LL);
    cr_assert_str_eq(out, "1970-01-01T00:00:01.050Z");
}

Test(server_gw, format_time_ms_fits_in_25_bytes)
{
    char out[25];
    gw_format_time_ms(out, sizeof(out), 1700000000123LL);
    cr_assert_eq(strlen(out), 24);
    cr_assert_str_eq(out, "2023-11-14T22:13:20.123Z");
}

Test(server_gw, format_time_ms_truncates_safely_into_a_short_buffer)
{
    char out[11];
    memset(out, 'X', sizeof(out));
    gw_format_time_ms(out, sizeof(out), 0);
    cr_assert_str_eq(out, "1970-01-01");
}

Test(server_gw, now_ms_is_after_2020_and_does_not_go_backwards_within_a_test)
{
    int64_t a = gw_now_ms();
    int64_t b = gw_now_ms();
    cr_assert_gt(a, 1577836800000LL);
    cr_assert_geq(b, a);
    int64_t m1 = gw_monotonic_ns();
    int64_t m2 = gw_monotonic_ns();
    cr_assert_geq(m2, m1);
}

/* ---- gw_hex, gw_random_bytes --------------------------------------------- */

Test(server_gw, hex_writes_lower_case_pairs_and_a_terminator)
{
    static const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof(in) + 1];
    memset(out, 'X', sizeof(out));
    gw_hex(out, in, sizeof(in));
    cr_assert_str_eq(out, "00017f80abff");
}

Test(server_gw, hex_of_nothing_is_the_empty_string)
{
    char out[1] = {'X'};
    gw_hex(out, (const unsigned char *)"", 0);
    cr_assert_str_eq(out, "");
}

Test(server_gw, random_bytes_fills_the_buffer_with_fresh_values)
{
    unsigned char a[32] = {0}, b[32] = {0};
    cr_assert_eq(gw_random_bytes(a, sizeof(a)), GW_OK);
    cr_assert_eq(gw_random_bytes(b, sizeof(b)), GW_OK);
    /* Equal 256-bit outputs would mean the CSPRNG is broken (p = 2^-256). */
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
    cr_assert_eq(gw_random_bytes(a, 0), GW_OK);
}

/* ---- gw_err_set, gw_code_name ------------------------------------------- */

Test(server_gw, err_set_with_null_err_only_returns_the_code)
{
    cr_assert_eq(gw_err_set(NULL, GW_EINVAL, "ignored %d", 1), GW_EINVAL);
    cr_assert_eq(gw_err_set(NULL, GW_OK, "fine"), GW_OK);
}

Test(server_gw, err_set_records_the_code_and_formatted_message)
{
    struct gw_err err = {0};
    cr_assert_eq(gw_err_set(&err, GW_ENOTFOUND, "job %s (%d)", "abc", 7), GW_ENOTFOUND);
    cr_assert_eq(err.code, GW_ENOTFOUND);
    cr_assert_str_eq(err.msg, "job abc (7)");
}

Test(server_gw, err_set_truncates_a_long_message_to_the_buffer)
{
    char longmsg[600];
    memset(longmsg, 'm', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    struct gw_err err;
    memset(&err, 'X', sizeof(err));
    cr_assert_eq(gw_err_set(&err, GW_EIO, "%s", longmsg), GW_EIO);
    cr_assert_eq(err.code, GW_EIO);
    cr_assert_eq(strlen(err.msg), sizeof(err.msg) - 1);
    cr_assert_eq(strncmp(err.msg, longmsg, sizeof(err.msg) - 1), 0);
}

Test(server_gw, code_name_describes_every_code_and_unknown_ones)
{
    cr_assert_str_eq(gw_code_name(GW_OK), "ok");
    cr_assert_str_eq(gw_code_name(GW_ENOMEM), "out of memory");
    cr_assert_str_eq(gw_code_name(GW_EINVAL), "invalid");
    cr_assert_str_eq(gw_code_name(GW_ETOOBIG), "too big");
    cr_assert_str_eq(gw_code_name(GW_EIO), "I/O error");
    cr_assert_str_eq(gw_code_name(GW_EPARSE), "malformed");
    cr_assert_str_eq(gw_code_name(-1000), "unknown error");
    cr_assert_str_eq(gw_code_name(5), "unknown error");
}

Test(server_gw, jitter_stays_below_the_doubling_ceiling_and_the_cap)
{
    long long max_seen[6] = {0};
    for (int round = 0; round < 400; round++)
        for (int attempt = 1; attempt <= 5; attempt++) {
            long long ms = gw_jitter_ms(100, 1000, attempt);
            long long ceiling = 100LL << (attempt - 1);
            if (ceiling > 1000)
                ceiling = 1000;
            cr_assert(ms >= 0 && ms < ceiling, "attempt %d: %lld not in [0, %lld)", attempt, ms,
                      ceiling);
            if (ms > max_seen[attempt])
                max_seen[attempt] = ms;
        }
    /* Full jitter spreads over the whole range: the later attempts reach past
     * the first attempt's ceiling. */
    cr_assert_gt(max_seen[4], 100);
    cr_assert_gt(max_seen[5], 500);
}

Test(server_gw, utf8_sequences_and_their_ill_formed_parts)
{
    size_t bad = 0;
    const unsigned char ascii[] = "a";
    cr_assert_eq(gw_utf8_seq(ascii, 1, &bad), 1);
    const unsigned char e_acute[] = {0xc3, 0xa9};
    cr_assert_eq(gw_utf8_seq(e_acute, 2, NULL), 2);
    const unsigned char euro[] = {0xe2, 0x82, 0xac};
    cr_assert_eq(gw_utf8_seq(euro, 3, &bad), 3);
    const unsigned char emoji[] = {0xf0, 0x9f, 0x99, 0x82};
    cr_assert_eq(gw_utf8_seq(emoji, 4, &bad), 4);
    /* Cut short: the two bytes present form one ill-formed part. */
    cr_assert_eq(gw_utf8_seq(euro, 2, &bad), 0);
    cr_assert_eq(bad, 2);
    /* Overlong, surrogate, past U+10FFFF, a lone continuation byte. */
    const unsigned char overlong[] = {0xc0, 0xaf};
    cr_assert_eq(gw_utf8_seq(overlong, 2, &bad), 0);
    cr_assert_eq(bad, 1);
    const unsigned char surrogate[] = {0xed, 0xa0, 0x80};
    cr_assert_eq(gw_utf8_seq(surrogate, 3, &bad), 0);
    cr_assert_eq(bad, 1);
    const unsigned char too_big[] = {0xf4, 0x90, 0x80, 0x80};
    cr_assert_eq(gw_utf8_seq(too_big, 4, &bad), 0);
    const unsigned char cont[] = {0x80};
    cr_assert_eq(gw_utf8_seq(cont, 1, NULL), 0);
}

Test(server_gw, utf8_chars_counts_code_points_as_json_schema_does)
{
    cr_assert_eq(gw_utf8_chars("", 0), 0);
    cr_assert_eq(gw_utf8_chars("abc", 3), 3);
    /* é (2 bytes), € (3), 😍 (4): three characters in nine bytes. */
    const char mixed[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x8d";
    cr_assert_eq(gw_utf8_chars(mixed, sizeof(mixed) - 1), 3);
    cr_assert_eq(gw_utf8_chars(mixed, 2), 1, "only the bytes given are counted");
}

Test(server_gw, json_whole_takes_integers_and_whole_reals_that_fit)
{
    long long n = 0;
    json_t *v = json_integer(-7);
    cr_assert(gw_json_whole(v, &n) && n == -7);
    json_decref(v);
    v = json_real(3.0);
    cr_assert(gw_json_whole(v, &n) && n == 3);
    json_decref(v);
    v = json_real(-4611686018427387904.0); /* -2^62 */
    cr_assert(gw_json_whole(v, &n) && n == -4611686018427387904LL);
    json_decref(v);
    static const double no[] = {2.5, -0.001, 9223372036854775808.0, -1e19, 1e300};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        v = json_real(no[i]);
        cr_expect(!gw_json_whole(v, &n), "%g", no[i]);
        json_decref(v);
    }
    v = json_string("3");
    cr_assert(!gw_json_whole(v, &n));
    json_decref(v);
    cr_assert(!gw_json_whole(NULL, &n));
}
