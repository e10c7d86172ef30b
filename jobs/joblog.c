/*
 * joblog.c — a local job's log file (joblog.h): its path, writing a line
 * with its time, and reading the file a page at a time.
 *
 * Writing: each line is formatted into one buffer and appended with write()
 * on an O_APPEND descriptor, so a reader never sees half a time prefix. What
 * goes on a line (the attempt's output, split by the supervisor, or the
 * gateway's notes) is the caller's business.
 *
 * Reading: the file is read with pread() through one fixed buffer from the
 * page's offset; only the current line (at most JOBS_LOG_LINE_MAX bytes of
 * it) is kept, so a page costs the same whatever the file's size. The file
 * may grow while it is read: a last line without its '\n' is left alone
 * until the job has ended.
 */
#include "jobs/joblog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"
#include "common/time.h"
#include "common/utf8.h"

#include "common/poison.h"

enum { READ_CHUNK = 64 * 1024, NOTE_MAX = 1024 };

/* ---- the path and writing --------------------------------------------------- */

int jobs_log_path(char *out, size_t outlen, const char *root, const char *job_id,
                  struct gw_err *err)
{
    int n = snprintf(out, outlen, "%s/logs/%s.log", root, job_id);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return gw_err_set(err, GW_EIO, "the log path of job %s is too long", job_id);
    }
    return GW_OK;
}

int jobs_log_open(int *fd, const char *root, const char *job_id, struct gw_err *err)
{
    *fd = -1;
    char path[PATH_MAX + 64];
    int rc = jobs_log_path(path, sizeof(path), root, job_id, err);
    if (rc != GW_OK)
        return rc;
    *fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (*fd < 0)
        return gw_err_set(err, GW_EIO, "cannot open %s: %s", path, strerror(errno));
    return GW_OK;
}

int jobs_log_append(int fd, int64_t at_ms, const char *msg, size_t len)
{
    if (fd < 0)
        return GW_OK;
    char ts[40];
    gw_format_time_ms(ts, sizeof(ts), at_ms);
    struct gw_buf b;
    gw_buf_init(&b, len + 64);
    int rc = gw_buf_printf(&b, "%s ", ts);
    if (rc == GW_OK)
        rc = gw_buf_add(&b, msg, len);
    if (rc == GW_OK)
        rc = gw_buf_add(&b, "\n", 1);
    for (size_t off = 0; rc == GW_OK && off < b.len;) {
        ssize_t w = write(fd, b.data + off, b.len - off);
        if (w > 0)
            off += (size_t)w;
        else if (errno != EINTR)
            rc = GW_EIO;
    }
    gw_buf_dispose(&b);
    return rc;
}

