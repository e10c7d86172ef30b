/*
 * cachewalk.c — one bounded walk of a model cache root (cachewalk.h).
 *
 * Directories are opened relative to their parent's descriptor with
 * O_NOFOLLOW, and every name is looked at with fstatat(AT_SYMLINK_NOFOLLOW),
 * so a link inside the cache is counted as a file and never followed out of
 * it, and a folder renamed during the walk cannot send it elsewhere.
 */
#include "jobs/cachewalk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/time.h"

#include "common/poison.h"

enum { MAX_DEPTH = 64, DEADLINE_EVERY = 256 };

static const char usage_dir[] = ".usage";

struct walk {
    struct jobs_cache_walk *w;
    long long max_files;
    int64_t deadline_ns;
    long long seen; /* files and folders, for the deadline check */
    int stop;
};

static long long ms_of(const struct timespec *ts)
{
    return (long long)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

/* Whether the walk must stop now (bounds reached); records it. */
static int bounded(struct walk *k)
{
    if (k->stop)
        return 1;
    if (k->w->files >= k->max_files ||
        (++k->seen % DEADLINE_EVERY == 0 && gw_monotonic_ns() > k->deadline_ns)) {
        k->stop = 1;
        k->w->complete = 0;
    }
    return k->stop;
}

/* Adds what st says to item and the totals; a folder's own time is its
 * change time only (reading it, as this walk does, sets its access time). */
static void account(struct walk *k, struct jobs_cache_item *item, const struct stat *st)
{
    long long used = ms_of(&st->st_mtim);
    if (!S_ISDIR(st->st_mode)) {
        long long atime = ms_of(&st->st_atim);
        if (atime > used)
            used = atime;
        long long size = S_ISREG(st->st_mode) ? (long long)st->st_size : 0;
        item->files++;
        item->bytes += size;
        k->w->files++;
        k->w->bytes += size;
    }
    if (used > item->used_ms)
        item->used_ms = used;
}

/* Everything below the open folder dfd (taken: closed here) into item. */
static void walk_dir(struct walk *k, struct jobs_cache_item *item, int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while (!bounded(k) && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* removed meanwhile */
        account(k, item, &st);
        if (!S_ISDIR(st.st_mode))
            continue;
        if (depth >= MAX_DEPTH) {
            k->w->complete = 0;
            continue;
        }
        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            walk_dir(k, item, sub, depth + 1);
    }
    closedir(d);
}

static struct jobs_cache_item *item_new(struct jobs_cache_walk *w, const char *name)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        struct jobs_cache_item *items = realloc(w->items, cap * sizeof(*items));
        if (items == NULL)
            return NULL;
        w->items = items;
        w->cap = cap;
    }
    struct jobs_cache_item *it = &w->items[w->n++];
    memset(it, 0, sizeof(*it));
    gw_fmt(it->name, sizeof(it->name), "%s", name);
    return it;
}

/* Raises each item's use to its .usage marker's time, where there is one. */
static void read_markers(struct jobs_cache_walk *w, int rootfd)
{
    int ufd = openat(rootfd, usage_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (ufd < 0)
        return;
    for (size_t i = 0; i < w->n; i++) {
        struct stat st;
        if (fstatat(ufd, w->items[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            ms_of(&st.st_mtim) > w->items[i].used_ms)
            w->items[i].used_ms = ms_of(&st.st_mtim);
    }
    close(ufd);
}

/* One top-level name of the root (rootfd). GW_ENOMEM, else GW_OK. */
static int walk_top(struct walk *k, int rootfd, const char *name)
{
    struct stat st;
    if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return GW_OK;
    if (strlen(name) >= JOBS_CACHE_NAME_MAX) {
        k->w->complete = 0; /* not an entry the API could name */
        return GW_OK;
    }
    struct jobs_cache_item *item = item_new(k->w, name);
    if (item == NULL)
        return GW_ENOMEM;
    account(k, item, &st);
    if (S_ISDIR(st.st_mode)) {
        int sub = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            walk_dir(k, item, sub, 1);
    }
    return GW_OK;
}

int jobs_cache_walk(struct jobs_cache_walk *w, const char *root, long long max_files,
                    int64_t deadline_ns)
{
    memset(w, 0, sizeof(*w));
    w->complete = 1;
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        if (errno != ENOENT)
            gw_fmt(w->error, sizeof(w->error), "cannot read %s: %s", root, strerror(errno));
        return GW_OK;
    }
    DIR *d = fdopendir(rootfd);
    if (d == NULL) {
        gw_fmt(w->error, sizeof(w->error), "cannot read %s: %s", root, strerror(errno));
        close(rootfd);
        return GW_OK;
    }
    struct walk k = {w, max_files, deadline_ns, 0, 0};
    int rc = GW_OK;
    struct dirent *de;
    while (rc == GW_OK && !bounded(&k) && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            rc = walk_top(&k, dirfd(d), de->d_name);
    if (rc == GW_OK)
        read_markers(w, dirfd(d));
    closedir(d);
    if (rc != GW_OK)
        jobs_cache_walk_dispose(w);
    return rc;
}

void jobs_cache_walk_dispose(struct jobs_cache_walk *w)
{
    free(w->items);
    w->items = NULL;
    w->n = w->cap = 0;
}

struct lru_key {
    long long used_ms;
    const char *name;
    size_t index;
};

static int by_use(const void *a, const void *b)
{
    const struct lru_key *x = a, *y = b;
    if (x->used_ms != y->used_ms)
        return x->used_ms < y->used_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

size_t jobs_cache_lru(const struct jobs_cache_walk *w, long long target, size_t *out)
{
    if (w->n == 0)
        return 0;
    struct lru_key *keys = calloc(w->n, sizeof(*keys));
    if (keys == NULL)
        return 0;
    for (size_t i = 0; i < w->n; i++)
        keys[i] = (struct lru_key){w->items[i].used_ms, w->items[i].name, i};
    qsort(keys, w->n, sizeof(*keys), by_use);
    long long left = w->bytes;
    size_t n = 0;
    while (n < w->n && left > target) {
        out[n] = keys[n].index;
        left -= w->items[keys[n].index].bytes;
        n++;
    }
    free(keys);
    return n;
}
