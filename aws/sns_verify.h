/*
 * sns_verify.h — parsing and signature verification of the messages Amazon
 * SNS POSTs to an HTTP(S) subscription (Notification, SubscriptionConfirmation,
 * UnsubscribeConfirmation), after AWS's "Verifying the signatures of Amazon
 * SNS messages", and the confirmation of a subscription (a GET of its
 * SubscribeURL). Checking the topic or the age of a message, and deciding to
 * confirm, is the caller's business.
 *
 * Threads: a verifier is shared by all threads (aws_sns_verify and
 * aws_sns_cert_url_check are safe at once; aws_sns_verifier_free only once
 * none runs). A parsed message is the caller's and used by one thread at a
 * time. aws_sns_verify and aws_sns_confirm_subscription block for I/O.
 */
#ifndef MLGW_AWS_SNS_VERIFY_H
#define MLGW_AWS_SNS_VERIFY_H

#include <stddef.h>

#include "common/err.h"

/* Largest body aws_sns_message_parse accepts (SNS messages are at most 256 KiB,
 * JSON escaping can grow them). */
#define AWS_SNS_MAX_BODY ((size_t)2 * 1024 * 1024)

/* A message as SNS posts it. Only the fields SNS signs, and how to check the
 * signature, are kept (UnsubscribeURL is not). */
struct aws_sns_message {
    char type[32]; /* Notification | SubscriptionConfirmation | UnsubscribeConfirmation */
    char message_id[128];
    char topic_arn[256];
    char subject[256];
    int has_subject; /* Notification with a Subject (signed only when present) */
    char timestamp[64];
    char signature_version[4];
    char signing_cert_url[1024];
    char subscribe_url[2048]; /* the two confirmation types only */
    char token[1024];         /* the two confirmation types only */
    char *message;            /* new: aws_sns_message_dispose */
    char *signature_b64;      /* new: aws_sns_message_dispose */
};

/* Parses the JSON body SNS POSTs. GW_EPARSE: not a JSON object (or duplicate
 * keys); GW_EINVAL: a field SNS always sends is missing, not a string or too
 * long, or Type is unknown; GW_ETOOBIG: len > AWS_SNS_MAX_BODY. On failure out
 * holds nothing to dispose (disposing it anyway is harmless). */
int aws_sns_message_parse(struct aws_sns_message *out, const char *body, size_t len,
                          struct gw_err *err);
void aws_sns_message_dispose(struct aws_sns_message *m);

/* The string SNS signs: "Key\nValue\n" for Message, MessageId, Subject (if
 * present), Timestamp, TopicArn, Type (Notification) or Message, MessageId,
 * SubscribeURL, Timestamp, Token, TopicArn, Type (the confirmations).
 * New (free()); NULL for an unknown Type or out of memory. Exposed for
 * tests. */
char *aws_sns_string_to_sign(const struct aws_sns_message *m);

struct aws_sns_verifier; /* trust store and certificate cache; thread-safe */

struct aws_sns_verifier_opts {
    /* CA bundle file (CURLOPT_CAINFO) that libcurl uses in place of its
     * default bundle file to check the TLS server that serves the certificate
     * (tests); a CA directory libcurl was built with still applies. NULL:
     * libcurl's defaults. TLS peer and host verification are always on. */
    const char *ca_file;
    /* Tests only. NULL: certificate URLs must be https://sns.<region>.amazonaws.com
     * or .amazonaws.com.cn. Set: a host equal to this suffix or ending in
     * "." + suffix is accepted as well, on any port, and a signing certificate
     * named after that host is accepted besides sns.amazonaws.com. */
    const char *allowed_cert_host_suffix;
    /* Tests only: http:// on a host that matched allowed_cert_host_suffix. */
    int allow_http_cert_url;
    int timeout_ms; /* whole certificate fetch; <= 0: 5000 */
    /* A certificate URL whose fetch or check failed is refused without
     * another fetch for this long; <= 0: 30000. */
    int failure_ttl_ms;
    /* PEM file of the CA certificates that may issue the signing certificate
     * (roots or intermediates: each is a trust anchor). NULL: the system store,
     * the chain then has to reach one of its roots through the certificates
     * that follow the signing certificate in the fetched PEM. */
    const char *trust_pem_file;
};

