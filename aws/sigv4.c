/*
 * sigv4.c — AWS Signature Version 4: canonical request, string to sign,
 * signing key, Authorization header and presigned URLs.
 *
 * Pure functions over the caller's inputs: no I/O, no clock, no global state.
 * Every buffer has a maximum (the caller's gw_buf, or a bounded scratch buffer
 * freed before return) and every count (headers, query parameters, path
 * segments) is checked before it is used. The secret access key only ever
 * lives in the HMAC key chain, which is cleansed before return; the session
 * token is cleansed from scratch buffers too. This module does not fetch
 * credentials (credentials.c) and does not send anything (the transport).
 *
 * Canonicalisation follows AWS's specification and its test suite, and agrees
 * with botocore (tests/unit/aws/test_sigv4_botocore.c checks that):
 *   - the path, unless S3 rules apply, has its empty and "." segments removed
 *     and ".." resolved (botocore's remove_dot_segments), then every segment
 *     is percent-encoded once more; S3 paths are signed exactly as sent;
 *   - every query parameter is percent-decoded and re-encoded with the
 *     unreserved set, and the parameters are sorted by key, then value;
 *   - header names are lower-cased and sorted (repeated names keep their
 *     order and are joined with ','), values trimmed with inner runs of
 *     white space (obs-fold line breaks included) collapsed to one space.
 */
#include "aws/sigv4.h"

#include <assert.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"

#include "common/poison.h"

#define ALGORITHM        "AWS4-HMAC-SHA256"
#define UNSIGNED         "UNSIGNED-PAYLOAD"
#define SCRATCH_MAX      ((size_t)256 * 1024) /* canonical request, encoded query */
#define STS_MAX          1024
#define SECRET_MAX       256
#define PAYLOAD_HASH_MAX 128
#define SIGNED_HDRS_MAX  4096
#define SCOPE_PART_MAX   64 /* region, service */

/* ---- encoding ----------------------------------------------------------- */

static const char HEX_UPPER[] = "0123456789ABCDEF";

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends byte c, percent-encoded unless it is unreserved (or a kept '/'). */
static int encode_byte(struct gw_buf *out, unsigned char c, int keep_slash)
{
    if (is_unreserved(c) || (keep_slash && c == '/'))
        return gw_buf_add(out, &c, 1);
    char esc[3] = {'%', HEX_UPPER[c >> 4], HEX_UPPER[c & 0xf]};
    return gw_buf_add(out, esc, sizeof(esc));
}

int aws_uri_encode(struct gw_buf *out, const char *s, size_t len, int keep_slash)
{
    assert(out != NULL && (s != NULL || len == 0));
    size_t run = 0; /* start of the pending run of bytes that pass unchanged */
    int rc;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/'))
            continue;
        if (i > run && (rc = gw_buf_add(out, s + run, i - run)) != GW_OK)
            return rc;
        if ((rc = encode_byte(out, c, 0)) != GW_OK)
            return rc;
        run = i + 1;
    }
    if (len > run)
        return gw_buf_add(out, s + run, len - run);
    return GW_OK;
}

/* Decodes %XX escapes (others stay literal, '+' included) and re-encodes the
 * result with the unreserved set: one query key or value made canonical. */
static int requote(struct gw_buf *out, const char *s, size_t len)
{
    int rc;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < len) {
            int hi = hex_value((unsigned char)s[i + 1]);
            int lo = hex_value((unsigned char)s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (unsigned char)(hi << 4 | lo);
                i += 2;
            }
        }
        if ((rc = encode_byte(out, c, 0)) != GW_OK)
            return rc;
    }
    return GW_OK;
}

/* ---- validation ------------------------------------------------------- */

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* True when s has no control bytes (so it cannot break a canonical line). */
static int no_ctl(const char *s)
{
    for (; *s != '\0'; s++)
        if (is_ctl((unsigned char)*s))
            return 0;
    return 1;
}

/* A scope part (region, service, access key id): 1..max bytes, no '/',
 * white space, ',' or control bytes. */
