/*
 * test_sns_verify.c — unit tests for aws/sns_verify.c: parsing SNS's POST
 * bodies, the string SNS signs, the SigningCertURL check, and verification
 * end to end. Every key and certificate is made here at test time with
 * OpenSSL's C API (a local CA, signing certificates for sns.amazonaws.com,
 * rogue ones); nothing secret is committed. The signing certificates are
 * served by a libmicrohttpd server on 127.0.0.1 inside the test that counts
 * the requests it gets, with the verifier's test widening
 * (allowed_cert_host_suffix "127.0.0.1", allow_http_cert_url) — except where
 * a test checks that, without it, such URLs are refused before any fetch.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "aws/sns_verify.h"
#include "common/buf.h"
#include "common/err.h"

#define SNS_CERT_PATH "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
#define DAY           (24L * 3600L)
#define URL_LONG      1025 /* one character over the SigningCertURL limit, with its NUL */

/* ---- keys, certificates, files --------------------------------------------------------------- */

static EVP_PKEY *rsa_key(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    cr_assert_not_null(k, "RSA key generation failed");
    return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    cr_assert_not_null(ext, "extension %d=%s", nid, value);
    cr_assert_eq(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for key with subject CN cn (and subjectAltName san unless
 * NULL), issued by issuer/issuer_key or self-signed when issuer is NULL,
 * valid from now + from_s to now + to_s. New: X509_free. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, int ca, X509 *issuer,
                       EVP_PKEY *issuer_key, long from_s, long to_s)
{
    static long serial = 1;
    X509 *x = X509_new();
    cr_assert_not_null(x);
    cr_assert_eq(X509_set_version(x, X509_VERSION_3), 1);
    cr_assert_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    cr_assert_not_null(X509_gmtime_adj(X509_getm_notBefore(x), from_s));
    cr_assert_not_null(X509_gmtime_adj(X509_getm_notAfter(x), to_s));
    cr_assert_eq(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    cr_assert_eq(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                            (const unsigned char *)"ml-gateway tests", -1, -1, 0),
                 1);
    cr_assert_eq(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    cr_assert_eq(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name), 1);
    X509 *signer = issuer != NULL ? issuer : x;
    add_ext(x, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, signer, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (san != NULL)
        add_ext(x, signer, NID_subject_alt_name, san);
    cr_assert_gt(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()), 0);
    return x;
}

/* The PEM of n certificates, concatenated (new: free). */
static char *pem_of(X509 *const *certs, size_t n)
{
    BIO *b = BIO_new(BIO_s_mem());
    cr_assert_not_null(b);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(PEM_write_bio_X509(b, certs[i]), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    cr_assert_gt(len, 0);
    char *s = malloc((size_t)len + 1);
    cr_assert_not_null(s);
    memcpy(s, data, (size_t)len);
    s[len] = '\0';
    BIO_free(b);
    return s;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    cr_assert_not_null(b);
    cr_assert_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    cr_assert_gt(len, 0);
    char *s = malloc((size_t)len + 1);
    cr_assert_not_null(s);
    memcpy(s, data, (size_t)len);
    s[len] = '\0';
    BIO_free(b);
    return s;
}

/* A new file under /tmp holding content; returns its path (new: free, unlink). */
static char *tmp_file(const char *content)
{
    char *path = strdup("/tmp/mlgw-sns-test-XXXXXX");
    cr_assert_not_null(path);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t len = strlen(content);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    cr_assert_eq(close(fd), 0);
    return path;
}

static void tmp_remove(char *path)
{
    if (path == NULL)
        return;
    (void)unlink(path);
    free(path);
}

/* Signs data as SNS does (RSA PKCS#1 v1.5 over md) and returns the standard
 * base64 of the signature (new: free). */
static char *sign_b64(EVP_PKEY *key, const EVP_MD *md, const char *data)
{
    unsigned char sig[1024];
    size_t len = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cr_assert_not_null(ctx);
    cr_assert_eq(EVP_DigestSignInit(ctx, NULL, md, NULL, key), 1);
    cr_assert_eq(EVP_DigestSign(ctx, sig, &len, (const unsigned char *)data, strlen(data)), 1);
    EVP_MD_CTX_free(ctx);
    unsigned char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    cr_assert_not_null(b64);
    cr_assert_gt(EVP_EncodeBlock(b64, sig, (int)len), 0);
    return (char *)b64;
}

/* ---- the certificate server ----------------------------------------------------------------- */

#define MAX_ROUTES 40

struct route {
    char path[128];
    unsigned status;
    char *body; /* new */
};

struct cert_server {
    struct MHD_Daemon *d;
    char base[64]; /* "http(s)://127.0.0.1:PORT" */
    pthread_mutex_t mu;
    struct route routes[MAX_ROUTES];
    size_t nroutes;
    int requests;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    static int started;
    struct cert_server *s = cls;
    unsigned status = 404;
    char *body = NULL;
    (void)method, (void)version, (void)upload_data;

    if (*con_cls == NULL) {
        *con_cls = &started;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->mu);
    s->requests++;
    for (size_t i = 0; i < s->nroutes; i++) {
        if (strcmp(s->routes[i].path, url) == 0) {
            status = s->routes[i].status;
            body = strdup(s->routes[i].body);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (body == NULL)
        body = strdup("not found");
    if (body == NULL)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Starts on 127.0.0.1, a free port; over TLS when key_pem and cert_pem are set. */
static void server_start(struct cert_server *s, const char *key, const char *cert)
{
    memset(s, 0, sizeof(*s));
    cr_assert_eq(pthread_mutex_init(&s->mu, NULL), 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (key != NULL) {
        s->d = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, &on_request, s,
                                MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_HTTPS_MEM_KEY, key,
                                MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
    } else {
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, &on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
                                MHD_OPTION_END);
    }
    cr_assert_not_null(s->d, "cannot start the certificate server");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert_not_null(info);
    cr_assert_gt(info->port, 0);
    (void)snprintf(s->base, sizeof(s->base), "%s://127.0.0.1:%u", key != NULL ? "https" : "http",
                   (unsigned)info->port);
}

static void server_stop(struct cert_server *s)
{
    if (s->d == NULL)
        return;
    MHD_stop_daemon(s->d);
    s->d = NULL;
    for (size_t i = 0; i < s->nroutes; i++)
        free(s->routes[i].body);
    s->nroutes = 0;
    pthread_mutex_destroy(&s->mu);
}

/* Serves body (copied) with status at path, replacing what was there. */
static void server_serve(struct cert_server *s, const char *path, unsigned status, const char *body)
{
    pthread_mutex_lock(&s->mu);
    struct route *r = NULL;
    for (size_t i = 0; i < s->nroutes && r == NULL; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            r = &s->routes[i];
    if (r == NULL && s->nroutes < MAX_ROUTES)
        r = &s->routes[s->nroutes++];
    if (r != NULL) {
        free(r->body);
        (void)snprintf(r->path, sizeof(r->path), "%s", path);
        r->status = status;
        r->body = strdup(body);
    }
    pthread_mutex_unlock(&s->mu);
    cr_assert(r != NULL && r->body != NULL);
}

static void server_serve_certs(struct cert_server *s, const char *path, X509 *const *certs,
                               size_t n)
{
    char *pem = pem_of(certs, n);
    server_serve(s, path, 200, pem);
    free(pem);
}

static int server_requests(struct cert_server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- messages as SNS sends them ----------------------------------------------------------------
 */

struct fields {
    const char *type, *message, *message_id, *subject, *timestamp, *topic_arn;
    const char *subscribe_url, *token; /* the confirmations */
    const char *version, *cert_url;
};

static const char batch_event[] =
    "{\"version\":\"0\",\"detail-type\":\"Batch Job State Change\",\"source\":\"aws.batch\","
    "\"detail\":{\"jobName\":\"train \\\"v2\\\"\",\"status\":\"SUCCEEDED\"}}\n"
    "second line, caf\xc3\xa9, tab\there";

static struct fields notification(const char *cert_url, const char *version, const char *subject)
{
    return (struct fields){
        .type = "Notification",
        .message = batch_event,
        .message_id = "6f3c1c2a-6f6e-5d4b-9b1e-2b8c3c0d9e11",
        .subject = subject,
        .timestamp = "2024-05-02T10:54:06.655Z",
        .topic_arn = "arn:aws:sns:us-east-1:123456789012:ml-gateway-batch-events",
        .version = version,
        .cert_url = cert_url,
    };
}

static struct fields confirmation(const char *type, const char *cert_url, const char *version)
{
    return (struct fields){
        .type = type,
        .message = "You have chosen to subscribe to the topic "
                   "arn:aws:sns:us-east-1:123456789012:ml-gateway-batch-events.\n"
                   "To confirm the subscription, visit the SubscribeURL included in this message.",
        .message_id = "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        .timestamp = "2024-04-26T20:45:04.751Z",
        .topic_arn = "arn:aws:sns:us-east-1:123456789012:ml-gateway-batch-events",
        .subscribe_url =
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
            "arn:aws:sns:us-east-1:123456789012:ml-gateway-batch-events&Token=2336412f37"
            "fb687f5d51e6e2425f004aed8e5c4d3a1e3b7e0c",
        .token = "2336412f37fb687f5d51e6e2425f004aed8e5c4d3a1e3b7e0c",
        .version = version,
        .cert_url = cert_url,
    };
}

/* The string SNS signs for f, spelled out independently of the module. */
static char *expected_string_to_sign(const struct fields *f)
{
    struct gw_buf b;
    int notif = strcmp(f->type, "Notification") == 0;
    gw_buf_init(&b, 1 << 20);
    cr_assert_eq(gw_buf_printf(&b, "Message\n"), GW_OK);
    cr_assert_eq(gw_buf_adds(&b, f->message), GW_OK);
    cr_assert_eq(gw_buf_printf(&b, "\nMessageId\n%s\n", f->message_id), GW_OK);
    if (notif && f->subject != NULL)
        cr_assert_eq(gw_buf_printf(&b, "Subject\n%s\n", f->subject), GW_OK);
    if (!notif)
        cr_assert_eq(gw_buf_printf(&b, "SubscribeURL\n%s\n", f->subscribe_url), GW_OK);
    cr_assert_eq(gw_buf_printf(&b, "Timestamp\n%s\n", f->timestamp), GW_OK);
    if (!notif)
        cr_assert_eq(gw_buf_printf(&b, "Token\n%s\n", f->token), GW_OK);
    cr_assert_eq(gw_buf_printf(&b, "TopicArn\n%s\nType\n%s\n", f->topic_arn, f->type), GW_OK);
    return gw_buf_steal(&b);
}

static void set_str(json_t *o, const char *key, const char *value)
{
    if (value != NULL)
        cr_assert_eq(json_object_set_new(o, key, json_string(value)), 0);
}

/* The JSON SNS would POST for `sent`, carrying a signature made by key with md
 * over the string to sign of `signed_as` (new: free). */
static char *body_for(const struct fields *sent, const struct fields *signed_as, EVP_PKEY *key,
                      const EVP_MD *md)
{
    char *sts = expected_string_to_sign(signed_as);
    char *sig = sign_b64(key, md, sts);
    json_t *o = json_object();
    cr_assert_not_null(o);
    set_str(o, "Type", sent->type);
    set_str(o, "MessageId", sent->message_id);
    set_str(o, "Token", sent->token);
    set_str(o, "TopicArn", sent->topic_arn);
    set_str(o, "Subject", sent->subject);
    set_str(o, "Message", sent->message);
    set_str(o, "SubscribeURL", sent->subscribe_url);
    set_str(o, "Timestamp", sent->timestamp);
    set_str(o, "SignatureVersion", sent->version);
    set_str(o, "Signature", sig);
    set_str(o, "SigningCertURL", sent->cert_url);
    if (strcmp(sent->type, "Notification") == 0)
        set_str(o, "UnsubscribeURL",
                "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:"
                "sns:us-east-1:123456789012:ml-gateway-batch-events:c9135db0-26c4-47ec-8998");
    char *text = json_dumps(o, JSON_INDENT(2));
    cr_assert_not_null(text);
    json_decref(o);
    free(sig);
    free(sts);
    return text;
}

static const EVP_MD *md_for(const char *version)
{
    return strcmp(version, "1") == 0 ? EVP_sha1() : EVP_sha256();
}

/* Parses into out the message `sent`, signed (by key) as `signed_as`. */
static void message_signed_as(struct aws_sns_message *out, const struct fields *sent,
                              const struct fields *signed_as, EVP_PKEY *key, const EVP_MD *md)
{
    struct gw_err err = {0};
    char *body = body_for(sent, signed_as, key, md);
    cr_assert_eq(aws_sns_message_parse(out, body, strlen(body), &err), GW_OK, "%s", err.msg);
    free(body);
}

static void message_signed(struct aws_sns_message *out, const struct fields *f, EVP_PKEY *key)
{
    message_signed_as(out, f, f, key, md_for(f->version));
}

/* ---- pure functions: the string to sign, parsing, the URL check --------------------------------
 */

static void pure_init(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
}

static void pure_fini(void)
{
    curl_global_cleanup();
}

TestSuite(aws_sns_message, .init = pure_init, .fini = pure_fini);

static void parse_ok(struct aws_sns_message *m, const char *body)
{
    struct gw_err err = {0};
    cr_assert_eq(aws_sns_message_parse(m, body, strlen(body), &err), GW_OK, "%s", err.msg);
}

static void assert_sts(const struct aws_sns_message *m, const char *expected)
{
    char *s = aws_sns_string_to_sign(m);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, expected);
    free(s);
}

/* Shaped after the examples of AWS's "HTTP/HTTPS notification JSON format". */
static const char aws_doc_notification[] =
    "{\n"
    "  \"Type\" : \"Notification\",\n"
    "  \"MessageId\" : \"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\",\n"
    "  \"TopicArn\" : \"arn:aws:sns:us-west-2:123456789012:MyTopic\",\n"
    "  \"Subject\" : \"My First Message\",\n"
    "  \"Message\" : \"Hello world!\",\n"
    "  \"Timestamp\" : \"2012-05-02T00:54:06.655Z\",\n"
    "  \"SignatureVersion\" : \"1\",\n"
    "  \"Signature\" : "
    "\"EXAMPLEw6JRNwm1LFQL4ICB0bnXrdB8ClRMTQFGBqwLpGbM78tJ4etTwC5zU7O3tS6tGpey3ejedNd"
    "KrW/2TpkdQi5OBDuMxU96q8SQfC0UL3ebd5TVKf4+7DvYYOT57yYVFLGEZTgMm/4GD61SG3xtWdl4s0wpA7Cf6NnvaLL"
    "i6OPkLdt5cRxY8ZSdMcNTJzwI7SJbAeJqo8DbiZgMBFd4ULWvRmXlPtk/3MrCZuGJ/QiEsrgk/DPeTq8wNhiRNkLnMi7r"
    "tmeXN2t3mq7ac1V2kSZbqaiWnFOdq6eTq/4rzAFNsgkxDvhAjOYgtmbw4O4pnewA==\",\n"
    "  \"SigningCertURL\" : "
    "\"https://sns.us-west-2.amazonaws.com/"
    "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem\",\n"
    "  \"UnsubscribeURL\" : "
    "\"https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-"
    "2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96\"\n"
    "}\n";

Test(aws_sns_message, string_to_sign_of_a_real_world_notification_lists_its_keys_in_byte_order)
{
    struct aws_sns_message m;
    parse_ok(&m, aws_doc_notification);
    cr_assert_str_eq(m.type, "Notification");
    cr_assert_str_eq(m.message, "Hello world!");
    cr_assert(m.has_subject);
    cr_assert_str_eq(m.signature_version, "1");
    cr_assert_str_eq(m.signing_cert_url, "https://sns.us-west-2.amazonaws.com/"
                                         "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de5"
                                         "2f.pem");
    cr_assert_eq(strncmp(m.signature_b64, "EXAMPLEw6JRN", 12), 0);
    assert_sts(&m, "Message\nHello world!\n"
                   "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
                   "Subject\nMy First Message\n"
                   "Timestamp\n2012-05-02T00:54:06.655Z\n"
                   "TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
                   "Type\nNotification\n");
    aws_sns_message_dispose(&m);
}

Test(aws_sns_message, string_to_sign_of_a_notification_without_subject_leaves_subject_out)
{
    struct aws_sns_message m;
    parse_ok(&m, "{\"Type\":\"Notification\",\"MessageId\":\"m-1\",\"TopicArn\":\"arn:t\","
                 "\"Message\":\"hi\",\"Timestamp\":\"2024-01-01T00:00:00.000Z\","
                 "\"SignatureVersion\":\"2\",\"Signature\":\"AAAA\",\"SigningCertURL\":"
                 "\"https://sns.us-east-1.amazonaws.com/x.pem\","
                 "\"SubscribeURL\":\"https://ignored\",\"Token\":\"ignored\"}");
    cr_assert_not(m.has_subject);
    assert_sts(&m, "Message\nhi\nMessageId\nm-1\nTimestamp\n2024-01-01T00:00:00.000Z\n"
                   "TopicArn\narn:t\nType\nNotification\n");
    aws_sns_message_dispose(&m);
}

Test(aws_sns_message, string_to_sign_treats_a_null_subject_as_absent_and_an_empty_one_as_present)
{
#define SUBJECT_BODY                                                                               \
    "{\"Type\":\"Notification\",\"MessageId\":\"m\",\"TopicArn\":\"t\",\"Message\":\"x\","         \
    "\"Timestamp\":\"ts\",\"SignatureVersion\":\"1\",\"Signature\":\"AAAA\","                      \
    "\"SigningCertURL\":\"u\",\"Subject\":%s}"
    char body[512];
    struct aws_sns_message m;

    cr_assert_lt(snprintf(body, sizeof(body), SUBJECT_BODY, "null"), (int)sizeof(body));
    parse_ok(&m, body);
    cr_assert_not(m.has_subject);
    assert_sts(&m, "Message\nx\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n");
    aws_sns_message_dispose(&m);

    cr_assert_lt(snprintf(body, sizeof(body), SUBJECT_BODY, "\"\""), (int)sizeof(body));
    parse_ok(&m, body);
    cr_assert(m.has_subject);
    assert_sts(&m, "Message\nx\nMessageId\nm\nSubject\n\nTimestamp\nts\nTopicArn\nt\n"
                   "Type\nNotification\n");
    aws_sns_message_dispose(&m);
}

Test(aws_sns_message, string_to_sign_of_confirmations_adds_subscribe_url_and_token_not_subject)
{
    static const char *const types[] = {"SubscriptionConfirmation", "UnsubscribeConfirmation"};
    for (size_t i = 0; i < GW_ARRAY_LEN(types); i++) {
        char body[1024], expected[1024];
        struct aws_sns_message m;
        cr_assert_lt(
            snprintf(
                body, sizeof(body),
                "{\"Type\":\"%s\",\"MessageId\":\"165545c9\",\"Token\":\"2336412f37\","
                "\"TopicArn\":\"arn:aws:sns:us-west-2:123456789012:MyTopic\","
                "\"Subject\":\"not signed\",\"Message\":\"You have chosen to subscribe.\\n"
                "To confirm, visit the SubscribeURL.\",\"SubscribeURL\":"
                "\"https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=2336\","
                "\"Timestamp\":\"2012-04-26T20:45:04.751Z\",\"SignatureVersion\":\"1\","
                "\"Signature\":\"AAAA\",\"SigningCertURL\":\"https://sns.us-west-2.amazonaws."
                "com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem\"}",
                types[i]),
            (int)sizeof(body));
        cr_assert_lt(snprintf(expected, sizeof(expected),
                              "Message\nYou have chosen to subscribe.\n"
                              "To confirm, visit the SubscribeURL.\n"
                              "MessageId\n165545c9\n"
                              "SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/"
                              "?Action=ConfirmSubscription&Token=2336\n"
                              "Timestamp\n2012-04-26T20:45:04.751Z\n"
                              "Token\n2336412f37\n"
                              "TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
                              "Type\n%s\n",
                              types[i]),
                     (int)sizeof(expected));
        parse_ok(&m, body);
        assert_sts(&m, expected);
        aws_sns_message_dispose(&m);
    }
}

Test(aws_sns_message, string_to_sign_uses_the_json_decoded_bytes_of_each_value)
{
    struct aws_sns_message m;
    parse_ok(&m, "{\"Type\":\"Notification\",\"MessageId\":\"m\",\"TopicArn\":\"t\","
                 "\"Message\":\"{\\\"a\\\":\\\"b\\\\/c\\\"}\\r\\n\\u00e9\\ud83d\\ude00\\t\\/\","
                 "\"Timestamp\":\"ts\",\"SignatureVersion\":\"1\",\"Signature\":\"AAAA\","
                 "\"SigningCertURL\":\"u\",\"Subject\":\"caf\\u00e9\"}");
    assert_sts(&m, "Message\n{\"a\":\"b\\/c\"}\r\n\xc3\xa9\xf0\x9f\x98\x80\t/\n"
                   "MessageId\nm\nSubject\ncaf\xc3\xa9\nTimestamp\nts\nTopicArn\nt\n"
                   "Type\nNotification\n");
    aws_sns_message_dispose(&m);
}

Test(aws_sns_message, string_to_sign_of_an_unknown_type_is_null)
{
    struct aws_sns_message m;
    memset(&m, 0, sizeof(m));
    (void)snprintf(m.type, sizeof(m.type), "%s", "Notice");
    char msg[] = "x";
    m.message = msg;
    cr_assert_null(aws_sns_string_to_sign(&m));
}

Test(aws_sns_message, parse_refuses_what_is_not_a_json_object_with_eparse)
{
    static const char *const bad[] = {
        "",
        "{",
        "not json",
        "[]",
        "\"Notification\"",
        "{\"Type\":\"Notification\"} trailing",
        "{\"Type\":\"Notification\",\"Type\":\"Notification\"}",
        "{\"Type\":\"Notification\",\"Message\":\"a\\u0000b\"}",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        struct aws_sns_message m;
        struct gw_err err = {0};
        cr_assert_eq(aws_sns_message_parse(&m, bad[i], strlen(bad[i]), &err), GW_EPARSE,
                     "case %zu: %s", i, bad[i]);
        cr_assert_eq(err.code, GW_EPARSE);
        cr_assert_null(m.message);
        cr_assert_null(m.signature_b64);
        aws_sns_message_dispose(&m);
    }
}

/* Removes key from the JSON of a message and checks that parsing fails with
 * GW_EINVAL, naming the key. */
static void assert_required(const char *body, const char *key)
{
    json_error_t je;
    json_t *o = json_loads(body, 0, &je);
    cr_assert_not_null(o, "%s", je.text);
    cr_assert_eq(json_object_del(o, key), 0, "fixture lacks %s", key);
    char *text = json_dumps(o, 0);
    cr_assert_not_null(text);
    struct aws_sns_message m;
    struct gw_err err = {0};
    cr_assert_eq(aws_sns_message_parse(&m, text, strlen(text), &err), GW_EINVAL, "without %s", key);
    cr_assert_not_null(strstr(err.msg, key), "%s", err.msg);
    aws_sns_message_dispose(&m);

    /* null is no better than absent */
    cr_assert_eq(json_object_set_new(o, key, json_null()), 0);
    free(text);
    text = json_dumps(o, 0);
    cr_assert_not_null(text);
    cr_assert_eq(aws_sns_message_parse(&m, text, strlen(text), &err), GW_EINVAL, "null %s", key);
    free(text);
    json_decref(o);
}

Test(aws_sns_message, parse_refuses_a_message_without_any_field_sns_always_sends)
{
    static const char *const common[] = {"Type",      "MessageId",     "TopicArn",
                                         "Message",   "Timestamp",     "SignatureVersion",
                                         "Signature", "SigningCertURL"};
    struct fields n = notification("https://sns.us-east-1.amazonaws.com/x.pem", "1", "s");
    struct fields c =
        confirmation("SubscriptionConfirmation", "https://sns.us-east-1.amazonaws.com/x.pem", "1");
    EVP_PKEY *key = rsa_key();
    char *nb = body_for(&n, &n, key, EVP_sha1());
    char *cb = body_for(&c, &c, key, EVP_sha1());

    for (size_t i = 0; i < GW_ARRAY_LEN(common); i++) {
        assert_required(nb, common[i]);
        assert_required(cb, common[i]);
    }
    assert_required(cb, "SubscribeURL");
    assert_required(cb, "Token");
    free(nb);
    free(cb);
    EVP_PKEY_free(key);
}

#define MSG_REST                                                                                   \
    "\"MessageId\":\"m\",\"TopicArn\":\"t\",\"Message\":\"x\",\"Timestamp\":\"ts\","               \
    "\"Signature\":\"AAAA\",\"SigningCertURL\":\"u\"}"

Test(aws_sns_message, parse_refuses_unknown_types_non_strings_and_oversized_fields_with_einval)
{
    char longv[400];
    memset(longv, 'a', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    char toolong[1024];
    int n = snprintf(toolong, sizeof(toolong),
                     "{\"Type\":\"Notification\",\"SignatureVersion\":\"1\",\"Subject\":\"%s\","
                     "" MSG_REST,
                     longv);
    cr_assert(n > 0 && n < (int)sizeof(toolong));
    const char *const cases[] = {
        "{\"Type\":\"Notice\",\"SignatureVersion\":\"1\"," MSG_REST,
        "{\"Type\":\"notification\",\"SignatureVersion\":\"1\"," MSG_REST,
        "{\"Type\":1,\"SignatureVersion\":\"1\"," MSG_REST,
        "{\"Type\":\"Notification\",\"SignatureVersion\":1," MSG_REST,
        "{\"Type\":\"Notification\",\"SignatureVersion\":\"10000\"," MSG_REST,
        "{\"Type\":\"Notification\",\"SignatureVersion\":\"1\",\"Subject\":[\"s\"]," MSG_REST,
        "{\"Type\":\"Notification\",\"SignatureVersion\":\"1\",\"Subject\":true," MSG_REST,
        toolong,
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        struct aws_sns_message m;
        struct gw_err err = {0};
        cr_assert_eq(aws_sns_message_parse(&m, cases[i], strlen(cases[i]), &err), GW_EINVAL,
                     "case %zu: %s", i, cases[i]);
        cr_assert_null(m.message);
        aws_sns_message_dispose(&m);
    }
}

Test(aws_sns_message, parse_refuses_a_body_over_the_limit_before_reading_it)
{
    struct aws_sns_message m;
    struct gw_err err = {0};
    /* The length alone decides: the memory behind it is never read. */
    static const char small[] = "{}";
    cr_assert_eq(aws_sns_message_parse(&m, small, AWS_SNS_MAX_BODY + 1, &err), GW_ETOOBIG);
}

Test(aws_sns_message, dispose_is_safe_twice_and_on_null)
{
    struct aws_sns_message m;
    parse_ok(&m, aws_doc_notification);
    aws_sns_message_dispose(&m);
    aws_sns_message_dispose(&m);
    aws_sns_message_dispose(NULL);
    aws_sns_verifier_free(NULL);
}

static const char *const good_urls[] = {
    "https://sns.us-east-1.amazonaws.com/"
    "SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem",
    "https://sns.us-west-2.amazonaws.com/"
    "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
    "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
    "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.eu-central-2.amazonaws.com:443/SimpleNotificationService-abc.pem",
    "HTTPS://SNS.AP-SOUTHEAST-1.AMAZONAWS.COM/SimpleNotificationService-abc.pem",
    "https://sns.il-central-1.amazonaws.com/a/b/SimpleNotificationService-abc.pem",
};

static const char *const bad_urls[] = {
    "",
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "ftp://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "file:///etc/ssl/certs/sns.pem",
    "//sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https:/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    /* other hosts */
    "https://s3.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://evil.example.com/SimpleNotificationService-abc.pem",
    "https://sqs.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    /* lookalikes */
    "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-abc.pem",
    "https://evilsns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://xsns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.evilamazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com.cn.evil.com/SimpleNotificationService-abc.pem",
    "https://sns.evil.com.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com./SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.co/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1a.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.-.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns..amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com:443.evil.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com%2eevil.com/SimpleNotificationService-abc.pem",
    "https://\xd1\x95ns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    /* userinfo */
    "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-abc.pem",
    "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://user:pass@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com\\@evil.com/SimpleNotificationService-abc.pem",
    /* ports */
    "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com:80/SimpleNotificationService-abc.pem",
    /* not a .pem, or more than a path */
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem.txt",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc",
    "https://sns.us-east-1.amazonaws.com/",
    "https://sns.us-east-1.amazonaws.com",
    "https://sns.us-east-1.amazonaws.com/.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
    "https://sns.us-east-1.amazonaws.com/x?.pem",
    "https://sns.us-east-1.amazonaws.com/x#.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem#",
    /* addresses */
    "https://54.239.28.85/SimpleNotificationService-abc.pem",
    "https://127.0.0.1/SimpleNotificationService-abc.pem",
    "https://[::1]/SimpleNotificationService-abc.pem",
    "https://2130706433/SimpleNotificationService-abc.pem",
    /* white space and controls */
    "https://sns.us-east-1.amazonaws.com /SimpleNotificationService-abc.pem",
    " https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem\n",
    "https://sns.us-east-1.amazonaws.com/Simple\tNotificationService-abc.pem",
};

Test(aws_sns_message, cert_url_check_accepts_sns_hosts_over_https_naming_a_pem)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(good_urls); i++) {
        struct gw_err err = {0};
        cr_assert_eq(aws_sns_cert_url_check(NULL, good_urls[i], &err), GW_OK, "%s: %s",
                     good_urls[i], err.msg);
    }
}

Test(aws_sns_message, cert_url_check_refuses_every_url_of_the_bad_table)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(bad_urls); i++) {
        struct gw_err err = {0};
        cr_assert_eq(aws_sns_cert_url_check(NULL, bad_urls[i], &err), GW_EINVAL, "accepted: %s",
                     bad_urls[i]);
        cr_assert_eq(err.code, GW_EINVAL);
        cr_assert_eq(strncmp(err.msg, "SigningCertURL ", 15), 0, "%s", err.msg);
    }
    /* Too long, though well formed. */
    char longurl[1200];
    int n =
        snprintf(longurl, sizeof(longurl), "https://sns.us-east-1.amazonaws.com/%0*d.pem", 1100, 7);
    cr_assert(n > 0 && n < (int)sizeof(longurl));
    cr_assert_eq(aws_sns_cert_url_check(NULL, longurl, NULL), GW_EINVAL);
}

Test(aws_sns_message, cert_url_test_widening_opens_only_the_named_host)
{
    struct aws_sns_verifier_opts o = {.allowed_cert_host_suffix = "127.0.0.1",
                                      .allow_http_cert_url = 1};
    static const char *const good[] = {
        "http://127.0.0.1:8080/x.pem",
        "https://127.0.0.1:1/x.pem",
        "http://127.0.0.1/a/b.pem",
    };
    static const char *const bad[] = {
        "http://127.0.0.2:8080/x.pem",
        "http://1127.0.0.1:8080/x.pem",
        "http://sns.us-east-1.amazonaws.com/x.pem", /* http stays closed for AWS hosts */
        "http://127.0.0.1:8080/x.txt",
        "http://u@127.0.0.1:8080/x.pem",
        "http://127.0.0.1:8080/x.pem?q",
        "ftp://127.0.0.1/x.pem",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(good); i++)
        cr_assert_eq(aws_sns_cert_url_check(&o, good[i], NULL), GW_OK, "%s", good[i]);
    for (size_t i = 0; i < GW_ARRAY_LEN(good_urls); i++)
        cr_assert_eq(aws_sns_cert_url_check(&o, good_urls[i], NULL), GW_OK, "%s", good_urls[i]);
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++)
        cr_assert_eq(aws_sns_cert_url_check(&o, bad[i], NULL), GW_EINVAL, "%s", bad[i]);

    /* Without allow_http_cert_url, the test host needs https too. */
    o.allow_http_cert_url = 0;
    cr_assert_eq(aws_sns_cert_url_check(&o, "http://127.0.0.1:8080/x.pem", NULL), GW_EINVAL);
    cr_assert_eq(aws_sns_cert_url_check(&o, "https://127.0.0.1:8080/x.pem", NULL), GW_OK);
    /* allow_http_cert_url alone widens nothing. */
    struct aws_sns_verifier_opts http_only = {.allow_http_cert_url = 1};
    cr_assert_eq(aws_sns_cert_url_check(&http_only, "http://127.0.0.1:8080/x.pem", NULL),
                 GW_EINVAL);
    cr_assert_eq(
        aws_sns_cert_url_check(&http_only, "http://sns.us-east-1.amazonaws.com/x.pem", NULL),
        GW_EINVAL);
}

Test(aws_sns_message, url_text_rule_wants_printable_ascii_over_http_or_https)
{
    int https = -1;
    cr_assert_null(aws_sns_url_text_refusal("https://a/b.pem", &https));
    cr_assert_eq(https, 1);
    cr_assert_null(aws_sns_url_text_refusal("HTTP://a/b.pem", &https));
    cr_assert_eq(https, 0);
    static const char *const holds[] = {
        "https://a b/x.pem", "https://a/x.pem\n", "https://a\\@b/x.pem",      "https://u@a/x.pem",
        "https://a/x.pem?q", "https://a/x.pem#f", "https://\xd1\x95ns/x.pem", "https://a/\x7f.pem"};
    for (size_t i = 0; i < GW_ARRAY_LEN(holds); i++) {
        https = -1;
        cr_assert_str_eq(aws_sns_url_text_refusal(holds[i], &https),
                         "holds a character it may not hold", "%s", holds[i]);
        cr_assert_eq(https, 0);
    }
    cr_assert_str_eq(aws_sns_url_text_refusal("", &https), "is empty or too long");
    char longurl[URL_LONG];
    memset(longurl, 'a', sizeof(longurl) - 1);
    longurl[sizeof(longurl) - 1] = '\0';
    memcpy(longurl, "https://", 8);
    cr_assert_str_eq(aws_sns_url_text_refusal(longurl, &https), "is empty or too long");
    longurl[1023] = '\0'; /* 1023 characters: the most there may be */
    cr_assert_null(aws_sns_url_text_refusal(longurl, &https));
    cr_assert_str_eq(aws_sns_url_text_refusal("ftp://a/x.pem", &https), "is not https");
    cr_assert_str_eq(aws_sns_url_text_refusal("//a/x.pem", &https), "is not https");
}

Test(aws_sns_message, url_host_rule_wants_an_sns_host_on_443_unless_widened)
{
    int widened = -1;
    cr_assert_null(
        aws_sns_url_host_refusal("sns.us-east-1.amazonaws.com", NULL, 1, NULL, 0, &widened));
    cr_assert_eq(widened, 0);
    cr_assert_null(
        aws_sns_url_host_refusal("sns.cn-north-1.amazonaws.com.cn", "443", 1, NULL, 0, &widened));
    cr_assert_str_eq(
        aws_sns_url_host_refusal("sns.us-east-1.amazonaws.com", "8443", 1, NULL, 0, &widened),
        "names a port other than 443");
    cr_assert_str_eq(
        aws_sns_url_host_refusal("sns.us-east-1.amazonaws.com", NULL, 0, NULL, 1, &widened),
        "is not https");
    static const char *const hosts[] = {"sns.amazonaws.com", "sqs.us-east-1.amazonaws.com",
                                        "sns.us-east-1.amazonaws.com.evil.com",
                                        "sns.us-east-1a.amazonaws.com", "127.0.0.1"};
    for (size_t i = 0; i < GW_ARRAY_LEN(hosts); i++)
        cr_assert_str_eq(aws_sns_url_host_refusal(hosts[i], NULL, 1, NULL, 0, &widened),
                         "is not on an SNS host (sns.<region>.amazonaws.com)", "%s", hosts[i]);

    /* The test widening: the named host and its subdomains, any port, http when allowed. */
    cr_assert_null(aws_sns_url_host_refusal("127.0.0.1", "8080", 1, "127.0.0.1", 0, &widened));
    cr_assert_eq(widened, 1);
    cr_assert_null(aws_sns_url_host_refusal("a.test", "1", 0, "test", 1, &widened));
    cr_assert_eq(widened, 1);
    cr_assert_str_eq(aws_sns_url_host_refusal("a.test", NULL, 0, "test", 0, &widened),
                     "is not https");
    cr_assert_str_eq(aws_sns_url_host_refusal("atest", NULL, 1, "test", 1, &widened),
                     "is not on an SNS host (sns.<region>.amazonaws.com)");
    cr_assert_eq(widened, 0);
    cr_assert_str_eq(
        aws_sns_url_host_refusal("sns.us-east-1.amazonaws.com", NULL, 0, "test", 1, &widened),
        "is not https", "http stays closed for AWS hosts");
}

Test(aws_sns_message, url_path_rule_wants_a_named_pem_file)
{
    cr_assert_null(aws_sns_url_path_refusal("/SimpleNotificationService-abc.pem"));
    cr_assert_null(aws_sns_url_path_refusal("/a/b.pem"));
    cr_assert_null(aws_sns_url_path_refusal("/x.pem"));
    static const char *const bad[] = {"/.pem", "/", "", "/x.pem.txt", "/x.PEM", "x.pem/"};
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++)
        cr_assert_str_eq(aws_sns_url_path_refusal(bad[i]), "does not name a .pem file", "%s",
                         bad[i]);
    cr_assert_str_eq(aws_sns_url_path_refusal(NULL), "does not name a .pem file");
}

Test(aws_sns_message, verifier_new_refuses_an_unreadable_trust_file_and_an_empty_suffix)
{
    struct aws_sns_verifier *v = (struct aws_sns_verifier *)1;
    struct gw_err err = {0};
    struct aws_sns_verifier_opts o = {.trust_pem_file = "/nonexistent/mlgw-sns-ca.pem"};
    cr_assert_eq(aws_sns_verifier_new(&v, &o, &err), GW_EINVAL);
    cr_assert_null(v);

    char *empty = tmp_file("no certificate here\n");
    o.trust_pem_file = empty;
    cr_assert_eq(aws_sns_verifier_new(&v, &o, &err), GW_EINVAL);
    cr_assert_null(v);
    tmp_remove(empty);

    struct aws_sns_verifier_opts e = {.allowed_cert_host_suffix = ""};
    cr_assert_eq(aws_sns_verifier_new(&v, &e, &err), GW_EINVAL);
    cr_assert_null(v);
}

/* ---- verification end to end ------------------------------------------------------------------
 */

/* The fixture of the verify suite: a CA, a signing certificate it issued for
 * sns.amazonaws.com, served at SNS_CERT_PATH, and a verifier with the test
 * widening that trusts only that CA. */
static struct {
    EVP_PKEY *ca_key, *key;
    X509 *ca, *cert;
    char *ca_path;
    struct cert_server srv;
    struct aws_sns_verifier *v;
    char url[256];
} F;

static struct aws_sns_verifier *verifier_for(const char *trust, const char *suffix, int allow_http,
                                             const char *ca_file)
{
    struct aws_sns_verifier *v = NULL;
    struct gw_err err = {0};
    struct aws_sns_verifier_opts o = {
        .ca_file = ca_file,
        .allowed_cert_host_suffix = suffix,
        .allow_http_cert_url = allow_http,
        .timeout_ms = 3000,
        .failure_ttl_ms = 300,
        .trust_pem_file = trust,
    };
    cr_assert_eq(aws_sns_verifier_new(&v, &o, &err), GW_OK, "%s", err.msg);
    cr_assert_not_null(v);
    return v;
}

static void url_at(char *out, size_t outlen, const struct cert_server *s, const char *path)
{
    int n = snprintf(out, outlen, "%s%s", s->base, path);
    cr_assert(n > 0 && (size_t)n < outlen);
}

static void verify_init(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    memset(&F, 0, sizeof(F));
    F.ca_key = rsa_key();
    F.ca = make_cert(F.ca_key, "ml-gateway test SNS CA", NULL, 1, NULL, NULL, -60, 30 * DAY);
    F.key = rsa_key();
    F.cert = make_cert(F.key, "sns.amazonaws.com", NULL, 0, F.ca, F.ca_key, -60, DAY);
    char *ca_pem = pem_of(&F.ca, 1);
    F.ca_path = tmp_file(ca_pem);
    free(ca_pem);
    server_start(&F.srv, NULL, NULL);
    server_serve_certs(&F.srv, SNS_CERT_PATH, &F.cert, 1);
    url_at(F.url, sizeof(F.url), &F.srv, SNS_CERT_PATH);
    F.v = verifier_for(F.ca_path, "127.0.0.1", 1, NULL);
}

static void verify_fini(void)
{
    aws_sns_verifier_free(F.v);
    server_stop(&F.srv);
    tmp_remove(F.ca_path);
    X509_free(F.cert);
    X509_free(F.ca);
    EVP_PKEY_free(F.key);
    EVP_PKEY_free(F.ca_key);
    curl_global_cleanup();
}

TestSuite(aws_sns_verify, .init = verify_init, .fini = verify_fini);

static int verify(const struct aws_sns_message *m, struct gw_err *err)
{
    memset(err, 0, sizeof(*err));
    return aws_sns_verify(F.v, m, err);
}

static void assert_valid(const struct fields *f)
{
    struct aws_sns_message m;
    struct gw_err err;
    message_signed(&m, f, F.key);
    cr_assert_eq(verify(&m, &err), GW_OK, "%s v%s subject %s: %s", f->type, f->version,
                 f->subject ? f->subject : "(none)", err.msg);
    aws_sns_message_dispose(&m);
}

static void assert_refused(const struct aws_sns_message *m, int code, const char *msg_part)
{
    struct gw_err err;
    cr_assert_eq(verify(m, &err), code, "expected %s, got %d: %s", gw_code_name(code), err.code,
                 err.msg);
    cr_assert_eq(err.code, code);
    cr_assert_not_null(strstr(err.msg, msg_part), "'%s' not in '%s'", msg_part, err.msg);
}

Test(aws_sns_verify, notifications_v1_and_v2_with_and_without_subject_are_valid)
{
    static const char *const versions[] = {"1", "2"};
    static const char *const subjects[] = {NULL, "Batch job train-42 SUCCEEDED"};
    for (size_t i = 0; i < GW_ARRAY_LEN(versions); i++) {
        for (size_t j = 0; j < GW_ARRAY_LEN(subjects); j++) {
            struct fields f = notification(F.url, versions[i], subjects[j]);
            assert_valid(&f);
        }
    }
}

Test(aws_sns_verify, subscription_and_unsubscribe_confirmations_are_valid_in_both_versions)
{
    static const char *const types[] = {"SubscriptionConfirmation", "UnsubscribeConfirmation"};
    for (size_t i = 0; i < GW_ARRAY_LEN(types); i++) {
        struct fields f1 = confirmation(types[i], F.url, "1");
        struct fields f2 = confirmation(types[i], F.url, "2");
        assert_valid(&f1);
        assert_valid(&f2);
    }
}

Test(aws_sns_verify, any_change_to_a_signed_field_is_refused)
{
    struct fields n = notification(F.url, "2", "subject");
    struct fields c = confirmation("SubscriptionConfirmation", F.url, "1");
    struct fields with_subject = notification(F.url, "2", NULL);
    struct {
        const struct fields *orig;
        struct fields sent;
    } cases[12];
    size_t k = 0;
#define TAMPER(orig_, field_, value_)                                                              \
    do {                                                                                           \
        cases[k].orig = &(orig_);                                                                  \
        cases[k].sent = (orig_);                                                                   \
        cases[k].sent.field_ = (value_);                                                           \
        k++;                                                                                       \
    } while (0)
    TAMPER(n, message, "{\"status\":\"FAILED\"}");
    TAMPER(n, topic_arn, "arn:aws:sns:us-east-1:999999999999:ml-gateway-batch-events");
    TAMPER(n, timestamp, "2030-05-02T10:54:06.655Z");
    TAMPER(n, message_id, "another-id");
    TAMPER(n, subject, "another subject");
    TAMPER(n, subject, NULL);
    TAMPER(with_subject, subject, "added");
    TAMPER(c, message, "Welcome.");
    TAMPER(c, token, "ffff");
    TAMPER(c, subscribe_url, "https://sns.us-east-1.amazonaws.com/?Action=Other");
    TAMPER(c, type, "UnsubscribeConfirmation");
    TAMPER(c, timestamp, "2012-04-26T20:45:05.751Z");
#undef TAMPER
    cr_assert_eq(k, GW_ARRAY_LEN(cases));

    for (size_t i = 0; i < k; i++) {
        struct aws_sns_message m;
        message_signed_as(&m, &cases[i].sent, cases[i].orig, F.key, md_for(cases[i].orig->version));
        assert_refused(&m, GW_EINVAL, "signature does not match");
        aws_sns_message_dispose(&m);
    }
    /* The untouched messages pass: the refusals above are the changes' doing. */
    assert_valid(&n);
    assert_valid(&c);
    assert_valid(&with_subject);
}

Test(aws_sns_verify, a_signature_made_with_another_key_is_refused)
{
    EVP_PKEY *other = rsa_key();
    struct fields f = notification(F.url, "1", NULL);
    struct aws_sns_message m;
    message_signed(&m, &f, other);
    assert_refused(&m, GW_EINVAL, "signature does not match");
    aws_sns_message_dispose(&m);
    EVP_PKEY_free(other);
}

Test(aws_sns_verify, a_signature_made_with_the_other_versions_digest_is_refused)
{
    struct fields f1 = notification(F.url, "1", NULL);
    struct fields f2 = notification(F.url, "2", NULL);
    struct aws_sns_message m;
    message_signed_as(&m, &f1, &f1, F.key, EVP_sha256());
    assert_refused(&m, GW_EINVAL, "signature does not match");
    aws_sns_message_dispose(&m);
    message_signed_as(&m, &f2, &f2, F.key, EVP_sha1());
    assert_refused(&m, GW_EINVAL, "signature does not match");
    aws_sns_message_dispose(&m);
}

Test(aws_sns_verify, signature_versions_other_than_1_and_2_are_refused_before_any_fetch)
{
    static const char *const versions[] = {"3", "0", "", "01", "2 ", "v2"};
    for (size_t i = 0; i < GW_ARRAY_LEN(versions); i++) {
        struct fields f = notification(F.url, versions[i], NULL);
        struct aws_sns_message m;
        message_signed_as(&m, &f, &f, F.key, EVP_sha256());
        assert_refused(&m, GW_EINVAL, "SignatureVersion");
        aws_sns_message_dispose(&m);
    }
    cr_assert_eq(server_requests(&F.srv), 0);
}

Test(aws_sns_verify, a_malformed_signature_is_refused)
{
    static const char *const sigs[] = {"", "not base64!", "AAA", "AAAA=AAA", "====", "QUJD\nREVG"};
    struct fields f = notification(F.url, "2", NULL);
    for (size_t i = 0; i < GW_ARRAY_LEN(sigs); i++) {
        struct aws_sns_message m;
        message_signed(&m, &f, F.key);
        free(m.signature_b64);
        m.signature_b64 = strdup(sigs[i]);
        cr_assert_not_null(m.signature_b64);
        assert_refused(&m, GW_EINVAL, "Signature");
        aws_sns_message_dispose(&m);
    }
    /* Well-formed base64 of the wrong length. */
    struct aws_sns_message m;
    message_signed(&m, &f, F.key);
    m.signature_b64[4] = '\0';
    assert_refused(&m, GW_EINVAL, "signature does not match");
    aws_sns_message_dispose(&m);
}

/* Serves certs at path and checks that a message signed by key and pointing
 * there is refused with msg_part in the error. */
static void assert_cert_refused(const char *path, X509 *const *certs, size_t n, EVP_PKEY *key,
                                const char *msg_part)
{
    char url[256];
    url_at(url, sizeof(url), &F.srv, path);
    server_serve_certs(&F.srv, path, certs, n);
    struct fields f = notification(url, "2", NULL);
    struct aws_sns_message m;
    message_signed(&m, &f, key);
    assert_refused(&m, GW_EINVAL, msg_part);
    aws_sns_message_dispose(&m);
}

Test(aws_sns_verify, a_certificate_not_issued_by_the_trusted_ca_is_refused)
{
    /* A rogue CA with the very name of the trusted one, and a self-signed certificate. */
    EVP_PKEY *rogue_ca_key = rsa_key(), *key = rsa_key();
    X509 *rogue_ca =
        make_cert(rogue_ca_key, "ml-gateway test SNS CA", NULL, 1, NULL, NULL, -60, 30 * DAY);
    X509 *by_rogue = make_cert(key, "sns.amazonaws.com", NULL, 0, rogue_ca, rogue_ca_key, -60, DAY);
    X509 *self = make_cert(key, "sns.amazonaws.com", NULL, 0, NULL, NULL, -60, DAY);
    X509 *with_rogue_ca[] = {by_rogue, rogue_ca};

    assert_cert_refused("/rogue.pem", &by_rogue, 1, key, "not trusted");
    assert_cert_refused("/rogue-chain.pem", with_rogue_ca, 2, key, "not trusted");
    assert_cert_refused("/self.pem", &self, 1, key, "not trusted");
    /* The trusted CA's own certificate (a CA, not sns.amazonaws.com) signs nothing either. */
    assert_cert_refused("/ca.pem", &F.ca, 1, F.ca_key, "not issued to sns.amazonaws.com");

    X509_free(self);
    X509_free(by_rogue);
    X509_free(rogue_ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(rogue_ca_key);
}

Test(aws_sns_verify, a_trusted_certificate_must_be_named_sns_amazonaws_com_without_wildcards)
{
    X509 *other = make_cert(F.key, "sns.amazonaws.com.evil.com", NULL, 0, F.ca, F.ca_key, -60, DAY);
    X509 *wild = make_cert(F.key, "amazonaws", "DNS:*.amazonaws.com", 0, F.ca, F.ca_key, -60, DAY);
    /* A subjectAltName overrides the CN, both ways. */
    X509 *san_other =
        make_cert(F.key, "sns.amazonaws.com", "DNS:sqs.amazonaws.com", 0, F.ca, F.ca_key, -60, DAY);
    X509 *san_good =
        make_cert(F.key, "Amazon SNS", "DNS:sns.amazonaws.com", 0, F.ca, F.ca_key, -60, DAY);
    assert_cert_refused("/other.pem", &other, 1, F.key, "not issued to");
    assert_cert_refused("/wild.pem", &wild, 1, F.key, "not issued to");
    assert_cert_refused("/san-other.pem", &san_other, 1, F.key, "not issued to");

    char url[256];
    url_at(url, sizeof(url), &F.srv, "/san-good.pem");
    server_serve_certs(&F.srv, "/san-good.pem", &san_good, 1);
    struct fields f = notification(url, "1", "s");
    assert_valid(&f);

    X509_free(san_good);
    X509_free(san_other);
    X509_free(wild);
    X509_free(other);
}

Test(aws_sns_verify, an_expired_or_not_yet_valid_certificate_is_refused)
{
    X509 *expired = make_cert(F.key, "sns.amazonaws.com", NULL, 0, F.ca, F.ca_key, -2 * DAY, -DAY);
    X509 *future = make_cert(F.key, "sns.amazonaws.com", NULL, 0, F.ca, F.ca_key, DAY, 2 * DAY);
    assert_cert_refused("/expired.pem", &expired, 1, F.key, "expired");
    assert_cert_refused("/future.pem", &future, 1, F.key, "not yet valid");
    X509_free(future);
    X509_free(expired);
}

Test(aws_sns_verify, a_chain_through_an_intermediate_sent_with_the_certificate_is_accepted)
{
    EVP_PKEY *mid_key = rsa_key();
    X509 *mid = make_cert(mid_key, "ml-gateway test SNS intermediate", NULL, 1, F.ca, F.ca_key, -60,
                          30 * DAY);
    X509 *leaf = make_cert(F.key, "sns.amazonaws.com", NULL, 0, mid, mid_key, -60, DAY);
    X509 *chain[] = {leaf, mid};

    assert_cert_refused("/leaf-alone.pem", &leaf, 1, F.key, "not trusted");
    char url[256];
    url_at(url, sizeof(url), &F.srv, "/chain.pem");
    server_serve_certs(&F.srv, "/chain.pem", chain, 2);
    struct fields f = notification(url, "2", NULL);
    assert_valid(&f);

    X509_free(leaf);
    X509_free(mid);
    EVP_PKEY_free(mid_key);
}

Test(aws_sns_verify, an_intermediate_in_the_trust_file_is_an_anchor_of_its_own)
{
    EVP_PKEY *mid_key = rsa_key();
    X509 *mid = make_cert(mid_key, "ml-gateway test SNS intermediate", NULL, 1, F.ca, F.ca_key, -60,
                          30 * DAY);
    X509 *leaf = make_cert(F.key, "sns.amazonaws.com", NULL, 0, mid, mid_key, -60, DAY);
    char *mid_pem = pem_of(&mid, 1);
    char *mid_path = tmp_file(mid_pem);
    struct aws_sns_verifier *v = verifier_for(mid_path, "127.0.0.1", 1, NULL);
    char url[256];
    url_at(url, sizeof(url), &F.srv, "/leaf.pem");
    server_serve_certs(&F.srv, "/leaf.pem", &leaf, 1);

    struct fields f = notification(url, "2", NULL);
    struct aws_sns_message m;
    struct gw_err err = {0};
    message_signed(&m, &f, F.key);
    cr_assert_eq(aws_sns_verify(v, &m, &err), GW_OK, "%s", err.msg);
    aws_sns_message_dispose(&m);
    /* F's certificate comes from the root, which this verifier does not trust. */
    struct fields g = notification(F.url, "2", NULL);
    message_signed(&m, &g, F.key);
    cr_assert_eq(aws_sns_verify(v, &m, &err), GW_EINVAL);
    cr_assert_not_null(strstr(err.msg, "not trusted"), "%s", err.msg);
    aws_sns_message_dispose(&m);

    aws_sns_verifier_free(v);
    tmp_remove(mid_path);
    free(mid_pem);
    X509_free(leaf);
    X509_free(mid);
    EVP_PKEY_free(mid_key);
}

Test(aws_sns_verify, two_messages_with_one_certificate_url_fetch_it_once)
{
    struct fields a = notification(F.url, "1", "a");
    struct fields b = confirmation("SubscriptionConfirmation", F.url, "2");
    assert_valid(&a);
    cr_assert_eq(server_requests(&F.srv), 1);
    assert_valid(&b);
    assert_valid(&a);
    cr_assert_eq(server_requests(&F.srv), 1, "the certificate was fetched again");

    /* Another URL is another fetch. */
    char url[256];
    url_at(url, sizeof(url), &F.srv, "/SimpleNotificationService-second.pem");
    server_serve_certs(&F.srv, "/SimpleNotificationService-second.pem", &F.cert, 1);
    struct fields c = notification(url, "2", NULL);
    assert_valid(&c);
    cr_assert_eq(server_requests(&F.srv), 2);
    assert_valid(&c);
    cr_assert_eq(server_requests(&F.srv), 2);
}

Test(aws_sns_verify, the_cache_is_bounded_and_forgets_the_least_recently_used_url)
{
    enum { N = 17 }; /* one more than the cache holds */
    char urls[N][256];
    for (int i = 0; i < N; i++) {
        char path[64];
        (void)snprintf(path, sizeof(path), "/cert-%02d.pem", i);
        server_serve_certs(&F.srv, path, &F.cert, 1);
        url_at(urls[i], sizeof(urls[i]), &F.srv, path);
    }
    /* Fill the cache with 0..15, use 0 again so that 1 is the oldest, then 16. */
    for (int i = 0; i < N - 1; i++) {
        struct fields f = notification(urls[i], "2", NULL);
        assert_valid(&f);
    }
    struct fields f0 = notification(urls[0], "2", NULL);
    assert_valid(&f0);
    cr_assert_eq(server_requests(&F.srv), N - 1);
    struct fields f16 = notification(urls[N - 1], "2", NULL);
    assert_valid(&f16);
    cr_assert_eq(server_requests(&F.srv), N);
    /* 0 stayed, 1 went. */
    assert_valid(&f0);
    cr_assert_eq(server_requests(&F.srv), N);
    struct fields f1 = notification(urls[1], "2", NULL);
    assert_valid(&f1);
    cr_assert_eq(server_requests(&F.srv), N + 1);
}

Test(aws_sns_verify, an_unreachable_or_failing_certificate_server_is_unavailable)
{
    struct cert_server down;
    char url[256];
    server_start(&down, NULL, NULL);
    url_at(url, sizeof(url), &down, SNS_CERT_PATH);
    server_stop(&down);

    struct fields f = notification(url, "2", NULL);
    struct aws_sns_message m;
    message_signed(&m, &f, F.key);
    assert_refused(&m, GW_EUNAVAIL, "could not be fetched");
    aws_sns_message_dispose(&m);

    /* HTTP errors, then the same URL once it works: a failure is remembered
     * for failure_ttl_ms (300 ms here), during which the URL is not fetched. */
    url_at(url, sizeof(url), &F.srv, "/flaky.pem");
    struct fields g = notification(url, "2", NULL);
    message_signed(&m, &g, F.key);
    server_serve(&F.srv, "/flaky.pem", 503, "slow down");
    assert_refused(&m, GW_EUNAVAIL, "HTTP 503");
    server_serve(&F.srv, "/flaky.pem", 404, "no such file");
    assert_refused(&m, GW_EUNAVAIL, "not fetched again");
    cr_assert_eq(server_requests(&F.srv), 1, "a recent failure costs no fetch");
    usleep(350 * 1000);
    assert_refused(&m, GW_EUNAVAIL, "HTTP 404");
    server_serve_certs(&F.srv, "/flaky.pem", &F.cert, 1);
    usleep(350 * 1000);
    struct gw_err err;
    cr_assert_eq(verify(&m, &err), GW_OK, "%s", err.msg);
    aws_sns_message_dispose(&m);
    cr_assert_eq(server_requests(&F.srv), 3);
}

Test(aws_sns_verify, an_oversized_or_non_pem_certificate_file_is_refused)
{
    size_t big = (size_t)70 * 1024;
    char *huge = malloc(big + 1);
    cr_assert_not_null(huge);
    memset(huge, 'A', big);
    huge[big] = '\0';
    struct aws_sns_message m;
    char url[256];

    url_at(url, sizeof(url), &F.srv, "/huge.pem");
    server_serve(&F.srv, "/huge.pem", 200, huge);
    struct fields f = notification(url, "2", NULL);
    message_signed(&m, &f, F.key);
    assert_refused(&m, GW_EINVAL, "larger than");
    aws_sns_message_dispose(&m);
    free(huge);

    url_at(url, sizeof(url), &F.srv, "/garbage.pem");
    server_serve(&F.srv, "/garbage.pem", 200,
                 "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n");
    struct fields g = notification(url, "2", NULL);
    message_signed(&m, &g, F.key);
    assert_refused(&m, GW_EINVAL, "not a PEM certificate");
    aws_sns_message_dispose(&m);
}

Test(aws_sns_verify, without_the_test_widening_the_local_url_is_refused_before_any_fetch)
{
    struct aws_sns_verifier *strict = verifier_for(F.ca_path, NULL, 1, NULL);
    struct aws_sns_verifier *https_only = verifier_for(F.ca_path, "127.0.0.1", 0, NULL);
    struct fields f = notification(F.url, "2", NULL);
    struct aws_sns_message m;
    struct gw_err err = {0};

    message_signed(&m, &f, F.key);
    cr_assert_eq(aws_sns_verify(strict, &m, &err), GW_EINVAL);
    cr_assert_not_null(strstr(err.msg, "SigningCertURL"), "%s", err.msg);
    cr_assert_eq(aws_sns_verify(https_only, &m, &err), GW_EINVAL);
    cr_assert_not_null(strstr(err.msg, "SigningCertURL is not https"), "%s", err.msg);
    cr_assert_eq(server_requests(&F.srv), 0);
    /* and the widened verifier takes it */
    cr_assert_eq(verify(&m, &err), GW_OK, "%s", err.msg);
    aws_sns_message_dispose(&m);
    aws_sns_verifier_free(https_only);
    aws_sns_verifier_free(strict);
}

Test(aws_sns_verify, errors_name_the_failure_and_never_the_message_or_the_url)
{
    EVP_PKEY *other = rsa_key();
    struct fields f = notification(F.url, "2", "secret-subject-text");
    f.message = "secret-message-text";
    struct aws_sns_message m;
    struct gw_err err;
    message_signed(&m, &f, other);
    cr_assert_eq(verify(&m, &err), GW_EINVAL);
    cr_assert_str_eq(err.msg, "signature does not match the message");
    aws_sns_message_dispose(&m);

    f.cert_url = "https://user:secret-password@sns.us-east-1.amazonaws.com/x.pem";
    message_signed(&m, &f, other);
    cr_assert_eq(verify(&m, &err), GW_EINVAL);
    cr_assert_null(strstr(err.msg, "secret"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "amazonaws"), "%s", err.msg);
    aws_sns_message_dispose(&m);
    EVP_PKEY_free(other);
}

struct worker {
    const struct aws_sns_message *m;
    int failures;
};

static void *verify_many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20; i++) {
        struct gw_err err;
        if (aws_sns_verify(F.v, w->m, &err) != GW_OK)
            w->failures++;
    }
    return NULL;
}

