/*
 * The gateway's HTTP surface, over loopback against the real binary and a
 * real PostgreSQL: health, readiness, metrics, routing errors, request ids.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/harness.h"

static struct th_gw gw;
static char db[1024];
static char auth[128]; /* "Authorization: Bearer <a jobs:read key>" */

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    th_gw_start(&gw, db, NULL);
    char key[96];
    th_key_create(key, sizeof(key), db, "metrics-reader", "jobs:read");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
}

static void teardown(void)
{
    cr_expect_eq(th_gw_stop(&gw, SIGTERM, 15), 0, "gateway exits 0 on SIGTERM");
}

static void get(struct th_resp *r, const char *path, const char *const *headers)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    cr_assert_eq(th_http(r, "GET", url, headers, NULL, 0), 0, "GET %s", path);
}

TestSuite(http, .init = setup, .fini = teardown);

Test(http, healthz_answers_ok_json)
{
    struct th_resp r;
    get(&r, "/healthz", NULL);
    cr_assert_eq(r.status, 200);
    char *ct = th_resp_header(&r, "Content-Type");
    cr_assert_str_eq(ct, "application/json; charset=utf-8");
    free(ct);
    json_t *j = th_resp_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    th_resp_dispose(&r);
}

Test(http, readyz_is_ready_when_database_answers_and_migrations_are_current)
{
    struct th_resp r;
    get(&r, "/readyz", NULL);
    cr_assert_eq(r.status, 200, "body: %s", r.body);
    json_t *j = th_resp_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ready");
    json_decref(j);
    th_resp_dispose(&r);
}

Test(http, unknown_route_is_problem_json_404)
{
    struct th_resp r;
    get(&r, "/no/such/thing", NULL);
    th_assert_problem(&r, 404);
    json_t *j = th_resp_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "instance")), "/no/such/thing");
    json_decref(j);
    th_resp_dispose(&r);
}

Test(http, wrong_method_is_405_with_allow)
{
    struct th_resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz", gw.base);
    cr_assert_eq(th_http(&r, "DELETE", url, NULL, NULL, 0), 0);
    th_assert_problem(&r, 405);
    char *allow = th_resp_header(&r, "Allow");
    cr_assert(allow != NULL && strstr(allow, "GET") != NULL && strstr(allow, "DELETE") == NULL,
              "Allow: %s", allow ? allow : "(none)");
    free(allow);
    th_resp_dispose(&r);
}

Test(http, unknown_method_is_405_not_a_crash)
{
    struct th_resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz", gw.base);
    cr_assert_eq(th_http(&r, "BREW", url, NULL, NULL, 0), 0);
    th_assert_problem(&r, 405);
    th_resp_dispose(&r);
}

Test(http, head_is_get_without_body_and_options_lists_methods)
{
    struct th_resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz", gw.base);
    cr_assert_eq(th_http(&r, "HEAD", url, NULL, NULL, 0), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "");
    th_resp_dispose(&r);
    cr_assert_eq(th_http(&r, "OPTIONS", url, NULL, NULL, 0), 0);
    cr_assert_eq(r.status, 204);
    char *allow = th_resp_header(&r, "Allow");
    cr_assert(allow != NULL && strstr(allow, "GET") && strstr(allow, "OPTIONS"));
    free(allow);
    th_resp_dispose(&r);
}

Test(http, sane_request_id_is_echoed)
{
    struct th_resp r;
    const char *h[] = {"X-Request-Id: trace-abc_123.4", NULL};
    get(&r, "/healthz", h);
    char *rid = th_resp_header(&r, "X-Request-Id");
    cr_assert_str_eq(rid, "trace-abc_123.4");
    free(rid);
    th_resp_dispose(&r);
    char *log = th_gw_log(&gw);
    cr_assert(strstr(log, "\"request_id\":\"trace-abc_123.4\"") != NULL,
              "the access log line carries the request id");
    free(log);
}

