/*
 * config.c — the settings table and its validation (after Redis's
 * standardConfig and PgBouncer's bouncer_params[]). Each entry names its
 * environment variable, type, default, bounds and whether it is a secret; one
 * loop parses them all, so a new setting is one line here plus its field.
 */
#include "common/config.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cidr.h"
#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"

#include "common/poison.h"

enum cfg_type {
    CFG_STRING,  /* any non-empty text */
    CFG_PATH,    /* a path, made absolute */
    CFG_INT,     /* integer within [min, max] */
    CFG_ENUM,    /* one of choices ("a|b|c"), stored as its index */
    CFG_ADDR,    /* host:port */
    CFG_DBURL,   /* libpq connection string */
    CFG_BUCKET,  /* an S3 bucket name */
    CFG_ORIGINS, /* comma-separated origins, or "*" */
    CFG_ENVLIST, /* comma-separated env names, each may end in "*" */
    CFG_CIDRS,   /* comma-separated CIDR ranges or addresses */
};

enum { CFG_SECRET = 1, CFG_REQUIRED = 2 };

struct cfg_entry {
    const char *env;
    enum cfg_type type;
    int flags;
    size_t offset;
    const char *def; /* NULL: no default (optional unless CFG_REQUIRED) */
    long long min, max;
    const char *choices; /* CFG_ENUM */
    const char *help;
};

#define F(field) offsetof(struct gw_config, field)

const char *const gw_dispatch_names[3] = {"local", "batch", "sns"};

