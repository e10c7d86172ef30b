/*
 * test_pipeline_request.c — unit tests for routes/pipeline_request.c: a
 * definition's graph rules (names, depends_on, cycles, fan-out), its steps
 * checked by the job validator under their path, and a run's plan (defaults,
 * the run's env, args, metadata and dispatch applied). No I/O.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"
#include "routes/pipeline_request.h"

static struct gw_config cfg;
static json_t *errors;

static const char *test_get(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "DATABASE_URL") == 0 ? "dbname=x" : NULL;
}

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    struct gw_buf problems;
    gw_buf_init(&problems, 4096);
    cr_assert_eq(gw_config_load(&cfg, test_get, NULL, &problems), 0);
    gw_buf_dispose(&problems);
    errors = json_array();
}

static void teardown(void)
{
    json_decref(errors);
    gw_config_dispose(&cfg);
}

TestSuite(pipeline_request, .init = setup, .fini = teardown);

static int def_parse(const char *text, json_t **stored)
{
    json_t *body = json_loads(text, 0, NULL);
    cr_assert_not_null(body, "%s", text);
    int n = rt_pipeline_def_parse(stored, body, NULL, &cfg, errors);
    json_decref(body);
    return n;
}

static const char *message_of(const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0)
            return json_string_value(json_object_get(e, "message"));
    }
    cr_assert_fail("no error for %s in %s", field, json_dumps(errors, 0));
    return NULL;
}

Test(pipeline_request, a_valid_definition_is_kept_without_its_name)
{
    json_t *stored = NULL;
    cr_assert_eq(def_parse("{\"name\": \"p\", \"steps\": [{\"name\": \"a\", \"script_key\": "
                           "\"jobs/a.py\"}, {\"name\": \"b\", \"script_key\": \"jobs/b.py\", "
                           "\"depends_on\": [\"a\"]}]}",
                           &stored),
                 0, "%s", json_dumps(errors, 0));
    cr_assert_null(json_object_get(stored, "name"));
    cr_assert_eq(json_array_size(json_object_get(stored, "steps")), 2);
    json_decref(stored);
}

Test(pipeline_request, a_three_step_cycle_is_named_in_order)
{
    json_t *stored = NULL;
    cr_assert_eq(def_parse("{\"name\": \"p\", \"steps\": ["
                           "{\"name\": \"a\", \"script_key\": \"j.py\", \"depends_on\": [\"c\"]},"
                           "{\"name\": \"b\", \"script_key\": \"j.py\", \"depends_on\": [\"a\"]},"
                           "{\"name\": \"c\", \"script_key\": \"j.py\", \"depends_on\": [\"b\"]}]}",
                           &stored),
                 1, "%s", json_dumps(errors, 0));
    cr_assert_null(stored);
    /* found where the search closes it: b depends on a, which depends on c, which on b */
    cr_assert_str_eq(message_of("steps[1].depends_on[0]"), "makes a cycle: b → a → c → b");
}

Test(pipeline_request, a_step_depending_on_itself_is_a_cycle)
{
    json_t *stored = NULL;
    cr_assert_eq(def_parse("{\"name\": \"p\", \"steps\": [{\"name\": \"a\", \"script_key\": "
                           "\"j.py\", \"depends_on\": [\"a\"]}]}",
                           &stored),
                 1);
    cr_assert_str_eq(message_of("steps[0].depends_on[0]"), "makes a cycle: a → a");
}

Test(pipeline_request, a_step_is_checked_by_the_job_validator_with_the_defaults_applied)
{
    json_t *stored = NULL;
    /* the defaults make the step a cpu job; its own gpus makes it invalid */
    cr_assert_eq(
        def_parse("{\"name\": \"p\", \"defaults\": {\"compute_type\": \"cpu\"},"
                  " \"steps\": [{\"name\": \"a\", \"script_key\": \"j.py\", \"gpus\": 1}]}",
                  &stored),
        1, "%s", json_dumps(errors, 0));
    cr_assert_str_eq(message_of("steps[0].gpus"), "must be 0 for a cpu job");
    cr_assert_eq(
        def_parse("{\"name\": \"p\", \"steps\": [], \"notify\": {\"emails\": [\"x\"]}}", &stored),
        2);
    message_of("steps");
    message_of("notify.emails[0]");
}

Test(pipeline_request, a_run_plan_applies_defaults_then_the_step_then_the_run)
{
    json_t *def = json_loads(
        "{\"defaults\": {\"compute_type\": \"cpu\", \"env\": {\"A\": \"d\", \"B\": \"d\"},"
        " \"metadata\": {\"project\": \"p\"}, \"args\": [\"--x\"]},"
        " \"steps\": [{\"name\": \"one\", \"script_key\": \"j.py\", \"env\": {\"B\": \"s\"}},"
        " {\"name\": \"two\", \"script_key\": \"j.py\", \"depends_on\": [\"one\"],"
        "  \"array_size\": 2}]}",
        0, NULL);
    json_t *body = json_loads("{\"env\": {\"C\": \"r\"}, \"args\": {\"two\": [\"--y\"]},"
                              " \"metadata\": {\"user\": \"u\"}}",
                              0, NULL);
    struct rt_run_request run;
    cr_assert_eq(rt_run_request_parse(&run, body, &cfg, errors), 0, "%s", json_dumps(errors, 0));
    json_t *steps = NULL;
    cr_assert_eq(rt_run_plan(&steps, def, &run, &cfg, errors), 0, "%s", json_dumps(errors, 0));
    json_t *one = json_object_get(json_array_get(steps, 0), "spec");
    json_t *two = json_object_get(json_array_get(steps, 1), "spec");
    char *env = json_dumps(json_object_get(one, "env"), JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(env, "{\"A\":\"d\",\"B\":\"s\",\"C\":\"r\"}");
    free(env);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(one, "args"), 0)), "--x");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(two, "args"), 0)), "--y");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(two, "metadata"), "user")),
                     "u");
    cr_assert_eq(json_array_size(json_object_get(json_array_get(steps, 1), "fanout")), 2);
    json_decref(steps);
    json_decref(body);

    body =
        json_loads("{\"args\": {\"three\": []}, \"env\": {\"PATH\": \"/x\"}, \"gpu\": 1}", 0, NULL);
    cr_assert_eq(rt_run_request_parse(&run, body, &cfg, errors), 2, "%s", json_dumps(errors, 0));
    message_of("gpu");
    message_of("env.PATH");
    cr_assert_gt(rt_run_plan(&steps, def, &run, &cfg, errors), 0);
    cr_assert_str_eq(message_of("args.three"), "names no step");
    cr_assert_null(steps);
    json_decref(body);
    json_decref(def);
}