Test(http, insane_request_id_is_replaced_by_a_generated_one)
{
    char longid[200];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", longid);
    const char *cases[] = {"X-Request-Id: has space", "X-Request-Id: quote\"inject", hdr};
    for (size_t i = 0; i < 3; i++) {
        struct th_resp r;
        const char *h[] = {cases[i], NULL};
        get(&r, "/no-route", h);
        th_assert_problem(&r, 404);
        char *rid = th_resp_header(&r, "X-Request-Id");
        cr_assert(rid != NULL && strlen(rid) == 32 && strspn(rid, "0123456789abcdef") == 32,
                  "generated id, got %s", rid ? rid : "(none)");
        free(rid);
        th_resp_dispose(&r);
    }
}

Test(http, every_response_gets_a_distinct_request_id)
{
    struct th_resp a, b;
    get(&a, "/healthz", NULL);
    get(&b, "/healthz", NULL);
    char *ra = th_resp_header(&a, "X-Request-Id"), *rb = th_resp_header(&b, "X-Request-Id");
    cr_assert(ra && rb && strcmp(ra, rb) != 0);
    free(ra);
    free(rb);
    th_resp_dispose(&a);
    th_resp_dispose(&b);
}

Test(http, metrics_count_requests_by_route_method_status_and_show_the_pool)
{
    struct th_resp r;
    get(&r, "/healthz", NULL);
    th_resp_dispose(&r);
    get(&r, "/missing", NULL);
    th_resp_dispose(&r);
    get(&r, "/readyz", NULL);
    th_resp_dispose(&r);
    get(&r, "/metrics", NULL);
    th_assert_problem(&r, 401);
    th_resp_dispose(&r);
    const char *h[] = {auth, NULL};
    get(&r, "/metrics", h);
    cr_assert_eq(r.status, 200);
    char *ct = th_resp_header(&r, "Content-Type");
    cr_assert(ct && strncmp(ct, "text/plain; version=0.0.4", 25) == 0);
    free(ct);
    cr_assert(
        strstr(r.body,
               "mlgw_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1\n"),
        "%s", r.body);
    cr_assert(strstr(r.body, "mlgw_http_requests_total{route=\"unmatched\",method=\"GET\","
                             "status=\"404\"} 1\n"));
    cr_assert(strstr(r.body, "mlgw_http_request_duration_seconds_bucket{route=\"/readyz\","
                             "method=\"GET\",le=\"+Inf\"} 1\n"));
    cr_assert(strstr(r.body, "mlgw_db_pool_connections{state=\"size\"} 10\n"));
    cr_assert(strstr(r.body, "mlgw_db_pool_connections{state=\"open\"} 1\n"),
              "readyz and the key lookup shared one pooled connection: %s", r.body);
    cr_assert(strstr(r.body, "mlgw_db_pool_waiting 0\n"));
    th_resp_dispose(&r);
}

Test(http, start_up_log_shows_config_without_the_database_password)
{
    char *pw = th_db_scalar(db, "SELECT 1"); /* proves the URL works */
    cr_assert(pw != NULL);
    free(pw);
    char *log = th_gw_log(&gw);
    cr_assert(strstr(log, "\"msg\":\"starting\",\"config\":{") != NULL);
    /* The shared cluster's password is in db as password='...'. */
    const char *p = strstr(db, "password='");
    if (p != NULL) {
        char secret[128];
        size_t n = strcspn(p + 10, "'");
        cr_assert(n > 0 && n < sizeof(secret));
        memcpy(secret, p + 10, n);
        secret[n] = '\0';
        cr_assert(strstr(log, secret) == NULL, "the password never reaches the log");
        cr_assert(strstr(log, "password=***") != NULL, "the URL is shown redacted");
    }
    free(log);
}

Test(http, log_lines_are_json_objects)
{
    struct th_resp r;
    get(&r, "/healthz", NULL);
    th_resp_dispose(&r);
    char *log = th_gw_log(&gw);
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        cr_assert(j != NULL, "not JSON: %s", line);
        cr_assert(json_is_string(json_object_get(j, "ts")));
        cr_assert(json_is_string(json_object_get(j, "level")));
        cr_assert(json_is_string(json_object_get(j, "msg")));
        json_decref(j);
        lines++;
    }
    cr_assert(lines >= 3);
    free(log);
}
