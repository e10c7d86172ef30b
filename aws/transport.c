/*
 * transport.c — signed AWS calls over libcurl with retries.
 *
 * Handles come from a small pool so connections are reused between calls;
 * curl_easy_reset() between uses keeps the connection cache. Every attempt is
 * signed afresh (new date, possibly refreshed credentials). What this file
 * knows of the services is only how they spell errors; building requests and
 * reading answers is the clients' business.
 */
#include "aws/transport.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "aws/sigv4.h"
#include "common/buf.h"
#include "common/curl.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/time.h"
#include "common/worker.h"

#include "common/poison.h"

enum { DEFAULT_MAX_RESPONSE = 8 * 1024 * 1024, MAX_HEADERS = 24 };

struct aws_client {
    pthread_mutex_t mu;
    CURL **free_handles;
    int nfree, cap;
    aws_env_getter getenv_fn;
    void *getenv_ctx;
    struct aws_creds_provider *creds;
    char region[64];
    int connect_timeout_ms, timeout_ms, max_attempts, backoff_base_ms, backoff_cap_ms;
};

static const char *env(const struct aws_client *c, const char *name)
{
    return aws_env(c->getenv_fn, c->getenv_ctx, name);
}

int aws_client_new(struct aws_client **out, const struct aws_client_opts *opts, struct gw_err *err)
{
    *out = NULL;
    if (opts->creds == NULL)
        return gw_err_set(err, GW_EINVAL, "an AWS client needs a credentials provider");
    struct aws_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    c->getenv_fn = opts->getenv_fn; /* NULL: getenv (aws_env) */
    c->getenv_ctx = opts->getenv_ctx;
    c->creds = opts->creds;
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 3000;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
    c->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 4;
    c->backoff_base_ms = opts->backoff_base_ms > 0 ? opts->backoff_base_ms : 100;
    c->backoff_cap_ms = opts->backoff_cap_ms > 0 ? opts->backoff_cap_ms : 5000;
    c->cap = opts->handles > 0 ? opts->handles : 8;
    c->free_handles = calloc((size_t)c->cap, sizeof(CURL *));
    if (c->free_handles == NULL) {
        free(c);
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    }
    const char *region = env(c, "AWS_REGION");
    if (region == NULL)
        region = env(c, "AWS_DEFAULT_REGION");
    gw_fmt(c->region, sizeof(c->region), "%s", region ? region : "");
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return GW_OK;
}

void aws_client_free(struct aws_client *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nfree; i++)
        curl_easy_cleanup(c->free_handles[i]);
    free(c->free_handles);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *aws_client_region(const struct aws_client *c)
{
    return c->region;
}

static CURL *handle_take(struct aws_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->nfree > 0)
        h = c->free_handles[--c->nfree];
    pthread_mutex_unlock(&c->mu);
    if (h == NULL)
        h = curl_easy_init();
    else
        curl_easy_reset(h); /* keeps its connection cache */
    return h;
}

static void handle_give(struct aws_client *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->nfree < c->cap) {
        c->free_handles[c->nfree++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h != NULL)
        curl_easy_cleanup(h);
}

void aws_response_dispose(struct aws_response *r)
{
    if (r != NULL)
        gw_buf_dispose(&r->body);
}

char *aws_endpoint_for(struct aws_client *c, const char *endpoint_id, const char *host_prefix)
{
    char name[96];
    gw_fmt(name, sizeof(name), "AWS_ENDPOINT_URL_%s", endpoint_id);
    const char *v = env(c, name);
    if (v == NULL)
        v = env(c, "AWS_ENDPOINT_URL");
    struct gw_buf b;
    gw_buf_init(&b, 2048);
    int rc;
    if (v != NULL) {
        size_t n = strlen(v);
        while (n > 0 && v[n - 1] == '/')
            n--;
        rc = gw_buf_add(&b, v, n);
    } else {
        const char *suffix =
            strncmp(c->region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
        rc = gw_buf_printf(&b, "https://%s.%s.%s", host_prefix, c->region, suffix);
    }
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        return NULL;
    }
    return gw_buf_steal(&b);
}

