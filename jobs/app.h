/*
 * app.h — what every handler can reach: configuration, the database pool
 * and the migration set the gateway was started with. One instance, built in
 * main.c and borrowed by everything else for the life of the process.
 */
#ifndef MLGW_APP_H
#define MLGW_APP_H

#include <stdint.h>

#include "aws/sns_verify.h"
#include "common/config.h"
#include "db/migrate.h"
#include "db/pool.h"

struct jobs_executor;

struct jobs_app {
    const struct gw_config *cfg;
    struct db_pool *pool;
    const struct db_migration_set *migrations;
    int64_t started_ms;
    /* Notification policy as PostgreSQL array texts, built once at start. */
    char *notify_statuses_pg;              /* "{\"SUCCEEDED\",\"FAILED\"}" */
    char *notify_emails_pg;                /* NULL when no global recipients */
    struct aws_sns_verifier *sns_verifier; /* POST /events/sns */
    struct aws_sns_verifier_opts sns_opts; /* its URL rules, for SubscribeURL too */
    struct jobs_executor *executor;        /* NULL when local jobs do not run here */
    struct aws_client *aws;                /* the process's AWS client (CloudWatch Logs) */
};

#endif
