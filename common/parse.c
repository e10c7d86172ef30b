/*
 * parse.c — checked integers and the one RFC 3339 parser (parse.h).
 */
#include "common/parse.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "common/err.h"

#include "common/poison.h"

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

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[m - 1] + (m == 2 && leap);
}

/* Exactly w digits at s[*i] (inside n), advancing *i; -1 when not. */
static int digits(const char *s, size_t n, size_t *i, size_t w)
{
    int v = 0;
    if (n - *i < w)
        return -1;
    for (size_t k = 0; k < w; k++) {
        char c = s[*i + k];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += w;
    return v;
}

static int expect(const char *s, size_t n, size_t *i, char c)
{
    if (*i >= n || s[*i] != c)
        return 0;
    (*i)++;
    return 1;
}

size_t gw_parse_rfc3339(int64_t *ms, const char *s, size_t n)
{
    size_t i = 0;
    *ms = 0;
    int y = digits(s, n, &i, 4);
    if (y < 0 || !expect(s, n, &i, '-'))
        return 0;
    int mo = digits(s, n, &i, 2);
    if (mo < 0 || !expect(s, n, &i, '-'))
        return 0;
    int d = digits(s, n, &i, 2);
    if (d < 0 || i >= n || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return 0;
    i++;
    int h = digits(s, n, &i, 2);
    if (h < 0 || !expect(s, n, &i, ':'))
        return 0;
    int mi = digits(s, n, &i, 2);
    if (mi < 0 || !expect(s, n, &i, ':'))
        return 0;
    int sec = digits(s, n, &i, 2);
    if (sec < 0)
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return 0;
    int64_t frac = 0;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        int64_t scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            frac += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return 0;
    }
    int64_t off_min = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        int oh = digits(s, n, &i, 2);
        if (oh < 0 || oh > 23 || !expect(s, n, &i, ':'))
            return 0;
        int om = digits(s, n, &i, 2);
        if (om < 0 || om > 59)
            return 0;
        off_min = (int64_t)sign * (oh * 60 + om);
    } else {
        return 0;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec -
                   off_min * 60;
    *ms = secs * 1000 + frac;
    return i;
}
