/*
 * buf.h — a growable byte buffer with a hard maximum (after curl's dynbuf),
 * and gw_fmt for text where truncation is acceptable.
 *
 * A gw_buf is owned by whoever declared it (gw_buf_init/gw_buf_dispose) and
 * used by one thread at a time.
 */
#ifndef MLGW_COMMON_BUF_H
#define MLGW_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common/err.h"

/* The content is always NUL-terminated so it can be used as a C string. */
struct gw_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void gw_buf_init(struct gw_buf *b, size_t max);
void gw_buf_dispose(struct gw_buf *b);
void gw_buf_reset(struct gw_buf *b);
/* GW_ETOOBIG when the result would exceed max, GW_ENOMEM on allocation failure. */
int gw_buf_add(struct gw_buf *b, const void *data, size_t len);
int gw_buf_adds(struct gw_buf *b, const char *s);
int gw_buf_printf(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as the inside of a JSON string (no quotes added). */
int gw_buf_add_json_escaped(struct gw_buf *b, const char *s);
/* Hands the buffer's memory to the caller (new: free() it); the buffer is left empty. */
char *gw_buf_steal(struct gw_buf *b);

/* snprintf for human-readable text where truncation is acceptable (messages,
 * log details): always NUL-terminates, never fails. Use snprintf with its
 * result checked where a cut-off value would be wrong (paths, URLs, keys). */
void gw_fmt(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with a va_list. */
void gw_vfmt(char *out, size_t outlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
