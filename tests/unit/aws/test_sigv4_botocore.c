/*
 * test_sigv4_botocore.c — aws/sigv4.c agrees with botocore on random
 * requests. tests/tools/sigv4_vectors.py, run with the test venv's Python
 * ($MLGW_VENV/bin/python, else build/venv/bin/python from the repository
 * root, where the tests run), signs N random requests with botocore and
 * prints one JSON line per request; every line's Authorization header,
 * X-Amz-Date and (for S3) presigned URL must come out of the C signer
 * byte for byte. One run uses a fixed seed, one a seed taken from the clock
 * (or from MLGW_SIGV4_SEED, to repeat a run), printed in any failure. A
 * missing interpreter is a failure, not a skip: this is the signer's
 * reference check.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws/sigv4.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"

#define VECTORS_SCRIPT "tests/tools/sigv4_vectors.py"
#define N_VECTORS      3000
#define FIXED_SEED     20150830UL
#define MAX_REPORTED   3 /* mismatches described in the failure message */

struct tally {
    long lines;
    long auth_checked, presign_checked, dates_checked;
    long mismatches;
    struct gw_buf report; /* the first MAX_REPORTED mismatches */
};

static void python_path(char *out, size_t len)
{
    const char *venv = getenv("MLGW_VENV");
    int n = (venv != NULL && venv[0] != '\0') ? snprintf(out, len, "%s/bin/python", venv)
                                              : snprintf(out, len, "build/venv/bin/python");
    cr_assert(n > 0 && (size_t)n < len, "interpreter path too long");
    cr_assert(access(out, X_OK) == 0,
              "no Python interpreter at %s (MLGW_VENV=%s): the botocore agreement test needs "
              "the test venv with botocore (make venv, or set MLGW_VENV to a venv that has it)",
              out, venv != NULL ? venv : "(unset)");
    cr_assert(strchr(out, '\'') == NULL, "interpreter path %s contains a quote", out);
}

static const char *field(const json_t *line, const char *key)
{
    const char *s = json_string_value(json_object_get(line, key));
    cr_assert_not_null(s, "vector line without string field %s", key);
    return s;
}

static void copy_field(char *dst, size_t cap, const json_t *line, const char *key)
{
    int n = snprintf(dst, cap, "%s", field(line, key));
    cr_assert(n >= 0 && (size_t)n < cap, "field %s too long", key);
}

static void mismatch(struct tally *t, long i, const char *what, const char *got, const char *want,
                     const json_t *line)
{
    t->mismatches++;
    if (t->mismatches > MAX_REPORTED)
        return;
    char *dump = json_dumps(line, JSON_COMPACT);
    int rc = gw_buf_printf(&t->report, "\n[line %ld] %s\n  got:  %s\n  want: %s\n  input: %.600s",
                           i, what, got, want, dump != NULL ? dump : "?");
    cr_assert(rc == GW_OK || rc == GW_ETOOBIG);
    free(dump);
}

static unsigned char *hex_decode(const char *hex, size_t *len_out)
{
    size_t n = strlen(hex);
    cr_assert(n % 2 == 0, "odd body_hex");
    unsigned char *out = malloc(n / 2 + 1);
    cr_assert_not_null(out);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int b;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &b), 1, "bad body_hex");
        out[i] = (unsigned char)b;
    }
    *len_out = n / 2;
    return out;
}

