/*
 * http.h — the handler contract: what a route handler sees (rt_request),
 * what it hands back (rt_reply), the route table entry, and the helpers a
 * handler uses to read the request and build its reply.
 *
 * server/ owns the daemon that fills an rt_request and sends the rt_reply;
 * handlers only read the request and fill a reply. Handlers run on
 * libmicrohttpd's worker threads and may block (database calls). Every
 * function here is safe to call from any worker thread on its own request.
 */
#ifndef MLGW_RT_HTTP_H
#define MLGW_RT_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

struct jobs_app;
struct db_write;
struct rt_reply;
struct rt_request;

/* Fills a deferred request's reply (see rt_write); ctx is the handler's. */
typedef void (*rt_resume_fn)(struct rt_request *req, struct rt_reply *out, void *ctx);

enum rt_method {
    RT_GET = 1u << 0,
    RT_HEAD = 1u << 1,
    RT_POST = 1u << 2,
    RT_PUT = 1u << 3,
    RT_DELETE = 1u << 4,
    RT_PATCH = 1u << 5,
    RT_OPTIONS = 1u << 6,
};

/* What a route accepts as a request body. */
enum rt_body_kind {
    RT_BODY_NONE, /* any body is read and ignored */
    RT_BODY_JSON, /* application/json required (415 otherwise), parsed by the handler */
    RT_BODY_TEXT, /* text/plain or application/json (SNS posts text/plain) */
};

enum { RT_MAX_PARAMS = 4, RT_PARAM_MAX = 256, RT_REQUEST_ID_MAX = 128 };

struct rt_request {
    struct MHD_Connection *conn;
    struct jobs_app *app;
    const char *method; /* borrowed from libmicrohttpd for the request's life */
    const char *path;
    unsigned method_bit;
    char request_id[RT_REQUEST_ID_MAX + 1];
    const struct rt_route *route; /* matched route; NULL when none */
    const char *route_label;      /* static: the pattern, or "unmatched" */
    int nparams;
    struct {
        const char *name; /* borrowed from the route pattern */
        char value[RT_PARAM_MAX + 1];
    } params[RT_MAX_PARAMS];
    struct gw_buf body;
    int64_t start_ns;
    char auth_key_id[40]; /* the caller's API key id, once authorized */
    char auth_team[65];   /* its team, once authorized */
    unsigned auth_scopes;
    char client_addr[48]; /* the peer's IP address, "" when unknown */
    /* daemon bookkeeping */
    unsigned status;
    int responded;
    size_t drained;             /* body bytes read and thrown away after an early error */
    struct MHD_Response *early; /* an error decided from the headers alone */
    unsigned early_status;
    rt_resume_fn resume; /* set while the reply is deferred (rt_write) */
    void *resume_ctx;
};

struct rt_reply {
    unsigned status;
    struct MHD_Response *resp; /* owned until queued */
};

typedef void (*rt_handler)(struct rt_request *req, struct rt_reply *out);

struct rt_route {
    const char *pattern; /* "/jobs/{id}/cancel": {name} matches one non-empty segment */
    unsigned methods;    /* SRV_* bits */
    enum rt_body_kind body;
    rt_handler handler;
    unsigned scope; /* required API-key scope bits; 0: no authentication */
};

/* Checks the request's credentials for scope. Returns 0 and fills
 * req->auth_* when allowed; otherwise fills out (401/403/503) and returns
 * non-zero. Called after routing, before the body is read. */
typedef int (*rt_authorize_fn)(struct rt_request *req, unsigned scope, struct rt_reply *out);

/* The team whose resources the caller may see: NULL for an admin key (every
 * team), else the key's team (borrowed from req). */
const char *rt_team(const struct rt_request *req);

/* Path parameter by name (borrowed for the request), or NULL. */
const char *rt_param(const struct rt_request *req, const char *name);
/* Query argument by name (borrowed for the request), or NULL. */
const char *rt_query(const struct rt_request *req, const char *name);
/* Request header (case-insensitive; borrowed), or NULL. */
const char *rt_header(const struct rt_request *req, const char *name);
/* The Idempotency-Key header (API.md, "Idempotency"): NULL with *ok = 1
 * when absent; a malformed one (not 1–255 printable ASCII) fills a 400
 * naming the header and sets *ok = 0. */
const char *rt_idempotency_key(int *ok, struct rt_request *req, struct rt_reply *out);
/* SHA-256 of "<method> <path>", a newline and the body's canonical JSON
 * (sorted keys, no spacing): the same request is the same hash, whatever
 * its spacing or key order. GW_ENOMEM when it cannot be built. */
int rt_request_hash(unsigned char out[32], const struct rt_request *req, const json_t *body);

/* Parses the body as one JSON object (strict: no duplicate keys, valid UTF-8,
 * nesting ≤ 32). On failure r holds a 400 problem and a negative code is
 * returned; on success *out is new (json_decref it). */
int rt_body_json(json_t **out, struct rt_request *req, struct rt_reply *r);

/*
 * Runs w, the request's write: through the group-commit writer when the
 * gateway has one, or at once on the request pool. fn then fills out from
 * w's outcome (w->rc, w->err) and frees ctx, which holds w. Through a busy
 * writer the reply is deferred: the connection is suspended (holding no
 * HTTP thread) until w's transaction is over, and fn runs later, on an HTTP
 * thread, so ctx must hold everything w borrows.
 */
void rt_write(struct rt_request *req, struct rt_reply *out, struct db_write *w, rt_resume_fn fn,
              void *ctx);

/* Replies. Each sets out->status and out->resp; failures fall back to 500. */
void rt_reply_json(struct rt_reply *out, unsigned status, json_t *body /* steals */);
void rt_reply_bytes(struct rt_reply *out, unsigned status, const char *content_type,
                    char *data /* steals malloc()ed */, size_t len);
void rt_reply_header(struct rt_reply *out, const char *name, const char *value);
/* A problem's "errors" lists at most RT_MAX_ERRORS entries. Past that it
 * holds the first RT_MAX_ERRORS - 1 and a last entry, field "(more)", saying
 * how many more were found (a body of many bad keys gets a short answer). */
enum { RT_MAX_ERRORS = 50 };
/* Applies that cap to errors (borrowed): total is how many problems were
 * found, at least json_array_size(errors). */
void rt_errors_cap(json_t *errors, size_t total);
/* RFC 9457 problem+json; errors (steals, may be NULL) is the "errors" array,
 * capped as above. */
void rt_reply_problem(struct rt_request *req, struct rt_reply *out, unsigned status,
                      const char *title, const char *detail, json_t *errors);
/* Maps a gateway error code to its HTTP problem, in one place. Internal
 * detail (err->msg) is logged with the request id, never sent. */
void rt_reply_error(struct rt_request *req, struct rt_reply *out, int code,
                    const struct gw_err *err);

#endif
