/*
 * batch_event.h — reads an EventBridge "Batch Job State Change" event (the
 * JSON AWS Batch emits, delivered by EventBridge or inside an SNS message)
 * into a db_job_event. Pure: no I/O, no allocation but the error list.
 *
 * Safe from any thread on an event the caller does not share.
 */
#ifndef MLGW_RT_BATCH_EVENT_H
#define MLGW_RT_BATCH_EVENT_H

#include <jansson.h>

#include "db/events.h"

/* Fills out from event: every string in out is borrowed from event (valid
 * while it lives); new_id, output_uri and the notification policy are left
 * NULL for the caller. On a malformed event, appends one {"field",
 * "message"} object per problem to errors (a JSON array) and returns
 * GW_EINVAL; GW_OK otherwise. source ("eventbridge", "sns") is stored as is. */
int rt_batch_event_parse(struct db_job_event *out, json_t *errors, const json_t *event,
                         const char *source);

#endif
