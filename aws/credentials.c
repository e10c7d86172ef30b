/*
 * credentials.c — the AWS SDKs' default credential chain: environment
 * variables, the shared credentials and config files, the ECS container
 * endpoint, then EC2 instance metadata (IMDSv2 only), with a thread-safe cache
 * in front. It finds static keys and temporary credentials; it does not
 * assume roles, run credential_process, speak SSO or sign anything (sigv4.c
 * does that). Secrets are kept out of every error message and log line, and
 * buffers of ours that held them are cleansed before they are freed.
 *
 * Cache policy. Temporary credentials (ECS, IMDS) are served until
 * refresh_before_expiry_s before their Expiration, then the chain is walked
 * again. Static credentials (environment, shared files) carry no expiry; the
 * chain is walked again five minutes after they were read, so a rotated
 * shared file is picked up without a restart. One thread refreshes at a time
 * (the `refreshing` flag): while it does, others get the cached credentials
 * if they have not actually expired, or wait for its outcome. When a refresh
 * fails and the cached credentials are still valid they keep being served
 * (with a warning) and the next attempt waits ten seconds.
 *
 * IMDS. Only IMDSv2: a token is PUT for six hours, cached, and renewed
 * when it nears its end or a GET answers 401. A failed token request is an
 * error (GW_EUNAVAIL), not a fall back to IMDSv1 as some SDK versions do.
 */
#include "aws/credentials.h"

#include <arpa/inet.h>
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/curl.h"
#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/time.h"

#include "common/poison.h"

enum {
    CREDS_FILE_MAX = 1024 * 1024,  /* shared credentials / config file */
    CREDS_TOKEN_FILE_MAX = 16384,  /* AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE */
    CREDS_HTTP_MAX = 64 * 1024,    /* a metadata answer */
    CREDS_URL_MAX = 2048,          /* a metadata URL */
    CREDS_PATH_MAX = 4096,         /* a file path */
    CREDS_HEADER_MAX = 16384 + 64, /* one request header line */
    IMDS_TOKEN_MAX = 1024,         /* an IMDSv2 session token */
    IMDS_TOKEN_TTL_S = 21600,      /* what we ask for: six hours */
    IMDS_TOKEN_MARGIN_S = 60,      /* renewed this long before its end */
    IMDS_ROLE_MAX = 64,            /* IAM role names are 1..64 characters */
    CREDS_DEFAULT_TIMEOUT_MS = 1000,
    CREDS_DEFAULT_REFRESH_S = 300,
};

#define CREDS_STATIC_RECHECK_MS 300000LL /* static credentials: re-read after five minutes */
#define CREDS_RETRY_AFTER_MS    10000LL  /* after a failed refresh served stale credentials */

#define ECS_DEFAULT_BASE       "http://169.254.170.2"
#define IMDS_DEFAULT_BASE      "http://169.254.169.254"
#define IMDS_DEFAULT_BASE_IPV6 "http://[fd00:ec2::254]"
#define IMDS_CREDS_PATH        "/latest/meta-data/iam/security-credentials/"

enum creds_source { SRC_NONE = 0, SRC_ENV, SRC_FILES, SRC_ECS, SRC_IMDS };

static const char *const source_names[] = {"", "environment", "shared-files", "ecs", "imds"};

struct aws_creds_provider {
    aws_env_getter getenv_fn;
    void *getenv_ctx;
    char *ecs_base_url;  /* owned; NULL: ECS_DEFAULT_BASE */
    char *imds_base_url; /* owned; NULL: environment or IMDS_DEFAULT_BASE */
    long timeout_ms;
    long long refresh_before_ms;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a refresh ends */
    /* Guarded by mu. */
    struct aws_credentials cached;
    int have_cached;
    enum creds_source source;
    int64_t fetched_mono_ms;     /* when cached was fetched */
    int64_t retry_after_mono_ms; /* after a failed refresh: none before this */
    int refreshing;
    unsigned long long refresh_gen; /* refreshes finished */
    struct gw_err last_err;         /* the outcome of the last refresh */

    /* Used only by the thread that set `refreshing`. */
    char imds_token[IMDS_TOKEN_MAX];
    int64_t imds_token_expiry_mono_ms;
};

/* ---- small helpers ------------------------------------------------------ */

const char *aws_env(aws_env_getter fn, void *ctx, const char *name)
{
    const char *v = fn != NULL ? fn(name, ctx) : getenv(name);
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

static const char *env(const struct aws_creds_provider *p, const char *name)
{
    return aws_env(p->getenv_fn, p->getenv_ctx, name);
}

static int64_t mono_ms(void)
{
    return gw_monotonic_ns() / 1000000;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Narrows [*s, *e) to drop surrounding whitespace. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_ws(**s))
        (*s)++;
    while (*e > *s && is_ws((*e)[-1]))
        (*e)--;
}

/*
 * Copies the trimmed bytes [s, s+len) into dst as a C string. GW_EINVAL when
 * they do not fit or hold a control character (they end up in HTTP headers).
 * `what` names the field in the message; the value never appears.
 */
static int copy_field(char *dst, size_t dstlen, const char *s, size_t len, const char *what,
                      struct gw_err *err)
{
    const char *e = s + len;
    trim(&s, &e);
    size_t n = (size_t)(e - s);
    if (n >= dstlen)
        return gw_err_set(err, GW_EINVAL, "%s is longer than %zu bytes", what, dstlen - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return gw_err_set(err, GW_EINVAL, "%s contains a control character", what);
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return GW_OK;
}

static void errno_text(char *out, size_t outlen, int e)
{
    if (strerror_r(e, out, outlen) != 0)
        gw_fmt(out, outlen, "errno %d", e);
}

static void cleanse_free(char *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
}

/*
 * Reads a whole regular file of at most max bytes into *out (new, NUL-
 * terminated; the caller cleanses and frees it). A file that does not exist
 * sets *missing and returns GW_OK with *out NULL. Errors: GW_ETOOBIG, GW_EIO.
 */
static int read_file(char **out, size_t *out_len, int *missing, const char *path, size_t max,
                     struct gw_err *err)
{
    int rc = GW_OK;
    int fd = -1;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    char etext[128];