static const struct cfg_entry cfg_table[] = {
    {"MLGW_LISTEN", CFG_ADDR, 0, F(listen), "127.0.0.1:8080", 0, 0, NULL,
     "address:port to serve on (IPv4, [IPv6] or localhost; port 0 picks a free one)"},
    {"DATABASE_URL", CFG_DBURL, CFG_SECRET | CFG_REQUIRED, F(database_url), NULL, 0, 0, NULL,
     "libpq connection URL or key=value string (password redacted in logs)"},
    {"MLGW_DATABASE_PASSWORD", CFG_STRING, CFG_SECRET, F(database_password), NULL, 0, 0, NULL,
     "password of DATABASE_URL's user, given apart (e.g. from a secret store holding only the "
     "password, as RDS's managed master secret does); replaces a password in DATABASE_URL"},
    {"MLGW_MIGRATIONS_DIR", CFG_STRING, 0, F(migrations_dir), "migrations", 0, 0, NULL,
     "directory of NNNN_name.sql migrations"},
    {"MLGW_LOG_LEVEL", CFG_ENUM, 0, F(log_level), "info", 0, 0, "debug|info|warn|error",
     "log level"},
    {"MLGW_THREADS", CFG_INT, 0, F(threads), NULL, 1, 256, NULL,
     "HTTP worker threads (default: 2 x cores, at least 4)"},
    {"MLGW_CONNECTION_LIMIT", CFG_INT, 0, F(connection_limit), "1024", 1, 65536, NULL,
     "concurrent HTTP connections"},
    {"MLGW_CONNECTION_TIMEOUT", CFG_INT, 0, F(connection_timeout_s), "30", 1, 3600, NULL,
     "seconds an idle HTTP connection is kept"},
    {"MLGW_CONNECTIONS_PER_ADDRESS", CFG_INT, 0, F(connections_per_address), "128", 1, 65536, NULL,
     "concurrent HTTP connections from one client address"},
    {"MLGW_REQUEST_DEADLINE", CFG_INT, 0, F(request_deadline_s), "30", 1, 3600, NULL,
     "seconds a client has to send a whole request (headers and body), counted from the "
     "connection or the previous answer"},
    {"MLGW_MAX_BODY_BYTES", CFG_INT, 0, F(max_body_bytes), "1048576", 1024, 67108864, NULL,
     "largest request body accepted (413 above)"},
    {"MLGW_SHUTDOWN_TIMEOUT", CFG_INT, 0, F(shutdown_timeout_s), "10", 0, 600, NULL,
     "seconds in-flight requests get to finish after SIGTERM"},
    {"MLGW_DB_POOL_SIZE", CFG_INT, 0, F(db_pool_size), "10", 1, 1000, NULL,
     "PostgreSQL connections in the pool"},
    {"MLGW_GROUP_COMMIT", CFG_ENUM, 0, F(group_commit), "on", 0, 0, "off|on",
     "requests' writes (POST /jobs, callbacks, pipeline runs) share transactions through the "
     "group-commit writers; off: one transaction per request"},
    {"MLGW_DB_WRITERS", CFG_INT, 0, F(db_writers), "2", 1, 64, NULL,
     "group-commit writer threads, each with its own PostgreSQL connection"},
    {"MLGW_GROUP_COMMIT_MAX", CFG_INT, 0, F(group_commit_max), "64", 1, 1000, NULL,
     "requests' writes in one group-commit transaction at most"},
    {"MLGW_DB_CHECKOUT_TIMEOUT_MS", CFG_INT, 0, F(db_checkout_timeout_ms), "2000", 1, 60000, NULL,
     "milliseconds a request waits for a pooled connection before 503"},
    {"MLGW_DB_STATEMENT_TIMEOUT_MS", CFG_INT, 0, F(db_statement_timeout_ms), "5000", 100, 3600000,
     NULL, "milliseconds one statement of a request may run before 503 with Retry-After"},
    {"MLGW_DB_WORKER_POOL_SIZE", CFG_INT, 0, F(db_worker_pool_size), "8", 1, 1000, NULL,
     "PostgreSQL connections of the background workers (dispatch, notifications, local jobs)"},
    {"MLGW_DB_WORKER_STATEMENT_TIMEOUT_MS", CFG_INT, 0, F(db_worker_statement_timeout_ms), "60000",
     100, 3600000, NULL, "milliseconds one statement of a background worker may run"},
    {"MLGW_DB_CONNECT_TIMEOUT", CFG_INT, 0, F(db_connect_timeout_s), "5", 1, 60, NULL,
     "seconds to establish one PostgreSQL connection"},
    {"MLGW_DISPATCH", CFG_ENUM, 0, F(dispatch), "local", 0, 0, "local|batch|sns",
     "default dispatch target of a job"},
    {"MLGW_GPU_JOB_VCPUS", CFG_INT, 0, F(gpu_job_vcpus), "4", 1, 4096, NULL,
     "default vCPUs of a GPU job"},
    {"MLGW_GPU_JOB_MEMORY", CFG_INT, 0, F(gpu_job_memory), "16384", 1, 16777216, NULL,
     "default memory (MiB) of a GPU job"},
    {"MLGW_GPU_JOB_GPUS", CFG_INT, 0, F(gpu_job_gpus), "1", 0, 64, NULL,
     "default GPUs of a GPU job"},
    {"MLGW_CPU_JOB_VCPUS", CFG_INT, 0, F(cpu_job_vcpus), "2", 1, 4096, NULL,
     "default vCPUs of a CPU job"},
    {"MLGW_CPU_JOB_MEMORY", CFG_INT, 0, F(cpu_job_memory), "4096", 1, 16777216, NULL,
     "default memory (MiB) of a CPU job"},
    {"MLGW_MAX_VCPUS", CFG_INT, 0, F(max_vcpus), "256", 1, 4096, NULL, "most vCPUs a job may ask"},
    {"MLGW_MAX_MEMORY", CFG_INT, 0, F(max_memory), "2097152", 1, 16777216, NULL,
     "most memory (MiB) a job may ask"},
    {"MLGW_MAX_GPUS", CFG_INT, 0, F(max_gpus), "8", 0, 64, NULL, "most GPUs a job may ask"},
    {"ML_INPUT_BUCKET", CFG_BUCKET, 0, F(input_bucket), NULL, 0, 0, NULL,
     "S3 bucket of job scripts and inputs"},
    {"ML_OUTPUT_BUCKET", CFG_BUCKET, 0, F(output_bucket), NULL, 0, 0, NULL,
     "S3 bucket of job outputs (unset: outputs stay under MLGW_LOCAL_ROOT/output)"},
    {"MLGW_LOCAL_ROOT", CFG_PATH, 0, F(local_root), "var/local", 0, 0, NULL,
     "local executor root: input/, output/, logs/ below it"},
    {"MLGW_LOCAL_GPUS", CFG_INT, 0, F(local_gpus), "-1", -1, 64, NULL,
     "GPUs the local executor hands out (-1: detect from nvidia-smi or /dev/nvidiaN)"},
    {"MLGW_LOCAL_VCPUS", CFG_INT, 0, F(local_vcpus), "0", 0, 4096, NULL,
     "vCPUs the local executor hands out (0: the machine's cores)"},
    {"MLGW_LOCAL_MEMORY", CFG_INT, 0, F(local_memory), "0", 0, 16777216, NULL,
     "memory (MiB) the local executor hands out (0: what is available at start)"},
    {"MLGW_LOCAL_TERM_GRACE", CFG_INT, 0, F(local_term_grace_s), "30", 0, 3600, NULL,
     "seconds a local job gets between SIGTERM (timeout, cancel, stop) and SIGKILL"},
    {"MLGW_LOCAL_PYTHON", CFG_STRING, 0, F(local_python), "python3", 0, 0, NULL,
     "Python interpreter of local jobs (runs the entrypoint and the script)"},
    {"MLGW_LOCAL_ENTRYPOINT", CFG_PATH, 0, F(local_entrypoint), "images/entrypoint/entrypoint.py",
     0, 0, NULL, "the job entrypoint local jobs run through"},
    {"MLGW_LOCAL_SANDBOX", CFG_ENUM, 0, F(local_sandbox), "on", 0, 0, "off|on",
     "runs each local attempt in a bubblewrap sandbox (README, Job sandbox); off is for "
     "development only: jobs then run as the gateway's user and can read its secrets"},
    {"MLGW_LOCAL_SANDBOX_USER", CFG_STRING, 0, F(local_sandbox_user), "mlgw-job", 0, 0, NULL,
     "the unprivileged user local jobs run as when the gateway runs as root"},
    {"MLGW_LOCAL_BWRAP", CFG_STRING, 0, F(local_bwrap), "bwrap", 0, 0, NULL,
     "bubblewrap, the job sandbox's program (a path, or a name looked up in PATH)"},
    {"MLGW_LOCAL_JOB_AWS_ACCESS_KEY_ID", CFG_STRING, 0, F(local_job_aws_key_id), NULL, 0, 0, NULL,
     "AWS_ACCESS_KEY_ID given to local jobs (never the gateway's own; with the secret below)"},
    {"MLGW_LOCAL_JOB_AWS_SECRET_ACCESS_KEY", CFG_STRING, CFG_SECRET, F(local_job_aws_secret), NULL,
     0, 0, NULL, "AWS_SECRET_ACCESS_KEY given to local jobs"},
    {"MLGW_LOCAL_JOB_AWS_PROFILE", CFG_STRING, 0, F(local_job_aws_profile), NULL, 0, 0, NULL,
     "AWS_PROFILE given to local jobs"},
    {"MLGW_LOCAL_JOB_AWS_CONFIG_FILE", CFG_PATH, 0, F(local_job_aws_config), NULL, 0, 0, NULL,
     "an AWS config file made for local jobs: shown to them read-only as AWS_CONFIG_FILE and "
     "AWS_SHARED_CREDENTIALS_FILE"},
    {"MLGW_CORS_ORIGINS", CFG_ORIGINS, 0, F(cors_origins), NULL, 0, 0, NULL,
     "comma-separated origins allowed by CORS (e.g. https://app.example.com), or *"},
    {"MLGW_IDEMPOTENCY_TTL_HOURS", CFG_INT, 0, F(idempotency_ttl_hours), "24", 24, 720, NULL,
     "hours an Idempotency-Key is remembered"},
    {"MLGW_AUTH_CACHE_SECONDS", CFG_INT, 0, F(auth_cache_seconds), "5", 0, 300, NULL,
     "seconds a verified API key is cached (a revocation takes effect within this)"},
    {"MLGW_JOB_CACHE_BYTES", CFG_INT, 0, F(job_cache_bytes), "33554432", 0, 68719476736LL, NULL,
     "bytes of job documents GET /jobs/{id} keeps in memory, kept exact by polling job_changes "
     "(0: every read goes to the database)"},
    {"MLGW_RATE_LIMIT", CFG_INT, 0, F(rate_limit), "50", 0, 1000000, NULL,
     "requests per second per API key (0: no limit); a key's own --rate overrides it"},
    {"MLGW_RATE_BURST", CFG_INT, 0, F(rate_burst), "100", 1, 1000000, NULL,
     "requests an API key may make at once before MLGW_RATE_LIMIT applies"},
    {"MLGW_AUTH_FAILURES_PER_MINUTE", CFG_INT, 0, F(auth_failures_per_minute), "30", 0, 100000,
     NULL, "failed authentications per client address and minute before 429 (0: no limit)"},
    {"MLGW_GPU_JOB_QUEUE", CFG_STRING, 0, F(gpu_job_queue), NULL, 0, 0, NULL,
     "AWS Batch job queue (name or ARN) of GPU jobs"},
    {"MLGW_CPU_JOB_QUEUE", CFG_STRING, 0, F(cpu_job_queue), NULL, 0, 0, NULL,
     "AWS Batch job queue (name or ARN) of CPU jobs"},
    {"MLGW_GPU_JOB_DEFINITION", CFG_STRING, 0, F(gpu_job_definition), NULL, 0, 0, NULL,
     "AWS Batch job definition of GPU jobs"},
    {"MLGW_CPU_JOB_DEFINITION", CFG_STRING, 0, F(cpu_job_definition), NULL, 0, 0, NULL,
     "AWS Batch job definition of CPU jobs"},
    {"MLGW_TRIGGER_TOPIC_ARN", CFG_STRING, 0, F(trigger_topic_arn), NULL, 0, 0, NULL,
     "SNS topic of dispatch sns (the original pipeline's trigger topic)"},
    {"MLGW_DISPATCH_WORKERS", CFG_INT, 0, F(dispatch_workers), "2", 0, 32, NULL,
     "dispatcher threads in this process (0: this gateway does not dispatch)"},
    {"MLGW_BATCH_SUBMIT_RATE", CFG_INT, 0, F(batch_submit_rate), "50", 1, 1000, NULL,
     "SubmitJob calls per second at most (AWS's account limit is 50)"},
    {"MLGW_DISPATCH_MAX_ATTEMPTS", CFG_INT, 0, F(dispatch_max_attempts), "10", 1, 1000, NULL,
     "tries before a job that cannot be handed on becomes DISPATCH_FAILED"},
    {"MLGW_DISPATCH_POLL_MS", CFG_INT, 0, F(dispatch_poll_ms), "2000", 50, 60000, NULL,
     "how often dispatchers look for due work without a notification"},
    {"MLGW_DISPATCH_RETRY_BASE_MS", CFG_INT, 0, F(dispatch_retry_base_ms), "2000", 10, 600000, NULL,
     "first backoff of a failed dispatch (doubles per try, full jitter, at most 5 min)"},
    {"MLGW_DISPATCH_LEASE", CFG_INT, 0, F(dispatch_lease_s), "120", 5, 3600, NULL,
     "seconds a dispatcher owns a claimed job (must exceed 4 AWS call attempts)"},
    {"MLGW_RECONCILE_INTERVAL", CFG_INT, 0, F(reconcile_interval_s), "60", 1, 3600, NULL,
     "seconds between reconciler passes"},
    {"MLGW_RECONCILE_AFTER", CFG_INT, 0, F(reconcile_after_s), "300", 1, 86400, NULL,
     "seconds without news after which a running Batch job is asked about"},
    {"MLGW_BATCH_LOG_GROUP", CFG_STRING, 0, F(batch_log_group), "/aws/batch/job", 0, 0, NULL,
     "CloudWatch Logs group of Batch jobs (GET /jobs/{id}/logs)"},
    {"MLGW_AWS_TIMEOUT_MS", CFG_INT, 0, F(aws_timeout_ms), "10000", 100, 120000, NULL,
     "milliseconds one AWS call attempt may take"},
    {"MLGW_CALLBACK_SECRET", CFG_STRING, CFG_SECRET, F(callback_secret), NULL, 0, 0, NULL,
     "shared secret EventBridge sends to POST /events/batch (unset: callbacks refused)"},
    {"MLGW_CALLBACK_HEADER", CFG_STRING, 0, F(callback_header), "X-Callback-Key", 0, 0, NULL,
     "the header carrying MLGW_CALLBACK_SECRET"},
    {"MLGW_SMTP_URL", CFG_STRING, 0, F(smtp_url), NULL, 0, 0, NULL,
     "smtp://host:587 (STARTTLS) or smtps://host:465; unset: no email"},
    {"MLGW_SMTP_TLS", CFG_ENUM, 0, F(smtp_tls), "required", 0, 0, "required|opportunistic|off",
     "TLS for smtp:// URLs (off only for local relays)"},
    {"MLGW_SMTP_FROM", CFG_STRING, 0, F(smtp_from), "ml-gateway <ml-gateway@localhost>", 0, 0, NULL,
     "From: of notification emails"},
    {"MLGW_SMTP_USER", CFG_STRING, 0, F(smtp_user), NULL, 0, 0, NULL, "SMTP AUTH user"},
    {"MLGW_SMTP_PASSWORD", CFG_STRING, CFG_SECRET, F(smtp_password), NULL, 0, 0, NULL,
     "SMTP AUTH password"},
    {"MLGW_SMTP_CA_FILE", CFG_STRING, 0, F(smtp_ca_file), NULL, 0, 0, NULL,
     "extra CA bundle for the SMTP server's certificate (verification stays on)"},
    {"MLGW_NOTIFY_EMAILS", CFG_STRING, 0, F(notify_emails), NULL, 0, 0, NULL,
     "comma-separated recipients of every job's notification"},
    {"MLGW_NOTIFY_STATUSES", CFG_STRING, 0, F(notify_statuses), "SUCCEEDED,FAILED", 0, 0, NULL,
     "comma-separated statuses that notify"},
    {"MLGW_NOTIFY_TOPIC_ARN", CFG_STRING, 0, F(notify_topic_arn), NULL, 0, 0, NULL,
     "SNS topic that gets a summary of each finished job"},
    {"MLGW_WEBHOOK_SECRET", CFG_STRING, CFG_SECRET, F(webhook_secret), NULL, 0, 0, NULL,
     "HMAC-SHA256 key of the X-Signature header of webhooks"},
    {"MLGW_JOB_ENV_ALLOW", CFG_ENVLIST, 0, F(job_env_allow), NULL, 0, 0, NULL,
     "comma-separated env names (or PREFIX_* patterns) a job request may set; unset: any name "
     "not refused (loader, interpreter and shell variables are refused either way)"},
    {"MLGW_WEBHOOK_ALLOW_HTTP", CFG_ENUM, 0, F(webhook_allow_http), "off", 0, 0, "off|on",
     "accept http:// webhooks to a loopback host (tests; also needs MLGW_WEBHOOK_ALLOW_CIDRS)"},
    {"MLGW_WEBHOOK_ALLOW_CIDRS", CFG_CIDRS, 0, F(webhook_allow_cidrs), NULL, 0, 0, NULL,
     "comma-separated ranges (e.g. 10.1.0.0/16, 127.0.0.1) webhooks may reach although private, "
     "loopback or link-local (intranets, tests); cloud metadata addresses stay refused"},
    {"MLGW_NOTIFY_WORKERS", CFG_INT, 0, F(notify_workers), "2", 0, 32, NULL,
     "notifier threads (0: this gateway sends nothing)"},
    {"MLGW_NOTIFY_MAX_ATTEMPTS", CFG_INT, 0, F(notify_max_attempts), "8", 1, 100, NULL,
     "tries before a notification is recorded as failed"},
    {"MLGW_NOTIFY_RETRY_BASE_MS", CFG_INT, 0, F(notify_retry_base_ms), "5000", 10, 3600000, NULL,
     "first backoff of a failed notification (doubles per try, full jitter, at most 1 h)"},
    {"MLGW_CACHE_DIR", CFG_PATH, 0, F(cache_dir), NULL, 0, 0, NULL,
     "the model cache this gateway shows and manages (GET /cache); local jobs get it as "
     "MODEL_CACHE_DIR (unset: MLGW_LOCAL_ROOT/cache; on AWS the EFS mount, e.g. /opt/models)"},
    {"MLGW_CACHE_MAX_BYTES", CFG_INT, 0, F(cache_max_bytes), "0", 0, 4611686018427387904LL, NULL,
     "cache size above which a scan starts one least-recently-used cleanup down to 80 % "
     "(0: no limit)"},
    {"MLGW_CACHE_SCAN_INTERVAL", CFG_INT, 0, F(cache_scan_interval_s), "300", 0, 86400, NULL,
     "seconds between cache scans; a warm or cleanup job's end scans sooner (0: no scanner)"},
    {"MLGW_CACHE_SCAN_TIMEOUT", CFG_INT, 0, F(cache_scan_timeout_s), "30", 1, 3600, NULL,
     "seconds one cache scan may take before it stops and records a partial result"},
    {"MLGW_CACHE_SCAN_MAX_FILES", CFG_INT, 0, F(cache_scan_max_files), "2000000", 1, 1000000000,
     NULL, "files one cache scan looks at before it stops and records a partial result"},
    {"MLGW_CACHE_SCRIPT_KEY", CFG_STRING, 0, F(cache_script_key), "jobs/cleanup_processor.py", 0, 0,
     NULL, "script_key of the jobs POST /cache/warm and /cache/cleanup create"},
    {"MLGW_CACHE_DISPATCH", CFG_ENUM, 0, F(cache_dispatch), "default", 0, 0,
     "default|local|batch|sns",
     "where cache jobs run: where MLGW_CACHE_DIR's cache is written (default: MLGW_DISPATCH)"},
    {"MLGW_SNS_TOPIC_ARNS", CFG_STRING, 0, F(sns_topic_arns), NULL, 0, 0, NULL,
     "comma-separated SNS topic ARNs POST /events/sns accepts (unset: none)"},
    {"MLGW_SNS_CERT_CA_FILE", CFG_STRING, 0, F(sns_cert_ca_file), NULL, 0, 0, NULL,
     "tests only: CA that issued SNS signing certificates (default: the system store)"},
    {"MLGW_SNS_CERT_HOST_SUFFIX", CFG_STRING, 0, F(sns_cert_host_suffix), NULL, 0, 0, NULL,
     "tests only: also accept SigningCertURL hosts ending in this (http allowed)"},
};

