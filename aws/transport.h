/*
 * transport.h — one signed AWS API call over libcurl: endpoint resolution
 * (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else the public endpoint),
 * SigV4 signing with the credentials chain, connection reuse, timeouts,
 * retries with exponential backoff and full jitter on throttling, 5xx and
 * network errors (never on other 4xx), and one structured error parsed from
 * JSON or XML error bodies. The service clients (batch.c, sns.c, s3.c,
 * logs.c) build requests and read answers; they never touch libcurl.
 *
 * Threads. One aws_client is made at start-up and shared by every thread:
 * aws_call, aws_presign_url, aws_endpoint_for and aws_client_region are safe
 * to call at once from any number of threads (the handle pool is behind a
 * mutex, each call uses a handle of its own, and the credentials provider is
 * thread-safe). aws_client_new and aws_client_free are not: free the client
 * once no call is running. The client borrows its credentials provider, which
 * has to outlive it. A request and its response belong to the calling
 * thread: the request is borrowed for the call, the response (its body) is
 * the caller's until aws_response_dispose. aws_error is the caller's memory.
 */
#ifndef MLGW_AWS_TRANSPORT_H
#define MLGW_AWS_TRANSPORT_H

#include <stddef.h>

#include "aws/credentials.h"
#include "common/buf.h"
#include "common/err.h"

/* One AWS error, whatever the protocol said it in. */
struct aws_error {
    long http_status;  /* 0 when no answer came (network) */
    char code[128];    /* "ClientException", "NoSuchBucket", "Throttling", or a curl error name */
    char message[512]; /* AWS's message; never contains credentials */
    char request_id[128];
    int retryable; /* throttling, 5xx, network */
    int ambiguous; /* the request may have been executed (timeout after sending) */
    int attempts;  /* how many tries were made */
};

struct aws_client;

struct aws_client_opts {
    aws_env_getter getenv_fn; /* NULL: getenv; AWS_REGION, AWS_ENDPOINT_URL[_<SERVICE>] */
    void *getenv_ctx;
    struct aws_creds_provider *creds; /* borrowed; required */
    int connect_timeout_ms;           /* 0: 3000 */
    int timeout_ms;                   /* 0: 10000 (a whole attempt) */
    int max_attempts;                 /* 0: 4 */
    int backoff_base_ms;              /* 0: 100 */
    int backoff_cap_ms;               /* 0: 5000 */
    int handles;                      /* pooled curl handles; 0: 8 */
};

/* *out is new (aws_client_free); opts are copied except creds (borrowed).
 * GW_EINVAL (no credentials provider), GW_ENOMEM. */
int aws_client_new(struct aws_client **out, const struct aws_client_opts *opts, struct gw_err *err);
/* Frees c and its pooled handles; NULL is a no-op. Not while a call runs. */
void aws_client_free(struct aws_client *c);
/* The region in use ("" when none is configured), borrowed from c. */
const char *aws_client_region(const struct aws_client *c);

struct aws_header {
    const char *name;
    const char *value;
};

struct aws_request {
    const char *service; /* signing name: "batch", "sns", "s3", "logs" */
    const char
        *endpoint_id; /* for AWS_ENDPOINT_URL_<ID>: "BATCH", "SNS", "S3", "CLOUDWATCH_LOGS" */
    const char *host_prefix; /* public host's first label: "batch", "sns", "s3", "logs" */
    const char *method;
    const char *path;  /* wire path below the endpoint, percent-encoded */
    const char *query; /* wire query without '?', or NULL */
    const char *content_type;
    const void *body;
    size_t body_len;
    const struct aws_header *headers; /* extra signed headers (x-amz-target...) */
    size_t nheaders;
    size_t max_response; /* 0: 8 MiB */
    int s3;              /* S3 path rules and x-amz-content-sha256 */
    const char *bucket;  /* S3: virtual-hosted on AWS, path-style on a custom endpoint */
    /* Safe to send twice. A non-idempotent call (SubmitJob, Publish) is not
     * retried after a failure that may have reached the service: the caller
     * gets err->ambiguous and decides (e.g. look the job up by name). */
    int idempotent;
};

