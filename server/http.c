/*
 * http.c — the libmicrohttpd daemon and the request lifecycle.
 *
 * For each request: assign a request id, route it, check method, body size
 * (before reading the body) and content type, collect the body into a bounded
 * buffer, call the handler, add the common headers, log one access line and
 * count it in the metrics. Every error path answers problem+json. The daemon
 * uses an internal thread pool over epoll; shutdown quiesces the listener
 * first so in-flight requests can finish.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/parse.h"
#include "common/time.h"
#include "common/worker.h"
#include "server/http.h"

#include "common/poison.h"

/* One open connection, for the request deadline: a client has
 * request_deadline_s from the connection (or the previous answer) to send a
 * whole request; while a handler runs, no deadline applies. */
struct conn_track {
    struct conn_track *prev, *next;
    MHD_socket fd;
    int64_t deadline_ns; /* 0: a handler is running */
    int cut;             /* already shut down */
};

struct srv_http {
    struct MHD_Daemon *d;
    struct srv_http_opts opts;
    atomic_long inflight;
    unsigned port;
    int quiesced;
    pthread_mutex_t conns_mu;
    struct conn_track conns; /* list head */
    struct gw_worker *sweeper;
    atomic_int starting; /* libmicrohttpd's start-up complaints are ours to word */
};

static const char unmatched_route[] = "unmatched";

enum { SRV_DRAIN_MAX = 8 * 1024 * 1024 };

/* ≤ 128 chars of [A-Za-z0-9._-], as API.md says. */
static int request_id_sane(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= RT_REQUEST_ID_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

static void assign_request_id(struct rt_request *req)
{
    const char *given = rt_header(req, "X-Request-Id");
    if (given != NULL && request_id_sane(given)) {
        memcpy(req->request_id, given, strlen(given) + 1);
        return;
    }
    unsigned char rnd[16];
    if (gw_random_bytes(rnd, sizeof(rnd)) != GW_OK) {
        /* Not a security token: fall back to time so logs still correlate. */
        int64_t t = gw_monotonic_ns();
        memcpy(rnd, &t, sizeof(t));
        memcpy(rnd + 8, &req, sizeof(void *) < 8 ? sizeof(void *) : 8);
    }
    gw_hex(req->request_id, rnd, sizeof(rnd));
}

/* application/json, with optional parameters, any case. */
static int is_media_type(const char *ctype, const char *want)
{
    if (ctype == NULL)
        return 0;
    while (*ctype == ' ')
        ctype++;
    size_t n = strlen(want);
    if (strncasecmp(ctype, want, n) != 0)
        return 0;
    char next = ctype[n];
    return next == '\0' || next == ';' || next == ' ';
}

static int body_present(const struct rt_request *req)
{
    const char *cl = rt_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = rt_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return (cl != NULL && strcmp(cl, "0") != 0) || te != NULL;
}

/*
 * An error decided from the headers is answered after the body when the body
 * is small enough to read and throw away: closing a socket with unread data
 * makes the kernel send RST, and the client may then never see the answer.
 * Clients that asked "Expect: 100-continue" have sent nothing yet, and bodies
 * over SRV_DRAIN_MAX are not worth reading: those get the answer at once.
 */
static int may_drain(const struct rt_request *req)
{
    const char *expect = rt_header(req, MHD_HTTP_HEADER_EXPECT);
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0)
        return 0;
    const char *cl = rt_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long n;
    if (cl == NULL)
        return 1; /* chunked: drained up to SRV_DRAIN_MAX, then answered */
    return gw_parse_ll(&n, cl, 0, SRV_DRAIN_MAX) == GW_OK;
}

