/*
 * cachewalk.h — one walk of a model cache root: per top-level entry (one
 * model, a folder or a file) its bytes, files and newest use, and the
 * totals. The walk never follows symbolic links, never reads a file (only
 * stats it, so it changes no access time) and stops at a file count or a
 * deadline, saying so. Names beginning with a dot are the cache's own
 * bookkeeping, not entries: .usage/<entry> is a marker whose modification
 * time is the entry's last use as jobs report it (images/entrypoint), for
 * file systems that keep no access times.
 *
 * Pure file-system reads, no database: safe from any thread.
 */
#ifndef MLGW_CACHEWALK_H
#define MLGW_CACHEWALK_H

#include <stddef.h>
#include <stdint.h>

enum { JOBS_CACHE_NAME_MAX = 256 };

struct jobs_cache_item {
    char name[JOBS_CACHE_NAME_MAX];
    long long bytes;   /* regular files' sizes */
    long long files;   /* everything but folders */
    long long used_ms; /* newest file access or change, folder change or marker (Unix ms) */
};

struct jobs_cache_walk {
    struct jobs_cache_item *items; /* new: jobs_cache_walk_dispose */
    size_t n, cap;
    long long bytes, files;
    int complete;    /* 0: stopped at max_files or the deadline */
    char error[300]; /* non-empty: the root could not be read */
};

/* Walks root into w (filled from zero) until max_files files were seen or
 * the monotonic clock (gw_monotonic_ns) passes deadline_ns. A root that
 * does not exist is an empty cache. Returns GW_OK (the result in w, maybe
 * with w->error), or GW_ENOMEM. */
int jobs_cache_walk(struct jobs_cache_walk *w, const char *root, long long max_files,
                    int64_t deadline_ns);
void jobs_cache_walk_dispose(struct jobs_cache_walk *w);

/* The least recently used items whose removal brings w->bytes down to at
 * most target bytes: their indexes into w->items go to out (caller-owned,
 * w->n entries), oldest first; returns how many. */
size_t jobs_cache_lru(const struct jobs_cache_walk *w, long long target, size_t *out);

#endif
