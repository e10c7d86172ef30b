/*
 * test_sigv4.c — unit tests for aws/sigv4.c: every case of AWS's Signature
 * Version 4 test suite (tests/data/sigv4, relative to the repository
 * root, where the tests run), compared byte for byte (canonical request,
 * string to sign, Authorization header); then aws_uri_encode, aws_amz_date,
 * presigned URLs (AWS's published S3 example included) and the limits.
 * Pure functions only: no network, no clock. Agreement with botocore on
 * random requests is in test_sigv4_botocore.c.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "common/buf.h"
#include "common/err.h"

#define SUITE_DIR "tests/data/sigv4"
#define MAX_FILE  (64 * 1024)
#define MAX_HDRS  32

static const struct aws_sigv4_params SUITE_PARAMS = {
    .region = "us-east-1",
    .service = "service",
    .amz_date = "20150830T123600Z",
    .s3_path_rules = 0,
};

/* The token of post-sts-token/readme.txt. */
#define STS_TOKEN                                                                                  \
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSP" \
    "fIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT" \
    "7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlz" \
    "m8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
/* get-vanilla-with-session-token's .req has no token header: the suite's
 * signer adds it (x-amz-security-token in its .creq), so the test adds it. */
#define VANILLA_TOKEN "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

static void suite_creds(struct aws_credentials *c, const char *token)
{
    memset(c, 0, sizeof(*c));
    cr_assert_eq(snprintf(c->access_key_id, sizeof(c->access_key_id), "AKIDEXAMPLE"), 11);
    cr_assert_eq(snprintf(c->secret_access_key, sizeof(c->secret_access_key), "%s",
                          "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                 40);
    if (token != NULL) {
        int n = snprintf(c->session_token, sizeof(c->session_token), "%s", token);
        cr_assert(n > 0 && (size_t)n < sizeof(c->session_token));
    }
}

/* ---- the .req format ----------------------------------------------------- */

/* Whole file, NUL-terminated; NULL when it cannot be read. */
static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(MAX_FILE + 1);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    cr_assert(ferror(f) == 0, "reading %s failed", path);
    cr_assert(n <= MAX_FILE, "%s is larger than %d bytes", path, MAX_FILE);
    cr_assert_eq(fclose(f), 0);
    buf[n] = '\0';
    if (len_out != NULL)
        *len_out = n;
    return buf;
}

struct http_req {
    char method[16];
    char path[512];
    char query[512];
    char names[MAX_HDRS][128];
    char values[MAX_HDRS][1024];
    size_t nheaders;
    const char *body; /* into text */
    size_t body_len;
};

static void copy_span(char *dst, size_t cap, const char *src, size_t n, const char *what)
{
    cr_assert(n < cap, "%s too long for the test parser (%zu bytes)", what, n);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void append_span(char *dst, size_t cap, const char *src, size_t n)
{
    size_t have = strlen(dst);
    cr_assert(have + n < cap, "header value too long for the test parser");
    memcpy(dst + have, src, n);
    dst[have + n] = '\0';
}

/*
 * Request line ("GET /path?query HTTP/1.1"; the target may contain spaces,
 * as in normalize-path/get-space), header lines ("Name:value"; a line that
 * starts with a space or tab continues the previous value, joined by one
 * space as RFC 9112 asks of obs-fold), a blank line, then the body.
 */
static void parse_req(struct http_req *r, const char *text, size_t len)
{
    memset(r, 0, sizeof(*r));
    const char *end = text + len;
    const char *eol = memchr(text, '\n', len);
    const char *line_end = eol ? eol : end;
    if (line_end > text && line_end[-1] == '\r')
        line_end--;

    const char *sp1 = memchr(text, ' ', (size_t)(line_end - text));
    cr_assert_not_null(sp1, "request line without a space");
    const char *sp2 = line_end;
    while (sp2 > sp1 && *sp2 != ' ')
        sp2--;
    cr_assert(sp2 > sp1 && strncmp(sp2, " HTTP/", 6) == 0, "request line without a version");
    copy_span(r->method, sizeof(r->method), text, (size_t)(sp1 - text), "method");
    const char *target = sp1 + 1;
    const char *q = memchr(target, '?', (size_t)(sp2 - target));
    copy_span(r->path, sizeof(r->path), target, (size_t)((q ? q : sp2) - target), "path");
    if (q != NULL)
        copy_span(r->query, sizeof(r->query), q + 1, (size_t)(sp2 - q - 1), "query");

    const char *p = eol ? eol + 1 : end;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        line_end = eol ? eol : end;
        const char *next = eol ? eol + 1 : end;
        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        if (line_end == p) { /* blank line: the body follows */
            r->body = next;
            r->body_len = (size_t)(end - next);
            return;
        }
        if (*p == ' ' || *p == '\t') {
            cr_assert(r->nheaders > 0, "continuation line before any header");
            char *v = r->values[r->nheaders - 1];
            append_span(v, sizeof(r->values[0]), " ", 1);
            append_span(v, sizeof(r->values[0]), p, (size_t)(line_end - p));
        } else {
            const char *colon = memchr(p, ':', (size_t)(line_end - p));
            cr_assert_not_null(colon, "header line without ':'");
            cr_assert(r->nheaders < MAX_HDRS, "too many headers for the test parser");
            copy_span(r->names[r->nheaders], sizeof(r->names[0]), p, (size_t)(colon - p),
                      "header name");
            copy_span(r->values[r->nheaders], sizeof(r->values[0]), colon + 1,
                      (size_t)(line_end - colon - 1), "header value");
            r->nheaders++;
        }
        p = next;
    }
}

/* ---- one suite case ------------------------------------------------------ */

static char *read_expected(const char *case_dir, const char *ext)
{
    const char *base = strrchr(case_dir, '/');
    base = base ? base + 1 : case_dir;
    char path[512];
    int n = snprintf(path, sizeof(path), SUITE_DIR "/%s/%s.%s", case_dir, base, ext);
    cr_assert(n > 0 && (size_t)n < sizeof(path));
    char *s = read_file(path, NULL);
    cr_assert_not_null(s,
                       "cannot read %s (the suite lives in tests/data/sigv4, relative to the "
                       "repository root, where the tests run)",
                       path);
    return s;
}

/* token: a session token the suite's signer adds as X-Amz-Security-Token
 * (NULL: the .req is signed as it is). sreq_sig: NULL when the case's .sreq
 * carries the case's own Authorization header, else the signature its header
 * has instead (see get-vanilla-with-session-token below). */
static void check_case(const char *case_dir, const char *token, const char *sreq_sig)
{
    char *text = read_expected(case_dir, "req");
    size_t len = strlen(text);
    char *creq_want = read_expected(case_dir, "creq");
    char *sts_want = read_expected(case_dir, "sts");
    char *authz_want = read_expected(case_dir, "authz");
    char *sreq = read_expected(case_dir, "sreq");

    struct http_req r;
    parse_req(&r, text, len);
    struct aws_sigv4_header hs[MAX_HDRS + 1];
    size_t nh = 0;
    for (size_t i = 0; i < r.nheaders; i++)
        hs[nh++] = (struct aws_sigv4_header){.name = r.names[i], .value = r.values[i]};
    if (token != NULL)
        hs[nh++] = (struct aws_sigv4_header){.name = "X-Amz-Security-Token", .value = token};
    const struct aws_sigv4_request req = {
        .method = r.method,
        .path = r.path,
        .query = r.query,
        .headers = hs,
        .nheaders = nh,
        .body = r.body,
        .body_len = r.body_len,
    };
    struct aws_credentials creds;
    suite_creds(&creds, token);

    struct gw_buf creq, sts;
    gw_buf_init(&creq, 64 * 1024);
    gw_buf_init(&sts, 4096);
    char signed_headers[512];
    cr_assert_eq(aws_sigv4_canonical_request(&creq, signed_headers, sizeof(signed_headers), &req,
                                             &SUITE_PARAMS),
                 GW_OK, "%s: canonical request failed", case_dir);
    cr_assert_str_eq(creq.data, creq_want, "%s: canonical request\n--- got\n%s\n--- want\n%s",
                     case_dir, creq.data, creq_want);
    cr_assert_eq(aws_sigv4_string_to_sign(&sts, creq.data, &SUITE_PARAMS), GW_OK);
    cr_assert_str_eq(sts.data, sts_want, "%s: string to sign\n--- got\n%s\n--- want\n%s", case_dir,
                     sts.data, sts_want);

    char authz[1024];
    cr_assert_eq(aws_sigv4_authorization(authz, sizeof(authz), &req, &creds, &SUITE_PARAMS), GW_OK);
    cr_assert_str_eq(authz, authz_want, "%s: Authorization\n--- got\n%s\n--- want\n%s", case_dir,
                     authz, authz_want);
    /* The signed request carries the same header. */
    char line[1100];
    const char *sig_at = strstr(authz, "Signature=");
    cr_assert_not_null(sig_at);
    cr_assert(snprintf(line, sizeof(line), "\nAuthorization: %.*sSignature=%s",
                       (int)(sig_at - authz), authz,
                       sreq_sig != NULL ? sreq_sig : sig_at + strlen("Signature=")) > 0);
    cr_assert_not_null(strstr(sreq, line), "%s: .sreq lacks %s", case_dir, line + 1);

    gw_buf_dispose(&creq);
    gw_buf_dispose(&sts);
    free(text);
    free(creq_want);
    free(sts_want);
    free(authz_want);
    free(sreq);
}

/*
 * Every case of the suite: test name, directory under SUITE_DIR, token,
 * sreq_sig. One case of the suite contradicts itself:
 * get-vanilla-with-session-token's .creq, .sts and .authz sign the token
 * (signature 07ec1639...), but the Authorization header in its .sreq has
 * get-vanilla's signature (5fa00fa3..., computed without the token) after
 * the right SignedHeaders. The .authz is the one consistent with the .creq
 * and .sts, so it is what is checked; the .sreq is checked to hold exactly
 * that stale signature, so a corrected suite shows up here.
 */
#define SUITE_CASES(X)                                                                             \
    X(get_header_key_duplicate, "get-header-key-duplicate", NULL, NULL)                            \
    X(get_header_value_multiline, "get-header-value-multiline", NULL, NULL)                        \
    X(get_header_value_order, "get-header-value-order", NULL, NULL)                                \
    X(get_header_value_trim, "get-header-value-trim", NULL, NULL)                                  \
    X(get_unreserved, "get-unreserved", NULL, NULL)                                                \
    X(get_utf8, "get-utf8", NULL, NULL)                                                            \
    X(get_vanilla, "get-vanilla", NULL, NULL)                                                      \
    X(get_vanilla_empty_query_key, "get-vanilla-empty-query-key", NULL, NULL)                      \
    X(get_vanilla_query, "get-vanilla-query", NULL, NULL)                                          \
    X(get_vanilla_query_order_encoded, "get-vanilla-query-order-encoded", NULL, NULL)              \
    X(get_vanilla_query_order_key, "get-vanilla-query-order-key", NULL, NULL)                      \
    X(get_vanilla_query_order_key_case, "get-vanilla-query-order-key-case", NULL, NULL)            \
    X(get_vanilla_query_order_value, "get-vanilla-query-order-value", NULL, NULL)                  \
    X(get_vanilla_query_unreserved, "get-vanilla-query-unreserved", NULL, NULL)                    \
    X(get_vanilla_utf8_query, "get-vanilla-utf8-query", NULL, NULL)                                \
    X(get_vanilla_with_session_token, "get-vanilla-with-session-token", VANILLA_TOKEN,             \
      "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")                          \
    X(normalize_path_get_relative, "normalize-path/get-relative", NULL, NULL)                      \
    X(normalize_path_get_relative_relative, "normalize-path/get-relative-relative", NULL, NULL)    \
    X(normalize_path_get_slash, "normalize-path/get-slash", NULL, NULL)                            \
    X(normalize_path_get_slash_dot_slash, "normalize-path/get-slash-dot-slash", NULL, NULL)        \
    X(normalize_path_get_slash_pointless_dot, "normalize-path/get-slash-pointless-dot", NULL,      \
      NULL)                                                                                        \
    X(normalize_path_get_slashes, "normalize-path/get-slashes", NULL, NULL)                        \
    X(normalize_path_get_space, "normalize-path/get-space", NULL, NULL)                            \
    X(normalize_path_get_special_character, "normalize-path/get-special-character", NULL, NULL)    \
    X(post_header_key_case, "post-header-key-case", NULL, NULL)                                    \
    X(post_header_key_sort, "post-header-key-sort", NULL, NULL)                                    \
    X(post_header_value_case, "post-header-value-case", NULL, NULL)                                \
    X(post_sts_header_after, "post-sts-token/post-sts-header-after", NULL, NULL)                   \
    X(post_sts_header_before, "post-sts-token/post-sts-header-before", NULL, NULL)                 \
    X(post_vanilla, "post-vanilla", NULL, NULL)                                                    \
    X(post_vanilla_empty_query_value, "post-vanilla-empty-query-value", NULL, NULL)                \
    X(post_vanilla_query, "post-vanilla-query", NULL, NULL)                                        \
    X(post_x_www_form_urlencoded, "post-x-www-form-urlencoded", NULL, NULL)                        \
    X(post_x_www_form_urlencoded_parameters, "post-x-www-form-urlencoded-parameters", NULL, NULL)

#define SUITE_TEST(name, dir, token, sreq_sig)                                                     \
    Test(aws_sigv4_suite, name)                                                                    \
    {                                                                                              \
        check_case(dir, token, sreq_sig);                                                          \
    }
SUITE_CASES(SUITE_TEST)

#define SUITE_DIR_NAME(name, dir, token, sreq_sig) dir,
static const char *const SUITE_CASE_DIRS[] = {SUITE_CASES(SUITE_DIR_NAME)};

/* post-sts-header-after: the token is sent but added after signing, so
 * credentials that hold one must not change the signature. */
Test(aws_sigv4_suite, a_token_in_the_credentials_alone_is_not_signed)
{
    struct aws_credentials creds;
    suite_creds(&creds, STS_TOKEN);
    const struct aws_sigv4_header hs[] = {{"Host", "example.amazonaws.com"},
                                          {"X-Amz-Date", "20150830T123600Z"}};
    const struct aws_sigv4_request req = {
        .method = "POST", .path = "/", .headers = hs, .nheaders = 2};
    char authz[512];
    cr_assert_eq(aws_sigv4_authorization(authz, sizeof(authz), &req, &creds, &SUITE_PARAMS), GW_OK);
    char *want = read_expected("post-sts-token/post-sts-header-after", "authz");
    cr_assert_str_eq(authz, want);
    free(want);
}

/* Counts the cases (directories holding a .req) under dir; fails on one
 * that has no Test above, so a new case cannot go unchecked. */
static size_t walk_suite(const char *dir, const char *rel, int depth)
{
    cr_assert(depth < 4, "the suite is nested deeper than expected at %s", dir);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s (the suite lives in tests/data/sigv4)", dir);
    size_t found = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024], sub[512];
        cr_assert(snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path));
        size_t nlen = strlen(e->d_name);
        if (nlen > 4 && strcmp(e->d_name + nlen - 4, ".req") == 0) {
            int listed = 0;
            for (size_t i = 0; i < GW_ARRAY_LEN(SUITE_CASE_DIRS); i++)
                listed |= strcmp(SUITE_CASE_DIRS[i], rel) == 0;
            cr_assert(listed, "suite case %s has no test in test_sigv4.c", rel);
            found++;
            continue;
        }
        DIR *probe = opendir(path);
        if (probe == NULL)
            continue; /* a plain file: LICENSE, NOTICE, readme.txt ... */
        cr_assert_eq(closedir(probe), 0);
        if (rel[0] != '\0')
            cr_assert(snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name) < (int)sizeof(sub));
        else
            cr_assert(snprintf(sub, sizeof(sub), "%s", e->d_name) < (int)sizeof(sub));
        found += walk_suite(path, sub, depth + 1);
    }
    cr_assert_eq(closedir(d), 0);
    return found;
}

