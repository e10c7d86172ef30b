/*
 * jobs/webhook.c: the X-Signature value, and one POST against a loopback
 * HTTP server (libmicrohttpd) that records what it got and answers with the
 * status a test asks for, so the sorting of answers into sent, retry later
 * and give up is checked on the wire; the address check over every refused
 * range, and that a refused address is never connected to.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "jobs/webhook.h"

#define SECRET "webhook-secret-xyz"
#define BODY   "{\"id\":\"x\"}"

/* As the integration tests run the gateway: http and loopback allowed. */
static const struct jobs_webhook_opts local_ok = {
    .secret = SECRET, .allow_http = 1, .allow_cidrs = "127.0.0.0/8"};
static const struct jobs_webhook_opts unsigned_local_ok = {
    .secret = NULL, .allow_http = 1, .allow_cidrs = "127.0.0.0/8"};
static char klass[JOBS_WEBHOOK_CLASS_LEN];

static int post(const struct jobs_webhook_opts *o, const char *url, long long now,
                struct gw_err *err)
{
    return jobs_webhook_post(klass, o, url, BODY, now, err);
}

/* What the server saw of the last request, and what it answers. */
struct hook_server {
    struct MHD_Daemon *d;
    char url[64];
    pthread_mutex_t mu;
    unsigned status;
    char method[16], content_type[64], signature[160], user_agent[64], body[256];
    int requests;
};

static struct hook_server srv;

static void copy_header(char *out, size_t len, struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    gw_fmt(out, len, "%s", v != NULL ? v : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
    (void)cls;
    (void)url;
    (void)version;
    if (*state == NULL) { /* headers only: the body comes in the next calls */
        *state = &srv;
        pthread_mutex_lock(&srv.mu);
        srv.body[0] = '\0';
        gw_fmt(srv.method, sizeof(srv.method), "%s", method);
        copy_header(srv.content_type, sizeof(srv.content_type), c, "Content-Type");
        copy_header(srv.signature, sizeof(srv.signature), c, "X-Signature");
        copy_header(srv.user_agent, sizeof(srv.user_agent), c, "User-Agent");
        pthread_mutex_unlock(&srv.mu);
        return MHD_YES;
    }
    if (*data_size > 0) {
        pthread_mutex_lock(&srv.mu);
        size_t have = strlen(srv.body);
        gw_fmt(srv.body + have, sizeof(srv.body) - have, "%.*s", (int)*data_size, data);
        pthread_mutex_unlock(&srv.mu);
        *data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&srv.mu);
    srv.requests++;
    unsigned status = srv.status;
    pthread_mutex_unlock(&srv.mu);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(2, (void *)(uintptr_t) "ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void server_start(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.mu, NULL);
    srv.status = 200;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    cr_assert_eq(inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr), 1);
    srv.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL,
                             MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_END);
    cr_assert(srv.d != NULL, "test server did not start");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert(info != NULL);
    gw_fmt(srv.url, sizeof(srv.url), "http://127.0.0.1:%u/hook", info->port);
}

static void server_stop(void)
{
    if (srv.d != NULL)
        MHD_stop_daemon(srv.d);
    srv.d = NULL;
    pthread_mutex_destroy(&srv.mu);
    curl_global_cleanup();
}

TestSuite(jobs_webhook, .init = server_start, .fini = server_stop);

Test(jobs_webhook, signature_is_the_hmac_sha256_of_time_dot_body)
{
    char sig[128];
    jobs_webhook_signature(sig, sizeof(sig), SECRET, 1700000000LL, BODY, strlen(BODY));
    cr_assert_str_eq(sig, "t=1700000000,v1="
                          "f83e6e81eca01297e95c9b8a752b05b3eaf6447ad49740720fe7dddfa916d42a");
    jobs_webhook_signature(sig, sizeof(sig), "key", 0, "", 0);
    cr_assert_str_eq(sig,
                     "t=0,v1=85841b4efc3cd7776c3c8f9b7cca9e281c550e5d19889d78e9e669c6337f000d");
}