/* Splits "scheme://host[:port][/base]" into the host header value and base path. */
static int split_endpoint(char *host, size_t hostlen, const char **base, const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
        return GW_EINVAL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= hostlen)
        return GW_EINVAL;
    memcpy(host, p, n);
    host[n] = '\0';
    *base = p + n;
    return GW_OK;
}

int aws_form_add(struct gw_buf *b, const char *key, const char *value)
{
    int rc = b->len > 0 ? gw_buf_adds(b, "&") : GW_OK;
    if (rc == GW_OK)
        rc = aws_uri_encode(b, key, strlen(key), 0);
    if (rc == GW_OK)
        rc = gw_buf_adds(b, "=");
    if (rc == GW_OK)
        rc = aws_uri_encode(b, value, strlen(value), 0);
    return rc;
}

static void xml_decode(char *s)
{
    static const struct {
        const char *ent;
        char ch;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    char *w = s;
    for (const char *r = s; *r != '\0';) {
        int done = 0;
        if (*r == '&')
            for (size_t i = 0; i < GW_ARRAY_LEN(ents) && !done; i++) {
                size_t l = strlen(ents[i].ent);
                if (strncmp(r, ents[i].ent, l) == 0) {
                    *w++ = ents[i].ch;
                    r += l;
                    done = 1;
                }
            }
        if (!done)
            *w++ = *r++;
    }
    *w = '\0';
}

int aws_xml_text(char *out, size_t outlen, const char *xml, const char *tag)
{
    char open[80], close[80];
    gw_fmt(open, sizeof(open), "<%s>", tag);
    gw_fmt(close, sizeof(close), "</%s>", tag);
    const char *a = xml ? strstr(xml, open) : NULL;
    if (a == NULL || outlen == 0)
        return -1;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (b == NULL)
        return -1;
    size_t n = (size_t)(b - a);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, a, n);
    out[n] = '\0';
    xml_decode(out);
    return 0;
}

static int is_throttle(const char *code)
{
    static const char *const codes[] = {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "RequestThrottledException",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(codes); i++)
        if (strcmp(code, codes[i]) == 0)
            return 1;
    return 0;
}

/* Parses an AWS error body (JSON or XML) and headers already in r into err. */
void aws_error_parse(struct aws_error *err, const struct aws_response *r, const char *type_header)
{
    err->http_status = r->status;
    gw_fmt(err->request_id, sizeof(err->request_id), "%s", r->request_id);
    const char *body = r->body.data ? r->body.data : "";
    while (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t')
        body++;
    if (*body == '{') {
        json_t *j = json_loads(body, 0, NULL);
        const char *type = json_string_value(json_object_get(j, "__type"));
        if (type == NULL)
            type = json_string_value(json_object_get(j, "code"));
        if (type == NULL)
            type = json_string_value(json_object_get(j, "Code"));
        const char *msg = json_string_value(json_object_get(j, "message"));
        if (msg == NULL)
            msg = json_string_value(json_object_get(j, "Message"));
        if (type != NULL) {
            const char *hash = strrchr(type, '#'); /* "com.amazonaws...#ClientException" */
            gw_fmt(err->code, sizeof(err->code), "%s", hash ? hash + 1 : type);
        }
        if (msg != NULL)
            gw_fmt(err->message, sizeof(err->message), "%s", msg);
        json_decref(j);
    } else if (*body == '<') {
        if (aws_xml_text(err->code, sizeof(err->code), body, "Code") != 0)
            err->code[0] = '\0';
        if (aws_xml_text(err->message, sizeof(err->message), body, "Message") != 0)
            err->message[0] = '\0';
        if (err->request_id[0] == '\0' &&
            aws_xml_text(err->request_id, sizeof(err->request_id), body, "RequestId") != 0)
            err->request_id[0] = '\0';
    }
    if (err->code[0] == '\0' && type_header != NULL && type_header[0] != '\0') {
        size_t n = strcspn(type_header, ":");
        gw_fmt(err->code, sizeof(err->code), "%.*s", (int)n, type_header);
    }
    if (err->code[0] == '\0')
        gw_fmt(err->code, sizeof(err->code), "HTTP%ld", r->status);
    err->retryable = r->status >= 500 || r->status == 429 || is_throttle(err->code);
}

struct hdr_capture {
    struct aws_response *resp;
    char error_type[160];
};

static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
    struct hdr_capture *hc = ud;
    size_t n = size * nitems;
    const char *colon = memchr(line, ':', n);
    if (colon == NULL)
        return n;
    size_t klen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = n - klen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
#define IS(name) (klen == sizeof(name) - 1 && strncasecmp(line, name, klen) == 0)
    if (IS("x-amzn-requestid") || IS("x-amz-request-id"))
        gw_fmt(hc->resp->request_id, sizeof(hc->resp->request_id), "%.*s", (int)vlen, v);
    else if (IS("etag"))
        gw_fmt(hc->resp->etag, sizeof(hc->resp->etag), "%.*s", (int)vlen, v);
    else if (IS("x-amzn-errortype"))
        gw_fmt(hc->error_type, sizeof(hc->error_type), "%.*s", (int)vlen, v);
    else if (IS("content-length")) {
        char num[32];
        long long cl;
        gw_fmt(num, sizeof(num), "%.*s", (int)vlen, v);
        if (gw_parse_ll(&cl, num, 0, (long long)1 << 62) == GW_OK)
            hc->resp->content_length = cl;
    }
#undef IS
    return n;
}

