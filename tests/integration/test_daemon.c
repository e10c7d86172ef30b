/*
 * The request lifecycle of server/http.c with routes that take bodies, over
 * real HTTP on loopback: body limit before reading (413), content type (415),
 * strict JSON (400), path parameters. The daemon is the real one, started in
 * this process with a small route table of test handlers.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/harness.h"
#include "common/err.h"
#include "server/http.h"

static void echo(struct rt_request *req, struct rt_reply *out)
{
    json_t *body = NULL;
    if (rt_body_json(&body, req, out) != GW_OK)
        return;
    rt_reply_json(out, 200, json_pack("{s:o,s:s?}", "echo", body, "id", rt_param(req, "id")));
}

static void fail_conflict(struct rt_request *req, struct rt_reply *out)
{
    struct gw_err err = {0};
    gw_err_public(&err, GW_ECONFLICT, "job is already finished");
    rt_reply_error(req, out, GW_ECONFLICT, &err);
}

/* A conflict whose text came from the database: SQLSTATE and constraint. */
static void fail_db_conflict(struct rt_request *req, struct rt_reply *out)
{
    struct gw_err err = {0};
    gw_err_set(&err, GW_ECONFLICT, "database conflict (23505): duplicate key jobs_secret_pkey");
    rt_reply_error(req, out, GW_ECONFLICT, &err);
}

static void fail_db(struct rt_request *req, struct rt_reply *out)
{
    struct gw_err err = {0};
    gw_err_set(&err, GW_EDB, "SELECT secret_internal_detail FROM t");
    rt_reply_error(req, out, GW_EDB, &err);
}

static void fail_unavail(struct rt_request *req, struct rt_reply *out)
{
    rt_reply_error(req, out, GW_EUNAVAIL, NULL);
}

static const struct rt_route routes[] = {
    {"/echo", RT_POST, RT_BODY_JSON, echo, 0},
    {"/things/{id}/echo", RT_POST | RT_PUT, RT_BODY_JSON, echo, 0},
    {"/conflict", RT_POST, RT_BODY_NONE, fail_conflict, 0},
    {"/dbconflict", RT_POST, RT_BODY_NONE, fail_db_conflict, 0},
    {"/dberror", RT_GET, RT_BODY_NONE, fail_db, 0},
    {"/unavailable", RT_GET, RT_BODY_NONE, fail_unavail, 0},
};

static struct srv_http *http;
static char base[64];

static void setup(void)
{
    /* These routes are test fixtures, not the gateway's API: keep them out of
     * the OpenAPI contract log. */
    unsetenv("MLGW_CONTRACT_LOG");
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    struct srv_http_opts o = {
        .addr = (const struct sockaddr *)&sin,
        .addrlen = sizeof(sin),
        .threads = 2,
        .connection_limit = 64,
        .connection_timeout_s = 10,
        .max_body_bytes = 4096,
        .routes = routes,
        .nroutes = GW_ARRAY_LEN(routes),
        .app = NULL,
    };
    struct gw_err err = {0};
    cr_assert_eq(srv_http_start(&http, &o, &err), GW_OK, "%s", err.msg);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", srv_http_port(http));
}

static void teardown(void)
{
    srv_http_stop(http);
}

TestSuite(daemon, .init = setup, .fini = teardown);

static void post(struct th_resp *r, const char *path, const char *ctype, const char *body,
                 size_t len)
{
    char url[256], h[128];
    snprintf(url, sizeof(url), "%s%s", base, path);
    snprintf(h, sizeof(h), "Content-Type: %s", ctype);
    const char *hs[] = {h, NULL};
    cr_assert_eq(th_http(r, "POST", url, hs, body, len), 0);
}

Test(daemon, json_body_is_parsed_and_path_parameters_reach_the_handler)
{
    struct th_resp r;
    const char *b = "{\"a\": [1, 2, {\"b\": \"x\"}]}";
    post(&r, "/things/job-42/echo", "application/json; charset=utf-8", b, strlen(b));
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = th_resp_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "job-42");
    cr_assert_eq(json_array_size(json_object_get(json_object_get(j, "echo"), "a")), 3);
    json_decref(j);
    th_resp_dispose(&r);
}

Test(daemon, body_over_the_limit_is_413_before_it_is_read)
{
    size_t n = 1024 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    struct th_resp r;
    post(&r, "/echo", "application/json", big, n);
    th_assert_problem(&r, 413);
    th_resp_dispose(&r);
    free(big);
}

Test(daemon, chunked_body_over_the_limit_is_413)
{
    size_t n = 64 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    char url[256];
    snprintf(url, sizeof(url), "%s/echo", base);
    const char *hs[] = {"Content-Type: application/json", "Transfer-Encoding: chunked", NULL};
    struct th_resp r;
    th_http(&r, "POST", url, hs, big, n);
    th_assert_problem(&r, 413);
    th_resp_dispose(&r);
    free(big);
}

Test(daemon, huge_body_announced_with_expect_continue_is_refused_without_sending_it)
{
    size_t n = 32 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    char url[256];
    snprintf(url, sizeof(url), "%s/echo", base);
    const char *hs[] = {"Content-Type: application/json", "Expect: 100-continue", NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, hs, big, n), 0);
    th_assert_problem(&r, 413);
    cr_assert_lt(r.seconds, 5.0);
    th_resp_dispose(&r);
    free(big);
}