Test(aws_sigv4_suite, every_case_of_the_suite_has_a_test)
{
    size_t found = walk_suite(SUITE_DIR, "", 0);
    cr_assert_eq(found, GW_ARRAY_LEN(SUITE_CASE_DIRS), "the suite has %zu cases, the tests %zu",
                 found, GW_ARRAY_LEN(SUITE_CASE_DIRS));
}

/* ---- aws_uri_encode ------------------------------------------------------- */

static void expect_encoded(const char *in, size_t len, int keep_slash, const char *want)
{
    struct gw_buf b;
    gw_buf_init(&b, 4096);
    cr_assert_eq(aws_uri_encode(&b, in, len, keep_slash), GW_OK);
    cr_assert_str_eq(b.data != NULL ? b.data : "", want);
    gw_buf_dispose(&b);
}

Test(aws_sigv4, uri_encode_passes_the_unreserved_set_unchanged)
{
    const char *u = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
    expect_encoded(u, strlen(u), 0, u);
}

Test(aws_sigv4, uri_encode_encodes_every_reserved_character_with_upper_case_hex)
{
    const char *r = " !\"#$%&'()*+,/:;<=>?@[\\]^`{|}";
    expect_encoded(r, strlen(r), 0,
                   "%20%21%22%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E%"
                   "60%7B%7C%7D");
}

