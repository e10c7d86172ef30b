/*
 * test_joblog.c — unit tests for jobs/joblog.c: the time prefix of a local
 * log line, UTF-8 repair, pages of a real file in a temporary directory
 * (offsets, lines still being written, lines without a time, limits on
 * lines and bytes, offsets that are not a line's start), and the writing
 * side: the log's path, lines and notes written and read back.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/time.h"
#include "common/utf8.h"
#include "jobs/joblog.h"

/* ---- the time prefix ------------------------------------------------------- */

/* 2026-11-28T23:43:37.123Z */
static const int64_t T0 = 1795909417123LL;

Test(log_line_time, reads_utc_milliseconds_and_the_one_space_after_them)
{
    int64_t ms = 0;
    const char *l = "2026-11-28T23:43:37.123Z epoch 1 loss 0.5";
    cr_assert_eq(jobs_log_line_time(&ms, l, strlen(l)), 25);
    cr_assert_eq(ms, T0);
}

Test(log_line_time, accepts_no_fraction_or_more_digits_and_a_line_that_is_only_a_time)
{
    int64_t ms = 0;
    const char *a = "2026-11-28T23:43:37Z x";
    cr_assert_eq(jobs_log_line_time(&ms, a, strlen(a)), 21);
    cr_assert_eq(ms, T0 - 123);
    const char *b = "2026-11-28T23:43:37.123456789Z x";
    cr_assert_eq(jobs_log_line_time(&ms, b, strlen(b)), 31);
    cr_assert_eq(ms, T0);
    const char *c = "2026-11-28T23:43:37.1Z";
    cr_assert_eq(jobs_log_line_time(&ms, c, strlen(c)), strlen(c));
    cr_assert_eq(ms, T0 - 23);
    const char *d = "2024-02-29T00:00:00.000Z leap day";
    cr_assert_eq(jobs_log_line_time(&ms, d, strlen(d)), 25);
    cr_assert_eq(ms, 1709164800000LL);
}

Test(log_line_time, refuses_what_is_not_a_utc_time_followed_by_a_space)
{
    static const char *const bad[] = {
        "Traceback (most recent call last):",
        "2026-11-28T23:43:37.123Zx glued to the message",
        "2026-11-28T23:43:37.123+01:00 not UTC",
        "2026-11-28 23:43:37.123Z a space for T",
        "2026-13-28T23:43:37.123Z month 13",
        "2025-02-29T00:00:00.000Z no leap day in 2025",
        "2026-11-28T24:00:00.000Z hour 24",
        "2026-11-28T23:43:37.Z empty fraction",
        "2026-11-28T23:43:37.1234567890Z ten digits",
        "2026-11-28T23:43:37",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        cr_expect_eq(jobs_log_line_time(&ms, bad[i], strlen(bad[i])), 0, "%s", bad[i]);
    }
}

Test(log_line_time, never_reads_past_n)
{
    int64_t ms = 0;
    const char *l = "2026-11-28T23:43:37.123Z tail";
    cr_assert_eq(jobs_log_line_time(&ms, l, 24), 24, "a time that ends the line");
    cr_assert_eq(jobs_log_line_time(&ms, l, 23), 0, "the Z is past n");
}

/* ---- UTF-8 ------------------------------------------------------------------- */

static void expect_sanitized(const char *in, size_t n, const char *want, size_t want_n)
{
    struct gw_buf b;
    gw_buf_init(&b, 1024);
    cr_assert_eq(gw_utf8_sanitize(&b, in, n), GW_OK);
    cr_expect_eq(b.len, want_n, "length %zu, want %zu", b.len, want_n);
    cr_expect(b.len == want_n && memcmp(b.data, want, want_n) == 0, "got \"%s\"", b.data);
    gw_buf_dispose(&b);
}

#define FFFD          "\xef\xbf\xbd"
#define SAN(in, want) expect_sanitized(in, sizeof(in) - 1, want, sizeof(want) - 1)

Test(utf8_sanitize, keeps_valid_text_and_nul_bytes_as_they_are)
{
    SAN("plain ascii", "plain ascii");
    SAN("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80");
    SAN("a\0b", "a\0b");
    SAN("\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\xef\xbf\xbf\xf4\x8f\xbf\xbf"); /* U+FFFF, U+10FFFF */
}

