/*
 * server/mail.c: the message it formats, and sending it to a real SMTP
 * server. tests/tools/smtp_sink.py (aiosmtpd, run with $MLGW_VENV/bin/python,
 * else build/venv/bin/python from the repository root, where the tests run)
 * listens on loopback and stores what it accepts; each test starts its own
 * with the behaviour it needs (STARTTLS offered or required, AUTH, a refused
 * recipient, temporary failures) and reads the stored messages back. The
 * STARTTLS certificates come from a CA made at test time with OpenSSL, so
 * a missing or wrong CA shows that verification stays on. A missing
 * interpreter is a failure, not a skip.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/id.h"
#include "common/parse.h"
#include "common/time.h"
#include "jobs/mail.h"

#include "common/poison.h"

#define SINK_SCRIPT  "tests/tools/smtp_sink.py"
#define PASSWORD     "s3cret-Pa55w0rd"
#define WRONG_PASS   "wr0ng-Pa55w0rd"
#define SINK_WAIT_MS 20000

static char tmpdir[256];
static pid_t sink_pid = -1;
static char sink_url[64];

/* ---- files and directories ---- */

static void path_in(char *out, size_t len, const char *name)
{
    int n = snprintf(out, len, "%s/%s", tmpdir, name);
    cr_assert(n > 0 && (size_t)n < len, "path too long");
}

/* The whole file (new: free), NULL when it cannot be opened. */
static char *slurp(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct gw_buf b;
    gw_buf_init(&b, 4 * 1024 * 1024);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cr_assert_eq(gw_buf_add(&b, chunk, n), GW_OK, "%s is too big", path);
    cr_assert_eq(fclose(f), 0);
    if (len_out != NULL)
        *len_out = b.len;
    return gw_buf_steal(&b);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        int n = snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(p))
            continue;
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            (void)unlink(p);
    }
    (void)closedir(d);
    (void)rmdir(dir);
}

/* ---- the sink process ---- */

static void python_path(char *out, size_t len)
{
    const char *venv = getenv("MLGW_VENV");
    int n = (venv != NULL && venv[0] != '\0') ? snprintf(out, len, "%s/bin/python", venv)
                                              : snprintf(out, len, "build/venv/bin/python");
    cr_assert(n > 0 && (size_t)n < len, "interpreter path too long");
    cr_assert(access(out, X_OK) == 0,
              "no Python interpreter at %s (MLGW_VENV=%s): the mail tests need the test venv "
              "with aiosmtpd (make venv, or set MLGW_VENV to a venv that has it)",
              out, venv != NULL ? venv : "(unset)");
    cr_assert(access(SINK_SCRIPT, R_OK) == 0,
              "%s not found: run the tests from the repository root", SINK_SCRIPT);
}

static void sink_log(char *out, size_t len)
{
    char p[512];
    path_in(p, sizeof(p), "sink.log");
    char *log = slurp(p, NULL);
    gw_fmt(out, len, "%s", log != NULL ? log : "(no log)");
    free(log);
}

static void sink_stop(void)
{
    if (sink_pid <= 0)
        return;
    (void)kill(sink_pid, SIGTERM);
    int st;
    for (int i = 0; i < 100; i++) { /* 5 s for a clean exit */
        if (waitpid(sink_pid, &st, WNOHANG) == sink_pid) {
            sink_pid = -1;
            return;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    (void)kill(sink_pid, SIGKILL);
    (void)waitpid(sink_pid, &st, 0);
    sink_pid = -1;
}

/* Starts smtp_sink.py with the extra arguments (NULL-terminated) and waits
 * until it listens; sink_url is then smtp://127.0.0.1:PORT. */
static void sink_start(const char *const *extra)
{
    char py[512], port_file[512], maildir[512], logf[512];
    python_path(py, sizeof(py));
    path_in(port_file, sizeof(port_file), "port");
    path_in(maildir, sizeof(maildir), "mail");
    path_in(logf, sizeof(logf), "sink.log");

    const char *args[32] = {py, SINK_SCRIPT, "--port-file", port_file, "--maildir", maildir};
    size_t n = 6;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        cr_assert(n + 1 < GW_ARRAY_LEN(args));
        args[n++] = extra[i];
    }
    char *argv[GW_ARRAY_LEN(args)] = {NULL}; /* execv wants char *: copies */
    for (size_t i = 0; i < n; i++)
        cr_assert_not_null(argv[i] = strdup(args[i]));

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            (void)dup2(fd, STDOUT_FILENO);
            (void)dup2(fd, STDERR_FILENO);
            (void)close(fd);
        }
        /* The sink dies with the test process, even one that crashed. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    cr_assert(pid > 0, "fork: %s", strerror(errno));
    sink_pid = pid;

    long long port = 0;
    for (int waited = 0; port == 0; waited += 20) {
        char *txt = slurp(port_file, NULL);
        if (txt != NULL) {
            txt[strcspn(txt, "\n")] = '\0';
            cr_assert_eq(gw_parse_ll(&port, txt, 1, 65535), GW_OK, "port file: %s", txt);
            free(txt);
            break;
        }
        int st;
        if (waitpid(sink_pid, &st, WNOHANG) == sink_pid) {
            sink_pid = -1;
            char log[2048];
            sink_log(log, sizeof(log));
            cr_assert_fail("smtp_sink.py exited (status %d) before listening:\n%s", st, log);
        }
        cr_assert(waited < SINK_WAIT_MS, "smtp_sink.py did not listen within %d ms", SINK_WAIT_MS);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    gw_fmt(sink_url, sizeof(sink_url), "smtp://127.0.0.1:%lld", port);
}

/* ---- what the sink stored ---- */

static size_t mail_count(void)
{
    char dir[512];
    path_in(dir, sizeof(dir), "mail");
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += l > 4 && strcmp(e->d_name + l - 4, ".eml") == 0;
    }
    (void)closedir(d);
    return n;
}