#undef F

static const char *env_getter(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

static long long default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    long long t = 2LL * n;
    return t < 4 ? 4 : (t > 64 ? 64 : t);
}

static int parse_addr(struct gw_config *cfg, const char *v, struct gw_buf *errors, const char *env)
{
    char host[256];
    const char *colon;
    size_t hlen;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (close == NULL || close[1] != ':')
            goto bad;
        hlen = (size_t)(close - v - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            goto bad;
        memcpy(host, v + 1, hlen);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (colon == NULL)
            goto bad;
        hlen = (size_t)(colon - v);
        if (hlen == 0 || hlen >= sizeof(host))
            goto bad;
        memcpy(host, v, hlen);
    }
    host[hlen] = '\0';
    long long port;
    if (gw_parse_ll(&port, colon + 1, 0, 65535) != GW_OK)
        goto bad;

    memset(&cfg->listen_addr, 0, sizeof(cfg->listen_addr));
    if (strcmp(host, "localhost") == 0) {
        memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)&cfg->listen_addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&cfg->listen_addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        cfg->listen_addrlen = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        cfg->listen_addrlen = sizeof(*in6);
    } else {
        goto bad;
    }
    int n = snprintf(cfg->listen, sizeof(cfg->listen), "%s", v);
    if (n < 0 || (size_t)n >= sizeof(cfg->listen))
        goto bad;
    return 0;
