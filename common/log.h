/*
 * log.h — JSON-lines logging to stderr (after Redis's serverLog).
 *
 * One line per event: time, level, message, the current request id when the
 * calling thread is serving a request, and optional structured fields. The
 * level is checked before anything is formatted. Callers must never pass
 * secrets; config values are redacted before they get here.
 *
 * Thread-safe: any thread may log at any time. The level is set once at start
 * (gw_log_set_level) before threads start; the request id is per thread.
 */
#ifndef MLGW_LOG_H
#define MLGW_LOG_H

#include <stdint.h>

enum gw_log_level {
    GW_LOG_LEVEL_DEBUG = 0,
    GW_LOG_LEVEL_INFO,
    GW_LOG_LEVEL_WARN,
    GW_LOG_LEVEL_ERROR
};

extern int gw_log_min_level;

void gw_log_set_level(int level);

/* The request id attached to every line logged by this thread (borrowed: the
 * caller keeps it alive until it sets NULL). */
void gw_log_set_request_id(const char *rid);

void gw_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line with extra fields: fields_json is the inside of a JSON object
 * ("\"k\":1,\"s\":\"v\""), already escaped, or NULL. */
void gw_log_fields(int level, const char *msg, const char *fields_json);

#define GW_LOG_AT(level, ...)                                                                      \
    do {                                                                                           \
        if ((level) >= gw_log_min_level)                                                           \
            gw_log_write((level), __VA_ARGS__);                                                    \
    } while (0)

#define GW_LOG_DEBUG(...) GW_LOG_AT(GW_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define GW_LOG_INFO(...)  GW_LOG_AT(GW_LOG_LEVEL_INFO, __VA_ARGS__)
#define GW_LOG_WARN(...)  GW_LOG_AT(GW_LOG_LEVEL_WARN, __VA_ARGS__)
#define GW_LOG_ERROR(...) GW_LOG_AT(GW_LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
