/*
 * time.c — clocks, RFC 3339 formatting and backoff (time.h).
 */
#include "common/time.h"

#include <stdio.h>
#include <time.h>

#include "common/err.h"
#include "common/id.h"

#include "common/poison.h"

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
    if (outlen == 0)
        return;
    out[0] = '\0';
    int64_t whole = ms / 1000, frac = ms % 1000;
    if (frac < 0) { /* floor division: -1 ms is 23:59:59.999 the day before */
        whole--;
        frac += 1000;
    }
    time_t secs = (time_t)whole;
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL)
        return;
    long long year = (long long)tm.tm_year + 1900;
    if (year < 0 || year > 9999)
        return;
    /* %04lld, not strftime's %Y: years before 1000 keep four digits. */
    int n = snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    if (n < 0)
        out[0] = '\0'; /* a short out keeps what fits, NUL-terminated */
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
