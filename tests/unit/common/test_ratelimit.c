/*
 * test_ratelimit.c — unit tests for common/ratelimit.c: a burst, then the
 * refill rate; independent keys; a bounded table that never evicts a key
 * being limited.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "common/err.h"
#include "common/ratelimit.h"

static const int64_t S = 1000000000LL;

Test(gw_ratelimit, allows_a_burst_then_refills_at_the_rate)
{
    struct gw_ratelimit *rl = NULL;
    cr_assert_eq(gw_ratelimit_new(&rl, 64), GW_OK);
    long wait = 0;
    for (int i = 0; i < 5; i++)
        cr_expect(gw_ratelimit_take(rl, "k", 2, 5, 0, &wait), "burst %d", i);
    cr_expect(!gw_ratelimit_take(rl, "k", 2, 5, 0, &wait), "the sixth at once");
    cr_expect_eq(wait, 1, "one token comes back within a second at 2/s");
    cr_expect(gw_ratelimit_take(rl, "k", 2, 5, S / 2, NULL), "half a second: one token");
    cr_expect(!gw_ratelimit_take(rl, "k", 2, 5, S / 2, NULL));
    cr_expect(gw_ratelimit_peek(rl, "k", 2, 5, 10 * S, NULL), "full again later");
    gw_ratelimit_free(rl);
}

Test(gw_ratelimit, keeps_keys_apart_and_allows_everything_at_rate_zero)
{
    struct gw_ratelimit *rl = NULL;
    cr_assert_eq(gw_ratelimit_new(&rl, 64), GW_OK);
    cr_expect(gw_ratelimit_take(rl, "a", 1, 1, 0, NULL));
    cr_expect(!gw_ratelimit_take(rl, "a", 1, 1, 0, NULL));
    cr_expect(gw_ratelimit_take(rl, "b", 1, 1, 0, NULL), "b has its own bucket");
    for (int i = 0; i < 100; i++)
        cr_expect(gw_ratelimit_take(rl, "c", 0, 1, 0, NULL));
    gw_ratelimit_free(rl);
}

Test(gw_ratelimit, a_flood_of_new_keys_cannot_free_a_limited_one)
{
    struct gw_ratelimit *rl = NULL;
    cr_assert_eq(gw_ratelimit_new(&rl, 16), GW_OK);
    cr_expect(gw_ratelimit_take(rl, "victim", 0.001, 1, 0, NULL));
    cr_expect(!gw_ratelimit_take(rl, "victim", 0.001, 1, 0, NULL));
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "flood-%d", i);
        (void)gw_ratelimit_take(rl, key, 0.001, 1, 0, NULL);
    }
    cr_expect(!gw_ratelimit_take(rl, "victim", 0.001, 1, S, NULL), "still limited");
    gw_ratelimit_free(rl);
}