static int valid_scope_part(const char *s, size_t max)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= max || is_ctl(c) || c == ' ' || c == '/' || c == ',')
            return 0;
    }
    return 1;
}

/* "YYYYMMDDTHHMMSSZ" */
static int valid_amz_date(const char *d)
{
    if (d == NULL)
        return 0;
    for (size_t i = 0; i < 16; i++) {
        unsigned char c = (unsigned char)d[i];
        int ok = (i == 8) ? c == 'T' : (i == 15) ? c == 'Z' : (c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return d[16] == '\0';
}

static int valid_params(const struct aws_sigv4_params *p)
{
    return valid_scope_part(p->region, SCOPE_PART_MAX) &&
           valid_scope_part(p->service, SCOPE_PART_MAX) && valid_amz_date(p->amz_date);
}

/* RFC 9110 token characters, as header field names must be. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* ---- canonical URI ------------------------------------------------------ */

struct seg {
    const char *p;
    size_t n;
};

static int canonical_uri(struct gw_buf *out, const char *path, int s3_rules)
{
    if (path[0] == '\0')
        return gw_buf_add(out, "/", 1);
    if (s3_rules)
        return gw_buf_adds(out, path);

    /* botocore's remove_dot_segments: empty and "." segments go, ".." pops
     * the last kept one; a trailing '/' stays only if a segment remains. */
    struct seg segs[AWS_SIGV4_MAX_PATH_SEGMENTS];
    size_t nseg = 0;
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (nseg > 0)
                nseg--;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (nseg == AWS_SIGV4_MAX_PATH_SEGMENTS)
                return GW_ETOOBIG;
            segs[nseg].p = p;
            segs[nseg].n = n;
            nseg++;
        }
        if (slash == NULL)
            break;
        p = slash + 1;
    }

    size_t plen = strlen(path);
    int rc = gw_buf_add(out, "/", 1); /* path starts with '/' (checked) */
    for (size_t i = 0; rc == GW_OK && i < nseg; i++) {
        if (i > 0)
            rc = gw_buf_add(out, "/", 1);
        if (rc == GW_OK)
            rc = aws_uri_encode(out, segs[i].p, segs[i].n, 0);
    }
    if (rc == GW_OK && nseg > 0 && path[plen - 1] == '/')
        rc = gw_buf_add(out, "/", 1);
    return rc;
}

/* ---- canonical query string ------------------------------------------- */

struct qparam {
    size_t key_off, val_off; /* into the scratch buffer, NUL-terminated */
    const char *key, *val;   /* set once the scratch buffer stops moving */
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : strcmp(x->val, y->val);
}

