/*
 * batch.c — AWS Batch over REST-JSON: POST /v1/<operation> with a JSON body.
 */
#include "aws/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#include "common/poison.h"

static int batch_call(json_t **out, struct aws_client *c, const char *op, json_t *body,
                      int idempotent, struct aws_error *err)
{
    if (out != NULL)
        *out = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text == NULL) {
        memset(err, 0, sizeof(*err));
        gw_fmt(err->code, sizeof(err->code), "%s", "OutOfMemory");
        return GW_ENOMEM;
    }
    char path[64];
    gw_fmt(path, sizeof(path), "/v1/%s", op);
    struct aws_request req = {
        .service = "batch",
        .endpoint_id = "BATCH",
        .host_prefix = "batch",
        .method = "POST",
        .path = path,
        .content_type = "application/json",
        .body = text,
        .body_len = strlen(text),
        .idempotent = idempotent,
    };
    struct aws_response resp;
    int rc = aws_call(&resp, c, &req, err);
    free(text);
    if (rc == GW_OK && out != NULL) {
        json_error_t je;
        *out = json_loadb(resp.body.data ? resp.body.data : "{}", resp.body.len, 0, &je);
        if (*out == NULL) {
            gw_fmt(err->code, sizeof(err->code), "%s", "BadResponse");
            gw_fmt(err->message, sizeof(err->message), "Batch %s answered malformed JSON", op);
            rc = GW_EUPSTREAM;
        }
    }
    aws_response_dispose(&resp);
    return rc;
}

static json_t *resource(const char *type, long long v)
{
    char num[24];
    gw_fmt(num, sizeof(num), "%lld", v);
    return json_pack("{s:s,s:s}", "type", type, "value", num);
}

/* The request body SubmitJob sends (new: json_decref), or NULL. */
static json_t *aws_batch_submit_body(const struct aws_batch_submit *in)
{
    json_t *b = json_pack("{s:s,s:s,s:s}", "jobName", in->job_name, "jobQueue", in->job_queue,
                          "jobDefinition", in->job_definition);
    if (b == NULL)
        return NULL;
    json_t *co = json_object();
    json_t *rr = json_array();
    json_array_append_new(rr, resource("VCPU", in->vcpus));
    json_array_append_new(rr, resource("MEMORY", in->memory_mib));
    if (in->gpus > 0)
        json_array_append_new(rr, resource("GPU", in->gpus));
    json_object_set_new(co, "resourceRequirements", rr);
    if (in->environment != NULL) {
        json_t *env = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(in->environment, k, v)
        {
            json_array_append_new(env, json_pack("{s:s,s:O}", "name", k, "value", v));
        }
        json_object_set_new(co, "environment", env);
    }
    if (in->command != NULL && json_array_size(in->command) > 0)
        json_object_set(co, "command", in->command);
    json_object_set_new(b, "containerOverrides", co);
    if (in->attempt_duration_s > 0)
        json_object_set_new(
            b, "timeout",
            json_pack("{s:I}", "attemptDurationSeconds", (json_int_t)in->attempt_duration_s));
    if (in->attempts > 1) {
        json_t *rs = json_pack("{s:I}", "attempts", (json_int_t)in->attempts);
        if (in->retry_spot_only)
            json_object_set_new(rs, "evaluateOnExit",
                                json_pack("[{s:s,s:s},{s:s,s:s}]", "onStatusReason", "Host EC2*",
                                          "action", "RETRY", "onReason", "*", "action", "EXIT"));
        json_object_set_new(b, "retryStrategy", rs);
    }
    if (in->tags != NULL)
        json_object_set(b, "tags", in->tags);
    if (in->propagate_tags)
        json_object_set_new(b, "propagateTags", json_true());
    if (in->depends_on != NULL && json_array_size(in->depends_on) > 0) {
        json_t *deps = json_array();
        size_t i;
        json_t *id;
        json_array_foreach(in->depends_on, i, id)
        {
            json_array_append_new(deps, json_pack("{s:O}", "jobId", id));
        }
        json_object_set_new(b, "dependsOn", deps);
    }
    if (in->array_size > 1)
        json_object_set_new(b, "arrayProperties",
                            json_pack("{s:I}", "size", (json_int_t)in->array_size));
    return b;
}