/* The format attribute lets clang's -Wformat-nonliteral see that fmt is checked at the callers. */
static int note_v(int fd, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static int note_v(int fd, const char *fmt, va_list ap)
{
    char msg[NOTE_MAX];
    int off = snprintf(msg, sizeof(msg), "ml-gateway: ");
    int n = vsnprintf(msg + off, sizeof(msg) - (size_t)off, fmt, ap);
    size_t len = (size_t)off + (n < 0 ? 0 : (size_t)n);
    if (len >= sizeof(msg))
        len = sizeof(msg) - 1;
    return jobs_log_append(fd, gw_now_ms(), msg, len);
}

int jobs_log_note(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = note_v(fd, fmt, ap);
    va_end(ap);
    return rc;
}

void jobs_log_close(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* ---- times ---------------------------------------------------------------- */

size_t jobs_log_line_time(int64_t *ms, const char *line, size_t n)
{
    enum { DATE_END = 10, SECONDS_END = 19, FRACTION_MAX = 9 };
    /* The executor writes "YYYY-MM-DDTHH:MM:SS.mmmZ ": a line of the job's own
     * output that starts with some other form of time is text, not a stamp. */
    size_t i = gw_parse_rfc3339(ms, line, n);
    int stamp = i > SECONDS_END && line[DATE_END] == 'T' && line[i - 1] == 'Z' &&
                (i == SECONDS_END + 1 || i - SECONDS_END - 2 <= FRACTION_MAX) &&
                (i == n || line[i] == ' ');
    if (!stamp) {
        *ms = 0;
        return 0;
    }
    return i < n ? i + 1 : i;
}

/* ---- lines -------------------------------------------------------------- */

struct reader {
    int fd;
    int eof;
    int64_t base; /* file offset of buf[0] */
    size_t pos, len;
    char buf[READ_CHUNK];
};

enum line_kind { LINE_NONE, LINE_COMPLETE, LINE_PARTIAL };

/* File offset of the next unread byte. */
static int64_t rd_offset(const struct reader *r)
{
    return r->base + (int64_t)r->pos;
}

static int rd_fill(struct reader *r, struct gw_err *err)
{
    r->base += (int64_t)r->len;
    r->pos = r->len = 0;
    for (;;) {
        ssize_t n = pread(r->fd, r->buf, sizeof(r->buf), (off_t)r->base);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return gw_err_set(err, GW_EIO, "reading a job log: %s", strerror(errno));
        r->len = (size_t)n;
        r->eof = n == 0;
        return GW_OK;
    }
}

/* True when at least one byte follows the reader's position. */
static int rd_more(int *out, struct reader *r, struct gw_err *err)
{
    *out = 0;
    if (r->pos == r->len && !r->eof) {
        int rc = rd_fill(r, err);
        if (rc != GW_OK)
            return rc;
    }
    *out = r->pos < r->len;
    return GW_OK;
}

/* Reads the next line into line (its first JOBS_LOG_LINE_MAX bytes, without
 * the '\n'); *kind says whether there was one and whether it ended. */
static int rd_line(enum line_kind *kind, struct gw_buf *line, struct reader *r, struct gw_err *err)
{
    *kind = LINE_NONE;
    gw_buf_reset(line);
    int any = 0;
    for (;;) {
        if (r->pos == r->len) {
            if (r->eof)
                break;
            int rc = rd_fill(r, err);
            if (rc != GW_OK)
                return rc;
            if (r->len == 0)
                break;
        }
        const char *start = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        const char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        size_t room = JOBS_LOG_LINE_MAX - line->len;
        int rc = gw_buf_add(line, start, take < room ? take : room);
        if (rc != GW_OK)
            return gw_err_set(err, rc, "out of memory reading a job log");
        any = 1;
        r->pos += take + (nl != NULL);
        if (nl != NULL) {
            *kind = LINE_COMPLETE;
            return GW_OK;
        }
    }
    *kind = any ? LINE_PARTIAL : LINE_NONE;
    return GW_OK;
}

/* One {"at", "message"} item for a line. */
static int append_item(json_t *items, struct gw_buf *msg, const struct gw_buf *line, int64_t *last,
                       int64_t fallback_ms)
{
    int64_t ms = 0;
    const char *text = line->data ? line->data : "";
    size_t skip = jobs_log_line_time(&ms, text, line->len);
    if (skip == 0)
        ms = *last >= 0 ? *last : fallback_ms;
    gw_buf_reset(msg);
    if (gw_utf8_sanitize(msg, text + skip, line->len - skip) != GW_OK)
        return GW_ENOMEM;
    char at[32];
    gw_format_time_ms(at, sizeof(at), ms);
    json_t *m = json_stringn_nocheck(msg->data ? msg->data : "", msg->len);
    json_t *item = m ? json_pack("{s:s,s:o}", "at", at, "message", m) : NULL;
    if (item == NULL || json_array_append_new(items, item) != 0)
        return GW_ENOMEM;
    *last = ms;
    return GW_OK;
}

/* Opens path for reading when it is a regular file; *fd is -1 when it does
 * not exist. O_NONBLOCK: a FIFO put in its place must not hang the request. */
static int open_log(int *fd, struct stat *st, const char *path, struct gw_err *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (*fd < 0 && errno == ENOENT)
        return GW_OK;
    if (*fd < 0)
        return gw_err_set(err, GW_EIO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(*fd);
        *fd = -1;
        return gw_err_set(err, GW_EIO, "%s is not a readable regular file", path);
    }
    return GW_OK;
}

int jobs_log_read(struct jobs_log_page *out, const char *path, struct jobs_log_pos pos, int limit,
                  int finished, struct gw_err *err)
{
    out->items = NULL;
    out->next = pos;
    out->more = 0;
    struct reader *r = NULL;
    json_t *items = NULL;
    struct gw_buf line, msg;
    gw_buf_init(&line, JOBS_LOG_LINE_MAX);
    gw_buf_init(&msg, 3 * (size_t)JOBS_LOG_LINE_MAX);
    struct stat st;
    int fd = -1;
    int64_t last = pos.last_ms, mtime_ms = 0;
    size_t bytes = 0;

    int rc = open_log(&fd, &st, path, err);
    if (rc != GW_OK)
        goto cleanup;
    if (pos.offset < 0 || pos.offset > (fd < 0 ? 0 : (int64_t)st.st_size)) {
        rc = gw_err_set(err, GW_EINVAL, "offset %lld is past the end of the log",
                        (long long)pos.offset);
        goto cleanup;
    }
    if (pos.offset > 0) {
        char before = 0;
        if (pread(fd, &before, 1, (off_t)(pos.offset - 1)) != 1 || before != '\n') {
            rc = gw_err_set(err, GW_EINVAL, "offset %lld is not at the start of a line",
                            (long long)pos.offset);
            goto cleanup;
        }
    }
    items = json_array();
    r = fd < 0 ? NULL : calloc(1, sizeof(*r));
    if (items == NULL || (fd >= 0 && r == NULL)) {
        rc = gw_err_set(err, GW_ENOMEM, "out of memory reading a job log");
        goto cleanup;
    }
    if (fd >= 0) {
        r->fd = fd;
        r->base = pos.offset;
        /* The time of lines without one before any line with one. */
        mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    }
    for (int n = 0; r != NULL; n++) {
        if (n >= limit || (n > 0 && bytes >= JOBS_LOG_PAGE_BYTES)) {
            rc = rd_more(&out->more, r, err);
            break;
        }
        enum line_kind kind;
        rc = rd_line(&kind, &line, r, err);
        if (rc != GW_OK || kind == LINE_NONE || (kind == LINE_PARTIAL && !finished))
            break;
        if (append_item(items, &msg, &line, &last, mtime_ms) != GW_OK) {
            rc = gw_err_set(err, GW_ENOMEM, "out of memory reading a job log");
            break;
        }
        bytes += msg.len;
        out->next.offset = rd_offset(r);
        out->next.last_ms = last;
    }
    if (rc == GW_OK) {
        out->items = items;
        items = NULL;
    }

cleanup:
    if (rc != GW_OK) {
        out->next = pos;
        out->more = 0;
    }
    json_decref(items);
    free(r);
    if (fd >= 0)
        close(fd);
    gw_buf_dispose(&line);
    gw_buf_dispose(&msg);
    return rc;
}
