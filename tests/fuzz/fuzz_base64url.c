/*
 * fuzz_base64url.c — base64url without padding (common/encode.c), both ways.
 * Checked besides crashes: any bytes encode to ceil(4n/3) characters of the
 * URL-safe alphabet that decode back to them (and not into one byte less
 * room); any text that decodes was canonical, so encoding what it decoded
 * to gives the same text.
 */
#include "common/encode.h"
#include "tests/fuzz/fuzz.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void encode_decode(const uint8_t *data, size_t size)
{
    char *text = malloc(4 * ((size + 2) / 3) + 1);
    unsigned char *back = malloc(size + 1);
    FUZZ_CHECK(text != NULL && back != NULL);
    gw_base64url(text, data, size);
    size_t len = strlen(text);
    FUZZ_CHECK(len == (4 * size + 2) / 3 && strspn(text, alphabet) == len);
    FUZZ_CHECK(gw_base64url_decode(back, size, text) == (long)size);
    FUZZ_CHECK(size == 0 || memcmp(back, data, size) == 0);
    if (size > 0)
        FUZZ_CHECK(gw_base64url_decode(back, size - 1, text) == -1);
    free(text);
    free(back);
}

static void decode_encode(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    size_t len = strlen(text);
    unsigned char *bytes = malloc(len + 1);
    FUZZ_CHECK(bytes != NULL);
    long n = gw_base64url_decode(bytes, len, text);
    if (n >= 0) {
        char *again = malloc(4 * (((size_t)n + 2) / 3) + 1);
        FUZZ_CHECK(again != NULL);
        gw_base64url(again, bytes, (size_t)n);
        FUZZ_CHECK(strcmp(again, text) == 0);
        free(again);
    }
    free(bytes);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    encode_decode(data, size);
    decode_encode(data, size);
    return 0;
}
