/*
 * log_file.h — pages of a local job's log file, the one the local executor
 * writes to <MLGW_LOCAL_ROOT>/logs/<job id>.log: one line per message, each
 * "<RFC 3339 UTC time> <message>\n". Reads from a byte offset, a bounded
 * number of lines and bytes at a time, so a large file is never held in
 * memory. Knows nothing of HTTP; routes/logs.c turns pages into answers.
 */
#ifndef MLGW_ROUTES_LOG_FILE_H
#define MLGW_ROUTES_LOG_FILE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum {
    RT_LOG_LINE_MAX = 64 * 1024,    /* bytes of one message served; the rest of a line is cut */
    RT_LOG_PAGE_BYTES = 1024 * 1024 /* message bytes of one page, past its first line */
};

/* Where a page starts: a byte offset at the start of a line, and the time of
 * the line before it (-1: none), which lines without a time of their own
 * take. */
struct jobs_log_pos {
    int64_t offset;
    int64_t last_ms;
};

struct jobs_log_page {
    json_t *items;            /* new: [{"at": "...", "message": "..."}] (json_decref) */
    struct jobs_log_pos next; /* where the following page starts */
    int more;                 /* more lines can be read now */
};

/*
 * Reads up to limit lines (and about RT_LOG_PAGE_BYTES of messages) of the
 * file at path from pos. A last line without its '\n' is still being
 * written and is left for a later page, unless finished is set (the job has
 * ended, so the file is whole). A file that does not exist is an empty one.
 * A line without a time prefix is served whole, at the time of the line
 * before it or, for the first line of the file, at the file's mtime.
 * Messages are valid UTF-8: invalid bytes become U+FFFD.
 *
 * Errors: GW_EINVAL (pos.offset is past the end of the file or not at the
 * start of a line), GW_EIO (the file cannot be read), GW_ENOMEM. On error
 * out->items is NULL.
 */
int jobs_log_read(struct jobs_log_page *out, const char *path, struct jobs_log_pos pos, int limit,
                  int finished, struct gw_err *err);

/* The time prefix of a log line, "YYYY-MM-DDTHH:MM:SS[.fraction]Z" followed
 * by one space or the end of the line: returns how many bytes it takes
 * (space included) and sets *ms, or returns 0 when line has none. */
size_t jobs_log_line_time(int64_t *ms, const char *line, size_t n);

#endif
