/*
 * test_metrics.c — unit tests for server/metrics.c: request counters and
 * latency histograms rendered in Prometheus text format. Each test starts
 * from gw_metrics_reset() and reads the rendered text line by line.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/metrics.h"

/* Route and method must be static strings: the table keys on the pointer. */
static const char R_JOBS[] = "/jobs";
static const char R_JOB[] = "/jobs/{id}";

static const char *const LE[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                 "0.1",    "0.25",  "0.5",    "1",     "2.5",  "10",    "+Inf"};

static struct gw_buf out;

static void setup(void)
{
    gw_metrics_reset();
    gw_buf_init(&out, 1024 * 1024);
}

static void teardown(void)
{
    gw_buf_dispose(&out);
    gw_metrics_reset();
}

TestSuite(server_metrics, .init = setup, .fini = teardown);

static const char *render(void)
{
    gw_buf_reset(&out);
    cr_assert_eq(gw_metrics_render(&out), GW_OK);
    return out.data;
}

/* True when text holds line as one whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static size_t count_prefix(const char *text, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *line = text; *line != '\0';) {
        if (strncmp(line, prefix, plen) == 0)
            n++;
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return n;
}

static void assert_line(const char *text, const char *line)
{
    cr_assert(has_line(text, line), "missing line\n  %s\nin\n%s", line, text);
}

/* The value of the bucket line for route/method/le, or -1 when absent. */
static long long bucket(const char *text, const char *route, const char *method, const char *le)
{
    char prefix[256];
    snprintf(prefix, sizeof(prefix),
             "mlgw_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%s\"} ",
             route, method, le);
    for (const char *p = text; (p = strstr(p, prefix)) != NULL; p++) {
        if (p != text && p[-1] != '\n')
            continue;
        char *end = NULL;
        long long v = strtoll(p + strlen(prefix), &end, 10);
        return *end == '\n' ? v : -1;
    }
    return -1;
}

static void assert_buckets(const char *text, const char *route, const char *method,
                           const long long want[14])
{
    for (size_t b = 0; b < 14; b++)
        cr_assert_eq(bucket(text, route, method, LE[b]), want[b],
                     "%s %s le=%s: got %lld, want %lld", method, route, LE[b],
                     bucket(text, route, method, LE[b]), want[b]);
}

Test(server_metrics, render_after_reset_has_only_headers_and_a_zero_drop_count)
{
    const char *t = render();
    assert_line(t, "# TYPE mlgw_http_requests_total counter");
    assert_line(t, "# TYPE mlgw_http_request_duration_seconds histogram");
    assert_line(t, "# TYPE mlgw_metrics_dropped_total counter");
    assert_line(t, "mlgw_metrics_dropped_total 0");
    cr_assert_eq(count_prefix(t, "mlgw_http_requests_total{"), 0);
    cr_assert_eq(count_prefix(t, "mlgw_http_request_duration_seconds_"), 0);
}

Test(server_metrics, observations_count_per_route_method_and_status)
{
    gw_metrics_observe(R_JOBS, "GET", 200, 0.003);
    gw_metrics_observe(R_JOBS, "GET", 200, 0.004);
    gw_metrics_observe(R_JOBS, "GET", 500, 0.2);
    const char *t = render();
    assert_line(t, "mlgw_http_requests_total{route=\"/jobs\",method=\"GET\",status=\"200\"} 2");
    assert_line(t, "mlgw_http_requests_total{route=\"/jobs\",method=\"GET\",status=\"500\"} 1");
    cr_assert_eq(count_prefix(t, "mlgw_http_requests_total{"), 2, "%s", t);
}

Test(server_metrics, histogram_buckets_are_cumulative_and_inf_equals_count)
{
    gw_metrics_observe(R_JOBS, "GET", 200, 0.003); /* le 0.005 */
    gw_metrics_observe(R_JOBS, "GET", 200, 0.004); /* le 0.005 */
    gw_metrics_observe(R_JOBS, "GET", 500, 0.2);   /* le 0.25 */
    gw_metrics_observe(R_JOBS, "GET", 200, 42.0);  /* above every bucket */
    const char *t = render();
    static const long long want[14] = {0, 0, 0, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4};
    assert_buckets(t, "/jobs", "GET", want);
    assert_line(t, "mlgw_http_request_duration_seconds_count{route=\"/jobs\",method=\"GET\"} 4");
    assert_line(t,
                "mlgw_http_request_duration_seconds_sum{route=\"/jobs\",method=\"GET\"} 42.207000");
    /* One histogram per route and method, whatever the statuses. */
    cr_assert_eq(count_prefix(t, "mlgw_http_request_duration_seconds_count{"), 1, "%s", t);
    cr_assert_eq(count_prefix(t, "mlgw_http_request_duration_seconds_bucket{"), 14, "%s", t);
}

Test(server_metrics, a_value_on_a_bucket_boundary_counts_in_that_bucket)
{
    gw_metrics_observe(R_JOBS, "GET", 200, 0.001);
    gw_metrics_observe(R_JOBS, "GET", 200, 10.0);
    const char *t = render();
    static const long long want[14] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2};
    assert_buckets(t, "/jobs", "GET", want);
}

Test(server_metrics, zero_latency_counts_in_the_smallest_bucket)
{
    gw_metrics_observe(R_JOBS, "GET", 204, 0.0);
    const char *t = render();
    static const long long want[14] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_buckets(t, "/jobs", "GET", want);
    assert_line(t,
                "mlgw_http_request_duration_seconds_sum{route=\"/jobs\",method=\"GET\"} 0.000000");
}