static int canonical_query(struct gw_buf *out, const char *query)
{
    struct gw_buf scratch;
    struct qparam *params = NULL;
    size_t n = 0, max = 1;
    int rc = GW_OK;

    gw_buf_init(&scratch, SCRATCH_MAX);
    if (query == NULL || query[0] == '\0')
        goto cleanup;
    for (const char *q = query; *q != '\0'; q++)
        if (*q == '&' && ++max > AWS_SIGV4_MAX_QUERY_PARAMS) {
            rc = GW_ETOOBIG;
            goto cleanup;
        }
    params = calloc(max, sizeof(*params));
    if (params == NULL) {
        rc = GW_ENOMEM;
        goto cleanup;
    }

    const char *p = query;
    for (;;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0) { /* "a&&b" and a trailing '&' carry no parameter */
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            params[n].key_off = scratch.len;
            if ((rc = requote(&scratch, p, klen)) != GW_OK ||
                (rc = gw_buf_add(&scratch, "", 1)) != GW_OK)
                goto cleanup;
            params[n].val_off = scratch.len;
            if (eq != NULL && (rc = requote(&scratch, eq + 1, len - klen - 1)) != GW_OK)
                goto cleanup;
            if ((rc = gw_buf_add(&scratch, "", 1)) != GW_OK)
                goto cleanup;
            n++;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    for (size_t i = 0; i < n; i++) {
        params[i].key = scratch.data + params[i].key_off;
        params[i].val = scratch.data + params[i].val_off;
    }
    if (n > 1)
        qsort(params, n, sizeof(*params), qparam_cmp);
    for (size_t i = 0; rc == GW_OK && i < n; i++) {
        if (i > 0)
            rc = gw_buf_add(out, "&", 1);
        if (rc == GW_OK)
            rc = gw_buf_adds(out, params[i].key);
        if (rc == GW_OK)
            rc = gw_buf_add(out, "=", 1);
        if (rc == GW_OK)
            rc = gw_buf_adds(out, params[i].val);
    }

cleanup:
    free(params);
    if (scratch.data != NULL)
        OPENSSL_cleanse(scratch.data, scratch.len); /* may hold a session token */
    gw_buf_dispose(&scratch);
    return rc;
}

/* ---- canonical headers ------------------------------------------------ */

struct hdr {
    const char *name;
    size_t nlen;
    const char *value;
    size_t index; /* position in the request: keeps repeated names in order */
};

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static int name_cmp(const struct hdr *x, const struct hdr *y)
{
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = ascii_lower((unsigned char)x->name[i]);
        unsigned char b = ascii_lower((unsigned char)y->name[i]);
        if (a != b)
            return a < b ? -1 : 1;
    }
    return x->nlen < y->nlen ? -1 : x->nlen > y->nlen ? 1 : 0;
}

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = name_cmp(x, y);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index ? 1 : 0;
}

static int is_lws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Appends v without leading and trailing white space, inner runs of white
 * space (line breaks of folded values included) replaced by one space. */
static int add_trimmed(struct gw_buf *out, const char *v)
{
    int rc = GW_OK;
    while (is_lws((unsigned char)*v))
        v++;
    while (*v != '\0' && rc == GW_OK) {
        const char *word = v;
        while (*v != '\0' && !is_lws((unsigned char)*v))
            v++;
        rc = gw_buf_add(out, word, (size_t)(v - word));
        while (is_lws((unsigned char)*v))
            v++;
        if (rc == GW_OK && *v != '\0')
            rc = gw_buf_add(out, " ", 1);
    }
    return rc;
}

static int add_lower(struct gw_buf *out, const char *s, size_t n)
{
    char tmp[AWS_SIGV4_MAX_HEADER_NAME];
    assert(n <= sizeof(tmp));
    for (size_t i = 0; i < n; i++)
        tmp[i] = (char)ascii_lower((unsigned char)s[i]);
    return gw_buf_add(out, tmp, n);
}

/* Canonical headers (each "name:value\n") into out, the signed-header list
 * into signed_headers. */
