/*
 * fuzz_utf8.c — the UTF-8 sanitizer (gw_utf8_sanitize, gw_utf8_seq) against
 * an independent reading of Unicode's Table 3-7 (well-formed byte
 * sequences). Checked besides crashes: the output is well-formed UTF-8 and
 * is the input with each maximal ill-formed subpart replaced by U+FFFD, a
 * well-formed input comes out unchanged, sanitizing twice changes nothing
 * more, and gw_utf8_seq agrees with the table at every position.
 */
#include "common/buf.h"
#include "common/utf8.h"
#include "tests/fuzz/fuzz.h"

/* Length of the well-formed sequence at p (left > 0 bytes) by Table 3-7 of
 * The Unicode Standard, row by row; 0 when there is none, with *bad the
 * length of its maximal subpart (the longest prefix of some well-formed
 * sequence, at least 1 byte: Unicode 15, section 3.9, D93b). */
static size_t table_seq(const unsigned char *p, size_t left, size_t *bad)
{
    unsigned char b = p[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    *bad = 1;
    if (b <= 0x7f)
        return 1;
    if (b >= 0xc2 && b <= 0xdf)
        n = 2;
    else if (b >= 0xe0 && b <= 0xef)
        n = 3;
    else if (b >= 0xf0 && b <= 0xf4)
        n = 4;
    else
        return 0;
    if (b == 0xe0)
        lo = 0xa0;
    else if (b == 0xed)
        hi = 0x9f; /* no surrogates */
    else if (b == 0xf0)
        lo = 0x90;
    else if (b == 0xf4)
        hi = 0x8f; /* nothing past U+10FFFF */
    size_t i = 1;
    if (i < left && p[1] >= lo && p[1] <= hi)
        i++;
    while (i > 1 && i < n && i < left && p[i] >= 0x80 && p[i] <= 0xbf)
        i++;
    if (i == n)
        return n;
    *bad = i;
    return 0;
}

static int well_formed(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t bad, k = table_seq(p + i, n - i, &bad);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* The sanitizer's output as the table says it should be (new: free()). */
static unsigned char *expected(const unsigned char *p, size_t n, size_t *len)
{
    unsigned char *out = malloc(3 * n + 1);
    FUZZ_CHECK(out != NULL);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t bad, k = table_seq(p + i, n - i, &bad);
        if (k > 0) {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD */
            o += 3;
            i += bad;
        }
    }
    *len = o;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        size_t bad = 0, want_bad = 0, k = gw_utf8_seq(data + i, size - i, &bad);
        FUZZ_CHECK(k == table_seq(data + i, size - i, &want_bad));
        if (k == 0)
            FUZZ_CHECK(bad == want_bad);
    }

    struct gw_buf once, twice;
    gw_buf_init(&once, 3 * size + 16); /* each byte becomes at most one U+FFFD */
    gw_buf_init(&twice, 3 * size + 16);
    FUZZ_CHECK(gw_utf8_sanitize(&once, (const char *)data, size) == GW_OK);
    FUZZ_CHECK(well_formed((const unsigned char *)once.data, once.len));
    size_t want_len;
    unsigned char *want = expected(data, size, &want_len);
    FUZZ_CHECK(once.len == want_len && (want_len == 0 || memcmp(once.data, want, want_len) == 0));
    free(want);
    if (well_formed(data, size))
        FUZZ_CHECK(once.len == size && (size == 0 || memcmp(once.data, data, size) == 0));
    FUZZ_CHECK(gw_utf8_sanitize(&twice, once.data, once.len) == GW_OK);
    FUZZ_CHECK(twice.len == once.len &&
               (once.len == 0 || memcmp(twice.data, once.data, once.len) == 0));
    gw_buf_dispose(&once);
    gw_buf_dispose(&twice);
    return 0;
}
