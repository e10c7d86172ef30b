/*
 * utf8.h — UTF-8 well-formedness, by Unicode's "maximal subpart" rule
 * (Unicode 15, §3.9, U+FFFD substitution), for text that came from outside:
 * job output, mail headers, log lines.
 *
 * Pure functions on caller-owned memory; safe from any thread.
 */
#ifndef MLGW_COMMON_UTF8_H
#define MLGW_COMMON_UTF8_H

#include <stddef.h>

struct gw_buf;

/* Length of the well-formed UTF-8 sequence at p (1..4; left > 0 bytes
 * there); 0 when there is none (overlong forms, surrogates and code points
 * past U+10FFFF are not), with *bad (when not NULL) the length of the
 * maximal ill-formed subpart to replace with one U+FFFD (≥ 1). */
size_t gw_utf8_seq(const unsigned char *p, size_t left, size_t *bad);

/* Appends the n bytes at s to b with each maximal ill-formed subpart
 * replaced by U+FFFD; GW_ETOOBIG or GW_ENOMEM from the buffer. */
int gw_utf8_sanitize(struct gw_buf *b, const char *s, size_t n);

/* How many characters (code points) the n bytes at s hold, counting each byte
 * that does not continue a sequence: exact for well-formed UTF-8 (what a JSON
 * parser hands out), and what JSON Schema's maxLength counts. */
size_t gw_utf8_chars(const char *s, size_t n);

#endif
