/*
 * test_jobcache.c — unit tests for db/jobcache.c without a database: what a
 * lookup returns (and to whom), the byte bound and least-recently-used
 * eviction, and the tickets that keep a read overtaken by a change from
 * storing its old copy. The polling side is exercised by
 * tests/integration/test_jobcache.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/jobcache.h"

static const char id1[] = "019593e4-2ff5-7e81-9a4b-c2d3e4f5a6b7";
static const char id2[] = "019593e4-2ff5-7e81-9a4b-c2d3e4f5a6b8";

static struct db_jobcache *live_cache(size_t bytes)
{
    struct db_jobcache *c = NULL;
    cr_assert_eq(db_jobcache_new(&c, bytes), 0);
    db_jobcache_set_live(c, 1);
    return c;
}

static void store(struct db_jobcache *c, const char *id, const char *team, const char *json)
{
    char etag[DB_JOBCACHE_ETAG_LEN + 1];
    db_jobcache_etag(etag, json, strlen(json));
    db_jobcache_put(c, db_jobcache_ticket(c, id), id, team, json, strlen(json), etag);
}

/* The cached document of id for team, or NULL (new). */
static char *lookup(struct db_jobcache *c, const char *id, const char *team)
{
    char *json = NULL, etag[DB_JOBCACHE_ETAG_LEN + 1];
    size_t len = 0;
    if (!db_jobcache_get(c, id, team, &json, &len, etag))
        return NULL;
    cr_assert_eq(len, strlen(json));
    char want[DB_JOBCACHE_ETAG_LEN + 1];
    db_jobcache_etag(want, json, len);
    cr_assert_str_eq(etag, want, "the etag stored is the document's");
    return json;
}

static int cached(struct db_jobcache *c, const char *id, const char *team)
{
    char *json = lookup(c, id, team);
    free(json);
    return json != NULL;
}

Test(jobcache, etag_is_a_quoted_hex_digest_that_changes_with_the_body)
{
    char a[DB_JOBCACHE_ETAG_LEN + 1], b[DB_JOBCACHE_ETAG_LEN + 1];
    db_jobcache_etag(a, "{\"status\":\"QUEUED\"}", 19);
    db_jobcache_etag(b, "{\"status\":\"RUNNING\"}", 20);
    cr_expect_eq(strlen(a), 34);
    cr_expect_eq(a[0], '"');
    cr_expect_eq(a[33], '"');
    cr_expect_eq(strspn(a + 1, "0123456789abcdef"), 32, "%s", a);
    cr_expect_str_neq(a, b);
}

Test(jobcache, a_stored_document_comes_back_to_its_team_and_admin_only)
{
    struct db_jobcache *c = live_cache(1 << 20);
    store(c, id1, "red", "{\"id\":1}");
    char *json = lookup(c, id1, "red");
    cr_assert_not_null(json);
    cr_expect_str_eq(json, "{\"id\":1}");
    free(json);
    cr_expect(cached(c, id1, NULL), "admin sees every team");
    cr_expect_not(cached(c, id1, "blue"), "another team's key gets nothing from the cache");
    cr_expect_not(cached(c, id2, NULL), "another job");

    store(c, id2, NULL, "{\"id\":2}");
    cr_expect(cached(c, id2, NULL));
    cr_expect_not(cached(c, id2, "red"), "a job of no team is not any team's");
    db_jobcache_free(c);
}

Test(jobcache, ids_are_matched_whatever_their_case)
{
    struct db_jobcache *c = live_cache(1 << 20);
    store(c, "019593E4-2FF5-7E81-9A4B-C2D3E4F5A6B7", "red", "{}");
    cr_expect(cached(c, id1, "red"));
    db_jobcache_forget(c, id1);
    cr_expect_not(cached(c, "019593E4-2FF5-7E81-9A4B-C2D3E4F5A6B7", "red"),
                  "job_changes' lowercase id drops an uppercase lookup's copy");
    db_jobcache_free(c);
}

Test(jobcache, serves_and_stores_nothing_while_not_live)
{
    struct db_jobcache *c = NULL;
    cr_assert_eq(db_jobcache_new(&c, 1 << 20), 0);
    store(c, id1, "red", "{}");
    cr_expect_not(cached(c, id1, "red"), "a new cache waits for its first poll");
    db_jobcache_set_live(c, 1);
    store(c, id1, "red", "{}");
    cr_expect(cached(c, id1, "red"));
    db_jobcache_set_live(c, 0);
    db_jobcache_set_live(c, 1);
    cr_expect_not(cached(c, id1, "red"), "a lost connection empties the cache");
    struct db_jobcache_stats st;
    db_jobcache_stats(c, &st);
    cr_expect_eq(st.entries, 0);
    cr_expect_eq(st.bytes, 0);
    db_jobcache_free(c);
}

Test(jobcache, a_change_during_a_read_keeps_the_read_out)
{
    struct db_jobcache *c = live_cache(1 << 20);
    uint64_t t = db_jobcache_ticket(c, id1); /* the read begins */
    db_jobcache_forget(c, id1);              /* a change is reported first */
    char etag[DB_JOBCACHE_ETAG_LEN + 1];
    db_jobcache_etag(etag, "{\"old\":1}", 9);
    db_jobcache_put(c, t, id1, "red", "{\"old\":1}", 9, etag);
    cr_expect_not(cached(c, id1, "red"), "the old copy was not stored");

    t = db_jobcache_ticket(c, id1);
    db_jobcache_flush(c);
    db_jobcache_put(c, t, id1, "red", "{\"old\":1}", 9, etag);
    cr_expect_not(cached(c, id1, "red"), "nor across a flush");

    t = db_jobcache_ticket(c, id1);
    db_jobcache_forget(c, id2); /* another job, most likely another stripe */
    db_jobcache_put(c, t, id1, "red", "{\"old\":1}", 9, etag);
    cr_expect(cached(c, id1, "red"), "another job's change does not matter");
    db_jobcache_free(c);
}

Test(jobcache, stays_within_its_bytes_dropping_the_least_recently_used)
{
    enum { BOUND = 64 * 1024 };
    struct db_jobcache *c = live_cache(BOUND);
    char body[1024];
    memset(body, 'x', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    char ids[200][37];
    for (int i = 0; i < 200; i++) {
        snprintf(ids[i], sizeof(ids[i]), "019593e4-2ff5-7e81-9a4b-%012d", i);
        store(c, ids[i], "red", body);
        cr_expect(cached(c, ids[0], "red"), "the first one, read after every store, stays (%d)", i);
        struct db_jobcache_stats st;
        db_jobcache_stats(c, &st);
        cr_assert_leq(st.bytes, BOUND, "%zu bytes held after %d stores", st.bytes, i + 1);
    }
    struct db_jobcache_stats st;
    db_jobcache_stats(c, &st);
    cr_expect_gt(st.evictions, 100);
    cr_expect_gt(st.entries, 40, "most of the bound holds documents: %zu", st.entries);
    cr_expect_not(cached(c, ids[1], "red"), "the least recently used went first");
    cr_expect(cached(c, ids[199], "red"));

    char *big = malloc(BOUND / 8 + 1);
    memset(big, 'y', BOUND / 8);
    big[BOUND / 8] = '\0';
    store(c, id1, "red", big);
    cr_expect_not(cached(c, id1, "red"), "a document over an eighth of the bound is not kept");
    free(big);
    db_jobcache_free(c);
}
