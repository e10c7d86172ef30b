/*
 * main.c — the ml-gateway binary: argument parsing, start-up, the signal
 * loop and orderly shutdown. Subcommands: serve (the default), migrate, keys
 * (create, list, revoke; server/keys_cmd.c) and config.
 *
 * Exit status: 0 clean stop, 1 runtime failure, 2 bad configuration or usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>

#include "aws/credentials.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/time.h"
#include "common/worker.h"
#include "db/events.h"
#include "db/jobcache.h"
#include "db/jobs.h"
#include "db/writer.h"
#include "jobs/app.h"
#include "jobs/cache.h"
#include "jobs/dispatcher.h"
#include "jobs/executor.h"
#include "jobs/notifier.h"
#include "jobs/presence.h"
#include "routes/routes.h"
#include "server/http.h"
#include "server/keys_cmd.h"

#include "common/poison.h"

#ifndef MLGW_VERSION
#define MLGW_VERSION "0.1.0"
#endif

static int signal_pipe[2] = {-1, -1};
static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
    (void)sig;
    if (signals_seen++ > 0)
        _exit(1); /* second signal: stop at once */
    int saved = errno;
    char c = 's';
    ssize_t n = write(signal_pipe[1], &c, 1);
    (void)n;
    errno = saved;
}