/* Full jitter before the next attempt (gw_jitter_ms). */
static void backoff(const struct aws_client *c, int attempt)
{
    long long ms = gw_jitter_ms(c->backoff_base_ms, c->backoff_cap_ms, attempt);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Network failures: could the service have received the whole request? */
static int curl_ambiguous(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION: return 0;
    default: return 1;
    }
}

struct attempt_ctx {
    const struct aws_request *req;
    const char *url;
    const char *host;
    const char *path; /* base path + request path */
};

/* The options of one attempt on h (new or curl_easy_reset): common/curl.h's
 * set-up (http and https only, timeouts, the body bounded by out->body),
 * then the signed headers, the header capture and the method and body. */
static int setup_handle(CURL *h, const struct aws_client *c, const struct attempt_ctx *a,
                        struct aws_response *out, struct hdr_capture *hc,
                        const struct curl_slist *hl, struct gw_err *err)
{
    const struct aws_request *req = a->req;
    int head = strcmp(req->method, "HEAD") == 0;
    /* While the process shuts down, a call gets what is left of its budget. */
    long timeout_ms = c->timeout_ms;
    int64_t left_ms = gw_shutdown_left_ms();
    if (left_ms < timeout_ms)
        timeout_ms = left_ms > 100 ? (long)left_ms : 100;
    struct gw_curl_opts o = {
        .url = a->url,
        .protocols = "http,https",
        .connect_timeout_ms =
            c->connect_timeout_ms < timeout_ms ? c->connect_timeout_ms : timeout_ms,
        .timeout_ms = timeout_ms,
        .sink = &out->body,
    };
    int rc = gw_curl_prepare(h, &o, err);
    /* libcurl checks CURLOPT_MAXFILESIZE against a HEAD answer's
     * Content-Length too: the size of an object is no body to bound. */
    if (rc == GW_OK && head)
        rc = GW_CURL_SET(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_HTTPHEADER, hl, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_HEADERFUNCTION, on_header, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_HEADERDATA, (void *)hc, err);
    if (rc != GW_OK)
        return rc;
    if (head)
        return GW_CURL_SET(h, CURLOPT_NOBODY, 1L, err);
    if (strcmp(req->method, "GET") != 0 || req->body_len > 0) {
        rc = GW_CURL_SET(h, CURLOPT_CUSTOMREQUEST, req->method, err);
        if (rc == GW_OK)
            rc = GW_CURL_SET(h, CURLOPT_POSTFIELDS, req->body ? req->body : "", err);
        if (rc == GW_OK)
            rc = GW_CURL_SET(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len, err);
    }
    return rc;
}

