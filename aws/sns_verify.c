/*
 * sns_verify.c — parses the JSON messages Amazon SNS POSTs to an HTTP(S)
 * subscription and checks their signatures, after AWS's "Verifying the
 * signatures of Amazon SNS messages": rebuild the string SNS signed, fetch
 * the signing certificate from the SigningCertURL (only from an SNS host, over
 * verified TLS), check that certificate (chain to the configured trust
 * anchors, validity period, name sns.amazonaws.com, RSA key) and verify the
 * RSA PKCS#1 v1.5 signature (SHA-1 for SignatureVersion 1, SHA-256 for 2).
 *
 * Parsed certificates are cached by URL (16 entries, least recently used
 * evicted, each re-fetched after a day or once it has expired); the cache is
 * shared by all threads behind one mutex that is never held across I/O, so
 * two threads missing the same URL at once may both fetch it. A URL whose
 * fetch or check failed is remembered for failure_ttl_ms (30 s; 32 entries) and refused
 * without another fetch meanwhile, so a flood naming a bad or slow
 * certificate URL costs one fetch, not one per message. What this file
 * does not do: decide which topics are welcome or whether to confirm a
 * subscription (aws_sns_confirm_subscription only performs the GET), reject
 * old or replayed messages, or log anything (err says what failed).
 */
#include "aws/sns_verify.h"

#include <assert.h>
#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/curl.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/time.h"

#include "common/poison.h"

enum {
    CERT_MAX_BYTES = 64 * 1024, /* a fetched certificate file */
    CERT_CHAIN_MAX = 8,         /* certificates after the signing one in that file */
    CACHE_SLOTS = 16,
    URL_MAX = 1024,     /* SigningCertURL, with its NUL */
    SIG_B64_MAX = 2048, /* base64 Signature: RSA keys up to 12288 bits */
    SIG_MAX = 1536,     /* decoded */
    HOST_MAX = 256,     /* DNS name, with its NUL */
    DEFAULT_TIMEOUT_MS = 5000,
    CONFIRM_TIMEOUT_MS = 4000, /* a whole subscription confirmation */
};

#define CACHE_TTL_NS (24LL * 3600 * 1000000000LL)
enum { FAILED_SLOTS = 32 };
#define SNS_CERT_NAME "sns.amazonaws.com"

enum sns_kind { KIND_UNKNOWN, KIND_NOTIFICATION, KIND_CONFIRMATION };

struct cache_entry {
    char *url;          /* normalized, new */
    X509 *cert;         /* one reference held by the cache */
    int64_t fetched_ns; /* gw_monotonic_ns */
    uint64_t used;      /* v->tick at the last hit: least recently used goes first */
};

/* A certificate URL that failed to fetch or check lately: messages naming
 * it are refused without another fetch until until_ns. */
struct failed_url {
    unsigned char url_hash[32];
    int code;
    char msg[160];
    int64_t until_ns;
};

struct aws_sns_verifier {
    pthread_mutex_t mu;
    int mu_ready;
    X509_STORE *store;
    char *ca_file;        /* new, or NULL */
    char *allowed_suffix; /* new, or NULL */
    int allow_http;
    long timeout_ms;
    int64_t failure_ttl_ns; /* a failed URL is not fetched again sooner */
    uint64_t tick;
    struct cache_entry cache[CACHE_SLOTS];
    struct failed_url failed[FAILED_SLOTS];
};

/* What check_url learnt of a SigningCertURL it accepted. */
struct url_info {
    char normalized[URL_MAX + 32]; /* as libcurl rebuilds it: fetched and cached under */
    char host[HOST_MAX];           /* lower case */
    int https;
    int widened; /* the host matched allowed_cert_host_suffix (tests) */
};

