/*
 * fuzz_rfc3339.c — the RFC 3339 parser (gw_parse_rfc3339) and its round trip
 * with the formatter (gw_format_time_ms).
 *
 * Each input is used twice:
 *   - as text: the parser never reads past n, and a time it accepts, once
 *     formatted (when its year can be written in four digits), parses back
 *     to the same millisecond from exactly 24 bytes;
 *   - as a number: its first 8 bytes pick a millisecond between
 *     0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, which must
 *     format to 24 bytes and parse back to itself.
 */
#include "common/parse.h"
#include "common/time.h"
#include "tests/fuzz/fuzz.h"

enum { RFC3339_MS_LEN = 24 }; /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */

static const int64_t first_ms = -62135596800000LL; /* 0001-01-01T00:00:00.000Z */
static const int64_t last_ms = 253402300799999LL;  /* 9999-12-31T23:59:59.999Z */

static void round_trip(int64_t ms)
{
    char text[32];
    int64_t back = 0;
    if (ms < first_ms || ms > last_ms)
        return;
    gw_format_time_ms(text, sizeof(text), ms);
    FUZZ_CHECK(strlen(text) == RFC3339_MS_LEN);
    FUZZ_CHECK(gw_parse_rfc3339(&back, text, strlen(text)) == RFC3339_MS_LEN);
    FUZZ_CHECK(back == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t ms = 0;
    size_t n = gw_parse_rfc3339(&ms, (const char *)data, size);
    FUZZ_CHECK(n <= size);
    if (n > 0) {
        char text[32];
        gw_format_time_ms(text, sizeof(text), ms);
        if (text[0] != '\0') {
            int64_t back = 0;
            FUZZ_CHECK(gw_parse_rfc3339(&back, text, strlen(text)) == RFC3339_MS_LEN);
            FUZZ_CHECK(back == ms);
        }
        round_trip(ms);
    }

    uint64_t raw = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        raw = raw << 8 | data[i];
    uint64_t span = (uint64_t)(last_ms - first_ms) + 1;
    round_trip(first_ms + (int64_t)(raw % span));
    return 0;
}
