/*
 * mail.c — one plain-text email over SMTP with libcurl: format, then send.
 *
 * The formatter builds an RFC 5322 message (UTF-8 text, 8bit) and is the
 * only place that turns caller strings into header lines, so it refuses
 * anything that could start a new one (CR, LF, other controls) and anything
 * that is not a plain address where an address goes. Non-ASCII subjects and
 * display names become RFC 2047 encoded words, cut at character boundaries;
 * long ASCII subjects are folded at blanks.
 * The sender checks the URL, hands the message to libcurl (a handle from
 * common/curl, every option checked) in one SMTP transaction and sorts
 * failures into "retry later" (4xx, network) and "will not work" (5xx, TLS);
 * the TLS choice and that sorting are pure functions, tested on their own.
 * Dot-stuffing is libcurl's job. There is no queue, retry or template here:
 * that is the notifier's.
 */
#include "jobs/mail.h"

#include <assert.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/curl.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"
#include "common/utf8.h"

#include "common/poison.h"

enum {
    DEFAULT_TIMEOUT_MS = 15000,
    MAX_NAME = 200,       /* bytes of a From display name */
    MAX_MESSAGE_ID = 300, /* the inside of <...> */
    LINE_SOFT = 78,       /* RFC 5322 §2.1.1: SHOULD */
    LINE_HARD = 998,      /* RFC 5322 §2.1.1: MUST */
    WORD_BYTES = 42,      /* text per encoded word: 12 + 56 base64 chars = 68 columns */
    MAX_HOSTPORT = 300,
};

/* Header text (subject, display name): no line breaks, no controls but TAB,
 * valid UTF-8, at most max bytes. */
static int check_text(const char *what, const char *s, size_t n, size_t max, struct gw_err *err)
{
    if (n > max)
        return gw_err_set(err, GW_ETOOBIG, "mail %s is %zu bytes, over %zu", what, n, max);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] == '\r' || p[i] == '\n')
            return gw_err_set(err, GW_EINVAL, "mail %s contains a line break", what);
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            return gw_err_set(err, GW_EINVAL, "mail %s contains a control character", what);
        size_t l = gw_utf8_seq(p + i, n - i, NULL);
        if (l == 0)
            return gw_err_set(err, GW_EINVAL, "mail %s is not valid UTF-8", what);
        i += l;
    }
    return GW_OK;
}

static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A plain address: dot-atom local part (at most 64 bytes), '@', a domain of
 * letters, digits and hyphens in dot-separated labels. ASCII only. */