static int install_signals(void)
{
    if (pipe(signal_pipe) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(signal_pipe[i], F_GETFL);
        if (fl < 0 || fcntl(signal_pipe[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(signal_pipe[i], F_SETFD, FD_CLOEXEC) != 0)
            return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* Loads and validates configuration; prints one line per problem. */
static int load_config(struct gw_config *cfg)
{
    struct gw_buf errors;
    gw_buf_init(&errors, (size_t)64 << 10);
    int bad = gw_config_load(cfg, NULL, NULL, &errors);
    /* One line per invalid setting, each naming its variable. */
    for (char *line = errors.data; bad > 0 && line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        (void)fprintf(stderr, "ml-gateway: invalid configuration: %s\n", line);
        line = nl ? nl + 1 : NULL;
    }
    gw_buf_dispose(&errors);
    if (bad == 0)
        gw_log_set_level(cfg->log_level);
    return bad;
}

static int migrate_once(const struct gw_config *cfg, const struct db_migration_set *set,
                        int *applied, struct gw_err *err)
{
    PGconn *pg = NULL;
    int rc = db_connect(&pg, cfg->database_url, (int)cfg->db_connect_timeout_s,
                        "ml-gateway-migrate", err);
    if (rc == GW_OK)
        rc = db_migrate(pg, set, applied, err);
    if (pg != NULL)
        PQfinish(pg);
    return rc;
}

/* Background migrator: used when PostgreSQL is down at start. */
struct migrator {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int running;
    const struct gw_config *cfg;
    const struct db_migration_set *set;
};

static void *migrator_main(void *arg)
{
    struct migrator *m = arg;
    gw_log_set_request_id(NULL);
    for (;;) {
        pthread_mutex_lock(&m->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &until) != ETIMEDOUT) {
        }
        int stop = m->stop;
        pthread_mutex_unlock(&m->mu);
        if (stop)
            break;
        struct gw_err err = {0};
        int applied = 0;
        int rc = migrate_once(m->cfg, m->set, &applied, &err);
        if (rc == GW_OK) {
            GW_LOG_INFO("database reachable: migrations current (%d applied)", applied);
            break;
        }
        if (rc != GW_EUNAVAIL) {
            GW_LOG_ERROR("migrations failed: %s", err.msg);
            break;
        }
        GW_LOG_DEBUG("still waiting for PostgreSQL: %s", err.msg);
    }
    return NULL;
}

static void migrator_stop(struct migrator *m)
{
    if (!m->running)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    m->running = 0;
}

/* Periodic housekeeping: forget idempotency keys past their TTL. */
static int janitor_run(void *arg)
{
    const struct jobs_app *app = arg;
    long deleted = 0;
    struct gw_err err = {0};
    if (db_idempotency_purge(&deleted, app->pool, app->cfg->idempotency_ttl_hours, &err) != GW_OK) {
        GW_LOG_DEBUG("janitor: %s", err.msg);
        return 0; /* the database may be down: try again next time */
    }
    if (deleted > 0)
        GW_LOG_INFO("janitor: forgot %ld expired idempotency key(s)", deleted);
    /* The janitor is one thread: its snapshot lives from one run to the next. */
    static char changes_snapshot[8192];
    if (db_job_changes_trim(&deleted, app->pool, changes_snapshot, sizeof(changes_snapshot),
                            &err) != GW_OK)
        GW_LOG_DEBUG("janitor: %s", err.msg);
    else if (deleted > 0)
        GW_LOG_DEBUG("janitor: trimmed %ld job change row(s)", deleted);
    return 0;
}

/* AWS is needed when anything AWS is configured. */
static int aws_wanted(const struct gw_config *cfg)
{
    return cfg->gpu_job_queue || cfg->cpu_job_queue || cfg->trigger_topic_arn ||
           cfg->notify_topic_arn || cfg->dispatch == GW_DISPATCH_BATCH ||
           cfg->dispatch == GW_DISPATCH_SNS;
}

/* Everything a serving gateway holds, in the order it is started; stopped in
 * reverse by serve_stop. */
struct serve {
    struct gw_config *cfg;
    const struct db_migration_set *set;
    struct migrator mig;
    struct db_pool *pool, *request_pool, *writer_pool;
    struct db_writer *writer;
    struct jobs_app app;
    struct aws_creds_provider *creds;
    struct aws_client *aws;
    struct jobs_executor *executor;
    struct srv_http *http;
    struct jobs_dispatcher *dispatcher;
    struct jobs_notifier *notifier;
    struct jobs_cache *cache;
    struct gw_worker *janitor;
    struct jobs_presence *presence;
    struct db_jobcache *jobcache;
};

/* Applies pending migrations now, or, with PostgreSQL down, starts the
 * migrator thread that applies them once it is back. */
static int serve_migrate(struct serve *s, struct gw_err *err)
{
    int applied = 0;
    int rc = migrate_once(s->cfg, s->set, &applied, err);
    if (rc == GW_EUNAVAIL) {
        GW_LOG_WARN("PostgreSQL is unavailable (%s); serving anyway, /readyz stays 503 until "
                    "migrations are applied",
                    err->msg);
        if (pthread_create(&s->mig.thread, NULL, migrator_main, &s->mig) == 0)
            s->mig.running = 1;
        return GW_OK;
    }
    if (rc != GW_OK) {
        GW_LOG_ERROR("cannot apply migrations: %s", err->msg);
        return rc;
    }
    GW_LOG_INFO("migrations current (%d applied now, %zu known)", applied, s->set->n);
    return GW_OK;
}

/* The pool and the shared context every engine and handler borrows. */
static int serve_context(struct serve *s, struct gw_err *err)
{
    const struct gw_config *cfg = s->cfg;
    struct db_pool_opts po = {
        .url = cfg->database_url,
        .size = (int)cfg->db_pool_size,
        .checkout_timeout_ms = (int)cfg->db_checkout_timeout_ms,
        .connect_timeout_s = (int)cfg->db_connect_timeout_s,
        .statement_timeout_ms = (int)cfg->db_statement_timeout_ms,
        .application_name = "ml-gateway",
    };
    int rc = db_pool_new(&s->request_pool, &po, err);
    if (rc == GW_OK) {
        po.size = (int)cfg->db_worker_pool_size;
        po.statement_timeout_ms = (int)cfg->db_worker_statement_timeout_ms;
        po.application_name = "ml-gateway-worker";
        rc = db_pool_new(&s->pool, &po, err);
    }
    if (rc == GW_OK && cfg->group_commit) {
        po.size = (int)cfg->db_writers;
        po.statement_timeout_ms = (int)cfg->db_statement_timeout_ms;
        po.application_name = "ml-gateway-writer";
        rc = db_pool_new(&s->writer_pool, &po, err);
        struct db_writer_opts wo = {.pool = s->writer_pool,
                                    .writers = (int)cfg->db_writers,
                                    .max_batch = (int)cfg->group_commit_max};
        if (rc == GW_OK)
            rc = db_writer_new(&s->writer, &wo, err);
    }
    if (rc != GW_OK) {
        GW_LOG_ERROR("cannot create the database pool: %s", err->msg);
        return rc;
    }
    s->app.cfg = cfg;
    s->app.writer = s->writer;
    s->app.pool = s->pool;
    s->app.request_pool = s->request_pool;
    s->app.migrations = s->set;
    s->app.started_ms = gw_now_ms();
    s->app.notify_statuses_pg = db_pg_array_from_csv(cfg->notify_statuses);
    s->app.notify_emails_pg = db_pg_array_from_csv(cfg->notify_emails);
    s->app.sns_opts = (struct aws_sns_verifier_opts){
        .trust_pem_file = cfg->sns_cert_ca_file,
        .allowed_cert_host_suffix = cfg->sns_cert_host_suffix,
        .allow_http_cert_url = cfg->sns_cert_host_suffix != NULL,
    };
    rc = aws_sns_verifier_new(&s->app.sns_verifier, &s->app.sns_opts, err);
    if (rc != GW_OK) {
        GW_LOG_ERROR("cannot set up SNS signature checks: %s", err->msg);
        return rc;
    }
    /* One AWS client for the process (dispatch, notifications, Batch logs);
     * credentials are looked up on first use. */
    struct aws_creds_opts co = {0};
    struct aws_client_opts ao = {.timeout_ms = (int)cfg->aws_timeout_ms};
    rc = aws_creds_provider_new(&s->creds, &co, err);
    if (rc == GW_OK) {
        ao.creds = s->creds;
        rc = aws_client_new(&s->aws, &ao, err);
    }
    if (rc != GW_OK) {
        GW_LOG_ERROR("cannot set up AWS: %s", err->msg);
        return rc;
    }
    if (aws_wanted(cfg) && aws_client_region(s->aws)[0] == '\0')
        GW_LOG_WARN("no AWS region (AWS_REGION): jobs for batch and sns cannot be handed on");
    s->app.aws = s->aws;
    return GW_OK;
}

/* Raises the open-files limit to its hard limit and returns how many HTTP
 * connections fit below it, leaving room for the pool, the LISTEN
 * connections, AWS and SMTP calls, log files and local jobs' pipes: the
 * connection limit may never be what runs the process out of descriptors. */
static unsigned connection_budget(const struct gw_config *cfg)
{
    struct rlimit rl;
    rlim_t have = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rlim_t want = rl.rlim_max;
            rl.rlim_cur = want;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                GW_LOG_WARN("cannot raise the open-files limit to %llu", (unsigned long long)want);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
            have = rl.rlim_cur;
        else if (rl.rlim_cur == RLIM_INFINITY)
            have = (rlim_t)1 << 20;
    }
    rlim_t reserve = (rlim_t)cfg->db_pool_size + 256;
    rlim_t room = have > reserve + 16 ? have - reserve : 16;
    rlim_t limit = (rlim_t)cfg->connection_limit;
    if (limit > room) {
        GW_LOG_WARN("MLGW_CONNECTION_LIMIT %lld lowered to %llu: the open-files limit is %llu and "
                    "%llu descriptors stay for the pool, AWS, SMTP and jobs",
                    cfg->connection_limit, (unsigned long long)room, (unsigned long long)have,
                    (unsigned long long)reserve);
        limit = room;
    }
    return (unsigned)limit;
}

/* The executor, then the HTTP server, then the workers behind it. */
static int serve_start(struct serve *s, struct gw_err *err)
{
    const struct gw_config *cfg = s->cfg;
    /* Before any dispatcher: its claims carry this gateway's presence key. */
    if (cfg->dispatch_workers > 0) {
        int prc = jobs_presence_start(&s->presence, cfg, err);
        if (prc != GW_OK) {
            GW_LOG_ERROR("cannot start the presence lock: %s", err->msg);
            return prc;
        }
        s->app.presence = s->presence;
    }
    /* Before the HTTP server: POST /jobs checks local jobs against its capacity. */
    if (cfg->dispatch_workers > 0) {
        if (jobs_executor_start(&s->executor, &s->app, err) != GW_OK)
            GW_LOG_ERROR("local jobs will wait: the local executor cannot start: %s", err->msg);
        s->app.executor = s->executor;
    }
    /* Before the HTTP server: GET /jobs/{id} reads through it. */
    if (cfg->job_cache_bytes > 0) {
        if (db_jobcache_new(&s->jobcache, (size_t)cfg->job_cache_bytes) != GW_OK ||
            db_jobcache_start(s->jobcache, cfg->database_url, (int)cfg->db_connect_timeout_s) !=
                GW_OK) {
            db_jobcache_free(s->jobcache);
            s->jobcache = NULL;
            GW_LOG_WARN("cannot start the job cache: every GET /jobs/{id} reads the database");
        }
        s->app.jobcache = s->jobcache;
    }
    size_t nroutes = 0;
    const struct rt_route *routes = rt_table(&nroutes);
    struct srv_http_opts ho = {
        .addr = (const struct sockaddr *)&cfg->listen_addr,
        .addrlen = (unsigned)cfg->listen_addrlen,
        .threads = (unsigned)cfg->threads,
        .connection_limit = connection_budget(cfg),
        .connection_timeout_s = (unsigned)cfg->connection_timeout_s,
        .per_address_limit = (unsigned)cfg->connections_per_address,
        .request_deadline_s = (unsigned)cfg->request_deadline_s,
        .max_body_bytes = (size_t)cfg->max_body_bytes,
        .routes = routes,
        .nroutes = nroutes,
        .app = &s->app,
        .authorize = rt_authorize,
        .cors = cfg,
    };
    int rc = srv_http_start(&s->http, &ho, err);
    if (rc != GW_OK) {
        GW_LOG_ERROR("MLGW_LISTEN=%s: %s", cfg->listen, err->msg);
        return rc;
    }
    rc = jobs_dispatcher_start(&s->dispatcher, &s->app, s->aws, err);
    if (rc != GW_OK) {
        GW_LOG_ERROR("cannot start the dispatchers: %s", err->msg);
        return rc;
    }
    rc = jobs_notifier_start(&s->notifier, &s->app, s->aws, err);
    if (rc != GW_OK) {
        GW_LOG_ERROR("cannot start the notifiers: %s", err->msg);
        return rc;
    }
    rc = jobs_cache_start(&s->cache, &s->app, s->aws, err);
    if (rc != GW_OK) {
        GW_LOG_ERROR("cannot start the cache scanner: %s", err->msg);
        return rc;
    }
    if (gw_worker_start(&s->janitor, "janitor", (int64_t)10 * 60 * 1000, janitor_run, &s->app) !=
        GW_OK)
        GW_LOG_WARN("cannot start the janitor: expired idempotency keys stay until restart");
    char fields[160];
    gw_fmt(fields, sizeof(fields), "\"port\":%u,\"version\":\"%s\"", srv_http_port(s->http),
           MLGW_VERSION);
    gw_log_fields(GW_LOG_LEVEL_INFO, "listening", fields);
    return GW_OK;
}

/* Waits for SIGTERM/SIGINT, then stops accepting connections and lets the
 * requests in flight finish until MLGW_SHUTDOWN_TIMEOUT. */
static void serve_until_signal(struct serve *s)
{
    for (;;) {
        struct pollfd pfd = {.fd = signal_pipe[0], .events = POLLIN};
        int n = poll(&pfd, 1, 1000);
        if (n > 0)
            break;
        if (n < 0 && errno != EINTR)
            break;
    }
    /* One budget for everything: the requests in flight drain until a second
     * before the end, the workers stop taking work now and whatever waits
     * (an AWS call, a backoff, a job's grace) waits at most until the end. */
    int64_t start = gw_monotonic_ns();
    int64_t deadline = start + s->cfg->shutdown_timeout_s * 1000000000LL;
    int64_t drain_until = deadline - (s->cfg->shutdown_timeout_s >= 2 ? 1000000000LL : 0);
    gw_shutdown_begin(deadline);
    GW_LOG_INFO("shutting down: no new connections, waiting up to %llds for %ld in-flight "
                "request(s)",
                s->cfg->shutdown_timeout_s, srv_http_inflight(s->http));
    srv_http_quiesce(s->http);
    while (srv_http_inflight(s->http) > 0 && gw_monotonic_ns() < drain_until) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    long left = srv_http_inflight(s->http);
    if (left > 0)
        GW_LOG_WARN("shutdown deadline reached with %ld request(s) still in flight", left);
}

/* Stops what serve_* started, in reverse; each stop takes NULL. */
static void serve_stop(struct serve *s)
{
    /* The writers answer what they hold while the daemon can still send it;
     * a write submitted later is answered 503 at once. */
    db_writer_stop(s->writer);
    srv_http_stop(s->http);
    db_writer_free(s->writer);
    db_jobcache_free(s->jobcache); /* after the last request */
    jobs_executor_stop(s->executor);
    jobs_dispatcher_stop(s->dispatcher);
    jobs_notifier_stop(s->notifier);
    jobs_cache_stop(s->cache);
    jobs_presence_stop(s->presence); /* after the dispatchers: their claims are settled */
    gw_worker_stop(s->janitor);
    migrator_stop(&s->mig);
    db_pool_free(s->request_pool);
    db_pool_free(s->writer_pool);
    db_pool_free(s->pool);
    aws_client_free(s->aws);
    aws_creds_provider_free(s->creds);
    aws_sns_verifier_free(s->app.sns_verifier);
    free(s->app.notify_statuses_pg);
    free(s->app.notify_emails_pg);
    pthread_mutex_destroy(&s->mig.mu);
    pthread_cond_destroy(&s->mig.cv);
}

static int cmd_serve(struct gw_config *cfg, const struct db_migration_set *set)
{
    struct serve s = {.cfg = cfg, .set = set, .mig = {.cfg = cfg, .set = set}};
    struct gw_err err = {0};
    int status = 1;
    pthread_mutex_init(&s.mig.mu, NULL);
    pthread_cond_init(&s.mig.cv, NULL);
    if (serve_migrate(&s, &err) == GW_OK && serve_context(&s, &err) == GW_OK &&
        serve_start(&s, &err) == GW_OK) {
        serve_until_signal(&s);
        status = 0;
    }
    serve_stop(&s);
    if (status == 0)
        GW_LOG_INFO("stopped");
    return status;
}

static int cmd_migrate(struct gw_config *cfg, const struct db_migration_set *set)
{
    struct gw_err err = {0};
    int applied = 0;
    int rc = migrate_once(cfg, set, &applied, &err);
    if (rc != GW_OK) {
        GW_LOG_ERROR("migrate failed: %s", err.msg);
        return 1;
    }
    GW_LOG_INFO("migrations current: %d applied now, %zu known", applied, set->n);
    return 0;
}

static void usage(FILE *f)
{
    (void)fprintf(f,
                  "usage: ml-gateway [serve]      run the HTTP gateway\n"
                  "       ml-gateway migrate      apply pending database migrations and exit\n"
                  "       ml-gateway keys create --name NAME --scopes jobs:read,jobs:write,admin\n"
                  "       ml-gateway keys list | keys revoke ID|PREFIX\n"
                  "       ml-gateway config       print the settings table (Markdown)\n"
                  "       ml-gateway --version\n"
                  "Settings come from environment variables; see README.md.\n");
}

/* No process of the same user (a local job run without the sandbox, say)
 * may read this one's memory or /proc/<pid>/environ, where DATABASE_URL and
 * the secrets are. 0, or -1 (said on stderr). */
static int make_undumpable(void)
{
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
        return 0;
    (void)fprintf(stderr, "ml-gateway: cannot make the process non-dumpable: %s\n",
                  strerror(errno));
    return -1;
}

int main(int argc, char **argv)
{
    if (make_undumpable() != 0) /* first of all */
        return 1;
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("ml-gateway %s\n", MLGW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "config") == 0) {
        struct gw_buf b;
        gw_buf_init(&b, 1 << 20);
        int rc = gw_config_markdown(&b);
        if (rc == GW_OK)
            rc = fputs(b.data, stdout) < 0 ? GW_EIO : GW_OK;
        gw_buf_dispose(&b);
        return rc == GW_OK ? 0 : 1;
    }
    int is_keys = strcmp(cmd, "keys") == 0;
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0 && !is_keys) {
        (void)fprintf(stderr, "ml-gateway: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return 2;
    }
    if (argc > 2 && !is_keys) {
        (void)fprintf(stderr, "ml-gateway: %s takes no arguments\n", cmd);
        return 2;
    }

    struct gw_config cfg;
    if (load_config(&cfg) > 0) {
        gw_config_dispose(&cfg);
        return 2;
    }
    if (install_signals() != 0) {
        (void)fprintf(stderr, "ml-gateway: cannot install signal handlers: %s\n", strerror(errno));
        gw_config_dispose(&cfg);
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        (void)fprintf(stderr, "ml-gateway: cannot initialise libcurl\n");
        gw_config_dispose(&cfg);
        return 1;
    }
    char *described = gw_config_describe(&cfg);
    if (!is_keys)
        gw_log_fields(GW_LOG_LEVEL_INFO, strcmp(cmd, "serve") == 0 ? "starting" : "migrate",
                      described);
    free(described);

    int status = 1;
    struct db_migration_set set = {0};
    struct gw_err err = {0};
    if (db_migrations_load(&set, cfg.migrations_dir, &err) != GW_OK) {
        GW_LOG_ERROR("%s", err.msg);
    } else if (strcmp(cmd, "migrate") == 0) {
        status = cmd_migrate(&cfg, &set);
    } else if (is_keys) {
        /* Keys live in the schema: make sure it is there first. */
        int applied = 0;
        if (migrate_once(&cfg, &set, &applied, &err) != GW_OK) {
            GW_LOG_ERROR("migrations failed: %s", err.msg);
        } else {
            status = srv_cmd_keys(&cfg, argc - 2, argv + 2);
        }
    } else {
        status = cmd_serve(&cfg, &set);
    }
    db_migrations_dispose(&set);
    gw_config_dispose(&cfg);
    curl_global_cleanup();
    return status;
}