static int canonical_headers(struct gw_buf *out, char *signed_headers, size_t sh_len,
                             const struct aws_sigv4_request *req)
{
    struct hdr hs[AWS_SIGV4_MAX_HEADERS];
    size_t sh_pos = 0;
    int have_host = 0;
    int rc = GW_OK;

    if (req->nheaders > AWS_SIGV4_MAX_HEADERS)
        return GW_ETOOBIG;
    if (req->nheaders > 0 && req->headers == NULL)
        return GW_EINVAL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *name = req->headers[i].name, *value = req->headers[i].value;
        if (name == NULL || value == NULL)
            return GW_EINVAL;
        size_t nlen = strnlen(name, AWS_SIGV4_MAX_HEADER_NAME + 1);
        if (nlen > AWS_SIGV4_MAX_HEADER_NAME)
            return GW_ETOOBIG;
        if (nlen == 0)
            return GW_EINVAL;
        for (size_t j = 0; j < nlen; j++)
            if (!is_tchar((unsigned char)name[j]))
                return GW_EINVAL;
        for (const char *v = value; *v != '\0'; v++) /* CR, LF: folding, collapsed */
            if (is_ctl((unsigned char)*v) && !is_lws((unsigned char)*v))
                return GW_EINVAL;
        hs[i] = (struct hdr){.name = name, .nlen = nlen, .value = value, .index = i};
    }
    if (req->nheaders > 1)
        qsort(hs, req->nheaders, sizeof(hs[0]), hdr_cmp);

    for (size_t i = 0; i < req->nheaders && rc == GW_OK; i++) {
        int first = (i == 0 || name_cmp(&hs[i - 1], &hs[i]) != 0);
        int last = (i + 1 == req->nheaders || name_cmp(&hs[i], &hs[i + 1]) != 0);
        if (first) {
            if (hs[i].nlen == 4 && name_cmp(&hs[i], &(struct hdr){.name = "host", .nlen = 4}) == 0)
                have_host = 1;
            /* name and ';' (or the final NUL) into signed_headers */
            if (sh_pos + (sh_pos > 0) + hs[i].nlen >= sh_len)
                return GW_ETOOBIG;
            if (sh_pos > 0)
                signed_headers[sh_pos++] = ';';
            for (size_t j = 0; j < hs[i].nlen; j++)
                signed_headers[sh_pos++] = (char)ascii_lower((unsigned char)hs[i].name[j]);
            signed_headers[sh_pos] = '\0';
            rc = add_lower(out, hs[i].name, hs[i].nlen);
            if (rc == GW_OK)
                rc = gw_buf_add(out, ":", 1);
        } else {
            rc = gw_buf_add(out, ",", 1);
        }
        if (rc == GW_OK)
            rc = add_trimmed(out, hs[i].value);
        if (rc == GW_OK && last)
            rc = gw_buf_add(out, "\n", 1);
    }
    if (rc == GW_OK && !have_host)
        rc = GW_EINVAL;
    return rc;
}

/* ---- canonical request, string to sign, signature ------------------- */

