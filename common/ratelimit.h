/*
 * ratelimit.h — token buckets keyed by a short string (an API key id, a
 * client address), in a fixed-size table.
 *
 * Each key's bucket holds up to burst tokens and refills at rate tokens per
 * second; a request takes one. The table never grows: when it is full, the
 * bucket that has been full (idle) the longest is reused, so a flood of
 * distinct keys costs a bounded amount of memory and cannot evict a key that
 * is being limited right now (a limited bucket is not full).
 *
 * Thread-safe: one mutex guards the table; a take is a few hundred
 * nanoseconds. The table is owned by its creator (gw_ratelimit_new/free).
 */
#ifndef MLGW_COMMON_RATELIMIT_H
#define MLGW_COMMON_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct gw_ratelimit;

enum { GW_RATELIMIT_KEY_MAX = 63 };

/* A table of slots buckets (rounded up to a power of two). GW_ENOMEM. */
int gw_ratelimit_new(struct gw_ratelimit **out, size_t slots);
/* NULL is a no-op. */
void gw_ratelimit_free(struct gw_ratelimit *rl);

/* Takes one token from key's bucket (rate per second, burst at most; keys
 * longer than GW_RATELIMIT_KEY_MAX are cut). Returns 1 when allowed; 0 when
 * the bucket is empty, with *retry_after_s (when not NULL) the whole seconds
 * until a token is back (≥ 1). rate ≤ 0 allows everything. now_ns is a
 * monotonic time (gw_monotonic_ns). */
int gw_ratelimit_take(struct gw_ratelimit *rl, const char *key, double rate, double burst,
                      int64_t now_ns, long *retry_after_s);

/* Like gw_ratelimit_take but only looks: 1 when key's bucket has a token. */
int gw_ratelimit_peek(struct gw_ratelimit *rl, const char *key, double rate, double burst,
                      int64_t now_ns, long *retry_after_s);

#endif
