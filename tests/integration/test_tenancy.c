/*
 * Tenancy and request limits over real HTTP against the real binary and
 * PostgreSQL, written as the attacks they stop: a key of one team reading,
 * listing, cancelling or reading the logs of another team's job (404, never
 * 403, and nothing changes); admin seeing every team and filtering by one; a
 * key past its request rate (429 with Retry-After); and a flood of random
 * bearer tokens from one address, which stops costing database queries.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/harness.h"

static struct th_gw gw;
static char db[1024];
static char red[128], red2[128], blue[128], admin[128], slow[128]; /* "Authorization: ..." */

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
                         "MLGW_AUTH_FAILURES_PER_MINUTE=20", NULL};
    th_gw_start(&gw, db, env);
    const char *r1[] = {"--name", "red-ci", "--scopes", "jobs:read,jobs:write",
                        "--team", "red",    NULL};
    const char *r2[] = {"--name", "red-reader", "--scopes", "jobs:read", "--team", "red", NULL};
    const char *b1[] = {"--name", "blue-ci", "--scopes", "jobs:read,jobs:write",
                        "--team", "blue",    NULL};
    const char *a1[] = {"--name", "ops", "--scopes", "admin", NULL};
    const char *s1[] = {"--name", "slow", "--scopes", "jobs:read", "--team", "green",
                        "--rate", "1",    "--burst",  "3",         NULL};
    bearer(red, r1);
    bearer(red2, r2);
    bearer(blue, b1);
    bearer(admin, a1);
    bearer(slow, s1);
}

static void teardown(void)
{
    cr_expect_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

TestSuite(tenancy, .init = setup, .fini = teardown);

static void call(struct th_resp *r, const char *method, const char *auth, const char *path,
                 const char *body)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    const char *h[] = {"Content-Type: application/json", auth, NULL};
    cr_assert_eq(th_http(r, method, url, h, body, body ? strlen(body) : 0), 0);
}

static void submit(char id[37], const char *auth)
{
    struct th_resp r;
    call(&r, "POST", auth, "/jobs",
         "{\"script_key\": \"jobs/x.py\", \"compute_type\": \"cpu\", \"dispatch\": \"local\", "
         "\"env\": {\"API_TOKEN\": \"team-secret\"}}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *j = th_resp_json(&r);
    snprintf(id, 37, "%s", th_str(j, "id"));
    json_decref(j);
    th_resp_dispose(&r);
}

static int list_has(const char *auth, const char *query, const char *id)
{
    struct th_resp r;
    char path[256];
    snprintf(path, sizeof(path), "/jobs%s", query);
    call(&r, "GET", auth, path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    int found = strstr(r.body, id) != NULL;
    th_resp_dispose(&r);
    return found;
}

Test(tenancy, another_teams_job_is_404_for_get_cancel_and_logs_and_stays_as_it_was)
{
    char id[37];
    submit(id, red);
    char path[128];
    static const char *const suffixes[] = {"", "/logs"};
    for (size_t i = 0; i < 2; i++) {
        struct th_resp r;
        snprintf(path, sizeof(path), "/jobs/%s%s", id, suffixes[i]);
        call(&r, "GET", blue, path, NULL);
        th_assert_problem(&r, 404);
        cr_expect(strstr(r.body, "team-secret") == NULL);
        th_resp_dispose(&r);
    }
    struct th_resp r;
    snprintf(path, sizeof(path), "/jobs/%s/cancel", id);
    call(&r, "POST", blue, path, NULL);
    th_assert_problem(&r, 404);
    th_resp_dispose(&r);
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT status FROM jobs WHERE id = '%s'", id);
    char *status = th_db_scalar(db, sql);
    cr_expect_str_neq(status, "CANCELLED", "another team's cancel changed nothing");
    free(status);

    /* The owning team, with another of its keys, sees it, env included. */
    snprintf(path, sizeof(path), "/jobs/%s", id);
    call(&r, "GET", red2, path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = th_resp_json(&r);
    cr_expect_str_eq(th_str(j, "team"), "red");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "env"), "API_TOKEN")),
                     "team-secret");
    json_decref(j);
    th_resp_dispose(&r);
    /* And can cancel it. */
    snprintf(path, sizeof(path), "/jobs/%s/cancel", id);
    call(&r, "POST", red, path, NULL);
    cr_expect_eq(r.status, 202, "%s", r.body);
    th_resp_dispose(&r);
}

