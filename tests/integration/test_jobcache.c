/*
 * The job cache and ETags over real HTTP, with two gateways on one real
 * PostgreSQL: GET /jobs/{id} answers with an ETag and 304 to If-None-Match;
 * a second read of a job is served from memory (the cache's hit counter);
 * a change made through gateway A, or straight in the database, is seen
 * through gateway B within CHANGE_BOUND_MS; the gateway that made a change
 * sees it at once; another team's key still gets 404 from a gateway holding
 * the job; and when the cache's polling connection is killed, a change made
 * while it was down is seen all the same.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "../harness/harness.h"
#include "db/jobcache.h"
#include "db/pool.h"

/* README.md, "Consistency across gateways": the bound this test holds to. */
enum { CHANGE_BOUND_MS = 1000 };

static struct th_gw a, b;
static char db[1024];
static char red[128], blue[128], admin[128]; /* "Authorization: ..." */

static void bearer(char *out, const char *const *args)
{
    char key[96];
    th_key_create_args(key, sizeof(key), db, args);
    snprintf(out, 128, "Authorization: Bearer %s", key);
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    const char *env[] = {"MLGW_AUTH_CACHE_SECONDS=0", "MLGW_DISPATCH_WORKERS=0",
                         "MLGW_RATE_LIMIT=0", NULL};
    th_gw_start(&a, db, env);
    th_gw_start(&b, db, env);
    const char *r1[] = {"--name", "red", "--scopes", "jobs:read,jobs:write", "--team", "red", NULL};
    const char *b1[] = {"--name", "blue", "--scopes", "jobs:read,jobs:write",
                        "--team", "blue", NULL};
    const char *a1[] = {"--name", "ops", "--scopes", "admin", NULL};
    bearer(red, r1);
    bearer(blue, b1);
    bearer(admin, a1);
}

static void teardown(void)
{
    cr_expect_eq(th_gw_stop(&a, SIGTERM, 15), 0);
    cr_expect_eq(th_gw_stop(&b, SIGTERM, 15), 0);
}

TestSuite(jobcache, .init = setup, .fini = teardown);

/* GET /jobs/{id} on gw, with If-None-Match when inm is not NULL. */
static void get_job(struct th_resp *r, const struct th_gw *gw, const char *auth, const char *id,
                    const char *inm)
{
    char url[160], h_inm[128];
    snprintf(url, sizeof(url), "%s/jobs/%s", gw->base, id);
    snprintf(h_inm, sizeof(h_inm), "If-None-Match: %s", inm ? inm : "");
    const char *h[] = {auth, inm ? h_inm : NULL, NULL};
    cr_assert_eq(th_http(r, "GET", url, h, NULL, 0), 0);
}

static void submit(char id[37], const struct th_gw *gw, const char *auth)
{
    th_job_submit(id, gw, auth,
                  "{\"script_key\": \"jobs/x.py\", \"compute_type\": \"cpu\", "
                  "\"dispatch\": \"local\"}");
}