Test(aws_sigv4, uri_encode_encodes_utf8_byte_by_byte)
{
    expect_encoded("\xe1\x88\xb4", 3, 0, "%E1%88%B4");
    expect_encoded("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, 0, "caf%C3%A9%20%F0%9F%98%80");
}

Test(aws_sigv4, uri_encode_keeps_slashes_only_when_asked)
{
    expect_encoded("a/b c/d", 7, 0, "a%2Fb%20c%2Fd");
    expect_encoded("a/b c/d", 7, 1, "a/b%20c/d");
}

Test(aws_sigv4, uri_encode_encodes_control_bytes_and_embedded_nul)
{
    expect_encoded("a\0b\n\x7f\xff", 6, 0, "a%00b%0A%7F%FF");
    expect_encoded("", 0, 0, "");
}

Test(aws_sigv4, uri_encode_appends_and_respects_the_buffer_maximum)
{
    struct gw_buf b;
    gw_buf_init(&b, 8);
    cr_assert_eq(gw_buf_adds(&b, "x="), GW_OK);
    cr_assert_eq(aws_uri_encode(&b, "a b", 3, 0), GW_OK);
    cr_assert_str_eq(b.data, "x=a%20b");
    cr_assert_eq(aws_uri_encode(&b, " ", 1, 0), GW_ETOOBIG);
    gw_buf_dispose(&b);
}

/* ---- aws_amz_date ------------------------------------------------------------ */

Test(aws_sigv4, amz_date_formats_utc_seconds)
{
    char d[17];
    aws_amz_date(d, 0);
    cr_assert_str_eq(d, "19700101T000000Z");
    aws_amz_date(d, 1440938160);
    cr_assert_str_eq(d, "20150830T123600Z");
    aws_amz_date(d, 1369353600);
    cr_assert_str_eq(d, "20130524T000000Z");
    aws_amz_date(d, 951868799); /* a leap day's last second */
    cr_assert_str_eq(d, "20000229T235959Z");
    aws_amz_date(d, 4107542400LL); /* 2100 is no leap year */
    cr_assert_str_eq(d, "21000301T000000Z");
    aws_amz_date(d, -1);
    cr_assert_str_eq(d, "19691231T235959Z");
    aws_amz_date(d, 253402300799LL);
    cr_assert_str_eq(d, "99991231T235959Z");
}

Test(aws_sigv4, amz_date_is_empty_outside_four_digit_years)
{
    char d[17] = "unchanged";
    aws_amz_date(d, 253402300800LL);
    cr_assert_str_eq(d, "");
    aws_amz_date(d, -62167219201LL);
    cr_assert_str_eq(d, "");
    aws_amz_date(d, -62167219200LL);
    cr_assert_str_eq(d, "00000101T000000Z");
}

/* ---- canonical request: details beyond the suite ----------------------- */

static const struct aws_sigv4_header HOST_ONLY[] = {{"host", "h.example"}};

/* The canonical URI and query of (path, query) under the given rules. */
static void expect_uri_query(const char *path, const char *query, int s3, const char *want_uri,
                             const char *want_query)
{
    struct aws_sigv4_params p = SUITE_PARAMS;
    p.s3_path_rules = s3;
    const struct aws_sigv4_request req = {
        .method = "GET", .path = path, .query = query, .headers = HOST_ONLY, .nheaders = 1};
    struct gw_buf b;
    gw_buf_init(&b, 8192);
    char sh[64];
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &p), GW_OK, "%s", path);
    char want[1024];
    cr_assert(snprintf(want, sizeof(want), "GET\n%s\n%s\nhost:h.example\n", want_uri, want_query) <
              (int)sizeof(want));
    cr_assert(strncmp(b.data, want, strlen(want)) == 0, "got\n%s\nwant prefix\n%s", b.data, want);
    gw_buf_dispose(&b);
}

