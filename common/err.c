/*
 * err.c — error detail and code names (err.h).
 */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/buf.h"

#include "common/poison.h"

/* The format attribute lets clang's -Wformat-nonliteral see that fmt is checked at the callers. */
static void err_vset(struct gw_err *err, int code, int public, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void err_vset(struct gw_err *err, int code, int public, const char *fmt, va_list ap)
{
    gw_vfmt(err->msg, sizeof(err->msg), fmt, ap);
    err->code = code;
    err->public = public;
}

int gw_err_set(struct gw_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err_vset(err, code, 0, fmt, ap);
        va_end(ap);
    }
    return code;
}

int gw_err_public(struct gw_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err_vset(err, code, 1, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *gw_code_name(int code)
{
    switch (code) {
    case GW_OK: return "ok";
    case GW_ENOMEM: return "out of memory";
    case GW_EINVAL: return "invalid";
    case GW_ENOTFOUND: return "not found";
    case GW_ECONFLICT: return "conflict";
    case GW_EUPSTREAM: return "upstream error";
    case GW_EDB: return "database error";
    case GW_EUNAVAIL: return "unavailable";
    case GW_ETOOBIG: return "too big";
    case GW_EIO: return "I/O error";
    case GW_EPARSE: return "malformed";
    default: return "unknown error";
    }
}
