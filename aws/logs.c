/*
 * logs.c — CloudWatch Logs: POST / with X-Amz-Target and an
 * application/x-amz-json-1.1 body.
 */
#include "aws/logs.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#include "common/poison.h"

int aws_logs_get_events(json_t **events, char next_forward[512], struct aws_client *c,
                        const struct aws_logs_get *in, struct aws_error *err)
{
    *events = NULL;
    next_forward[0] = '\0';
    json_t *body = json_pack("{s:s,s:s,s:b}", "logGroupName", in->group, "logStreamName",
                             in->stream, "startFromHead", in->start_from_head);
    if (body != NULL && in->next_token != NULL)
        json_object_set_new(body, "nextToken", json_string(in->next_token));
    if (body != NULL && in->limit > 0)
        json_object_set_new(body, "limit", json_integer(in->limit));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        memset(err, 0, sizeof(*err));
        gw_fmt(err->code, sizeof(err->code), "%s", "OutOfMemory");
        return GW_ENOMEM;
    }
    const struct aws_header target = {"x-amz-target", "Logs_20140328.GetLogEvents"};
    struct aws_request req = {
        .service = "logs",
        .endpoint_id = "CLOUDWATCH_LOGS",
        .host_prefix = "logs",
        .method = "POST",
        .path = "/",
        .content_type = "application/x-amz-json-1.1",
        .body = text,
        .body_len = strlen(text),
        .headers = &target,
        .nheaders = 1,
        .idempotent = 1,
    };
    struct aws_response resp;
    int rc = aws_call(&resp, c, &req, err);
    free(text);
    if (rc == GW_OK) {
        json_t *out = json_loadb(resp.body.data ? resp.body.data : "{}", resp.body.len, 0, NULL);
        json_t *ev = json_object_get(out, "events");
        if (!json_is_array(ev)) {
            gw_fmt(err->code, sizeof(err->code), "%s", "BadResponse");
            rc = GW_EUPSTREAM;
        } else {
            *events = json_incref(ev);
            const char *nf = json_string_value(json_object_get(out, "nextForwardToken"));
            gw_fmt(next_forward, 512, "%s", nf ? nf : "");
        }
        json_decref(out);
    } else if (rc == GW_EUPSTREAM && strcmp(err->code, "ResourceNotFoundException") == 0) {
        rc = GW_ENOTFOUND;
    }
    aws_response_dispose(&resp);
    return rc;
}