/* The job's status and ETag as gw answers them now. */
static void read_job(char status[32], char etag[40], const struct th_gw *gw, const char *id)
{
    struct th_resp r;
    get_job(&r, gw, red, id, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = th_resp_json(&r);
    snprintf(status, 32, "%s", th_str(j, "status"));
    json_decref(j);
    char *e = th_resp_header(&r, "ETag");
    cr_assert_not_null(e);
    snprintf(etag, 40, "%s", e);
    free(e);
    th_resp_dispose(&r);
}

/* One counter of gw's GET /metrics. */
static long long metric(const struct th_gw *gw, const char *series)
{
    return (long long)th_metric(gw, admin, series);
}

/* Waits (up to 30 s) for gw's cache to be live: it has polled. */
static void wait_live(const struct th_gw *gw)
{
    for (int64_t end = th_deadline(30000);
         metric(gw, "mlgw_job_cache_live") != 1 && th_before(end);)
        th_sleep_ms(10);
    cr_assert_eq(metric(gw, "mlgw_job_cache_live"), 1, "the job cache never went live");
}

/* Polls gw until the job's status is want; the milliseconds it took. */
static long long time_until(const struct th_gw *gw, const char *id, const char *want)
{
    long long t0 = th_now_ms();
    char st[32], etag[40];
    for (;;) {
        read_job(st, etag, gw, id);
        if (strcmp(st, want) == 0 || th_now_ms() - t0 > 10000)
            break;
        th_sleep_ms(2);
    }
    cr_assert_str_eq(st, want, "never seen");
    return th_now_ms() - t0;
}

Test(jobcache, etag_and_if_none_match_give_304_without_a_body)
{
    char id[37];
    submit(id, &a, red);
    struct th_resp r;
    get_job(&r, &b, red, id, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *etag = th_resp_header(&r, "ETag");
    char *cc = th_resp_header(&r, "Cache-Control");
    cr_assert_not_null(etag);
    cr_expect_eq(strlen(etag), 34, "%s", etag);
    cr_expect_str_eq(cc ? cc : "", "no-cache");
    free(cc);
    th_resp_dispose(&r);

    get_job(&r, &b, red, id, etag);
    cr_expect_eq(r.status, 304);
    cr_expect_str_eq(r.body, "", "no body on 304");
    char *again = th_resp_header(&r, "ETag");
    cr_expect_str_eq(again ? again : "", etag);
    free(again);
    th_resp_dispose(&r);

    char list[128];
    snprintf(list, sizeof(list), "\"nope\", W/%s", etag);
    get_job(&r, &a, red, id, list);
    cr_expect_eq(r.status, 304, "a list naming the tag (weakly), through the other gateway");
    th_resp_dispose(&r);

    get_job(&r, &b, red, id, "\"00000000000000000000000000000000\"");
    cr_expect_eq(r.status, 200, "another tag gets the body");
    th_resp_dispose(&r);

    get_job(&r, &b, blue, id, etag);
    cr_expect_eq(r.status, 404, "another team learns nothing from a matching tag");
    th_resp_dispose(&r);
    free(etag);
}

Test(jobcache, a_cached_read_touches_no_database_and_other_teams_still_get_404)
{
    wait_live(&b);
    char id[37];
    submit(id, &a, red);
    char st[32], e1[40], e2[40];
    read_job(st, e1, &b, id);
    long long hits = metric(&b, "mlgw_job_cache_events_total{event=\"hit\"}");
    read_job(st, e2, &b, id);
    cr_expect_eq(metric(&b, "mlgw_job_cache_events_total{event=\"hit\"}"), hits + 1,
                 "the second read was served from memory");
    cr_expect_str_eq(e1, e2);

    struct th_resp r;
    get_job(&r, &b, blue, id, NULL);
    cr_expect_eq(r.status, 404, "another team's key, with the job cached: %s", r.body);
    th_resp_dispose(&r);
    get_job(&r, &b, admin, id, NULL);
    cr_expect_eq(r.status, 200, "admin sees every team");
    th_resp_dispose(&r);
}

Test(jobcache, a_change_through_gateway_a_is_seen_through_gateway_b_within_the_bound)
{
    wait_live(&a);
    wait_live(&b);
    char id[37];
    submit(id, &a, red);
    char st[32], before_a[40], before_b[40], e[40];
    read_job(st, before_a, &a, id); /* both gateways hold the job */
    read_job(st, before_b, &b, id);
    read_job(st, e, &b, id);
    cr_assert_str_eq(st, "QUEUED");

    char url[160];
    snprintf(url, sizeof(url), "%s/jobs/%s/cancel", a.base, id);
    const char *h[] = {red, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, NULL, 0), 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    th_resp_dispose(&r);

    read_job(st, e, &a, id);
    cr_expect_str_eq(st, "CANCELLED", "the gateway that made the change sees it at once");
    long long ms = time_until(&b, id, "CANCELLED");
    cr_expect_leq(ms, CHANGE_BOUND_MS, "seen through B after %lld ms", ms);
    cr_log_info("a cancel through A was seen through B after %lld ms", ms);

    get_job(&r, &b, red, id, before_b);
    cr_expect_eq(r.status, 200, "the old ETag no longer matches");
    th_resp_dispose(&r);
}

Test(jobcache, a_change_made_in_the_database_is_seen_within_the_bound)
{
    wait_live(&b);
    char id[37];
    submit(id, &a, red);
    char st[32], e[40];
    read_job(st, e, &b, id);
    read_job(st, e, &b, id);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE jobs SET status = 'FAILED', updated_at = now() WHERE id = '%s'", id);
    cr_assert_eq(th_db_exec(db, sql), 0);
    long long ms = time_until(&b, id, "FAILED");
    cr_expect_leq(ms, CHANGE_BOUND_MS, "seen after %lld ms", ms);
}

Test(jobcache, a_change_while_the_polling_connection_is_down_is_not_missed)
{
    wait_live(&b);
    char id[37];
    submit(id, &a, red);
    char st[32], e[40];
    read_job(st, e, &b, id);
    read_job(st, e, &b, id);
    long long flushes = metric(&b, "mlgw_job_cache_events_total{event=\"flush\"}");
    /* Both gateways' polling connections go, and the change is made meanwhile. */
    cr_assert_eq(th_db_exec(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = 'ml-gateway-jobcache' "
                                "AND datname = current_database()"),
                 0);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE jobs SET status = 'FAILED', updated_at = now() WHERE id = '%s'", id);
    cr_assert_eq(th_db_exec(db, sql), 0);
    long long ms = time_until(&b, id, "FAILED");
    cr_expect_leq(ms, CHANGE_BOUND_MS, "seen after %lld ms", ms);
    cr_expect_gt(metric(&b, "mlgw_job_cache_events_total{event=\"flush\"}"), flushes,
                 "the lost connection emptied the cache");
    wait_live(&b); /* and it came back */
    /* The change, if made after its new snapshot, may yet be reported and
     * take the job out again: read twice until the second read is a hit. */
    const char *hit = "mlgw_job_cache_events_total{event=\"hit\"}";
    long long hits = 0;
    for (int64_t end = th_deadline(10000); th_before(end); th_sleep_ms(50)) {
        read_job(st, e, &b, id);
        hits = metric(&b, hit);
        read_job(st, e, &b, id);
        if (metric(&b, hit) == hits + 1)
            break;
    }
    cr_expect_eq(metric(&b, hit), hits + 1, "serving from memory again");
    cr_expect_str_eq(st, "FAILED");
}

Test(jobcache, a_long_transaction_that_commits_late_is_still_seen)
{
    wait_live(&b);
    char id[37];
    submit(id, &a, red);
    char st[32], e[40];
    read_job(st, e, &b, id);
    PGconn *pg = PQconnectdb(db);
    cr_assert_eq(PQstatus(pg), CONNECTION_OK);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "BEGIN; UPDATE jobs SET status = 'FAILED', updated_at = now() WHERE id = '%s'", id);
    PGresult *r = PQexec(pg, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(pg));
    PQclear(r);
    th_sleep_ms(300); /* dozens of polls while the change is under way */
    read_job(st, e, &b, id);
    cr_expect_str_eq(st, "QUEUED", "not committed yet");
    r = PQexec(pg, "COMMIT");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(pg);
    long long ms = time_until(&b, id, "FAILED");
    cr_expect_leq(ms, CHANGE_BOUND_MS, "seen after %lld ms", ms);
}

Test(jobcache, the_janitor_trims_change_rows_of_transactions_ended_before_its_last_snapshot)
{
    char id[37];
    submit(id, &a, red);
    char sql[256];
    snprintf(sql, sizeof(sql), "UPDATE jobs SET status_reason = 'x' WHERE id = '%s'", id);
    cr_assert_eq(th_db_exec(db, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM job_changes WHERE job_id = '%s'", id);
    char *n = th_db_scalar(db, sql);
    cr_assert_str_eq(n, "1", "one row for the update (the new job's own rows are not kept)");
    free(n);

    struct db_pool *pool = NULL;
    struct db_pool_opts po = {.url = db, .size = 1};
    struct gw_err err = {0};
    cr_assert_eq(db_pool_new(&pool, &po, &err), 0);
    char snap[8192] = "";
    long deleted = -1;
    cr_assert_eq(db_job_changes_trim(&deleted, pool, snap, sizeof(snap), &err), 0, "%s", err.msg);
    cr_expect_eq(deleted, 0, "the first call only takes a snapshot");
    cr_expect_neq(snap[0], '\0');
    n = th_db_scalar(db, sql);
    cr_expect_str_eq(n, "1");
    free(n);
    /* The next call deletes what ended before the previous snapshot's xmin.
     * Transaction ids are the whole server's: a transaction of another test,
     * in another database, open at that snapshot holds xmin back, so call
     * again (each call a newer snapshot) until the row has gone. */
    long total = 0;
    int left = 1;
    for (int64_t end = th_deadline(30000); left && th_before(end);) {
        cr_assert_eq(db_job_changes_trim(&deleted, pool, snap, sizeof(snap), &err), 0, "%s",
                     err.msg);
        total += deleted;
        n = th_db_scalar(db, sql);
        left = n == NULL || strcmp(n, "0") != 0;
        free(n);
        if (left)
            th_sleep_ms(100);
    }
    cr_expect_geq(total, 1);
    cr_expect(!left, "rows of transactions ended before an earlier snapshot are gone");
    db_pool_free(pool);
}
