/*
 * utf8.c — UTF-8 checking and U+FFFD replacement (utf8.h).
 */
#include "common/utf8.h"

#include "common/buf.h"
#include "common/err.h"

#include "common/poison.h"

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

int gw_utf8_sanitize(struct gw_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* valid bytes not yet copied start at i - run */
    while (i < n) {
        size_t bad = 0, l = gw_utf8_seq(p + i, n - i, &bad);
        if (l > 0) {
            i += l;
            run += l;
            continue;
        }
        int rc = gw_buf_add(b, p + i - run, run);
        if (rc == GW_OK)
            rc = gw_buf_add(b, "\xef\xbf\xbd", 3); /* U+FFFD */
        if (rc != GW_OK)
            return rc;
        i += bad;
        run = 0;
    }
    return gw_buf_add(b, p + i - run, run);
}

size_t gw_utf8_chars(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    return chars;
}
