/*
 * fuzz_router.c — the router over the gateway's real route table
 * (srv_route_match on rt_table) and the query values the routes parse.
 *
 * Input: "METHOD URL" (a space between; no space: all of it is the URL and
 * the method is GET), the URL "PATH[?QUERY]", the query "k=v&k=v..." as
 * libmicrohttpd hands the values over (not percent-decoded here: any byte
 * may reach a route). Path parameters are read back with rt_param; the
 * values of cursor, limit, created_after/created_before, team and id go
 * through the parsers GET /jobs and GET /jobs/{id}/logs use
 * (rt_cursor_decode under each tag, gw_parse_ll, gw_parse_rfc3339,
 * db_team_valid, gw_uuid_valid).
 *
 * Checked besides crashes: a match names a route that takes the method,
 * with non-empty parameters that fit and hold no '/'; a 405 has allowed
 * methods that exclude the one asked; a decoded cursor encodes back to the
 * same text (cursors are canonical).
 */
#include "common/id.h"
#include "common/parse.h"
#include "db/api_keys.h"
#include "routes/params.h"
#include "routes/routes.h"
#include "server/http.h"
#include "tests/fuzz/fuzz.h"

static void check_match(const struct srv_match *m, enum srv_match_result r, unsigned bit)
{
    if (r == SRV_MATCH_NO_ROUTE) {
        FUZZ_CHECK(m->route == NULL && m->path_route == NULL && m->allowed == 0);
        return;
    }
    FUZZ_CHECK(m->path_route != NULL && m->allowed != 0);
    if (r == SRV_MATCH_NO_METHOD) {
        FUZZ_CHECK(m->route == NULL && (m->allowed & bit) == 0);
        return;
    }
    FUZZ_CHECK(r == SRV_MATCH_OK && m->route != NULL && (m->allowed & bit) != 0);
    FUZZ_CHECK(m->nparams >= 0 && m->nparams <= RT_MAX_PARAMS);
    for (int i = 0; i < m->nparams; i++) {
        size_t n = strnlen(m->params[i].value, sizeof(m->params[i].value));
        FUZZ_CHECK(m->params[i].name != NULL);
        FUZZ_CHECK(n >= 1 && n <= RT_PARAM_MAX && strchr(m->params[i].value, '/') == NULL);
    }
}

/* Reads the path parameters back as a handler does (rt_param). */
static void read_params(const struct srv_match *m)
{
    static struct rt_request req; /* large: not on the stack */
    memset(&req, 0, sizeof(req));
    req.nparams = m->nparams;
    for (int i = 0; i < m->nparams; i++) {
        req.params[i].name = m->params[i].name;
        memcpy(req.params[i].value, m->params[i].value, sizeof(req.params[i].value));
    }
    const char *id = rt_param(&req, "id");
    if (id != NULL)
        (void)gw_uuid_valid(id);
}

static void check_cursor(const char *value)
{
    static const char *const tags[] = {"j1:", "l1:", "c1:"};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        char payload[512], again[1400];
        long n = rt_cursor_decode(payload, sizeof(payload), tags[i], value);
        if (n < 0)
            continue;
        FUZZ_CHECK((size_t)n == strlen(payload));
        FUZZ_CHECK(rt_cursor_encode(again, sizeof(again), tags[i], payload) == 0);
        FUZZ_CHECK(strcmp(again, value) == 0);
        if (i == 0 && n == 36)
            (void)gw_uuid_valid(payload);
    }
}

static void read_query_value(const char *key, const char *value)
{
    long long ll;
    int64_t ms;
    if (strcmp(key, "cursor") == 0)
        check_cursor(value);
    else if (strcmp(key, "limit") == 0)
        (void)gw_parse_ll(&ll, value, 1, RT_LIMIT_MAX);
    else if (strcmp(key, "created_after") == 0 || strcmp(key, "created_before") == 0)
        FUZZ_CHECK(gw_parse_rfc3339(&ms, value, strlen(value)) <= strlen(value));
    else if (strcmp(key, "team") == 0)
        (void)db_team_valid(value);
}

/* Splits query (modified) at '&' and '=' and reads each value. */
static void read_query(char *query)
{
    for (char *arg = query; arg != NULL;) {
        char *next = strchr(arg, '&');
        if (next != NULL)
            *next++ = '\0';
        char *eq = strchr(arg, '=');
        if (eq != NULL) {
            *eq = '\0';
            read_query_value(arg, eq + 1);
        }
        arg = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    const char *method = "GET";
    char *url = text;
    char *space = strchr(text, ' ');
    if (space != NULL) {
        *space = '\0';
        method = text;
        url = space + 1;
    }
    char *query = strchr(url, '?');
    if (query != NULL)
        *query++ = '\0';

    size_t nroutes;
    const struct rt_route *table = rt_table(&nroutes);
    unsigned bit = srv_method_bit(method);
    FUZZ_CHECK(bit == 0 || strcmp(srv_method_name(bit), method) == 0);
    struct srv_match m;
    enum srv_match_result r = srv_route_match(&m, table, nroutes, bit, url);
    check_match(&m, r, bit);
    char allow[128];
    srv_methods_format(allow, sizeof(allow), m.allowed);
    if (r == SRV_MATCH_OK)
        read_params(&m);
    if (query != NULL)
        read_query(query);
    free(text);
    return 0;
}
