/*
 * encode.h — hex, base64url, SHA-256 and HMAC-SHA256.
 *
 * Pure functions on caller-owned memory; safe from any thread.
 */
#ifndef MLGW_COMMON_ENCODE_H
#define MLGW_COMMON_ENCODE_H

#include <stddef.h>

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void gw_hex(char *out, const unsigned char *in, size_t n);

/* SHA-256 of data into out (32 bytes). */
void gw_sha256(unsigned char out[32], const void *data, size_t len);

/* HMAC-SHA256 of data under key into out (32 bytes); GW_EIO when OpenSSL fails. */
int gw_hmac_sha256(unsigned char out[32], const void *key, size_t keylen, const void *data,
                   size_t len);

/* base64url without padding (RFC 4648 §5) into out (>= 4*ceil(n/3)+1 bytes). */
void gw_base64url(char *out, const unsigned char *in, size_t n);

/* Decodes base64url without padding; returns the length or -1 when invalid
 * or longer than outlen. */
long gw_base64url_decode(unsigned char *out, size_t outlen, const char *in);

#endif
