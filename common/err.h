/*
 * err.h — the error rule of ml-gateway (CONTRIBUTING.md, "Errors").
 *
 * A function that can fail returns int: GW_OK (0) or one of the small
 * negative codes below, two or three expected ones per function, lower-level
 * codes propagated and never re-mapped. Detail goes into an optional
 * caller-supplied struct gw_err (NULL-tolerant). Its text is for the log
 * unless the function that wrote it marked it safe for a client with
 * gw_err_public(): database and AWS text never is. routes/reply.c is the one
 * place codes become HTTP statuses.
 *
 * Pure functions on caller-owned memory; safe from any thread.
 */
#ifndef MLGW_COMMON_ERR_H
#define MLGW_COMMON_ERR_H

#include <stddef.h>

/* Return codes: 0 is success, failures are small negative numbers. */
enum gw_code {
    GW_OK = 0,
    GW_ENOMEM = -1,    /* allocation failed */
    GW_EINVAL = -2,    /* input is well-formed but invalid */
    GW_ENOTFOUND = -3, /* no such resource */
    GW_ECONFLICT = -4, /* state conflict */
    GW_EUPSTREAM = -5, /* an upstream service (AWS, SMTP) failed */
    GW_EDB = -6,       /* the database failed a statement */
    GW_EUNAVAIL = -7,  /* a dependency is unavailable right now: retry later */
    GW_ETOOBIG = -8,   /* input over a configured limit */
    GW_EIO = -9,       /* local I/O failed */
    GW_EPARSE = -10,   /* input is malformed */
};

/* Error detail, filled by the function that fails first. */
struct gw_err {
    int code;
    int public;    /* 1: msg may be shown to a client; 0 (the default): log only */
    char msg[256]; /* for the log; never holds a secret */
};

/* Returns code after recording a printf-style message in err (if non-NULL).
 * The message is internal: logged, never sent to a client. */
int gw_err_set(struct gw_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, for a message written for the client (it names what in the
 * client's own input is wrong, and nothing of the gateway's internals). */
int gw_err_public(struct gw_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Static name of a code ("GW_EDB"); "GW_E?" for an unknown one. */
const char *gw_code_name(int code);

#define GW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