static int valid_payload_hash(const char *h)
{
    size_t n = strnlen(h, PAYLOAD_HASH_MAX + 1);
    if (n == 0 || n > PAYLOAD_HASH_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (is_ctl((unsigned char)h[i]) || h[i] == ' ')
            return 0;
    return 1;
}

int aws_sigv4_canonical_request(struct gw_buf *out, char *signed_headers, size_t sh_len,
                                const struct aws_sigv4_request *req,
                                const struct aws_sigv4_params *p)
{
    char body_hash[65];
    const char *payload = req != NULL ? req->payload_hash : NULL;
    int rc;

    assert(out != NULL && signed_headers != NULL && req != NULL && p != NULL);
    gw_buf_reset(out);
    if (sh_len == 0)
        return GW_ETOOBIG;
    signed_headers[0] = '\0';
    if (req->method == NULL || req->method[0] == '\0' || req->path == NULL)
        return GW_EINVAL;
    for (const char *m = req->method; *m != '\0'; m++)
        if (!is_tchar((unsigned char)*m))
            return GW_EINVAL;
    if ((req->path[0] != '\0' && req->path[0] != '/') || !no_ctl(req->path))
        return GW_EINVAL;
    if (req->query != NULL && !no_ctl(req->query))
        return GW_EINVAL;
    if (payload != NULL && !valid_payload_hash(payload))
        return GW_EINVAL;
    if (payload == NULL && req->body == NULL && req->body_len > 0)
        return GW_EINVAL;

    if ((rc = gw_buf_adds(out, req->method)) != GW_OK || (rc = gw_buf_add(out, "\n", 1)) != GW_OK)
        goto cleanup;
    if ((rc = canonical_uri(out, req->path, p->s3_path_rules)) != GW_OK ||
        (rc = gw_buf_add(out, "\n", 1)) != GW_OK)
        goto cleanup;
    if ((rc = canonical_query(out, req->query)) != GW_OK ||
        (rc = gw_buf_add(out, "\n", 1)) != GW_OK)
        goto cleanup;
    if ((rc = canonical_headers(out, signed_headers, sh_len, req)) != GW_OK ||
        (rc = gw_buf_add(out, "\n", 1)) != GW_OK)
        goto cleanup;
    if ((rc = gw_buf_adds(out, signed_headers)) != GW_OK ||
        (rc = gw_buf_add(out, "\n", 1)) != GW_OK)
        goto cleanup;
    if (payload == NULL) {
        unsigned char digest[32];
        gw_sha256(digest, req->body != NULL ? req->body : "", req->body_len);
        gw_hex(body_hash, digest, sizeof(digest));
        payload = body_hash;
    }
    rc = gw_buf_adds(out, payload);

cleanup:
    if (rc != GW_OK) {
        gw_buf_reset(out);
        signed_headers[0] = '\0';
    }
    return rc;
}

int aws_sigv4_string_to_sign(struct gw_buf *out, const char *canonical_request,
                             const struct aws_sigv4_params *p)
{
    unsigned char digest[32];
    char hex[65];

    assert(out != NULL && canonical_request != NULL && p != NULL);
    gw_buf_reset(out);
    if (!valid_params(p))
        return GW_EINVAL;
    gw_sha256(digest, canonical_request, strlen(canonical_request));
    gw_hex(hex, digest, sizeof(digest));
    int rc = gw_buf_printf(out, ALGORITHM "\n%s\n%.8s/%s/%s/aws4_request\n%s", p->amz_date,
                           p->amz_date, p->region, p->service, hex);
    if (rc != GW_OK)
        gw_buf_reset(out);
    return rc;
}

/* HMAC-SHA256 through one EVP_MAC context, re-keyed for each step of the
 * chain: fetching the algorithm once per signature rather than once per
 * HMAC (as the one-shot HMAC() does) makes signing about twice as fast. */
struct hmac {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
};

static void hmac_close(struct hmac *h)
{
    EVP_MAC_CTX_free(h->ctx); /* cleanses the key it holds */
    EVP_MAC_free(h->mac);
    h->ctx = NULL;
    h->mac = NULL;
}

static int hmac_open(struct hmac *h)
{
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    h->ctx = NULL;
    h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (h->mac != NULL)
        h->ctx = EVP_MAC_CTX_new(h->mac);
    if (h->ctx == NULL || EVP_MAC_CTX_set_params(h->ctx, params) != 1) {
        hmac_close(h);
        return GW_EIO;
    }
    return GW_OK;
}

static int hmac_sha256(struct hmac *h, unsigned char out[32], const void *key, size_t key_len,
                       const void *msg, size_t msg_len)
{
    size_t out_len = 0;
    if (EVP_MAC_init(h->ctx, key, key_len, NULL) != 1 ||
        EVP_MAC_update(h->ctx, msg, msg_len) != 1 ||
        EVP_MAC_final(h->ctx, out, &out_len, 32) != 1 || out_len != 32)
        return GW_EIO;
    return GW_OK;
}

/* The hex signature; the key chain ("AWS4"+secret, date, region, service,
 * signing key) is cleansed on every path out. */
static int sign(char out[65], const char *secret, const char *string_to_sign,
                const struct aws_sigv4_params *p)
{
    unsigned char k_secret[4 + SECRET_MAX];
    unsigned char k_date[32], k_region[32], k_service[32], k_signing[32], mac[32];
    struct hmac h = {NULL, NULL};
    int rc = GW_EINVAL;

    out[0] = '\0';
    size_t slen = strnlen(secret, SECRET_MAX + 1);
    if (slen == 0 || slen > SECRET_MAX || !valid_params(p))
        goto cleanup;
    static const unsigned char prefix[4] = {'A', 'W', 'S', '4'}; /* not a string */
    memcpy(k_secret, prefix, sizeof(prefix));
    memcpy(k_secret + 4, secret, slen);
    if ((rc = hmac_open(&h)) != GW_OK ||
        (rc = hmac_sha256(&h, k_date, k_secret, 4 + slen, p->amz_date, 8)) != GW_OK ||
        (rc = hmac_sha256(&h, k_region, k_date, 32, p->region, strlen(p->region))) != GW_OK ||
        (rc = hmac_sha256(&h, k_service, k_region, 32, p->service, strlen(p->service))) != GW_OK ||
        (rc = hmac_sha256(&h, k_signing, k_service, 32, "aws4_request", 12)) != GW_OK ||
        (rc = hmac_sha256(&h, mac, k_signing, 32, string_to_sign, strlen(string_to_sign))) != GW_OK)
        goto cleanup;
    gw_hex(out, mac, sizeof(mac));

cleanup:
    hmac_close(&h);
    OPENSSL_cleanse(k_secret, sizeof(k_secret));
    OPENSSL_cleanse(k_date, sizeof(k_date));
    OPENSSL_cleanse(k_region, sizeof(k_region));
    OPENSSL_cleanse(k_service, sizeof(k_service));
    OPENSSL_cleanse(k_signing, sizeof(k_signing));
    return rc;
}

void aws_sigv4_signature(char out[65], const char *secret_access_key, const char *string_to_sign,
                         const struct aws_sigv4_params *p)
{
    assert(out != NULL && secret_access_key != NULL && string_to_sign != NULL && p != NULL);
    if (sign(out, secret_access_key, string_to_sign, p) != GW_OK)
        out[0] = '\0';
}

static int valid_creds(const struct aws_credentials *c)
{
    return valid_scope_part(c->access_key_id, sizeof(c->access_key_id) - 1) &&
           memchr(c->secret_access_key, '\0', sizeof(c->secret_access_key)) != NULL &&
           c->secret_access_key[0] != '\0' &&
           memchr(c->session_token, '\0', sizeof(c->session_token)) != NULL;
}

/* Clears and frees a scratch buffer that may hold a session token. */
static void scratch_dispose(struct gw_buf *b)
{
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->len);
    gw_buf_dispose(b);
}