static enum sns_kind type_kind(const char *type)
{
    if (strcmp(type, "Notification") == 0)
        return KIND_NOTIFICATION;
    if (strcmp(type, "SubscriptionConfirmation") == 0 ||
        strcmp(type, "UnsubscribeConfirmation") == 0)
        return KIND_CONFIRMATION;
    return KIND_UNKNOWN;
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* Copies the string member key of root into dst (size bytes). A member that is
 * absent or null counts as missing: GW_EINVAL when required. *present (may be
 * NULL) says whether there was a value. */
static int copy_field(char *dst, size_t size, const json_t *root, const char *key, int required,
                      int *present, struct gw_err *err)
{
    const json_t *v = json_object_get(root, key);

    dst[0] = '\0';
    if (present != NULL)
        *present = 0;
    if (v == NULL || json_is_null(v))
        return required ? gw_err_set(err, GW_EINVAL, "SNS message has no %s", key) : GW_OK;
    if (!json_is_string(v))
        return gw_err_set(err, GW_EINVAL, "SNS message field %s is not a string", key);
    size_t n = json_string_length(v);
    if (n >= size)
        return gw_err_set(err, GW_EINVAL, "SNS message field %s is longer than %zu bytes", key,
                          size - 1);
    memcpy(dst, json_string_value(v), n); /* jansson refused \u0000: no NUL inside */
    dst[n] = '\0';
    if (present != NULL)
        *present = 1;
    return GW_OK;
}

/* Like copy_field for a required member of at most max bytes, into new memory. */
static int dup_field(char **out, const json_t *root, const char *key, size_t max,
                     struct gw_err *err)
{
    const json_t *v = json_object_get(root, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return gw_err_set(err, GW_EINVAL, "SNS message has no %s", key);
    if (!json_is_string(v))
        return gw_err_set(err, GW_EINVAL, "SNS message field %s is not a string", key);
    size_t n = json_string_length(v);
    if (n > max)
        return gw_err_set(err, GW_EINVAL, "SNS message field %s is longer than %zu bytes", key,
                          max);
    char *s = malloc(n + 1);
    if (s == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    memcpy(s, json_string_value(v), n);
    s[n] = '\0';
    *out = s;
    return GW_OK;
}

int aws_sns_message_parse(struct aws_sns_message *out, const char *body, size_t len,
                          struct gw_err *err)
{
    int rc = GW_OK;
    json_t *root = NULL;
    json_error_t jerr;
    struct aws_sns_message m;

    memset(out, 0, sizeof(*out));
    memset(&m, 0, sizeof(m));
    if (len > AWS_SNS_MAX_BODY)
        return gw_err_public(err, GW_ETOOBIG, "SNS message is larger than %zu bytes",
                             AWS_SNS_MAX_BODY);
    /* Duplicate keys are refused: which of two Messages was signed? */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* jerr.text quotes the input: only the position is reported. */
        rc = gw_err_set(err, GW_EPARSE, "SNS message is not valid JSON (line %d, column %d)",
                        jerr.line, jerr.column);
        goto cleanup;
    }
    if (!json_is_object(root)) {
        rc = gw_err_set(err, GW_EPARSE, "SNS message is not a JSON object");
        goto cleanup;
    }
    if ((rc = copy_field(m.type, sizeof(m.type), root, "Type", 1, NULL, err)) != GW_OK)
        goto cleanup;
    enum sns_kind kind = type_kind(m.type);
    if (kind == KIND_UNKNOWN) {
        rc = gw_err_set(err, GW_EINVAL, "SNS message Type is not one SNS sends");
        goto cleanup;
    }
    if ((rc = copy_field(m.message_id, sizeof(m.message_id), root, "MessageId", 1, NULL, err)) !=
            GW_OK ||
        (rc = copy_field(m.topic_arn, sizeof(m.topic_arn), root, "TopicArn", 1, NULL, err)) !=
            GW_OK ||
        (rc = copy_field(m.timestamp, sizeof(m.timestamp), root, "Timestamp", 1, NULL, err)) !=
            GW_OK ||
        (rc = copy_field(m.signature_version, sizeof(m.signature_version), root, "SignatureVersion",
                         1, NULL, err)) != GW_OK ||
        (rc = copy_field(m.signing_cert_url, sizeof(m.signing_cert_url), root, "SigningCertURL", 1,
                         NULL, err)) != GW_OK)
        goto cleanup;
    if (kind == KIND_NOTIFICATION) {
        rc = copy_field(m.subject, sizeof(m.subject), root, "Subject", 0, &m.has_subject, err);
    } else {
        if ((rc = copy_field(m.subscribe_url, sizeof(m.subscribe_url), root, "SubscribeURL", 1,
                             NULL, err)) == GW_OK)
            rc = copy_field(m.token, sizeof(m.token), root, "Token", 1, NULL, err);
    }
    if (rc != GW_OK)
        goto cleanup;
    if ((rc = dup_field(&m.message, root, "Message", AWS_SNS_MAX_BODY, err)) != GW_OK ||
        (rc = dup_field(&m.signature_b64, root, "Signature", SIG_B64_MAX, err)) != GW_OK)
        goto cleanup;

    *out = m;
    memset(&m, 0, sizeof(m));

cleanup:
    json_decref(root);
    aws_sns_message_dispose(&m);
    return rc;
}

void aws_sns_message_dispose(struct aws_sns_message *m)
{
    if (m == NULL)
        return;
    free(m->message);
    m->message = NULL;
    free(m->signature_b64);
    m->signature_b64 = NULL;
}

/* ---- the string to sign ---------------------------------------------------------------------- */

static int add_pair(struct gw_buf *b, const char *key, const char *value)
{
    int rc;
    if ((rc = gw_buf_adds(b, key)) != GW_OK || (rc = gw_buf_add(b, "\n", 1)) != GW_OK ||
        (rc = gw_buf_adds(b, value)) != GW_OK || (rc = gw_buf_add(b, "\n", 1)) != GW_OK)
        return rc;
    return GW_OK;
}

/* Fills b (initialised here) with the string SNS signed. GW_EINVAL: unknown
 * Type or no Message; GW_ENOMEM. */
static int string_to_sign(struct gw_buf *b, const struct aws_sns_message *m)
{
    int rc;
    enum sns_kind kind = type_kind(m->type);

    gw_buf_init(b, 0);
    if (kind == KIND_UNKNOWN || m->message == NULL)
        return GW_EINVAL;
    size_t mlen = strlen(m->message);
    /* The fixed-size fields and the key names add well under 16 KiB. */
    if (mlen > SIZE_MAX / 2)
        return GW_ENOMEM;
    gw_buf_init(b, mlen + (size_t)16 * 1024);
    if ((rc = add_pair(b, "Message", m->message)) != GW_OK ||
        (rc = add_pair(b, "MessageId", m->message_id)) != GW_OK)
        return rc;
    if (kind == KIND_NOTIFICATION) {
        if (m->has_subject && (rc = add_pair(b, "Subject", m->subject)) != GW_OK)
            return rc;
    } else {
        if ((rc = add_pair(b, "SubscribeURL", m->subscribe_url)) != GW_OK)
            return rc;
    }
    if ((rc = add_pair(b, "Timestamp", m->timestamp)) != GW_OK)
        return rc;
    if (kind == KIND_CONFIRMATION && (rc = add_pair(b, "Token", m->token)) != GW_OK)
        return rc;
    if ((rc = add_pair(b, "TopicArn", m->topic_arn)) != GW_OK ||
        (rc = add_pair(b, "Type", m->type)) != GW_OK)
        return rc;
    return GW_OK;
}

char *aws_sns_string_to_sign(const struct aws_sns_message *m)
{
    struct gw_buf b;
    char *s = NULL;

    if (string_to_sign(&b, m) == GW_OK)
        s = gw_buf_steal(&b);
    gw_buf_dispose(&b);
    return s;
}

/* ---- the signature ------------------------------------------------------------------------ */

static int is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Strict standard base64 (padded, no white space) into out; the decoded length,
 * or -1 when invalid or longer than outlen. */
static long decode_signature(unsigned char *out, size_t outlen, const char *in)
{
    size_t n = strlen(in), pad = 0;

    if (n == 0 || n % 4 != 0 || n > SIG_B64_MAX || n / 4 * 3 > outlen)
        return -1;
    if (in[n - 1] == '=')
        pad++;
    if (in[n - 2] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (!is_b64(in[i]))
            return -1;
    int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (got < 0 || (size_t)got < pad)
        return -1;
    return (long)((size_t)got - pad); /* EVP_DecodeBlock counts the padding as zero bytes */
}

/* ---- the certificate URL ----------------------------------------------------------------------
 */

static int is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A region name as AWS spells them: [a-z]{2}(-[a-z]+)+-[0-9]+ ("us-east-1",
 * "us-gov-west-1", "cn-north-1"); s is n bytes, not NUL-terminated. */
static int is_region(const char *s, size_t n)
{
    size_t i = 0;
    int words = 0;

    if (n < 2 || !is_lower(s[0]) || !is_lower(s[1]))
        return 0;
    i = 2;
    for (;;) {
        if (i >= n || s[i] != '-')
            return 0;
        i++;
        size_t start = i;
        while (i < n && is_lower(s[i]))
            i++;
        if (i > start) {
            words++;
            continue;
        }
        while (i < n && is_digit(s[i]))
            i++;
        return i > start && i == n && words > 0;
    }
}

/* sns.<region>.amazonaws.com or sns.<region>.amazonaws.com.cn (lower case). */
static int is_sns_host(const char *h)
{
    static const char *const suffixes[] = {".amazonaws.com", ".amazonaws.com.cn"};
    size_t n = strlen(h);

    if (n < 4 || memcmp(h, "sns.", 4) != 0)
        return 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(suffixes); i++) {
        size_t sl = strlen(suffixes[i]);
        if (n > 4 + sl && memcmp(h + n - sl, suffixes[i], sl) == 0 && is_region(h + 4, n - 4 - sl))
            return 1;
    }
    return 0;
}

/* host is suffix, or ends in "." + suffix (both compared without case). */
static int host_has_suffix(const char *host, const char *suffix)
{
    size_t n = strlen(host), sl = strlen(suffix);

    if (sl == 0 || n < sl || strcasecmp(host + n - sl, suffix) != 0)
        return 0;
    return n == sl || host[n - sl - 1] == '.';
}

/* Gets one part of u (new, curl_free) or NULL; 0 on success, or the libcurl code. */
static CURLUcode url_part(char **out, CURLU *u, CURLUPart what)
{
    *out = NULL;
    return curl_url_get(u, what, out, 0);
}

const char *aws_sns_url_text_refusal(const char *url, int *https)
{
    size_t n = strlen(url);

    *https = 0;
    if (n == 0 || n >= URL_MAX)
        return "is empty or too long";
    /* Nothing that URL parsers disagree on: no white space, controls,
     * non-ASCII or backslashes; no userinfo, query or fragment at all. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '@' || c == '?' || c == '#')
            return "holds a character it may not hold";
    }
    *https = strncasecmp(url, "https://", 8) == 0;
    if (!*https && strncasecmp(url, "http://", 7) != 0)
        return "is not https";
    return NULL;
}

const char *aws_sns_url_host_refusal(const char *host, const char *port, int https,
                                     const char *suffix, int allow_http, int *widened)
{
    *widened = suffix != NULL && host_has_suffix(host, suffix);
    if (!https && !(allow_http && *widened))
        return "is not https";
    if (*widened)
        return NULL;
    if (!is_sns_host(host))
        return "is not on an SNS host (sns.<region>.amazonaws.com)";
    if (port != NULL && strcmp(port, "443") != 0)
        return "names a port other than 443";
    return NULL;
}

const char *aws_sns_url_path_refusal(const char *path)
{
    size_t plen = path != NULL ? strlen(path) : 0;

    if (plen < 6 || path[0] != '/' || memcmp(path + plen - 4, ".pem", 4) != 0)
        return "does not name a .pem file";
    return NULL;
}

/* The host of u, lower case, into ui->host and its port (new, curl_free; NULL
 * when it names none) into *port, after making sure u has no userinfo, query
 * or fragment. Returns why u is refused, or NULL. */
static const char *url_host_port(struct url_info *ui, char **port, CURLU *u)
{
    static const struct {
        CURLUPart part;
        CURLUcode absent;
    } forbidden[] = {
        {CURLUPART_USER, CURLUE_NO_USER},         {CURLUPART_PASSWORD, CURLUE_NO_PASSWORD},
        {CURLUPART_OPTIONS, CURLUE_NO_OPTIONS},   {CURLUPART_QUERY, CURLUE_NO_QUERY},
        {CURLUPART_FRAGMENT, CURLUE_NO_FRAGMENT},
    };
    char *part = NULL, *host = NULL;
    const char *why = NULL;

    *port = NULL;
    for (size_t i = 0; i < GW_ARRAY_LEN(forbidden); i++) {
        CURLUcode uc = url_part(&part, u, forbidden[i].part);
        curl_free(part);
        part = NULL;
        if (uc != forbidden[i].absent)
            return "has userinfo, a query or a fragment";
    }
    if (url_part(&host, u, CURLUPART_HOST) != CURLUE_OK || host == NULL ||
        strlen(host) >= sizeof(ui->host)) {
        why = "has no usable host";
        goto cleanup;
    }
    size_t i = 0;
    for (; host[i] != '\0'; i++) {
        static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                          lower[] = "abcdefghijklmnopqrstuvwxyz";
        const char *at = strchr(upper, host[i]);
        if (at != NULL)
            ui->host[i] = lower[at - upper];
        else
            ui->host[i] = host[i];
    }
    ui->host[i] = '\0';
    CURLUcode pc = url_part(port, u, CURLUPART_PORT);
    if (pc != CURLUE_OK && pc != CURLUE_NO_PORT)
        why = "has a bad port";

cleanup:
    curl_free(host);
    return why;
}

/* Checks a SigningCertURL (aws_sns_cert_url_check's rules, with the test
 * widening of suffix and allow_http) and fills ui. 0, GW_EINVAL naming the
 * rule it breaks, or GW_ENOMEM. */
static int check_url(struct url_info *ui, const char *suffix, int allow_http, const char *url,
                     struct gw_err *err)
{
    int rc = GW_OK;
    CURLU *u = NULL;
    char *port = NULL, *path = NULL, *full = NULL;

    memset(ui, 0, sizeof(*ui));
    const char *why = aws_sns_url_text_refusal(url, &ui->https);
    if (why != NULL)
        goto cleanup;
    if ((u = curl_url()) == NULL) {
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        why = "is not a URL";
        goto cleanup;
    }
    if ((why = url_host_port(ui, &port, u)) != NULL ||
        (why = aws_sns_url_host_refusal(ui->host, port, ui->https, suffix, allow_http,
                                        &ui->widened)) != NULL)
        goto cleanup;
    if (url_part(&path, u, CURLUPART_PATH) != CURLUE_OK)
        path = NULL;
    if ((why = aws_sns_url_path_refusal(path)) != NULL)
        goto cleanup;
    if (url_part(&full, u, CURLUPART_URL) != CURLUE_OK || full == NULL ||
        strlen(full) >= sizeof(ui->normalized)) {
        why = "is not a URL";
        goto cleanup;
    }
    memcpy(ui->normalized, full, strlen(full) + 1);

cleanup:
    if (why != NULL)
        rc = gw_err_set(err, GW_EINVAL, "SigningCertURL %s", why);
    curl_free(full);
    curl_free(path);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

int aws_sns_cert_url_check(const struct aws_sns_verifier_opts *o, const char *url,
                           struct gw_err *err)
{
    struct url_info ui;
    const char *suffix = o != NULL ? o->allowed_cert_host_suffix : NULL;

    if (suffix != NULL && suffix[0] == '\0')
        suffix = NULL;
    return check_url(&ui, suffix, o != NULL && o->allow_http_cert_url, url, err);
}

/* ---- fetching and checking the certificate ------------------------------------------------------
 */

/* GETs the certificate file into pem (bounded by its max, CERT_MAX_BYTES).
 * GW_EUNAVAIL: no answer, or not 200; GW_EINVAL: larger than CERT_MAX_BYTES
 * or libcurl refused an option; GW_ENOMEM. No redirects are followed. */
static int fetch_cert(struct gw_buf *pem, const struct aws_sns_verifier *v,
                      const struct url_info *ui, struct gw_err *err)
{
    int rc = GW_OK;
    CURL *h = NULL;
    long status = 0;
    const struct gw_curl_opts o = {
        .url = ui->normalized,
        .protocols = ui->https ? "https" : "http",
        .timeout_ms = v->timeout_ms, /* connecting too */
        .sink = pem,
    };

    if ((rc = gw_curl_new(&h, &o, err)) != GW_OK)
        return rc;
    /* CURLOPT_SSL_VERIFYPEER and _VERIFYHOST keep libcurl's defaults (on). */
    if (v->ca_file != NULL && (rc = GW_CURL_SET(h, CURLOPT_CAINFO, v->ca_file, err)) != GW_OK)
        goto cleanup;
    CURLcode cc = curl_easy_perform(h);
    /* A write error is the bounded buffer refusing more. */
    if (cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED) {
        rc = gw_err_set(err, GW_EINVAL, "signing certificate is larger than %d bytes",
                        CERT_MAX_BYTES);
        goto cleanup;
    }
    if (cc != CURLE_OK) {
        rc = gw_err_set(err, GW_EUNAVAIL, "signing certificate could not be fetched: %s",
                        curl_easy_strerror(cc));
        goto cleanup;
    }
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200) {
        rc = gw_err_set(err, GW_EUNAVAIL, "signing certificate could not be fetched: HTTP %ld",
                        status);
        goto cleanup;
    }

cleanup:
    curl_easy_cleanup(h);
    return rc;
}

/* Parses the fetched PEM (the signing certificate, then optional untrusted
 * intermediates) and checks the signing certificate: it chains to v->store at
 * the current time, is named sns.amazonaws.com (or, for a widened test host,
 * after that host) and holds an RSA key. *out: new (X509_free). GW_EINVAL. */
static int load_cert(X509 **out, const struct aws_sns_verifier *v, const struct url_info *ui,
                     const struct gw_buf *pem, struct gw_err *err)
{
    int rc = GW_OK;
    BIO *bio = NULL;
    X509 *leaf = NULL, *extra = NULL;
    STACK_OF(X509) *chain = NULL;
    X509_STORE_CTX *ctx = NULL;
    const unsigned int flags = X509_CHECK_FLAG_NO_WILDCARDS;

    *out = NULL;
    if (pem->len == 0 || pem->len > INT_MAX ||
        (bio = BIO_new_mem_buf(pem->data, (int)pem->len)) == NULL ||
        (leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
        rc = gw_err_set(err, GW_EINVAL, "signing certificate is not a PEM certificate");
        goto cleanup;
    }
    if ((chain = sk_X509_new_null()) == NULL) {
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
        goto cleanup;
    }
    while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_num(chain) >= CERT_CHAIN_MAX) {
            rc = gw_err_set(err, GW_EINVAL, "signing certificate file holds too many certificates");
            goto cleanup;
        }
        if (sk_X509_push(chain, extra) <= 0) {
            rc = gw_err_set(err, GW_ENOMEM, "out of memory");
            goto cleanup;
        }
        extra = NULL;
    }
    ERR_clear_error(); /* the read that ended the loop found no more PEM */

    if ((ctx = X509_STORE_CTX_new()) == NULL ||
        X509_STORE_CTX_init(ctx, v->store, leaf, chain) != 1) {
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (X509_verify_cert(ctx) != 1) {
        rc = gw_err_set(err, GW_EINVAL, "signing certificate is not trusted: %s",
                        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto cleanup;
    }
    int named = X509_check_host(leaf, SNS_CERT_NAME, 0, flags, NULL) == 1;
    if (!named && ui->widened)
        named = X509_check_host(leaf, ui->host, 0, flags, NULL) == 1 ||
                X509_check_ip_asc(leaf, ui->host, 0) == 1;
    if (!named) {
        rc = gw_err_set(err, GW_EINVAL, "signing certificate is not issued to " SNS_CERT_NAME);
        goto cleanup;
    }
    EVP_PKEY *key = X509_get0_pubkey(leaf);
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        rc = gw_err_set(err, GW_EINVAL, "signing certificate has no RSA key");
        goto cleanup;
    }
    *out = leaf;
    leaf = NULL;

cleanup:
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(chain, X509_free);
    X509_free(extra);
    X509_free(leaf);
    BIO_free(bio);
    return rc;
}

static void entry_clear(struct cache_entry *e)
{
    free(e->url);
    X509_free(e->cert);
    memset(e, 0, sizeof(*e));
}

/* The cached certificate for url (new reference: X509_free), or NULL. Drops
 * an entry that is a day old or whose certificate has expired. */
static X509 *cache_get(struct aws_sns_verifier *v, const char *url)
{
    X509 *cert = NULL;
    int64_t now = gw_monotonic_ns();

    pthread_mutex_lock(&v->mu);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cache_entry *e = &v->cache[i];
        if (e->url == NULL || strcmp(e->url, url) != 0)
            continue;
        if (now - e->fetched_ns > CACHE_TTL_NS ||
            X509_cmp_current_time(X509_get0_notAfter(e->cert)) <= 0) {
            entry_clear(e);
        } else if (X509_up_ref(e->cert) == 1) {
            cert = e->cert;
            e->used = ++v->tick;
        }
        break;
    }
    pthread_mutex_unlock(&v->mu);
    return cert;
}

/* Caches cert (a reference of its own is taken) under url, replacing an entry
 * for the same URL, else a free slot, else the least recently used. A failure
 * to cache is not an error: the next message fetches again. */
static void cache_put(struct aws_sns_verifier *v, const char *url, X509 *cert)
{
    char *copy = strdup(url);

    if (copy == NULL)
        return;
    if (X509_up_ref(cert) != 1) {
        free(copy);
        return;
    }
    pthread_mutex_lock(&v->mu);
    struct cache_entry *slot = NULL;
    for (size_t i = 0; i < CACHE_SLOTS && slot == NULL; i++)
        if (v->cache[i].url != NULL && strcmp(v->cache[i].url, url) == 0)
            slot = &v->cache[i];
    for (size_t i = 0; i < CACHE_SLOTS && slot == NULL; i++)
        if (v->cache[i].url == NULL)
            slot = &v->cache[i];
    if (slot == NULL) {
        slot = &v->cache[0];
        for (size_t i = 1; i < CACHE_SLOTS; i++)
            if (v->cache[i].used < slot->used)
                slot = &v->cache[i];
    }
    entry_clear(slot);
    slot->url = copy;
    slot->cert = cert;
    slot->fetched_ns = gw_monotonic_ns();
    slot->used = ++v->tick;
    pthread_mutex_unlock(&v->mu);
}

/* A failure of url recorded in the last FAILED_TTL_NS: its code, with err
 * filled as then; GW_OK when there is none. */
static int failed_get(struct aws_sns_verifier *v, const char *url, struct gw_err *err)
{
    unsigned char h[32];
    gw_sha256(h, url, strlen(url));
    int rc = GW_OK;
    pthread_mutex_lock(&v->mu);
    struct failed_url *f = &v->failed[h[0] % FAILED_SLOTS];
    if (f->until_ns > gw_monotonic_ns() && memcmp(f->url_hash, h, 32) == 0)
        rc = gw_err_set(err, f->code, "%s (failed within the last %lld ms; not fetched again)",
                        f->msg, (long long)(v->failure_ttl_ns / 1000000));
    pthread_mutex_unlock(&v->mu);
    return rc;
}

static void failed_put(struct aws_sns_verifier *v, const char *url, int code,
                       const struct gw_err *err)
{
    unsigned char h[32];
    gw_sha256(h, url, strlen(url));
    pthread_mutex_lock(&v->mu);
    struct failed_url *f = &v->failed[h[0] % FAILED_SLOTS];
    memcpy(f->url_hash, h, 32);
    f->code = code;
    gw_fmt(f->msg, sizeof(f->msg), "%s", err != NULL ? err->msg : gw_code_name(code));
    f->until_ns = gw_monotonic_ns() + v->failure_ttl_ns;
    pthread_mutex_unlock(&v->mu);
}

/* The checked certificate behind ui, from the cache or fetched (new reference). */
static int get_cert(X509 **out, struct aws_sns_verifier *v, const struct url_info *ui,
                    struct gw_err *err)
{
    int rc = GW_OK;
    struct gw_buf pem;

