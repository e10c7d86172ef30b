/*
 * sns.c — SNS over the query protocol: a form-encoded POST answered in XML.
 */
#include "aws/sns.h"

#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#include "common/poison.h"

enum { SNS_MAX_MESSAGE = 256 * 1024 };

int aws_sns_publish(char message_id[128], struct aws_client *c, const struct aws_sns_publish *in,
                    struct aws_error *err)
{
    message_id[0] = '\0';
    memset(err, 0, sizeof(*err));
    if (strlen(in->message) > SNS_MAX_MESSAGE) {
        gw_fmt(err->code, sizeof(err->code), "%s", "MessageTooLong");
        gw_fmt(err->message, sizeof(err->message), "%s", "SNS messages are at most 256 KB");
        return GW_EINVAL;
    }
    struct gw_buf form;
    gw_buf_init(&form, (size_t)SNS_MAX_MESSAGE * 4);
    int rc = aws_form_add(&form, "Action", "Publish");
    if (rc == GW_OK)
        rc = aws_form_add(&form, "Version", "2010-03-31");
    if (rc == GW_OK)
        rc = aws_form_add(&form, "TopicArn", in->topic_arn);
    if (rc == GW_OK)
        rc = aws_form_add(&form, "Message", in->message);
    if (rc == GW_OK && in->subject != NULL)
        rc = aws_form_add(&form, "Subject", in->subject);
    for (size_t i = 0; rc == GW_OK && i < in->nattributes; i++) {
        char key[96];
        gw_fmt(key, sizeof(key), "MessageAttributes.entry.%zu.Name", i + 1);
        rc = aws_form_add(&form, key, in->attributes[i].name);
        gw_fmt(key, sizeof(key), "MessageAttributes.entry.%zu.Value.DataType", i + 1);
        if (rc == GW_OK)
            rc = aws_form_add(&form, key, "String");
        gw_fmt(key, sizeof(key), "MessageAttributes.entry.%zu.Value.StringValue", i + 1);
        if (rc == GW_OK)
            rc = aws_form_add(&form, key, in->attributes[i].value);
    }
    if (rc == GW_OK && in->group_id != NULL)
        rc = aws_form_add(&form, "MessageGroupId", in->group_id);
    if (rc == GW_OK && in->deduplication_id != NULL)
        rc = aws_form_add(&form, "MessageDeduplicationId", in->deduplication_id);
    if (rc != GW_OK) {
        gw_buf_dispose(&form);
        gw_fmt(err->code, sizeof(err->code), "%s", "RequestTooLarge");
        return GW_EINVAL;
    }
    struct aws_request req = {
        .service = "sns",
        .endpoint_id = "SNS",
        .host_prefix = "sns",
        .method = "POST",
        .path = "/",
        .content_type = "application/x-www-form-urlencoded; charset=utf-8",
        .body = form.data,
        .body_len = form.len,
        .idempotent = in->deduplication_id != NULL,
    };
    struct aws_response resp;
    rc = aws_call(&resp, c, &req, err);
    gw_buf_dispose(&form);
    if (rc == GW_OK && aws_xml_text(message_id, 128, resp.body.data, "MessageId") != 0) {
        gw_fmt(err->code, sizeof(err->code), "%s", "BadResponse");
        gw_fmt(err->message, sizeof(err->message), "%s", "Publish answered without MessageId");
        rc = GW_EUPSTREAM;
    }
    aws_response_dispose(&resp);
    return rc;
}