struct aws_response {
    long status;
    struct gw_buf body;
    char request_id[128];
    char etag[128];
    long long content_length; /* -1 when absent */
};

void aws_response_dispose(struct aws_response *r);

/*
 * Performs req with retries (blocking; backoff sleeps on the calling
 * thread). On success (2xx) *out holds the answer. On failure returns
 * GW_EUPSTREAM (AWS answered with an error: err->code etc.), GW_EUNAVAIL (no
 * answer: network, timeouts, or retries exhausted on throttling/5xx),
 * GW_ENOTFOUND (no credentials), GW_EINVAL (bad endpoint configuration, or
 * libcurl refused an option) or GW_ENOMEM. err is always filled on failure;
 * its text comes from AWS and is never for a client. *out is the caller's
 * either way (aws_response_dispose).
 */
int aws_call(struct aws_response *out, struct aws_client *c, const struct aws_request *req,
             struct aws_error *err);

/* A presigned URL for req (method, path, bucket, service ids; no body)
 * valid expires_s seconds (new: free()). */
int aws_presign_url(char **url, struct aws_client *c, const struct aws_request *req, int expires_s,
                    struct aws_error *err);

/* The endpoint a service resolves to, e.g. "http://127.0.0.1:5000" (new:
 * free(); NULL when out of memory). Exposed for tests. */
char *aws_endpoint_for(struct aws_client *c, const char *endpoint_id, const char *host_prefix);

/* Pieces of one attempt of aws_call, exposed for tests. Pure functions on
 * caller-owned memory; safe from any thread. */

/* Fills sh (room for max, at least 5) with the headers SigV4 signs for req,
 * in this order: host, x-amz-date, content-type (when req has one),
 * x-amz-security-token (when session_token is not empty),
 * x-amz-content-sha256 (S3), then req's own headers while they fit. The
 * entries borrow the strings passed in. Returns how many; 0 when max < 5. */
size_t aws_sign_headers(struct aws_sigv4_header *sh, size_t max, const struct aws_request *req,
                        const char *host, const char *amz_date, const char *session_token,
                        const char *payload_hash);

/* Describes a libcurl failure (a CURLcode) in err: no HTTP status, code
 * "curl:<n>", libcurl's text; retryable, except a body over the size limit
 * (CURLE_WRITE_ERROR, CURLE_FILESIZE_EXCEEDED: "response larger than
 * allowed"); ambiguous unless the request cannot have reached the service
 * (resolving, connecting, TLS handshake). */
void aws_error_from_curl(struct aws_error *err, int curl_code);

/* Fills err (zeroed by the caller) from an AWS error answer already in r
 * (status, request id, body) and its x-amzn-ErrorType header (NULL: none):
 * code and message from a JSON ("__type"/"code", "message") or XML (<Code>,
 * <Message>, <RequestId>) body, else from the header, else "HTTP<status>";
 * retryable for 5xx, 429 and the throttling codes. Leaves ambiguous and
 * attempts alone. r->body must be NUL-terminated (a gw_buf is). Exposed for
 * tests (the fuzz target); pure, safe from any thread. */
void aws_error_parse(struct aws_error *err, const struct aws_response *r, const char *type_header);

/* The text of the first <tag>...</tag> in xml, entities decoded, into out.
 * Returns 0 when found. Pure; safe from any thread. */
int aws_xml_text(char *out, size_t outlen, const char *xml, const char *tag);

/* Appends application/x-www-form-urlencoded "k=v" (with '&' when needed) to
 * the caller's buffer. GW_ETOOBIG, GW_ENOMEM. */
int aws_form_add(struct gw_buf *b, const char *key, const char *value);

#endif
