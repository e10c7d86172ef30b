/*
 * test_router.c — unit tests for server/router.c: path matching against a
 * static route table, parameter extraction and lookup by name (rt_param in
 * server/http.c), 405 method sets and the method name/bit helpers.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/err.h"
#include "server/http.h"

static const struct rt_route routes[] = {
    {"/healthz", RT_GET, RT_BODY_NONE, NULL, 0},                   /* 0 */
    {"/jobs", RT_GET, RT_BODY_NONE, NULL, 0},                      /* 1 */
    {"/jobs", RT_POST, RT_BODY_JSON, NULL, 0},                     /* 2 */
    {"/jobs/{id}", RT_GET | RT_DELETE, RT_BODY_NONE, NULL, 0},     /* 3 */
    {"/jobs/{id}/cancel", RT_POST, RT_BODY_NONE, NULL, 0},         /* 4 */
    {"/jobs/{id}/runs/{run}", RT_GET, RT_BODY_NONE, NULL, 0},      /* 5 */
    {"/", RT_GET, RT_BODY_NONE, NULL, 0},                          /* 6 */
    {"/sns/{topic}", RT_POST | RT_OPTIONS, RT_BODY_TEXT, NULL, 0}, /* 7 */
};

static struct srv_match m;

static enum srv_match_result match(unsigned method, const char *path)
{
    return srv_route_match(&m, routes, GW_ARRAY_LEN(routes), method, path);
}

/* rt_param reads a request: copy the match into one, as the daemon does. */
static const char *param(const char *name)
{
    static struct rt_request req;
    memset(&req, 0, sizeof(req));
    req.nparams = m.nparams;
    for (int i = 0; i < m.nparams; i++) {
        req.params[i].name = m.params[i].name;
        memcpy(req.params[i].value, m.params[i].value, sizeof(req.params[i].value));
    }
    return rt_param(&req, name);
}

/* ---- matches ------------------------------------------------------------ */

