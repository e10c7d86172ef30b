/*
 * test_gw_ids.c — unit tests for the identifier and encoding helpers of
 * server/gw.c: UUIDv7 (RFC 9562) generation and validation, SHA-256 against
 * the FIPS 180-2 vectors, and unpadded base64url (RFC 4648 §5).
 */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"

/* ---- gw_uuid7 / gw_uuid_valid ---------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

Test(server_gw_ids, uuid7_has_version_7_variant_10_and_lower_case_hex)
{
    for (int n = 0; n < 100; n++) {
        char id[37];
        cr_assert_eq(gw_uuid7(id), GW_OK);
        cr_assert_eq(strlen(id), 36, "%s", id);
        for (int i = 0; i < 36; i++) {
            char c = id[i];
            if (i == 8 || i == 13 || i == 18 || i == 23)
                cr_assert_eq(c, '-', "%s", id);
            else
                cr_assert((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'), "%s", id);
        }
        cr_assert_eq(id[14], '7', "version nibble: %s", id);
        cr_assert_not_null(strchr("89ab", id[19]), "variant 10xx: %s", id);
        cr_assert(gw_uuid_valid(id), "%s", id);
    }
}

Test(server_gw_ids, uuid7_carries_the_current_unix_milliseconds)
{
    char id[37];
    struct timespec before, after;
    cr_assert_eq(clock_gettime(CLOCK_REALTIME, &before), 0);
    cr_assert_eq(gw_uuid7(id), GW_OK);
    cr_assert_eq(clock_gettime(CLOCK_REALTIME, &after), 0);
    unsigned long long ms = 0;
    for (int i = 0; i < 13; i++) {
        if (id[i] == '-')
            continue;
        char c = id[i];
        ms = ms * 16 + (unsigned long long)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    unsigned long long lo = (unsigned long long)before.tv_sec * 1000ULL +
                            (unsigned long long)before.tv_nsec / 1000000ULL;
    unsigned long long hi =
        (unsigned long long)after.tv_sec * 1000ULL + (unsigned long long)after.tv_nsec / 1000000ULL;
    cr_assert(ms >= lo && ms <= hi, "%s: %llu not in [%llu, %llu]", id, ms, lo, hi);
}

Test(server_gw_ids, two_uuid7_ids_differ)
{
    char a[37], b[37];
    cr_assert_eq(gw_uuid7(a), GW_OK);
    cr_assert_eq(gw_uuid7(b), GW_OK);
    cr_assert_str_neq(a, b);
}

Test(server_gw_ids, uuid7_ids_made_2_ms_apart_sort_in_creation_order)
{
    char prev[37], next[37];
    cr_assert_eq(gw_uuid7(prev), GW_OK);
    for (int i = 0; i < 5; i++) {
        sleep_ms(2);
        cr_assert_eq(gw_uuid7(next), GW_OK);
        cr_assert_lt(strcmp(prev, next), 0, "%s then %s", prev, next);
        memcpy(prev, next, sizeof(prev));
    }
}

Test(server_gw_ids, uuid_valid_accepts_canonical_lower_case_forms)
{
    cr_assert(gw_uuid_valid("0190b2a4-7c3e-7d4f-8a1b-2c3d4e5f6a7b"));
    cr_assert(gw_uuid_valid("00000000-0000-0000-0000-000000000000"));
    cr_assert(gw_uuid_valid("ffffffff-ffff-ffff-ffff-ffffffffffff"));
}

Test(server_gw_ids, uuid_valid_rejects_upper_case_bad_hyphens_wrong_length_and_non_hex)
{
    const char *const bad[] = {
        "0190B2A4-7C3E-7D4F-8A1B-2C3D4E5F6A7B",   /* upper case */
        "0190b2a4-7c3e-7d4f-8a1b-2c3d4e5f6a7B",   /* one upper-case digit */
        "0190b2a47c3e-7d4f-8a1b-2c3d4e5f6a7b",    /* missing hyphen (35) */
        "0190b2a4x7c3e-7d4f-8a1b-2c3d4e5f6a7b",   /* hyphen replaced */
        "0190b2a47-c3e-7d4f-8a1b-2c3d4e5f6a7b",   /* hyphen moved */
        "0190b2a4-7c3e-7d4f-8a1b-2c3d4e5f6a7",    /* 35 characters */
        "0190b2a4-7c3e-7d4f-8a1b-2c3d4e5f6a7b0",  /* 37 characters */
        "0190b2a47c3e7d4f8a1b2c3d4e5f6a7b",       /* no hyphens (32) */
        "{0190b2a4-7c3e-7d4f-8a1b-2c3d4e5f6a7b}", /* braces */
        "0190b2a4-7c3e-7d4f-8a1b-2c3d4e5f6a7g",   /* non-hex */
        "0190b2a4-7c3e-7d4f-8a1b-2c3d4e5f6a7 ",   /* space */
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(gw_uuid_valid(bad[i]), "accepted \"%s\"", bad[i]);
}

/* ---- gw_sha256 --------------------------------------------------------------- */

