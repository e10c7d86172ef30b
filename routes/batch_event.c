/*
 * batch_event.c — EventBridge "Batch Job State Change" → db_job_event
 * (batch_event.h). Validation names every bad field; nothing is looked up
 * or stored here.
 */
#include "routes/batch_event.h"

#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/id.h"
#include "common/json.h"
#include "common/parse.h"
#include "common/utf8.h"

#include "common/poison.h"

/* Resources and script keys are what the jobs table can hold (migrations/0002). */
enum { ID_MAX_CHARS = 256, SCRIPT_KEY_MAX_CHARS = 1024, RESOURCE_MAX = 2147483647 };
/* 9999-12-31T23:59:59.999Z in ms: the last instant a timestamp column holds. */
static const long long EPOCH_MS_MAX = 253402300799999LL;

static long long jint_or(const json_t *o, const char *k, long long def)
{
    long long n = 0;
    return gw_json_whole(json_object_get(o, k), &n) ? n : def;
}

/* The gateway's job id in the tags, else at the end of the job name. */
static const char *gateway_id_of(const json_t *detail)
{
    const char *tag = gw_json_str(json_object_get(detail, "tags"), "mlgw:job-id");
    if (tag != NULL && gw_uuid_valid(tag))
        return tag;
    const char *name = gw_json_str(detail, "jobName");
    size_t n = name ? strlen(name) : 0;
    if (n >= 36 && gw_uuid_valid(name + n - 36))
        return name + n - 36;
    return NULL;
}

/* A resourceRequirements value of type (VCPU, MEMORY, GPU), or def. */
static long long requirement(const json_t *container, const char *type, long long def)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(container, "resourceRequirements"), i, r)
    {
        const char *t = gw_json_str(r, "type"), *v = gw_json_str(r, "value");
        long long n;
        if (t && v && strcmp(t, type) == 0 && gw_parse_ll(&n, v, 0, (long long)1 << 40) == GW_OK)
            return n;
    }
    return def;
}

static const char *env_value(const json_t *container, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(container, "environment"), i, e)
    {
        if (gw_json_str(e, "name") != NULL && strcmp(gw_json_str(e, "name"), name) == 0)
            return gw_json_str(e, "value");
    }
    return NULL;
}

static void add_error(json_t *errors, const char *field, const char *message)
{
    json_array_append_new(errors, json_pack("{s:s,s:s}", "field", field, "message", message));
}

/* Absent, or an object whose every value is a string (what Batch sends). */
static int tags_valid(const json_t *tags)
{
    if (tags == NULL)
        return 1;
    if (!json_is_object(tags))
        return 0;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)(uintptr_t)tags, k, v)
    {
        (void)k;
        if (!json_is_string(v))
            return 0;
    }
    return 1;
}

/* A string of 1 to max characters. */
static int text_ok(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && gw_utf8_chars(s, strlen(s)) <= max;
}

/* What the schema says of detail's optional members: absent, or of their type. */
static void check_detail_types(json_t *errors, const json_t *detail)
{
    static const char *const strings[] = {"jobName", "jobQueue", "statusReason", NULL};
    static const char *const times[] = {"createdAt", "startedAt", "stoppedAt", NULL};
    char field[48];
    for (size_t i = 0; strings[i] != NULL; i++) {
        const json_t *v = json_object_get(detail, strings[i]);
        gw_fmt(field, sizeof(field), "detail.%s", strings[i]);
        if (v != NULL && !json_is_string(v))
            add_error(errors, field, "must be a string");
    }
    for (size_t i = 0; times[i] != NULL; i++) {
        const json_t *v = json_object_get(detail, times[i]);
        long long ms = 0;
        gw_fmt(field, sizeof(field), "detail.%s", times[i]);
        if (v != NULL && (!gw_json_whole(v, &ms) || ms < 0 || ms > EPOCH_MS_MAX))
            add_error(errors, field, "must be milliseconds since the epoch (0 to 253402300799999)");
    }
    const json_t *attempts = json_object_get(detail, "attempts");
    int attempts_ok = attempts == NULL || json_is_array(attempts);
    size_t i;
    const json_t *a;
    json_array_foreach(attempts, i, a)
    {
        attempts_ok = attempts_ok && json_is_object(a);
    }
    if (!attempts_ok)
        add_error(errors, "detail.attempts", "must be an array of objects");
    const json_t *container = json_object_get(detail, "container");
    if (container != NULL && !json_is_object(container))
        add_error(errors, "detail.container", "must be an object");
}