Test(tenancy, lists_show_a_key_its_own_team_and_admin_every_team_or_the_one_it_names)
{
    char r_id[37], b_id[37];
    submit(r_id, red);
    submit(b_id, blue);
    cr_expect(list_has(red, "", r_id));
    cr_expect(!list_has(red, "", b_id), "red does not see blue's job");
    cr_expect(!list_has(red, "?team=blue", b_id), "nor by naming blue");
    cr_expect(list_has(blue, "", b_id));
    cr_expect(!list_has(blue, "", r_id));
    cr_expect(list_has(admin, "", r_id) && list_has(admin, "", b_id), "admin sees both");
    cr_expect(list_has(admin, "?team=blue", b_id));
    cr_expect(!list_has(admin, "?team=blue", r_id), "admin filters by team");
    struct th_resp r;
    call(&r, "GET", admin, "/jobs?team=no%20such", NULL);
    th_assert_problem(&r, 400);
    th_resp_dispose(&r);
}

/* The most a bucket of burst tokens, refilled per_minute a minute, lets
 * through in elapsed_ms: the burst, what was refilled meanwhile (rounded
 * up), and one for where the refills fall. */
static long bucket_most(long burst, long per_minute, int64_t elapsed_ms)
{
    return burst + (elapsed_ms * per_minute + 59999) / 60000 + 1;
}

Test(tenancy, a_key_past_its_rate_gets_429_with_retry_after_and_others_are_not_slowed)
{
    int limited = 0, ok = 0;
    char retry[32] = "";
    int64_t t0 = th_now_ms();
    for (int i = 0; i < 10; i++) {
        struct th_resp r;
        call(&r, "GET", slow, "/jobs?limit=1", NULL);
        if (r.status == 429) {
            limited++;
            char *ra = th_resp_header(&r, "Retry-After");
            cr_assert_not_null(ra);
            snprintf(retry, sizeof(retry), "%s", ra);
            free(ra);
            th_assert_problem(&r, 429);
        } else {
            cr_assert_eq(r.status, 200, "%s", r.body);
            ok++;
        }
        th_resp_dispose(&r);
    }
    int64_t took = th_now_ms() - t0;
    long most = bucket_most(3, 60, took); /* --burst 3 --rate 1 */
    cr_expect(ok >= 3 && ok <= most,
              "the burst of 3 (plus refill) went through: %d of at most %ld in %lld ms", ok, most,
              (long long)took);
    cr_expect(limited >= 10 - most, "the rest were limited: %d", limited);
    cr_expect(atol(retry) >= 1, "Retry-After: %s", retry);
    struct th_resp r;
    call(&r, "GET", red2, "/jobs?limit=1", NULL);
    cr_expect_eq(r.status, 200, "another key is not limited");
    th_resp_dispose(&r);
}

Test(tenancy, random_bearer_tokens_from_one_address_stop_costing_queries)
{
    /* Each 401 was one lookup; past the address's budget (20 a minute) the
     * answer is 429 and nothing is looked up. */
    int unauthorized = 0, limited = 0;
    int64_t t0 = th_now_ms();
    for (int i = 0; i < 40; i++) {
        char auth[96];
        snprintf(auth, sizeof(auth), "Authorization: Bearer mlgw_guess_%d_%d", i, rand());
        struct th_resp r;
        call(&r, "GET", auth, "/jobs", NULL);
        if (r.status == 401)
            unauthorized++;
        else if (r.status == 429)
            limited++;
        else
            cr_assert_fail("unexpected %ld: %s", r.status, r.body);
        th_resp_dispose(&r);
    }
    int64_t took = th_now_ms() - t0;
    long most = bucket_most(20, 20, took); /* MLGW_AUTH_FAILURES_PER_MINUTE=20 */
    cr_expect(unauthorized >= 20 && unauthorized <= most,
              "the address's budget: %d, at most %ld in %lld ms", unauthorized, most,
              (long long)took);
    cr_expect_eq(unauthorized + limited, 40, "then 429 without a lookup");
    /* A key this address has not yet had verified waits too; nothing leaks. */
    struct th_resp r;
    call(&r, "GET", red2, "/jobs", NULL);
    cr_expect_eq(r.status, 429, "%s", r.body);
    th_resp_dispose(&r);
    char *log = th_gw_log(&gw);
    cr_expect(log != NULL && strstr(log, "mlgw_guess_") == NULL, "tokens are never logged");
    free(log);
}
