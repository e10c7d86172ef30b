/*
 * app.c — the shared context's one behaviour: the notification policy every
 * job-state event carries (app.h).
 */
#include "jobs/app.h"

#include "common/poison.h"

void jobs_event_policy(struct db_job_event *ev, const struct jobs_app *app)
{
    ev->notify_statuses = app->notify_statuses_pg;
    ev->global_emails = app->notify_emails_pg;
    ev->topic = app->cfg->notify_topic_arn;
}