Test(aws_sigv4, path_segments_are_encoded_once_more_except_under_s3_rules)
{
    expect_uri_query("/a%20b/c%2Fd", "", 0, "/a%2520b/c%252Fd", "");
    expect_uri_query("/a%20b/c%2Fd", "", 1, "/a%20b/c%2Fd", "");
    expect_uri_query("/caf\xc3\xa9/$x", "", 0, "/caf%C3%A9/%24x", "");
    expect_uri_query("", NULL, 0, "/", "");
    expect_uri_query("", NULL, 1, "/", "");
}

Test(aws_sigv4, path_dot_segments_and_empty_segments_are_removed_as_botocore_does)
{
    expect_uri_query("/a/b/../c", "", 0, "/a/c", "");
    expect_uri_query("/a/b/..", "", 0, "/a", "");
    expect_uri_query("/a/./", "", 0, "/a/", "");
    expect_uri_query("/../../a", "", 0, "/a", "");
    expect_uri_query("/a//b///", "", 0, "/a/b/", "");
    expect_uri_query("/..", "", 0, "/", "");
    expect_uri_query("/a/.b/..c/...", "", 0, "/a/.b/..c/...", "");
    expect_uri_query("/a/%2E/%2E%2E", "", 0, "/a/%252E/%252E%252E", "");
    /* S3 keys may contain all of these: signed as sent. */
    expect_uri_query("/a/./b/..//c", "", 1, "/a/./b/..//c", "");
}