    *out = NULL;
    *out_len = 0;
    *missing = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            *missing = 1;
            goto cleanup;
        }
        errno_text(etext, sizeof(etext), errno);
        rc = gw_err_set(err, GW_EIO, "cannot open %s: %s", path, etext);
        goto cleanup;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        errno_text(etext, sizeof(etext), errno);
        rc = gw_err_set(err, GW_EIO, "cannot stat %s: %s", path, etext);
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = gw_err_set(err, GW_EIO, "%s is not a regular file", path);
        goto cleanup;
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > max) {
        rc = gw_err_set(err, GW_ETOOBIG, "%s is larger than %zu bytes", path, max);
        goto cleanup;
    }
    cap = (size_t)st.st_size + 1; /* one more than expected, to notice growth */
    buf = malloc(cap + 1);
    if (buf == NULL) {
        rc = gw_err_set(err, GW_ENOMEM, "out of memory reading %s", path);
        goto cleanup;
    }
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errno_text(etext, sizeof(etext), errno);
            rc = gw_err_set(err, GW_EIO, "cannot read %s: %s", path, etext);
            goto cleanup;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len == cap) {
        rc = gw_err_set(err, GW_EIO, "%s changed while it was being read", path);
        goto cleanup;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;

cleanup:
    cleanse_free(buf, cap + 1);
    if (fd >= 0)
        (void)close(fd);
    return rc;
}

/* ---- ISO 8601 ----------------------------------------------------------- */

/* An RFC 3339 time ("2026-11-28T22:00:00Z", fraction and offset allowed),
 * the whole of s, to UNIX milliseconds. GW_EINVAL when malformed. */
static int parse_iso8601_ms(long long *out, const char *s)
{
    int64_t ms;
    size_t n = strlen(s);
    if (n == 0 || gw_parse_rfc3339(&ms, s, n) != n)
        return GW_EINVAL;
    *out = ms;
    return GW_OK;
}

/* ---- environment -------------------------------------------------------- */

static int from_env(struct aws_credentials *out, int *found, const struct aws_creds_provider *p,
                    struct gw_err *err)
{
    const char *ak = env(p, "AWS_ACCESS_KEY_ID");
    const char *sk = env(p, "AWS_SECRET_ACCESS_KEY");
    const char *tok = env(p, "AWS_SESSION_TOKEN");
    int rc;

    *found = 0;
    if (tok == NULL)
        tok = env(p, "AWS_SECURITY_TOKEN"); /* the older name botocore still reads */
    if (ak == NULL && sk == NULL)
        return GW_OK;
    if (ak == NULL)
        return gw_err_set(err, GW_EINVAL,
                          "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both "
                          "or neither");
    if (sk == NULL)
        return gw_err_set(err, GW_EINVAL,
                          "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both "
                          "or neither");
    if ((rc = copy_field(out->access_key_id, sizeof(out->access_key_id), ak, strlen(ak),
                         "AWS_ACCESS_KEY_ID", err)) != 0 ||
        (rc = copy_field(out->secret_access_key, sizeof(out->secret_access_key), sk, strlen(sk),
                         "AWS_SECRET_ACCESS_KEY", err)) != 0)
        return rc;
    if (tok != NULL && (rc = copy_field(out->session_token, sizeof(out->session_token), tok,
                                        strlen(tok), "AWS_SESSION_TOKEN", err)) != 0)
        return rc;
    out->expiration_ms = 0;
    *found = 1;
    return GW_OK;
}

/* ---- shared credentials and config files ---------------------------------- */

struct ini_result {
    int section_found; /* the profile's section exists */
    int have_ak, have_sk, have_tok;
    struct aws_credentials c;
};

/* Whether a section header's (trimmed) name selects profile. The credentials
 * file names profiles bare; the config file says [profile name], except for
 * [default] (and [profile default], which the SDKs accept too). */
static int section_matches(const char *name, size_t n, const char *profile, int config_syntax)
{
    size_t plen = strlen(profile);
    if (!config_syntax)
        return n == plen && memcmp(name, profile, n) == 0;
    if (n == 7 && memcmp(name, "default", 7) == 0)
        return strcmp(profile, "default") == 0;
    if (n > 8 && memcmp(name, "profile", 7) == 0 && (name[7] == ' ' || name[7] == '\t')) {
        const char *s = name + 7, *e = name + n;
        trim(&s, &e);
        return (size_t)(e - s) == plen && memcmp(s, profile, plen) == 0;
    }
    return 0;
}

static int key_is(const char *k, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(k, name, n) == 0;
}

const char *aws_ini_section(const char **name, size_t *name_len, const char *line, size_t len)
{
    const char *e = line + len;
    const char *close = len > 0 && line[0] == '[' ? memchr(line, ']', len) : NULL;

    *name = NULL;
    *name_len = 0;
    if (close == NULL)
        return "a section header without ']'";
    const char *rest = close + 1;
    while (rest < e && is_ws(*rest))
        rest++;
    if (rest < e && *rest != '#' && *rest != ';')
        return "text after a section header";
    const char *ns = line + 1, *ne = close;
    trim(&ns, &ne);
    *name = ns;
    *name_len = (size_t)(ne - ns);
    return NULL;
}

int aws_ini_key_value(const char **key, size_t *key_len, const char **value, size_t *value_len,
                      const char *line, size_t len)
{
    const char *e = line + len;
    const char *eq = memchr(line, '=', len);

    if (eq == NULL)
        return GW_EINVAL;
    const char *ks = line, *ke = eq, *vs = eq + 1, *ve = e;
    trim(&ks, &ke);
    for (const char *c = vs; c + 1 < ve; c++) {
        if ((*c == ' ' || *c == '\t') && (c[1] == '#' || c[1] == ';')) {
            ve = c;
            break;
        }
    }
    trim(&vs, &ve);
    *key = ks;
    *key_len = (size_t)(ke - ks);
    *value = vs;
    *value_len = (size_t)(ve - vs);
    return GW_OK;
}

/* Where a key of the profile goes in r: dst (dstlen bytes), the flag saying
 * it was set, and its name for messages. 0 when the key is none of ours. */