/* Message number i (from 1), raw (new: free); *meta gets its envelope (new: json_decref). */
static char *stored_mail(int i, json_t **meta)
{
    char name[32], p[512];
    gw_fmt(name, sizeof(name), "mail/%04d.json", i);
    path_in(p, sizeof(p), name);
    json_error_t jerr;
    *meta = json_load_file(p, 0, &jerr);
    cr_assert_not_null(*meta, "%s: %s", p, jerr.text);
    gw_fmt(name, sizeof(name), "mail/%04d.eml", i);
    path_in(p, sizeof(p), name);
    char *raw = slurp(p, NULL);
    cr_assert_not_null(raw, "no message %s", p);
    return raw;
}

static int meta_has_rcpt(const json_t *meta, const char *addr)
{
    const json_t *rcpts = json_object_get(meta, "rcpt_tos");
    size_t i;
    const json_t *v;
    json_array_foreach(rcpts, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), addr) == 0)
            return 1;
    }
    return 0;
}

/* The unfolded value of header name (new: free), NULL when absent; asserts
 * it occurs at most once and that every header line is within 998 bytes. */
static char *header(const char *msg, const char *name)
{
    const char *end = strstr(msg, "\r\n\r\n");
    cr_assert_not_null(end, "message without a blank line after its headers");
    size_t nl = strlen(name);
    char *found = NULL;
    for (const char *line = msg; line < end + 2;) {
        const char *eol = strstr(line, "\r\n");
        cr_assert((size_t)(eol - line) <= 998, "header line over 998 bytes");
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            cr_assert_null(found, "header %s twice", name);
            struct gw_buf v;
            gw_buf_init(&v, 8192);
            const char *p = line + nl + 1;
            while (*p == ' ')
                p++;
            for (;;) {
                cr_assert_eq(gw_buf_add(&v, p, (size_t)(eol - p)), GW_OK);
                if (eol[2] != ' ' && eol[2] != '\t')
                    break;
                p = eol + 2; /* unfold: drop the CRLF, keep the blank */
                eol = strstr(p, "\r\n");
            }
            found = gw_buf_steal(&v);
            line = eol + 2;
            continue;
        }
        line = eol + 2;
    }
    return found;
}

static const char *body_of(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    cr_assert_not_null(end);
    return end + 4;
}

static int utf8_valid(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l = p[i] < 0x80         ? 1
                   : (p[i] >> 5) == 6  ? 2
                   : (p[i] >> 4) == 14 ? 3
                   : (p[i] >> 3) == 30 ? 4
                                       : 0;
        if (l == 0 || i + l > n)
            return 0;
        for (size_t k = 1; k < l; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
        i += l;
    }
    return 1;
}

/* Decodes a header value made of RFC 2047 UTF-8 B words (new: free),
 * asserting each is at most 75 characters and holds whole characters. */
static char *rfc2047_decode(const char *v)
{
    struct gw_buf out;
    gw_buf_init(&out, 8192);
    for (const char *p = v; *p != '\0';) {
        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        cr_assert(strncasecmp(p, "=?UTF-8?B?", 10) == 0, "not an encoded word: %s", p);
        const char *s = p + 10, *e = strstr(s, "?=");
        cr_assert_not_null(e);
        size_t n = (size_t)(e - s);
        cr_assert(n % 4 == 0 && n <= 100, "bad base64 length %zu", n);
        cr_assert(e + 2 - p <= 75, "encoded word over 75 characters: %.*s", (int)(e + 2 - p), p);
        unsigned char dec[80];
        int dl = EVP_DecodeBlock(dec, (const unsigned char *)s, (int)n);
        cr_assert(dl >= 0, "bad base64 in %s", p);
        if (n > 0 && s[n - 1] == '=')
            dl--;
        if (n > 1 && s[n - 2] == '=')
            dl--;
        cr_assert(utf8_valid(dec, (size_t)dl), "encoded word splits a character: %.*s",
                  (int)(e + 2 - p), p);
        cr_assert_eq(gw_buf_add(&out, dec, (size_t)dl), GW_OK);
        p = e + 2;
    }
    return gw_buf_steal(&out);
}

