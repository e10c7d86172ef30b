/*
 * id.c — CSPRNG bytes and UUIDv7 (id.h).
 */
#include "common/id.h"

#include <limits.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>

#include "common/encode.h"
#include "common/err.h"
#include "common/time.h"

#include "common/poison.h"

int gw_random_bytes(unsigned char *out, size_t n)
{
    if (n > INT_MAX)
        return GW_EINVAL;
    return RAND_bytes(out, (int)n) == 1 ? GW_OK : GW_EIO;
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