static void assert_sha256(const char *msg, const char *want_hex)
{
    unsigned char d[32];
    char hex[65];
    gw_sha256(d, msg, strlen(msg));
    gw_hex(hex, d, sizeof(d));
    cr_assert_str_eq(hex, want_hex, "SHA-256(\"%s\")", msg);
}

Test(server_gw_ids, sha256_matches_the_fips_180_2_vectors)
{
    assert_sha256("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    assert_sha256("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- gw_base64url / gw_base64url_decode ------------------------------------ */

static void assert_encodes(const unsigned char *in, size_t n, const char *want)
{
    char out[64];
    gw_base64url(out, in, n);
    cr_assert_str_eq(out, want);
    unsigned char back[48];
    long len = gw_base64url_decode(back, sizeof(back), want);
    cr_assert_eq(len, (long)n, "decode(\"%s\") = %ld", want, len);
    cr_assert_eq(memcmp(back, in, n), 0, "decode(\"%s\")", want);
}

Test(server_gw_ids, base64url_matches_rfc_4648_vectors_without_padding)
{
    const unsigned char *foobar = (const unsigned char *)"foobar";
    assert_encodes(foobar, 0, "");
    assert_encodes(foobar, 1, "Zg");
    assert_encodes(foobar, 2, "Zm8");
    assert_encodes(foobar, 3, "Zm9v");
    assert_encodes(foobar, 4, "Zm9vYg");
    assert_encodes(foobar, 5, "Zm9vYmE");
    assert_encodes(foobar, 6, "Zm9vYmFy");
}

Test(server_gw_ids, base64url_uses_hyphen_and_underscore)
{
    assert_encodes((const unsigned char[]){0xfb, 0xff}, 2, "-_8");
    assert_encodes((const unsigned char[]){0xfb, 0xef, 0xbe}, 3, "----");
    assert_encodes((const unsigned char[]){0xff, 0xff, 0xff}, 3, "____");
    assert_encodes((const unsigned char[]){0x00}, 1, "AA");
}

Test(server_gw_ids, base64url_round_trips_random_bytes_of_every_length_up_to_40)
{
    for (size_t n = 0; n <= 40; n++) {
        for (int round = 0; round < 20; round++) {
            unsigned char in[40], back[40];
            char enc[64];
            cr_assert_eq(gw_random_bytes(in, n), GW_OK);
            memset(enc, 0x7f, sizeof(enc));
            gw_base64url(enc, in, n);
            size_t want_len = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
            cr_assert_eq(strlen(enc), want_len, "n=%zu: %s", n, enc);
            for (size_t i = 0; i < want_len; i++)
                cr_assert_not_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789-_",
                                          enc[i]),
                                   "n=%zu: %s", n, enc);
            /* exactly n bytes of room is enough */
            long len = gw_base64url_decode(back, n, enc);
            cr_assert_eq(len, (long)n, "n=%zu: %s -> %ld", n, enc, len);
            cr_assert_eq(memcmp(back, in, n), 0, "n=%zu: %s", n, enc);
        }
    }
}

Test(server_gw_ids, base64url_decode_rejects_padding_and_the_standard_alphabet)
{
    unsigned char out[16];
    const char *const bad[] = {"Zg==", "Zm8=", "Zg=", "+_8", "-/8", "Zm9v Yg", "Zm9v\nYg", "Zm.v"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(gw_base64url_decode(out, sizeof(out), bad[i]), -1, "accepted \"%s\"", bad[i]);
}

Test(server_gw_ids, base64url_decode_rejects_non_canonical_trailing_bits)
{
    unsigned char out[16];
    cr_assert_eq(gw_base64url_decode(out, sizeof(out), "AA"), 1);
    cr_assert_eq(out[0], 0x00);
    cr_assert_eq(gw_base64url_decode(out, sizeof(out), "AB"), -1);
    cr_assert_eq(gw_base64url_decode(out, sizeof(out), "Zh"), -1);  /* "Zg" is canonical */
    cr_assert_eq(gw_base64url_decode(out, sizeof(out), "-_9"), -1); /* "-_8" is canonical */
    cr_assert_eq(gw_base64url_decode(out, sizeof(out), "Zm9"), -1); /* "Zm8" is canonical */
}

Test(server_gw_ids, base64url_decode_rejects_an_impossible_length)
{
    unsigned char out[16];
    cr_assert_eq(gw_base64url_decode(out, sizeof(out), "A"), -1);
    cr_assert_eq(gw_base64url_decode(out, sizeof(out), "Zm9vY"), -1);
}

Test(server_gw_ids, base64url_decode_rejects_a_too_small_output_buffer)
{
    unsigned char out[8];
    memset(out, 0xee, sizeof(out));
    cr_assert_eq(gw_base64url_decode(out, 5, "Zm9vYmFy"), -1);
    cr_assert_eq(out[5], 0xee, "wrote past outlen");
    cr_assert_eq(gw_base64url_decode(out, 0, "Zg"), -1);
    cr_assert_eq(gw_base64url_decode(out, 6, "Zm9vYmFy"), 6);
    cr_assert_eq(memcmp(out, "foobar", 6), 0);
    cr_assert_eq(gw_base64url_decode(out, 0, ""), 0);
}