bad:
    if (errors != NULL)
        gw_buf_printf(errors,
                      "%s: \"%s\" is not an address:port (expected e.g. 127.0.0.1:8080 or "
                      "[::1]:8080, port 0-65535)\n",
                      env, v);
    return 1;
}

/* Index of v in "a|b|c", or -1. */
static int enum_index(const char *choices, const char *v)
{
    size_t vlen = strlen(v);
    int i = 0;
    for (const char *p = choices; *p != '\0'; i++) {
        size_t len = strcspn(p, "|");
        if (len == vlen && strncmp(p, v, len) == 0)
            return i;
        p += len;
        if (*p == '|')
            p++;
    }
    return -1;
}

/* S3 bucket naming rules: 3-63 of [a-z0-9.-], starting and ending alphanumeric, no "..". */
static int bucket_ok(const char *v)
{
    size_t n = strlen(v);
    if (n < 3 || n > 63 || strstr(v, "..") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-')
            return 0;
        if ((i == 0 || i == n - 1) && !alnum)
            return 0;
    }
    return 1;
}

/* "*" or a comma-separated list of scheme://host[:port] without paths. */
static int origins_ok(const char *v)
{
    if (strcmp(v, "*") == 0)
        return 1;
    const char *p = v;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *sep = strstr(p, "://");
        if (len == 0 || sep == NULL || sep > p + len)
            return 0;
        const char *host = sep + 3;
        if (host >= p + len)
            return 0;
        for (const char *c = p; c < p + len; c++)
            if (*c == ' ' || (c >= host && *c == '/'))
                return 0;
        p += len;
        if (*p == ',')
            p++;
    }
    return 1;
}

