/*
 * gw.c — shared utilities: error detail, bounded buffers, checked integer
 * parsing, time formatting and randomness. No I/O beyond the CSPRNG.
 */
#include "gw.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "poison.h"

int gw_err_set(struct gw_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        if (n < 0)
            err->msg[0] = '\0';
        err->code = code;
    }
    return code;
}

void gw_fmt(char *out, size_t outlen, const char *fmt, ...)
{
    if (outlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        out[0] = '\0';
}

const char *gw_code_name(int code)
{
    switch (code) {
    case GW_OK: return "ok";
    case GW_ENOMEM: return "out of memory";
    case GW_EINVAL: return "invalid";
    case GW_ENOTFOUND: return "not found";
    case GW_ECONFLICT: return "conflict";
    case GW_EUPSTREAM: return "upstream error";
    case GW_EDB: return "database error";
    case GW_EUNAVAIL: return "unavailable";
    case GW_ETOOBIG: return "too big";
    case GW_EIO: return "I/O error";
    case GW_EPARSE: return "malformed";
    default: return "unknown error";
    }
}

void gw_buf_init(struct gw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void gw_buf_dispose(struct gw_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void gw_buf_reset(struct gw_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int gw_buf_add(struct gw_buf *b, const void *data, size_t len)
{
    if (len > b->max || b->len > b->max - len)
        return GW_ETOOBIG;
    size_t need = b->len + len + 1; /* cannot overflow: max < SIZE_MAX */
    if (need > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < need) {
            if (ncap > SIZE_MAX / 2)
                return GW_ENOMEM;
            ncap *= 2;
        }
        if (ncap > b->max + 1)
            ncap = b->max + 1;
        if (ncap < need)
            return GW_ENOMEM; /* max + 1 wrapped around */
        char *p = realloc(b->data, ncap);
        if (p == NULL)
            return GW_ENOMEM;
        b->data = p;
        b->cap = ncap;
    }
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return GW_OK;
}

int gw_buf_adds(struct gw_buf *b, const char *s)
{
    return gw_buf_add(b, s, strlen(s));
}

int gw_buf_printf(struct gw_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return GW_EINVAL;
    if ((size_t)n < sizeof(small))
        return gw_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return GW_ENOMEM;
    va_start(ap, fmt);
    int m = vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = (m == n) ? gw_buf_add(b, big, (size_t)n) : GW_EINVAL;
    free(big);
    return rc;
}

int gw_buf_add_json_escaped(struct gw_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    int rc;
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (p > run && (rc = gw_buf_add(b, run, (size_t)(p - run))) != GW_OK)
            return rc;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        size_t elen = 6;
        switch (c) {
        case '"':
            esc[1] = '"';
            elen = 2;
            break;
        case '\\':
            esc[1] = '\\';
            elen = 2;
            break;
        case '\n':
            esc[1] = 'n';
            elen = 2;
            break;
        case '\r':
            esc[1] = 'r';
            elen = 2;
            break;
        case '\t':
            esc[1] = 't';
            elen = 2;
            break;
        default: break;
        }
        if ((rc = gw_buf_add(b, esc, elen)) != GW_OK)
            return rc;
        run = p + 1;
    }
    size_t tail = strlen(run);
    return tail ? gw_buf_add(b, run, tail) : GW_OK;
}

char *gw_buf_steal(struct gw_buf *b)
{
    char *p = b->data;
    if (p == NULL)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

int gw_parse_ll(long long *out, const char *s, long long min, long long max)
{
    if (s == NULL || *s == '\0')
        return GW_EINVAL;
    /* strtoll accepts leading spaces and '+': a config value should not. */
    if (!(*s == '-' || (*s >= '0' && *s <= '9')))
        return GW_EINVAL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return GW_EINVAL;
    if (v < min || v > max)
        return GW_EINVAL;
    *out = v;
    return GW_OK;
}

int64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gw_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void gw_format_time_ms(char *out, size_t outlen, int64_t ms)
{
    int64_t whole = ms / 1000, frac = ms % 1000;
    if (frac < 0) { /* floor division: -1 ms is 23:59:59.999 the day before */
        whole--;
        frac += 1000;
    }
    time_t secs = (time_t)whole;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        base[0] = '\0';
    int n = snprintf(out, outlen, "%s.%03dZ", base, (int)frac);
    if (n < 0 && outlen > 0)
        out[0] = '\0';
}

int gw_random_bytes(unsigned char *out, size_t n)
{
    if (n > INT_MAX)
        return GW_EINVAL;
    return RAND_bytes(out, (int)n) == 1 ? GW_OK : GW_EIO;
}

long long gw_jitter_ms(long long base_ms, long long cap_ms, int attempt)
{
    long long ceil_ms = base_ms;
    for (int i = 1; i < attempt && ceil_ms < cap_ms; i++)
        ceil_ms *= 2;
    if (ceil_ms > cap_ms)
        ceil_ms = cap_ms;
    unsigned char r[4];
    unsigned int v = 0;
    if (gw_random_bytes(r, sizeof(r)) == GW_OK)
        v = (unsigned int)r[0] << 24 | (unsigned int)r[1] << 16 | (unsigned int)r[2] << 8 | r[3];
    return (long long)((double)v / 4294967296.0 * (double)ceil_ms);
}

void gw_hex(char *out, const unsigned char *in, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

int gw_uuid7(char out[37])
{
    unsigned char b[16];
    if (gw_random_bytes(b, sizeof(b)) != GW_OK)
        return GW_EIO;
    uint64_t ms = (uint64_t)gw_now_ms();
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* variant 10 */
    char hex[33];
    gw_hex(hex, b, sizeof(b));
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
    return GW_OK;
}

int gw_uuid_valid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return s[36] == '\0';
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

/* Length of the well-formed sequence at p (1..4); 0 when there is none, with
 * *bad the length of the maximal subpart to replace (≥ 1). */
size_t gw_utf8_seq(const unsigned char *p, size_t left, size_t *bad)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t n, ignored;
    if (bad == NULL)
        bad = &ignored;
    *bad = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f; /* nothing past U+10FFFF */
    } else {
        return 0; /* a continuation byte, an overlong lead (C0, C1) or F5..FF */
    }
    size_t i = 1;
    for (; i < n && i < left; i++) {
        unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xbf;
        if (p[i] < min || p[i] > max)
            break;
    }
    if (i == n)
        return n;
    *bad = i;
    return 0;
}
