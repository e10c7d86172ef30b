/*
 * logs.h — CloudWatch Logs GetLogEvents (JSON 1.1 protocol), for the logs of
 * Batch jobs.
 *
 * Blocks for the network (retries included); safe from any thread sharing
 * one aws_client (transport.h). The inputs are borrowed for the call.
 */
#ifndef MLGW_AWS_LOGS_H
#define MLGW_AWS_LOGS_H

#include <jansson.h>

#include "aws/transport.h"

struct aws_logs_get {
    const char *group;
    const char *stream;
    const char *next_token; /* NULL: from the start (or end) */
    int limit;              /* 0: service default; ≤ 10000 */
    int start_from_head;
};

/* *events is a new array (the caller's: json_decref) of {timestamp, message,
 * ingestionTime}; next_forward
 * gets nextForwardToken (128+ chars; give 512). GW_ENOTFOUND when the group
 * or stream does not exist. */
int aws_logs_get_events(json_t **events, char next_forward[512], struct aws_client *c,
                        const struct aws_logs_get *in, struct aws_error *err);

#endif
