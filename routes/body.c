/*
 * body.c — strict JSON request bodies. jansson already refuses invalid UTF-8
 * and, with JSON_REJECT_DUPLICATES, duplicate object keys; this adds a
 * nesting limit checked before parsing (jansson's own limit is 2048 levels)
 * and turns every failure into a 400 problem naming line and column.
 */
#include <stdio.h>

#include "common/buf.h"
#include "common/err.h"
#include "routes/http.h"

#include "common/poison.h"

enum { SRV_JSON_MAX_DEPTH = 32 };

/* Nesting depth of a JSON text, ignoring brackets inside strings. */
static int json_depth(const char *s, size_t len)
{
    int depth = 0, max = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

int rt_body_json(json_t **out, struct rt_request *req, struct rt_reply *r)
{
    *out = NULL;
    if (req->body.len == 0) {
        rt_reply_problem(req, r, 400, "Bad Request", "a JSON body is required", NULL);
        return GW_EPARSE;
    }
    if (json_depth(req->body.data, req->body.len) > SRV_JSON_MAX_DEPTH) {
        char detail[96];
        gw_fmt(detail, sizeof(detail), "JSON nesting deeper than %d levels", SRV_JSON_MAX_DEPTH);
        rt_reply_problem(req, r, 400, "Bad Request", detail, NULL);
        return GW_EPARSE;
    }
    json_error_t jerr;
    json_t *v = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        char detail[256];
        gw_fmt(detail, sizeof(detail), "malformed JSON at line %d, column %d: %s", jerr.line,
               jerr.column, jerr.text);
        rt_reply_problem(req, r, 400, "Bad Request", detail, NULL);
        return GW_EPARSE;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        rt_reply_problem(req, r, 400, "Bad Request", "the body must be a JSON object", NULL);
        return GW_EPARSE;
    }
    *out = v;
    return GW_OK;
}