int aws_batch_submit_job(char job_id[128], char job_arn[512], struct aws_client *c,
                         const struct aws_batch_submit *in, struct aws_error *err)
{
    job_id[0] = '\0';
    job_arn[0] = '\0';
    json_t *body = aws_batch_submit_body(in);
    json_t *out = NULL;
    /* SubmitJob has no client token: never blindly retried after sending. */
    int rc = batch_call(&out, c, "submitjob", body, 0, err);
    json_decref(body);
    if (rc == GW_OK) {
        const char *id = json_string_value(json_object_get(out, "jobId"));
        const char *arn = json_string_value(json_object_get(out, "jobArn"));
        if (id == NULL) {
            gw_fmt(err->code, sizeof(err->code), "%s", "BadResponse");
            gw_fmt(err->message, sizeof(err->message), "%s", "SubmitJob answered without jobId");
            rc = GW_EUPSTREAM;
        } else {
            gw_fmt(job_id, 128, "%s", id);
            gw_fmt(job_arn, 512, "%s", arn ? arn : "");
        }
    }
    json_decref(out);
    return rc;
}

int aws_batch_describe_jobs(json_t **jobs, struct aws_client *c, const char *const *ids,
                            size_t nids, struct aws_error *err)
{
    *jobs = json_array();
    int rc = GW_OK;
    for (size_t start = 0; rc == GW_OK && start < nids; start += 100) {
        json_t *list = json_array();
        for (size_t i = start; i < nids && i < start + 100; i++)
            json_array_append_new(list, json_string(ids[i]));
        json_t *body = json_pack("{s:o}", "jobs", list);
        json_t *out = NULL;
        rc = batch_call(&out, c, "describejobs", body, 1, err);
        json_decref(body);
        if (rc == GW_OK)
            json_array_extend(*jobs, json_object_get(out, "jobs"));
        json_decref(out);
    }
    if (rc != GW_OK) {
        json_decref(*jobs);
        *jobs = NULL;
    }
    return rc;
}

int aws_batch_list_jobs(json_t **jobs, struct aws_client *c, const struct aws_batch_list *in,
                        struct aws_error *err)
{
    *jobs = json_array();
    char *token = NULL;
    int rc = GW_OK;
    int pages = in->max_pages > 0 ? in->max_pages : 10;
    for (int page = 0; rc == GW_OK && page < pages; page++) {
        json_t *body = json_pack("{s:s}", "jobQueue", in->job_queue);
        if (in->job_status != NULL)
            json_object_set_new(body, "jobStatus", json_string(in->job_status));
        if (in->job_name != NULL)
            json_object_set_new(
                body, "filters",
                json_pack("[{s:s,s:[s]}]", "name", "JOB_NAME", "values", in->job_name));
        if (token != NULL)
            json_object_set_new(body, "nextToken", json_string(token));
        json_t *out = NULL;
        rc = batch_call(&out, c, "listjobs", body, 1, err);
        json_decref(body);
        free(token);
        token = NULL;
        if (rc == GW_OK) {
            json_array_extend(*jobs, json_object_get(out, "jobSummaryList"));
            const char *next = json_string_value(json_object_get(out, "nextToken"));
            if (next != NULL && next[0] != '\0')
                token = strdup(next);
        }
        json_decref(out);
        if (token == NULL)
            break;
    }
    free(token);
    if (rc != GW_OK) {
        json_decref(*jobs);
        *jobs = NULL;
    }
    return rc;
}

static int job_action(struct aws_client *c, const char *op, const char *job_id, const char *reason,
                      struct aws_error *err)
{
    json_t *body = json_pack("{s:s,s:s}", "jobId", job_id, "reason", reason);
    int rc = batch_call(NULL, c, op, body, 1, err);
    json_decref(body);
    return rc;
}

int aws_batch_cancel_job(struct aws_client *c, const char *job_id, const char *reason,
                         struct aws_error *err)
{
    return job_action(c, "canceljob", job_id, reason, err);
}

int aws_batch_terminate_job(struct aws_client *c, const char *job_id, const char *reason,
                            struct aws_error *err)
{
    return job_action(c, "terminatejob", job_id, reason, err);
}
