/*
 * buf.c — bounded growable buffers and truncating formatting (buf.h).
 */
#include "common/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#include "common/poison.h"

void gw_vfmt(char *out, size_t outlen, const char *fmt, va_list ap)
{
    if (outlen == 0)
        return;
    if (vsnprintf(out, outlen, fmt, ap) < 0)
        out[0] = '\0';
}

void gw_fmt(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_vfmt(out, outlen, fmt, ap);
    va_end(ap);
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
