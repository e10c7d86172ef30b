/*
 * gw.h — small utilities shared by every module of ml-gateway.
 *
 * Error codes and the optional error-detail struct every fallible function
 * takes, a bounded growable byte buffer, checked integer parsing and a few
 * time helpers. Nothing here knows about HTTP, PostgreSQL or AWS.
 */
#ifndef MLGW_GW_H
#define MLGW_GW_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

/* Error detail, filled by the function that fails first. NULL-tolerant. */
struct gw_err {
    int code;
    char msg[256];
};

/* Returns code after recording a printf-style message in err (if non-NULL). */
int gw_err_set(struct gw_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *gw_code_name(int code);

/* A growable byte buffer with a hard maximum (after curl's dynbuf).
 * The content is always NUL-terminated so it can be used as a C string. */
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
/* Hands the buffer's memory to the caller (free() it); the buffer is left empty. */
char *gw_buf_steal(struct gw_buf *b);

/* snprintf for human-readable text where truncation is acceptable (messages,
 * log details): always NUL-terminates, never fails. Use snprintf with its
 * result checked where a cut-off value would be wrong (paths, URLs, keys). */
void gw_fmt(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses a whole decimal integer in [min, max]; GW_EINVAL otherwise. */
int gw_parse_ll(long long *out, const char *s, long long min, long long max);

/* Time helpers. */
int64_t gw_now_ms(void);       /* CLOCK_REALTIME in milliseconds */
int64_t gw_monotonic_ns(void); /* CLOCK_MONOTONIC in nanoseconds */
/* Formats a millisecond UNIX time as RFC 3339 UTC with milliseconds into out (>= 25 bytes). */
void gw_format_time_ms(char *out, size_t outlen, int64_t ms);

/* Writes n random bytes from OpenSSL's CSPRNG; GW_EIO on failure. */
int gw_random_bytes(unsigned char *out, size_t n);
/* Exponential backoff with full jitter: a uniform delay in
 * [0, min(cap_ms, base_ms * 2^(attempt-1))) milliseconds (attempt ≥ 1). */
long long gw_jitter_ms(long long base_ms, long long cap_ms, int attempt);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void gw_hex(char *out, const unsigned char *in, size_t n);

/* A UUIDv7 (RFC 9562): 48-bit UNIX milliseconds, then 74 random bits, so ids
 * sort by creation time. out gets the 36-character lower-case form. */
int gw_uuid7(char out[37]);
/* True when s is a canonical lower-case hyphenated UUID. */
int gw_uuid_valid(const char *s);

/* SHA-256 of data into out (32 bytes). */
void gw_sha256(unsigned char out[32], const void *data, size_t len);

/* base64url without padding (RFC 4648 §5) into out (>= 4*ceil(n/3)+1 bytes). */
void gw_base64url(char *out, const unsigned char *in, size_t n);
/* Decodes base64url without padding; returns the length or -1 when invalid
 * or longer than outlen. */
long gw_base64url_decode(unsigned char *out, size_t outlen, const char *in);

#define GW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Length of the well-formed UTF-8 sequence at p (1..4; left > 0 bytes
 * there); 0 when there is none (overlong forms, surrogates and code points
 * past U+10FFFF are not), with *bad (when not NULL) the length of the
 * maximal ill-formed subpart to replace with one U+FFFD (≥ 1). */
size_t gw_utf8_seq(const unsigned char *p, size_t left, size_t *bad);

#endif