struct ini_field {
    char *dst;
    size_t dstlen;
    int *have;
    const char *name;
};

static int ini_field(struct ini_field *f, struct ini_result *r, const char *key, size_t n)
{
    if (key_is(key, n, "aws_access_key_id"))
        *f = (struct ini_field){r->c.access_key_id, sizeof(r->c.access_key_id), &r->have_ak,
                                "aws_access_key_id"};
    else if (key_is(key, n, "aws_secret_access_key"))
        *f = (struct ini_field){r->c.secret_access_key, sizeof(r->c.secret_access_key), &r->have_sk,
                                "aws_secret_access_key"};
    else if (key_is(key, n, "aws_session_token"))
        *f = (struct ini_field){r->c.session_token, sizeof(r->c.session_token), &r->have_tok,
                                "aws_session_token"};
    else
        return 0;
    return 1;
}

/* The next line of [*next, end): its content without surrounding white
 * space in [*s, *e), and how many spaces and tabs it was indented by. */
static size_t ini_next_line(const char **next, const char *end, const char **s, const char **e)
{
    const char *start = *next;
    const char *nl = memchr(start, '\n', (size_t)(end - start));

    *s = start;
    *e = nl != NULL ? nl : end;
    *next = nl != NULL ? nl + 1 : end;
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    size_t indent = (size_t)(*s - start);
    trim(s, e);
    return indent;
}

/*
 * Scans an INI text (NUL-terminated, len bytes) for profile's keys. Comment
 * lines start with # or ;, a value's trailing " #..." or " ;..." is a comment
 * (as the Java SDK reads it; keys and tokens never hold spaces), keys are
 * case-insensitive, later values win, and a line indented deeper than the
 * key above it continues that key (botocore's nested "s3 =" settings) and is
 * skipped. A line that is neither is GW_EINVAL (with its number, not its text).
 */
static int ini_scan(struct ini_result *r, const char *text, size_t len, const char *path,
                    const char *profile, int config_syntax, struct gw_err *err)
{
    const char *next = text, *end = text + len;
    int in_match = 0, prev_key = 0, rc;
    size_t key_indent = 0, lineno = 0;
    struct gw_err sub = {0};

    if (memchr(text, '\0', len) != NULL)
        return gw_err_set(err, GW_EINVAL, "%s contains a NUL byte", path);
    while (next < end) {
        const char *s, *e, *name, *key, *value;
        size_t n, kn, vn, indent = ini_next_line(&next, end, &s, &e);
        lineno++;
        if (s == e || *s == '#' || *s == ';')
            continue;
        if (prev_key && indent > key_indent)
            continue; /* continues the key above */
        if (*s == '[') {
            const char *why = aws_ini_section(&name, &n, s, (size_t)(e - s));
            if (why != NULL)
                return gw_err_set(err, GW_EINVAL, "%s:%zu: %s", path, lineno, why);
            in_match = section_matches(name, n, profile, config_syntax);
            if (in_match)
                r->section_found = 1;
            prev_key = 0;
            continue;
        }
        if (aws_ini_key_value(&key, &kn, &value, &vn, s, (size_t)(e - s)) != GW_OK)
            return gw_err_set(err, GW_EINVAL, "%s:%zu: expected '[section]' or 'key = value'", path,
                              lineno);
        prev_key = 1;
        key_indent = indent;
        struct ini_field f;
        if (!in_match || !ini_field(&f, r, key, kn))
            continue;
        if ((rc = copy_field(f.dst, f.dstlen, value, vn, f.name, &sub)) != 0)
            return gw_err_set(err, rc, "%s:%zu: %s", path, lineno, sub.msg);
        *f.have = vn > 0;
    }
    return GW_OK;
}

/* path with a leading "~/" expanded from HOME, or HOME/rel when path is NULL.
 * *out = "" when neither can be built (no HOME): the file is skipped. */
static int resolve_path(char *out, size_t outlen, const char *path, const char *home,
                        const char *rel, const char *var, struct gw_err *err)
{
    int n;
    out[0] = '\0';
    if (path != NULL && !(path[0] == '~' && path[1] == '/'))
        n = snprintf(out, outlen, "%s", path);
    else if (home == NULL)
        return GW_OK;
    else if (path != NULL)
        n = snprintf(out, outlen, "%s%s", home, path + 1);
    else
        n = snprintf(out, outlen, "%s/%s", home, rel);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return gw_err_set(err, GW_EINVAL, "the path of %s is longer than %zu bytes", var,
                          outlen - 1);
    }
    return GW_OK;
}

/* Scans one file; a missing file (or no path) leaves r empty. */
static int scan_file(struct ini_result *r, const char *path, const char *profile, int config_syntax,
                     struct gw_err *err)
{
    char *text = NULL;
    size_t len = 0;
    int missing = 0, rc;

    if (path[0] == '\0')
        return GW_OK;
    rc = read_file(&text, &len, &missing, path, CREDS_FILE_MAX, err);
    if (rc == GW_OK && !missing && text != NULL)
        rc = ini_scan(r, text, len, path, profile, config_syntax, err);
    cleanse_free(text, len + 1);
    return rc;
}

/* Uses r when it holds a key pair; GW_EINVAL for half a pair. */
static int take_profile(struct aws_credentials *out, int *found, const struct ini_result *r,
                        const char *path, const char *profile, struct gw_err *err)
{
    if (!r->have_ak && !r->have_sk)
        return GW_OK;
    if (!r->have_sk || !r->have_ak)
        return gw_err_set(err, GW_EINVAL, "%s: profile %s has %s but not %s", path, profile,
                          r->have_ak ? "aws_access_key_id" : "aws_secret_access_key",
                          r->have_ak ? "aws_secret_access_key" : "aws_access_key_id");
    *out = r->c;
    if (!r->have_tok)
        out->session_token[0] = '\0';
    out->expiration_ms = 0;
    *found = 1;
    return GW_OK;
}

