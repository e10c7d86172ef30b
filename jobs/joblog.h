/*
 * joblog.h — a local job's log file, the one place that knows its path and
 * its format: <MLGW_LOCAL_ROOT>/logs/<job id>.log, one line per message, each
 * "YYYY-MM-DDTHH:MM:SS.mmmZ <message>\n" (RFC 3339, UTC).
 *
 * The local executor writes it (jobs_log_open, jobs_log_append,
 * jobs_log_note, jobs_log_close); GET /jobs/{id}/logs reads it a page at a
 * time from a byte offset, a bounded number of lines and bytes at a time, so
 * a large file is never held in memory (jobs_log_read). Knows nothing of
 * HTTP; routes/logs.c turns pages into answers.
 *
 * Thread-safety: no shared state. One thread writes a given file at a time
 * (the executor's); any number of threads may read it meanwhile.
 */
#ifndef MLGW_JOBS_JOBLOG_H
#define MLGW_JOBS_JOBLOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum {
    JOBS_LOG_LINE_MAX = 64 * 1024,    /* bytes of one message served; the rest of a line is cut */
    JOBS_LOG_PAGE_BYTES = 1024 * 1024 /* message bytes of one page, past its first line */
};

/* ---- the path ------------------------------------------------------------ */

/* Writes "<root>/logs/<job_id>.log" into out. GW_EIO when it does not fit
 * in outlen (out is then empty). */
int jobs_log_path(char *out, size_t outlen, const char *root, const char *job_id,
                  struct gw_err *err);

/* ---- writing --------------------------------------------------------------- */

/* Opens job_id's log under root for appending, creating it (mode 0640) when
 * it does not exist: *fd (the caller closes it with jobs_log_close), or -1
 * and GW_EIO. */
int jobs_log_open(int *fd, const char *root, const char *job_id, struct gw_err *err);

/* Appends one line, "<at_ms as YYYY-MM-DDTHH:MM:SS.mmmZ> <msg>\n", in one
 * buffer written whole (retried on EINTR). msg holds no '\n': the caller
 * splits its lines. fd < 0 writes nothing and returns GW_OK. GW_EIO when the
 * write fails, GW_ENOMEM. */
int jobs_log_append(int fd, int64_t at_ms, const char *msg, size_t len);

/* A line of the gateway's own at the current time: "ml-gateway: " and the
 * printf-style text, cut at 1023 bytes. Codes as jobs_log_append. */
int jobs_log_note(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Closes fd when it is >= 0. */
void jobs_log_close(int fd);

/* ---- reading ----------------------------------------------------------------- */

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
 * Reads up to limit lines (and about JOBS_LOG_PAGE_BYTES of messages) of the
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
