/*
 * log.c — writes one JSON object per line to stderr. Each line is built in a
 * bounded buffer (LOG_LINE_MAX) and written with one write(2) call (looping
 * only on a short write), so lines from different threads do not
 * interleave. A message is cut to 2 KiB before it is escaped; a line that
 * would still exceed the buffer is replaced by a "(log line too long)" line
 * of the same level, so every line stays valid JSON. Nothing is ever split.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/time.h"

#include "common/poison.h"

int gw_log_min_level = GW_LOG_LEVEL_INFO;

static _Thread_local const char *tl_request_id;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void gw_log_set_level(int level)
{
    if (level >= GW_LOG_LEVEL_DEBUG && level <= GW_LOG_LEVEL_ERROR)
        gw_log_min_level = level;
}

void gw_log_set_request_id(const char *rid)
{
    tl_request_id = rid;
}

enum { LOG_LINE_MAX = 8192 };

static void emit(int level, const char *msg, const char *fields_json)
{
    if (level < GW_LOG_LEVEL_DEBUG || level > GW_LOG_LEVEL_ERROR)
        level = GW_LOG_LEVEL_ERROR;
    char ts[40];
    gw_format_time_ms(ts, sizeof(ts), gw_now_ms());

    /* A bounded buffer: a line over the limit loses its tail, not its shape. */
    struct gw_buf b;
    gw_buf_init(&b, LOG_LINE_MAX);
    int rc = gw_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, level_names[level]);
    if (rc == GW_OK && tl_request_id != NULL) {
        rc = gw_buf_adds(&b, ",\"request_id\":\"");
        if (rc == GW_OK)
            rc = gw_buf_add_json_escaped(&b, tl_request_id);
        if (rc == GW_OK)
            rc = gw_buf_adds(&b, "\"");
    }
    if (rc == GW_OK) {
        rc = gw_buf_adds(&b, ",\"msg\":\"");
        if (rc == GW_OK)
            rc = gw_buf_add_json_escaped(&b, msg);
        if (rc == GW_OK)
            rc = gw_buf_adds(&b, "\"");
    }
    if (rc == GW_OK && fields_json != NULL && fields_json[0] != '\0') {
        rc = gw_buf_adds(&b, ",");
        if (rc == GW_OK)
            rc = gw_buf_adds(&b, fields_json);
    }
    if (rc == GW_OK)
        rc = gw_buf_adds(&b, "}\n");
    if (rc != GW_OK) {
        gw_buf_reset(&b);
        rc = gw_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"(log line too long)\"}\n",
                           ts, level_names[level]);
    }
    if (rc == GW_OK && b.data != NULL) {
        size_t off = 0;
        while (off < b.len) {
            ssize_t n = write(STDERR_FILENO, b.data + off, b.len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
    }
    gw_buf_dispose(&b);
}

void gw_log_write(int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    gw_vfmt(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(level, msg, NULL);
}

void gw_log_fields(int level, const char *msg, const char *fields_json)
{
    if (level < gw_log_min_level)
        return;
    emit(level, msg, fields_json);
}
