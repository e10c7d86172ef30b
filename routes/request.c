/*
 * request.c — what a handler reads from its request: path parameters (filled
 * by the router), query arguments and headers (looked up in libmicrohttpd's
 * connection). Everything returned is borrowed for the request's life.
 */
#include <string.h>

#include "db/api_keys.h"
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