size_t aws_sign_headers(struct aws_sigv4_header *sh, size_t max, const struct aws_request *req,
                        const char *host, const char *amz_date, const char *session_token,
                        const char *payload_hash)
{
    size_t nh = 0;
    if (max < 5)
        return 0;
    sh[nh++] = (struct aws_sigv4_header){"host", host};
    sh[nh++] = (struct aws_sigv4_header){"x-amz-date", amz_date};
    if (req->content_type != NULL)
        sh[nh++] = (struct aws_sigv4_header){"content-type", req->content_type};
    if (session_token != NULL && session_token[0] != '\0')
        sh[nh++] = (struct aws_sigv4_header){"x-amz-security-token", session_token};
    if (req->s3)
        sh[nh++] = (struct aws_sigv4_header){"x-amz-content-sha256", payload_hash};
    for (size_t i = 0; i < req->nheaders && nh < max; i++)
        sh[nh++] = (struct aws_sigv4_header){req->headers[i].name, req->headers[i].value};
    return nh;
}

void aws_error_from_curl(struct aws_error *err, int curl_code)
{
    CURLcode cc = (CURLcode)curl_code;
    err->http_status = 0;
    err->retryable = 1;
    err->ambiguous = curl_ambiguous(cc);
    gw_fmt(err->code, sizeof(err->code), "curl:%d", curl_code);
    gw_fmt(err->message, sizeof(err->message), "%s", curl_easy_strerror(cc));
    /* Our body limit: announced (Content-Length) or found while receiving. */
    if (cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED) {
        err->retryable = 0;
        gw_fmt(err->message, sizeof(err->message), "%s", "response larger than allowed");
    }
}

/* The request's headers for libcurl: the signed ones (sh), Authorization and
 * an empty Expect. *hl is new (curl_slist_free_all) on success. GW_ENOMEM. */
static int header_list(struct curl_slist **hl, const struct aws_sigv4_header *sh, size_t nh,
                       const char *authz, struct gw_err *err)
{
    int rc = GW_OK;
    *hl = NULL;
    for (size_t i = 0; i < nh && rc == GW_OK; i++) {
        char line[4608];
        gw_fmt(line, sizeof(line), "%s: %s", sh[i].name, sh[i].value);
        rc = gw_curl_header(hl, line, err);
    }
    if (rc == GW_OK) {
        char line[1100];
        gw_fmt(line, sizeof(line), "Authorization: %s", authz);
        rc = gw_curl_header(hl, line, err);
    }
    if (rc == GW_OK)
        rc = gw_curl_header(hl, "Expect:", err); /* no 100-continue round trip */
    return rc;
}

/* Signs the request afresh (current credentials, current time) into the
 * header list *hl (new on success). Fills err on failure: GW_ENOTFOUND or
 * GW_EUNAVAIL (credentials), GW_EINVAL (signing), GW_ENOMEM. */
static int sign_attempt(struct curl_slist **hl, struct aws_client *c, const struct attempt_ctx *a,
                        struct aws_error *err)
{
    const struct aws_request *req = a->req;
    struct aws_credentials creds;
    struct gw_err gerr = {0};
    *hl = NULL;
    int rc = aws_creds_get(&creds, c->creds, &gerr);
    if (rc != GW_OK) {
        gw_fmt(err->code, sizeof(err->code), "%s", "CredentialsError");
        gw_fmt(err->message, sizeof(err->message), "%s", gerr.msg);
        return rc == GW_ENOTFOUND ? GW_ENOTFOUND : GW_EUNAVAIL;
    }
    char date[17], payload_hash[65] = "";
    aws_amz_date(date, (long long)time(NULL));
    if (req->s3) {
        unsigned char h[32];
        gw_sha256(h, req->body ? req->body : "", req->body_len);
        gw_hex(payload_hash, h, 32);
    }
    struct aws_sigv4_header sh[MAX_HEADERS];
    size_t nh =
        aws_sign_headers(sh, MAX_HEADERS, req, a->host, date, creds.session_token, payload_hash);
    struct aws_sigv4_request sreq = {
        .method = req->method,
        .path = a->path,
        .query = req->query,
        .headers = sh,
        .nheaders = nh,
        .payload_hash = req->s3 ? payload_hash : NULL,
        .body = req->body,
        .body_len = req->body_len,
    };
    struct aws_sigv4_params sp = {
        .region = c->region, .service = req->service, .amz_date = date, .s3_path_rules = req->s3};
    char authz[1024];
    rc = aws_sigv4_authorization(authz, sizeof(authz), &sreq, &creds, &sp);
    if (rc != GW_OK) {
        gw_fmt(err->code, sizeof(err->code), "%s", "SigningError");
        gw_fmt(err->message, sizeof(err->message), "%s", "could not sign the request");
        rc = GW_EINVAL;
    } else if ((rc = header_list(hl, sh, nh, authz, &gerr)) != GW_OK) {
        gw_fmt(err->code, sizeof(err->code), "%s", "OutOfMemory");
        gw_fmt(err->message, sizeof(err->message), "%s", gerr.msg);
    }
    OPENSSL_cleanse(&creds, sizeof(creds));
    OPENSSL_cleanse(authz, sizeof(authz));
    return rc;
}