/* A comma-separated list of env names, each [A-Z_][A-Z0-9_]* optionally
 * followed by one "*" (a prefix). */
static int envlist_ok(const char *v)
{
    for (const char *p = v;;) {
        size_t len = strcspn(p, ",");
        size_t name = len > 0 && p[len - 1] == '*' ? len - 1 : len;
        if (name == 0)
            return 0;
        for (size_t i = 0; i < name; i++) {
            char c = p[i];
            if (!((c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
                return 0;
        }
        if (p[len] == '\0')
            return 1;
        p += len + 1;
    }
}

/* NULL when v is a valid value of a checked text type, else what it should be. */
static const char *text_problem(enum cfg_type type, const char *v)
{
    switch (type) {
    case CFG_BUCKET: return bucket_ok(v) ? NULL : "a valid S3 bucket name (3-63 of a-z 0-9 . -)";
    case CFG_ORIGINS:
        return origins_ok(v) ? NULL : "* or a comma-separated list of scheme://host[:port]";
    case CFG_ENVLIST:
        return envlist_ok(v)
                   ? NULL
                   : "a comma-separated list of names [A-Z_][A-Z0-9_]*, each may end in *";
    case CFG_CIDRS:
        return gw_cidr_list_valid(v) ? NULL
                                     : "a comma-separated list of addresses or CIDR ranges "
                                       "(10.0.0.0/8, fd00::/8)";
    default: return NULL;
    }
}

/* field points at a char * member of struct gw_config (see the table). */
static char **string_slot(char *field)
{
    return (char **)(void *)field;
}

static int set_string(char *field, const char *v)
{
    char *dup = strdup(v);
    if (dup == NULL)
        return 1;
    *string_slot(field) = dup;
    return 0;
}

static int set_path(char *field, const char *v)
{
    if (v[0] == '/')
        return set_string(field, v);
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return 1;
    struct gw_buf b;
    gw_buf_init(&b, sizeof(cwd) * 2);
    int rc = gw_buf_printf(&b, "%s/%s", cwd, v);
    if (rc == GW_OK && b.len > 2 && strcmp(b.data + b.len - 2, "/.") == 0)
        b.data[b.len -= 2] = '\0';
    char *s = rc == GW_OK ? gw_buf_steal(&b) : NULL;
    gw_buf_dispose(&b);
    if (s == NULL)
        return 1;
    *string_slot(field) = s;
    return 0;
}

/* *slot = base/name (new); 1 when out of memory. */
static int set_derived_path(char **slot, const char *base, const char *name)
{
    struct gw_buf b;
    gw_buf_init(&b, strlen(base) + strlen(name) + 2);
    int rc = gw_buf_printf(&b, "%s/%s", base, name);
    *slot = rc == GW_OK ? gw_buf_steal(&b) : NULL;
    gw_buf_dispose(&b);
    return *slot == NULL;
}

/* Checks that span several settings. */
static int check_relations(const struct gw_config *cfg, struct gw_buf *errors)
{
    const struct {
        const char *name;
        long long value, max;
        const char *maxname;
    } defaults[] = {
        {"MLGW_GPU_JOB_VCPUS", cfg->gpu_job_vcpus, cfg->max_vcpus, "MLGW_MAX_VCPUS"},
        {"MLGW_CPU_JOB_VCPUS", cfg->cpu_job_vcpus, cfg->max_vcpus, "MLGW_MAX_VCPUS"},
        {"MLGW_GPU_JOB_MEMORY", cfg->gpu_job_memory, cfg->max_memory, "MLGW_MAX_MEMORY"},
        {"MLGW_CPU_JOB_MEMORY", cfg->cpu_job_memory, cfg->max_memory, "MLGW_MAX_MEMORY"},
        {"MLGW_GPU_JOB_GPUS", cfg->gpu_job_gpus, cfg->max_gpus, "MLGW_MAX_GPUS"},
    };
    int bad = 0;
    /* A lease shorter than the calls made under it would let a second
     * dispatcher take over a job whose submission is still in flight. */
    if (cfg->dispatch_lease_s * 1000 <= cfg->aws_timeout_ms * 4) {
        bad++;
        if (errors != NULL)
            gw_buf_printf(
                errors,
                "MLGW_DISPATCH_LEASE: %lld s must exceed 4 x MLGW_AWS_TIMEOUT_MS (%lld ms)\n",
                cfg->dispatch_lease_s, cfg->aws_timeout_ms);
    }
    if ((cfg->local_job_aws_key_id == NULL) != (cfg->local_job_aws_secret == NULL)) {
        bad++;
        if (errors != NULL)
            gw_buf_printf(errors, "MLGW_LOCAL_JOB_AWS_ACCESS_KEY_ID: set it and "
                                  "MLGW_LOCAL_JOB_AWS_SECRET_ACCESS_KEY together, or neither\n");
    }
    for (size_t i = 0; i < GW_ARRAY_LEN(defaults); i++) {
        if (defaults[i].value <= defaults[i].max)
            continue;
        bad++;
        if (errors != NULL)
            gw_buf_printf(errors, "%s: %lld is above %s (%lld)\n", defaults[i].name,
                          defaults[i].value, defaults[i].maxname, defaults[i].max);
    }
    return bad;
}

/* Appends keyword='value' to b, quoted as libpq's key/value syntax wants. */
static int add_conninfo(struct gw_buf *b, const char *keyword, const char *val)
{
    int rc = b->len > 0 ? gw_buf_adds(b, " ") : GW_OK;
    if (rc == GW_OK)
        rc = gw_buf_printf(b, "%s='", keyword);
    for (const char *c = val; rc == GW_OK && *c != '\0'; c++) {
        if (*c == '\'' || *c == '\\')
            rc = gw_buf_adds(b, "\\");
        if (rc == GW_OK)
            rc = gw_buf_add(b, c, 1);
    }
    return rc == GW_OK ? gw_buf_adds(b, "'") : rc;
}

/* DATABASE_URL rebuilt from libpq's own parse with MLGW_DATABASE_PASSWORD as
 * its password (whatever the URL said), so that every connection made from
 * cfg->database_url carries it. */
static int merge_database_password(struct gw_config *cfg, struct gw_buf *errors)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->database_url, &errmsg);
    PQfreemem(errmsg);
    if (opts == NULL) {
        if (errors != NULL)
            gw_buf_printf(errors, "DATABASE_URL: is not a libpq connection string (needed to "
                                  "add MLGW_DATABASE_PASSWORD)\n");
        return 1;
    }
    struct gw_buf b;
    gw_buf_init(&b, (size_t)64 << 10);
    int rc = GW_OK;
    for (const PQconninfoOption *o = opts; rc == GW_OK && o->keyword != NULL; o++)
        if (o->val != NULL && strcmp(o->keyword, "password") != 0)
            rc = add_conninfo(&b, o->keyword, o->val);
    if (rc == GW_OK)
        rc = add_conninfo(&b, "password", cfg->database_password);
    PQconninfoFree(opts);
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        if (errors != NULL)
            gw_buf_printf(errors, "DATABASE_URL: too long with MLGW_DATABASE_PASSWORD\n");
        return 1;
    }
    free(cfg->database_url);
    cfg->database_url = gw_buf_steal(&b);
    return 0;
}