    *out = cache_get(v, ui->normalized);
    if (*out != NULL)
        return GW_OK;
    if ((rc = failed_get(v, ui->normalized, err)) != GW_OK)
        return rc;
    gw_buf_init(&pem, CERT_MAX_BYTES);
    if ((rc = fetch_cert(&pem, v, ui, err)) != GW_OK ||
        (rc = load_cert(out, v, ui, &pem, err)) != GW_OK) {
        failed_put(v, ui->normalized, rc, err);
        goto cleanup;
    }
    cache_put(v, ui->normalized, *out);

cleanup:
    gw_buf_dispose(&pem);
    return rc;
}

int aws_sns_verify(struct aws_sns_verifier *v, const struct aws_sns_message *m, struct gw_err *err)
{
    int rc = GW_OK;
    const EVP_MD *md = NULL;
    struct gw_buf sts;
    unsigned char sig[SIG_MAX];
    struct url_info ui;
    X509 *cert = NULL;
    EVP_MD_CTX *mdctx = NULL;
    EVP_PKEY_CTX *pctx = NULL; /* borrowed from mdctx */

    assert(v != NULL && m != NULL);
    gw_buf_init(&sts, 0);
    if (strcmp(m->signature_version, "1") == 0) {
        md = EVP_sha1();
    } else if (strcmp(m->signature_version, "2") == 0) {
        md = EVP_sha256();
    } else {
        rc = gw_err_set(err, GW_EINVAL, "SignatureVersion is neither 1 nor 2");
        goto cleanup;
    }
    if ((rc = string_to_sign(&sts, m)) != GW_OK) {
        rc = gw_err_set(err, rc,
                        rc == GW_EINVAL ? "SNS message has an unknown Type or no Message"
                                        : "out of memory");
        goto cleanup;
    }
    long siglen =
        m->signature_b64 != NULL ? decode_signature(sig, sizeof(sig), m->signature_b64) : -1;
    if (siglen <= 0) {
        rc = gw_err_set(err, GW_EINVAL, "Signature is not base64");
        goto cleanup;
    }
    if ((rc = check_url(&ui, v->allowed_suffix, v->allow_http, m->signing_cert_url, err)) !=
            GW_OK ||
        (rc = get_cert(&cert, v, &ui, err)) != GW_OK)
        goto cleanup;
    if ((mdctx = EVP_MD_CTX_new()) == NULL) {
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (EVP_DigestVerifyInit(mdctx, &pctx, md, NULL, X509_get0_pubkey(cert)) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
        rc = gw_err_set(err, GW_EINVAL, "signature cannot be checked with this certificate");
        goto cleanup;
    }
    if (EVP_DigestVerify(mdctx, sig, (size_t)siglen, (const unsigned char *)sts.data, sts.len) !=
        1) {
        rc = gw_err_set(err, GW_EINVAL, "signature does not match the message");
        goto cleanup;
    }

cleanup:
    if (rc != GW_OK)
        ERR_clear_error(); /* OpenSSL's queue is per thread: leave nothing for others */
    EVP_MD_CTX_free(mdctx);
    X509_free(cert);
    gw_buf_dispose(&sts);
    return rc;
}

/* ---- confirming a subscription ------------------------------------------------------------- */

int aws_sns_confirm_subscription(const struct aws_sns_verifier_opts *opts,
                                 const char *subscribe_url, struct gw_err *err)
{
    struct gw_err uerr = {0};
    CURL *h = NULL;
    long status = 0;
    int allow_http = opts != NULL && opts->allow_http_cert_url;

    /* The certificate rule wants a ".pem" path; the confirmation is a query
     * on "/": the URL's scheme and authority are checked with "/x.pem". */
    size_t n = strcspn(subscribe_url, "?#");
    char base[1100]; /* longer than check_url takes (URL_MAX) */
    gw_fmt(base, sizeof(base), "%.*s%s", (int)n, subscribe_url, "/x.pem");
    const char *scheme_end = strstr(base, "://");
    const char *path = scheme_end != NULL ? strchr(scheme_end + 3, '/') : NULL;
    if (path == NULL)
        return gw_err_public(err, GW_EINVAL, "SubscribeURL is not a URL");
    gw_fmt(base + (path - base), sizeof(base) - (size_t)(path - base), "%s", "/x.pem");
    if (aws_sns_cert_url_check(opts, base, &uerr) != GW_OK)
        return gw_err_public(err, GW_EINVAL, "SubscribeURL host is not SNS");

    const struct gw_curl_opts o = {
        .url = subscribe_url,
        .protocols = allow_http ? "http,https" : "https",
        .timeout_ms = CONFIRM_TIMEOUT_MS, /* connecting too */
        .sink = NULL,                     /* the answer is not read */
    };
    int rc = gw_curl_new(&h, &o, err);
    if (rc != GW_OK)
        return rc;
    if (opts != NULL && opts->ca_file != NULL &&
        (rc = GW_CURL_SET(h, CURLOPT_CAINFO, opts->ca_file, err)) != GW_OK)
        goto cleanup;
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK || curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
        status != 200)
        rc = gw_err_set(err, GW_EUNAVAIL, "confirming the subscription failed (%s, HTTP %ld)",
                        curl_easy_strerror(cc), status);

cleanup:
    curl_easy_cleanup(h);
    return rc;
}

/* ---- the verifier -------------------------------------------------------------------------------
 */

int aws_sns_verifier_new(struct aws_sns_verifier **out, const struct aws_sns_verifier_opts *o,
                         struct gw_err *err)
{
    int rc = GW_OK;
    struct aws_sns_verifier *v = NULL;
    static const struct aws_sns_verifier_opts none = {0};

