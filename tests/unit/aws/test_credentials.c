/*
 * test_credentials.c — unit tests for aws/credentials.c: the default chain
 * (environment, shared files, ECS container endpoint, IMDSv2), its cache and
 * its refusal to leak secrets. The environment is a per-test table handed in
 * through the env getter, never the process's own; the ECS and IMDS endpoints
 * are a libmicrohttpd server on 127.0.0.1 inside the test that records every
 * request it gets (method, path and the headers that matter).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "common/err.h"
#include "common/log.h"
#include "common/time.h"

/* ---- the environment table ------------------------------------------------ */

struct envtab {
    const char *name[24];
    const char *value[24];
    size_t n;
};

static const char *tab_getenv(const char *name, void *ctx)
{
    const struct envtab *t = ctx;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->name[i], name) == 0)
            return t->value[i];
    return NULL;
}

/* Sets (or, with value NULL, unsets) a variable; the strings are borrowed. */
static void env_set(struct envtab *t, const char *name, const char *value)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->name[i], name) == 0) {
            if (value == NULL) {
                t->n--;
                t->name[i] = t->name[t->n];
                t->value[i] = t->value[t->n];
            } else {
                t->value[i] = value;
            }
            return;
        }
    }
    if (value == NULL)
        return;
    cr_assert_lt(t->n, GW_ARRAY_LEN(t->name));
    t->name[t->n] = name;
    t->value[t->n] = value;
    t->n++;
}

/* ---- temporary files ------------------------------------------------------------ */

/* A new file under /tmp holding content; returns its path (free it, unlink it). */
static char *tmp_file(const char *content)
{
    char *path = strdup("/tmp/mlgw-creds-test-XXXXXX");
    cr_assert_not_null(path);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t len = strlen(content);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    cr_assert_eq(close(fd), 0);
    return path;
}

/* A path under /tmp that does not exist. */
static char *tmp_missing(void)
{
    char *path = tmp_file("");
    cr_assert_eq(unlink(path), 0);
    return path;
}

static void tmp_remove(char *path)
{
    if (path == NULL)
        return;
    (void)unlink(path);
    free(path);
}

/* ---- the metadata server ------------------------------------------------------- */

#define MOCK_MAX_RECS 64

struct rec {
    char method[8];
    char path[256];
    char ttl[32];   /* X-aws-ec2-metadata-token-ttl-seconds */
    char token[64]; /* X-aws-ec2-metadata-token */
    char auth[256]; /* Authorization */
};

struct mock {
    struct MHD_Daemon *d;
    char base[64];
    pthread_mutex_t mu;
    /* Recorded. */
    struct rec recs[MOCK_MAX_RECS];
    int nrecs;
    int creds_gets; /* credential documents served (ECS or IMDS role) */
    int token_puts;
    /* Behaviour, set by the test. */
    int fail;         /* 500 for everything but the IMDS token */
    int token_status; /* status of PUT /latest/api/token; 0: 200 */
    int delay_ms;     /* before a credential document */
    long long expires_ms;
    const char *expiration_text; /* overrides expires_ms */
    char current_token[64];      /* the IMDS token that is accepted */
    int tokens_issued;
};

static void rec_header(char *out, size_t outlen, struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    (void)snprintf(out, outlen, "%s", v != NULL ? v : "");
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static void iso8601(char *out, size_t outlen, long long ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    cr_assert_not_null(gmtime_r(&t, &tm));
    cr_assert_gt(strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm), 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    static int started;
    struct mock *m = cls;
    char body[1024], exp[64];
    (void)version, (void)upload_data;

    if (*con_cls == NULL) {
        *con_cls = &started;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&m->mu);
    if (m->nrecs < MOCK_MAX_RECS) {
        struct rec *r = &m->recs[m->nrecs++];
        (void)snprintf(r->method, sizeof(r->method), "%s", method);
        (void)snprintf(r->path, sizeof(r->path), "%s", url);
        rec_header(r->ttl, sizeof(r->ttl), c, "X-aws-ec2-metadata-token-ttl-seconds");
        rec_header(r->token, sizeof(r->token), c, "X-aws-ec2-metadata-token");
        rec_header(r->auth, sizeof(r->auth), c, "Authorization");
    }
    const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-aws-ec2-metadata-token");
    int token_ok = tok != NULL && m->current_token[0] != '\0' && strcmp(tok, m->current_token) == 0;
    unsigned status = 404;
    const char *text = "not found";
    int doc = 0;

    if (strcmp(method, "PUT") == 0 && strcmp(url, "/latest/api/token") == 0) {
        m->token_puts++;
        if (m->token_status != 0) {
            status = (unsigned)m->token_status, text = "no";
        } else if (MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                               "X-aws-ec2-metadata-token-ttl-seconds") == NULL) {
            status = 400, text = "missing ttl";
        } else {
            m->tokens_issued++;
            (void)snprintf(m->current_token, sizeof(m->current_token), "imds-session-token-%d",
                           m->tokens_issued);
            status = 200, text = m->current_token;
        }
    } else if (m->fail) {
        status = 500, text = "internal error";
    } else if (strcmp(url, "/latest/meta-data/iam/security-credentials/") == 0) {
        status = token_ok ? 200 : 401;
        text = token_ok ? "test-role\n" : "unauthorized";
    } else if (strcmp(url, "/latest/meta-data/iam/security-credentials/test-role") == 0) {
        status = token_ok ? 200 : 401;
        text = "unauthorized";
        doc = token_ok ? 1 : 0;
    } else if (strncmp(url, "/ecs/", 5) == 0 || strncmp(url, "/v2/credentials/", 16) == 0) {
        doc = 2;
    }
    if (doc != 0) {
        int n = ++m->creds_gets;
        const char *who = doc == 1 ? "IMDS" : "ECS";
        if (m->expiration_text != NULL)
            (void)snprintf(exp, sizeof(exp), "%s", m->expiration_text);
        else
            iso8601(exp, sizeof(exp), m->expires_ms);
        (void)snprintf(body, sizeof(body),
                       "{%s\"AccessKeyId\":\"ASIA%s%d\",\"SecretAccessKey\":\"SECRET-%s-%d\","
                       "\"Token\":\"SESSION-%s-%d\",\"Expiration\":\"%s\"}",
                       doc == 1 ? "\"Code\":\"Success\",\"Type\":\"AWS-HMAC\"," : "", who, n, who,
                       n, who, n, exp);
        status = 200, text = body;
    }
    int delay = doc != 0 ? m->delay_ms : 0;
    pthread_mutex_unlock(&m->mu);
    if (delay > 0)
        (void)usleep((useconds_t)delay * 1000u);
    return reply(c, status, text);
}