int gw_config_load(struct gw_config *cfg, gw_config_getter get, void *ctx, struct gw_buf *errors)
{
    memset(cfg, 0, sizeof(*cfg));
    if (get == NULL)
        get = env_getter;
    int bad = 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(cfg_table); i++) {
        const struct cfg_entry *e = &cfg_table[i];
        const char *v = get(e->env, ctx);
        if (v != NULL && v[0] == '\0')
            v = NULL; /* an empty variable means "use the default" */
        if (v == NULL)
            v = e->def;
        char *field = (char *)cfg + e->offset;
        if (v == NULL && e->type != CFG_INT) {
            if (e->flags & CFG_REQUIRED) {
                bad++;
                if (errors != NULL)
                    gw_buf_printf(errors, "%s: is required (%s)\n", e->env, e->help);
            }
            continue; /* optional and unset: the field stays NULL */
        }
        switch (e->type) {
        case CFG_STRING:
        case CFG_DBURL: bad += set_string(field, v); break;
        case CFG_PATH: bad += set_path(field, v); break;
        case CFG_BUCKET:
        case CFG_ORIGINS:
        case CFG_ENVLIST:
        case CFG_CIDRS: {
            const char *problem = text_problem(e->type, v);
            if (problem == NULL) {
                bad += set_string(field, v);
                break;
            }
            bad++;
            if (errors != NULL)
                gw_buf_printf(errors, "%s: \"%s\" is not %s\n", e->env, v, problem);
            break;
        }
        case CFG_INT: {
            long long n;
            if (v == NULL) {
                n = default_threads(); /* the only computed default */
            } else if (gw_parse_ll(&n, v, e->min, e->max) != GW_OK) {
                bad++;
                if (errors != NULL)
                    gw_buf_printf(errors, "%s: \"%s\" is not an integer between %lld and %lld\n",
                                  e->env, v, e->min, e->max);
                break;
            }
            memcpy(field, &n, sizeof(n));
            break;
        }
        case CFG_ENUM: {
            int idx = enum_index(e->choices, v);
            if (idx < 0) {
                bad++;
                if (errors != NULL)
                    gw_buf_printf(errors, "%s: \"%s\" is not one of %s\n", e->env, v, e->choices);
                break;
            }
            memcpy(field, &idx, sizeof(idx));
            break;
        }
        case CFG_ADDR: bad += parse_addr(cfg, v, errors, e->env); break;
        }
    }
    if (bad == 0 && cfg->database_password != NULL)
        bad += merge_database_password(cfg, errors);
    if (bad == 0 && cfg->cache_dir == NULL) /* a default derived from another setting */
        bad += set_derived_path(&cfg->cache_dir, cfg->local_root, "cache");
    if (bad == 0)
        bad += check_relations(cfg, errors);
    return bad;
}

