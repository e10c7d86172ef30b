/*
 * fuzz.h — what every fuzz target (tests/fuzz/fuzz_*.c) shares: the
 * libFuzzer entry point it defines, a NUL-terminated copy of the input, and
 * FUZZ_CHECK for the properties a target asserts besides "no crash, no leak,
 * no undefined behaviour". A failed check aborts, which libFuzzer and the
 * replay driver (replay.c) both report as a finding.
 *
 * Targets are built twice: as libFuzzer executables (clang, MLGW_FUZZ) and,
 * linked with replay.c, as the CTest tests that replay their corpus.
 */
#ifndef MLGW_TESTS_FUZZ_H
#define MLGW_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs one input; always returns 0 (libFuzzer's contract). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* data as a C string (new: free()); it ends at the first NUL of data, if any. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