static void mock_start(struct mock *m)
{
    memset(m, 0, sizeof(*m));
    cr_assert_eq(pthread_mutex_init(&m->mu, NULL), 0);
    m->expires_ms = gw_now_ms() + 3600 * 1000LL;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, &on_request, m, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    cr_assert_not_null(m->d, "cannot start the metadata server");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert_not_null(info);
    cr_assert_gt(info->port, 0);
    (void)snprintf(m->base, sizeof(m->base), "http://127.0.0.1:%u", (unsigned)info->port);
}

static void mock_stop(struct mock *m)
{
    MHD_stop_daemon(m->d);
    pthread_mutex_destroy(&m->mu);
}

static int mock_nrecs(struct mock *m)
{
    pthread_mutex_lock(&m->mu);
    int n = m->nrecs;
    pthread_mutex_unlock(&m->mu);
    return n;
}

static void mock_set_fail(struct mock *m, int fail)
{
    pthread_mutex_lock(&m->mu);
    m->fail = fail;
    pthread_mutex_unlock(&m->mu);
}

/* ---- fixtures ---------------------------------------------------------------------- */

static void suite_init(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
}

static void suite_fini(void)
{
    curl_global_cleanup();
}

TestSuite(aws_credentials, .init = suite_init, .fini = suite_fini);

/* A provider over t; the metadata services are m (or a closed port when NULL,
 * so nothing ever reaches the real 169.254.169.254). */
static struct aws_creds_provider *provider(struct envtab *t, struct mock *m, int refresh_s)
{
    struct aws_creds_provider *p = NULL;
    struct gw_err err = {0};
    struct aws_creds_opts o = {
        .getenv_fn = tab_getenv,
        .getenv_ctx = t,
        .ecs_base_url = m != NULL ? m->base : "http://127.0.0.1:1",
        .imds_base_url = m != NULL ? m->base : "http://127.0.0.1:1",
        .timeout_ms = 3000,
        .refresh_before_expiry_s = refresh_s,
    };
    cr_assert_eq(aws_creds_provider_new(&p, &o, &err), GW_OK, "%s", err.msg);
    cr_assert_not_null(p);
    return p;
}

/* Fails the test when s holds any of the secrets the fixtures use. */
static void assert_no_secret(const char *s)
{
    static const char *const secrets[] = {"SECRET-",       "secret-value",       "SESSION-",
                                          "session-value", "imds-session-token", "ecs-auth"};
    for (size_t i = 0; i < GW_ARRAY_LEN(secrets); i++)
        cr_assert_null(strstr(s, secrets[i]), "a secret (%s) leaked into: %s", secrets[i], s);
}

/* ---- environment ---------------------------------------------------------------------- */

Test(aws_credentials, env_pair_is_used_without_a_session_token_or_expiry)
{
    struct envtab t = {0};
    env_set(&t, "AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set(&t, "AWS_SECRET_ACCESS_KEY", "env-secret-value");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_str_eq(aws_creds_source(p), "");
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "AKIAENV");
    cr_assert_str_eq(c.secret_access_key, "env-secret-value");
    cr_assert_str_eq(c.session_token, "");
    cr_assert_eq(c.expiration_ms, 0);
    cr_assert_str_eq(aws_creds_source(p), "environment");
    aws_creds_provider_free(p);
}