Test(aws_sigv4, query_parameters_are_decoded_reencoded_and_sorted_by_key_then_value)
{
    expect_uri_query("/", "b=2&a=3&a=1&A=z", 0, "/", "A=z&a=1&a=3&b=2");
    expect_uri_query("/", "flag&x=", 0, "/", "flag=&x=");
    expect_uri_query("/", "k=a%20b&k2=a b&t=%7e%2a", 0, "/", "k=a%20b&k2=a%20b&t=~%2A");
    expect_uri_query("/", "plus=a+b&pct=100%&bad=%zz&eq=a=b", 0, "/",
                     "bad=%25zz&eq=a%3Db&pct=100%25&plus=a%2Bb");
    expect_uri_query("/", "a=1&&b=2&", 0, "/", "a=1&b=2");
    expect_uri_query("/", "%E1%88%B4=x&\xe1\x88\xb4=y&Z=0", 0, "/", "%E1%88%B4=x&%E1%88%B4=y&Z=0");
}

Test(aws_sigv4, header_values_are_trimmed_and_repeated_names_joined_in_order)
{
    const struct aws_sigv4_header hs[] = {
        {"X-B", "  two\t words  "}, {"host", "h"},      {"x-b", "second"},
        {"X-A", "a\r\n  b"},        {"X-Empty", "   "},
    };
    const struct aws_sigv4_request req = {.method = "PUT",
                                          .path = "/",
                                          .headers = hs,
                                          .nheaders = 5,
                                          .payload_hash = "UNSIGNED-PAYLOAD"};
    struct gw_buf b;
    gw_buf_init(&b, 8192);
    char sh[64];
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_OK);
    cr_assert_str_eq(b.data, "PUT\n/\n\nhost:h\nx-a:a b\nx-b:two words,second\nx-empty:\n\n"
                             "host;x-a;x-b;x-empty\nUNSIGNED-PAYLOAD");
    cr_assert_str_eq(sh, "host;x-a;x-b;x-empty");
    gw_buf_dispose(&b);
}

