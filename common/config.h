/*
 * config.h — the gateway's configuration: one table of every setting (env
 * var, type, default, bounds, secret flag), validated as a whole at start-up.
 *
 * Values come from the environment only. Later modules read the parsed
 * struct; nothing else calls getenv() for settings, except aws/, which reads
 * the AWS SDKs' own variables (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_*,
 * credentials) the way the SDKs do, through an injectable getter.
 */
#ifndef MLGW_CONFIG_H
#define MLGW_CONFIG_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/buf.h"

enum gw_dispatch { GW_DISPATCH_LOCAL = 0, GW_DISPATCH_BATCH, GW_DISPATCH_SNS };

struct gw_config {
    /* MLGW_LISTEN, parsed */
    char listen[300];
    struct sockaddr_storage listen_addr;
    socklen_t listen_addrlen;

    char *database_url;      /* with MLGW_DATABASE_PASSWORD merged in, when set */
    char *database_password; /* MLGW_DATABASE_PASSWORD as given; NULL when unset */
    char *migrations_dir;
    int log_level;

    long long threads;
    long long connection_limit;
    long long connection_timeout_s;
    long long max_body_bytes;
    long long shutdown_timeout_s;

    long long db_pool_size;
    int group_commit; /* 1 on, 0 off */
    long long db_writers;
    long long group_commit_max;
    long long db_checkout_timeout_ms;
    long long db_connect_timeout_s;

    /* jobs */
    int dispatch; /* enum gw_dispatch */
    long long gpu_job_vcpus, gpu_job_memory, gpu_job_gpus;
    long long cpu_job_vcpus, cpu_job_memory;
    long long max_vcpus, max_memory, max_gpus;
    char *input_bucket;           /* NULL when unset */
    char *output_bucket;          /* NULL when unset */
    char *local_root;             /* absolute */
    long long local_gpus;         /* -1: detect */
    long long local_vcpus;        /* 0: the cores */
    long long local_memory;       /* MiB; 0: available at start */
    long long local_term_grace_s; /* SIGTERM → SIGKILL */
    char *local_python;
    char *local_entrypoint;      /* absolute */
    int local_sandbox;           /* 1 on (bubblewrap), 0 off (development only) */
    char *local_sandbox_user;    /* the jobs' user when the gateway runs as root */
    char *local_bwrap;           /* bubblewrap, a path or a name in PATH */
    char *local_job_aws_key_id;  /* AWS credentials of local jobs; NULL when unset */
    char *local_job_aws_secret;  /* NULL when unset */
    char *local_job_aws_profile; /* NULL when unset */
    char *local_job_aws_config;  /* absolute; NULL when unset */
    char *cors_origins;          /* comma-separated, "*" for any; NULL when unset */
    long long idempotency_ttl_hours;
    long long auth_cache_seconds;
    long long job_cache_bytes;
    long long db_statement_timeout_ms, db_worker_pool_size, db_worker_statement_timeout_ms;
    long long connections_per_address, request_deadline_s;
    long long rate_limit, rate_burst, auth_failures_per_minute;

    /* dispatch */
    char *gpu_job_queue, *cpu_job_queue;           /* NULL when unset */
    char *gpu_job_definition, *cpu_job_definition; /* NULL when unset */
    char *trigger_topic_arn;                       /* NULL when unset */
    long long dispatch_workers;
    long long batch_submit_rate;
    long long dispatch_max_attempts;
    long long dispatch_poll_ms;
    long long dispatch_retry_base_ms;
    long long dispatch_lease_s;
    long long reconcile_interval_s;
    long long reconcile_after_s;
    char *batch_log_group;
    long long aws_timeout_ms;

    /* callbacks and notifications */
    char *callback_secret; /* NULL: callbacks refused */
    char *callback_header;
    char *smtp_url, *smtp_from, *smtp_user, *smtp_password, *smtp_ca_file;
    int smtp_tls;          /* 0 required, 1 opportunistic, 2 off */
    char *notify_emails;   /* comma-separated, NULL when unset */
    char *notify_statuses; /* comma-separated */
    char *notify_topic_arn;
    char *webhook_secret;
    /* what users may ask of the gateway: job env names, webhook targets */
    char *job_env_allow;       /* comma-separated NAME or PREFIX* entries; NULL: any */
    int webhook_allow_http;    /* 1: http:// webhooks to a loopback host are accepted */
    char *webhook_allow_cidrs; /* ranges webhooks may reach despite the deny list; NULL */
    long long notify_workers;
    long long notify_max_attempts;
    long long notify_retry_base_ms;
    char *sns_topic_arns;       /* topics /events/sns accepts (comma-separated) */
    char *sns_cert_ca_file;     /* tests: CA that signs SNS signing certificates */
    char *sns_cert_host_suffix; /* tests: widens the SigningCertURL host check */

    /* the model cache */
    char *cache_dir;                 /* absolute; MLGW_LOCAL_ROOT/cache when unset */
    long long cache_max_bytes;       /* 0: no limit */
    long long cache_scan_interval_s; /* 0: no scanner */
    long long cache_scan_timeout_s;
    long long cache_scan_max_files;
    char *cache_script_key;
    int cache_dispatch; /* 0: MLGW_DISPATCH, else enum gw_dispatch + 1 */
};

/* The names of enum gw_dispatch values. */
extern const char *const gw_dispatch_names[3];

/* Looks up a variable by name; returns NULL when unset (borrowed). */
typedef const char *(*gw_config_getter)(const char *name, void *ctx);

/*
 * Fills cfg from the getter (getenv when NULL). Every invalid value adds one
 * line "NAME: problem" to errors (a caller-owned buffer, may be NULL).
 * Returns the number of invalid settings. cfg must be disposed either way.
 */
int gw_config_load(struct gw_config *cfg, gw_config_getter get, void *ctx, struct gw_buf *errors);
void gw_config_dispose(struct gw_config *cfg);

/* The effective configuration as JSON fields for one log line, secrets
 * redacted (new: caller frees). */
char *gw_config_describe(const struct gw_config *cfg);

/* Writes the settings table as Markdown (for README and `ml-gateway config`). */
int gw_config_markdown(struct gw_buf *out);

/* The connection string with its password replaced by "***" (new). The
 * user's own spelling is kept where a text-level redaction provably hides the
 * password (as libpq parses it); otherwise the string is rebuilt from libpq's
 * parse. An unparseable string is not shown at all. */
char *gw_config_redact_url(const char *url);

/* True when origin (e.g. "https://app.example.com") is allowed by cfg. */
int gw_config_origin_allowed(const struct gw_config *cfg, const char *origin);

/* True when MLGW_JOB_ENV_ALLOW is unset or name matches one of its entries
 * (an exact name, or a prefix written PREFIX*). It only narrows: the names
 * job requests may never set are refused by routes/job_request.c first. */
int gw_config_job_env_allowed(const struct gw_config *cfg, const char *name);

#endif