static void log_access(const struct rt_request *req, double seconds)
{
    if (gw_log_min_level > GW_LOG_LEVEL_INFO)
        return;
    struct gw_buf f;
    gw_buf_init(&f, 2048);
    gw_buf_adds(&f, "\"method\":\"");
    gw_buf_add_json_escaped(&f, req->method);
    gw_buf_adds(&f, "\",\"route\":\"");
    gw_buf_add_json_escaped(&f, req->route_label);
    gw_buf_adds(&f, "\",\"path\":\"");
    gw_buf_add_json_escaped(&f, req->path);
    gw_buf_printf(&f, "\",\"status\":%u,\"duration_ms\":%.3f", req->status, seconds * 1000.0);
    gw_log_fields(GW_LOG_LEVEL_INFO, "request", f.data);
    gw_buf_dispose(&f);
}

/* Access-Control-* for an allowed Origin; preflights also get the methods,
 * headers and max age. Nothing for other origins: the browser then refuses. */
static void add_cors(const struct srv_http *h, const struct rt_request *req, struct rt_reply *r)
{
    const char *origin = rt_header(req, "Origin");
    if (h->opts.cors == NULL || origin == NULL || !gw_config_origin_allowed(h->opts.cors, origin))
        return;
    MHD_add_response_header(r->resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(r->resp, "Vary", "Origin");
    MHD_add_response_header(r->resp, "Access-Control-Expose-Headers",
                            "Location, X-Request-Id, Idempotent-Replayed, Retry-After");
    if (req->method_bit == RT_OPTIONS && rt_header(req, "Access-Control-Request-Method") != NULL) {
        const char *allow = MHD_get_response_header(r->resp, MHD_HTTP_HEADER_ALLOW);
        MHD_add_response_header(r->resp, "Access-Control-Allow-Methods", allow ? allow : "GET");
        MHD_add_response_header(r->resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Idempotency-Key, X-Request-Id");
        MHD_add_response_header(r->resp, "Access-Control-Max-Age", "600");
    }
}

/* Adds the common headers, counts and logs the request, and queues the reply. */
static enum MHD_Result finish(struct srv_http *h, struct rt_request *req, struct rt_reply *r)
{
    if (r->resp == NULL)
        rt_reply_problem(req, r, 500, "Internal Server Error", "no response", NULL);
    MHD_add_response_header(r->resp, "X-Request-Id", req->request_id);
    add_cors(h, req, r);
    MHD_add_response_header(r->resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    req->status = r->status;
    req->responded = 1;
    double secs = (double)(gw_monotonic_ns() - req->start_ns) / 1e9;
    /* Labels are static strings: unknown methods fold into "OTHER". */
    gw_metrics_observe(req->route_label, srv_method_name(req->method_bit), r->status, secs);
    log_access(req, secs);
    enum MHD_Result ret = MHD_queue_response(req->conn, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ret;
}

/* The checks that need only the headers. Returns 1 when r holds an error reply. */
static int precheck(struct srv_http *h, struct rt_request *req, struct rt_reply *r)
{
    struct srv_match m;
    enum srv_match_result mr =
        srv_route_match(&m, h->opts.routes, h->opts.nroutes, req->method_bit, req->path);
    if (m.path_route != NULL)
        req->route_label = m.path_route->pattern;
    if (mr == SRV_MATCH_NO_ROUTE) {
        rt_reply_problem(req, r, 404, "Not Found", "no such resource", NULL);
        return 1;
    }
    if (mr == SRV_MATCH_NO_METHOD) {
        char allow[96];
        srv_methods_format(allow, sizeof(allow), m.allowed | RT_OPTIONS);
        if (req->method_bit == RT_OPTIONS) {
            rt_reply_bytes(r, 204, NULL, calloc(1, 1), 0);
        } else {
            char detail[160];
            gw_fmt(detail, sizeof(detail), "%s is not allowed here; allowed: %s",
                   req->method_bit ? req->method : "this method", allow);
            rt_reply_problem(req, r, 405, "Method Not Allowed", detail, NULL);
        }
        rt_reply_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        return 1;
    }
    req->route = m.route;
    req->nparams = m.nparams;
    for (int i = 0; i < m.nparams; i++) {
        req->params[i].name = m.params[i].name;
        memcpy(req->params[i].value, m.params[i].value, sizeof(req->params[i].value));
    }

    if (m.route->scope != 0) {
        if (h->opts.authorize == NULL) {
            rt_reply_problem(req, r, 500, "Internal Server Error", "no authorizer", NULL);
            return 1;
        }
        if (h->opts.authorize(req, m.route->scope, r) != 0)
            return 1;
    }

    const char *cl = rt_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        long long n;
        if (gw_parse_ll(&n, cl, 0, (long long)1 << 62) != GW_OK) {
            rt_reply_problem(req, r, 400, "Bad Request", "invalid Content-Length", NULL);
            return 1;
        }
        if ((unsigned long long)n > h->opts.max_body_bytes) {
            char detail[128];
            gw_fmt(detail, sizeof(detail), "request body is larger than %zu bytes",
                   h->opts.max_body_bytes);
            rt_reply_problem(req, r, 413, "Content Too Large", detail, NULL);
            return 1;
        }
    }
    if (body_present(req)) {
        const char *ct = rt_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
        int ok = 1;
        if (m.route->body == RT_BODY_JSON)
            ok = is_media_type(ct, "application/json");
        else if (m.route->body == RT_BODY_TEXT)
            ok = is_media_type(ct, "text/plain") || is_media_type(ct, "application/json");
        if (!ok) {
            rt_reply_problem(req, r, 415, "Unsupported Media Type",
                             m.route->body == RT_BODY_JSON
                                 ? "the body must be application/json"
                                 : "the body must be text/plain or application/json",
                             NULL);
            return 1;
        }
    }
    return 0;
}

/* ---- the request deadline ------------------------------------------------ */

static int64_t deadline_from_now(const struct srv_http *h)
{
    return h->opts.request_deadline_s == 0
               ? INT64_MAX
               : gw_monotonic_ns() + (int64_t)h->opts.request_deadline_s * 1000000000LL;
}

static struct conn_track *track_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

static void track_set(struct srv_http *h, struct MHD_Connection *conn, int64_t deadline_ns)
{
    struct conn_track *t = track_of(conn);
    if (t == NULL)
        return;
    pthread_mutex_lock(&h->conns_mu);
    t->deadline_ns = deadline_ns;
    pthread_mutex_unlock(&h->conns_mu);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct srv_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_track *t = calloc(1, sizeof(*t));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (t == NULL || ci == NULL) {
            free(t); /* untracked: only the idle timeout applies to it */
            return;
        }
        t->fd = ci->connect_fd;
        t->deadline_ns = deadline_from_now(h);
        pthread_mutex_lock(&h->conns_mu);
        t->next = h->conns.next;
        t->prev = &h->conns;
        h->conns.next->prev = t;
        h->conns.next = t;
        pthread_mutex_unlock(&h->conns_mu);
        *socket_context = t;
    } else if (*socket_context != NULL) {
        struct conn_track *t = *socket_context;
        pthread_mutex_lock(&h->conns_mu);
        t->prev->next = t->next;
        t->next->prev = t->prev;
        pthread_mutex_unlock(&h->conns_mu);
        free(t);
        *socket_context = NULL;
    }
}

/* Shuts down the connections past their deadline: the daemon then sees the
 * socket end and closes it. A slow client (one header line every few
 * seconds) cannot hold a connection past the deadline. */
static int sweep(void *arg)
{
    struct srv_http *h = arg;
    int64_t now = gw_monotonic_ns();
    int cut = 0;
    pthread_mutex_lock(&h->conns_mu);
    for (struct conn_track *t = h->conns.next; t != &h->conns; t = t->next) {
        if (t->deadline_ns != 0 && t->deadline_ns < now && !t->cut) {
            (void)shutdown(t->fd, SHUT_RDWR);
            t->cut = 1;
            cut++;
        }
    }
    pthread_mutex_unlock(&h->conns_mu);
    if (cut > 0)
        gw_metrics_add("mlgw_http_deadline_closed_total", "", cut);
    return 0;
}

/* The peer's IP address (no port), for per-address limits and the log. */
static void client_address(struct rt_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    req->client_addr[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    const void *raw = NULL;
    if (sa->sa_family == AF_INET)
        raw = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        raw = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (raw == NULL ||
        inet_ntop(sa->sa_family, raw, req->client_addr, sizeof(req->client_addr)) == NULL)
        req->client_addr[0] = '\0';
}

/* The first call for a request: headers are in. Makes the request, routes
 * it and checks what can be checked before the body; an error is answered
 * at once or, when the body can be drained, kept for after it. */
static enum MHD_Result on_headers(struct srv_http *h, struct MHD_Connection *conn, const char *url,
                                  const char *method, void **con_cls)
{
    struct rt_reply r = {0, NULL};
    enum MHD_Result ret = MHD_YES;
    struct rt_request *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return MHD_NO;
    *con_cls = req;
    atomic_fetch_add(&h->inflight, 1);
    req->conn = conn;
    req->app = h->opts.app;
    req->method = method;
    req->path = url;
    req->method_bit = srv_method_bit(method);
    req->start_ns = gw_monotonic_ns();
    req->route_label = unmatched_route;
    gw_buf_init(&req->body, h->opts.max_body_bytes);
    assign_request_id(req);
    client_address(req);
    gw_log_set_request_id(req->request_id);
    if (precheck(h, req, &r)) {
        if (!body_present(req) || may_drain(req)) {
            /* Answer after the body: the connection stays usable. */
            req->early = r.resp;
            req->early_status = r.status;
        } else {
            ret = finish(h, req, &r); /* answer now; the body is never read */
        }
    }
    gw_log_set_request_id(NULL);
    return ret;
}

/* A piece of the body: collected up to the limit, or drained after an early
 * answer (up to SRV_DRAIN_MAX, then that answer goes out at once). */
static enum MHD_Result on_body(struct srv_http *h, struct rt_request *req, const char *data,
                               size_t n)
{
    struct rt_reply r = {0, NULL};
    if (req->responded)
        return MHD_YES; /* already answered: nothing to do with the rest */
    if (req->early != NULL) {
        req->drained += n;
        if (req->drained <= SRV_DRAIN_MAX)
            return MHD_YES;
        r.resp = req->early;
        r.status = req->early_status;
        req->early = NULL;
        return finish(h, req, &r);
    }
    int rc = gw_buf_add(&req->body, data, n);
    if (rc == GW_ETOOBIG) {
        /* A chunked body without Content-Length grew past the limit:
         * drain the rest (within bounds) and answer 413 after it. */
        rt_reply_problem(req, &r, 413, "Content Too Large", "request body is over the limit", NULL);
        req->early = r.resp;
        req->early_status = r.status;
        req->drained = req->body.len + n;
        gw_buf_dispose(&req->body);
        return MHD_YES;
    }
    return rc == GW_OK ? MHD_YES : MHD_NO;
}

/* The body is complete: the early answer, or the handler's. */
static enum MHD_Result on_complete_body(struct srv_http *h, struct rt_request *req)
{
    struct rt_reply r = {0, NULL};
    if (req->responded)
        return MHD_YES;
    if (req->resume != NULL) { /* resumed: the deferred reply is ready */
        rt_resume_fn fn = req->resume;
        req->resume = NULL;
        fn(req, &r, req->resume_ctx);
        return finish(h, req, &r);
    }
    track_set(h, req->conn, 0); /* the request is in: the handler has no deadline */
    if (req->early != NULL) {
        r.resp = req->early;
        r.status = req->early_status;
        req->early = NULL;
    } else if (req->route->handler == NULL) {
        rt_reply_problem(req, &r, 501, "Not Implemented", NULL, NULL);
    } else {
        req->route->handler(req, &r);
        if (req->resume != NULL && r.resp == NULL)
            return MHD_YES; /* deferred (rt_write): answered once resumed */
    }
    return finish(h, req, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct srv_http *h = cls;
    struct rt_request *req = *con_cls;
    if (req == NULL)
        return on_headers(h, conn, url, method, con_cls);
    enum MHD_Result ret;
    gw_log_set_request_id(req->request_id);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        ret = on_body(h, req, upload_data, n);
    } else {
        ret = on_complete_body(h, req);
    }
    gw_log_set_request_id(NULL);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct srv_http *h = cls;
    struct rt_request *req = *con_cls;
    if (req == NULL)
        return;
    track_set(h, conn, deadline_from_now(h)); /* the next request's clock starts */
    if (req->resume != NULL) {
        /* Closed before its deferred reply went out (the daemon stopping):
         * the writers are stopped by then, so the work is over; its reply is
         * built only to free what the handler kept for it. */
        struct rt_reply r = {0, NULL};
        req->resume(req, &r, req->resume_ctx);
        req->resume = NULL;
        if (r.resp != NULL)
            MHD_destroy_response(r.resp);
    }
    gw_buf_dispose(&req->body);
    if (req->early != NULL)
        MHD_destroy_response(req->early);
    free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&h->inflight, 1);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    const struct srv_http *h = cls;
    char msg[512];
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    if (n < 0)
        return;
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    /* While starting, libmicrohttpd names "port 0" (the address is given as a
     * sockaddr): srv_http_start says what failed, on which port, instead. */
    if (h != NULL && atomic_load(&((struct srv_http *)(uintptr_t)h)->starting))
        GW_LOG_DEBUG("libmicrohttpd: %s", msg);
    else
        GW_LOG_WARN("libmicrohttpd: %s", msg);
}

static unsigned addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return 0;
}

/* Why addr cannot be listened on: bind it once to learn errno's answer. */
static const char *bind_problem(const struct sockaddr *addr, unsigned addrlen)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return strerror(errno);
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const char *why = "the address cannot be served (libmicrohttpd refused it)";
    if (bind(fd, addr, addrlen) != 0)
        why = strerror(errno);
    close(fd);
    return why;
}