Test(server_router, literal_path_matches_its_route_exactly)
{
    cr_assert_eq(match(RT_GET, "/healthz"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &routes[0]);
    cr_assert_eq(m.path_route, &routes[0]);
    cr_assert_eq(m.nparams, 0);
}

Test(server_router, root_path_matches_only_the_root_route)
{
    cr_assert_eq(match(RT_GET, "/"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &routes[6]);
}

Test(server_router, head_is_accepted_wherever_get_is)
{
    cr_assert_eq(match(RT_HEAD, "/healthz"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &routes[0]);
    cr_assert_eq(match(RT_HEAD, "/jobs/j1"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &routes[3]);
}

Test(server_router, same_pattern_with_another_method_picks_the_later_route)
{
    cr_assert_eq(match(RT_POST, "/jobs"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &routes[2]);
    /* path_route is the first route whose pattern fits, whatever the method. */
    cr_assert_eq(m.path_route, &routes[1]);
    cr_assert_eq(match(RT_GET, "/jobs"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &routes[1]);
}

Test(server_router, parameter_segment_matches_one_nonempty_segment)
{
    cr_assert_eq(match(RT_GET, "/jobs/abc-123"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &routes[3]);
    cr_assert_eq(m.nparams, 1);
    cr_assert_str_eq(m.params[0].value, "abc-123");
    cr_assert_eq(strncmp(m.params[0].name, "id}", 3), 0, "name is %s", m.params[0].name);
}

Test(server_router, parameter_names_point_into_the_pattern)
{
    cr_assert_eq(match(RT_POST, "/jobs/j-42/cancel"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &routes[4]);
    cr_assert_eq(m.nparams, 1);
    cr_assert_str_eq(m.params[0].value, "j-42");
    cr_assert_str_eq(m.params[0].name, "id}/cancel");
    cr_assert_eq(m.params[0].name, routes[4].pattern + strlen("/jobs/{"));
}

Test(server_router, parameters_are_found_by_their_exact_name)
{
    cr_assert_eq(match(RT_POST, "/jobs/j-42/cancel"), SRV_MATCH_OK);
    cr_assert_str_eq(param("id"), "j-42");
    cr_assert_null(param("i"), "a prefix of the name must not match");
    cr_assert_null(param("id}"));
    cr_assert_null(param("idx"));
    cr_assert_null(param("cancel"));
}

Test(server_router, two_parameters_are_extracted_in_order_and_by_name)
{
    cr_assert_eq(match(RT_GET, "/jobs/j1/runs/r7"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &routes[5]);
    cr_assert_eq(m.nparams, 2);
    cr_assert_str_eq(m.params[0].value, "j1");
    cr_assert_str_eq(m.params[1].value, "r7");
    cr_assert_str_eq(m.params[1].name, "run}");
    cr_assert_str_eq(param("id"), "j1");
    cr_assert_str_eq(param("run"), "r7");
    cr_assert_null(param("runs"));
}

Test(server_router, parameter_values_are_copied_verbatim_without_decoding)
{
    cr_assert_eq(match(RT_GET, "/jobs/a%2Fb.c~d"), SRV_MATCH_OK);
    cr_assert_str_eq(m.params[0].value, "a%2Fb.c~d");
}

Test(server_router, parameter_of_exactly_256_characters_matches)
{
    char path[6 + RT_PARAM_MAX + 1];
    memcpy(path, "/jobs/", 6);
    memset(path + 6, 'x', RT_PARAM_MAX);
    path[6 + RT_PARAM_MAX] = '\0';
    cr_assert_eq(match(RT_GET, path), SRV_MATCH_OK);
    cr_assert_eq(strlen(m.params[0].value), RT_PARAM_MAX);
    cr_assert_str_eq(m.params[0].value, path + 6);
}

Test(server_router, parameter_longer_than_256_characters_does_not_match)
{
    char path[6 + RT_PARAM_MAX + 2];
    memcpy(path, "/jobs/", 6);
    memset(path + 6, 'x', RT_PARAM_MAX + 1);
    path[6 + RT_PARAM_MAX + 1] = '\0';
    cr_assert_eq(match(RT_GET, path), SRV_MATCH_NO_ROUTE);
    cr_assert_null(m.route);
}

Test(server_router, more_parameters_than_the_limit_do_not_match)
{
    static const struct rt_route many[] = {
        {"/{a}/{b}/{c}/{d}", RT_GET, RT_BODY_NONE, NULL, 0},
        {"/{a}/{b}/{c}/{d}/{e}", RT_GET, RT_BODY_NONE, NULL, 0},
    };
    cr_assert_eq(srv_route_match(&m, many, 2, RT_GET, "/1/2/3/4"), SRV_MATCH_OK);
    cr_assert_eq(m.nparams, RT_MAX_PARAMS);
    cr_assert_str_eq(m.params[3].value, "4");
    cr_assert_eq(srv_route_match(&m, many, 2, RT_GET, "/1/2/3/4/5"), SRV_MATCH_NO_ROUTE);
}

Test(server_router, the_first_fitting_route_wins_over_a_later_literal)
{
    static const struct rt_route order[] = {
        {"/jobs/{id}", RT_GET, RT_BODY_NONE, NULL, 0},
        {"/jobs/latest", RT_GET, RT_BODY_NONE, NULL, 0},
    };
    cr_assert_eq(srv_route_match(&m, order, 2, RT_GET, "/jobs/latest"), SRV_MATCH_OK);
    cr_assert_eq(m.route, &order[0]);
    cr_assert_str_eq(m.params[0].value, "latest");
}

/* ---- paths that must not match ------------------------------------------ */

Test(server_router, trailing_slash_does_not_match)
{
    cr_assert_eq(match(RT_GET, "/healthz/"), SRV_MATCH_NO_ROUTE);
    cr_assert_eq(match(RT_GET, "/jobs/"), SRV_MATCH_NO_ROUTE);
    cr_assert_eq(match(RT_GET, "/jobs/j1/"), SRV_MATCH_NO_ROUTE);
    cr_assert_eq(match(RT_POST, "/jobs/j1/cancel/"), SRV_MATCH_NO_ROUTE);
}

Test(server_router, empty_segment_does_not_match_a_parameter)
{
    cr_assert_eq(match(RT_POST, "/jobs//cancel"), SRV_MATCH_NO_ROUTE);
    cr_assert_eq(match(RT_GET, "/jobs//runs/r1"), SRV_MATCH_NO_ROUTE);
    cr_assert_eq(match(RT_GET, "/jobs/j1/runs/"), SRV_MATCH_NO_ROUTE);
}

Test(server_router, parameter_does_not_span_a_slash)
{
    cr_assert_eq(match(RT_GET, "/jobs/a/b"), SRV_MATCH_NO_ROUTE);
    cr_assert_eq(match(RT_DELETE, "/jobs/a/b"), SRV_MATCH_NO_ROUTE);
}

Test(server_router, unknown_paths_are_no_route_with_nothing_allowed)
{
    static const char *const paths[] = {
        "/nope", "/healthzz", "/health",          "/Jobs", "/jobsx", "//jobs",
        "",      "jobs",      "/jobs/j1/cancelx",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(paths); i++) {
        cr_assert_eq(match(RT_GET, paths[i]), SRV_MATCH_NO_ROUTE, "path \"%s\"", paths[i]);
        cr_assert_null(m.route, "path \"%s\"", paths[i]);
        cr_assert_null(m.path_route, "path \"%s\"", paths[i]);
        cr_assert_eq(m.allowed, 0, "path \"%s\"", paths[i]);
        cr_assert_eq(m.nparams, 0, "path \"%s\"", paths[i]);
    }
}

Test(server_router, empty_route_table_matches_nothing)
{
    cr_assert_eq(srv_route_match(&m, routes, 0, RT_GET, "/healthz"), SRV_MATCH_NO_ROUTE);
    cr_assert_null(m.route);
}

/* ---- wrong method --------------------------------------------------------- */

Test(server_router, wrong_method_reports_the_allowed_methods_with_head_implied)
{
    cr_assert_eq(match(RT_DELETE, "/healthz"), SRV_MATCH_NO_METHOD);
    cr_assert_null(m.route);
    cr_assert_eq(m.path_route, &routes[0]);
    cr_assert_eq(m.allowed, RT_GET | RT_HEAD);
}

Test(server_router, wrong_method_allows_the_union_over_every_route_of_the_path)
{
    cr_assert_eq(match(RT_PUT, "/jobs"), SRV_MATCH_NO_METHOD);
    cr_assert_eq(m.allowed, RT_GET | RT_HEAD | RT_POST);
    cr_assert_eq(m.path_route, &routes[1]);
    cr_assert_eq(match(RT_PATCH, "/jobs/j1"), SRV_MATCH_NO_METHOD);
    cr_assert_eq(m.allowed, RT_GET | RT_HEAD | RT_DELETE);
}

Test(server_router, head_is_not_implied_without_get)
{
    cr_assert_eq(match(RT_GET, "/jobs/j1/cancel"), SRV_MATCH_NO_METHOD);
    cr_assert_eq(m.allowed, RT_POST);
    cr_assert_eq(match(RT_HEAD, "/jobs/j1/cancel"), SRV_MATCH_NO_METHOD);
    cr_assert_eq(m.allowed, RT_POST);
    cr_assert_eq(match(RT_GET, "/sns/t"), SRV_MATCH_NO_METHOD);
    cr_assert_eq(m.allowed, RT_POST | RT_OPTIONS);
}

Test(server_router, unknown_method_is_no_method_on_a_known_path)
{
    cr_assert_eq(match(0, "/healthz"), SRV_MATCH_NO_METHOD);
    cr_assert_eq(m.allowed, RT_GET | RT_HEAD);
}

Test(server_router, a_match_leaves_no_stale_state_from_an_earlier_call)
{
    cr_assert_eq(match(RT_GET, "/jobs/j1/runs/r7"), SRV_MATCH_OK);
    cr_assert_eq(match(RT_GET, "/nope"), SRV_MATCH_NO_ROUTE);
    cr_assert_eq(m.nparams, 0);
    cr_assert_null(m.route);
    cr_assert_eq(match(RT_GET, "/healthz"), SRV_MATCH_OK);
    cr_assert_eq(m.nparams, 0);
}

/* ---- method helpers ------------------------------------------------------ */

Test(server_router, methods_format_lists_bits_in_canonical_order)
{
    char out[128];
    srv_methods_format(out, sizeof(out), RT_OPTIONS | RT_HEAD | RT_GET);
    cr_assert_str_eq(out, "GET, HEAD, OPTIONS");
    srv_methods_format(out, sizeof(out), RT_POST);
    cr_assert_str_eq(out, "POST");
    srv_methods_format(out, sizeof(out),
                       RT_GET | RT_HEAD | RT_POST | RT_PUT | RT_DELETE | RT_PATCH | RT_OPTIONS);
    cr_assert_str_eq(out, "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS");
}

Test(server_router, methods_format_of_no_known_bits_is_empty)
{
    char out[16];
    memset(out, 'X', sizeof(out));
    srv_methods_format(out, sizeof(out), 0);
    cr_assert_str_eq(out, "");
    srv_methods_format(out, sizeof(out), 1u << 20);
    cr_assert_str_eq(out, "");
}

Test(server_router, methods_format_never_writes_past_outlen)
{
    char out[8];
    memset(out, 'X', sizeof(out));
    srv_methods_format(out, 0, RT_GET);
    cr_assert_eq(out[0], 'X', "outlen 0 must not write");
    char small[9] = {0};
    memset(small, 'X', sizeof(small));
    srv_methods_format(small, 6, RT_GET | RT_HEAD | RT_POST);
    cr_assert_lt(strlen(small), 6);
    cr_assert_eq(small[6], 'X');
    cr_assert_eq(strncmp(small, "GET", 3), 0);
}

Test(server_router, method_bit_and_name_round_trip)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    unsigned seen = 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(names); i++) {
        unsigned bit = srv_method_bit(names[i]);
        cr_assert_neq(bit, 0, "%s", names[i]);
        cr_assert_eq(bit & (bit - 1), 0, "%s is not a single bit", names[i]);
        cr_assert_eq(seen & bit, 0, "%s reuses a bit", names[i]);
        seen |= bit;
        cr_assert_str_eq(srv_method_name(bit), names[i]);
    }
    cr_assert_eq(srv_method_bit("GET"), RT_GET);
    cr_assert_eq(srv_method_bit("OPTIONS"), RT_OPTIONS);
}

Test(server_router, unknown_methods_have_no_bit_and_other_name)
{
    static const char *const names[] = {"get", "TRACE", "CONNECT", "", "GETX", "GE", "PROPFIND"};
    for (size_t i = 0; i < GW_ARRAY_LEN(names); i++)
        cr_assert_eq(srv_method_bit(names[i]), 0, "\"%s\"", names[i]);
    cr_assert_str_eq(srv_method_name(0), "OTHER");
    cr_assert_str_eq(srv_method_name(RT_GET | RT_POST), "OTHER");
    cr_assert_str_eq(srv_method_name(1u << 20), "OTHER");
}