static int addr_ok(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (n > JOBS_MAIL_MAX_ADDR || at == NULL)
        return 0;
    size_t local = (size_t)(at - s), dom = n - local - 1;
    if (local == 0 || local > 64 || dom == 0 || s[0] == '.' || s[local - 1] == '.')
        return 0;
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.' ? s[i + 1] == '.' : !is_atext(c))
            return 0;
    }
    size_t label = 0;
    for (size_t i = 0; i < dom; i++) {
        unsigned char c = (unsigned char)at[1 + i];
        if (c == '.') {
            if (label == 0 || at[i] == '-')
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0 && at[dom] != '-';
}

static int check_addr(const char *what, const char *s, size_t n, struct gw_err *err)
{
    if (memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL)
        return gw_err_set(err, GW_EINVAL, "mail %s contains a line break", what);
    if (!addr_ok(s, n))
        return gw_err_set(err, GW_EINVAL, "mail %s \"%.*s\" is not a plain address (local@domain)",
                          what, (int)(n < 80 ? n : 80), s);
    return GW_OK;
}

static const char *trim(const char *s, size_t *n)
{
    while (*n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        (*n)--;
    }
    while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
        (*n)--;
    return s;
}

/* The parts of m->from: a display name (unquoted, NUL-terminated) and the
 * bare address (borrowed from m->from). */
struct from_parts {
    char name[MAX_NAME + 1];
    size_t name_len;
    const char *addr;
    size_t addr_len;
};

static int parse_from(struct from_parts *out, const char *from, struct gw_err *err)
{
    out->name[0] = '\0';
    out->name_len = 0;
    size_t n = strlen(from);
    if (memchr(from, '\r', n) != NULL || memchr(from, '\n', n) != NULL)
        return gw_err_set(err, GW_EINVAL, "mail from contains a line break");
    const char *lt = strchr(from, '<');
    if (lt == NULL) {
        out->addr = trim(from, &n);
        out->addr_len = n;
        return check_addr("from", out->addr, n, err);
    }
    const char *gt = strchr(lt, '>');
    size_t after = gt != NULL ? strlen(gt + 1) : 0;
    if (gt != NULL)
        (void)trim(gt + 1, &after); /* only blanks may follow '>' */
    if (gt == NULL || strchr(lt + 1, '<') != NULL || after != 0)
        return gw_err_set(err, GW_EINVAL, "mail from is neither \"Name <address>\" nor an address");
    out->addr = lt + 1;
    out->addr_len = (size_t)(gt - lt - 1);
    int rc = check_addr("from", out->addr, out->addr_len, err);
    if (rc != GW_OK)
        return rc;

    size_t nl = (size_t)(lt - from);
    const char *name = trim(from, &nl);
    if (nl >= 2 && name[0] == '"' && name[nl - 1] == '"') { /* a quoted-string: unquote */
        size_t w = 0;
        for (size_t i = 1; i + 1 < nl; i++) {
            char c = name[i];
            if (c == '"')
                return gw_err_set(err, GW_EINVAL, "mail from has a stray quote in its name");
            if (c == '\\') {
                if (i + 2 >= nl)
                    return gw_err_set(err, GW_EINVAL, "mail from name ends in a backslash");
                c = name[++i];
            }
            if (w >= MAX_NAME)
                return gw_err_set(err, GW_ETOOBIG, "mail from name is over %d bytes", MAX_NAME);
            out->name[w++] = c;
        }
        out->name_len = w;
    } else {
        if (nl > MAX_NAME)
            return gw_err_set(err, GW_ETOOBIG, "mail from name is over %d bytes", MAX_NAME);
        memcpy(out->name, name, nl);
        out->name_len = nl;
    }
    out->name[out->name_len] = '\0';
    return check_text("from name", out->name, out->name_len, MAX_NAME, err);
}

/* Appends s[0..n) as RFC 2047 B-encoded words, at most WORD_BYTES of text
 * each, never splitting a character; words after the first go on folded
 * lines. s must be valid UTF-8. *col is the current column. */
static int add_encoded_words(struct gw_buf *b, const char *s, size_t n, size_t *col)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = GW_OK;
    for (size_t i = 0; i < n && rc == GW_OK;) {
        size_t take = 0;
        while (i + take < n) {
            size_t l = gw_utf8_seq(p + i + take, n - i - take, NULL);
            if (l == 0 || take + l > WORD_BYTES)
                break;
            take += l;
        }
        if (take == 0)
            return GW_EINVAL; /* not reached: callers check the text first */
        unsigned char enc[(WORD_BYTES + 2) / 3 * 4 + 1];
        int e = EVP_EncodeBlock(enc, p + i, (int)take);
        if (e < 0)
            return GW_EINVAL;
        if (i > 0 && (rc = gw_buf_adds(b, "\r\n ")) == GW_OK)
            *col = 1;
        if (rc == GW_OK)
            rc = gw_buf_printf(b, "=?UTF-8?B?%s?=", (const char *)enc);
        *col += 12 + (size_t)e;
        i += take;
    }
    return rc;
}

