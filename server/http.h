/*
 * http.h — the libmicrohttpd daemon and the router: parsing, limits, routing,
 * request ids, access logs, CORS and metrics around the handlers of routes/.
 *
 * srv_http_start/stop and quiesce are called from the main thread; the
 * daemon runs handlers on its own worker threads.
 */
#ifndef MLGW_SRV_HTTP_H
#define MLGW_SRV_HTTP_H

#include <stdint.h>

#include "common/config.h"
#include "common/err.h"
#include "routes/http.h"

/* Routing, exposed for tests. */
enum srv_match_result { SRV_MATCH_OK, SRV_MATCH_NO_METHOD, SRV_MATCH_NO_ROUTE };
struct srv_match {
    const struct rt_route *route;
    unsigned allowed;                  /* methods the path accepts, on SRV_MATCH_NO_METHOD */
    const struct rt_route *path_route; /* first route whose pattern fits the path */
    int nparams;
    struct {
        const char *name;
        char value[RT_PARAM_MAX + 1];
    } params[RT_MAX_PARAMS];
};
enum srv_match_result srv_route_match(struct srv_match *out, const struct rt_route *routes,
                                      size_t nroutes, unsigned method, const char *path);
unsigned srv_method_bit(const char *method);
/* Static name of a single method bit; "OTHER" for 0 or several. */
const char *srv_method_name(unsigned bit);
/* "GET, HEAD, POST" for the bits (into out). */
void srv_methods_format(char *out, size_t outlen, unsigned bits);

/* The daemon. */
struct srv_http;
struct srv_http_opts {
    const struct sockaddr *addr;
    unsigned addrlen;
    unsigned threads;
    unsigned connection_limit;
    unsigned connection_timeout_s;
    unsigned per_address_limit;  /* connections from one client address */
    unsigned request_deadline_s; /* to receive a whole request; 0: none */
    size_t max_body_bytes;
    const struct rt_route *routes;
    size_t nroutes;
    struct jobs_app *app;
    rt_authorize_fn authorize;    /* NULL: routes with a scope are refused (500) */
    const struct gw_config *cors; /* origins for CORS; NULL: no CORS headers */
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
