/*
 * jobs/cachewalk.c: what one walk of a cache root counts, what it leaves
 * alone (links, dot names), its bounds, and the least-recently-used choice.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/time.h"
#include "jobs/cachewalk.h"

static char root[64];

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/mlgw-cachewalk-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(jobs_cachewalk, .init = setup, .fini = teardown);

static void put(const char *rel, size_t size, long age_s)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0, "%s", path);
    char *data = calloc(1, size + 1);
    cr_assert_eq(write(fd, data, size), (ssize_t)size);
    free(data);
    close(fd);
    struct timespec ts[2] = {{time(NULL) - age_s, 0}, {time(NULL) - age_s, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void dir(const char *rel)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    cr_assert_eq(mkdir(path, 0755), 0, "%s", path);
}

static void age_dir(const char *rel, long age_s)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    struct timespec ts[2] = {{time(NULL) - age_s, 0}, {time(NULL) - age_s, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static const struct jobs_cache_item *find(const struct jobs_cache_walk *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->items[i].name, name) == 0)
            return &w->items[i];
    return NULL;
}

Test(jobs_cachewalk, counts_entries_and_totals_without_following_links_or_dot_names)
{
    dir("model-a");
    dir("model-a/sub");
    put("model-a/weights.bin", 1000, 100);
    put("model-a/sub/config.json", 24, 100);
    put("single.bin", 500, 50);
    dir(".model-b.tmp42"); /* a warm job's unfinished copy */
    put(".model-b.tmp42/weights.bin", 7000, 0);
    char target[256], link[256];
    snprintf(target, sizeof(target), "/usr");
    snprintf(link, sizeof(link), "%s/model-a/escape", root);
    cr_assert_eq(symlink(target, link), 0);

    struct jobs_cache_walk w;
    cr_assert_eq(jobs_cache_walk(&w, root, 1000000, gw_monotonic_ns() + 10000000000LL), GW_OK);
    cr_assert(w.complete);
    cr_assert_str_empty(w.error);
    cr_assert_eq(w.n, 2);
    const struct jobs_cache_item *a = find(&w, "model-a");
    cr_assert_not_null(a);
    cr_assert_eq(a->bytes, 1024);
    cr_assert_eq(a->files, 3, "two files and the link, which is not followed");
    const struct jobs_cache_item *s = find(&w, "single.bin");
    cr_assert_not_null(s);
    cr_assert_eq(s->bytes, 500);
    cr_assert_eq(s->files, 1);
    cr_assert_eq(w.bytes, 1524);
    cr_assert_eq(w.files, 4);
    jobs_cache_walk_dispose(&w);
}

Test(jobs_cachewalk, a_usage_marker_is_an_entrys_last_use)
{
    dir("old");
    put("old/w.bin", 10, 10 * 86400);
    age_dir("old", 10 * 86400);
    dir(".usage");
    put(".usage/old", 0, 60);
    struct jobs_cache_walk w;
    cr_assert_eq(jobs_cache_walk(&w, root, 1000000, gw_monotonic_ns() + 10000000000LL), GW_OK);
    const struct jobs_cache_item *it = find(&w, "old");
    cr_assert_not_null(it);
    long long age_ms = (long long)time(NULL) * 1000 - it->used_ms;
    cr_assert(age_ms >= 59000 && age_ms < 120000, "used %lld ms ago", age_ms);
    jobs_cache_walk_dispose(&w);
}

Test(jobs_cachewalk, stops_at_its_file_bound_and_says_so)
{
    dir("many");
    for (int i = 0; i < 50; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "many/f%d", i);
        put(rel, 1, 0);
    }
    struct jobs_cache_walk w;
    cr_assert_eq(jobs_cache_walk(&w, root, 10, gw_monotonic_ns() + 10000000000LL), GW_OK);
    cr_assert_not(w.complete);
    cr_assert_eq(w.files, 10);
    jobs_cache_walk_dispose(&w);
    cr_assert_eq(jobs_cache_walk(&w, root, 1000, gw_monotonic_ns() - 1), GW_OK);
    cr_assert_eq(w.files, 50, "the deadline is looked at every 256 names: a small tree finishes");
    jobs_cache_walk_dispose(&w);
}

Test(jobs_cachewalk, a_missing_root_is_an_empty_cache_and_a_file_root_an_error)
{
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/absent", root);
    struct jobs_cache_walk w;
    cr_assert_eq(jobs_cache_walk(&w, missing, 10, gw_monotonic_ns() + 1000000000LL), GW_OK);
    cr_assert(w.complete);
    cr_assert_str_empty(w.error);
    cr_assert_eq(w.n, 0);
    jobs_cache_walk_dispose(&w);
    put("plain", 1, 0);
    snprintf(missing, sizeof(missing), "%s/plain", root);
    cr_assert_eq(jobs_cache_walk(&w, missing, 10, gw_monotonic_ns() + 1000000000LL), GW_OK);
    cr_assert_not_null(strstr(w.error, "cannot read"), "%s", w.error);
    jobs_cache_walk_dispose(&w);
}

Test(jobs_cachewalk, lru_takes_the_least_recently_used_until_the_target)
{
    struct jobs_cache_item items[4] = {
        {"newest", 100, 1, 4000},
        {"oldest", 100, 1, 1000},
        {"middle", 100, 1, 2000},
        {"older", 100, 1, 1500},
    };
    struct jobs_cache_walk w = {items, 4, 4, 400, 4, 1, ""};
    size_t order[4];
    size_t n = jobs_cache_lru(&w, 200, order);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(items[order[0]].name, "oldest");
    cr_assert_str_eq(items[order[1]].name, "older");
    cr_assert_eq(jobs_cache_lru(&w, 400, order), 0, "already at the target");
    cr_assert_eq(jobs_cache_lru(&w, 0, order), 4);
}
