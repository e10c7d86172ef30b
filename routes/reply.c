/*
 * reply.c — builds responses: JSON bodies, raw bytes, and RFC 9457
 * problem+json for every error path. rt_reply_error() is the one place where
 * gateway error codes become HTTP statuses.
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "routes/http.h"

#include "common/poison.h"

static void reply_fallback(struct rt_reply *out)
{
    static const char body[] = "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\","
                               "\"status\":500}";
    if (out->resp != NULL)
        MHD_destroy_response(out->resp);
    out->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    out->resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
                                                MHD_RESPMEM_PERSISTENT);
    if (out->resp != NULL)
        MHD_add_response_header(out->resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/problem+json");
}

void rt_reply_bytes(struct rt_reply *out, unsigned status, const char *content_type, char *data,
                    size_t len)
{
    if (out->resp != NULL)
        MHD_destroy_response(out->resp);
    out->resp = NULL;
    if (data == NULL) {
        reply_fallback(out);
        return;
    }
    out->resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (out->resp == NULL) {
        free(data);
        reply_fallback(out);
        return;
    }
    out->status = status;
    if (content_type != NULL)
        MHD_add_response_header(out->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
}

static void reply_json_as(struct rt_reply *out, unsigned status, json_t *body, const char *ctype)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (s == NULL) {
        reply_fallback(out);
        return;
    }
    rt_reply_bytes(out, status, ctype, s, strlen(s));
}

void rt_reply_json(struct rt_reply *out, unsigned status, json_t *body)
{
    reply_json_as(out, status, body, "application/json; charset=utf-8");
}

void rt_reply_header(struct rt_reply *out, const char *name, const char *value)
{
    if (out->resp != NULL)
        MHD_add_response_header(out->resp, name, value);
}

static const char *problem_slug(unsigned status)
{
    switch (status) {
    case 400: return "bad-request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not-found";
    case 405: return "method-not-allowed";
    case 409: return "conflict";
    case 413: return "payload-too-large";
    case 415: return "unsupported-media-type";
    case 422: return "validation-error";
    case 429: return "too-many-requests";
    case 502: return "bad-gateway";
    case 503: return "service-unavailable";
    default: return status >= 500 ? "internal-error" : "client-error";
    }
}

void rt_errors_cap(json_t *errors, size_t total)
{
    size_t n = json_array_size(errors);
    if (total < n)
        total = n;
    if (total <= RT_MAX_ERRORS)
        return;
    while (json_array_size(errors) > RT_MAX_ERRORS - 1)
        json_array_remove(errors, json_array_size(errors) - 1);
    char msg[128];
    gw_fmt(msg, sizeof(msg), "%zu more problems were found and not listed (at most %d are)",
           total - (RT_MAX_ERRORS - 1), RT_MAX_ERRORS - 1);
    json_array_append_new(errors, json_pack("{s:s,s:s}", "field", "(more)", "message", msg));
}

void rt_reply_problem(struct rt_request *req, struct rt_reply *out, unsigned status,
                      const char *title, const char *detail, json_t *errors)
{
    if (json_is_array(errors))
        rt_errors_cap(errors, json_array_size(errors));
    char type[96];
    gw_fmt(type, sizeof(type), "urn:ml-gateway:problem:%s", problem_slug(status));
    json_t *p = json_object();
    if (p == NULL) {
        json_decref(errors);
        reply_fallback(out);
        return;
    }
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(title));
    json_object_set_new(p, "status", json_integer(status));
    if (detail != NULL)
        json_object_set_new(p, "detail", json_string(detail));
    if (req != NULL) {
        json_object_set_new(p, "instance", json_string(req->path));
        json_object_set_new(p, "request_id", json_string(req->request_id));
    }
    if (errors != NULL)
        json_object_set_new(p, "errors", errors);
    reply_json_as(out, status, p, "application/problem+json");
}

/* What a client is told for a code whose detail is not public. */
static const char *generic_detail(int code)
{
    switch (code) {
    case GW_EINVAL: return "the request is not valid";
    case GW_EPARSE: return "the request is malformed";
    case GW_ENOTFOUND: return "no such resource";
    case GW_ECONFLICT: return "the request conflicts with the resource's current state";
    case GW_ETOOBIG: return "the request is over a limit";
    default: return NULL;
    }
}

void rt_reply_error(struct rt_request *req, struct rt_reply *out, int code,
                    const struct gw_err *err)
{
    const char *msg = (err != NULL && err->msg[0] != '\0') ? err->msg : gw_code_name(code);
    /* Only text its writer marked public reaches the client: database and AWS
     * text (SQLSTATEs, constraint names, hosts) stays in the log. */
    const char *detail = (err != NULL && err->public && err->msg[0] != '\0') ? err->msg : NULL;
    if (detail == NULL && generic_detail(code) != NULL) {
        GW_LOG_INFO("%s: %s", gw_code_name(code), msg);
        detail = generic_detail(code);
    }
    switch (code) {
    case GW_EINVAL: rt_reply_problem(req, out, 422, "Unprocessable Content", detail, NULL); return;
    case GW_EPARSE: rt_reply_problem(req, out, 400, "Bad Request", detail, NULL); return;
    case GW_ENOTFOUND: rt_reply_problem(req, out, 404, "Not Found", detail, NULL); return;
    case GW_ECONFLICT: rt_reply_problem(req, out, 409, "Conflict", detail, NULL); return;
    case GW_ETOOBIG: rt_reply_problem(req, out, 413, "Content Too Large", detail, NULL); return;
    case GW_EUPSTREAM:
        /* An upstream service (AWS) refused the call; what it said stays in the log. */
        GW_LOG_WARN("upstream failure: %s", msg);
        rt_reply_problem(req, out, 502, "Bad Gateway",
                         "an upstream service failed the request; the log has details under "
                         "this request id",
                         NULL);
        return;
    case GW_EUNAVAIL:
        /* The cause (which host, which timeout) stays in the log, unless its
         * writer made it public (a dependency this gateway is not set up for). */
        GW_LOG_WARN("dependency unavailable: %s", msg);
        rt_reply_problem(req, out, 503, "Service Unavailable",
                         detail != NULL ? detail : "a dependency is unavailable; retry later",
                         NULL);
        rt_reply_header(out, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        return;
    default:
        GW_LOG_ERROR("internal error (%s): %s", gw_code_name(code), msg);
        rt_reply_problem(req, out, 500, "Internal Server Error",
                         "the request failed; the log has details under this request id", NULL);
        return;
    }
}
