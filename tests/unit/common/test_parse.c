/*
 * test_parse.c — unit tests for common/parse.c: the one RFC 3339 parser that
 * the credentials chain, the job log and the jobs list share.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/parse.h"
#include "common/time.h"

static size_t parse(int64_t *ms, const char *s)
{
    return gw_parse_rfc3339(ms, s, strlen(s));
}

Test(gw_parse_rfc3339, reads_utc_with_and_without_a_fraction)
{
    int64_t ms = 0;
    cr_assert_eq(parse(&ms, "2026-11-28T22:00:00Z"), 20);
    cr_expect_eq(ms, 1795903200000LL);
    cr_assert_eq(parse(&ms, "2026-11-28T22:00:00.5Z"), 22);
    cr_expect_eq(ms, 1795903200500LL);
    cr_assert_eq(parse(&ms, "2026-11-28T22:00:00.123456789Z"), 30);
    cr_expect_eq(ms, 1795903200123LL, "kept to milliseconds");
    cr_assert_eq(parse(&ms, "1970-01-01T00:00:00z"), 20);
    cr_expect_eq(ms, 0);
}

Test(gw_parse_rfc3339, applies_an_offset_and_accepts_lower_case_t_or_a_space)
{
    int64_t a = 0, b = 0, c = 0;
    cr_assert_eq(parse(&a, "2026-11-28T23:30:00+01:30"), 25);
    cr_assert_eq(parse(&b, "2026-11-28t22:00:00Z"), 20);
    cr_assert_eq(parse(&c, "2026-11-28 17:00:00-05:00"), 25);
    cr_expect_eq(a, 1795903200000LL);
    cr_expect_eq(b, a);
    cr_expect_eq(c, a);
}

Test(gw_parse_rfc3339, returns_how_far_it_read_so_callers_can_demand_the_whole_string)
{
    int64_t ms = 0;
    const char *line = "2026-11-28T22:00:00.000Z training started";
    cr_expect_eq(parse(&ms, line), 24);
    cr_expect_eq(line[24], ' ');
    cr_expect_eq(gw_parse_rfc3339(&ms, line, 10), 0, "cut inside the time");
}

Test(gw_parse_rfc3339, refuses_dates_that_do_not_exist_and_malformed_times)
{
    static const char *const bad[] = {
        "2025-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-11-28T24:00:00Z",
        "2026-11-28T23:60:00Z",
        "2026-11-28T23:59:61Z",
        "2026-11-28T23:59:59",
        "2026-11-28T23:59:59.Z",
        "2026-11-28T23:59:59+1:00",
        "2026-11-28T23:59:59+24:00",
        "26-11-28T23:59:59Z",
        "2026-11-28X23:59:59Z",
        "",
        "not a time",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        cr_expect_eq(parse(&ms, bad[i]), 0, "%s", bad[i]);
    }
}

Test(gw_parse_rfc3339, accepts_a_leap_day_and_a_leap_second)
{
    int64_t a = 0, b = 0;
    cr_expect_eq(parse(&a, "2024-02-29T12:00:00Z"), 20);
    cr_expect_eq(parse(&a, "2016-12-31T23:59:60Z"), 20);
    cr_expect_eq(parse(&b, "2017-01-01T00:00:00Z"), 20);
    cr_expect_eq(a, b, "23:59:60 is read as the next second");
}

Test(gw_parse_rfc3339, round_trips_with_the_formatter_across_the_four_digit_years)
{
    static const char *const times[] = {
        "0001-01-01T00:00:00.000Z", "0999-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z",
        "2000-02-29T12:34:56.789Z", "9999-12-31T23:59:59.999Z",
    };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int64_t ms = 0;
        char back[32];
        cr_assert_eq(parse(&ms, times[i]), 24, "%s", times[i]);
        gw_format_time_ms(back, sizeof(back), ms);
        cr_expect_str_eq(back, times[i]);
    }
}
