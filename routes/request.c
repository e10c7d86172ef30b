/*
 * request.c — what a handler reads from its request: path parameters (filled
 * by the router), query arguments and headers (looked up in libmicrohttpd's
 * connection). Everything returned is borrowed for the request's life.
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "db/api_keys.h"
#include "db/writer.h"
#include "jobs/app.h"
#include "routes/http.h"

#include "common/poison.h"

const char *rt_param(const struct rt_request *req, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < req->nparams; i++) {
        const char *n = req->params[i].name; /* points into the pattern: "id}/..." */
        if (n != NULL && strncmp(n, name, len) == 0 && n[len] == '}')
            return req->params[i].value;
    }
    return NULL;
}

const char *rt_query(const struct rt_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *rt_header(const struct rt_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *rt_team(const struct rt_request *req)
{
    return (req->auth_scopes & DB_SCOPE_ADMIN) ? NULL : req->auth_team;
}

enum { IDEMPOTENCY_KEY_MAX = 255 };

const char *rt_idempotency_key(int *ok, struct rt_request *req, struct rt_reply *out)
{
    const char *k = rt_header(req, "Idempotency-Key");
    size_t n = k != NULL ? strlen(k) : 0;
    *ok = k == NULL || (n >= 1 && n <= IDEMPOTENCY_KEY_MAX);
    for (size_t i = 0; *ok && k != NULL && i < n; i++)
        *ok = k[i] >= 0x20 && k[i] <= 0x7e;
    if (!*ok)
        rt_reply_problem(req, out, 400, "Bad Request",
                         "Idempotency-Key must be 1 to 255 printable ASCII characters",
                         json_pack("[{s:s,s:s}]", "field", "Idempotency-Key", "message",
                                   "must be 1 to 255 printable ASCII characters"));
    return k;
}

int rt_request_hash(unsigned char out[32], const struct rt_request *req, const json_t *body)
{
    char *canonical = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    if (canonical == NULL)
        return GW_ENOMEM;
    struct gw_buf h;
    gw_buf_init(&h, strlen(canonical) + strlen(req->method) + strlen(req->path) + 64);
    int rc = gw_buf_printf(&h, "%s %s\n%s", req->method, req->path, canonical);
    if (rc == GW_OK)
        gw_sha256(out, h.data, h.len);
    gw_buf_dispose(&h);
    free(canonical);
    return rc;
}

/* The writer has answered w: its request's deferred reply can be built. */
static void write_done(struct db_write *w)
{
    struct rt_request *req = w->done_arg;
    MHD_resume_connection(req->conn); /* req is the daemon's again after this */
}

void rt_write(struct rt_request *req, struct rt_reply *out, struct db_write *w, rt_resume_fn fn,
              void *ctx)
{
    struct db_writer *writer = req->app->writer;
    if (writer == NULL || db_writer_run_if_idle(writer, w)) {
        if (writer == NULL)
            (void)db_write_now(req->app->request_pool, w);
        fn(req, out, ctx);
        return;
    }
    /* Suspended before the hand-over: the writer may resume it at once. */
    req->resume = fn;
    req->resume_ctx = ctx;
    MHD_suspend_connection(req->conn);
    w->done = write_done;
    w->done_arg = req;
    db_writer_submit(writer, w);
}