static int is_hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* ---- certificates ---- */

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    cr_assert_not_null(e, "extension %d=%s", nid, value);
    cr_assert_eq(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *san)
{
    X509 *x = X509_new();
    cr_assert_not_null(x);
    unsigned char serial[8];
    cr_assert_eq(gw_random_bytes(serial, sizeof(serial)), GW_OK);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    cr_assert_not_null(bn);
    cr_assert_not_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    cr_assert_eq(X509_set_version(x, X509_VERSION_3), 1);
    cr_assert_not_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    cr_assert_not_null(X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600));
    cr_assert_eq(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    cr_assert_eq(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                            (const unsigned char *)"ml-gateway tests", -1, -1, 0),
                 1);
    cr_assert_eq(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    cr_assert_eq(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    if (issuer == NULL) {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    } else {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature");
        add_ext(x, &ctx, NID_ext_key_usage, "serverAuth");
        add_ext(x, &ctx, NID_subject_key_identifier, "hash");
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
        add_ext(x, &ctx, NID_subject_alt_name, san);
    }
    cr_assert(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *name, X509 *cert, EVP_PKEY *key)
{
    char p[512];
    path_in(p, sizeof(p), name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s: %s", p, strerror(errno));
    if (cert != NULL)
        cr_assert_eq(PEM_write_X509(f, cert), 1);
    if (key != NULL)
        cr_assert_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    cr_assert_eq(fclose(f), 0);
}

/* A fresh CA (ca.pem) and a server certificate it signed for san
 * (server.pem, server.key) in tmpdir. */
static void make_certs(const char *san)
{
    EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert(ca_key != NULL && srv_key != NULL);
    X509 *ca = make_cert(ca_key, "ml-gateway test CA", NULL, ca_key, NULL);
    X509 *srv = make_cert(srv_key, "127.0.0.1", ca, ca_key, san);
    write_pem("ca.pem", ca, NULL);
    write_pem("server.pem", srv, NULL);
    write_pem("server.key", NULL, srv_key);
    X509_free(srv);
    X509_free(ca);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(ca_key);
}

/* ---- fixtures ---- */

static char ca_path[512], cert_path[512], key_path[512];

static void setup(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    const char *base = getenv("TMPDIR");
    gw_fmt(tmpdir, sizeof(tmpdir), "%s/mlgw-mail-XXXXXX",
           base != NULL && base[0] != '\0' ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    path_in(ca_path, sizeof(ca_path), "ca.pem");
    path_in(cert_path, sizeof(cert_path), "server.pem");
    path_in(key_path, sizeof(key_path), "server.key");
}

static void teardown(void)
{
    sink_stop();
    if (tmpdir[0] != '\0')
        rm_tree(tmpdir);
    curl_global_cleanup();
}

TestSuite(server_mail, .init = setup, .fini = teardown);

static const char *const two_to[] = {"ops@example.org", "ml@example.net"};

static struct jobs_mail simple_mail(void)
{
    static const char *const to[] = {"ops@example.org"};
    struct jobs_mail m = {.from = "ml-gateway <noreply@example.com>",
                          .to = to,
                          .nto = 1,
                          .subject = "Job 42 finished",
                          .body = "Hello.\n"};
    return m;
}

static struct jobs_mail_opts plain_opts(void)
{
    struct jobs_mail_opts o = {.url = sink_url, .tls = JOBS_SMTP_TLS_OFF, .timeout_ms = 10000};
    return o;
}

/* ---- the message ---- */

Test(server_mail, format_writes_every_header_in_order_and_the_body_with_crlf)
{
    struct jobs_mail m = {.from = "ml-gateway <noreply@example.com>",
                          .to = two_to,
                          .nto = 2,
                          .subject = "Job 42 finished",
                          .body = "Hello,\nthe job finished.\n"};
    char *s = jobs_mail_format(&m, 1700000000, "abc123@example.com");
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "From: ml-gateway <noreply@example.com>\r\n"
                        "To: ops@example.org, ml@example.net\r\n"
                        "Subject: Job 42 finished\r\n"
                        "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                        "Message-ID: <abc123@example.com>\r\n"
                        "MIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: 8bit\r\n"
                        "\r\n"
                        "Hello,\r\n"
                        "the job finished.\r\n");
    free(s);
}

Test(server_mail, format_dates_are_rfc5322_in_utc_with_english_names)
{
    struct jobs_mail m = simple_mail();
    char *s = jobs_mail_format(&m, 0, "a@b");
    char *d = header(s, "Date");
    cr_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 +0000");
    free(d);
    free(s);
    s = jobs_mail_format(&m, 951782400, "a@b"); /* leap day 2000 */
    d = header(s, "Date");
    cr_assert_str_eq(d, "Tue, 29 Feb 2000 00:00:00 +0000");
    free(d);
    free(s);
}

Test(server_mail, format_normalises_cr_lf_and_crlf_and_ends_the_body_with_crlf)
{
    struct jobs_mail m = simple_mail();
    m.body = "a\nb\r\nc\rd\r\n\r\n.\n..x";
    char *s = jobs_mail_format(&m, 0, "a@b");
    cr_assert_str_eq(body_of(s), "a\r\nb\r\nc\r\nd\r\n\r\n.\r\n..x\r\n");
    free(s);
    m.body = "";
    s = jobs_mail_format(&m, 0, "a@b");
    cr_assert_str_eq(body_of(s), "");
    free(s);
    m.body = NULL;
    s = jobs_mail_format(&m, 0, "a@b");
    cr_assert_str_eq(body_of(s), "");
    free(s);
}

Test(server_mail, format_replaces_invalid_utf8_in_the_body_and_breaks_lines_over_998_bytes)
{
    struct jobs_mail m = simple_mail();
    m.body = "ok \xff\xc3( \xed\xa0\x80 end";
    char *s = jobs_mail_format(&m, 0, "a@b");
    cr_assert_str_eq(body_of(s), "ok \xef\xbf\xbd\xef\xbf\xbd( \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                 " end\r\n");
    free(s);
    /* A truncated sequence is one maximal subpart: one U+FFFD, as in the job log. */
    m.body = "cut \xe2\x82( here";
    s = jobs_mail_format(&m, 0, "a@b");
    cr_assert_str_eq(body_of(s), "cut \xef\xbf\xbd( here\r\n");
    free(s);

    char *big = malloc(1201);
    cr_assert_not_null(big);
    for (size_t i = 0; i < 1200; i += 3)
        memcpy(big + i, "\xe2\x82\xac", 3); /* 400 euro signs */
    big[1200] = '\0';
    m.body = big;
    s = jobs_mail_format(&m, 0, "a@b");
    const char *b = body_of(s);
    const char *eol = strstr(b, "\r\n");
    cr_assert_eq((size_t)(eol - b), 996, "first line is %zu bytes", (size_t)(eol - b));
    cr_assert_eq(strlen(eol + 2), 204 + 2); /* the other 68 signs, none of them cut */
    cr_assert_str_eq(eol + 2 + 204, "\r\n");
    free(s);

    memset(big, 'a', 1200); /* ASCII: cut at exactly 998 */
    s = jobs_mail_format(&m, 0, "a@b");
    b = body_of(s);
    cr_assert_eq((size_t)(strstr(b, "\r\n") - b), 998);
    cr_assert_eq(strlen(b), 998 + 2 + 202 + 2);
    free(s);
    free(big);
}

Test(server_mail, format_keeps_short_ascii_subjects_and_encodes_utf8_ones_per_rfc2047)
{
    struct jobs_mail m = simple_mail();
    m.subject = "Gr\xc3\xbc\xc3\x9f"
                "e";
    char *s = jobs_mail_format(&m, 0, "a@b");
    char *subj = header(s, "Subject");
    cr_assert_str_eq(subj, "=?UTF-8?B?R3LDvMOfZQ==?=");
    free(subj);
    free(s);

    m.subject = "a =?UTF-8?B?Zm9v?= lookalike"; /* would be decoded: encode it */
    s = jobs_mail_format(&m, 0, "a@b");
    subj = header(s, "Subject");
    char *dec = rfc2047_decode(subj);
    cr_assert_str_eq(dec, m.subject);
    free(dec);
    free(subj);
    free(s);
}

Test(server_mail, format_splits_long_subjects_into_words_that_keep_characters_whole_or_folds_ascii)
{
    struct jobs_mail m = simple_mail();
    /* 3-byte and 4-byte characters, so cuts at fixed byte counts would split them. */
    m.subject = "Job \xe2\x80\x9c"
                "r\xc3\xa9sum\xc3\xa9\xe2\x80\x9d finished \xe2\x9c\x93 \xe2\x80\x94 "
                "\xe5\xae\x8c\xe4\xba\x86\xe3\x81\x97\xe3\x81\xbe\xe3\x81\x97\xe3\x81\x9f "
                "\xf0\x9f\x8e\x89\xf0\x9f\x8e\x89\xf0\x9f\x8e\x89 and a long plain tail to wrap";
    char *s = jobs_mail_format(&m, 0, "a@b");
    cr_assert_not_null(s);
    const char *start = strstr(s, "Subject:"), *end = strstr(start, "\r\nDate:");
    int lines = 0;
    for (const char *l = start; l < end; lines++) {
        const char *eol = strstr(l, "\r\n");
        cr_assert((size_t)(eol - l) <= 78, "line over 78: %.*s", (int)(eol - l), l);
        l = eol + 2;
    }
    cr_assert_gt(lines, 1);
    char *subj = header(s, "Subject");
    char *dec = rfc2047_decode(subj);
    cr_assert_str_eq(dec, m.subject);
    free(dec);
    free(subj);
    free(s);

    /* Long ASCII stays readable: folded before blanks, and unfolding gives it back. */
    m.subject = "[ml-gateway] SUCCEEDED: job 01a22429-8619-75a4-90bc-3da40c49c5bd "
                "(s3://models/train/resnet50-finetune.py) \tdone  ";
    s = jobs_mail_format(&m, 0, "a@b");
    start = strstr(s, "Subject: [ml-gateway] SUCCEEDED: job ");
    cr_assert_not_null(start, "%s", s);
    end = strstr(start, "\r\nDate:");
    lines = 0;
    for (const char *l = start; l < end; lines++) {
        const char *eol = strstr(l, "\r\n");
        cr_assert((size_t)(eol - l) <= 78, "line over 78: %.*s", (int)(eol - l), l);
        cr_assert(l == start || *l == ' ' || *l == '\t', "continuation without a blank");
        l = eol + 2;
    }
    cr_assert_eq(lines, 2);
    subj = header(s, "Subject");
    cr_assert_str_eq(subj, m.subject);
    free(subj);
    free(s);
}

Test(server_mail, format_quotes_or_encodes_display_names_and_takes_bare_addresses)
{
    static const struct {
        const char *from, *want;
    } cases[] = {
        {"noreply@example.com", "noreply@example.com"},
        {"  <noreply@example.com>  ", "noreply@example.com"},
        {"Gateway, ML <a@example.com>", "\"Gateway, ML\" <a@example.com>"},
        {"\"Gateway, ML\" <a@example.com>", "\"Gateway, ML\" <a@example.com>"},
        {"\"say \\\"hi\\\"\" <a@example.com>", "\"say \\\"hi\\\"\" <a@example.com>"},
        {"Zo\xc3\xab <a@example.com>", "=?UTF-8?B?Wm/Dqw==?= <a@example.com>"},
        {"a\"b <a@example.com>", "\"a\\\"b\" <a@example.com>"}, /* a stray quote gets quoted */
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        struct jobs_mail m = simple_mail();
        m.from = cases[i].from;
        char *s = jobs_mail_format(&m, 0, NULL);
        cr_assert_not_null(s, "from %s refused", cases[i].from);
        char *f = header(s, "From");
        cr_assert_str_eq(f, cases[i].want);
        free(f);
        free(s);
    }
}

Test(server_mail, format_makes_a_random_message_id_at_the_senders_domain)
{
    struct jobs_mail m = simple_mail();
    char *s1 = jobs_mail_format(&m, 0, NULL), *s2 = jobs_mail_format(&m, 0, NULL);
    char *id1 = header(s1, "Message-ID"), *id2 = header(s2, "Message-ID");
    cr_assert_eq(strlen(id1), 1 + 32 + strlen("@example.com>"), "%s", id1);
    cr_assert(id1[0] == '<' && is_hex_lower(id1 + 1, 32), "%s", id1);
    cr_assert_str_eq(id1 + 33, "@example.com>");
    cr_assert_str_neq(id1, id2);
    free(id1);
    free(id2);
    free(s1);
    free(s2);
}

Test(server_mail, format_refuses_header_injection_and_what_is_not_an_address)
{
    static const char *const bad_from[] = {
        "noreply@example.com\r\nBcc: victim@example.org",
        "ml\r\n gateway <noreply@example.com>",
        "ml\ngateway <noreply@example.com>",
        "ml-gateway <noreply@example.com> trailing",
        "ml-gateway <noreply@example.com",
        "noreply",
        "nobody@exa mple.com",
        "",
    };
    static const char *const bad_to[] = {
        "ops@example.org\r\nBcc: victim@example.org",
        "ops@example.org\n",
        "ops@example.org> NOTIFY=NEVER",
        "<ops@example.org>",
        "Ops <ops@example.org>",
        "ops@@example.org",
        "ops@example..org",
        ".ops@example.org",
        "op s@example.org",
        "ops@-example.org",
        "\xc3\xb6ps@example.org",
        "",
    };
    static const char *const bad_subject[] = {
        "Hello\r\nBcc: victim@example.org",
        "Hello\nBcc: victim@example.org",
        "Hello\r",
        "bell \a",
        "bad utf8 \xc3",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad_from); i++) {
        struct jobs_mail m = simple_mail();
        m.from = bad_from[i];
        char *s = jobs_mail_format(&m, 0, NULL);
        cr_assert_null(s, "from %s accepted", bad_from[i]);
    }
    for (size_t i = 0; i < GW_ARRAY_LEN(bad_to); i++) {
        struct jobs_mail m = simple_mail();
        const char *to[] = {"fine@example.org", bad_to[i]};
        m.to = to;
        m.nto = 2;
        char *s = jobs_mail_format(&m, 0, NULL);
        cr_assert_null(s, "recipient %s accepted", bad_to[i]);
    }
    for (size_t i = 0; i < GW_ARRAY_LEN(bad_subject); i++) {
        struct jobs_mail m = simple_mail();
        m.subject = bad_subject[i];
        char *s = jobs_mail_format(&m, 0, NULL);
        cr_assert_null(s, "subject %s accepted", bad_subject[i]);
    }
    struct jobs_mail m = simple_mail();
    m.nto = 0;
    cr_assert_null(jobs_mail_format(&m, 0, NULL));
}

/* ---- sending ---- */

Test(server_mail, plain_send_delivers_exact_headers_and_a_body_whose_dot_lines_survive)
{
    sink_start(NULL);
    struct jobs_mail_opts o = plain_opts();
    struct jobs_mail m = simple_mail();
    m.subject = "Job 42 finished";
    m.body = "Hello,\n.leading dot\n.\n..two dots\nend";
    struct gw_err err = {0};
    long long before = (long long)time(NULL);
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    long long after = (long long)time(NULL);

    cr_assert_eq(mail_count(), 1);
    json_t *meta;
    char *raw = stored_mail(1, &meta);
    cr_assert_str_eq(json_string_value(json_object_get(meta, "mail_from")), "noreply@example.com");
    cr_assert_eq(json_array_size(json_object_get(meta, "rcpt_tos")), 1);
    cr_assert(meta_has_rcpt(meta, "ops@example.org"));
    cr_assert(json_is_false(json_object_get(meta, "tls")));

    char *v = header(raw, "From");
    cr_assert_str_eq(v, "ml-gateway <noreply@example.com>");
    free(v);
    v = header(raw, "To");
    cr_assert_str_eq(v, "ops@example.org");
    free(v);
    v = header(raw, "Subject");
    cr_assert_str_eq(v, "Job 42 finished");
    free(v);
    v = header(raw, "MIME-Version");
    cr_assert_str_eq(v, "1.0");
    free(v);
    v = header(raw, "Content-Type");
    cr_assert_str_eq(v, "text/plain; charset=utf-8");
    free(v);
    v = header(raw, "Content-Transfer-Encoding");
    cr_assert_str_eq(v, "8bit");
    free(v);

    v = header(raw, "Date");
    char wday[4], mon[4];
    int day, year, hh, mm, ss;
    cr_assert_eq(strlen(v), 31, "Date: %s", v);
    cr_assert_eq(sscanf(v, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d +0000", wday, &day, mon,
                        &year, &hh, &mm, &ss),
                 7, "Date: %s", v);
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *mp = strstr(months, mon);
    cr_assert(mp != NULL && (mp - months) % 3 == 0, "month %s", mon);
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = (int)((mp - months) / 3),
                    .tm_mday = day,
                    .tm_hour = hh,
                    .tm_min = mm,
                    .tm_sec = ss};
    long long t = (long long)timegm(&tm);
    cr_assert(t >= before && t <= after, "Date %s is not the time of sending", v);
    static const char days[] = "SunMonTueWedThuFriSat";
    cr_assert_eq(strncmp(days + 3 * tm.tm_wday, wday, 3), 0, "weekday in %s", v);
    free(v);

    v = header(raw, "Message-ID");
    cr_assert(strlen(v) == 46 && v[0] == '<' && is_hex_lower(v + 1, 32) &&
                  strcmp(v + 33, "@example.com>") == 0,
              "Message-ID: %s", v);
    free(v);

    cr_assert_str_eq(body_of(raw), "Hello,\r\n.leading dot\r\n.\r\n..two dots\r\nend\r\n");
    free(raw);
    json_decref(meta);
}

Test(server_mail, several_recipients_get_one_message_in_one_transaction)
{
    sink_start(NULL);
    struct jobs_mail_opts o = plain_opts();
    static const char *const to[] = {"ops@example.org", "ml@example.net", "oncall@example.com"};
    struct jobs_mail m = simple_mail();
    m.to = to;
    m.nto = 3;
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(mail_count(), 1);
    json_t *meta;
    char *raw = stored_mail(1, &meta);
    cr_assert_eq(json_array_size(json_object_get(meta, "rcpt_tos")), 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert(meta_has_rcpt(meta, to[i]), "%s not in the envelope", to[i]);
    char *v = header(raw, "To");
    cr_assert_str_eq(v, "ops@example.org, ml@example.net, oncall@example.com");
    free(v);
    free(raw);
    json_decref(meta);
}

Test(server_mail, utf8_subject_arrives_rfc2047_encoded_and_decodes_back)
{
    sink_start(NULL);
    struct jobs_mail_opts o = plain_opts();
    struct jobs_mail m = simple_mail();
    m.subject = "Auftrag \xe2\x80\x9e"
                "Gr\xc3\xb6\xc3\x9f"
                "e\xe2\x80\x9c fertig \xe2\x9c\x93 \xe5\xae\x8c\xe4\xba\x86";
    m.body = "Gr\xc3\xbc\xc3\x9f"
             "e \xe2\x80\x94 8bit body\n";
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    json_t *meta;
    char *raw = stored_mail(1, &meta);
    char *v = header(raw, "Subject");
    cr_assert(strncmp(v, "=?UTF-8?B?", 10) == 0, "Subject: %s", v);
    char *dec = rfc2047_decode(v);
    cr_assert_str_eq(dec, m.subject);
    cr_assert_str_eq(body_of(raw), "Gr\xc3\xbc\xc3\x9f"
                                   "e \xe2\x80\x94 8bit body\r\n");
    free(dec);
    free(v);
    free(raw);
    json_decref(meta);
}

Test(server_mail, required_starttls_with_a_trusted_ca_delivers_over_tls)
{
    make_certs("IP:127.0.0.1");
    const char *const args[] = {"--starttls", cert_path, key_path, "--require-starttls", NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_REQUIRED;
    o.ca_file = ca_path;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(mail_count(), 1);
    json_t *meta;
    char *raw = stored_mail(1, &meta);
    cr_assert(json_is_true(json_object_get(meta, "tls")), "delivered without TLS");
    free(raw);
    json_decref(meta);
}

Test(server_mail, required_starttls_fails_against_a_server_without_it_and_delivers_nothing)
{
    sink_start(NULL);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_REQUIRED;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUPSTREAM, "%s", err.msg);
    cr_assert(strstr(err.msg, "STARTTLS") != NULL, "%s", err.msg);
    cr_assert_eq(mail_count(), 0);
}

Test(server_mail, required_tls_with_an_untrusted_certificate_fails_verification_is_never_off)
{
    make_certs("IP:127.0.0.1");
    const char *const args[] = {"--starttls", cert_path, key_path, "--require-starttls", NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_REQUIRED; /* no ca_file: the system store does not know the test CA */
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUPSTREAM, "%s", err.msg);
    cr_assert(strstr(err.msg, "certificate") != NULL, "%s", err.msg);
    cr_assert_eq(mail_count(), 0);
}

Test(server_mail, opportunistic_tls_with_an_untrusted_certificate_fails_rather_than_going_plain)
{
    make_certs("IP:127.0.0.1");
    const char *const args[] = {"--starttls", cert_path, key_path, NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_OPPORTUNISTIC;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUPSTREAM, "%s", err.msg);
    cr_assert(strstr(err.msg, "certificate") != NULL, "%s", err.msg);
    cr_assert_eq(mail_count(), 0);
}

Test(server_mail, a_trusted_certificate_for_another_name_is_refused)
{
    make_certs("DNS:mail.other.test");
    const char *const args[] = {"--starttls", cert_path, key_path, "--require-starttls", NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_REQUIRED;
    o.ca_file = ca_path;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUPSTREAM, "%s", err.msg);
    cr_assert(strstr(err.msg, "certificate") != NULL, "%s", err.msg);
    cr_assert_eq(mail_count(), 0);
}

Test(server_mail, opportunistic_tls_delivers_in_clear_to_a_server_without_starttls)
{
    sink_start(NULL);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_OPPORTUNISTIC;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    json_t *meta;
    char *raw = stored_mail(1, &meta);
    cr_assert(json_is_false(json_object_get(meta, "tls")));
    free(raw);
    json_decref(meta);
}

Test(server_mail, opportunistic_tls_uses_starttls_when_offered)
{
    make_certs("IP:127.0.0.1");
    const char *const args[] = {"--starttls", cert_path, key_path, NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_OPPORTUNISTIC;
    o.ca_file = ca_path;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    json_t *meta;
    char *raw = stored_mail(1, &meta);
    cr_assert(json_is_true(json_object_get(meta, "tls")));
    free(raw);
    json_decref(meta);
}

Test(server_mail, implicit_tls_smtps_delivers_with_a_trusted_ca)
{
    make_certs("IP:127.0.0.1");
    const char *const args[] = {"--implicit-tls", cert_path, key_path, NULL};
    sink_start(args);
    char url[64];
    gw_fmt(url, sizeof(url), "smtps://%s", sink_url + strlen("smtp://"));
    struct jobs_mail_opts o = plain_opts();
    o.url = url;
    o.tls = JOBS_SMTP_TLS_OFF; /* smtps is TLS whatever tls says */
    o.ca_file = ca_path;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    json_t *meta;
    char *raw = stored_mail(1, &meta);
    cr_assert(json_is_true(json_object_get(meta, "tls")));
    free(raw);
    json_decref(meta);

    o.ca_file = NULL; /* and its certificate is checked too */
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUPSTREAM, "%s", err.msg);
    cr_assert_eq(mail_count(), 1);
}

Test(server_mail, auth_with_the_right_credentials_over_starttls_delivers)
{
    make_certs("IP:127.0.0.1");
    const char *const args[] = {"--starttls", cert_path,          key_path, "--require-starttls",
                                "--auth",     "mailer:" PASSWORD, NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_REQUIRED;
    o.ca_file = ca_path;
    o.user = "mailer";
    o.password = PASSWORD;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    json_t *meta;
    char *raw = stored_mail(1, &meta);
    cr_assert_str_eq(json_string_value(json_object_get(meta, "authenticated_as")), "mailer");
    free(raw);
    json_decref(meta);
}

Test(server_mail, auth_with_a_wrong_password_fails_and_err_never_holds_the_password)
{
    make_certs("IP:127.0.0.1");
    const char *const args[] = {"--starttls", cert_path,          key_path, "--require-starttls",
                                "--auth",     "mailer:" PASSWORD, NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_REQUIRED;
    o.ca_file = ca_path;
    o.user = "mailer";
    o.password = WRONG_PASS;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUPSTREAM, "%s", err.msg);
    cr_assert(strstr(err.msg, "535") != NULL, "%s", err.msg);
    cr_assert_null(strstr(err.msg, WRONG_PASS), "password in err: %s", err.msg);
    cr_assert_null(strstr(err.msg, PASSWORD), "password in err: %s", err.msg);
    cr_assert_eq(mail_count(), 0);

    o.user = NULL; /* and without AUTH the server refuses the sender */
    o.password = NULL;
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUPSTREAM, "%s", err.msg);
    cr_assert(strstr(err.msg, "530") != NULL, "%s", err.msg);
    cr_assert_eq(mail_count(), 0);
}

Test(server_mail, auth_to_a_plain_relay_works_when_tls_is_off)
{
    const char *const args[] = {"--auth", "mailer:" PASSWORD, NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    o.user = "mailer";
    o.password = PASSWORD;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(mail_count(), 1);
}

Test(server_mail, opportunistic_tls_never_sends_credentials_in_clear)
{
    const char *const args[] = {"--auth", "mailer:" PASSWORD, NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    o.tls = JOBS_SMTP_TLS_OPPORTUNISTIC;
    o.user = "mailer";
    o.password = PASSWORD;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUPSTREAM, "%s", err.msg);
    cr_assert(strstr(err.msg, "STARTTLS") != NULL, "%s", err.msg);
    cr_assert_null(strstr(err.msg, PASSWORD));
    cr_assert_eq(mail_count(), 0);
}

Test(server_mail, a_refused_recipient_is_permanent_and_err_names_550)
{
    const char *const args[] = {"--reject-rcpt", "gone@example.org", NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    static const char *const to[] = {"ops@example.org", "gone@example.org"};
    struct jobs_mail m = simple_mail();
    m.to = to;
    m.nto = 2;
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUPSTREAM, "%s", err.msg);
    cr_assert_eq(err.code, GW_EUPSTREAM);
    cr_assert(strstr(err.msg, "550") != NULL, "%s", err.msg);
    cr_assert_eq(mail_count(), 0);
}

Test(server_mail, a_temporary_failure_is_transient_and_the_retry_delivers)
{
    const char *const args[] = {"--tempfail", "1", NULL};
    sink_start(args);
    struct jobs_mail_opts o = plain_opts();
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUNAVAIL, "%s", err.msg);
    cr_assert(strstr(err.msg, "451") != NULL, "%s", err.msg);
    cr_assert_eq(mail_count(), 0);
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(mail_count(), 1);
}

Test(server_mail, a_server_that_is_down_is_transient)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    cr_assert_eq(close(fd), 0); /* the port is now free: nothing listens there */
    gw_fmt(sink_url, sizeof(sink_url), "smtp://127.0.0.1:%d", ntohs(a.sin_port));
    struct jobs_mail_opts o = plain_opts();
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUNAVAIL, "%s", err.msg);
}

Test(server_mail, a_server_that_never_answers_times_out_as_transient)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, 4), 0); /* connections complete, no greeting ever comes */
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    gw_fmt(sink_url, sizeof(sink_url), "smtp://127.0.0.1:%d", ntohs(a.sin_port));
    struct jobs_mail_opts o = plain_opts();
    o.timeout_ms = 300;
    struct jobs_mail m = simple_mail();
    struct gw_err err = {0};
    int64_t t0 = gw_monotonic_ns();
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EUNAVAIL, "%s", err.msg);
    cr_assert_lt(gw_monotonic_ns() - t0, 5LL * 1000 * 1000 * 1000, "the deadline was not kept");
    cr_assert_eq(close(fd), 0);
}