Test(aws_credentials, env_pair_with_session_token_carries_the_token)
{
    struct envtab t = {0};
    env_set(&t, "AWS_ACCESS_KEY_ID", "ASIAENV");
    env_set(&t, "AWS_SECRET_ACCESS_KEY", "env-secret-value");
    env_set(&t, "AWS_SESSION_TOKEN", "env-session-value");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAENV");
    cr_assert_str_eq(c.session_token, "env-session-value");
    aws_creds_provider_free(p);
}

Test(aws_credentials, env_half_pair_is_invalid_and_names_the_missing_variable_without_secrets)
{
    struct envtab t = {0};
    env_set(&t, "AWS_SECRET_ACCESS_KEY", "env-secret-value");
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "true");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EINVAL);
    cr_assert_eq(err.code, GW_EINVAL);
    cr_assert_not_null(strstr(err.msg, "AWS_ACCESS_KEY_ID is not"), "%s", err.msg);
    assert_no_secret(err.msg);
    cr_assert_str_eq(c.secret_access_key, "", "out is cleared on failure");
    aws_creds_provider_free(p);

    struct envtab t2 = {0};
    env_set(&t2, "AWS_ACCESS_KEY_ID", "AKIAHALF");
    env_set(&t2, "AWS_EC2_METADATA_DISABLED", "true");
    p = provider(&t2, NULL, 0);
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EINVAL);
    cr_assert_not_null(strstr(err.msg, "AWS_SECRET_ACCESS_KEY is not"), "%s", err.msg);
    aws_creds_provider_free(p);
}

/* ---- shared files ------------------------------------------------------------------------ */

Test(aws_credentials, shared_credentials_file_serves_the_named_profile)
{
    char *cred = tmp_file("[default]\n"
                          "aws_access_key_id = AKIADEFAULT\n"
                          "aws_secret_access_key = default-secret-value\n"
                          "\n"
                          "[work]\n"
                          "aws_access_key_id = ASIAWORK\n"
                          "aws_secret_access_key = work-secret-value\n"
                          "aws_session_token = work-session-value\n");
    char *conf = tmp_missing();
    struct envtab t = {0};
    env_set(&t, "AWS_SHARED_CREDENTIALS_FILE", cred);
    env_set(&t, "AWS_CONFIG_FILE", conf);
    env_set(&t, "AWS_PROFILE", "work");
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "true");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAWORK");
    cr_assert_str_eq(c.secret_access_key, "work-secret-value");
    cr_assert_str_eq(c.session_token, "work-session-value");
    cr_assert_eq(c.expiration_ms, 0);
    cr_assert_str_eq(aws_creds_source(p), "shared-files");
    aws_creds_provider_free(p);
    tmp_remove(cred);
    tmp_remove(conf);
}

Test(aws_credentials, config_file_uses_profile_prefixed_sections_and_ignores_bare_names)
{
    char *cred = tmp_missing();
    char *conf = tmp_file("[default]\n"
                          "region = us-east-1\n"
                          "[x]\n"
                          "aws_access_key_id = AKIAWRONG\n"
                          "aws_secret_access_key = wrong-secret-value\n"
                          "[profile x]\n"
                          "aws_access_key_id = AKIACONFIGX\n"
                          "aws_secret_access_key = config-secret-value\n"
                          "[sso-session x]\n"
                          "aws_access_key_id = AKIAWRONG2\n");
    struct envtab t = {0};
    env_set(&t, "AWS_SHARED_CREDENTIALS_FILE", cred);
    env_set(&t, "AWS_CONFIG_FILE", conf);
    env_set(&t, "AWS_PROFILE", "x");
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "true");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "AKIACONFIGX");
    cr_assert_str_eq(c.secret_access_key, "config-secret-value");
    cr_assert_str_eq(aws_creds_source(p), "shared-files");
    aws_creds_provider_free(p);
    tmp_remove(cred);
    tmp_remove(conf);
}

Test(aws_credentials, credentials_file_wins_over_config_file_for_the_same_profile)
{
    char *cred = tmp_file("[default]\n"
                          "aws_access_key_id = AKIACREDFILE\n"
                          "aws_secret_access_key = credfile-secret-value\n");
    char *conf = tmp_file("[default]\n"
                          "aws_access_key_id = AKIACONFFILE\n"
                          "aws_secret_access_key = conffile-secret-value\n");
    struct envtab t = {0};
    env_set(&t, "AWS_SHARED_CREDENTIALS_FILE", cred);
    env_set(&t, "AWS_CONFIG_FILE", conf);
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "true");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "AKIACREDFILE");
    cr_assert_str_eq(c.secret_access_key, "credfile-secret-value");
    aws_creds_provider_free(p);
    tmp_remove(cred);
    tmp_remove(conf);
}

