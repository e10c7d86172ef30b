/*
 * replay.c — a main for a fuzz target outside libFuzzer: runs every file
 * named on the command line, or found in a directory named there (not
 * recursively, in name order), through LLVMFuzzerTestOneInput once. Each
 * input gets a heap buffer of exactly its size, so AddressSanitizer sees a
 * read past its end. Built with the test build's compiler and sanitizers, it
 * makes each committed corpus a CTest test (tests/fuzz/CMakeLists.txt).
 *
 * Exits 0 after running at least one input; 1 when an argument cannot be
 * read or names no input at all. A finding aborts (sanitizers, FUZZ_CHECK).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

/* Runs the file at path; 0, or -1 when it cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    FUZZ_CHECK(buf != NULL);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            uint8_t *grown = realloc(buf, cap);
            FUZZ_CHECK(grown != NULL);
            buf = grown;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    /* An exact-size copy: the spare room of buf would hide overreads. */
    uint8_t *exact = malloc(len > 0 ? len : 1);
    FUZZ_CHECK(exact != NULL);
    if (len > 0)
        memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int is_file(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Runs every file of dir; how many, or -1. */
static long run_dir(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, is_file, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot list %s\n", dir);
        return -1;
    }
    long ran = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        struct stat st;
        if (w > 0 && (size_t)w < sizeof(path) && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) != 0)
                ran = -1;
            else if (ran >= 0)
                ran++;
        }
        free(names[i]);
    }
    free(names);
    return ran;
}

int main(int argc, char **argv)
{
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long ran;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode))
            ran = run_dir(argv[i]);
        else
            ran = run_file(argv[i]) == 0 ? 1 : -1;
        if (ran < 0)
            return 1;
        total += ran;
    }
    if (total == 0) {
        fprintf(stderr, "usage: %s CORPUS_DIR|FILE...: no input to run\n", argv[0]);
        return 1;
    }
    printf("replay: %ld inputs, no finding\n", total);
    return 0;
}