Test(server_mail, header_injection_is_refused_before_anything_is_sent)
{
    sink_start(NULL);
    struct jobs_mail_opts o = plain_opts();
    struct gw_err err = {0};

    struct jobs_mail m = simple_mail();
    m.subject = "Hello\r\nBcc: victim@example.org";
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EINVAL);
    cr_assert(strstr(err.msg, "line break") != NULL, "%s", err.msg);

    m = simple_mail();
    static const char *const to[] = {"ops@example.org\r\nBcc: victim@example.org"};
    m.to = to;
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EINVAL);
    cr_assert(strstr(err.msg, "line break") != NULL, "%s", err.msg);

    static const char *const to_cmd[] = {"ops@example.org> NOTIFY=NEVER"};
    m.to = to_cmd;
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EINVAL);

    m = simple_mail();
    m.from = "ml-gateway <noreply@example.com>\r\nBcc: victim@example.org";
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EINVAL);
    cr_assert(strstr(err.msg, "line break") != NULL, "%s", err.msg);

    m = simple_mail();
    m.from = "ml-gateway\n <noreply@example.com>";
    cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EINVAL);
    cr_assert_eq(mail_count(), 0);
}

Test(server_mail, urls_other_than_smtp_or_with_credentials_are_refused)
{
    static const char *const bad[] = {"http://127.0.0.1:25", "smtp://user:pw@127.0.0.1:25",
                                      "127.0.0.1:25", "file:///etc/passwd", ""};
    struct jobs_mail m = simple_mail();
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        struct jobs_mail_opts o = {.url = bad[i], .tls = JOBS_SMTP_TLS_OFF};
        struct gw_err err = {0};
        cr_assert_eq(jobs_mail_send(&o, &m, &err), GW_EINVAL, "%s: %s", bad[i], err.msg);
        cr_assert_null(strstr(err.msg, "pw@"), "%s", err.msg);
    }
}

