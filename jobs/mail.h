/*
 * mail.h — sends one plain-text email over SMTP (libcurl).
 *
 * The notifier's transport for email: it formats an RFC 5322 message and hands
 * it to one SMTP server, with STARTTLS or implicit TLS, optional AUTH and a
 * deadline. Queueing, retries and who gets which notification belong to the
 * caller; the return code says whether a retry can help. Like every libcurl
 * user here it needs curl_global_init() to have run (main does it).
 *
 * Nothing here keeps state: every function is safe from any thread on
 * arguments the caller does not share.
 */
#ifndef MLGW_SERVER_MAIL_H
#define MLGW_SERVER_MAIL_H

#include <curl/curl.h>
#include <stddef.h>

#include "common/err.h"

/* Limits checked before anything is built or sent. */
enum {
    JOBS_MAIL_MAX_RCPT = 100,            /* RFC 5321 §4.5.3.1.8: servers take at least 100 */
    JOBS_MAIL_MAX_ADDR = 254,            /* RFC 5321 §4.5.3.1.3 path, less the brackets */
    JOBS_MAIL_MAX_SUBJECT = 900,         /* bytes of UTF-8 */
    JOBS_MAIL_MAX_MESSAGE = 1024 * 1024, /* the whole formatted message */
};

/* MLGW_SMTP_TLS: required, opportunistic or off. */
enum jobs_smtp_tls {
    JOBS_SMTP_TLS_REQUIRED,      /* STARTTLS must succeed (CURLUSESSL_ALL) */
    JOBS_SMTP_TLS_OPPORTUNISTIC, /* STARTTLS when offered (CURLUSESSL_TRY); see jobs_mail_send */
    JOBS_SMTP_TLS_OFF,           /* plain SMTP, for local relays */
};

/* Where and how to send; all strings borrowed for the call. */
struct jobs_mail_opts {
    const char *url; /* smtp://host[:port] (STARTTLS per tls) or smtps://host[:port]
                        (implicit TLS whatever tls says); no user:password@ in it */
    enum jobs_smtp_tls tls;
    const char *user;     /* AUTH (libcurl picks the SASL mechanism) when non-NULL and non-empty */
    const char *password; /* never logged, never put in err */
    const char *ca_file;  /* PEM CA bundle used instead of the system's (tests, private
                             relays); NULL: the system store. Verification is always on. */
    int timeout_ms;       /* the whole transaction; 0: 15000 */
};

/* One message; all strings borrowed for the call. */
struct jobs_mail {
    const char *from;      /* "ml-gateway <noreply@example.com>" or a bare address */
    const char *const *to; /* bare addresses (dot-atom@domain, ASCII) */
    size_t nto;            /* 1..JOBS_MAIL_MAX_RCPT */
    const char *subject;   /* UTF-8; RFC 2047 encoded when not plain ASCII */
    const char *body;      /* UTF-8 plain text; NULL is empty */
};

/* Formats m and sends it to every recipient in one SMTP transaction (one
 * refused recipient fails the whole send). The envelope sender is the bare
 * address of m->from.
 *
 * With opportunistic TLS and a user set, STARTTLS is required after all: a
 * server (or a man in the middle) that does not offer it would otherwise get
 * the password in clear. Set tls to off to send credentials to a plain relay.
 *
 * Returns 0 once the server accepted the message;
 *   GW_EUNAVAIL  transient: cannot connect, timeout, connection lost, 4xx reply;
 *   GW_EUPSTREAM permanent: 5xx reply (recipient refused, AUTH failed), TLS
 *                not offered or the certificate not trusted, protocol errors;
 *   GW_EINVAL    bad input: CR/LF or other forbidden characters in from, to or
 *                subject (header injection), malformed addresses or url;
 *   GW_ETOOBIG   over one of the limits above; GW_ENOMEM.
 * err names the SMTP reply code when there is one; it never holds the password. */
int jobs_mail_send(const struct jobs_mail_opts *o, const struct jobs_mail *m, struct gw_err *err);

/* The message jobs_mail_send would send, for tests (new: free()). unix_time
 * gives the Date header; message_id is the Message-ID without its angle
 * brackets ("local@domain"), NULL for a random one at the From address's
 * domain. NULL when m is invalid (as GW_EINVAL/GW_ETOOBIG above) or out of
 * memory. Header lines are CRLF-terminated and at most 78 characters where
 * they can be folded; body lines are normalised to CRLF, invalid UTF-8
 * becomes U+FFFD and lines over 998 bytes are broken. */
char *jobs_mail_format(const struct jobs_mail *m, long long unix_time, const char *message_id);

/* ---- the pieces of jobs_mail_send, public for tests ---- */

/* Checks an SMTP URL: smtp or smtps, a host, no user or password in it.
 * Writes "host:port" (the scheme's default port when none is given) into
 * hostport (caller-owned, len bytes) and sets *implicit_tls for smtps.
 * GW_EINVAL (the message never repeats credentials), GW_ENOMEM. */
int jobs_mail_check_url(char *hostport, size_t len, int *implicit_tls, const char *url,
                        struct gw_err *err);

/* The CURLOPT_USE_SSL value for tls: CURLUSESSL_NONE when off, CURLUSESSL_TRY
 * when opportunistic, CURLUSESSL_ALL when required. Opportunistic with a
 * user over smtp (not smtps) becomes CURLUSESSL_ALL and sets *upgraded to 1
 * (else 0), so that a password never goes in clear. */
long jobs_mail_use_ssl(enum jobs_smtp_tls tls, int has_user, int implicit_tls, int *upgraded);

/* The code jobs_mail_send returns for a failed transfer: a 4xx reply,
 * no connection, a timeout or a lost connection is GW_EUNAVAIL; a 5xx reply,
 * TLS refused or untrusted and other protocol errors are GW_EUPSTREAM;
 * libcurl out of memory is GW_ENOMEM. reply: the SMTP reply code, 0 if none. */
int jobs_mail_classify(CURLcode res, long reply);

/* Writes the message of a failed transfer into err (NULL-tolerant) and
 * returns jobs_mail_classify(res, reply): the reply code when there is one,
 * detail (libcurl's error buffer; NULL or "" for curl_easy_strerror(res))
 * and a hint for STARTTLS and certificate failures (upgraded: see
 * jobs_mail_use_ssl). Should the text hold password, it is withheld. */
int jobs_mail_failure(struct gw_err *err, CURLcode res, long reply, const char *hostport,
                      const char *detail, int upgraded, const char *password);

#endif
