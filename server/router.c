/*
 * router.c — matches a method and path against the route table. Patterns are
 * literal segments and {name} parameters; the first route whose pattern fits
 * the path wins, and when the path fits but the method does not, the caller
 * learns every method the path allows (for 405 and Allow). No allocation.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "server/http.h"

#include "common/poison.h"

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"GET", RT_GET},       {"HEAD", RT_HEAD},   {"POST", RT_POST},       {"PUT", RT_PUT},
    {"DELETE", RT_DELETE}, {"PATCH", RT_PATCH}, {"OPTIONS", RT_OPTIONS},
};

const char *srv_method_name(unsigned bit)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(methods); i++)
        if (methods[i].bit == bit)
            return methods[i].name;
    return "OTHER";
}

unsigned srv_method_bit(const char *method)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(methods); i++)
        if (strcmp(method, methods[i].name) == 0)
            return methods[i].bit;
    return 0;
}

void srv_methods_format(char *out, size_t outlen, unsigned bits)
{
    size_t off = 0;
    if (outlen == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < GW_ARRAY_LEN(methods); i++) {
        if (!(bits & methods[i].bit))
            continue;
        int n = snprintf(out + off, outlen - off, "%s%s", off ? ", " : "", methods[i].name);
        if (n < 0 || (size_t)n >= outlen - off)
            return;
        off += (size_t)n;
    }
}

/* Compares path against pattern; fills params on success. */
static int match_one(struct srv_match *m, const char *pattern, const char *path)
{
    const char *p = pattern, *s = path;
    m->nparams = 0;
    while (*p != '\0' && *s != '\0') {
        if (*p != '/' || *s != '/')
            return 0;
        p++;
        s++;
        size_t plen = strcspn(p, "/");
        size_t slen = strcspn(s, "/");
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0 || slen > RT_PARAM_MAX || m->nparams >= RT_MAX_PARAMS)
                return 0;
            m->params[m->nparams].name = NULL;
            memcpy(m->params[m->nparams].value, s, slen);
            m->params[m->nparams].value[slen] = '\0';
            m->nparams++;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return 0;
        }
        p += plen;
        s += slen;
    }
    return *p == '\0' && *s == '\0';
}

enum srv_match_result srv_route_match(struct srv_match *out, const struct rt_route *routes,
                                      size_t nroutes, unsigned method, const char *path)
{
    memset(out, 0, sizeof(*out));
    struct srv_match m;
    int path_found = 0;
    for (size_t i = 0; i < nroutes; i++) {
        if (!match_one(&m, routes[i].pattern, path))
            continue;
        unsigned allowed = routes[i].methods;
        if (allowed & RT_GET)
            allowed |= RT_HEAD; /* HEAD is GET without the body */
        if (!path_found)
            out->path_route = &routes[i];
        path_found = 1;
        out->allowed |= allowed;
        if (!(allowed & method))
            continue;
        unsigned keep = out->allowed;
        const struct rt_route *first = out->path_route;
        *out = m;
        out->allowed = keep;
        out->path_route = first;
        out->route = &routes[i];
        /* Names come from the pattern, in order. */
        const char *p = routes[i].pattern;
        int k = 0;
        while ((p = strchr(p, '{')) != NULL && k < out->nparams) {
            out->params[k++].name = p + 1;
            p++;
        }
        return SRV_MATCH_OK;
    }
    return path_found ? SRV_MATCH_NO_METHOD : SRV_MATCH_NO_ROUTE;
}