/* Canonical request, string to sign and signature of req. */
static int sign_request(char sig[65], char *signed_headers, size_t sh_len,
                        const struct aws_sigv4_request *req, const struct aws_credentials *creds,
                        const struct aws_sigv4_params *p)
{
    struct gw_buf creq, sts;
    int rc;

    gw_buf_init(&creq, SCRATCH_MAX);
    gw_buf_init(&sts, STS_MAX);
    if ((rc = aws_sigv4_canonical_request(&creq, signed_headers, sh_len, req, p)) != GW_OK ||
        (rc = aws_sigv4_string_to_sign(&sts, creq.data, p)) != GW_OK)
        goto cleanup;
    rc = sign(sig, creds->secret_access_key, sts.data, p);

cleanup:
    scratch_dispose(&creq);
    gw_buf_dispose(&sts);
    return rc;
}

int aws_sigv4_authorization(char *out, size_t outlen, const struct aws_sigv4_request *req,
                            const struct aws_credentials *creds, const struct aws_sigv4_params *p)
{
    char signed_headers[SIGNED_HDRS_MAX];
    char sig[65];
    int rc;

    assert(out != NULL && req != NULL && creds != NULL && p != NULL);
    if (outlen == 0)
        return GW_ETOOBIG;
    out[0] = '\0';
    if (!valid_creds(creds) || !valid_params(p))
        return GW_EINVAL;
    if ((rc = sign_request(sig, signed_headers, sizeof(signed_headers), req, creds, p)) != GW_OK)
        return rc;
    int n = snprintf(out, outlen,
                     ALGORITHM " Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
                               "Signature=%s",
                     creds->access_key_id, p->amz_date, p->region, p->service, signed_headers, sig);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return GW_ETOOBIG;
    }
    return GW_OK;
}

/* ---- presigned URLs --------------------------------------------------- */

/* The query of a presigned URL without its signature: the caller's
 * parameters, then the X-Amz-* ones in the order botocore writes them. */