Test(utf8_sanitize, replaces_each_maximal_invalid_subpart_with_one_fffd)
{
    SAN("\x80", FFFD);                            /* a lone continuation byte */
    SAN("x\xe2\x82y", "x" FFFD "y");              /* a cut three-byte sequence: one FFFD */
    SAN("\xc0\xaf", FFFD FFFD);                   /* overlong lead, then a continuation */
    SAN("\xed\xa0\x80", FFFD FFFD FFFD);          /* a surrogate */
    SAN("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* past U+10FFFF */
    SAN("\xf0\x9f\x9a", FFFD);                    /* cut at the end of the input */
    SAN("\xff\xfe", FFFD FFFD);
}

/* ---- pages of a file ------------------------------------------------------------ */

static char dir[64], path[128];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mlgw-logfile-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/job.log", dir);
}

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(log_file, .init = make_dir, .fini = remove_dir);

static void write_file(const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

#define WRITE(s) write_file(s, sizeof(s) - 1)

static const char *msg(const struct jobs_log_page *p, size_t i)
{
    return json_string_value(json_object_get(json_array_get(p->items, i), "message"));
}

static const char *at(const struct jobs_log_page *p, size_t i)
{
    return json_string_value(json_object_get(json_array_get(p->items, i), "at"));
}

static const struct jobs_log_pos START = {0, -1};

Test(log_file, pages_through_the_file_by_offset_until_nothing_is_left)
{
    WRITE("2026-11-28T23:43:37.123Z one\n"
          "2026-11-28T23:43:38.000Z two\n"
          "2026-11-28T23:43:39.500Z three\n");
    struct jobs_log_page p;
    struct gw_err err = {0};
    cr_assert_eq(jobs_log_read(&p, path, START, 2, 0, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(json_array_size(p.items), 2);
    cr_expect_str_eq(msg(&p, 0), "one");
    cr_expect_str_eq(at(&p, 0), "2026-11-28T23:43:37.123Z");
    cr_expect_str_eq(msg(&p, 1), "two");
    cr_expect_eq(p.next.offset, 58);
    cr_expect_eq(p.next.last_ms, T0 + 877);
    cr_expect(p.more);
    json_decref(p.items);

    struct jobs_log_pos pos = p.next;
    cr_assert_eq(jobs_log_read(&p, path, pos, 2, 0, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(json_array_size(p.items), 1);
    cr_expect_str_eq(msg(&p, 0), "three");
    cr_expect_str_eq(at(&p, 0), "2026-11-28T23:43:39.500Z");
    cr_expect_not(p.more);
    json_decref(p.items);

    pos = p.next;
    cr_assert_eq(jobs_log_read(&p, path, pos, 2, 0, &err), GW_OK, "%s", err.msg);
    cr_expect_eq(json_array_size(p.items), 0);
    cr_expect_eq(p.next.offset, pos.offset, "an empty page stays where it was");
    cr_expect_not(p.more);
    json_decref(p.items);
}

Test(log_file, leaves_a_line_still_being_written_until_the_job_has_ended)
{
    WRITE("2026-11-28T23:43:37.123Z done\n2026-11-28T23:43:38.000Z half a li");
    struct jobs_log_page p;
    struct gw_err err = {0};
    cr_assert_eq(jobs_log_read(&p, path, START, 10, 0, &err), GW_OK);
    cr_assert_eq(json_array_size(p.items), 1);
    cr_expect_eq(p.next.offset, 30);
    json_decref(p.items);

    cr_assert_eq(jobs_log_read(&p, path, START, 10, 1, &err), GW_OK);
    cr_assert_eq(json_array_size(p.items), 2);
    cr_expect_str_eq(msg(&p, 1), "half a li");
    cr_expect_not(p.more);
    json_decref(p.items);
}

Test(log_file, a_line_without_a_time_takes_the_one_before_it_or_the_files_mtime)
{
    WRITE("no time on the first line\n"
          "2026-11-28T23:43:37.123Z Traceback (most recent call last):\n"
          "  File \"train.py\", line 3\n");
    struct timespec times[2] = {{1700000000, 250000000}, {1700000000, 250000000}};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    struct jobs_log_page p;
    struct gw_err err = {0};
    cr_assert_eq(jobs_log_read(&p, path, START, 10, 0, &err), GW_OK);
    cr_assert_eq(json_array_size(p.items), 3);
    cr_expect_str_eq(at(&p, 0), "2023-11-14T22:13:20.250Z");
    cr_expect_str_eq(msg(&p, 0), "no time on the first line");
    cr_expect_str_eq(at(&p, 2), "2026-11-28T23:43:37.123Z");
    cr_expect_str_eq(msg(&p, 2), "  File \"train.py\", line 3");
    json_decref(p.items);

    /* From the third line, with the time the cursor carries. */
    struct jobs_log_pos pos = {86, T0};
    cr_assert_eq(jobs_log_read(&p, path, pos, 10, 0, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(json_array_size(p.items), 1);
    cr_expect_str_eq(at(&p, 0), "2026-11-28T23:43:37.123Z");
    json_decref(p.items);
}

Test(log_file, invalid_utf8_and_nul_bytes_in_a_message_come_out_as_valid_json_strings)
{
    WRITE("2026-11-28T23:43:37.123Z bad \xff\xc3 byte\0x\n");
    struct jobs_log_page p;
    struct gw_err err = {0};
    cr_assert_eq(jobs_log_read(&p, path, START, 10, 0, &err), GW_OK);
    json_t *m = json_object_get(json_array_get(p.items, 0), "message");
    cr_assert_eq(json_string_length(m), 17);
    cr_expect_eq(memcmp(json_string_value(m), "bad " FFFD FFFD " byte\0x", 17), 0);
    char *dumped = json_dumps(p.items, JSON_COMPACT);
    cr_expect(strstr(dumped, "\\u0000x") != NULL, "%s", dumped);
    free(dumped);
    json_decref(p.items);
}

Test(log_file, refuses_an_offset_past_the_end_or_inside_a_line)
{
    WRITE("2026-11-28T23:43:37.123Z one\n2026-11-28T23:43:38.000Z two\n");
    struct jobs_log_page p;
    struct gw_err err = {0};
    cr_expect_eq(jobs_log_read(&p, path, (struct jobs_log_pos){10, -1}, 10, 0, &err), GW_EINVAL);
    cr_expect_null(p.items);
    cr_expect_eq(jobs_log_read(&p, path, (struct jobs_log_pos){59, -1}, 10, 0, &err), GW_EINVAL);
    cr_expect_eq(jobs_log_read(&p, path, (struct jobs_log_pos){-1, -1}, 10, 0, &err), GW_EINVAL);
    cr_assert_eq(jobs_log_read(&p, path, (struct jobs_log_pos){58, -1}, 10, 0, &err), GW_OK,
                 "the end of the file is the start of the next line");
    cr_expect_eq(json_array_size(p.items), 0);
    json_decref(p.items);
}

Test(log_file, a_file_not_written_yet_is_empty_and_has_no_other_offset_than_zero)
{
    struct jobs_log_page p;
    struct gw_err err = {0};
    cr_assert_eq(jobs_log_read(&p, path, START, 10, 0, &err), GW_OK);
    cr_expect_eq(json_array_size(p.items), 0);
    cr_expect_not(p.more);
    cr_expect_eq(p.next.offset, 0);
    json_decref(p.items);
    cr_expect_eq(jobs_log_read(&p, path, (struct jobs_log_pos){5, -1}, 10, 0, &err), GW_EINVAL);
}

Test(log_file, a_directory_in_place_of_the_file_is_an_io_error)
{
    cr_assert_eq(mkdir(path, 0700), 0);
    struct jobs_log_page p;
    struct gw_err err = {0};
    cr_expect_eq(jobs_log_read(&p, path, START, 10, 0, &err), GW_EIO);
    cr_expect_null(p.items);
    rmdir(path);
}

Test(log_file, a_very_long_line_is_cut_and_the_next_line_still_starts_where_it_should)
{
    size_t long_len = 3 * JOBS_LOG_LINE_MAX;
    size_t n = 25 + long_len + 1 + 30;
    char *data = malloc(n + 1);
    memcpy(data, "2026-11-28T23:43:37.123Z ", 25);
    memset(data + 25, 'x', long_len);
    data[25 + long_len] = '\n';
    memcpy(data + 26 + long_len, "2026-11-28T23:43:38.000Z next\n", 30);
    write_file(data, n);
    free(data);
    struct jobs_log_page p;
    struct gw_err err = {0};
    cr_assert_eq(jobs_log_read(&p, path, START, 10, 0, &err), GW_OK);
    cr_assert_eq(json_array_size(p.items), 2);
    cr_expect_eq(strlen(msg(&p, 0)), JOBS_LOG_LINE_MAX - 25,
                 "the first 64 KiB of the line, less its time");
    cr_expect_str_eq(msg(&p, 1), "next");
    cr_expect_eq((size_t)p.next.offset, n);
    json_decref(p.items);
}

Test(log_file, a_page_stops_near_its_byte_budget_and_says_there_is_more)
{
    enum { LINE = 60000, LINES = 40 };
    size_t n = (size_t)LINES * (LINE + 1);
    char *data = malloc(n);
    for (size_t i = 0; i < LINES; i++) {
        memset(data + i * (LINE + 1), 'a' + (int)(i % 26), LINE);
        data[i * (LINE + 1) + LINE] = '\n';
    }
    write_file(data, n);
    free(data);
    struct jobs_log_page p;
    struct gw_err err = {0};
    cr_assert_eq(jobs_log_read(&p, path, START, 200, 1, &err), GW_OK);
    size_t got = json_array_size(p.items);
    cr_expect_eq(got, (JOBS_LOG_PAGE_BYTES + LINE - 1) / LINE, "%zu lines", got);
    cr_expect(p.more);
    cr_expect_eq((size_t)p.next.offset, got * (LINE + 1));
    json_decref(p.items);
}

/* ---- the path and writing --------------------------------------------------------- */

static const char job_id[] = "01a22429-8619-75a4-90bc-3da40c49c5bd";
static char root[64], logs[96], written[192];

static void make_root(void)
{
    snprintf(root, sizeof(root), "/tmp/mlgw-joblog-XXXXXX");
    cr_assert(mkdtemp(root) != NULL);
    snprintf(logs, sizeof(logs), "%s/logs", root);
    cr_assert_eq(mkdir(logs, 0750), 0);
    snprintf(written, sizeof(written), "%s/%s.log", logs, job_id);
}

static void remove_root(void)
{
    unlink(written);
    rmdir(logs);
    rmdir(root);
}

TestSuite(jobs_joblog, .init = make_root, .fini = remove_root);

Test(jobs_joblog, a_jobs_log_path_is_its_id_dot_log_under_the_roots_logs_folder)
{
    char out[128];
    cr_assert_eq(jobs_log_path(out, sizeof(out), "/var/lib/mlgw", job_id, NULL), GW_OK);
    cr_expect_str_eq(out, "/var/lib/mlgw/logs/01a22429-8619-75a4-90bc-3da40c49c5bd.log");
}

Test(jobs_joblog, a_path_that_does_not_fit_is_an_io_error_and_leaves_nothing)
{
    char out[40];
    struct gw_err err = {0};
    cr_assert_eq(jobs_log_path(out, sizeof(out), "/var/lib/mlgw", job_id, &err), GW_EIO);
    cr_expect_str_eq(out, "");
    cr_expect_eq(err.code, GW_EIO);
    cr_expect(strstr(err.msg, job_id) != NULL, "%s", err.msg);
}

Test(jobs_joblog, written_line_reads_back_with_its_time)
{
    int fd = -1;
    struct gw_err err = {0};
    cr_assert_eq(jobs_log_open(&fd, root, job_id, &err), GW_OK, "%s", err.msg);
    cr_assert(fd >= 0);
    cr_assert_eq(jobs_log_append(fd, T0, "epoch 1 loss 0.5", 16), GW_OK);
    cr_assert_eq(jobs_log_append(fd, T0 + 1000, "epoch 2 loss 0.25", 17), GW_OK);
    jobs_log_close(fd);

    char want[192];
    cr_assert_eq(jobs_log_path(want, sizeof(want), root, job_id, NULL), GW_OK);
    cr_assert_str_eq(want, written);
    FILE *f = fopen(written, "rb");
    cr_assert(f != NULL);
    char raw[256] = {0};
    size_t n = fread(raw, 1, sizeof(raw) - 1, f);
    fclose(f);
    cr_expect_str_eq(raw, "2026-11-28T23:43:37.123Z epoch 1 loss 0.5\n"
                          "2026-11-28T23:43:38.123Z epoch 2 loss 0.25\n");

    struct jobs_log_page p;
    cr_assert_eq(jobs_log_read(&p, written, START, 10, 1, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(json_array_size(p.items), 2);
    cr_expect_str_eq(msg(&p, 0), "epoch 1 loss 0.5");
    cr_expect_str_eq(at(&p, 0), "2026-11-28T23:43:37.123Z");
    cr_expect_str_eq(msg(&p, 1), "epoch 2 loss 0.25");
    cr_expect_str_eq(at(&p, 1), "2026-11-28T23:43:38.123Z");
    cr_expect_eq((size_t)p.next.offset, n);
    cr_expect_eq(p.next.last_ms, T0 + 1000);
    json_decref(p.items);
}

Test(jobs_joblog, opening_again_appends_after_what_is_there)
{
    int fd = -1;
    cr_assert_eq(jobs_log_open(&fd, root, job_id, NULL), GW_OK);
    cr_assert_eq(jobs_log_append(fd, T0, "first", 5), GW_OK);
    jobs_log_close(fd);
    cr_assert_eq(jobs_log_open(&fd, root, job_id, NULL), GW_OK);
    cr_assert_eq(jobs_log_append(fd, T0, "second", 6), GW_OK);
    jobs_log_close(fd);
    struct jobs_log_page p;
    cr_assert_eq(jobs_log_read(&p, written, START, 10, 1, NULL), GW_OK);
    cr_assert_eq(json_array_size(p.items), 2);
    cr_expect_str_eq(msg(&p, 0), "first");
    cr_expect_str_eq(msg(&p, 1), "second");
    json_decref(p.items);
}

Test(jobs_joblog, a_note_is_the_gateways_own_line_at_the_current_time)
{
    int fd = -1;
    cr_assert_eq(jobs_log_open(&fd, root, job_id, NULL), GW_OK);
    int64_t before = gw_now_ms();
    cr_assert_eq(jobs_log_note(fd, "attempt %d of %d: %s", 1, 3, "train.py"), GW_OK);
    int64_t after = gw_now_ms();
    jobs_log_close(fd);
    struct jobs_log_page p;
    cr_assert_eq(jobs_log_read(&p, written, START, 10, 1, NULL), GW_OK);
    cr_assert_eq(json_array_size(p.items), 1);
    cr_expect_str_eq(msg(&p, 0), "ml-gateway: attempt 1 of 3: train.py");
    int64_t ms = 0;
    const char *stamp = at(&p, 0);
    cr_assert_eq(jobs_log_line_time(&ms, stamp, strlen(stamp)), strlen(stamp));
    cr_expect(ms >= before && ms <= after, "%lld not in [%lld, %lld]", (long long)ms,
              (long long)before, (long long)after);
    json_decref(p.items);
}

Test(jobs_joblog, a_long_note_is_cut_to_one_line_of_1023_bytes)
{
    int fd = -1;
    cr_assert_eq(jobs_log_open(&fd, root, job_id, NULL), GW_OK);
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(jobs_log_note(fd, "%s", big), GW_OK);
    jobs_log_close(fd);
    struct jobs_log_page p;
    cr_assert_eq(jobs_log_read(&p, written, START, 10, 1, NULL), GW_OK);
    cr_assert_eq(json_array_size(p.items), 1);
    cr_expect_eq(strlen(msg(&p, 0)), 1023);
    cr_expect_eq(strncmp(msg(&p, 0), "ml-gateway: xxx", 15), 0);
    json_decref(p.items);
}

Test(jobs_joblog, writing_without_a_file_does_nothing)
{
    cr_expect_eq(jobs_log_append(-1, T0, "lost", 4), GW_OK);
    cr_expect_eq(jobs_log_note(-1, "%s", "lost"), GW_OK);
    jobs_log_close(-1);
    struct stat st;
    cr_expect_neq(stat(written, &st), 0, "no file was made");
}

Test(jobs_joblog, a_root_without_a_logs_folder_cannot_be_opened)
{
    int fd = 7;
    struct gw_err err = {0};
    cr_expect_eq(jobs_log_open(&fd, "/nonexistent-mlgw-root", job_id, &err), GW_EIO);
    cr_expect_eq(fd, -1);
    cr_expect(strstr(err.msg, "/nonexistent-mlgw-root/logs/") != NULL, "%s", err.msg);
}