Test(daemon, a_small_body_with_the_wrong_type_is_read_and_answered_415)
{
    /* The body is drained before the 415, so the answer cannot be lost to a reset. */
    struct th_resp r;
    post(&r, "/echo", "text/plain", "{\"a\": 1}", 8);
    th_assert_problem(&r, 415);
    th_resp_dispose(&r);
    post(&r, "/echo", "application/json", "{\"a\": 1}", 8);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_dispose(&r);
}

Test(daemon, body_at_the_limit_is_accepted)
{
    size_t n = 4096;
    char *b = malloc(n + 1);
    memset(b, ' ', n);
    b[0] = '{';
    b[n - 1] = '}';
    b[n] = '\0';
    struct th_resp r;
    post(&r, "/echo", "application/json", b, n);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_dispose(&r);
    free(b);
}

Test(daemon, wrong_content_type_is_415)
{
    struct th_resp r;
    post(&r, "/echo", "text/plain", "{}", 2);
    th_assert_problem(&r, 415);
    th_resp_dispose(&r);
    post(&r, "/echo", "application/jsonx", "{}", 2);
    th_assert_problem(&r, 415);
    th_resp_dispose(&r);
}

Test(daemon, malformed_json_is_400_naming_the_position)
{
    struct th_resp r;
    post(&r, "/echo", "application/json", "{\"a\": }", 7);
    th_assert_problem(&r, 400);
    cr_assert(strstr(r.body, "line 1") != NULL, "%s", r.body);
    th_resp_dispose(&r);
}

Test(daemon, duplicate_keys_invalid_utf8_deep_nesting_and_non_objects_are_400)
{
    const char *bodies[] = {
        "{\"a\": 1, \"a\": 2}",
        "{\"a\": \"\xff\xfe\"}",
        "[1, 2]",
        "",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bodies); i++) {
        struct th_resp r;
        post(&r, "/echo", "application/json", bodies[i], strlen(bodies[i]));
        th_assert_problem(&r, 400);
        th_resp_dispose(&r);
    }
    char deep[200];
    size_t k = 0;
    deep[k++] = '{';
    deep[k++] = '"';
    deep[k++] = 'a';
    deep[k++] = '"';
    deep[k++] = ':';
    for (int i = 0; i < 40; i++)
        deep[k++] = '[';
    for (int i = 0; i < 40; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    struct th_resp r;
    post(&r, "/echo", "application/json", deep, k);
    th_assert_problem(&r, 400);
    cr_assert(strstr(r.body, "nesting") != NULL);
    th_resp_dispose(&r);
}

Test(daemon, brackets_inside_strings_do_not_count_as_nesting)
{
    char b[200] = "{\"a\": \"";
    size_t k = strlen(b);
    for (int i = 0; i < 60; i++)
        b[k++] = '[';
    b[k++] = '"';
    b[k++] = '}';
    struct th_resp r;
    post(&r, "/echo", "application/json", b, k);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_dispose(&r);
}

Test(daemon, error_codes_map_to_http_in_one_place_without_internal_detail)
{
    struct th_resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/conflict", base);
    th_http(&r, "POST", url, NULL, NULL, 0);
    th_assert_problem(&r, 409);
    cr_assert(strstr(r.body, "job is already finished") != NULL, "public text is the detail");
    th_resp_dispose(&r);

    snprintf(url, sizeof(url), "%s/dbconflict", base);
    th_http(&r, "POST", url, NULL, NULL, 0);
    th_assert_problem(&r, 409);
    cr_assert(strstr(r.body, "23505") == NULL && strstr(r.body, "jobs_secret_pkey") == NULL,
              "a database conflict's text never reaches a client: %s", r.body);
    th_resp_dispose(&r);

    snprintf(url, sizeof(url), "%s/dberror", base);
    th_http(&r, "GET", url, NULL, NULL, 0);
    th_assert_problem(&r, 500);
    cr_assert(strstr(r.body, "secret_internal_detail") == NULL, "SQL never reaches a client");
    th_resp_dispose(&r);

    snprintf(url, sizeof(url), "%s/unavailable", base);
    th_http(&r, "GET", url, NULL, NULL, 0);
    th_assert_problem(&r, 503);
    char *ra = th_resp_header(&r, "Retry-After");
    cr_assert(ra != NULL, "503 carries Retry-After");
    free(ra);
    th_resp_dispose(&r);
}

Test(daemon, post_without_body_to_a_json_route_is_400)
{
    struct th_resp r;
    char url[256];
    snprintf(url, sizeof(url), "%s/echo", base);
    th_http(&r, "POST", url, NULL, NULL, 0);
    th_assert_problem(&r, 400);
    th_resp_dispose(&r);
}

Test(daemon, a_port_in_use_is_named_in_one_error_and_nothing_says_port_0)
{
    /* The fixture's daemon holds a port: a second one cannot have it. */
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)srv_http_port(http))};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    struct srv_http_opts o = {
        .addr = (const struct sockaddr *)&sin,
        .addrlen = sizeof(sin),
        .threads = 1,
        .connection_limit = 8,
        .connection_timeout_s = 10,
        .max_body_bytes = 4096,
        .routes = routes,
        .nroutes = GW_ARRAY_LEN(routes),
    };
    struct srv_http *second = NULL;
    struct gw_err err = {0};
    cr_assert_eq(srv_http_start(&second, &o, &err), GW_EIO);
    char want[64];
    snprintf(want, sizeof(want), "port %u: ", srv_http_port(http));
    cr_assert(strstr(err.msg, want) != NULL && strstr(err.msg, "in use") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "port 0") == NULL, "%s", err.msg);
}
