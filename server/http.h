/*
 * http.h — the request lifecycle: what a route handler sees (srv_request),
 * what it hands back (srv_reply), the route table entry, and the daemon.
 *
 * The daemon owns parsing, limits, routing, request ids, access logs and
 * metrics; handlers only read the request and fill a reply. Handlers run on
 * libmicrohttpd's worker threads and may block (database calls).
 */
#ifndef MLGW_HTTP_H
#define MLGW_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

#include "config.h"
#include "gw.h"

struct srv_app;

enum srv_method {
    SRV_GET = 1u << 0,
    SRV_HEAD = 1u << 1,
    SRV_POST = 1u << 2,
    SRV_PUT = 1u << 3,
    SRV_DELETE = 1u << 4,
    SRV_PATCH = 1u << 5,
    SRV_OPTIONS = 1u << 6,
};

/* What a route accepts as a request body. */
enum srv_body_kind {
    SRV_BODY_NONE, /* any body is read and ignored */
    SRV_BODY_JSON, /* application/json required (415 otherwise), parsed by the handler */
    SRV_BODY_TEXT, /* text/plain or application/json (SNS posts text/plain) */
};

enum { SRV_MAX_PARAMS = 4, SRV_PARAM_MAX = 256, SRV_REQUEST_ID_MAX = 128 };

struct srv_request {
    struct MHD_Connection *conn;
    struct srv_app *app;
    const char *method; /* borrowed from libmicrohttpd for the request's life */
    const char *path;
    unsigned method_bit;
    char request_id[SRV_REQUEST_ID_MAX + 1];
    const struct srv_route *route; /* matched route; NULL when none */
    const char *route_label;       /* static: the pattern, or "unmatched" */
    int nparams;
    struct {
        const char *name; /* borrowed from the route pattern */
        char value[SRV_PARAM_MAX + 1];
    } params[SRV_MAX_PARAMS];
    struct gw_buf body;
    int64_t start_ns;
    char auth_key_id[40]; /* the caller's API key id, once authorized */
    unsigned auth_scopes;
    /* daemon bookkeeping */
    unsigned status;
    int responded;
    size_t drained;             /* body bytes read and thrown away after an early error */
    struct MHD_Response *early; /* an error decided from the headers alone */
    unsigned early_status;
};

struct srv_reply {
    unsigned status;
    struct MHD_Response *resp; /* owned until queued */
};

typedef void (*srv_handler)(struct srv_request *req, struct srv_reply *out);

struct srv_route {
    const char *pattern; /* "/jobs/{id}/cancel": {name} matches one non-empty segment */
    unsigned methods;    /* SRV_* bits */
    enum srv_body_kind body;
    srv_handler handler;
    unsigned scope; /* required API-key scope bits; 0: no authentication */
};

/* Checks the request's credentials for scope. Returns 0 and fills
 * req->auth_* when allowed; otherwise fills out (401/403/503) and returns
 * non-zero. Called after routing, before the body is read. */
typedef int (*srv_authorize_fn)(struct srv_request *req, unsigned scope, struct srv_reply *out);

/* Path parameter by name (borrowed for the request), or NULL. */
const char *srv_param(const struct srv_request *req, const char *name);
/* Query argument by name (borrowed for the request), or NULL. */
const char *srv_query(const struct srv_request *req, const char *name);
/* Request header (case-insensitive; borrowed), or NULL. */
const char *srv_header(const struct srv_request *req, const char *name);

/* Routing, exposed for tests. */
enum srv_match_result { SRV_MATCH_OK, SRV_MATCH_NO_METHOD, SRV_MATCH_NO_ROUTE };
struct srv_match {
    const struct srv_route *route;
    unsigned allowed;                   /* methods the path accepts, on SRV_MATCH_NO_METHOD */
    const struct srv_route *path_route; /* first route whose pattern fits the path */
    int nparams;
    struct {
        const char *name;
        char value[SRV_PARAM_MAX + 1];
    } params[SRV_MAX_PARAMS];
};
enum srv_match_result srv_route_match(struct srv_match *out, const struct srv_route *routes,
                                      size_t nroutes, unsigned method, const char *path);
unsigned srv_method_bit(const char *method);
/* Static name of a single method bit; "OTHER" for 0 or several. */
const char *srv_method_name(unsigned bit);
/* "GET, HEAD, POST" for the bits (into out). */
void srv_methods_format(char *out, size_t outlen, unsigned bits);

/* Parses the body as one JSON object (strict: no duplicate keys, valid UTF-8,
 * nesting ≤ 32). On failure r holds a 400 problem and a negative code is
 * returned; on success *out is new (json_decref it). */
int srv_body_json(json_t **out, struct srv_request *req, struct srv_reply *r);

/* Replies. Each sets out->status and out->resp; failures fall back to 500. */
void srv_reply_json(struct srv_reply *out, unsigned status, json_t *body /* steals */);
void srv_reply_bytes(struct srv_reply *out, unsigned status, const char *content_type,
                     char *data /* steals malloc()ed */, size_t len);
void srv_reply_header(struct srv_reply *out, const char *name, const char *value);
/* RFC 9457 problem+json; errors (steals, may be NULL) is the "errors" array. */
void srv_reply_problem(struct srv_request *req, struct srv_reply *out, unsigned status,
                       const char *title, const char *detail, json_t *errors);
/* Maps a gateway error code to its HTTP problem, in one place. Internal
 * detail (err->msg) is logged with the request id, never sent. */
void srv_reply_error(struct srv_request *req, struct srv_reply *out, int code,
                     const struct gw_err *err);

/* The daemon. */
struct srv_http;
struct srv_http_opts {
    const struct sockaddr *addr;
    unsigned addrlen;
    unsigned threads;
    unsigned connection_limit;
    unsigned connection_timeout_s;
    size_t max_body_bytes;
    const struct srv_route *routes;
    size_t nroutes;
    struct srv_app *app;
    srv_authorize_fn authorize;    /* NULL: routes with a scope are refused (500) */
    const struct srv_config *cors; /* origins for CORS; NULL: no CORS headers */
};
int srv_http_start(struct srv_http **out, const struct srv_http_opts *opts, struct gw_err *err);
/* The port actually bound (useful with port 0). */
unsigned srv_http_port(const struct srv_http *h);
/* Stops accepting new connections; in-flight requests go on. */
void srv_http_quiesce(struct srv_http *h);
/* Requests between headers received and response completed. */
long srv_http_inflight(const struct srv_http *h);
/* Closes every connection and frees h. NULL is a no-op. */
void srv_http_stop(struct srv_http *h);

#endif