static int from_files(struct aws_credentials *out, int *found, const struct aws_creds_provider *p,
                      struct gw_err *err)
{
    char cpath[CREDS_PATH_MAX], fpath[CREDS_PATH_MAX];
    struct ini_result *rc_cred = NULL, *rc_conf = NULL;
    const char *home = env(p, "HOME");
    const char *profile = env(p, "AWS_PROFILE");
    int rc;

    *found = 0;
    if (profile == NULL)
        profile = "default";
    int named = strcmp(profile, "default") != 0;
    if ((rc = resolve_path(cpath, sizeof(cpath), env(p, "AWS_SHARED_CREDENTIALS_FILE"), home,
                           ".aws/credentials", "AWS_SHARED_CREDENTIALS_FILE", err)) != 0 ||
        (rc = resolve_path(fpath, sizeof(fpath), env(p, "AWS_CONFIG_FILE"), home, ".aws/config",
                           "AWS_CONFIG_FILE", err)) != 0)
        return rc;
    /* On the heap: each holds a struct aws_credentials (4 KiB). */
    rc_cred = calloc(1, sizeof(*rc_cred));
    rc_conf = calloc(1, sizeof(*rc_conf));
    if (rc_cred == NULL || rc_conf == NULL) {
        rc = gw_err_set(err, GW_ENOMEM, "out of memory reading the shared AWS files");
        goto cleanup;
    }
    if ((rc = scan_file(rc_cred, cpath, profile, 0, err)) != 0 ||
        (rc = take_profile(out, found, rc_cred, cpath, profile, err)) != 0 || *found)
        goto cleanup;
    if ((rc = scan_file(rc_conf, fpath, profile, 1, err)) != 0 ||
        (rc = take_profile(out, found, rc_conf, fpath, profile, err)) != 0 || *found)
        goto cleanup;
    if (named && !rc_cred->section_found && !rc_conf->section_found) {
        rc = gw_err_set(err, GW_ENOTFOUND, "AWS_PROFILE %s: no such profile in %s or %s", profile,
                        cpath[0] ? cpath : "(no credentials file)",
                        fpath[0] ? fpath : "(no config file)");
        goto cleanup;
    }
    if (rc_cred->section_found || rc_conf->section_found)
        GW_LOG_INFO(
            "AWS credentials: profile %s has no aws_access_key_id and aws_secret_access_key "
            "(role_arn, sso_* and credential_process are not supported); trying the next "
            "source",
            profile);

cleanup:
    if (rc_cred != NULL)
        OPENSSL_cleanse(rc_cred, sizeof(*rc_cred));
    if (rc_conf != NULL)
        OPENSSL_cleanse(rc_conf, sizeof(*rc_conf));
    free(rc_cred);
    free(rc_conf);
    return rc;
}

/* ---- HTTP to the metadata services ------------------------------------------ */

/* The answer buffer of a metadata call. Its whole capacity is allocated at
 * once, so gw_buf_add never moves it: a reallocated buffer would leave a copy
 * of the credentials in freed memory. A buffer that has one is emptied. */
static int resp_reserve(struct gw_buf *b)
{
    if (b->data != NULL) {
        gw_buf_reset(b);
        return GW_OK;
    }
    gw_buf_init(b, CREDS_HTTP_MAX);
    b->data = malloc(CREDS_HTTP_MAX + 1);
    if (b->data == NULL)
        return GW_ENOMEM;
    b->cap = CREDS_HTTP_MAX + 1;
    b->data[0] = '\0';
    return GW_OK;
}

static size_t empty_read(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr, (void)size, (void)nmemb, (void)userdata;
    return 0;
}

/* Cleanses and frees what resp_reserve allocated. */
static void resp_dispose(struct gw_buf *b)
{
    cleanse_free(b->data, b->cap);
    gw_buf_init(b, 0);
}

static void slist_free_cleansed(struct curl_slist *l)
{
    for (struct curl_slist *s = l; s != NULL; s = s->next)
        OPENSSL_cleanse(s->data, strlen(s->data));
    curl_slist_free_all(l);
}

/* Appends "name: value" to *list; the value may be a secret (the line is cleansed). */
static int add_header(struct curl_slist **list, const char *name, const char *value,
                      struct gw_err *err)
{
    char line[CREDS_HEADER_MAX];
    int n = snprintf(line, sizeof(line), "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        OPENSSL_cleanse(line, sizeof(line));
        return gw_err_set(err, GW_EINVAL, "the %s header is too long", name);
    }
    int rc = gw_curl_header(list, line, err); /* wipes and frees *list on failure */
    OPENSSL_cleanse(line, sizeof(line));
    return rc;
}

/*
 * One metadata request: method "GET" or "PUT" (empty body). The answer goes
 * to resp (emptied first; allocated here, freed with resp_dispose) and its
 * status to *status. Errors: GW_EUNAVAIL (no answer), GW_ETOOBIG, GW_ENOMEM,
 * GW_EINVAL (libcurl refused an option). `what` names the call in messages;
 * URLs, headers and bodies never appear.
 */
static int http_call(struct gw_buf *resp, long *status, const struct aws_creds_provider *p,
                     const char *method, const char *url, const struct curl_slist *headers,
                     const char *what, struct gw_err *err)
{
    int rc = GW_OK;
    CURL *h = NULL;
    char ebuf[CURL_ERROR_SIZE] = "";
    struct gw_err serr = {0};

    *status = 0;
    if (resp_reserve(resp) != GW_OK)
        return gw_err_set(err, GW_ENOMEM, "%s: out of memory", what);
    const struct gw_curl_opts o = {
        .url = url,
        .protocols = "http,https",
        .timeout_ms = p->timeout_ms, /* connecting too */
        .sink = resp,                /* bounded by CREDS_HTTP_MAX */
        .errbuf = ebuf,
    };
    if ((rc = gw_curl_new(&h, &o, &serr)) != GW_OK)
        return gw_err_set(err, rc, "%s: %s", what, serr.msg);
    /* Metadata calls never go through an http_proxy from the environment:
     * a proxy would see the tokens and the credentials. */
    rc = GW_CURL_SET(h, CURLOPT_PROXY, "", &serr);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_HTTPHEADER, headers, &serr);
    if (rc == GW_OK && strcmp(method, "PUT") == 0) {
        rc = GW_CURL_SET(h, CURLOPT_UPLOAD, 1L, &serr);
        if (rc == GW_OK)
            rc = GW_CURL_SET(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0, &serr);
        if (rc == GW_OK)
            rc = GW_CURL_SET(h, CURLOPT_READFUNCTION, empty_read, &serr);
    }
    if (rc != GW_OK) {
        rc = gw_err_set(err, rc, "%s: %s", what, serr.msg);
        goto cleanup;
    }
    CURLcode cc = curl_easy_perform(h);
    /* A write error is the bounded sink refusing more (its memory is already there). */
    if (cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED) {
        rc = gw_err_set(err, GW_ETOOBIG, "%s: the answer is larger than %d bytes", what,
                        CREDS_HTTP_MAX);
        goto cleanup;
    }
    if (cc != CURLE_OK) {
        rc = gw_err_set(err, GW_EUNAVAIL, "%s: %s", what,
                        ebuf[0] != '\0' ? ebuf : curl_easy_strerror(cc));
        goto cleanup;
    }
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status) != CURLE_OK)
        *status = 0;

