/*
 * params.c — path and query parameters shared by the endpoint files (see
 * params.h). Problems are collected into a caller's errors array so that a
 * 400 lists every bad parameter, not just the first.
 */
#include "routes/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"
#include "common/parse.h"
#include "db/jobcache.h"

#include "common/poison.h"

enum { CURSOR_RAW_MAX = 1024 };

const char *rt_job_id_param(struct rt_request *req, struct rt_reply *out)
{
    const char *id = rt_param(req, "id");
    if (id == NULL || !gw_uuid_valid(id)) {
        rt_reply_problem(req, out, 404, "Not Found", "no such job", NULL);
        return NULL;
    }
    return id;
}

void rt_param_error(json_t *errors, const char *field, const char *message)
{
    json_array_append_new(errors, json_pack("{s:s,s:s}", "field", field, "message", message));
}

struct unknown_params {
    json_t *errors;
    const char *const *known;
};

static enum MHD_Result note_unknown(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    (void)value;
    const struct unknown_params *u = cls;
    for (size_t i = 0; u->known[i] != NULL; i++)
        if (strcmp(key, u->known[i]) == 0)
            return MHD_YES;
    rt_param_error(u->errors, key, "is not a known query parameter");
    return MHD_YES;
}

void rt_params_unknown(json_t *errors, struct rt_request *req, const char *const *known)
{
    struct unknown_params u = {errors, known};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, note_unknown, &u);
}

void rt_param_limit(int *out, struct rt_request *req, json_t *errors)
{
    *out = RT_LIMIT_DEFAULT;
    const char *v = rt_query(req, "limit");
    long long limit = RT_LIMIT_DEFAULT;
    if (v != NULL && gw_parse_ll(&limit, v, 1, RT_LIMIT_MAX) != GW_OK) {
        char msg[64];
        gw_fmt(msg, sizeof(msg), "must be an integer between 1 and %d", RT_LIMIT_MAX);
        rt_param_error(errors, "limit", msg);
        return;
    }
    *out = (int)limit;
}

int rt_cursor_encode(char *out, size_t outlen, const char *tag, const char *payload)
{
    char raw[CURSOR_RAW_MAX];
    int n = snprintf(raw, sizeof(raw), "%s%s", tag, payload);
    if (n < 0 || (size_t)n >= sizeof(raw) || outlen < 4 * (((size_t)n + 2) / 3) + 1) {
        if (outlen > 0)
            out[0] = '\0';
        return -1;
    }
    gw_base64url(out, (const unsigned char *)raw, (size_t)n);
    return 0;
}

long rt_cursor_decode(char *out, size_t outlen, const char *tag, const char *cursor)
{
    unsigned char raw[CURSOR_RAW_MAX];
    long n = gw_base64url_decode(raw, sizeof(raw), cursor);
    size_t t = strlen(tag);
    if (n < (long)t || memcmp(raw, tag, t) != 0)
        return -1;
    size_t len = (size_t)n - t;
    if (len >= outlen || memchr(raw + t, '\0', len) != NULL)
        return -1;
    memcpy(out, raw + t, len);
    out[len] = '\0';
    return (long)len;
}

int rt_etag_matches(const char *if_none_match, const char *etag)
{
    if (if_none_match == NULL)
        return 0;
    size_t elen = strlen(etag);
    const char *p = if_none_match;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return 0;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        const char *end;
        if (*p == '"') { /* a quoted tag: up to its closing quote */
            end = strchr(p + 1, '"');
            end = end != NULL ? end + 1 : p + strlen(p);
        } else {
            end = p + strcspn(p, ", \t");
        }
        if ((size_t)(end - p) == elen && memcmp(p, etag, elen) == 0)
            return 1;
        p = end;
    }
}

void rt_reply_document(struct rt_request *req, struct rt_reply *out, char *json, size_t len,
                       const char *etag)
{
    char own[DB_JOBCACHE_ETAG_LEN + 1];
    if (etag == NULL) {
        db_jobcache_etag(own, json, len);
        etag = own;
    }
    if (rt_etag_matches(rt_header(req, "If-None-Match"), etag)) {
        /* 304: the validator and nothing else (RFC 9110 15.4.5). */
        free(json);
        rt_reply_bytes(out, 304, NULL, strdup(""), 0);
    } else {
        rt_reply_bytes(out, 200, "application/json; charset=utf-8", json, len);
    }
    rt_reply_header(out, MHD_HTTP_HEADER_ETAG, etag);
    /* Pollers revalidate every time: a cached copy is never used unchecked. */
    rt_reply_header(out, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
}
