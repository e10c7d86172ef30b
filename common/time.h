/*
 * time.h — clocks, RFC 3339 formatting and retry backoff.
 *
 * Safe from any thread.
 */
#ifndef MLGW_COMMON_TIME_H
#define MLGW_COMMON_TIME_H

#include <stddef.h>
#include <stdint.h>

int64_t gw_now_ms(void);       /* CLOCK_REALTIME in milliseconds */
int64_t gw_monotonic_ns(void); /* CLOCK_MONOTONIC in nanoseconds */

/* Formats a millisecond UNIX time as RFC 3339 UTC with milliseconds
 * ("0999-01-02T03:04:05.006Z": always four year digits) into out (>= 25
 * bytes; a shorter out gets what fits). Years outside 0000..9999 cannot be
 * written in RFC 3339: out is then empty. */
void gw_format_time_ms(char *out, size_t outlen, int64_t ms);

/* Exponential backoff with full jitter: a uniform delay in
 * [0, min(cap_ms, base_ms * 2^(attempt-1))) milliseconds (attempt ≥ 1). */
long long gw_jitter_ms(long long base_ms, long long cap_ms, int attempt);

#endif