static int presign_query(struct gw_buf *q, const char *query, int expires_s,
                         const struct aws_credentials *creds, const struct aws_sigv4_params *p)
{
    char credential[256];
    int rc;

    int n = snprintf(credential, sizeof(credential), "%s/%.8s/%s/%s/aws4_request",
                     creds->access_key_id, p->amz_date, p->region, p->service);
    if (n < 0 || (size_t)n >= sizeof(credential))
        return GW_ETOOBIG;
    if (query != NULL && query[0] != '\0') {
        if ((rc = gw_buf_adds(q, query)) != GW_OK || (rc = gw_buf_add(q, "&", 1)) != GW_OK)
            return rc;
    }
    if ((rc = gw_buf_adds(q, "X-Amz-Algorithm=" ALGORITHM "&X-Amz-Credential=")) != GW_OK ||
        (rc = aws_uri_encode(q, credential, (size_t)n, 0)) != GW_OK ||
        (rc = gw_buf_printf(q, "&X-Amz-Date=%s&X-Amz-Expires=%d&X-Amz-SignedHeaders=host",
                            p->amz_date, expires_s)) != GW_OK)
        return rc;
    if (creds->session_token[0] != '\0') {
        if ((rc = gw_buf_adds(q, "&X-Amz-Security-Token=")) != GW_OK ||
            (rc = aws_uri_encode(q, creds->session_token, strlen(creds->session_token), 0)) !=
                GW_OK)
            return rc;
    }
    return GW_OK;
}

int aws_sigv4_presign(struct gw_buf *out, const char *method, const char *scheme_host,
                      const char *host, const char *path, const char *query, int expires_s,
                      const struct aws_credentials *creds, const struct aws_sigv4_params *p)
{
    struct gw_buf q;
    char signed_headers[16];
    char sig[65];
    int rc;

    assert(out != NULL && method != NULL && scheme_host != NULL && host != NULL && creds != NULL &&
           p != NULL);
    size_t mark = out->len;
    gw_buf_init(&q, SCRATCH_MAX);
    if (expires_s < 1 || expires_s > 604800 || scheme_host[0] == '\0' || host[0] == '\0' ||
        !no_ctl(scheme_host) || !valid_creds(creds) || !valid_params(p)) {
        rc = GW_EINVAL;
        goto cleanup;
    }
    if (path == NULL || path[0] == '\0')
        path = "/";
    if ((rc = presign_query(&q, query, expires_s, creds, p)) != GW_OK)
        goto cleanup;

    const struct aws_sigv4_header h = {.name = "host", .value = host};
    const struct aws_sigv4_request req = {
        .method = method,
        .path = path,
        .query = q.data,
        .headers = &h,
        .nheaders = 1,
        .payload_hash = UNSIGNED,
    };
    if ((rc = sign_request(sig, signed_headers, sizeof(signed_headers), &req, creds, p)) != GW_OK)
        goto cleanup;
    if ((rc = gw_buf_adds(out, scheme_host)) != GW_OK || (rc = gw_buf_adds(out, path)) != GW_OK ||
        (rc = gw_buf_add(out, "?", 1)) != GW_OK || (rc = gw_buf_add(out, q.data, q.len)) != GW_OK ||
        (rc = gw_buf_adds(out, "&X-Amz-Signature=")) != GW_OK ||
        (rc = gw_buf_adds(out, sig)) != GW_OK)
        goto cleanup;

cleanup:
    scratch_dispose(&q);
    if (rc != GW_OK) {
        out->len = mark; /* leave out as it was */
        if (out->data != NULL)
            out->data[mark] = '\0';
    }
    return rc;
}

/* ---- dates ---------------------------------------------------------------- */

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
 * civil_from_days), so no libc time zone state is involved. */
static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long yy = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

void aws_amz_date(char out[17], long long unix_seconds)
{
    /* 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59Z: what fits in four digits */
    const long long min = -62167219200LL, max = 253402300799LL;
    assert(out != NULL);
    out[0] = '\0';
    if (unix_seconds < min || unix_seconds > max)
        return;
    long long days = unix_seconds / 86400, secs = unix_seconds % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    long long y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, 17, "%04lld%02u%02uT%02lld%02lld%02lldZ", y, m, d, secs / 3600,
                     secs / 60 % 60, secs % 60);
    if (n != 16)
        out[0] = '\0';
}
