/*
 * parse.h — checked parsing of numbers and times from untrusted text.
 *
 * Pure functions on caller-owned memory; safe from any thread.
 */
#ifndef MLGW_COMMON_PARSE_H
#define MLGW_COMMON_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Parses a whole decimal integer in [min, max]; GW_EINVAL otherwise. */
int gw_parse_ll(long long *out, const char *s, long long min, long long max);

/* Parses an RFC 3339 date-time at the start of s (at most n bytes):
 * "YYYY-MM-DDTHH:MM:SS", optional fraction (any number of digits, kept to
 * milliseconds), then "Z" or "±HH:MM"; "t"/"z" and a space for "T" are
 * accepted as RFC 3339 allows. The date must exist (2026-02-30 does not);
 * a leap second (":60") is read as the next second. On success *ms is the
 * UNIX time in milliseconds and the return is the number of bytes read
 * (> 0); 0 when s does not start with such a time. */
size_t gw_parse_rfc3339(int64_t *ms, const char *s, size_t n);

#endif