Test(aws_credentials, files_tolerate_comments_whitespace_crlf_case_and_nested_settings)
{
    char *cred = tmp_file("# a comment\r\n"
                          "; another comment\r\n"
                          "\r\n"
                          "  [ default ]   # trailing comment\r\n"
                          "\tAWS_Access_Key_ID\t=\tAKIASPACES   ; inline comment\r\n"
                          "\ts3 =\r\n"
                          "\t    addressing_style = path\r\n"
                          "\t    aws_access_key_id = AKIANESTED\r\n"
                          "\taws_secret_access_key=spaces-secret-value\r\n"
                          "\tAWS_SESSION_TOKEN =  tok/with+chars==  #c\r\n"
                          "\r\n");
    char *conf = tmp_missing();
    struct envtab t = {0};
    env_set(&t, "AWS_SHARED_CREDENTIALS_FILE", cred);
    env_set(&t, "AWS_CONFIG_FILE", conf);
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "true");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "AKIASPACES");
    cr_assert_str_eq(c.secret_access_key, "spaces-secret-value");
    cr_assert_str_eq(c.session_token, "tok/with+chars==");
    aws_creds_provider_free(p);
    tmp_remove(cred);
    tmp_remove(conf);
}

Test(aws_credentials, default_files_are_found_under_home_from_the_env_getter)
{
    char dir[] = "/tmp/mlgw-creds-home-XXXXXX";
    char awsdir[128], path[160];
    cr_assert_not_null(mkdtemp(dir));
    (void)snprintf(awsdir, sizeof(awsdir), "%s/.aws", dir);
    (void)snprintf(path, sizeof(path), "%s/credentials", awsdir);
    cr_assert_eq(mkdir(awsdir, 0700), 0);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_gt(
        fprintf(f, "[default]\naws_access_key_id=AKIAHOME\naws_secret_access_key=h-secret-value\n"),
        0);
    cr_assert_eq(fclose(f), 0);
    struct envtab t = {0};
    env_set(&t, "HOME", dir);
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "true");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    int rc = aws_creds_get(&c, p, &err);
    (void)unlink(path);
    (void)rmdir(awsdir);
    (void)rmdir(dir);
    cr_assert_eq(rc, GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "AKIAHOME");
    aws_creds_provider_free(p);
}

Test(aws_credentials, a_named_profile_missing_from_both_files_is_not_found_and_named)
{
    struct mock m;
    mock_start(&m);
    char *cred =
        tmp_file("[default]\naws_access_key_id=AKIAD\naws_secret_access_key=d-secret-value\n");
    char *conf = tmp_file("[profile other]\nregion=eu-west-1\n");
    struct envtab t = {0};
    env_set(&t, "AWS_SHARED_CREDENTIALS_FILE", cred);
    env_set(&t, "AWS_CONFIG_FILE", conf);
    env_set(&t, "AWS_PROFILE", "ghost");
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/ghost");
    struct aws_creds_provider *p = provider(&t, &m, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "ghost"), "%s", err.msg);
    cr_assert_eq(mock_nrecs(&m), 0, "the chain stops at a missing named profile");
    aws_creds_provider_free(p);
    mock_stop(&m);
    tmp_remove(cred);
    tmp_remove(conf);
}

Test(aws_credentials, a_profile_without_keys_is_skipped_and_the_chain_goes_on)
{
    struct mock m;
    mock_start(&m);
    char *cred = tmp_file("[default]\nregion = us-east-1\n");
    char *conf = tmp_file("[default]\nrole_arn = arn:aws:iam::123456789012:role/r\n");
    struct envtab t = {0};
    env_set(&t, "AWS_SHARED_CREDENTIALS_FILE", cred);
    env_set(&t, "AWS_CONFIG_FILE", conf);
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/next");
    struct aws_creds_provider *p = provider(&t, &m, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAECS1");
    cr_assert_str_eq(aws_creds_source(p), "ecs");
    aws_creds_provider_free(p);
    mock_stop(&m);
    tmp_remove(cred);
    tmp_remove(conf);
}

Test(aws_credentials, a_profile_with_half_a_key_pair_is_invalid_without_secrets_in_the_message)
{
    char *cred = tmp_file("[default]\naws_secret_access_key = half-secret-value\n");
    struct envtab t = {0};
    env_set(&t, "AWS_SHARED_CREDENTIALS_FILE", cred);
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "true");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EINVAL);
    cr_assert_not_null(strstr(err.msg, "aws_access_key_id"), "%s", err.msg);
    assert_no_secret(err.msg);
    aws_creds_provider_free(p);
    tmp_remove(cred);
}

Test(aws_credentials, a_malformed_line_is_invalid_and_reported_by_number_not_content)
{
    char *cred = tmp_file("[default]\naws_access_key_id = AKIAX\nsecret-value-on-its-own\n");
    struct envtab t = {0};
    env_set(&t, "AWS_SHARED_CREDENTIALS_FILE", cred);
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "true");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EINVAL);
    cr_assert_not_null(strstr(err.msg, ":3:"), "%s", err.msg);
    assert_no_secret(err.msg);
    aws_creds_provider_free(p);
    tmp_remove(cred);
}

/* The pure pieces of the file reader, on one stripped line. */

static void assert_span(const char *got, size_t n, const char *want)
{
    cr_assert_eq(n, strlen(want), "\"%.*s\" is not \"%s\"", (int)n, got, want);
    cr_assert_eq(memcmp(got, want, n), 0, "\"%.*s\" is not \"%s\"", (int)n, got, want);
}