Test(aws_sigv4, canonical_request_refuses_missing_host_and_malformed_input)
{
    struct gw_buf b;
    gw_buf_init(&b, 8192);
    char sh[64];
    const struct aws_sigv4_header no_host[] = {{"x-amz-date", "20150830T123600Z"}};
    struct aws_sigv4_request req = {
        .method = "GET", .path = "/", .headers = no_host, .nheaders = 1};
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_EINVAL);
    cr_assert_eq(b.len, 0);

    const struct aws_sigv4_header bad_name[] = {{"host", "h"}, {"bad name", "v"}};
    req.headers = bad_name;
    req.nheaders = 2;
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_EINVAL);
    const struct aws_sigv4_header bad_value[] = {{"host", "h"}, {"x", "a\001b"}};
    req.headers = bad_value;
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_EINVAL);

    req.headers = HOST_ONLY;
    req.nheaders = 1;
    req.path = "relative";
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_EINVAL);
    req.path = "/a\nb";
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_EINVAL);
    req.path = "/";
    req.query = "a=\r\n";
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_EINVAL);
    req.query = NULL;
    req.method = "G T";
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_EINVAL);
    req.method = "GET";
    req.payload_hash = "abc\ndef";
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_EINVAL);
    gw_buf_dispose(&b);
}

