/*
 * jobs/webhook.c: the X-Signature value, and one POST against a loopback
 * HTTP server (libmicrohttpd) that records what it got and answers with the
 * status a test asks for, so the sorting of answers into sent, retry later
 * and give up is checked on the wire.
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
    cr_assert_eq(jobs_webhook_post(srv.url, BODY, SECRET, 1700000000LL, &err), GW_OK, "%s",
                 err.msg);
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
    cr_assert_eq(jobs_webhook_post(srv.url, BODY, NULL, 1700000000LL, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(srv.requests, 1);
    cr_assert_str_eq(srv.signature, "");
}

Test(jobs_webhook, server_errors_timeouts_and_throttling_are_worth_a_retry)
{
    static const unsigned transient[] = {500, 503, 408, 429};
    for (size_t i = 0; i < GW_ARRAY_LEN(transient); i++) {
        struct gw_err err = {0};
        srv.status = transient[i];
        cr_assert_eq(jobs_webhook_post(srv.url, BODY, SECRET, 1, &err), GW_EUNAVAIL, "%u: %s",
                     transient[i], err.msg);
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
        cr_assert_eq(jobs_webhook_post(srv.url, BODY, SECRET, 1, &err), GW_EUPSTREAM, "%u: %s",
                     permanent[i], err.msg);
    }
}

Test(jobs_webhook, no_answer_is_worth_a_retry_and_other_schemes_are_refused)
{
    struct gw_err err = {0};
    cr_assert_eq(jobs_webhook_post("http://127.0.0.1:1/hook", BODY, SECRET, 1, &err), GW_EUNAVAIL,
                 "%s", err.msg);
    cr_assert_neq(jobs_webhook_post("file:///etc/passwd", BODY, SECRET, 1, &err), GW_OK);
    cr_assert_eq(srv.requests, 0);
}