Test(jobs_webhook, a_2xx_answer_is_sent_with_the_json_body_and_its_signature)
{
    struct gw_err err = {0};
    cr_assert_eq(post(&local_ok, srv.url, 1700000000LL, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(srv.requests, 1);
    cr_assert_str_eq(srv.method, "POST");
    cr_assert_str_eq(srv.content_type, "application/json");
    cr_assert_str_eq(srv.user_agent, "ml-gateway");
    cr_assert_str_eq(srv.body, BODY);
    cr_assert_str_eq(srv.signature,
                     "t=1700000000,v1="
                     "f83e6e81eca01297e95c9b8a752b05b3eaf6447ad49740720fe7dddfa916d42a");
}

Test(jobs_webhook, without_a_secret_there_is_no_signature_header)
{
    struct gw_err err = {0};
    srv.status = 204;
    cr_assert_eq(post(&unsigned_local_ok, srv.url, 1700000000LL, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(srv.requests, 1);
    cr_assert_str_eq(srv.signature, "");
}

Test(jobs_webhook, server_errors_timeouts_and_throttling_are_worth_a_retry)
{
    static const unsigned transient[] = {500, 503, 408, 429};
    for (size_t i = 0; i < GW_ARRAY_LEN(transient); i++) {
        struct gw_err err = {0};
        srv.status = transient[i];
        cr_assert_eq(post(&local_ok, srv.url, 1, &err), GW_EUNAVAIL, "%u: %s", transient[i],
                     err.msg);
        char want[32];
        gw_fmt(want, sizeof(want), "answered %u", transient[i]);
        cr_assert(strstr(err.msg, want) != NULL, "%s", err.msg);
        cr_assert_null(strstr(err.msg, SECRET));
    }
}

Test(jobs_webhook, other_statuses_are_permanent)
{
    static const unsigned permanent[] = {400, 401, 404, 410, 301};
    for (size_t i = 0; i < GW_ARRAY_LEN(permanent); i++) {
        struct gw_err err = {0};
        srv.status = permanent[i];
        cr_assert_eq(post(&local_ok, srv.url, 1, &err), GW_EUPSTREAM, "%u: %s", permanent[i],
                     err.msg);
    }
}

Test(jobs_webhook, no_answer_is_worth_a_retry_and_other_schemes_are_refused)
{
    struct gw_err err = {0};
    cr_assert_eq(post(&local_ok, "http://127.0.0.1:1/hook", 1, &err), GW_EUNAVAIL, "%s", err.msg);
    cr_assert_neq(post(&local_ok, "file:///etc/passwd", 1, &err), GW_OK);
    cr_assert_eq(srv.requests, 0);
}

/* ---- where a webhook may connect ------------------------------------------------ */

/* text as a sockaddr (IPv4 or IPv6) in ss. */
static const struct sockaddr *sa_of(struct sockaddr_storage *ss, const char *text)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(443);
    } else {
        cr_assert_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1, "%s", text);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(443);
    }
    return (const struct sockaddr *)ss;
}

static int allowed(const char *text, const char *allow)
{
    struct sockaddr_storage ss;
    return jobs_webhook_address_allowed(sa_of(&ss, text), allow);
}

Test(jobs_webhook, every_internal_range_is_refused)
{
    static const char *const refused[] = {
        /* this network, loopback */
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "127.255.255.254",
        "::",
        "::1",
        /* private */
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "192.168.255.255",
        /* link-local and the metadata services */
        "169.254.0.1",
        "169.254.169.254",
        "169.254.170.2",
        "fe80::1",
        "febf::1",
        "fd00:ec2::254",
        /* CGNAT (and Alibaba's metadata) */
        "100.64.0.1",
        "100.127.255.255",
        "100.100.100.200",
        /* unique-local */
        "fc00::1",
        "fdff:ffff::1",
        /* multicast, reserved, broadcast */
        "224.0.0.1",
        "239.255.255.255",
        "ff02::1",
        "ff0e::1",
        "240.0.0.1",
        "255.255.255.255",
        /* IETF, documentation, benchmarking, 6to4 relays */
        "192.0.0.1",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "198.18.0.1",
        "198.19.255.255",
        "192.88.99.1",
        "2001:db8::1",
        "100::1",
        "2001::1",
        "2002:7f00:1::1",
        "fec0::1",
        "64:ff9b:1::1",
        /* IPv4 inside IPv6: mapped, compatible, NAT64 */
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:192.168.1.1",
        "::ffff:0.0.0.0",
        "::127.0.0.1",
        "64:ff9b::a00:1",
        "64:ff9b::7f00:1",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(refused); i++)
        cr_assert_not(allowed(refused[i], NULL), "%s allowed", refused[i]);
}

Test(jobs_webhook, public_addresses_are_allowed)
{
    static const char *const ok[] = {
        "1.1.1.1",
        "8.8.8.8",
        "93.184.216.34",
        "9.255.255.255",
        "11.0.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "172.15.255.255",
        "172.32.0.1",
        "192.167.255.255",
        "192.169.0.1",
        "169.253.255.255",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(ok); i++)
        cr_assert(allowed(ok[i], NULL), "%s refused", ok[i]);
}

Test(jobs_webhook, the_operator_allow_list_widens_but_never_to_metadata)
{
    const char *allow = "127.0.0.0/8, ::1, 10.1.0.0/16, 169.254.0.0/16, fd00::/8";
    cr_assert(allowed("127.0.0.1", allow));
    cr_assert(allowed("::ffff:127.0.0.1", allow));
    cr_assert(allowed("::1", allow));
    cr_assert(allowed("10.1.2.3", allow));
    cr_assert_not(allowed("10.2.0.1", allow), "outside the listed range");
    cr_assert(allowed("169.254.1.1", allow));
    cr_assert_not(allowed("169.254.169.254", allow), "metadata stays refused");
    cr_assert_not(allowed("169.254.170.2", allow), "metadata stays refused");
    cr_assert_not(allowed("fd00:ec2::254", allow), "metadata stays refused");
    cr_assert_not(allowed("169.254.169.254", "0.0.0.0/0"), "metadata stays refused");
    cr_assert(allowed("192.168.1.1", "0.0.0.0/0"));
    cr_assert_not(allowed("fe80::1", "0.0.0.0/0"), "an IPv4 range does not cover IPv6");
    cr_assert(allowed("8.8.8.8", allow), "public addresses need no listing");
}

Test(jobs_webhook, other_address_families_are_refused)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    cr_assert_not(jobs_webhook_address_allowed((const struct sockaddr *)&ss, "0.0.0.0/0"));
}