static void check_line(struct tally *t, const json_t *line)
{
    long i = (long)json_integer_value(json_object_get(line, "i"));
    int s3 = json_is_true(json_object_get(line, "s3"));

    struct aws_credentials creds;
    memset(&creds, 0, sizeof(creds));
    copy_field(creds.access_key_id, sizeof(creds.access_key_id), line, "access_key");
    copy_field(creds.secret_access_key, sizeof(creds.secret_access_key), line, "secret_key");
    copy_field(creds.session_token, sizeof(creds.session_token), line, "token");
    const struct aws_sigv4_params p = {
        .region = field(line, "region"),
        .service = field(line, "service"),
        .amz_date = field(line, "amz_date"),
        .s3_path_rules = s3,
    };

    /* X-Amz-Date from the same UNIX time */
    char date[17];
    aws_amz_date(date, (long long)json_integer_value(json_object_get(line, "unix")));
    t->dates_checked++;
    if (strcmp(date, p.amz_date) != 0)
        mismatch(t, i, "aws_amz_date", date, p.amz_date, line);

    /* Authorization header */
    const json_t *jh = json_object_get(line, "headers");
    size_t nh = json_array_size(jh);
    cr_assert(nh <= AWS_SIGV4_MAX_HEADERS, "line %ld: %zu headers", i, nh);
    struct aws_sigv4_header hs[AWS_SIGV4_MAX_HEADERS];
    for (size_t k = 0; k < nh; k++) {
        const json_t *pair = json_array_get(jh, k);
        hs[k].name = json_string_value(json_array_get(pair, 0));
        hs[k].value = json_string_value(json_array_get(pair, 1));
        cr_assert(hs[k].name != NULL && hs[k].value != NULL, "line %ld: bad header", i);
    }
    size_t body_len = 0;
    unsigned char *body = hex_decode(field(line, "body_hex"), &body_len);
    const struct aws_sigv4_request req = {
        .method = field(line, "method"),
        .path = field(line, "path"),
        .query = field(line, "query"),
        .headers = hs,
        .nheaders = nh,
        .body = body,
        .body_len = body_len,
    };
    char authz[8192];
    int rc = aws_sigv4_authorization(authz, sizeof(authz), &req, &creds, &p);
    t->auth_checked++;
    if (rc != GW_OK)
        mismatch(t, i, "aws_sigv4_authorization failed", gw_code_name(rc),
                 field(line, "authorization"), line);
    else if (strcmp(authz, field(line, "authorization")) != 0)
        mismatch(t, i, "Authorization", authz, field(line, "authorization"), line);
    free(body);

    /* presigned URL */
    const json_t *ps = json_object_get(line, "presign");
    if (ps == NULL)
        return;
    struct gw_buf url;
    gw_buf_init(&url, 64 * 1024);
    rc = aws_sigv4_presign(&url, field(ps, "method"), field(ps, "scheme_host"), field(ps, "host"),
                           field(ps, "path"), field(ps, "query"),
                           (int)json_integer_value(json_object_get(ps, "expires")), &creds, &p);
    t->presign_checked++;
    if (rc != GW_OK)
        mismatch(t, i, "aws_sigv4_presign failed", gw_code_name(rc), field(ps, "url"), line);
    else if (strcmp(url.data, field(ps, "url")) != 0)
        mismatch(t, i, "presigned URL", url.data, field(ps, "url"), line);
    gw_buf_dispose(&url);
}

static void check_against_botocore(unsigned long seed)
{
    char python[4096], cmd[4352];
    python_path(python, sizeof(python));
    int n = snprintf(cmd, sizeof(cmd), "'%s' " VECTORS_SCRIPT " %d %lu -", python, N_VECTORS, seed);
    cr_assert(n > 0 && (size_t)n < sizeof(cmd));
    cr_log_info("botocore vectors: %s", cmd);

    struct tally t = {0};
    gw_buf_init(&t.report, 16 * 1024);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f, "cannot run %s", cmd);
    char *linebuf = NULL;
    size_t cap = 0;
    while (getline(&linebuf, &cap, f) > 0) {
        json_error_t jerr;
        json_t *line = json_loads(linebuf, 0, &jerr);
        cr_assert_not_null(line, "seed %lu: line %ld is not JSON: %s", seed, t.lines + 1,
                           jerr.text);
        check_line(&t, line);
        json_decref(line);
        t.lines++;
    }
    free(linebuf);
    int status = pclose(f);
    cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "seed %lu: %s failed (status %d) after %ld lines; its error is above", seed, cmd,
              status, t.lines);
    cr_assert_eq(t.lines, N_VECTORS, "seed %lu: %ld vector lines, want %d", seed, t.lines,
                 N_VECTORS);
    cr_assert_eq(t.mismatches, 0,
                 "seed %lu: %ld mismatches with botocore over %ld requests (%ld Authorization "
                 "headers, %ld presigned URLs, %ld dates); rerun with MLGW_SIGV4_SEED=%lu, or see "
                 "the vectors with\n  %s%s",
                 seed, t.mismatches, t.lines, t.auth_checked, t.presign_checked, t.dates_checked,
                 seed, cmd, t.report.data != NULL ? t.report.data : "");
    cr_assert_gt(t.presign_checked, 0);
    cr_log_info("seed %lu: %ld requests agree (%ld Authorization headers, %ld presigned URLs)",
                seed, t.lines, t.auth_checked, t.presign_checked);
    gw_buf_dispose(&t.report);
}

Test(aws_sigv4_botocore, signer_agrees_with_botocore_on_3000_requests_from_a_fixed_seed,
     .timeout = 240)
{
    check_against_botocore(FIXED_SEED);
}

Test(aws_sigv4_botocore, signer_agrees_with_botocore_on_3000_requests_from_a_clock_seed,
     .timeout = 240)
{
    unsigned long seed = (unsigned long)time(NULL);
    const char *env = getenv("MLGW_SIGV4_SEED");
    if (env != NULL && env[0] != '\0') {
        long long v;
        cr_assert_eq(gw_parse_ll(&v, env, 0, 4294967295LL), GW_OK,
                     "MLGW_SIGV4_SEED=%s is not a seed (0..4294967295)", env);
        seed = (unsigned long)v;
    }
    check_against_botocore(seed);
}
