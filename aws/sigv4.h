/*
 * sigv4.h — AWS Signature Version 4, as pure functions: canonical request,
 * string to sign, signing key, Authorization header and presigned URLs.
 * No I/O, no clock (the caller passes the time); beyond the caller's buffers
 * only bounded scratch memory, cleansed and freed before return. OpenSSL
 * provides HMAC-SHA256 and SHA-256. Safe from any thread; inputs are
 * borrowed, results go into the caller's buffers.
 */
#ifndef MLGW_AWS_SIGV4_H
#define MLGW_AWS_SIGV4_H

#include <stddef.h>

#include "common/buf.h"

/* Limits on one request: more is GW_ETOOBIG. */
#define AWS_SIGV4_MAX_HEADERS       64
#define AWS_SIGV4_MAX_HEADER_NAME   128
#define AWS_SIGV4_MAX_QUERY_PARAMS  1024
#define AWS_SIGV4_MAX_PATH_SEGMENTS 256

/* Credentials as the signer needs them. session_token is "" when none. */
struct aws_credentials {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096];
    long long expiration_ms; /* 0: does not expire */
};

struct aws_sigv4_header {
    const char *name; /* any case; canonicalised to lower case */
    const char *value;
};

struct aws_sigv4_request {
    const char *method; /* "GET", "POST", ... */
    /* The path exactly as it goes on the wire (already percent-encoded as the
     * service expects), e.g. "/v1/submitjob" or "/bucket/my%20key". */
    const char *path;
    /* The raw query string without '?', as on the wire, or NULL/"" for none. */
    const char *query;
    /* Every header that is sent and should be signed, including host and
     * x-amz-date (and x-amz-security-token when used). Repeated names are
     * joined with ',' in the order given, values are trimmed and inner runs of
     * spaces collapsed, as SigV4 requires. */
    const struct aws_sigv4_header *headers;
    size_t nheaders;
    /* Lower-case hex SHA-256 of the payload, or "UNSIGNED-PAYLOAD". NULL: the
     * signer hashes body/body_len itself. */
    const char *payload_hash;
    const void *body;
    size_t body_len;
};

struct aws_sigv4_params {
    const char *region;   /* "us-east-1" */
    const char *service;  /* signing name: "batch", "sns", "s3", "logs" */
    const char *amz_date; /* "20150830T123600Z" (UTC) */
    /* S3 signs the path as sent; every other service encodes each path
     * segment once more and normalises "." and ".." segments and "//". */
    int s3_path_rules;
};

/*
 * The canonical request (into out, reset first; exposed for tests and bench/) and the signed-header
 * list (lower case, ';'-separated, into signed_headers). Errors: GW_EINVAL (no host header,
 * malformed input), GW_ETOOBIG (a buffer limit).
 */
int aws_sigv4_canonical_request(struct gw_buf *out, char *signed_headers, size_t sh_len,
                                const struct aws_sigv4_request *req,
                                const struct aws_sigv4_params *p);

/* The two steps of aws_sigv4_authorization after the canonical request,
 * exposed for tests (and bench/). */

/* "AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256(canonical)>" into out. */
int aws_sigv4_string_to_sign(struct gw_buf *out, const char *canonical_request,
                             const struct aws_sigv4_params *p);

/* The hex signature of string_to_sign (out: 65 bytes); "" when the
 * parameters are invalid or OpenSSL fails. */
void aws_sigv4_signature(char out[65], const char *secret_access_key, const char *string_to_sign,
                         const struct aws_sigv4_params *p);

/* The whole Authorization header value into out. */
int aws_sigv4_authorization(char *out, size_t outlen, const struct aws_sigv4_request *req,
                            const struct aws_credentials *creds, const struct aws_sigv4_params *p);

/*
 * A presigned URL (query-string signing): scheme_host is "https://bucket.s3.
 * amazonaws.com" or an emulator's "http://127.0.0.1:5000"; host is the Host
 * header value it implies; path and query as in aws_sigv4_request. The
 * payload is UNSIGNED-PAYLOAD, the only signed header is host. expires_s is
 * 1..604800. The result is appended to out.
 */
int aws_sigv4_presign(struct gw_buf *out, const char *method, const char *scheme_host,
                      const char *host, const char *path, const char *query, int expires_s,
                      const struct aws_credentials *creds, const struct aws_sigv4_params *p);

/* RFC 3986 percent-encoding of the unreserved set (A-Z a-z 0-9 - _ . ~ pass),
 * as SigV4 wants; with keep_slash, '/' passes too (S3 keys in paths). The
 * result is appended to out; hex digits are upper case. */
int aws_uri_encode(struct gw_buf *out, const char *s, size_t len, int keep_slash);

/* "20150830T123600Z" for a UNIX time in seconds (out: 17 bytes); "" for a
 * time outside the years 0000..9999. */
void aws_amz_date(char out[17], long long unix_seconds);

#endif
