/*
 * credentials.h — where AWS credentials come from, in the order the AWS SDKs
 * look: environment variables; the shared credentials and config files
 * (AWS_PROFILE); the ECS container endpoint (AWS_CONTAINER_CREDENTIALS_
 * RELATIVE_URI / _FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]);
 * EC2 instance metadata with IMDSv2 tokens. The provider caches what it
 * found, refreshes it before it expires, is safe to share between threads,
 * and never logs a secret.
 *
 * Ownership: the provider is the caller's (aws_creds_provider_new/_free, the
 * latter once no aws_creds_get runs); credentials are copied into the
 * caller's struct, which should be cleansed (OPENSSL_cleanse) after use.
 */
#ifndef MLGW_AWS_CREDENTIALS_H
#define MLGW_AWS_CREDENTIALS_H

#include <stddef.h>

#include "aws/sigv4.h"
#include "common/err.h"

/* Looks up an environment variable (borrowed, may return NULL). Called from
 * whichever thread refreshes: it has to be thread-safe. */
typedef const char *(*aws_env_getter)(const char *name, void *ctx);

/* The variable's value through fn (getenv when NULL; borrowed), or NULL when
 * it is unset or empty, as the SDKs treat it. */
const char *aws_env(aws_env_getter fn, void *ctx, const char *name);

struct aws_creds_provider;

struct aws_creds_opts {
    aws_env_getter getenv_fn; /* NULL: getenv */
    void *getenv_ctx;
    /* Base URLs of the metadata services, for tests; NULL: the real ones
     * (http://169.254.170.2 for ECS relative URIs, http://169.254.169.254 or
     * AWS_EC2_METADATA_SERVICE_ENDPOINT for IMDS). */
    const char *ecs_base_url;
    const char *imds_base_url;
    int timeout_ms;              /* per metadata HTTP call; 0: 1000 */
    int refresh_before_expiry_s; /* 0: 300 */
};

int aws_creds_provider_new(struct aws_creds_provider **out, const struct aws_creds_opts *opts,
                           struct gw_err *err);
void aws_creds_provider_free(struct aws_creds_provider *p);

/*
 * Current credentials (copied into out). Errors: GW_ENOTFOUND (no source has
 * any), GW_EUNAVAIL (a metadata endpoint failed), GW_EINVAL (a malformed
 * file or answer, or libcurl refused an option). err never contains a secret. Less often: GW_EIO (a
 * file exists but cannot be read), GW_ETOOBIG (a file over 1 MiB, an answer over 64 KiB),
 * GW_ENOMEM.
 *
 * Caching: ECS and IMDS credentials are kept until refresh_before_expiry_s
 * before their Expiration; environment and file credentials (no expiry) are
 * re-read every five minutes. When a refresh fails while the cached
 * credentials have not expired, those are returned (a warning is logged) and
 * the next attempt waits ten seconds. One thread refreshes at a time.
 */
int aws_creds_get(struct aws_credentials *out, struct aws_creds_provider *p, struct gw_err *err);

/* Which source answered last: "environment", "shared-files", "ecs", "imds" or "".
 * A static string; thread-safe. Exposed for tests. */
const char *aws_creds_source(struct aws_creds_provider *p);

/* Two pieces of the shared-file reader, exposed for tests. Both take one line
 * already stripped of surrounding white space (line, len bytes) and point
 * into it; pure, safe from any thread. */

/* "[name]", optionally followed by a '#' or ';' comment: *name and *name_len
 * get the name without surrounding white space. NULL, or why the line is
 * refused ("a section header without ']'", "text after a section header"). */
const char *aws_ini_section(const char **name, size_t *name_len, const char *line, size_t len);

/* "key = value": the key and the value without surrounding white space, the
 * value also without a trailing comment (white space, then '#' or ';').
 * GW_OK, or GW_EINVAL when the line has no '='. */
int aws_ini_key_value(const char **key, size_t *key_len, const char **value, size_t *value_len,
                      const char *line, size_t len);

#endif