cleanup:
    curl_easy_cleanup(h);
    return rc;
}

/*
 * Parses a credentials document (ECS or IMDS): AccessKeyId, SecretAccessKey,
 * Token, Expiration, and for IMDS a Code that must be "Success". A missing
 * Expiration leaves expiration_ms 0 (treated like static credentials).
 * Errors: GW_EINVAL (malformed), GW_EUNAVAIL (a Code other than Success).
 * jansson keeps its own copies of the strings, which it frees without
 * cleansing; json_set_alloc_funcs is process-wide, so that is left alone.
 */
static int parse_creds_doc(struct aws_credentials *out, const char *body, size_t len,
                           const char *what, struct gw_err *err)
{
    int rc = GW_OK;
    json_t *root = json_loadb(body, len, 0, NULL); /* the error text quotes input: unused */
    struct gw_err sub = {0};
    char label[128];

    if (root == NULL || !json_is_object(root)) {
        rc = gw_err_set(err, GW_EINVAL, "%s: the answer is not a JSON object", what);
        goto cleanup;
    }
    json_t *code = json_object_get(root, "Code");
    if (code != NULL &&
        (!json_is_string(code) || strcmp(json_string_value(code), "Success") != 0)) {
        rc = gw_err_set(err, GW_EUNAVAIL, "%s: Code is %.64s, not Success", what,
                        json_is_string(code) ? json_string_value(code) : "not a string");
        goto cleanup;
    }
    static const struct {
        const char *key;
        size_t off, size;
        int required;
    } fields[] = {
        {"AccessKeyId", offsetof(struct aws_credentials, access_key_id),
         sizeof(((struct aws_credentials *)0)->access_key_id), 1},
        {"SecretAccessKey", offsetof(struct aws_credentials, secret_access_key),
         sizeof(((struct aws_credentials *)0)->secret_access_key), 1},
        {"Token", offsetof(struct aws_credentials, session_token),
         sizeof(((struct aws_credentials *)0)->session_token), 0},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(fields); i++) {
        json_t *v = json_object_get(root, fields[i].key);
        char *dst = (char *)out + fields[i].off;
        dst[0] = '\0';
        if (v == NULL && !fields[i].required)
            continue;
        if (!json_is_string(v) || json_string_length(v) == 0) {
            rc = gw_err_set(err, GW_EINVAL, "%s: %s is missing or not a string", what,
                            fields[i].key);
            goto cleanup;
        }
        gw_fmt(label, sizeof(label), "%s: %s", what, fields[i].key);
        if ((rc = copy_field(dst, fields[i].size, json_string_value(v), json_string_length(v),
                             label, &sub)) != 0) {
            rc = gw_err_set(err, rc, "%s", sub.msg);
            goto cleanup;
        }
    }
    out->expiration_ms = 0;
    json_t *exp = json_object_get(root, "Expiration");
    if (exp != NULL) {
        long long ms = 0;
        if (!json_is_string(exp) || parse_iso8601_ms(&ms, json_string_value(exp)) != 0) {
            rc = gw_err_set(err, GW_EINVAL, "%s: Expiration is not an ISO 8601 time", what);
            goto cleanup;
        }
        out->expiration_ms = ms;
    }

cleanup:
    json_decref(root);
    return rc;
}

/* ---- ECS container endpoint ------------------------------------------------- */

/* The SDKs' rule for AWS_CONTAINER_CREDENTIALS_FULL_URI: https anywhere; http
 * only to a loopback address or the ECS / EKS Pod Identity agents. No DNS is
 * consulted, apart from the literal name localhost. */
static int full_uri_allowed(const char *url, struct gw_err *err)
{
    int rc = GW_OK;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;

    if (u == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory parsing a URL");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = gw_err_set(err, GW_EINVAL, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid URL");
        goto cleanup;
    }
    if (strcasecmp(scheme, "https") == 0)
        goto cleanup;
    if (strcasecmp(scheme, "http") != 0) {
        rc = gw_err_set(err, GW_EINVAL,
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI must be http or https, not %.16s",
                        scheme);
        goto cleanup;
    }
    char bare[64];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        if (hl - 2 >= sizeof(bare))
            goto refuse;
        memcpy(bare, host + 1, hl - 2);
        bare[hl - 2] = '\0';
    } else if (snprintf(bare, sizeof(bare), "%s", host) >= (int)sizeof(bare)) {
        goto refuse;
    }
    struct in_addr a4;
    struct in6_addr a6, ecs6;
    if (strcasecmp(bare, "localhost") == 0)
        goto cleanup;
    if (inet_pton(AF_INET, bare, &a4) == 1) {
        uint32_t ip = ntohl(a4.s_addr);
        if ((ip >> 24) == 127 || ip == 0xA9FEAA02u /* 169.254.170.2 */ ||
            ip == 0xA9FEAA17u /* 169.254.170.23 */)
            goto cleanup;
    } else if (inet_pton(AF_INET6, bare, &a6) == 1 && inet_pton(AF_INET6, "fd00:ec2::23", &ecs6)) {
        if (memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0 || memcmp(&a6, &ecs6, sizeof(a6)) == 0)
            goto cleanup;
    }