Test(aws_sigv4, canonical_request_enforces_its_limits)
{
    struct gw_buf b;
    gw_buf_init(&b, 1 << 20);
    char sh[4096];
    struct aws_sigv4_header many[AWS_SIGV4_MAX_HEADERS + 1];
    for (size_t i = 0; i < GW_ARRAY_LEN(many); i++)
        many[i] = (struct aws_sigv4_header){"host", "h"};
    struct aws_sigv4_request req = {.method = "GET", .path = "/", .headers = many};
    req.nheaders = AWS_SIGV4_MAX_HEADERS;
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_OK);
    req.nheaders = AWS_SIGV4_MAX_HEADERS + 1;
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_ETOOBIG);

    /* the signed-header list must fit the caller's buffer */
    req.nheaders = 1;
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, 5, &req, &SUITE_PARAMS), GW_OK);
    cr_assert_str_eq(sh, "host");
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, 4, &req, &SUITE_PARAMS), GW_ETOOBIG);

    /* path segments and query parameters */
    char path[2 * (AWS_SIGV4_MAX_PATH_SEGMENTS + 1) + 1];
    for (size_t i = 0; i < AWS_SIGV4_MAX_PATH_SEGMENTS + 1; i++)
        memcpy(path + 2 * i, "/a", 2);
    path[sizeof(path) - 1] = '\0';
    req.path = path;
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_ETOOBIG);
    path[2 * AWS_SIGV4_MAX_PATH_SEGMENTS] = '\0';
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_OK);
    req.path = "/";
    char query[2 * (AWS_SIGV4_MAX_QUERY_PARAMS + 1)];
    for (size_t i = 0; i < AWS_SIGV4_MAX_QUERY_PARAMS + 1; i++)
        memcpy(query + 2 * i, "a&", 2);
    query[sizeof(query) - 1] = '\0';
    req.query = query;
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_ETOOBIG);
    query[2 * AWS_SIGV4_MAX_QUERY_PARAMS - 1] = '\0';
    cr_assert_eq(aws_sigv4_canonical_request(&b, sh, sizeof(sh), &req, &SUITE_PARAMS), GW_OK);

    /* and the output buffer's maximum */
    struct gw_buf small;
    gw_buf_init(&small, 16);
    req.query = NULL;
    cr_assert_eq(aws_sigv4_canonical_request(&small, sh, sizeof(sh), &req, &SUITE_PARAMS),
                 GW_ETOOBIG);
    gw_buf_dispose(&small);
    gw_buf_dispose(&b);
}

Test(aws_sigv4, string_to_sign_and_signature_refuse_invalid_parameters)
{
    struct gw_buf b;
    gw_buf_init(&b, 1024);
    struct aws_sigv4_params p = SUITE_PARAMS;
    p.amz_date = "2015-08-30T12:36:00Z";
    cr_assert_eq(aws_sigv4_string_to_sign(&b, "x", &p), GW_EINVAL);
    char sig[65] = "unchanged";
    aws_sigv4_signature(sig, "secret", "x", &p);
    cr_assert_str_eq(sig, "");
    p = SUITE_PARAMS;
    p.region = "us-east-1/evil";
    cr_assert_eq(aws_sigv4_string_to_sign(&b, "x", &p), GW_EINVAL);
    p = SUITE_PARAMS;
    p.service = "";
    cr_assert_eq(aws_sigv4_string_to_sign(&b, "x", &p), GW_EINVAL);
    gw_buf_dispose(&b);
}

