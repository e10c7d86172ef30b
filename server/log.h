/*
 * log.h — JSON-lines logging to stderr (after Redis's serverLog).
 *
 * One line per event: time, level, message, the current request id when the
 * calling thread is serving a request, and optional structured fields. The
 * level is checked before anything is formatted. Callers must never pass
 * secrets; config values are redacted before they get here.
 */
#ifndef MLGW_LOG_H
#define MLGW_LOG_H

#include <stdint.h>

enum srv_log_level { SRV_LOG_DEBUG = 0, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR };

extern int srv_log_min_level;

void srv_log_set_level(int level);
/* Parses "debug", "info", "warn" or "error"; -1 when unknown. */
int srv_log_level_parse(const char *s);

/* The request id attached to every line logged by this thread (borrowed: the
 * caller keeps it alive until it sets NULL). */
void srv_log_set_request_id(const char *rid);
const char *srv_log_request_id(void);

void srv_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line with extra fields: fields_json is the inside of a JSON object
 * ("\"k\":1,\"s\":\"v\""), already escaped, or NULL. */
void srv_log_fields(int level, const char *msg, const char *fields_json);

#define SRV_LOG(level, ...)                                                                        \
    do {                                                                                           \
        if ((level) >= srv_log_min_level)                                                          \
            srv_log_write((level), __VA_ARGS__);                                                   \
    } while (0)

#define LOG_DEBUG(...) SRV_LOG(SRV_LOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...)  SRV_LOG(SRV_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...)  SRV_LOG(SRV_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) SRV_LOG(SRV_LOG_ERROR, __VA_ARGS__)

#endif