/* Non-ASCII text, or text a reader would take for encoded words. */
static int needs_encoding(const char *s, size_t n)
{
    if (strstr(s, "=?") != NULL)
        return 1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* Appends ASCII header text folded before blanks (RFC 5322 §2.2.3), so
 * lines stay within LINE_SOFT where the words allow; unfolding gives back s
 * exactly. A continuation line always holds more than blanks. */
static int add_folded(struct gw_buf *b, const char *s, size_t n, size_t col)
{
    int rc = GW_OK;
    for (size_t i = 0; i < n && rc == GW_OK;) {
        size_t j = i;
        while (j < n && (s[j] == ' ' || s[j] == '\t'))
            j++;
        size_t word = j;
        while (j < n && s[j] != ' ' && s[j] != '\t')
            j++;
        if (i > 0 && word > i && j > word && col + (j - i) > LINE_SOFT) {
            rc = gw_buf_adds(b, "\r\n");
            col = 0;
        }
        if (rc == GW_OK)
            rc = gw_buf_add(b, s + i, j - i);
        col += j - i;
        i = j;
    }
    return rc;
}

static int add_from(struct gw_buf *b, const struct from_parts *f)
{
    int rc = gw_buf_adds(b, "From: ");
    size_t col = 6;
    if (rc == GW_OK && f->name_len > 0) {
        int plain = 1, ascii = 1;
        for (size_t i = 0; i < f->name_len; i++) {
            unsigned char c = (unsigned char)f->name[i];
            plain = plain && (is_atext(c) || c == ' ');
            ascii = ascii && c < 0x80;
        }
        if (!ascii || strstr(f->name, "=?") != NULL) {
            rc = add_encoded_words(b, f->name, f->name_len, &col);
        } else if (plain) {
            rc = gw_buf_add(b, f->name, f->name_len);
            col += f->name_len;
        } else { /* ASCII with specials: a quoted-string */
            rc = gw_buf_adds(b, "\"");
            for (size_t i = 0; i < f->name_len && rc == GW_OK; i++) {
                char c = f->name[i];
                if (c == '"' || c == '\\')
                    rc = gw_buf_adds(b, "\\");
                if (rc == GW_OK)
                    rc = gw_buf_add(b, &c, 1);
            }
            if (rc == GW_OK)
                rc = gw_buf_adds(b, "\"");
            col += f->name_len + 2;
        }
        if (rc == GW_OK)
            rc = gw_buf_adds(b, col + f->addr_len + 3 > LINE_SOFT ? "\r\n <" : " <");
        if (rc == GW_OK)
            rc = gw_buf_add(b, f->addr, f->addr_len);
        if (rc == GW_OK)
            rc = gw_buf_adds(b, ">");
    } else if (rc == GW_OK) {
        rc = gw_buf_add(b, f->addr, f->addr_len);
    }
    return rc == GW_OK ? gw_buf_adds(b, "\r\n") : rc;
}

static int add_to(struct gw_buf *b, const struct jobs_mail *m)
{
    int rc = gw_buf_adds(b, "To: ");
    size_t col = 4;
    for (size_t i = 0; i < m->nto && rc == GW_OK; i++) {
        size_t n = strlen(m->to[i]);
        if (i > 0) {
            int fold = col + 2 + n > LINE_SOFT;
            rc = gw_buf_adds(b, fold ? ",\r\n " : ", ");
            col = fold ? 1 : col + 2;
        }
        if (rc == GW_OK)
            rc = gw_buf_add(b, m->to[i], n);
        col += n;
    }
    return rc == GW_OK ? gw_buf_adds(b, "\r\n") : rc;
}

static int add_subject(struct gw_buf *b, const char *s)
{
    size_t n = strlen(s), col = 9;
    int rc = gw_buf_adds(b, n > 0 ? "Subject: " : "Subject:");
    if (rc == GW_OK && n > 0)
        rc = needs_encoding(s, n) ? add_encoded_words(b, s, n, &col) : add_folded(b, s, n, col);
    return rc == GW_OK ? gw_buf_adds(b, "\r\n") : rc;
}

static int add_date(struct gw_buf *b, long long unix_time, struct gw_err *err)
{
    static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t t = (time_t)unix_time;
    if ((long long)t != unix_time || gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 ||
        tm.tm_year > 8099 || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
        return gw_err_set(err, GW_EINVAL, "mail date %lld is out of range", unix_time);
    /* English names whatever the locale: RFC 5322 §3.3. */
    return gw_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", wday[tm.tm_wday],
                         tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                         tm.tm_sec);
}

static int add_message_id(struct gw_buf *b, const struct from_parts *f, const char *id,
                          struct gw_err *err)
{
    if (id != NULL) {
        size_t n = strlen(id);
        const char *at = strchr(id, '@');
        if (n > MAX_MESSAGE_ID || at == NULL || at == id || at[1] == '\0')
            return gw_err_set(err, GW_EINVAL, "mail message id is not local@domain");
        for (size_t i = 0; i < n; i++)
            if (id[i] <= 0x20 || id[i] >= 0x7f || strchr("<>()[]\\,;:\"", id[i]) != NULL)
                return gw_err_set(err, GW_EINVAL, "mail message id has a forbidden character");
        return gw_buf_printf(b, "Message-ID: <%s>\r\n", id);
    }
    unsigned char rnd[16];
    char hex[2 * sizeof(rnd) + 1];
    int rc = gw_random_bytes(rnd, sizeof(rnd));
    if (rc != GW_OK)
        return gw_err_set(err, rc, "mail message id: no random bytes");
    gw_hex(hex, rnd, sizeof(rnd));
    size_t at = f->addr_len;
    while (at > 0 && f->addr[at - 1] != '@') /* checked: the address has one */
        at--;
    return gw_buf_printf(b, "Message-ID: <%s@%.*s>\r\n", hex, (int)(f->addr_len - at),
                         f->addr + at);
}

/* The body with every line ending as CRLF (CR, LF and CRLF all end a line),
 * invalid UTF-8 as U+FFFD (one per maximal ill-formed subpart, the rule of
 * gw_utf8_sanitize), lines over LINE_HARD bytes broken before the
 * character that would not fit, and a final CRLF. Runs of ordinary bytes
 * (the run ends at i) are copied at once. */
static int add_body(struct gw_buf *b, const char *body)
{
    const unsigned char *p = (const unsigned char *)body;
    size_t n = strlen(body), line = 0, run = 0, i = 0;
    int rc = GW_OK;
    while (i < n && rc == GW_OK) {
        int eol = p[i] == '\r' || p[i] == '\n';
        size_t bad = 1, l = eol ? 0 : gw_utf8_seq(p + i, n - i, &bad), width = l > 0 ? l : 3;
        if (eol || l == 0 || line + width > LINE_HARD) {
            if (run > 0)
                rc = gw_buf_add(b, body + i - run, run);
            run = 0;
        }
        if (rc != GW_OK)
            break;
        if (eol) {
            rc = gw_buf_adds(b, "\r\n");
            line = 0;
            i += (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (line + width > LINE_HARD) {
            if ((rc = gw_buf_adds(b, "\r\n")) != GW_OK)
                break;
            line = 0;
        }
        if (l == 0) {
            rc = gw_buf_adds(b, "\xef\xbf\xbd"); /* U+FFFD */
            i += bad;
        } else {
            run += l;
            i += l;
        }
        line += width;
    }
    if (rc == GW_OK && run > 0)
        rc = gw_buf_add(b, body + i - run, run);
    if (rc == GW_OK && n > 0 && (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0))
        rc = gw_buf_adds(b, "\r\n");
    return rc;
}

/* Checks m and formats it into b; f gets the parsed sender. */
static int mail_build(struct gw_buf *b, struct from_parts *f, const struct jobs_mail *m,
                      long long unix_time, const char *message_id, struct gw_err *err)
{
    assert(m != NULL);
    f->name[0] = '\0';
    f->name_len = 0;
    f->addr = "";
    f->addr_len = 0;
    if (m->from == NULL)
        return gw_err_set(err, GW_EINVAL, "mail has no from address");
    if (m->nto == 0 || m->to == NULL)
        return gw_err_set(err, GW_EINVAL, "mail has no recipients");
    if (m->nto > JOBS_MAIL_MAX_RCPT)
        return gw_err_set(err, GW_ETOOBIG, "mail has %zu recipients, over %d", m->nto,
                          JOBS_MAIL_MAX_RCPT);
    for (size_t i = 0; i < m->nto; i++)
        if (m->to[i] == NULL) {
            (void)gw_err_set(err, GW_EINVAL, "mail recipient %zu is NULL", i);
            return GW_EINVAL; /* a constant: the analyzer then knows to[] has no NULL below */
        }
    int rc = parse_from(f, m->from, err);
    for (size_t i = 0; i < m->nto && rc == GW_OK; i++)
        rc = check_addr("recipient", m->to[i], strlen(m->to[i]), err);
    const char *subject = m->subject != NULL ? m->subject : "";
    if (rc == GW_OK)
        rc = check_text("subject", subject, strlen(subject), JOBS_MAIL_MAX_SUBJECT, err);
    if (rc != GW_OK)
        return rc;

    if ((rc = add_from(b, f)) == GW_OK && (rc = add_to(b, m)) == GW_OK &&
        (rc = add_subject(b, subject)) == GW_OK && (rc = add_date(b, unix_time, err)) == GW_OK &&
        (rc = add_message_id(b, f, message_id, err)) == GW_OK)
        rc = gw_buf_adds(b, "MIME-Version: 1.0\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Transfer-Encoding: 8bit\r\n"
                            "\r\n");
    if (rc == GW_OK)
        rc = add_body(b, m->body != NULL ? m->body : "");
    if (rc == GW_ETOOBIG)
        return gw_err_set(err, rc, "mail message is over %d bytes", JOBS_MAIL_MAX_MESSAGE);
    if (rc == GW_ENOMEM)
        return gw_err_set(err, rc, "out of memory formatting a mail");
    return rc;
}

char *jobs_mail_format(const struct jobs_mail *m, long long unix_time, const char *message_id)
{
    struct gw_buf b;
    struct from_parts f;
    gw_buf_init(&b, JOBS_MAIL_MAX_MESSAGE);
    if (mail_build(&b, &f, m, unix_time, message_id, NULL) != GW_OK) {
        gw_buf_dispose(&b);
        return NULL;
    }
    return gw_buf_steal(&b);
}

/* ---- the SMTP URL ---- */

/* 1 when the URL names a user or a password. */
static int url_has_credentials(CURLU *u)
{
    char *user = NULL, *pass = NULL;
    int has = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
              curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK;
    curl_free(user);
    curl_free(pass);
    return has;
}

/* The scheme, host and port (the scheme's default when absent) of url, each
 * new (curl_free); GW_EINVAL when url is not an absolute URL with a host. */
static int url_parts(CURLU *u, const char *url, char **scheme, char **host, char **port,
                     struct gw_err *err)
{
    if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        (void)gw_err_set(err, GW_EINVAL, "SMTP URL is not smtp://host[:port] or smtps://...");
        return GW_EINVAL; /* a constant: the analyzer then knows the parts are set on GW_OK */
    }
    return GW_OK;
}

int jobs_mail_check_url(char *hostport, size_t len, int *implicit_tls, const char *url,
                        struct gw_err *err)
{
    char *scheme = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (u == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    int rc = url_parts(u, url, &scheme, &host, &port, err);
    if (rc != GW_OK)
        goto cleanup;
    if (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0) {
        rc = gw_err_set(err, GW_EINVAL, "SMTP URL scheme is %.16s, not smtp or smtps", scheme);
        goto cleanup;
    }
    /* Credentials in the URL would travel into error messages and logs. */
    if (url_has_credentials(u)) {
        rc = gw_err_set(err, GW_EINVAL, "SMTP URL carries credentials: set user and password");
        goto cleanup;
    }
    *implicit_tls = strcmp(scheme, "smtps") == 0;
    gw_fmt(hostport, len, "%s:%s", host, port);
cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* ---- TLS and failures: pure decisions ---- */

long jobs_mail_use_ssl(enum jobs_smtp_tls tls, int has_user, int implicit_tls, int *upgraded)
{
    /* Opportunistic TLS with a password would hand it to whoever strips STARTTLS. */
    *upgraded = tls == JOBS_SMTP_TLS_OPPORTUNISTIC && has_user && !implicit_tls;
    if (tls == JOBS_SMTP_TLS_OFF)
        return (long)CURLUSESSL_NONE;
    if (tls == JOBS_SMTP_TLS_OPPORTUNISTIC && !*upgraded)
        return (long)CURLUSESSL_TRY;
    return (long)CURLUSESSL_ALL;
}

int jobs_mail_classify(CURLcode res, long reply)
{
    if (reply >= 400 && reply < 500)
        return GW_EUNAVAIL;
    if (reply >= 500 && reply < 600)
        return GW_EUPSTREAM;
    switch (res) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING: return GW_EUNAVAIL;
    case CURLE_OUT_OF_MEMORY: return GW_ENOMEM;
    default: return GW_EUPSTREAM; /* TLS refused or untrusted, protocol errors */
    }
}

/* What to add to a failure's message so an operator knows where to look. */
static const char *failure_hint(CURLcode res, int upgraded)
{
    if (res == CURLE_USE_SSL_FAILED)
        return upgraded ? " (the server offers no STARTTLS; with a user set, opportunistic TLS "
                          "still requires it so that the password never goes in clear)"
                        : " (the server offers no STARTTLS)";
    if (res == CURLE_PEER_FAILED_VERIFICATION)
        return " (certificate not trusted or not for this host)";
    return "";
}

int jobs_mail_failure(struct gw_err *err, CURLcode res, long reply, const char *hostport,
                      const char *detail, int upgraded, const char *password)
{
    int rc = jobs_mail_classify(res, reply);
    const char *hint = failure_hint(res, upgraded);
    if (detail == NULL || detail[0] == '\0')
        detail = curl_easy_strerror(res);
    if (reply >= 400 && reply < 600)
        (void)gw_err_set(err, rc, "SMTP to %s: reply %ld: %s%s", hostport, reply, detail, hint);
    else
        (void)gw_err_set(err, rc, "SMTP to %s failed: %s%s", hostport, detail, hint);
    /* libcurl's messages do not hold the password; make sure of it. */
    if (err != NULL && password != NULL && password[0] != '\0' &&
        strstr(err->msg, password) != NULL)
        gw_fmt(err->msg, sizeof(err->msg), "SMTP to %s failed (reply %ld; detail withheld)",
               hostport, reply);
    return rc;
}

/* ---- sending ---- */

struct reader {
    const char *data;
    size_t len, off;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    struct reader *r = userp;
    size_t room = size * nitems, left = r->len - r->off; /* curl keeps size * nitems small */
    size_t n = left < room ? left : room;
    memcpy(buf, r->data + r->off, n);
    r->off += n;
    return n;
}

/* One send, checked and formatted: everything libcurl is handed. */
struct smtp_txn {
    struct gw_buf msg;                      /* the formatted message */
    struct from_parts from;                 /* its parsed sender */
    struct curl_slist *rcpt;                /* "<address>" per recipient */
    char mail_from[JOBS_MAIL_MAX_ADDR + 3]; /* "<address>" of the sender */
    char hostport[MAX_HOSTPORT];            /* for messages */
    int implicit_tls;                       /* smtps */
    struct reader reader;                   /* over msg */
};

/* Checks o and m and fills t (msg must be initialised; the caller disposes
 * of it and of t->rcpt whatever this returns). */
static int txn_prepare(struct smtp_txn *t, const struct jobs_mail_opts *o,
                       const struct jobs_mail *m, struct gw_err *err)
{
    char path[JOBS_MAIL_MAX_ADDR + 3];
    if (o->timeout_ms < 0)
        return gw_err_set(err, GW_EINVAL, "SMTP timeout is negative");
    int rc = jobs_mail_check_url(t->hostport, sizeof(t->hostport), &t->implicit_tls, o->url, err);
    if (rc == GW_OK)
        rc = mail_build(&t->msg, &t->from, m, (long long)time(NULL), NULL, err);
    for (size_t i = 0; i < m->nto && rc == GW_OK; i++) {
        gw_fmt(path, sizeof(path), "<%s>", m->to[i]); /* fits: checked by mail_build */
        rc = gw_curl_header(&t->rcpt, path, err);
    }
    if (rc != GW_OK)
        return rc;
    gw_fmt(t->mail_from, sizeof(t->mail_from), "<%.*s>", (int)t->from.addr_len, t->from.addr);
    t->reader = (struct reader){t->msg.data, t->msg.len, 0};
    return GW_OK;
}

/* A handle for t: common/curl's ground (smtp and smtps only, the deadline
 * for connecting and for the whole transaction) and the SMTP options. */
static int txn_handle(CURL **out, struct smtp_txn *t, const struct jobs_mail_opts *o, long use_ssl,
                      char *errbuf, struct gw_err *err)
{
    long timeout = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    struct gw_curl_opts co = {.url = o->url,
                              .protocols = "smtp,smtps",
                              .connect_timeout_ms = timeout,
                              .timeout_ms = timeout,
                              .errbuf = errbuf};
    CURL *h = NULL;
    int rc = gw_curl_new(&h, &co, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_USE_SSL, use_ssl, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2, err);
    if (rc == GW_OK && o->ca_file != NULL)
        rc = GW_CURL_SET(h, CURLOPT_CAINFO, o->ca_file, err);
    if (rc == GW_OK && o->user != NULL && o->user[0] != '\0') {
        rc = GW_CURL_SET(h, CURLOPT_USERNAME, o->user, err);
        if (rc == GW_OK)
            rc = GW_CURL_SET(h, CURLOPT_PASSWORD, o->password != NULL ? o->password : "", err);
    }
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_MAIL_FROM, t->mail_from, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_MAIL_RCPT, t->rcpt, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_UPLOAD, 1L, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_READFUNCTION, read_cb, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_READDATA, &t->reader, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->msg.len, err);
    if (rc != GW_OK) {
        curl_easy_cleanup(h);
        return rc;
    }
    *out = h;
    return GW_OK;
}

int jobs_mail_send(const struct jobs_mail_opts *o, const struct jobs_mail *m, struct gw_err *err)
{
    struct smtp_txn t = {.rcpt = NULL};
    CURL *h = NULL;
    CURLcode res;
    char errbuf[CURL_ERROR_SIZE] = "";
    int upgraded = 0, rc;
    long use_ssl, reply = 0;
    assert(o != NULL && m != NULL);
    gw_buf_init(&t.msg, JOBS_MAIL_MAX_MESSAGE);

    if ((rc = txn_prepare(&t, o, m, err)) != GW_OK)
        goto cleanup;
    use_ssl =
        jobs_mail_use_ssl(o->tls, o->user != NULL && o->user[0] != '\0', t.implicit_tls, &upgraded);
    if ((rc = txn_handle(&h, &t, o, use_ssl, errbuf, err)) != GW_OK)
        goto cleanup;
    res = curl_easy_perform(h);
    if (res != CURLE_OK) {
        if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply) != CURLE_OK)
            reply = 0;
        rc = jobs_mail_failure(err, res, reply, t.hostport, errbuf, upgraded, o->password);
    }

cleanup:
    curl_easy_cleanup(h);
    curl_slist_free_all(t.rcpt);
    gw_buf_dispose(&t.msg);
    return rc;
}