Test(jobs_webhook, a_refused_address_is_never_connected_to_and_reads_refused)
{
    /* The gateway's defaults: https only, no private ranges. Even over http
     * (allowed here) the loopback server must see nothing. */
    const struct jobs_webhook_opts http_only = {.secret = SECRET, .allow_http = 1};
    struct gw_err err = {0};
    cr_assert_eq(post(&http_only, srv.url, 1, &err), GW_EINVAL, "%s", err.msg);
    cr_assert_str_eq(klass, "refused");
    cr_assert_not_null(strstr(err.msg, "127.0.0.1"), "the log names the address: %s", err.msg);
    char https_url[80];
    snprintf(https_url, sizeof(https_url), "https://%s", srv.url + strlen("http://"));
    const struct jobs_webhook_opts defaults = {.secret = SECRET};
    cr_assert_eq(post(&defaults, https_url, 1, &err), GW_EINVAL, "%s", err.msg);
    cr_assert_str_eq(klass, "refused");
    cr_assert_eq(post(&defaults, "https://localhost:1/x", 1, &err), GW_EINVAL, "%s", err.msg);
    cr_assert_str_eq(klass, "refused");
    cr_assert_eq(srv.requests, 0);
}

Test(jobs_webhook, plain_http_is_refused_unless_allowed)
{
    const struct jobs_webhook_opts https_only = {.secret = SECRET, .allow_cidrs = "127.0.0.0/8"};
    struct gw_err err = {0};
    cr_assert_eq(post(&https_only, srv.url, 1, &err), GW_EINVAL, "%s", err.msg);
    cr_assert_str_eq(klass, "refused");
    cr_assert_eq(srv.requests, 0);
    cr_assert_eq(post(&local_ok, srv.url, 1, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(klass, "");
    cr_assert_eq(srv.requests, 1);
}

Test(jobs_webhook, failures_are_reported_as_classes)
{
    struct gw_err err = {0};
    srv.status = 410;
    cr_assert_eq(post(&local_ok, srv.url, 1, &err), GW_EUPSTREAM);
    cr_assert_str_eq(klass, "http_410");
    srv.status = 503;
    cr_assert_eq(post(&local_ok, srv.url, 1, &err), GW_EUNAVAIL);
    cr_assert_str_eq(klass, "http_503");
    cr_assert_eq(post(&local_ok, "http://127.0.0.1:1/hook", 1, &err), GW_EUNAVAIL);
    cr_assert_str_eq(klass, "refused");
    char c[JOBS_WEBHOOK_CLASS_LEN];
    jobs_webhook_class(c, CURLE_OPERATION_TIMEDOUT, 0);
    cr_assert_str_eq(c, "timeout");
    jobs_webhook_class(c, CURLE_COULDNT_RESOLVE_HOST, 0);
    cr_assert_str_eq(c, "dns");
    jobs_webhook_class(c, CURLE_PEER_FAILED_VERIFICATION, 0);
    cr_assert_str_eq(c, "tls");
    jobs_webhook_class(c, CURLE_SSL_CONNECT_ERROR, 0);
    cr_assert_str_eq(c, "tls");
    jobs_webhook_class(c, CURLE_COULDNT_CONNECT, 0);
    cr_assert_str_eq(c, "refused");
    jobs_webhook_class(c, CURLE_RECV_ERROR, 0);
    cr_assert_str_eq(c, "error");
    jobs_webhook_class(c, CURLE_OK, 404);
    cr_assert_str_eq(c, "http_404");
}