static const char *section(const char **name, size_t *n, const char *line)
{
    return aws_ini_section(name, n, line, strlen(line));
}

Test(aws_credentials, ini_section_takes_the_trimmed_name_and_allows_a_comment_after)
{
    const char *name = NULL;
    size_t n = 0;
    cr_assert_null(section(&name, &n, "[default]"));
    assert_span(name, n, "default");
    cr_assert_null(section(&name, &n, "[  profile dev\t]"));
    assert_span(name, n, "profile dev");
    cr_assert_null(section(&name, &n, "[a] # the first"));
    assert_span(name, n, "a");
    cr_assert_null(section(&name, &n, "[a]\t; also a comment"));
    assert_span(name, n, "a");
    cr_assert_null(section(&name, &n, "[]"));
    assert_span(name, n, "");
}

Test(aws_credentials, ini_section_refuses_an_open_header_and_text_after_it)
{
    const char *name = "x";
    size_t n = 1;
    cr_assert_str_eq(section(&name, &n, "[default"), "a section header without ']'");
    cr_assert_null(name);
    cr_assert_eq(n, 0);
    cr_assert_str_eq(section(&name, &n, "default]"), "a section header without ']'");
    cr_assert_str_eq(section(&name, &n, "[a] b"), "text after a section header");
    cr_assert_str_eq(section(&name, &n, "[a]]"), "text after a section header");
    cr_assert_str_eq(aws_ini_section(&name, &n, "[a]", 0), "a section header without ']'");
}

static int key_value(const char **k, size_t *kn, const char **v, size_t *vn, const char *line)
{
    return aws_ini_key_value(k, kn, v, vn, line, strlen(line));
}

Test(aws_credentials, ini_key_value_trims_both_and_drops_a_trailing_comment)
{
    const char *k, *v;
    size_t kn, vn;
    cr_assert_eq(key_value(&k, &kn, &v, &vn, "aws_access_key_id = AKIAX"), GW_OK);
    assert_span(k, kn, "aws_access_key_id");
    assert_span(v, vn, "AKIAX");
    cr_assert_eq(key_value(&k, &kn, &v, &vn, "Key\t=\tv1 # note"), GW_OK);
    assert_span(k, kn, "Key");
    assert_span(v, vn, "v1");
    cr_assert_eq(key_value(&k, &kn, &v, &vn, "k=v;not-a-comment ;comment"), GW_OK);
    assert_span(v, vn, "v;not-a-comment");
    cr_assert_eq(key_value(&k, &kn, &v, &vn, "k = a=b"), GW_OK, "the first '=' splits");
    assert_span(k, kn, "k");
    assert_span(v, vn, "a=b");
    cr_assert_eq(key_value(&k, &kn, &v, &vn, "k ="), GW_OK);
    assert_span(v, vn, "");
    cr_assert_eq(key_value(&k, &kn, &v, &vn, "k = #only a comment"), GW_OK);
    assert_span(v, vn, "");
    cr_assert_eq(key_value(&k, &kn, &v, &vn, "= v"), GW_OK);
    assert_span(k, kn, "");
}

Test(aws_credentials, ini_key_value_without_an_equals_sign_is_invalid)
{
    const char *k, *v;
    size_t kn, vn;
    cr_assert_eq(key_value(&k, &kn, &v, &vn, "secret-value-on-its-own"), GW_EINVAL);
    cr_assert_eq(key_value(&k, &kn, &v, &vn, ""), GW_EINVAL);
    cr_assert_eq(aws_ini_key_value(&k, &kn, &v, &vn, "k=v", 1), GW_EINVAL, "only len counts");
}

/* ---- chain order ------------------------------------------------------------------------------
 */

Test(aws_credentials, chain_order_is_env_then_files_then_ecs_then_imds)
{
    struct mock m;
    mock_start(&m);
    char *cred =
        tmp_file("[default]\naws_access_key_id=AKIAFILE\naws_secret_access_key=f-secret-value\n");
    struct envtab t = {0};
    env_set(&t, "AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set(&t, "AWS_SECRET_ACCESS_KEY", "env-secret-value");
    env_set(&t, "AWS_SHARED_CREDENTIALS_FILE", cred);
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/order");
    struct aws_credentials c;
    struct gw_err err = {0};
    static const struct {
        const char *unset, *source, *key;
        int nrecs;
    } steps[] = {
        {NULL, "environment", "AKIAENV", 0},
        {"AWS_ACCESS_KEY_ID", "shared-files", "AKIAFILE", 0},
        {"AWS_SHARED_CREDENTIALS_FILE", "ecs", "ASIAECS1", 1},
        {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "imds", "ASIAIMDS2", 4},
    };

    for (size_t i = 0; i < GW_ARRAY_LEN(steps); i++) {
        if (steps[i].unset != NULL)
            env_set(&t, steps[i].unset, NULL);
        if (i == 1)
            env_set(&t, "AWS_SECRET_ACCESS_KEY", NULL);
        struct aws_creds_provider *p = provider(&t, &m, 0);
        cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "step %zu: %s", i, err.msg);
        cr_assert_str_eq(aws_creds_source(p), steps[i].source, "step %zu", i);
        cr_assert_str_eq(c.access_key_id, steps[i].key, "step %zu", i);
        cr_assert_eq(mock_nrecs(&m), steps[i].nrecs, "step %zu", i);
        aws_creds_provider_free(p);
    }
    mock_stop(&m);
    tmp_remove(cred);
}