/* The signature alone, from the suite's string to sign. */
Test(aws_sigv4, signature_matches_the_suite_vanilla_case)
{
    char *sts = read_expected("get-vanilla", "sts");
    char sig[65];
    aws_sigv4_signature(sig, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sts, &SUITE_PARAMS);
    cr_assert_str_eq(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    free(sts);
}

Test(aws_sigv4, authorization_reports_a_too_small_output_and_bad_credentials)
{
    struct aws_credentials creds;
    suite_creds(&creds, NULL);
    const struct aws_sigv4_request req = {
        .method = "GET", .path = "/", .headers = HOST_ONLY, .nheaders = 1};
    char out[64] = "unchanged";
    cr_assert_eq(aws_sigv4_authorization(out, sizeof(out), &req, &creds, &SUITE_PARAMS),
                 GW_ETOOBIG);
    cr_assert_str_eq(out, "");
    char big[512];
    creds.access_key_id[0] = '\0';
    cr_assert_eq(aws_sigv4_authorization(big, sizeof(big), &req, &creds, &SUITE_PARAMS), GW_EINVAL);
    suite_creds(&creds, NULL);
    creds.secret_access_key[0] = '\0';
    cr_assert_eq(aws_sigv4_authorization(big, sizeof(big), &req, &creds, &SUITE_PARAMS), GW_EINVAL);
}

/* ---- presigned URLs ------------------------------------------------------ */

static void s3_example(struct aws_credentials *c, struct aws_sigv4_params *p)
{
    memset(c, 0, sizeof(*c));
    cr_assert(snprintf(c->access_key_id, sizeof(c->access_key_id), "AKIAIOSFODNN7EXAMPLE") > 0);
    cr_assert(snprintf(c->secret_access_key, sizeof(c->secret_access_key), "%s",
                       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") > 0);
    *p = (struct aws_sigv4_params){
        .region = "us-east-1", .service = "s3", .amz_date = "20130524T000000Z", .s3_path_rules = 1};
}

/* docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html */
Test(aws_sigv4, presign_reproduces_the_s3_example_from_the_aws_documentation)
{
    struct aws_credentials creds;
    struct aws_sigv4_params p;
    s3_example(&creds, &p);
    struct gw_buf url;
    gw_buf_init(&url, 4096);
    cr_assert_eq(aws_sigv4_presign(&url, "GET", "https://examplebucket.s3.amazonaws.com",
                                   "examplebucket.s3.amazonaws.com", "/test.txt", NULL, 86400,
                                   &creds, &p),
                 GW_OK);
    cr_assert_str_eq(url.data,
                     "https://examplebucket.s3.amazonaws.com/test.txt"
                     "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                     "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_"
                     "request"
                     "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                     "&X-Amz-Signature="
                     "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    gw_buf_dispose(&url);
}

Test(aws_sigv4, presign_keeps_the_callers_query_first_and_signs_the_token_before_the_signature)
{
    struct aws_credentials creds;
    struct aws_sigv4_params p;
    s3_example(&creds, &p);
    cr_assert(snprintf(creds.session_token, sizeof(creds.session_token), "tok/en+=") > 0);
    struct gw_buf url;
    gw_buf_init(&url, 4096);
    cr_assert_eq(gw_buf_adds(&url, "prefix:"), GW_OK);
    cr_assert_eq(aws_sigv4_presign(&url, "PUT", "http://127.0.0.1:5000", "127.0.0.1:5000",
                                   "/bucket/my%20key", "uploadId=7&partNumber=2", 60, &creds, &p),
                 GW_OK);
    const char *want_prefix =
        "prefix:http://127.0.0.1:5000/bucket/my%20key?uploadId=7&partNumber=2"
        "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
        "&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-Signature=";
    cr_assert(strncmp(url.data, want_prefix, strlen(want_prefix)) == 0, "%s", url.data);
    const char *sig = url.data + strlen(want_prefix);
    cr_assert_eq(strlen(sig), 64);
    cr_assert_eq(strspn(sig, "0123456789abcdef"), 64);
    gw_buf_dispose(&url);
}

Test(aws_sigv4, presign_refuses_bad_expiry_and_leaves_the_output_unchanged)
{
    struct aws_credentials creds;
    struct aws_sigv4_params p;
    s3_example(&creds, &p);
    struct gw_buf url;
    gw_buf_init(&url, 4096);
    cr_assert_eq(gw_buf_adds(&url, "keep"), GW_OK);
    cr_assert_eq(aws_sigv4_presign(&url, "GET", "https://h", "h", "/k", NULL, 0, &creds, &p),
                 GW_EINVAL);
    cr_assert_eq(aws_sigv4_presign(&url, "GET", "https://h", "h", "/k", NULL, 604801, &creds, &p),
                 GW_EINVAL);
    cr_assert_eq(aws_sigv4_presign(&url, "GET", "https://h", "h", "/k", NULL, 604800, &creds, &p),
                 GW_OK);
    gw_buf_reset(&url);
    cr_assert_eq(gw_buf_adds(&url, "keep"), GW_OK);
    struct gw_buf tiny;
    gw_buf_init(&tiny, 64);
    cr_assert_eq(gw_buf_adds(&tiny, "keep"), GW_OK);
    cr_assert_eq(aws_sigv4_presign(&tiny, "GET", "https://h", "h", "/k", NULL, 60, &creds, &p),
                 GW_ETOOBIG);
    cr_assert_str_eq(tiny.data, "keep");
    cr_assert_eq(tiny.len, 4);
    gw_buf_dispose(&tiny);
    gw_buf_dispose(&url);
}