    *out = NULL;
    if (o == NULL)
        o = &none;
    if (o->allowed_cert_host_suffix != NULL && o->allowed_cert_host_suffix[0] == '\0')
        return gw_err_set(err, GW_EINVAL, "allowed_cert_host_suffix is empty");
    if ((v = calloc(1, sizeof(*v))) == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    if (pthread_mutex_init(&v->mu, NULL) != 0) {
        rc = gw_err_set(err, GW_ENOMEM, "cannot create a mutex");
        goto cleanup;
    }
    v->mu_ready = 1;
    v->allow_http = o->allow_http_cert_url != 0;
    v->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    v->failure_ttl_ns = (int64_t)(o->failure_ttl_ms > 0 ? o->failure_ttl_ms : 30000) * 1000000;
    if ((o->ca_file != NULL && (v->ca_file = strdup(o->ca_file)) == NULL) ||
        (o->allowed_cert_host_suffix != NULL &&
         (v->allowed_suffix = strdup(o->allowed_cert_host_suffix)) == NULL) ||
        (v->store = X509_STORE_new()) == NULL) {
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (o->trust_pem_file != NULL) {
        if (X509_STORE_load_file(v->store, o->trust_pem_file) != 1) {
            rc = gw_err_set(err, GW_EINVAL, "SNS trust file %s holds no usable certificate",
                            o->trust_pem_file);
            goto cleanup;
        }
        /* Every certificate of the file is an anchor, intermediates too. */
        if (X509_STORE_set_flags(v->store, X509_V_FLAG_PARTIAL_CHAIN) != 1) {
            rc = gw_err_set(err, GW_ENOMEM, "out of memory");
            goto cleanup;
        }
    } else if (X509_STORE_set_default_paths(v->store) != 1) {
        rc = gw_err_set(err, GW_EINVAL, "the system CA store cannot be loaded");
        goto cleanup;
    }
    *out = v;
    v = NULL;

cleanup:
    if (rc != GW_OK)
        ERR_clear_error();
    aws_sns_verifier_free(v);
    return rc;
}

void aws_sns_verifier_free(struct aws_sns_verifier *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        entry_clear(&v->cache[i]);
    X509_STORE_free(v->store);
    free(v->ca_file);
    free(v->allowed_suffix);
    if (v->mu_ready)
        pthread_mutex_destroy(&v->mu);
    free(v);
}
