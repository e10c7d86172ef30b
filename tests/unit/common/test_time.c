/*
 * test_time.c — unit tests for common/time.c: RFC 3339 formatting keeps four
 * year digits and refuses years RFC 3339 cannot write.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/time.h"

Test(gw_format_time_ms, writes_years_before_1000_with_four_digits)
{
    char out[32];
    gw_format_time_ms(out, sizeof(out), -30610310400000LL); /* 0999-12-31T00:00:00Z */
    cr_expect_str_eq(out, "0999-12-31T00:00:00.000Z");
    gw_format_time_ms(out, sizeof(out), -62135596800000LL); /* 0001-01-01T00:00:00Z */
    cr_expect_str_eq(out, "0001-01-01T00:00:00.000Z");
}

Test(gw_format_time_ms, leaves_out_empty_for_a_year_past_9999)
{
    char out[32];
    memset(out, 'X', sizeof(out));
    gw_format_time_ms(out, sizeof(out), 253402300800000LL); /* 10000-01-01 */
    cr_expect_str_eq(out, "");
}
