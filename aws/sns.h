/*
 * sns.h — SNS Publish (query protocol), with string MessageAttributes and
 * the FIFO fields.
 *
 * Blocks for the network (retries included); safe from any thread sharing
 * one aws_client (transport.h). The inputs are borrowed for the call and the
 * MessageId is copied into the caller's array.
 */
#ifndef MLGW_AWS_SNS_H
#define MLGW_AWS_SNS_H

#include "aws/transport.h"

struct aws_sns_attribute {
    const char *name;
    const char *value; /* DataType String */
};

struct aws_sns_publish {
    const char *topic_arn;
    const char *message; /* ≤ 256 KB */
    const char *subject; /* NULL: none (email subscribers see it) */
    const struct aws_sns_attribute *attributes;
    size_t nattributes;
    const char *group_id;         /* FIFO topics; NULL otherwise */
    const char *deduplication_id; /* FIFO topics without content-based dedup */
};

/* Publish; message_id gets SNS's MessageId. Not retried after an ambiguous
 * failure unless a deduplication id makes it safe (FIFO). */
int aws_sns_publish(char message_id[128], struct aws_client *c, const struct aws_sns_publish *in,
                    struct aws_error *err);

#endif
