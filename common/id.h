/*
 * id.h — randomness from OpenSSL's CSPRNG and UUIDv7 ids.
 *
 * Safe from any thread (OpenSSL's RAND is thread-safe).
 */
#ifndef MLGW_COMMON_ID_H
#define MLGW_COMMON_ID_H

#include <stddef.h>

/* Writes n random bytes from OpenSSL's CSPRNG; GW_EIO on failure. */
int gw_random_bytes(unsigned char *out, size_t n);

/* A UUIDv7 (RFC 9562): 48-bit UNIX milliseconds, then 74 random bits, so ids
 * sort by creation time. out gets the 36-character lower-case form. */
int gw_uuid7(char out[37]);

/* True when s is a canonical lower-case hyphenated UUID. */
int gw_uuid_valid(const char *s);

#endif