/* ---- the pure pieces of jobs_mail_send ---- */

Test(server_mail_parts, check_url_gives_host_port_and_implicit_tls)
{
    static const struct {
        const char *url, *hostport;
        int implicit_tls;
    } cases[] = {
        {"smtp://127.0.0.1:2525", "127.0.0.1:2525", 0},
        {"smtp://mail.example.com", "mail.example.com:25", 0},
        {"smtps://mail.example.com", "mail.example.com:465", 1},
        {"smtps://mail.example.com:2465/", "mail.example.com:2465", 1},
        {"SMTP://mail.example.com:587", "mail.example.com:587", 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        char hostport[300] = "";
        int implicit_tls = -1;
        struct gw_err err = {0};
        cr_assert_eq(
            jobs_mail_check_url(hostport, sizeof(hostport), &implicit_tls, cases[i].url, &err),
            GW_OK, "%s: %s", cases[i].url, err.msg);
        cr_assert_str_eq(hostport, cases[i].hostport, "%s", cases[i].url);
        cr_assert_eq(implicit_tls, cases[i].implicit_tls, "%s", cases[i].url);
    }
}

Test(server_mail_parts, check_url_refuses_other_schemes_credentials_and_non_urls)
{
    static const char *const bad[] = {
        "http://127.0.0.1:25",
        "smtp://user:pw@127.0.0.1:25",
        "smtp://user@127.0.0.1:25",
        "smtp://:pw@127.0.0.1:25",
        "127.0.0.1:25",
        "file:///etc/passwd",
        "",
        "smtp://",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        char hostport[300] = "untouched";
        int implicit_tls = -1;
        struct gw_err err = {0};
        cr_assert_eq(jobs_mail_check_url(hostport, sizeof(hostport), &implicit_tls, bad[i], &err),
                     GW_EINVAL, "%s accepted", bad[i]);
        cr_assert_eq(err.code, GW_EINVAL);
        cr_assert_null(strstr(err.msg, "pw"), "%s", err.msg);
        cr_assert_eq(implicit_tls, -1, "%s", bad[i]);
    }
    struct gw_err err = {0};
    char hostport[300];
    int implicit_tls = 0;
    cr_assert_eq(jobs_mail_check_url(hostport, sizeof(hostport), &implicit_tls, NULL, &err),
                 GW_EINVAL);
}

Test(server_mail_parts, use_ssl_follows_the_mode_and_never_sends_a_password_in_clear)
{
    static const struct {
        long use_ssl;
        enum jobs_smtp_tls tls;
        int has_user, implicit_tls, upgraded;
    } cases[] = {
        {(long)CURLUSESSL_ALL, JOBS_SMTP_TLS_REQUIRED, 0, 0, 0},
        {(long)CURLUSESSL_ALL, JOBS_SMTP_TLS_REQUIRED, 1, 0, 0},
        {(long)CURLUSESSL_ALL, JOBS_SMTP_TLS_REQUIRED, 1, 1, 0},
        {(long)CURLUSESSL_TRY, JOBS_SMTP_TLS_OPPORTUNISTIC, 0, 0, 0},
        {(long)CURLUSESSL_ALL, JOBS_SMTP_TLS_OPPORTUNISTIC, 1, 0, 1},
        {(long)CURLUSESSL_TRY, JOBS_SMTP_TLS_OPPORTUNISTIC, 1, 1, 0},
        {(long)CURLUSESSL_TRY, JOBS_SMTP_TLS_OPPORTUNISTIC, 0, 1, 0},
        {(long)CURLUSESSL_NONE, JOBS_SMTP_TLS_OFF, 0, 0, 0},
        {(long)CURLUSESSL_NONE, JOBS_SMTP_TLS_OFF, 1, 0, 0},
        {(long)CURLUSESSL_NONE, JOBS_SMTP_TLS_OFF, 1, 1, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        int upgraded = -1;
        long got =
            jobs_mail_use_ssl(cases[i].tls, cases[i].has_user, cases[i].implicit_tls, &upgraded);
        cr_assert_eq(got, cases[i].use_ssl, "case %zu", i);
        cr_assert_eq(upgraded, cases[i].upgraded, "case %zu", i);
    }
}

Test(server_mail_parts, classify_sorts_replies_and_transfer_errors)
{
    cr_assert_eq(jobs_mail_classify(CURLE_SEND_ERROR, 421), GW_EUNAVAIL);
    cr_assert_eq(jobs_mail_classify(CURLE_RECV_ERROR, 451), GW_EUNAVAIL);
    cr_assert_eq(jobs_mail_classify(CURLE_LOGIN_DENIED, 535), GW_EUPSTREAM);
    cr_assert_eq(jobs_mail_classify(CURLE_SEND_ERROR, 550), GW_EUPSTREAM, "the reply wins");
    cr_assert_eq(jobs_mail_classify(CURLE_RECV_ERROR, 599), GW_EUPSTREAM);
    static const CURLcode transient[] = {CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT,
                                         CURLE_OPERATION_TIMEDOUT,   CURLE_SEND_ERROR,
                                         CURLE_RECV_ERROR,           CURLE_GOT_NOTHING};
    for (size_t i = 0; i < GW_ARRAY_LEN(transient); i++)
        cr_assert_eq(jobs_mail_classify(transient[i], 0), GW_EUNAVAIL, "%s",
                     curl_easy_strerror(transient[i]));
    static const CURLcode permanent[] = {CURLE_USE_SSL_FAILED, CURLE_PEER_FAILED_VERIFICATION,
                                         CURLE_SSL_CONNECT_ERROR, CURLE_WEIRD_SERVER_REPLY,
                                         CURLE_LOGIN_DENIED};
    for (size_t i = 0; i < GW_ARRAY_LEN(permanent); i++)
        cr_assert_eq(jobs_mail_classify(permanent[i], 0), GW_EUPSTREAM, "%s",
                     curl_easy_strerror(permanent[i]));
    cr_assert_eq(jobs_mail_classify(CURLE_OUT_OF_MEMORY, 0), GW_ENOMEM);
    cr_assert_eq(jobs_mail_classify(CURLE_OUT_OF_MEMORY, 250), GW_ENOMEM, "2xx is no reply code");
}

Test(server_mail_parts, failure_names_the_reply_the_host_and_a_hint)
{
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_failure(&err, CURLE_RECV_ERROR, 550, "mx.example.com:25",
                                   "RCPT failed: 550", 0, NULL),
                 GW_EUPSTREAM);
    cr_assert_eq(err.code, GW_EUPSTREAM);
    cr_assert_str_eq(err.msg, "SMTP to mx.example.com:25: reply 550: RCPT failed: 550");

    cr_assert_eq(
        jobs_mail_failure(&err, CURLE_COULDNT_CONNECT, 0, "mx.example.com:25", "", 0, PASSWORD),
        GW_EUNAVAIL);
    char want[256];
    gw_fmt(want, sizeof(want), "SMTP to mx.example.com:25 failed: %s",
           curl_easy_strerror(CURLE_COULDNT_CONNECT));
    cr_assert_str_eq(err.msg, want, "an empty detail falls back to libcurl's text");

    cr_assert_eq(jobs_mail_failure(&err, CURLE_USE_SSL_FAILED, 0, "h:25", "no STARTTLS", 0, NULL),
                 GW_EUPSTREAM);
    cr_assert_str_eq(err.msg, "SMTP to h:25 failed: no STARTTLS (the server offers no STARTTLS)");
    cr_assert_eq(jobs_mail_failure(&err, CURLE_USE_SSL_FAILED, 0, "h:25", "x", 1, NULL),
                 GW_EUPSTREAM);
    cr_assert(strstr(err.msg, "opportunistic TLS still requires it") != NULL, "%s", err.msg);
    cr_assert_eq(jobs_mail_failure(&err, CURLE_PEER_FAILED_VERIFICATION, 0, "h:25", "x", 0, NULL),
                 GW_EUPSTREAM);
    cr_assert(strstr(err.msg, "(certificate not trusted or not for this host)") != NULL, "%s",
              err.msg);

    cr_assert_eq(jobs_mail_failure(NULL, CURLE_RECV_ERROR, 451, "h:25", "x", 0, NULL), GW_EUNAVAIL,
                 "err may be NULL");
}

Test(server_mail_parts, failure_withholds_a_detail_that_holds_the_password)
{
    struct gw_err err = {0};
    cr_assert_eq(jobs_mail_failure(&err, CURLE_LOGIN_DENIED, 535, "h:25",
                                   "AUTH PLAIN mailer " PASSWORD " refused", 0, PASSWORD),
                 GW_EUPSTREAM);
    cr_assert_null(strstr(err.msg, PASSWORD), "%s", err.msg);
    cr_assert_str_eq(err.msg, "SMTP to h:25 failed (reply 535; detail withheld)");

    cr_assert_eq(jobs_mail_failure(&err, CURLE_LOGIN_DENIED, 535, "h:25", "refused", 0, PASSWORD),
                 GW_EUPSTREAM);
    cr_assert_str_eq(err.msg, "SMTP to h:25: reply 535: refused", "other details stay");
}
