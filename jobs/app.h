/*
 * app.h — what every engine and handler can reach: configuration, the
 * database pool, the migration set, the notification policy, the AWS client
 * and the executor the gateway was started with. One instance, built by
 * server/main.c before any thread starts and borrowed, read-only, by every
 * thread for the life of the process.
 */
#ifndef MLGW_APP_H
#define MLGW_APP_H

#include <stdint.h>

#include "aws/sns_verify.h"
#include "common/config.h"
#include "db/events.h"
#include "db/migrate.h"
#include "db/pool.h"

struct db_jobcache;
struct db_writer;
struct jobs_executor;
struct jobs_presence;

struct jobs_app {
    const struct gw_config *cfg;
    struct db_pool *pool;         /* the background workers' (MLGW_DB_WORKER_*) */
    struct db_pool *request_pool; /* HTTP requests' (MLGW_DB_POOL_SIZE, statement timeout) */
    const struct db_migration_set *migrations;
    int64_t started_ms;
    /* Notification policy as PostgreSQL array texts, built once at start. */
    char *notify_statuses_pg;              /* "{\"SUCCEEDED\",\"FAILED\"}" */
    char *notify_emails_pg;                /* NULL when no global recipients */
    struct aws_sns_verifier *sns_verifier; /* POST /events/sns */
    struct aws_sns_verifier_opts sns_opts; /* its URL rules, for SubscribeURL too */
    struct jobs_executor *executor;        /* NULL when local jobs do not run here */
    struct aws_client *aws;                /* the process's AWS client (CloudWatch Logs) */
    struct jobs_presence *presence;        /* this gateway's liveness lock; NULL: none */
    struct db_jobcache *jobcache;          /* GET /jobs/{id}'s documents; NULL: off */
    struct db_writer *writer;              /* group commit for requests' writes; NULL: off */
};

/* Sets ev's notification policy (statuses, global recipients, SNS topic)
 * from app: every job-state event, whatever its source, carries the same. */
void jobs_event_policy(struct db_job_event *ev, const struct jobs_app *app);

#endif