/* One signed try of a->req. GW_OK (2xx, in out), GW_EUPSTREAM (AWS's error
 * parsed into err), GW_EUNAVAIL (no answer: err says whether it is
 * retryable or ambiguous), or sign_attempt's and setup_handle's codes. */
static int one_attempt(struct aws_response *out, struct aws_client *c, const struct attempt_ctx *a,
                       struct aws_error *err)
{
    struct curl_slist *hl = NULL;
    struct gw_err gerr = {0};
    int rc = sign_attempt(&hl, c, a, err);
    if (rc != GW_OK)
        return rc;
    CURL *h = handle_take(c);
    if (h == NULL) {
        curl_slist_free_all(hl);
        gw_fmt(err->code, sizeof(err->code), "%s", "OutOfMemory");
        return GW_EUNAVAIL;
    }
    struct hdr_capture hc = {.resp = out};
    out->content_length = -1;
    rc = setup_handle(h, c, a, out, &hc, hl, &gerr);
    if (rc != GW_OK) {
        handle_give(c, h);
        curl_slist_free_all(hl);
        gw_fmt(err->code, sizeof(err->code), "%s", "CurlSetupError");
        gw_fmt(err->message, sizeof(err->message), "%s", gerr.msg);
        return rc;
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    handle_give(c, h);
    curl_slist_free_all(hl);
    out->status = status;
    if (cc != CURLE_OK) {
        aws_error_from_curl(err, (int)cc);
        return GW_EUNAVAIL;
    }
    if (status >= 200 && status < 300)
        return GW_OK;
    aws_error_parse(err, out, hc.error_type);
    return GW_EUPSTREAM;
}

/* The URL parts of req: host header, wire path (base + bucket + path) and
 * "scheme://host" prefix. */
struct target {
    char host[512];
    char scheme_host[640];
    struct gw_buf path;
};

static int resolve_target(struct target *t, struct aws_client *c, const struct aws_request *req,
                          struct aws_error *err)
{
    gw_buf_init(&t->path, 16384);
    if (c->region[0] == '\0') {
        gw_fmt(err->code, sizeof(err->code), "%s", "NoRegion");
        gw_fmt(err->message, sizeof(err->message), "%s",
               "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION");
        return GW_EINVAL;
    }
    char *endpoint = aws_endpoint_for(c, req->endpoint_id, req->host_prefix);
    const char *base = NULL;
    if (endpoint == NULL || split_endpoint(t->host, sizeof(t->host), &base, endpoint) != GW_OK) {
        free(endpoint);
        gw_fmt(err->code, sizeof(err->code), "%s", "BadEndpoint");
        gw_fmt(err->message, sizeof(err->message), "endpoint for %s is not an http(s) URL",
               req->endpoint_id);
        return GW_EINVAL;
    }
    /* S3 on AWS: virtual-hosted bucket; on an emulator or custom endpoint: path-style. */
    int custom = strstr(endpoint, ".amazonaws.com") == NULL;
    size_t scheme_len = (size_t)(strstr(endpoint, "://") + 3 - endpoint);
    int rc;
    if (req->bucket != NULL && !custom) {
        char vhost[512];
        gw_fmt(vhost, sizeof(vhost), "%s.%s", req->bucket, t->host);
        gw_fmt(t->host, sizeof(t->host), "%s", vhost);
        rc = gw_buf_printf(&t->path, "%s%s", base, req->path);
    } else if (req->bucket != NULL) {
        rc = gw_buf_printf(&t->path, "%s/%s%s", base, req->bucket, req->path);
    } else {
        rc = gw_buf_printf(&t->path, "%s%s", base, req->path);
    }
    gw_fmt(t->scheme_host, sizeof(t->scheme_host), "%.*s%s", (int)scheme_len, endpoint, t->host);
    free(endpoint);
    if (rc != GW_OK) {
        gw_fmt(err->code, sizeof(err->code), "%s", "RequestTooLarge");
        return GW_EINVAL;
    }
    return GW_OK;
}

int aws_presign_url(char **url, struct aws_client *c, const struct aws_request *req, int expires_s,
                    struct aws_error *err)
{
    *url = NULL;
    memset(err, 0, sizeof(*err));
    struct target t;
    int rc = resolve_target(&t, c, req, err);
    struct aws_credentials creds;
    struct gw_err cerr = {0};
    if (rc == GW_OK && (rc = aws_creds_get(&creds, c->creds, &cerr)) != GW_OK) {
        gw_fmt(err->code, sizeof(err->code), "%s", "CredentialsError");
        gw_fmt(err->message, sizeof(err->message), "%s", cerr.msg);
    }
    if (rc == GW_OK) {
        char date[17];
        aws_amz_date(date, (long long)time(NULL));
        struct aws_sigv4_params sp = {.region = c->region,
                                      .service = req->service,
                                      .amz_date = date,
                                      .s3_path_rules = req->s3};
        struct gw_buf out;
        gw_buf_init(&out, 32768);
        rc = aws_sigv4_presign(&out, req->method, t.scheme_host, t.host, t.path.data, req->query,
                               expires_s, &creds, &sp);
        OPENSSL_cleanse(&creds, sizeof(creds));
        if (rc == GW_OK)
            *url = gw_buf_steal(&out);
        else
            gw_fmt(err->code, sizeof(err->code), "%s", "SigningError");
        gw_buf_dispose(&out);
    }
    gw_buf_dispose(&t.path);
    return rc;
}

int aws_call(struct aws_response *out, struct aws_client *c, const struct aws_request *req,
             struct aws_error *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    size_t max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
    gw_buf_init(&out->body, max);
    struct gw_buf url;
    gw_buf_init(&url, 32768);
    struct target t;
    int rc = resolve_target(&t, c, req, err);
    if (rc == GW_OK && gw_buf_printf(&url, "%s%s%s%s", t.scheme_host, t.path.data,
                                     req->query && req->query[0] ? "?" : "",
                                     req->query ? req->query : "") != GW_OK) {
        gw_fmt(err->code, sizeof(err->code), "%s", "RequestTooLarge");
        rc = GW_EINVAL;
    }
    if (rc != GW_OK)
        goto cleanup;

    struct attempt_ctx a = {req, url.data, t.host, t.path.data};
    for (int attempt = 1;; attempt++) {
        memset(err, 0, sizeof(*err));
        gw_buf_reset(&out->body);
        out->request_id[0] = '\0';
        rc = one_attempt(out, c, &a, err);
        err->attempts = attempt;
        if (rc == GW_OK || rc == GW_ENOTFOUND || rc == GW_EINVAL)
            break;
        if (!err->retryable)
            break;
        if (err->ambiguous && !req->idempotent) {
            GW_LOG_WARN("AWS %s %s: %s after sending; not retried (not idempotent)", req->service,
                        req->path, err->message);
            break;
        }
        if (attempt >= c->max_attempts || gw_shutting_down()) {
            rc = GW_EUNAVAIL; /* no more tries (or no time for them): later, or elsewhere */
            break;
        }
        GW_LOG_INFO("AWS %s %s: %s (%s), retry %d of %d", req->service, req->path, err->code,
                    err->message, attempt, c->max_attempts - 1);
        backoff(c, attempt);
    }
    if (rc == GW_EUPSTREAM && err->retryable)
        rc = GW_EUNAVAIL; /* throttled or 5xx to the end: try again later */

cleanup:
    gw_buf_dispose(&url);
    gw_buf_dispose(&t.path);
    if (rc != GW_OK) {
        if (err->code[0] == '\0')
            gw_fmt(err->code, sizeof(err->code), "%s", gw_code_name(rc));
        gw_buf_dispose(&out->body);
        gw_buf_init(&out->body, max);
    }
    return rc;
}