void gw_config_dispose(struct gw_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < GW_ARRAY_LEN(cfg_table); i++) {
        const struct cfg_entry *e = &cfg_table[i];
        if (e->type == CFG_INT || e->type == CFG_ENUM || e->type == CFG_ADDR)
            continue;
        char *field = (char *)cfg + e->offset;
        char *s;
        memcpy(&s, field, sizeof(s));
        free(s);
        s = NULL;
        memcpy(field, &s, sizeof(s));
    }
}

int gw_config_origin_allowed(const struct gw_config *cfg, const char *origin)
{
    if (cfg->cors_origins == NULL || origin == NULL || origin[0] == '\0')
        return 0;
    if (strcmp(cfg->cors_origins, "*") == 0)
        return 1;
    size_t olen = strlen(origin);
    for (const char *p = cfg->cors_origins; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len == olen && strncasecmp(p, origin, len) == 0)
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

int gw_config_job_env_allowed(const struct gw_config *cfg, const char *name)
{
    if (cfg->job_env_allow == NULL)
        return 1;
    size_t nlen = strlen(name);
    for (const char *p = cfg->job_env_allow;;) {
        size_t len = strcspn(p, ",");
        int prefix = len > 0 && p[len - 1] == '*';
        size_t cmp = prefix ? len - 1 : len;
        if ((prefix ? nlen >= cmp : nlen == cmp) && strncmp(p, name, cmp) == 0)
            return 1;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

/* Text-level redaction that keeps the shape the user wrote: the userinfo
 * password of a URL and "password=" values (key/value or query string). */
static char *redact_in_place(const char *url)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)64 << 10);
    const char *p = url;
    int is_url = strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
    if (is_url) {
        const char *auth = strstr(url, "://") + 3;
        const char *end = auth + strcspn(auth, "/?#");
        const char *at = NULL;
        for (const char *q = auth; q < end; q++)
            if (*q == '@')
                at = q;
        if (at != NULL) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon != NULL) {
                gw_buf_add(&b, url, (size_t)(colon + 1 - url));
                gw_buf_adds(&b, "***");
                p = at;
            }
        }
    }
    while (*p != '\0') {
        const char *hit = strstr(p, "password=");
        if (hit == NULL) {
            gw_buf_adds(&b, p);
            break;
        }
        gw_buf_add(&b, p, (size_t)(hit - p) + 9);
        gw_buf_adds(&b, "***");
        p = hit + 9;
        if (*p == '\'') {
            p++;
            while (*p != '\0' && *p != '\'') {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                p++;
            }
            if (*p == '\'')
                p++;
        } else {
            p += strcspn(p, " &");
        }
    }
    if (b.data == NULL)
        gw_buf_add(&b, "", 0);
    return gw_buf_steal(&b);
}

/* The connection string rebuilt from libpq's own parse, password replaced:
 * used whenever the text-level redaction cannot be trusted. */