Test(aws_sns_verify, threads_share_one_verifier_and_its_cache)
{
    enum { T = 6 };
    struct fields f = notification(F.url, "2", "threads");
    struct fields bad = f;
    bad.message = "tampered";
    struct aws_sns_message good_m, bad_m;
    message_signed(&good_m, &f, F.key);
    message_signed_as(&bad_m, &bad, &f, F.key, EVP_sha256());
    pthread_t th[T];
    struct worker w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct worker){.m = (i % 2 == 0) ? &good_m : &bad_m, .failures = 0};
        cr_assert_eq(pthread_create(&th[i], NULL, verify_many, &w[i]), 0);
    }
    for (int i = 0; i < T; i++)
        cr_assert_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < T; i++)
        cr_assert_eq(w[i].failures, i % 2 == 0 ? 0 : 20, "worker %d", i);
    int n = server_requests(&F.srv);
    cr_assert(n >= 1 && n <= T, "%d fetches", n);
    aws_sns_message_dispose(&bad_m);
    aws_sns_message_dispose(&good_m);
}

Test(aws_sns_verify, https_certificate_fetches_verify_the_servers_tls_certificate)
{
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        cr_skip_test("libmicrohttpd was built without TLS");
    EVP_PKEY *tls_key = rsa_key();
    X509 *tls_cert = make_cert(tls_key, "127.0.0.1", "IP:127.0.0.1", 0, F.ca, F.ca_key, -60, DAY);
    char *kp = key_pem(tls_key), *cp = pem_of(&tls_cert, 1);
    struct cert_server tls;
    server_start(&tls, kp, cp);
    server_serve_certs(&tls, SNS_CERT_PATH, &F.cert, 1);
    char url[256];
    url_at(url, sizeof(url), &tls, SNS_CERT_PATH);
    cr_assert_eq(strncmp(url, "https://", 8), 0);

    struct fields f = notification(url, "2", NULL);
    struct aws_sns_message m;
    struct gw_err err = {0};
    message_signed(&m, &f, F.key);
    /* The system's CAs do not know the test CA: the TLS handshake fails. */
    struct aws_sns_verifier *sys = verifier_for(F.ca_path, "127.0.0.1", 0, NULL);
    cr_assert_eq(aws_sns_verify(sys, &m, &err), GW_EUNAVAIL, "%s", err.msg);
    cr_assert_eq(server_requests(&tls), 0);
    /* With the test CA as ca_file it succeeds. */
    struct aws_sns_verifier *with_ca = verifier_for(F.ca_path, "127.0.0.1", 0, F.ca_path);
    cr_assert_eq(aws_sns_verify(with_ca, &m, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(server_requests(&tls), 1);

    aws_sns_verifier_free(with_ca);
    aws_sns_verifier_free(sys);
    aws_sns_message_dispose(&m);
    server_stop(&tls);
    free(cp);
    free(kp);
    X509_free(tls_cert);
    EVP_PKEY_free(tls_key);
}

/* ---- confirming a subscription ----------------------------------------------------------------
 */

static const char *const bad_subscribe_urls[] = {
    "",
    "not a url",
    "/?Action=ConfirmSubscription",
    "https://evil.example.com/?Action=ConfirmSubscription&Token=t",
    "https://sns.us-east-1.amazonaws.com.evil.com/?Action=ConfirmSubscription",
    "https://sns.us-east-1.amazonaws.com@evil.com/?Action=ConfirmSubscription",
    "https://user@sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
    "https://sns.us-east-1.amazonaws.com:8443/?Action=ConfirmSubscription",
    "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
    "ftp://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
    "https://127.0.0.1/?Action=ConfirmSubscription",
};

Test(aws_sns_verify, confirm_subscription_refuses_urls_off_sns_hosts_before_any_fetch)
{
    struct aws_sns_verifier_opts strict = {.timeout_ms = 3000};
    for (size_t i = 0; i < GW_ARRAY_LEN(bad_subscribe_urls); i++) {
        struct gw_err err = {0};
        cr_assert_eq(aws_sns_confirm_subscription(&strict, bad_subscribe_urls[i], &err), GW_EINVAL,
                     "accepted: %s", bad_subscribe_urls[i]);
        cr_assert_eq(err.code, GW_EINVAL);
        cr_assert_eq(strncmp(err.msg, "SubscribeURL ", 13), 0, "%s", err.msg);
        cr_assert_eq(aws_sns_confirm_subscription(NULL, bad_subscribe_urls[i], NULL), GW_EINVAL,
                     "accepted without opts: %s", bad_subscribe_urls[i]);
    }
    /* The local server is refused without the test widening, and over http
     * without allow_http_cert_url. */
    char url[256];
    url_at(url, sizeof(url), &F.srv, "/?Action=ConfirmSubscription&Token=abc");
    server_serve(&F.srv, "/", 200, "<ConfirmSubscriptionResponse/>");
    cr_assert_eq(aws_sns_confirm_subscription(&strict, url, NULL), GW_EINVAL);
    struct aws_sns_verifier_opts https_only = {.allowed_cert_host_suffix = "127.0.0.1"};
    cr_assert_eq(aws_sns_confirm_subscription(&https_only, url, NULL), GW_EINVAL);
    cr_assert_eq(server_requests(&F.srv), 0);
}

Test(aws_sns_verify, confirm_subscription_fetches_the_url_and_wants_200)
{
    struct aws_sns_verifier_opts o = {.allowed_cert_host_suffix = "127.0.0.1",
                                      .allow_http_cert_url = 1};
    char url[256];
    struct gw_err err = {0};
    url_at(url, sizeof(url), &F.srv, "/?Action=ConfirmSubscription&Token=abc");
    server_serve(&F.srv, "/", 200, "<ConfirmSubscriptionResponse/>");
    cr_assert_eq(aws_sns_confirm_subscription(&o, url, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(server_requests(&F.srv), 1);

    server_serve(&F.srv, "/", 403, "<Error><Code>AuthorizationError</Code></Error>");
    cr_assert_eq(aws_sns_confirm_subscription(&o, url, &err), GW_EUNAVAIL);
    cr_assert_not_null(strstr(err.msg, "HTTP 403"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "AuthorizationError"), "AWS text stays out: %s", err.msg);
    cr_assert_null(strstr(err.msg, "Token"), "the URL stays out: %s", err.msg);
    cr_assert_eq(server_requests(&F.srv), 2);

    struct cert_server down;
    server_start(&down, NULL, NULL);
    url_at(url, sizeof(url), &down, "/?Action=ConfirmSubscription&Token=abc");
    server_stop(&down);
    cr_assert_eq(aws_sns_confirm_subscription(&o, url, &err), GW_EUNAVAIL);
}

Test(aws_sns_verify, confirm_subscription_over_https_verifies_the_servers_tls_certificate)
{
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        cr_skip_test("libmicrohttpd was built without TLS");
    EVP_PKEY *tls_key = rsa_key();
    X509 *tls_cert = make_cert(tls_key, "127.0.0.1", "IP:127.0.0.1", 0, F.ca, F.ca_key, -60, DAY);
    char *kp = key_pem(tls_key), *cp = pem_of(&tls_cert, 1);
    struct cert_server tls;
    server_start(&tls, kp, cp);
    server_serve(&tls, "/", 200, "<ConfirmSubscriptionResponse/>");
    char url[256];
    url_at(url, sizeof(url), &tls, "/?Action=ConfirmSubscription&Token=abc");
    struct gw_err err = {0};

    /* The system's CAs do not know the test CA: the TLS handshake fails. */
    struct aws_sns_verifier_opts o = {.allowed_cert_host_suffix = "127.0.0.1"};
    cr_assert_eq(aws_sns_confirm_subscription(&o, url, &err), GW_EUNAVAIL, "%s", err.msg);
    cr_assert_eq(server_requests(&tls), 0);
    /* With the test CA as ca_file it succeeds. */
    o.ca_file = F.ca_path;
    cr_assert_eq(aws_sns_confirm_subscription(&o, url, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(server_requests(&tls), 1);

    server_stop(&tls);
    free(cp);
    free(kp);
    X509_free(tls_cert);
    EVP_PKEY_free(tls_key);
}