/* ---- ECS ------------------------------------------------------------------------------------ */

Test(aws_credentials, ecs_relative_uri_sends_the_authorization_token_and_parses_the_answer)
{
    struct mock m;
    mock_start(&m);
    m.expiration_text = "2099-01-01T02:00:00.500+02:00"; /* 4070908800.5 s */
    struct envtab t = {0};
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc-123");
    env_set(&t, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-env-token");
    struct aws_creds_provider *p = provider(&t, &m, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(mock_nrecs(&m), 1);
    cr_assert_str_eq(m.recs[0].method, "GET");
    cr_assert_str_eq(m.recs[0].path, "/v2/credentials/abc-123");
    cr_assert_str_eq(m.recs[0].auth, "ecs-auth-env-token");
    cr_assert_str_eq(c.access_key_id, "ASIAECS1");
    cr_assert_str_eq(c.secret_access_key, "SECRET-ECS-1");
    cr_assert_str_eq(c.session_token, "SESSION-ECS-1");
    cr_assert_eq(c.expiration_ms, 4070908800500LL);
    cr_assert_str_eq(aws_creds_source(p), "ecs");
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, ecs_full_uri_reads_the_token_file_which_wins_over_the_variable)
{
    struct mock m;
    mock_start(&m);
    char url[128];
    (void)snprintf(url, sizeof(url), "%s/ecs/full", m.base);
    char *tokfile = tmp_file("  ecs-auth-file-token\n");
    struct envtab t = {0};
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    env_set(&t, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokfile);
    env_set(&t, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-env-token");
    struct aws_creds_provider *p = provider(&t, &m, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(mock_nrecs(&m), 1);
    cr_assert_str_eq(m.recs[0].path, "/ecs/full");
    cr_assert_str_eq(m.recs[0].auth, "ecs-auth-file-token");
    cr_assert_str_eq(c.access_key_id, "ASIAECS1");
    cr_assert_gt(c.expiration_ms, gw_now_ms());
    aws_creds_provider_free(p);
    mock_stop(&m);
    tmp_remove(tokfile);
}

Test(aws_credentials, ecs_full_uri_refuses_plain_http_to_other_hosts_and_other_schemes)
{
    static const char *const refused[] = {"http://example.com/creds", "http://10.1.2.3/creds",
                                          "http://169.254.169.254/latest", "ftp://127.0.0.1/x",
                                          "not a url"};
    struct aws_credentials c;
    struct gw_err err = {0};

    for (size_t i = 0; i < GW_ARRAY_LEN(refused); i++) {
        struct envtab t = {0};
        env_set(&t, "AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i]);
        env_set(&t, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-env-token");
        struct aws_creds_provider *p = provider(&t, NULL, 0);
        cr_assert_eq(aws_creds_get(&c, p, &err), GW_EINVAL, "%s: %s", refused[i], err.msg);
        cr_assert_not_null(strstr(err.msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI"), "%s", err.msg);
        assert_no_secret(err.msg);
        aws_creds_provider_free(p);
    }
    /* Loopback passes the check and is tried (port 1: nothing listens). */
    struct envtab t = {0};
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EUNAVAIL, "%s", err.msg);
    aws_creds_provider_free(p);
}

/* ---- IMDS ----------------------------------------------------------------------------------- */

Test(aws_credentials, imdsv2_puts_a_token_with_its_ttl_and_reuses_it_across_refreshes)
{
    struct mock m;
    mock_start(&m);
    m.expires_ms = gw_now_ms() + 60 * 1000LL; /* inside the 300 s window: every get refreshes */
    struct envtab t = {0};
    struct aws_creds_provider *p = provider(&t, &m, 300);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAIMDS1");
    cr_assert_str_eq(c.secret_access_key, "SECRET-IMDS-1");
    cr_assert_str_eq(c.session_token, "SESSION-IMDS-1");
    cr_assert_str_eq(aws_creds_source(p), "imds");
    cr_assert_eq(mock_nrecs(&m), 3);
    cr_assert_str_eq(m.recs[0].method, "PUT");
    cr_assert_str_eq(m.recs[0].path, "/latest/api/token");
    cr_assert_str_eq(m.recs[0].ttl, "21600");
    cr_assert_str_eq(m.recs[1].method, "GET");
    cr_assert_str_eq(m.recs[1].path, "/latest/meta-data/iam/security-credentials/");
    cr_assert_str_eq(m.recs[1].token, "imds-session-token-1");
    cr_assert_str_eq(m.recs[2].path, "/latest/meta-data/iam/security-credentials/test-role");
    cr_assert_str_eq(m.recs[2].token, "imds-session-token-1");

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAIMDS2");
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAIMDS3");
    cr_assert_eq(m.token_puts, 1, "the token is reused");
    cr_assert_eq(mock_nrecs(&m), 7);
    for (int i = 3; i < 7; i++) {
        cr_assert_str_eq(m.recs[i].method, "GET");
        cr_assert_str_eq(m.recs[i].token, "imds-session-token-1");
    }
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, imds_token_refused_with_401_is_renewed_once)
{
    struct mock m;
    mock_start(&m);
    m.expires_ms = gw_now_ms() + 60 * 1000LL;
    struct envtab t = {0};
    struct aws_creds_provider *p = provider(&t, &m, 300);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    pthread_mutex_lock(&m.mu);
    (void)snprintf(m.current_token, sizeof(m.current_token), "rotated"); /* ours is now stale */
    pthread_mutex_unlock(&m.mu);
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAIMDS2");
    cr_assert_eq(m.token_puts, 2);
    cr_assert_str_eq(m.recs[3].token, "imds-session-token-1"); /* refused with 401 */
    cr_assert_str_eq(m.recs[4].method, "PUT");
    cr_assert_str_eq(m.recs[5].token, "imds-session-token-2");
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, imds_endpoint_comes_from_the_environment_when_not_overridden)
{
    struct mock m;
    mock_start(&m);
    char base[96];
    (void)snprintf(base, sizeof(base), "%s/", m.base);
    struct envtab t = {0};
    env_set(&t, "AWS_EC2_METADATA_SERVICE_ENDPOINT", base);
    struct aws_creds_provider *p = NULL;
    struct gw_err err = {0};
    struct aws_creds_opts o = {.getenv_fn = tab_getenv, .getenv_ctx = &t};
    cr_assert_eq(aws_creds_provider_new(&p, &o, &err), GW_OK);
    struct aws_credentials c;

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAIMDS1");
    cr_assert_str_eq(m.recs[0].path, "/latest/api/token");
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, imds_disabled_means_no_request_and_not_found)
{
    struct mock m;
    mock_start(&m);
    struct envtab t = {0};
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "TRUE");
    struct aws_creds_provider *p = provider(&t, &m, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_ENOTFOUND);
    cr_assert_eq(mock_nrecs(&m), 0);
    cr_assert_str_eq(aws_creds_source(p), "");
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, imds_token_refusal_is_unavailable_without_an_imdsv1_fallback)
{
    struct mock m;
    mock_start(&m);
    m.token_status = 403;
    struct envtab t = {0};
    struct aws_creds_provider *p = provider(&t, &m, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EUNAVAIL);
    cr_assert_not_null(strstr(err.msg, "403"), "%s", err.msg);
    cr_assert_eq(mock_nrecs(&m), 1, "only the token PUT, no IMDSv1 GET");
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, endpoint_failures_are_unavailable_and_leak_no_secret)
{
    struct mock m;
    mock_start(&m);
    m.fail = 1;
    struct envtab t = {0};
    struct aws_credentials c;
    struct gw_err err = {0};

    /* IMDS: the token is issued, the role listing fails. */
    struct aws_creds_provider *p = provider(&t, &m, 0);
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EUNAVAIL);
    cr_assert_not_null(strstr(err.msg, "HTTP 500"), "%s", err.msg);
    assert_no_secret(err.msg);
    cr_assert_str_eq(m.recs[1].token, "imds-session-token-1");
    aws_creds_provider_free(p);

    /* ECS with an authorization token. */
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/x");
    env_set(&t, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-env-token");
    p = provider(&t, &m, 0);
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EUNAVAIL);
    cr_assert_not_null(strstr(err.msg, "HTTP 500"), "%s", err.msg);
    assert_no_secret(err.msg);
    aws_creds_provider_free(p);

    /* Nothing listens. */
    p = provider(&t, NULL, 0);
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EUNAVAIL);
    assert_no_secret(err.msg);
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, nothing_configured_anywhere_is_not_found)
{
    struct envtab t = {0};
    env_set(&t, "AWS_EC2_METADATA_DISABLED", "true");
    struct aws_creds_provider *p = provider(&t, NULL, 0);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_ENOTFOUND);
    cr_assert_eq(err.code, GW_ENOTFOUND);
    cr_assert_neq(err.msg[0], '\0');
    aws_creds_provider_free(p);
}

/* ---- the cache --------------------------------------------------------------------------- */

Test(aws_credentials, cache_serves_two_gets_from_one_fetch)
{
    struct mock m;
    mock_start(&m);
    struct envtab t = {0};
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/cache");
    struct aws_creds_provider *p = provider(&t, &m, 300);
    struct aws_credentials c1, c2;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c1, p, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(aws_creds_get(&c2, p, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(m.creds_gets, 1);
    cr_assert_str_eq(c2.access_key_id, "ASIAECS1");
    cr_assert_eq(memcmp(&c1, &c2, sizeof(c1)), 0);
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, credentials_inside_the_refresh_window_are_fetched_again)
{
    struct mock m;
    mock_start(&m);
    m.expires_ms = gw_now_ms() + 60 * 1000LL;
    struct envtab t = {0};
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/window");
    struct aws_creds_provider *p = provider(&t, &m, 300);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAECS1");
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAECS2");
    cr_assert_eq(m.creds_gets, 2);
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, a_failed_refresh_serves_still_valid_credentials_and_logs_no_secret)
{
    struct mock m;
    mock_start(&m);
    m.expires_ms = gw_now_ms() + 60 * 1000LL;
    struct envtab t = {0};
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/stale");
    env_set(&t, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-env-token");
    struct aws_creds_provider *p = provider(&t, &m, 300);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAECS1");
    mock_set_fail(&m, 1);

    /* Capture stderr (the log) in a file while the refresh fails. */
    char *logpath = tmp_file("");
    int logfd = open(logpath, O_WRONLY | O_TRUNC);
    int saved = dup(STDERR_FILENO);
    cr_assert_geq(logfd, 0);
    cr_assert_geq(saved, 0);
    cr_assert_eq(dup2(logfd, STDERR_FILENO), STDERR_FILENO);
    gw_log_set_level(GW_LOG_LEVEL_INFO);
    int rc = aws_creds_get(&c, p, &err);
    int rc3 = aws_creds_get(&c, p, &err);
    cr_assert_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    (void)close(saved);
    (void)close(logfd);

    cr_assert_eq(rc, GW_OK, "%s", err.msg);
    cr_assert_eq(rc3, GW_OK, "%s", err.msg);
    cr_assert_str_eq(c.access_key_id, "ASIAECS1");
    cr_assert_str_eq(c.secret_access_key, "SECRET-ECS-1");
    cr_assert_eq(mock_nrecs(&m), 2, "one failed refresh, then a pause before the next");

    char log[4096] = {0};
    FILE *f = fopen(logpath, "r");
    cr_assert_not_null(f);
    size_t n = fread(log, 1, sizeof(log) - 1, f);
    (void)fclose(f);
    log[n] = '\0';
    cr_assert_not_null(strstr(log, "refresh failed"), "log: %s", log);
    assert_no_secret(log);
    tmp_remove(logpath);
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, a_failed_refresh_after_expiry_is_an_error)
{
    struct mock m;
    mock_start(&m);
    m.expires_ms = gw_now_ms() + 1500; /* whole seconds on the wire: 0.5 to 1.5 s left */
    struct envtab t = {0};
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/expired");
    struct aws_creds_provider *p = provider(&t, &m, 300);
    struct aws_credentials c;
    struct gw_err err = {0};

    cr_assert_eq(aws_creds_get(&c, p, &err), GW_OK, "%s", err.msg);
    mock_set_fail(&m, 1);
    (void)usleep(1600 * 1000);
    cr_assert_eq(aws_creds_get(&c, p, &err), GW_EUNAVAIL);
    cr_assert_str_eq(c.access_key_id, "");
    aws_creds_provider_free(p);
    mock_stop(&m);
}

struct getter {
    struct aws_creds_provider *p;
    pthread_barrier_t *start;
    int rc;
    char key[128];
};

static void *get_thread(void *arg)
{
    struct getter *g = arg;
    struct aws_credentials c;
    (void)pthread_barrier_wait(g->start);
    g->rc = aws_creds_get(&c, g->p, NULL);
    (void)snprintf(g->key, sizeof(g->key), "%s", c.access_key_id);
    return NULL;
}

Test(aws_credentials, eight_concurrent_gets_cause_one_fetch)
{
    struct mock m;
    mock_start(&m);
    m.delay_ms = 300;
    struct envtab t = {0};
    env_set(&t, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/concurrent");
    struct aws_creds_provider *p = provider(&t, &m, 300);
    pthread_barrier_t start;
    pthread_t th[8];
    struct getter g[8];

    cr_assert_eq(pthread_barrier_init(&start, NULL, 8), 0);
    for (int i = 0; i < 8; i++) {
        g[i] = (struct getter){.p = p, .start = &start, .rc = -100};
        cr_assert_eq(pthread_create(&th[i], NULL, get_thread, &g[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        cr_assert_eq(pthread_join(th[i], NULL), 0);
    (void)pthread_barrier_destroy(&start);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(g[i].rc, GW_OK, "thread %d", i);
        cr_assert_str_eq(g[i].key, "ASIAECS1", "thread %d", i);
    }
    cr_assert_eq(m.creds_gets, 1);
    aws_creds_provider_free(p);
    mock_stop(&m);
}

Test(aws_credentials, free_of_null_is_a_no_op_and_bad_options_are_refused)
{
    aws_creds_provider_free(NULL);
    struct aws_creds_provider *p = (struct aws_creds_provider *)&p;
    struct gw_err err = {0};
    struct aws_creds_opts o = {.timeout_ms = -1};
    cr_assert_eq(aws_creds_provider_new(&p, &o, &err), GW_EINVAL);
    cr_assert_null(p);
}