static char *redact_rebuilt(const PQconninfoOption *opts)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)64 << 10);
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (b.len > 0)
            gw_buf_adds(&b, " ");
        gw_buf_printf(&b, "%s=", o->keyword);
        if (strcmp(o->keyword, "password") == 0) {
            gw_buf_adds(&b, "***");
            continue;
        }
        int plain = o->val[0] != '\0' && strpbrk(o->val, " '\\") == NULL;
        if (plain) {
            gw_buf_adds(&b, o->val);
            continue;
        }
        gw_buf_adds(&b, "'");
        for (const char *c = o->val; *c != '\0'; c++) {
            if (*c == '\'' || *c == '\\')
                gw_buf_adds(&b, "\\");
            gw_buf_add(&b, c, 1);
        }
        gw_buf_adds(&b, "'");
    }
    if (b.data == NULL)
        gw_buf_add(&b, "", 0);
    return gw_buf_steal(&b);
}

/* True when redacted parses to exactly the options of orig, except that
 * any password became "***". */
static int redaction_sound(const PQconninfoOption *orig, const char *redacted)
{
    char *errmsg = NULL;
    PQconninfoOption *red = PQconninfoParse(redacted, &errmsg);
    PQfreemem(errmsg);
    if (red == NULL)
        return 0;
    int ok = 1;
    for (size_t i = 0; ok && orig[i].keyword != NULL; i++) {
        const char *a = orig[i].val, *b = red[i].val;
        if (red[i].keyword == NULL || strcmp(orig[i].keyword, red[i].keyword) != 0)
            ok = 0;
        else if (strcmp(orig[i].keyword, "password") == 0)
            ok = a == NULL ? b == NULL : (b != NULL && strcmp(b, "***") == 0);
        else
            ok = (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
    }
    PQconninfoFree(red);
    return ok;
}

char *gw_config_redact_url(const char *url)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &errmsg);
    PQfreemem(errmsg);
    if (opts == NULL)
        return strdup("(unparseable connection string, not shown)");
    /* Keep the user's own spelling when libpq reads it back as the same
     * settings with the password hidden; otherwise rebuild from the parse. */
    char *out = redact_in_place(url);
    if (out == NULL || !redaction_sound(opts, out)) {
        free(out);
        out = redact_rebuilt(opts);
    }
    PQconninfoFree(opts);
    return out;
}

/* The enum choice at index idx of "a|b|c" into out. */
static void enum_name(char *out, size_t outlen, const char *choices, int idx)
{
    const char *p = choices;
    for (int i = 0; i < idx && *p != '\0'; i++) {
        p += strcspn(p, "|");
        if (*p == '|')
            p++;
    }
    size_t len = strcspn(p, "|");
    gw_fmt(out, outlen, "%.*s", (int)len, p);
}

char *gw_config_describe(const struct gw_config *cfg)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)64 << 10);
    gw_buf_adds(&b, "\"config\":{");
    for (size_t i = 0; i < GW_ARRAY_LEN(cfg_table); i++) {
        const struct cfg_entry *e = &cfg_table[i];
        const char *field = (const char *)cfg + e->offset;
        if (i > 0)
            gw_buf_adds(&b, ",");
        gw_buf_printf(&b, "\"%s\":", e->env);
        switch (e->type) {
        case CFG_STRING:
        case CFG_PATH:
        case CFG_BUCKET:
        case CFG_ORIGINS:
        case CFG_ENVLIST:
        case CFG_CIDRS:
        case CFG_DBURL: {
            const char *str;
            memcpy(&str, field, sizeof(str));
            char *shown = NULL;
            if (str != NULL && e->type == CFG_DBURL)
                shown = gw_config_redact_url(str);
            else if (str != NULL && (e->flags & CFG_SECRET))
                shown = strdup("***");
            if (str == NULL) {
                gw_buf_adds(&b, "null");
            } else {
                gw_buf_adds(&b, "\"");
                gw_buf_add_json_escaped(&b, shown != NULL ? shown : str);
                gw_buf_adds(&b, "\"");
            }
            free(shown);
            break;
        }
        case CFG_INT: {
            long long n;
            memcpy(&n, field, sizeof(n));
            gw_buf_printf(&b, "%lld", n);
            break;
        }
        case CFG_ENUM: {
            int idx;
            char name[32];
            memcpy(&idx, field, sizeof(idx));
            enum_name(name, sizeof(name), e->choices, idx);
            gw_buf_printf(&b, "\"%s\"", name);
            break;
        }
        case CFG_ADDR:
            gw_buf_adds(&b, "\"");
            gw_buf_add_json_escaped(&b, cfg->listen);
            gw_buf_adds(&b, "\"");
            break;
        }
    }
    gw_buf_adds(&b, "}");
    return gw_buf_steal(&b);
}

int gw_config_markdown(struct gw_buf *out)
{
    int rc = gw_buf_adds(out, "| Variable | Default | Range | Meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; rc == GW_OK && i < GW_ARRAY_LEN(cfg_table); i++) {
        const struct cfg_entry *e = &cfg_table[i];
        char range[96] = "";
        if (e->type == CFG_INT)
            gw_fmt(range, sizeof(range), "%lld–%lld", e->min, e->max);
        else if (e->type == CFG_ENUM)
            gw_fmt(range, sizeof(range), "`%s`", e->choices);
        const char *def = e->def;
        const char *shown =
            def ? def
                : (e->type == CFG_INT ? "computed"
                                      : ((e->flags & CFG_REQUIRED) ? "required" : "unset"));
        rc = gw_buf_printf(out, "| `%s` | %s%s%s | %s | %s%s |\n", e->env, def ? "`" : "", shown,
                           def ? "`" : "", range, e->help,
                           (e->flags & CFG_SECRET) ? " (secret)" : "");
    }
    return rc;
}