/* GW_EINVAL: trust_pem_file cannot be loaded. The opts strings are copied.
 * curl_global_init must have been called. */
int aws_sns_verifier_new(struct aws_sns_verifier **out, const struct aws_sns_verifier_opts *o,
                         struct gw_err *err);
void aws_sns_verifier_free(struct aws_sns_verifier *v);

/*
 * 0 when m's signature is valid. Checks, in order: SignatureVersion ("1":
 * RSA PKCS#1 v1.5 with SHA-1, "2": with SHA-256), the SigningCertURL (as
 * aws_sns_cert_url_check), then the certificate (fetched once per URL and
 * cached, at most 16): it chains to trust_pem_file (or the system store), is
 * within its validity period, is named sns.amazonaws.com (subjectAltName DNS,
 * or the subject CN when there is none; no wildcards) and holds an RSA key;
 * then the signature over aws_sns_string_to_sign(m).
 * GW_EINVAL: unsupported version, bad URL, certificate or signature (or
 * libcurl refused an option);
 * GW_EUNAVAIL: the certificate could not be fetched (retry later); GW_ENOMEM.
 * err says which, never more (no message content, no certificate).
 */
int aws_sns_verify(struct aws_sns_verifier *v, const struct aws_sns_message *m, struct gw_err *err);

/* The SigningCertURL check alone, no I/O: https, no userinfo, query or fragment,
 * no port other than 443, host sns.<region>.amazonaws.com[.cn] (region like
 * "us-east-1"), path ending in ".pem", at most 1023 printable ASCII characters.
 * o may be NULL (no test widening). 0 or GW_EINVAL. */
int aws_sns_cert_url_check(const struct aws_sns_verifier_opts *o, const char *url,
                           struct gw_err *err);

/* The rules of aws_sns_cert_url_check one at a time, exposed for tests. Each
 * returns why the URL is refused ("is not https": static text that goes after
 * "SigningCertURL "), or NULL when it passes. Pure; safe from any thread. */

/* The whole URL as text: 1..1023 printable ASCII characters, none of them a
 * backslash, '@', '?' or '#', starting "https://" or "http://" (any case;
 * *https says which, and is 0 when refused). */
const char *aws_sns_url_text_refusal(const char *url, int *https);
/* host (lower case) and port (NULL: none named): on a widened test host
 * (equal to suffix or ending in "." + suffix; suffix may be NULL) anything
 * goes, http too when allow_http; else https, sns.<region>.amazonaws.com[.cn]
 * and no port but 443. *widened says whether suffix matched. */
const char *aws_sns_url_host_refusal(const char *host, const char *port, int https,
                                     const char *suffix, int allow_http, int *widened);
/* path (NULL: none) starts with '/' and ends in ".pem" after a name. */
const char *aws_sns_url_path_refusal(const char *path);

/*
 * Confirms a subscription: GETs subscribe_url, the SubscribeURL of a verified
 * SubscriptionConfirmation, which has to pass the host rules of
 * aws_sns_cert_url_check first (its path and query aside), so a signed but
 * hostile message cannot make the gateway fetch anything else. https only
 * (http too with opts->allow_http_cert_url, on a widened test host), no
 * redirects, 4 s for the whole call, opts->ca_file as for certificates; the
 * answer must be 200 and its body is discarded. opts may be NULL (no test
 * widening). GW_EINVAL: the URL is refused (or libcurl refused an option);
 * GW_EUNAVAIL: the fetch failed or did not answer 200; GW_ENOMEM. err is
 * internal (it may quote libcurl, never the URL). Blocks for the fetch.
 */
int aws_sns_confirm_subscription(const struct aws_sns_verifier_opts *opts,
                                 const char *subscribe_url, struct gw_err *err);

#endif
