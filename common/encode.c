/*
 * encode.c — hex, base64url, SHA-256 and HMAC (encode.h).
 */
#include "common/encode.h"

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/err.h"

#include "common/poison.h"

void gw_hex(char *out, const unsigned char *in, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

void gw_sha256(unsigned char out[32], const void *data, size_t len)
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(out, 0, 32); /* cannot happen with a working libcrypto */
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void gw_base64url(char *out, const unsigned char *in, size_t n)
{
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
}

long gw_base64url_decode(unsigned char *out, size_t outlen, const char *in)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *p = in; *p != '\0'; p++) {
        const char *hit = strchr(b64url, *p);
        if (hit == NULL)
            return -1;
        acc = (acc << 6) | (uint32_t)(hit - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outlen)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero padding of fewer than 6 bits (canonical form). */
    if (bits >= 6 || acc != 0)
        return -1;
    return (long)o;
}

int gw_hmac_sha256(unsigned char out[32], const void *key, size_t keylen, const void *data,
                   size_t len)
{
    unsigned int n = 0;
    if (keylen > INT_MAX || HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n) == NULL ||
        n != 32) {
        memset(out, 0, 32);
        return GW_EIO;
    }
    return GW_OK;
}