Test(server_metrics, different_methods_and_routes_are_separate_series)
{
    gw_metrics_observe(R_JOBS, "GET", 200, 0.002);
    gw_metrics_observe(R_JOBS, "POST", 201, 0.02);
    gw_metrics_observe(R_JOB, "GET", 200, 0.7);
    gw_metrics_observe(R_JOB, "GET", 404, 0.0001);
    const char *t = render();
    assert_line(t, "mlgw_http_requests_total{route=\"/jobs\",method=\"GET\",status=\"200\"} 1");
    assert_line(t, "mlgw_http_requests_total{route=\"/jobs\",method=\"POST\",status=\"201\"} 1");
    assert_line(t,
                "mlgw_http_requests_total{route=\"/jobs/{id}\",method=\"GET\",status=\"200\"} 1");
    assert_line(t,
                "mlgw_http_requests_total{route=\"/jobs/{id}\",method=\"GET\",status=\"404\"} 1");
    cr_assert_eq(count_prefix(t, "mlgw_http_request_duration_seconds_count{"), 3, "%s", t);
    static const long long jobs_get[14] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const long long jobs_post[14] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const long long job_get[14] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2};
    assert_buckets(t, "/jobs", "GET", jobs_get);
    assert_buckets(t, "/jobs", "POST", jobs_post);
    assert_buckets(t, "/jobs/{id}", "GET", job_get);
}

Test(server_metrics, methods_are_compared_by_content_not_pointer)
{
    char get1[] = "GET", get2[] = "GET";
    gw_metrics_observe(R_JOBS, get1, 200, 0.01);
    gw_metrics_observe(R_JOBS, get2, 200, 0.01);
    const char *t = render();
    assert_line(t, "mlgw_http_requests_total{route=\"/jobs\",method=\"GET\",status=\"200\"} 2");
    cr_assert_eq(count_prefix(t, "mlgw_http_request_duration_seconds_count{"), 1, "%s", t);
}

Test(server_metrics, reset_forgets_every_series)
{
    gw_metrics_observe(R_JOBS, "GET", 200, 0.01);
    gw_metrics_reset();
    const char *t = render();
    cr_assert_eq(count_prefix(t, "mlgw_http_requests_total{"), 0, "%s", t);
    cr_assert_eq(count_prefix(t, "mlgw_http_request_duration_seconds_"), 0, "%s", t);
    gw_metrics_observe(R_JOBS, "GET", 200, 0.01);
    t = render();
    assert_line(t, "mlgw_http_requests_total{route=\"/jobs\",method=\"GET\",status=\"200\"} 1");
}

Test(server_metrics, buckets_never_decrease_and_end_at_the_count)
{
    /* A spread of latencies, some on boundaries, deterministic. */
    static const double lat[] = {0.0001, 0.0005, 0.0007, 0.0025, 0.004, 0.009, 0.03,
                                 0.05,   0.08,   0.3,    0.5,    0.9,   2.0,   7.0,
                                 10.0,   11.0,   0.012,  0.0009, 1.0,   2.5};
    for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++)
        gw_metrics_observe(R_JOB, "DELETE", (i % 2) ? 204 : 500, lat[i]);
    const char *t = render();
    long long prev = 0;
    for (size_t b = 0; b < 14; b++) {
        long long v = bucket(t, "/jobs/{id}", "DELETE", LE[b]);
        cr_assert_geq(v, prev, "le=%s: %lld after %lld", LE[b], v, prev);
        prev = v;
    }
    cr_assert_eq(prev, (long long)(sizeof(lat) / sizeof(lat[0])));
    assert_line(
        t, "mlgw_http_request_duration_seconds_count{route=\"/jobs/{id}\",method=\"DELETE\"} 20");
    assert_line(
        t, "mlgw_http_requests_total{route=\"/jobs/{id}\",method=\"DELETE\",status=\"204\"} 10");
    assert_line(
        t, "mlgw_http_requests_total{route=\"/jobs/{id}\",method=\"DELETE\",status=\"500\"} 10");
}

Test(server_metrics, counters_beyond_the_table_size_are_dropped_and_counted)
{
    /* 512 counter series fit; the 513th distinct status has no room. */
    for (unsigned s = 0; s < 513; s++)
        gw_metrics_observe(R_JOBS, "GET", 1000 + s, 0.001);
    gw_metrics_observe(R_JOBS, "GET", 1000, 0.001); /* an existing series still counts */
    const char *t = render();
    assert_line(t, "mlgw_metrics_dropped_total 1");
    cr_assert_eq(count_prefix(t, "mlgw_http_requests_total{"), 512);
    assert_line(t, "mlgw_http_requests_total{route=\"/jobs\",method=\"GET\",status=\"1000\"} 2");
    cr_assert(!has_line(t, "mlgw_http_requests_total{route=\"/jobs\",method=\"GET\","
                           "status=\"1512\"} 1"));
    /* The histogram still sees every observation. */
    assert_line(t, "mlgw_http_request_duration_seconds_count{route=\"/jobs\",method=\"GET\"} 514");
}

Test(server_metrics, render_appends_to_existing_content)
{
    cr_assert_eq(gw_buf_adds(&out, "# before\n"), GW_OK);
    cr_assert_eq(gw_metrics_render(&out), GW_OK);
    cr_assert_eq(strncmp(out.data, "# before\n# HELP mlgw_http_requests_total", 40), 0);
}

Test(server_metrics, render_into_a_buffer_that_is_too_small_fails)
{
    struct gw_buf small;
    gw_buf_init(&small, 64);
    gw_metrics_observe(R_JOBS, "GET", 200, 0.01);
    cr_assert_neq(gw_metrics_render(&small), GW_OK);
    gw_buf_dispose(&small);
}