/* A count the event gave, or -1 when it gave none the jobs table can hold. */
static long long resource(long long n, long long min)
{
    return n >= min && n <= RESOURCE_MAX ? n : -1;
}

static int batch_status_known(const char *status)
{
    static const char *const statuses[] = {"SUBMITTED", "PENDING",   "RUNNABLE", "STARTING",
                                           "RUNNING",   "SUCCEEDED", "FAILED",   NULL};
    for (size_t i = 0; status != NULL && statuses[i] != NULL; i++)
        if (strcmp(status, statuses[i]) == 0)
            return 1;
    return 0;
}

int rt_batch_event_parse(struct db_job_event *out, json_t *errors, const json_t *event,
                         const char *source)
{
    const char *id = gw_json_str(event, "id");
    const char *dtype = gw_json_str(event, "detail-type");
    const char *src = gw_json_str(event, "source");
    const json_t *detail = json_object_get(event, "detail");
    const char *status = gw_json_str(detail, "status");
    const char *batch_id = gw_json_str(detail, "jobId");
    size_t before = json_array_size(errors);
    memset(out, 0, sizeof(*out));
    if (!text_ok(id, ID_MAX_CHARS))
        add_error(errors, "id", "must be the event's id (1 to 256 characters)");
    if (dtype == NULL || strcmp(dtype, "Batch Job State Change") != 0)
        add_error(errors, "detail-type", "must be \"Batch Job State Change\"");
    if (src == NULL || strcmp(src, "aws.batch") != 0)
        add_error(errors, "source", "must be \"aws.batch\"");
    if (!json_is_object(detail) || batch_id == NULL || batch_id[0] == '\0')
        add_error(errors, "detail.jobId", "is required");
    else if (!text_ok(batch_id, ID_MAX_CHARS))
        add_error(errors, "detail.jobId", "must be at most 256 characters");
    if (!batch_status_known(status))
        add_error(errors, "detail.status", "must be an AWS Batch job status");
    if (!tags_valid(json_object_get(detail, "tags")))
        add_error(errors, "detail.tags", "must be an object of string values");
    check_detail_types(errors, detail);
    if (json_array_size(errors) > before)
        return GW_EINVAL;

    const json_t *attempts = json_object_get(detail, "attempts");
    const json_t *last = json_array_get(attempts, json_array_size(attempts) - 1);
    const json_t *container = json_object_get(detail, "container");
    const json_t *ec = json_object_get(json_object_get(last, "container"), "exitCode");
    if (!json_is_integer(ec))
        ec = json_object_get(container, "exitCode");
    const char *log_stream = gw_json_str(json_object_get(last, "container"), "logStreamName");
    if (log_stream == NULL)
        log_stream = gw_json_str(container, "logStreamName");
    const char *script_key = env_value(container, "SCRIPT_KEY");
    *out = (struct db_job_event){
        .event_id = id,
        .source = source,
        .batch_job_id = batch_id,
        .gateway_id = gateway_id_of(detail),
        .status = status,
        .reason = gw_json_str(detail, "statusReason"),
        .exit_code = json_is_integer(ec) ? (int)json_integer_value(ec) : -1,
        .attempts = (int)json_array_size(attempts),
        .log_stream = log_stream,
        .started_ms = jint_or(detail, "startedAt", 0),
        .stopped_ms = jint_or(detail, "stoppedAt", 0),
        .job_name = gw_json_str(detail, "jobName"),
        .queue = gw_json_str(detail, "jobQueue"),
        .script_key = text_ok(script_key, SCRIPT_KEY_MAX_CHARS) ? script_key : NULL,
        .vcpus = resource(requirement(container, "VCPU", jint_or(container, "vcpus", -1)), 1),
        .memory = resource(requirement(container, "MEMORY", jint_or(container, "memory", -1)), 1),
        /* A container without a GPU requirement has none; no container: unknown. */
        .gpus = resource(requirement(container, "GPU", container != NULL ? 0 : -1), 0),
    };
    return GW_OK;
}