refuse:
    rc = gw_err_set(err, GW_EINVAL,
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is allowed only to a loopback "
                    "address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23, not to %.64s",
                    host);

cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* The Authorization token for the container endpoint into out ("" when none):
 * the token file wins over the variable. */
static int ecs_auth_token(char *out, size_t outlen, const struct aws_creds_provider *p,
                          struct gw_err *err)
{
    const char *file = env(p, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = env(p, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char *text = NULL;
    size_t len = 0;
    int missing = 0, rc = GW_OK;

    out[0] = '\0';
    if (file != NULL) {
        if ((rc = read_file(&text, &len, &missing, file, CREDS_TOKEN_FILE_MAX, err)) != 0)
            goto cleanup;
        if (missing) {
            rc = gw_err_set(err, GW_EINVAL,
                            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s does not exist", file);
            goto cleanup;
        }
        rc = copy_field(out, outlen, text, len, "the container authorization token file", err);
    } else if (tok != NULL) {
        rc = copy_field(out, outlen, tok, strlen(tok), "AWS_CONTAINER_AUTHORIZATION_TOKEN", err);
    }

cleanup:
    cleanse_free(text, len + 1);
    if (rc != GW_OK)
        OPENSSL_cleanse(out, outlen);
    return rc;
}

static int from_ecs(struct aws_credentials *out, int *found, const struct aws_creds_provider *p,
                    struct gw_err *err)
{
    const char *rel = env(p, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env(p, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *what = rel != NULL ? "ECS container endpoint (AWS_CONTAINER_CREDENTIALS_"
                                     "RELATIVE_URI)"
                                   : "container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI)";
    char url[CREDS_URL_MAX];
    char *token = NULL;
    struct curl_slist *headers = NULL;
    struct gw_buf resp = {0};
    long status = 0;
    int rc = GW_OK, n;

    *found = 0;
    if (rel == NULL && full == NULL)
        return GW_OK;
    if (rel != NULL) {
        if (rel[0] != '/')
            return gw_err_set(err, GW_EINVAL,
                              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
        const char *base = p->ecs_base_url != NULL ? p->ecs_base_url : ECS_DEFAULT_BASE;
        n = snprintf(url, sizeof(url), "%s%s", base, rel);
    } else {
        if ((rc = full_uri_allowed(full, err)) != 0)
            return rc;
        n = snprintf(url, sizeof(url), "%s", full);
    }
    if (n < 0 || (size_t)n >= sizeof(url))
        return gw_err_set(err, GW_EINVAL, "%s: the URL is longer than %zu bytes", what,
                          sizeof(url) - 1);
    for (const char *c = url; *c != '\0'; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return gw_err_set(err, GW_EINVAL, "%s: the URL holds a space or control character",
                              what);
    }

    token = malloc(CREDS_TOKEN_FILE_MAX + 1);
    if (token == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    if ((rc = ecs_auth_token(token, CREDS_TOKEN_FILE_MAX + 1, p, err)) != 0)
        goto cleanup;
    if (token[0] != '\0' && (rc = add_header(&headers, "Authorization", token, err)) != 0)
        goto cleanup;
    if ((rc = add_header(&headers, "Accept", "application/json", err)) != 0)
        goto cleanup;
    if ((rc = http_call(&resp, &status, p, "GET", url, headers, what, err)) != 0)
        goto cleanup;
    if (status != 200) {
        rc = gw_err_set(err, GW_EUNAVAIL, "%s answered HTTP %ld", what, status);
        goto cleanup;
    }
    if ((rc = parse_creds_doc(out, resp.data, resp.len, what, err)) != 0)
        goto cleanup;
    *found = 1;

cleanup:
    cleanse_free(token, CREDS_TOKEN_FILE_MAX + 1);
    slist_free_cleansed(headers);
    resp_dispose(&resp);
    return rc;
}

/* ---- EC2 instance metadata (IMDSv2) ------------------------------------------ */

/* PUTs for a fresh session token and caches it in p. */
static int imds_new_token(struct aws_creds_provider *p, const char *base, struct gw_err *err)
{
    char url[CREDS_URL_MAX], ttl[16];
    struct curl_slist *headers = NULL;
    struct gw_buf resp = {0};
    long status = 0;
    int rc;
    const char *what = "IMDS token request (PUT /latest/api/token)";

    OPENSSL_cleanse(p->imds_token, sizeof(p->imds_token));
    p->imds_token_expiry_mono_ms = 0;
    int n = snprintf(url, sizeof(url), "%s/latest/api/token", base);
    if (n < 0 || (size_t)n >= sizeof(url))
        return gw_err_set(err, GW_EINVAL, "the IMDS endpoint URL is too long");
    gw_fmt(ttl, sizeof(ttl), "%d", IMDS_TOKEN_TTL_S);
    if ((rc = add_header(&headers, "X-aws-ec2-metadata-token-ttl-seconds", ttl, err)) != 0 ||
        (rc = http_call(&resp, &status, p, "PUT", url, headers, what, err)) != 0)
        goto cleanup;
    if (status != 200) {
        rc =
            gw_err_set(err, GW_EUNAVAIL, "%s answered HTTP %ld (IMDSv1 is not used)", what, status);
        goto cleanup;
    }
    const char *s = resp.data, *e = resp.data + resp.len;
    trim(&s, &e);
    size_t tl = (size_t)(e - s);
    int ok = tl > 0 && tl < sizeof(p->imds_token);
    for (size_t i = 0; ok && i < tl; i++)
        ok = s[i] > 0x20 && s[i] < 0x7f;
    if (!ok) {
        rc = gw_err_set(err, GW_EUNAVAIL, "%s: the token is empty, too long or malformed", what);
        goto cleanup;
    }
    memcpy(p->imds_token, s, tl);
    p->imds_token[tl] = '\0';
    p->imds_token_expiry_mono_ms = mono_ms() + (IMDS_TOKEN_TTL_S - IMDS_TOKEN_MARGIN_S) * 1000LL;

cleanup:
    slist_free_cleansed(headers);
    resp_dispose(&resp);
    return rc;
}

/* GET base+path with the session token (fetched when none is cached); on a
 * 401 the token is renewed once and the GET repeated. */
static int imds_get(struct gw_buf *resp, long *status, struct aws_creds_provider *p,
                    const char *base, const char *path, const char *what, struct gw_err *err)
{
    char url[CREDS_URL_MAX];
    int rc = GW_OK;
    int n = snprintf(url, sizeof(url), "%s%s", base, path);
    if (n < 0 || (size_t)n >= sizeof(url))
        return gw_err_set(err, GW_EINVAL, "the IMDS endpoint URL is too long");
    for (int attempt = 0; attempt < 2; attempt++) {
        struct curl_slist *headers = NULL;
        if (p->imds_token[0] == '\0' || mono_ms() >= p->imds_token_expiry_mono_ms) {
            if ((rc = imds_new_token(p, base, err)) != 0)
                return rc;
        }
        rc = add_header(&headers, "X-aws-ec2-metadata-token", p->imds_token, err);
        if (rc == GW_OK)
            rc = http_call(resp, status, p, "GET", url, headers, what, err);
        slist_free_cleansed(headers);
        if (rc != GW_OK || *status != 401)
            return rc;
        OPENSSL_cleanse(p->imds_token, sizeof(p->imds_token)); /* refused: renew */
    }
    return rc;
}

static int role_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > IMDS_ROLE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("+=,.@_-", c) != NULL))
            return 0;
    }
    return 1;
}

static int from_imds(struct aws_credentials *out, int *found, struct aws_creds_provider *p,
                     struct gw_err *err)
{
    const char *disabled = env(p, "AWS_EC2_METADATA_DISABLED");
    const char *mode = env(p, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    const char *base_in = p->imds_base_url;
    char base[CREDS_URL_MAX], path[sizeof(IMDS_CREDS_PATH) + IMDS_ROLE_MAX + 1];
    struct gw_buf resp = {0};
    long status = 0;
    int rc = GW_OK;

    *found = 0;
    if (disabled != NULL && strcasecmp(disabled, "true") == 0)
        return GW_OK;
    if (base_in == NULL)
        base_in = env(p, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (base_in == NULL)
        base_in = (mode != NULL && strcasecmp(mode, "IPv6") == 0) ? IMDS_DEFAULT_BASE_IPV6
                                                                  : IMDS_DEFAULT_BASE;
    int n = snprintf(base, sizeof(base), "%s", base_in);
    if (n < 0 || (size_t)n >= sizeof(base))
        return gw_err_set(err, GW_EINVAL, "the IMDS endpoint URL is too long");
    while (n > 0 && base[n - 1] == '/')
        base[--n] = '\0';

    if ((rc = imds_get(&resp, &status, p, base, IMDS_CREDS_PATH, "IMDS role listing", err)) != 0)
        goto cleanup;
    if (status == 404) {
        rc = gw_err_set(err, GW_ENOTFOUND, "IMDS: no IAM role is attached to this instance");
        goto cleanup;
    }
    if (status != 200) {
        rc = gw_err_set(err, GW_EUNAVAIL, "IMDS role listing answered HTTP %ld", status);
        goto cleanup;
    }
    const char *s = resp.data, *e = memchr(resp.data, '\n', resp.len);
    if (e == NULL)
        e = resp.data + resp.len;
    trim(&s, &e);
    if (!role_name_valid(s, (size_t)(e - s))) {
        rc = gw_err_set(err, GW_EINVAL, "IMDS role listing: not a valid IAM role name");
        goto cleanup;
    }
    n = snprintf(path, sizeof(path), "%s%.*s", IMDS_CREDS_PATH, (int)(e - s), s);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        rc = gw_err_set(err, GW_EINVAL, "IMDS role name too long");
        goto cleanup;
    }
    if ((rc = imds_get(&resp, &status, p, base, path, "IMDS role credentials", err)) != 0)
        goto cleanup;
    if (status != 200) {
        rc = gw_err_set(err, GW_EUNAVAIL, "IMDS role credentials answered HTTP %ld", status);
        goto cleanup;
    }
    if ((rc = parse_creds_doc(out, resp.data, resp.len, "IMDS role credentials", err)) != 0)
        goto cleanup;
    *found = 1;

cleanup:
    resp_dispose(&resp);
    return rc;
}

/* ---- the chain and the cache ------------------------------------------------- */

/* Walks the chain once. Runs without p->mu, by the one thread that set
 * p->refreshing. */
static int resolve_chain(struct aws_credentials *out, enum creds_source *src,
                         struct aws_creds_provider *p, struct gw_err *err)
{
    int found = 0, rc;

    *src = SRC_NONE;
    if ((rc = from_env(out, &found, p, err)) != 0 || found) {
        *src = SRC_ENV;
        return rc;
    }
    if ((rc = from_files(out, &found, p, err)) != 0 || found) {
        *src = SRC_FILES;
        return rc;
    }
    /* Configured container credentials that fail are an error: falling
     * through to IMDS could hand out the host's role instead of the task's. */
    if ((rc = from_ecs(out, &found, p, err)) != 0 || found) {
        *src = SRC_ECS;
        return rc;
    }
    if ((rc = from_imds(out, &found, p, err)) != 0 || found) {
        *src = SRC_IMDS;
        return rc;
    }
    return gw_err_set(err, GW_ENOTFOUND,
                      "no AWS credentials: none in the environment, the shared files or a "
                      "container endpoint, and IMDS is disabled (AWS_EC2_METADATA_DISABLED)");
}

/* The cached credentials can still be used (they have not actually expired). */
static int cache_usable(const struct aws_creds_provider *p, int64_t now_ms)
{
    return p->have_cached && (p->cached.expiration_ms == 0 || now_ms < p->cached.expiration_ms);
}

static int cache_fresh(const struct aws_creds_provider *p, int64_t now_ms, int64_t now_mono)
{
    if (!cache_usable(p, now_ms))
        return 0;
    if (now_mono < p->retry_after_mono_ms)
        return 1; /* a refresh failed a moment ago: keep serving */
    if (p->cached.expiration_ms == 0)
        return now_mono - p->fetched_mono_ms < CREDS_STATIC_RECHECK_MS;
    return now_ms < p->cached.expiration_ms - p->refresh_before_ms;
}

int aws_creds_provider_new(struct aws_creds_provider **out, const struct aws_creds_opts *opts,
                           struct gw_err *err)
{
    int rc = GW_OK;
    struct aws_creds_provider *p = NULL;
    struct aws_creds_opts none = {0};

    assert(out != NULL);
    *out = NULL;
    if (opts == NULL)
        opts = &none;
    if (opts->timeout_ms < 0 || opts->refresh_before_expiry_s < 0)
        return gw_err_set(err, GW_EINVAL,
                          "AWS credentials: timeout_ms and refresh_before_expiry_s must be >= 0");
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    p->getenv_fn = opts->getenv_fn; /* NULL: getenv (aws_env) */
    p->getenv_ctx = opts->getenv_ctx;
    p->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : CREDS_DEFAULT_TIMEOUT_MS;
    p->refresh_before_ms =
        1000LL * (opts->refresh_before_expiry_s > 0 ? opts->refresh_before_expiry_s
                                                    : CREDS_DEFAULT_REFRESH_S);
    if ((opts->ecs_base_url != NULL && (p->ecs_base_url = strdup(opts->ecs_base_url)) == NULL) ||
        (opts->imds_base_url != NULL && (p->imds_base_url = strdup(opts->imds_base_url)) == NULL)) {
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        rc = gw_err_set(err, GW_ENOMEM, "AWS credentials: pthread_mutex_init failed");
        goto cleanup;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        rc = gw_err_set(err, GW_ENOMEM, "AWS credentials: pthread_cond_init failed");
        goto cleanup;
    }
    *out = p;
    p = NULL;

cleanup:
    if (p != NULL) {
        free(p->ecs_base_url);
        free(p->imds_base_url);
        free(p);
    }
    return rc;
}

void aws_creds_provider_free(struct aws_creds_provider *p)
{
    if (p == NULL)
        return;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->ecs_base_url);
    free(p->imds_base_url);
    OPENSSL_cleanse(p, sizeof(*p));
    free(p);
}

/* Records the outcome of the refresh this thread made (called with p->mu
 * held) and wakes the waiting threads. On failure, credentials still valid
 * keep serving (GW_OK) until the next try. Returns the caller's result. */
static int refresh_done(struct aws_credentials *out, struct aws_creds_provider *p, int rc,
                        const struct aws_credentials *fresh, enum creds_source src,
                        const struct gw_err *ferr, struct gw_err *err)
{
    p->refreshing = 0;
    p->refresh_gen++;
    p->last_err = *ferr;
    pthread_cond_broadcast(&p->cv);
    int64_t now = gw_now_ms();
    if (rc == GW_OK) {
        p->cached = *fresh;
        p->have_cached = 1;
        p->source = src;
        p->fetched_mono_ms = mono_ms();
        p->retry_after_mono_ms = 0;
        *out = p->cached;
        return GW_OK;
    }
    if (!cache_usable(p, now))
        return gw_err_set(err, rc, "%s", ferr->msg);
    char left[48];
    if (p->cached.expiration_ms == 0)
        gw_fmt(left, sizeof(left), "no expiry");
    else
        gw_fmt(left, sizeof(left), "expire in %lld s",
               (long long)((p->cached.expiration_ms - now) / 1000));
    GW_LOG_WARN("AWS credentials: refresh failed (%s: %s); still serving the %s credentials "
                "(%s); next attempt in %lld s",
                gw_code_name(rc), ferr->msg, source_names[p->source], left,
                CREDS_RETRY_AFTER_MS / 1000);
    p->retry_after_mono_ms = mono_ms() + CREDS_RETRY_AFTER_MS;
    *out = p->cached;
    return GW_OK;
}

int aws_creds_get(struct aws_credentials *out, struct aws_creds_provider *p, struct gw_err *err)
{
    int rc = GW_OK, waited = 0;
    unsigned long long waited_for = 0;
    struct aws_credentials *fresh = NULL;
    enum creds_source src = SRC_NONE;
    struct gw_err ferr = {0};

    assert(out != NULL && p != NULL);
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int64_t now = gw_now_ms(), mono = mono_ms();
        if (cache_fresh(p, now, mono)) {
            *out = p->cached;
            goto unlock;
        }
        if (waited && p->refresh_gen != waited_for) {
            /* The refresh this thread waited for is over: share its outcome
             * rather than start another one. */
            if (cache_usable(p, now)) {
                *out = p->cached;
            } else {
                rc = gw_err_set(err, p->last_err.code, "%s", p->last_err.msg);
            }
            goto unlock;
        }
        if (!p->refreshing)
            break;
        if (cache_usable(p, now)) {
            *out = p->cached; /* another thread is refreshing: the old ones still work */
            goto unlock;
        }
        waited = 1;
        waited_for = p->refresh_gen;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    p->refreshing = 1;
    pthread_mutex_unlock(&p->mu);

    fresh = calloc(1, sizeof(*fresh));
    if (fresh == NULL) {
        rc = GW_ENOMEM; /* spelled out: the analyzer cannot see gw_err_set's result */
        (void)gw_err_set(&ferr, rc, "out of memory");
    } else {
        rc = resolve_chain(fresh, &src, p, &ferr);
    }
    if (rc != GW_OK && ferr.code == 0)
        ferr.code = rc;

    pthread_mutex_lock(&p->mu);
    rc = refresh_done(out, p, rc, fresh, src, &ferr, err);

unlock:
    pthread_mutex_unlock(&p->mu);
    if (fresh != NULL) {
        OPENSSL_cleanse(fresh, sizeof(*fresh));
        free(fresh);
    }
    return rc;
}

const char *aws_creds_source(struct aws_creds_provider *p)
{
    assert(p != NULL);
    pthread_mutex_lock(&p->mu);
    const char *s = source_names[p->source];
    pthread_mutex_unlock(&p->mu);
    return s;
}