int srv_http_start(struct srv_http **out, const struct srv_http_opts *opts, struct gw_err *err)
{
    *out = NULL;
    struct srv_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    h->opts = *opts;
    atomic_init(&h->inflight, 0);
    pthread_mutex_init(&h->conns_mu, NULL);
    h->conns.next = h->conns.prev = &h->conns;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (opts->addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    atomic_init(&h->starting, 1);
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, &on_request, h, MHD_OPTION_EXTERNAL_LOGGER, &mhd_logger, h,
        MHD_OPTION_SOCK_ADDR, opts->addr, MHD_OPTION_THREAD_POOL_SIZE, opts->threads,
        MHD_OPTION_CONNECTION_LIMIT, opts->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
        opts->connection_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, &on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, &on_connection, h, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        opts->per_address_limit > 0 ? opts->per_address_limit : 0u, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        1024, MHD_OPTION_END);
    atomic_store(&h->starting, 0);
    if (h->d == NULL) {
        int rc = gw_err_set(err, GW_EIO, "cannot listen on port %u: %s", addr_port(opts->addr),
                            bind_problem(opts->addr, opts->addrlen));
        pthread_mutex_destroy(&h->conns_mu);
        free(h);
        return rc;
    }
    if (opts->request_deadline_s > 0 &&
        gw_worker_start(&h->sweeper, "http-deadline", 500, sweep, h) != GW_OK) {
        MHD_stop_daemon(h->d);
        pthread_mutex_destroy(&h->conns_mu);
        free(h);
        return gw_err_set(err, GW_ENOMEM, "cannot start the request-deadline sweeper");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *out = h;
    return GW_OK;
}

unsigned srv_http_port(const struct srv_http *h)
{
    return h->port;
}

void srv_http_quiesce(struct srv_http *h)
{
    if (h == NULL || h->quiesced)
        return;
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    h->quiesced = 1;
}

long srv_http_inflight(const struct srv_http *h)
{
    return atomic_load(&((struct srv_http *)(uintptr_t)h)->inflight);
}

void srv_http_stop(struct srv_http *h)
{
    if (h == NULL)
        return;
    gw_worker_stop(h->sweeper);
    MHD_stop_daemon(h->d); /* closes every connection, untracking each */
    pthread_mutex_destroy(&h->conns_mu);
    free(h);
}
