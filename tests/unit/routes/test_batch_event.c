/*
 * test_batch_event.c — unit tests for routes/batch_event.c: an EventBridge
 * "Batch Job State Change" event becomes a db_job_event, and a malformed one
 * names each bad field.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/err.h"
#include "routes/batch_event.h"

static const char sample[] =
    "{\"version\":\"0\",\"id\":\"c8f9c4b5-76e5-d76a-f980-7011e206042b\","
    "\"detail-type\":\"Batch Job State Change\",\"source\":\"aws.batch\","
    "\"detail\":{\"jobName\":\"train-0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d7e\","
    "\"jobId\":\"4c7599ae-0a82-49aa-ba5a-4727fcce14a8\",\"jobQueue\":\"arn:aws:batch:q/gpu\","
    "\"status\":\"FAILED\",\"statusReason\":\"Essential container exited\","
    "\"startedAt\":1764000000000,\"stoppedAt\":1764000060000,"
    "\"attempts\":[{\"container\":{\"exitCode\":1,\"logStreamName\":\"first\"}},"
    "{\"container\":{\"exitCode\":3,\"logStreamName\":\"second\"}}],"
    "\"tags\":{\"mlgw:job-id\":\"0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d7f\"},"
    "\"container\":{\"exitCode\":9,\"resourceRequirements\":[{\"type\":\"VCPU\",\"value\":\"4\"},"
    "{\"type\":\"MEMORY\",\"value\":\"16384\"},{\"type\":\"GPU\",\"value\":\"1\"}],"
    "\"environment\":[{\"name\":\"SCRIPT_KEY\",\"value\":\"jobs/train.py\"}]}}}";

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    cr_assert_not_null(v, "%s", je.text);
    return v;
}

Test(rt_batch_event, reads_the_last_attempt_resources_tags_and_script_of_a_sample_event)
{
    json_t *event = load(sample), *errors = json_array();
    struct db_job_event ev;
    cr_assert_eq(rt_batch_event_parse(&ev, errors, event, "eventbridge"), GW_OK);
    cr_expect_eq(json_array_size(errors), 0);
    cr_expect_str_eq(ev.event_id, "c8f9c4b5-76e5-d76a-f980-7011e206042b");
    cr_expect_str_eq(ev.source, "eventbridge");
    cr_expect_str_eq(ev.batch_job_id, "4c7599ae-0a82-49aa-ba5a-4727fcce14a8");
    cr_expect_str_eq(ev.gateway_id, "0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d7f", "the tag wins");
    cr_expect_str_eq(ev.status, "FAILED");
    cr_expect_str_eq(ev.reason, "Essential container exited");
    cr_expect_eq(ev.exit_code, 3, "the last attempt's exit code");
    cr_expect_eq(ev.attempts, 2);
    cr_expect_str_eq(ev.log_stream, "second");
    cr_expect_eq(ev.started_ms, 1764000000000LL);
    cr_expect_eq(ev.stopped_ms, 1764000060000LL);
    cr_expect_eq(ev.vcpus, 4);
    cr_expect_eq(ev.memory, 16384);
    cr_expect_eq(ev.gpus, 1);
    cr_expect_str_eq(ev.script_key, "jobs/train.py");
    cr_expect_null(ev.new_id, "left to the caller");
    cr_expect_null(ev.output_uri, "left to the caller");
    cr_expect_null(ev.notify_statuses, "left to the caller");
    json_decref(errors);
    json_decref(event);
}

Test(rt_batch_event, takes_the_gateway_id_from_the_job_name_without_a_tag)
{
    json_t *event = load(sample), *errors = json_array();
    json_object_del(json_object_get(event, "detail"), "tags");
    struct db_job_event ev;
    cr_assert_eq(rt_batch_event_parse(&ev, errors, event, "sns"), GW_OK);
    cr_expect_str_eq(ev.gateway_id, "0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d7e");
    json_decref(errors);
    json_decref(event);
}

Test(rt_batch_event, names_every_bad_field_of_a_malformed_event)
{
    json_t *event = load("{\"id\":\"\",\"detail-type\":\"EC2 Instance State-change\","
                         "\"source\":\"aws.ec2\",\"detail\":{\"status\":\"DONE\"}}");
    json_t *errors = json_array();
    struct db_job_event ev;
    cr_assert_eq(rt_batch_event_parse(&ev, errors, event, "eventbridge"), GW_EINVAL);
    static const char *const fields[] = {"id", "detail-type", "source", "detail.jobId",
                                         "detail.status"};
    cr_assert_eq(json_array_size(errors), 5);
    for (size_t i = 0; i < 5; i++)
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(errors, i), "field")),
                         fields[i]);
    json_decref(errors);
    json_decref(event);
}

Test(rt_batch_event, refuses_a_status_batch_never_sends_and_an_id_over_256_bytes)
{
    json_t *event = load(sample), *errors = json_array();
    struct db_job_event ev;
    json_object_set_new(json_object_get(event, "detail"), "status", json_string("succeeded"));
    char id[300];
    memset(id, 'a', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    json_object_set_new(event, "id", json_string(id));
    cr_assert_eq(rt_batch_event_parse(&ev, errors, event, "eventbridge"), GW_EINVAL);
    cr_expect_eq(json_array_size(errors), 2);
    json_decref(errors);
    json_decref(event);
}

Test(rt_batch_event, refuses_tags_that_are_not_an_object_of_strings)
{
    static const char *const bad[] = {"[]", "\"x\"", "{\"a\": 1}", "{\"a\": \"b\", \"c\": null}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *event = load(sample), *errors = json_array();
        json_error_t je;
        json_object_set_new(json_object_get(event, "detail"), "tags",
                            json_loads(bad[i], JSON_DECODE_ANY, &je));
        struct db_job_event ev;
        cr_expect_eq(rt_batch_event_parse(&ev, errors, event, "eventbridge"), GW_EINVAL, "%s",
                     bad[i]);
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(errors, 0), "field")),
                         "detail.tags", "%s", bad[i]);
        json_decref(errors);
        json_decref(event);
    }
}

Test(rt_batch_event, refuses_members_of_another_type_than_the_schema_gives_naming_each)
{
    static const char *const bad[][2] = {
        {"stoppedAt", "{}"},   {"startedAt", "-1"},    {"createdAt", "1.5"}, {"createdAt", "1e300"},
        {"statusReason", "5"}, {"jobName", "[]"},      {"jobQueue", "null"}, {"attempts", "[1]"},
        {"attempts", "{}"},    {"container", "\"x\""}, {"jobId", "\"\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *event = load(sample), *errors = json_array();
        json_error_t je;
        json_object_set_new(json_object_get(event, "detail"), bad[i][0],
                            json_loads(bad[i][1], JSON_DECODE_ANY, &je));
        struct db_job_event ev;
        cr_expect_eq(rt_batch_event_parse(&ev, errors, event, "eventbridge"), GW_EINVAL, "%s %s",
                     bad[i][0], bad[i][1]);
        char want[48];
        snprintf(want, sizeof(want), "detail.%s", bad[i][0]);
        const char *field = json_string_value(json_object_get(json_array_get(errors, 0), "field"));
        cr_expect(field != NULL && strcmp(field, want) == 0, "%s %s: %s", bad[i][0], bad[i][1],
                  field ? field : "(none)");
        json_decref(errors);
        json_decref(event);
    }
}

Test(rt_batch_event, what_an_event_does_not_say_or_a_table_cannot_hold_is_unknown)
{
    json_t *event = load("{\"id\":\"e\",\"detail-type\":\"Batch Job State Change\","
                         "\"source\":\"aws.batch\",\"detail\":{\"jobId\":\"b\","
                         "\"status\":\"RUNNING\",\"createdAt\":1764000000000.0}}");
    json_t *errors = json_array();
    struct db_job_event ev;
    cr_assert_eq(rt_batch_event_parse(&ev, errors, event, "eventbridge"), GW_OK);
    cr_expect_eq(ev.vcpus, -1);
    cr_expect_eq(ev.memory, -1);
    cr_expect_eq(ev.gpus, -1, "no container: GPUs unknown, not 0");
    cr_expect_null(ev.script_key);
    json_decref(event);

    /* A container without a GPU requirement has none; a vCPU count of 0, a
     * memory past the table's integer and an empty script key are not kept. */
    event = load("{\"id\":\"e\",\"detail-type\":\"Batch Job State Change\","
                 "\"source\":\"aws.batch\",\"detail\":{\"jobId\":\"b\",\"status\":\"RUNNING\","
                 "\"container\":{\"vcpus\":0,\"memory\":4294967296,\"environment\":"
                 "[{\"name\":\"SCRIPT_KEY\",\"value\":\"\"}]}}}");
    cr_assert_eq(rt_batch_event_parse(&ev, errors, event, "eventbridge"), GW_OK);
    cr_expect_eq(ev.gpus, 0);
    cr_expect_eq(ev.vcpus, -1);
    cr_expect_eq(ev.memory, -1);
    cr_expect_null(ev.script_key);
    cr_expect_eq(json_array_size(errors), 0);
    json_decref(errors);
    json_decref(event);
}
