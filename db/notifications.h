/*
 * notifications.h — the notification outbox: claiming due rows under a
 * lease, and recording whether they were sent, will be retried, or failed.
 *
 * Safe from any thread; several notifier workers, in one gateway or many,
 * claim disjoint rows (FOR UPDATE SKIP LOCKED). Claimed rows are new: the
 * caller disposes of them.
 */
#ifndef MLGW_DB_NOTIFICATIONS_H
#define MLGW_DB_NOTIFICATIONS_H

#include "db/pool.h"

struct db_notification {
    char id[24];
    char channel[16]; /* email | webhook | sns */
    char status[33];  /* the job status it announces */
    char *recipient;  /* new */
    char *job_json;   /* new: the job with its history */
    int attempts;     /* including this one */
};

void db_notification_dispose(struct db_notification *n);
/* GW_ENOTFOUND when nothing is due. */
int db_notification_claim(struct db_notification *out, struct db_pool *pool, int lease_s,
                          struct gw_err *err);
/* The same with another outbox's claim statement (run notifications): one
 * parameter, the lease in seconds; it returns id, channel, status,
 * recipient, attempts and the JSON to send, in that order. */
int db_notification_claim_with(struct db_notification *out, struct db_pool *pool,
                               const struct db_stmt *claim, int lease_s, struct gw_err *err);
int db_notification_sent(struct db_pool *pool, const char *id, struct gw_err *err);
/* error: the full text, for operators (last_error; never shown to a
 * client); error_class: what the job's JSON shows ("refused", "timeout",
 * "tls", "dns", "http_<status>", "unavailable", "rejected", "error"). */
int db_notification_retry(struct db_pool *pool, const char *id, const char *error,
                          const char *error_class, long delay_ms, struct gw_err *err);
int db_notification_failed(struct db_pool *pool, const char *id, const char *error,
                           const char *error_class, struct gw_err *err);

#endif
