/*
 * test_job_request.c — unit tests for routes/job_request.c: the rules of a
 * POST /jobs body (API.md, "POST /jobs"), in the native shape and in the
 * seed's SNS trigger message. Configuration comes from a getter over a small
 * table (never the real environment); no database, no network.
 *
 * Each rule has one failing case that must produce exactly one problem,
 * reported under the field name the client wrote.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"
#include "routes/job_request.h"

/* ---- fixture ------------------------------------------------------------ */

struct kv {
    const char *name;
    const char *value;
};

/* DATABASE_URL plus the overrides in ctx (a {NULL, NULL}-terminated table). */
static const char *test_get(const char *name, void *ctx)
{
    for (const struct kv *o = ctx; o != NULL && o->name != NULL; o++)
        if (strcmp(o->name, name) == 0)
            return o->value;
    if (strcmp(name, "DATABASE_URL") == 0)
        return "dbname=x";
    return NULL;
}

static struct gw_config cfg;
static struct rt_job_request req;
static json_t *body, *errors;
static char *dumped;

static void load_config(struct kv *overrides)
{
    gw_config_dispose(&cfg);
    memset(&cfg, 0, sizeof(cfg));
    struct gw_buf problems;
    gw_buf_init(&problems, 4096);
    int n = gw_config_load(&cfg, test_get, overrides, &problems);
    cr_assert_eq(n, 0, "config rejected: %s", problems.data ? problems.data : "");
    gw_buf_dispose(&problems);
}

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(&req, 0, sizeof(req));
    errors = json_array();
    load_config(NULL);
}

static void teardown(void)
{
    rt_job_request_dispose(&req);
    json_decref(body);
    json_decref(errors);
    free(dumped);
    gw_config_dispose(&cfg);
}

TestSuite(job_request, .init = setup, .fini = teardown);

/* Parses b (stolen) into req; errors holds this parse's problems only. */
static int parse(json_t *b)
{
    json_decref(body);
    body = b;
    rt_job_request_dispose(&req);
    json_array_clear(errors);
    return rt_job_request_parse(&req, body, &cfg, errors);
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &e);
    cr_assert_not_null(v, "test JSON does not parse (%s): %s", e.text, text);
    return v;
}

static int parse_text(const char *text)
{
    return parse(load(text));
}

/* The errors array as text, for failure messages. */
static const char *errs(void)
{
    free(dumped);
    dumped = json_dumps(errors, JSON_COMPACT);
    return dumped != NULL ? dumped : "?";
}

static const char *field_at(size_t i)
{
    return json_string_value(json_object_get(json_array_get(errors, i), "field"));
}

static size_t count_field(const char *field)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(errors); i++)
        if (field_at(i) != NULL && strcmp(field_at(i), field) == 0)
            n++;
    return n;
}

/* Exactly one problem, under field, with a non-empty message. */
static void assert_only(int rc, const char *field, const char *what)
{
    cr_assert_eq(rc, 1, "%s: want 1 error on %s, got %d: %s", what, field, rc, errs());
    cr_assert_eq(json_array_size(errors), 1, "%s: %s", what, errs());
    cr_assert_not_null(field_at(0), "%s: %s", what, errs());
    cr_assert_str_eq(field_at(0), field, "%s: %s", what, errs());
    const char *msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    cr_assert(msg != NULL && msg[0] != '\0', "%s: no message: %s", what, errs());
}

static void assert_ok(int rc, const char *what)
{
    cr_assert_eq(rc, 0, "%s: %s", what, errs());
    cr_assert_eq(json_array_size(errors), 0, "%s: %s", what, errs());
}

/* Asserts that the canonical JSON text equals the JSON text want. */
static void assert_json_eq(const char *got, const char *want, const char *what)
{
    cr_assert_not_null(got, "%s is NULL", what);
    json_t *g = load(got), *w = load(want);
    cr_assert(json_equal(g, w), "%s: got %s, want %s", what, got, want);
    json_decref(g);
    json_decref(w);
}

/* A string of n copies of ch (new). */
static json_t *repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    json_t *v = json_stringn(s, n);
    free(s);
    return v;
}

/* ---- the seed's trigger messages ------------------------------------------ */

static const char seed_gpu_default[] = "{\n"
                                       "  \"trigger_type\": \"batch_job\",\n"
                                       "  \"data\": {\n"
                                       "    \"script_key\": \"jobs/gpu_processing.py\"\n"
                                       "  },\n"
                                       "  \"metadata\": {\n"
                                       "    \"user\": \"ml-engineer\",\n"
                                       "    \"project\": \"model-training\"\n"
                                       "  }\n"
                                       "}";

static const char seed_gpu_custom[] = "{\n"
                                      "  \"trigger_type\": \"batch_job\",\n"
                                      "  \"data\": {\n"
                                      "    \"script_key\": \"jobs/gpu_processing.py\",\n"
                                      "    \"vcpus\": 16,\n"
                                      "    \"memory\": 65536,\n"
                                      "    \"gpus\": 4\n"
                                      "  },\n"
                                      "  \"metadata\": {\n"
                                      "    \"user\": \"ml-engineer\",\n"
                                      "    \"project\": \"model-training\"\n"
                                      "  }\n"
                                      "}";

static const char seed_cpu_default[] = "{\n"
                                       "  \"trigger_type\": \"batch_job\",\n"
                                       "  \"data\": {\n"
                                       "    \"script_key\": \"jobs/cpu_processing.py\",\n"
                                       "    \"compute_type\": \"cpu\"\n"
                                       "  },\n"
                                       "  \"metadata\": {\n"
                                       "    \"user\": \"ml-engineer\",\n"
                                       "    \"project\": \"data-pipeline\"\n"
                                       "  }\n"
                                       "}";

static const char seed_cpu_custom[] = "{\n"
                                      "  \"trigger_type\": \"batch_job\",\n"
                                      "  \"data\": {\n"
                                      "    \"script_key\": \"jobs/cpu_processing.py\",\n"
                                      "    \"compute_type\": \"cpu\",\n"
                                      "    \"vcpus\": 8,\n"
                                      "    \"memory\": 16384\n"
                                      "  },\n"
                                      "  \"metadata\": {\n"
                                      "    \"user\": \"ml-engineer\",\n"
                                      "    \"project\": \"data-pipeline\"\n"
                                      "  }\n"
                                      "}";

static const char seed_cleanup[] = "{\n"
                                   "  \"trigger_type\": \"batch_job\",\n"
                                   "  \"data\": {\n"
                                   "    \"script_key\": \"jobs/cleanup_processor.py\",\n"
                                   "    \"compute_type\": \"cpu\",\n"
                                   "    \"operation\": \"cleanup-cache\"\n"
                                   "  }\n"
                                   "}";

static void assert_resources(const char *compute, long long vcpus, long long memory, long long gpus)
{
    cr_assert_str_eq(req.compute_type, compute);
    cr_assert_eq(req.vcpus, vcpus, "vcpus %lld", req.vcpus);
    cr_assert_eq(req.memory, memory, "memory %lld", req.memory);
    cr_assert_eq(req.gpus, gpus, "gpus %lld", req.gpus);
}

/* Fields the seed's messages never set take their defaults. */
static void assert_seed_defaults(void)
{
    cr_assert_str_eq(req.args_json, "[]");
    cr_assert_str_eq(req.env_json, "{}");
    cr_assert_eq(req.timeout_seconds, -1);
    cr_assert_eq(req.max_attempts, 1);
    cr_assert_str_eq(req.dispatch, "local");
    assert_json_eq(req.notify_json, "{\"emails\":[],\"webhooks\":[]}", "notify_json");
}

Test(job_request, seed_gpu_job_with_default_resources_gets_4_vcpus_16384_mib_and_1_gpu)
{
    assert_ok(parse_text(seed_gpu_default), "seed GPU default");
    cr_assert_str_eq(req.script_key, "jobs/gpu_processing.py");
    assert_resources("gpu", 4, 16384, 1);
    cr_assert_null(req.operation);
    assert_json_eq(req.metadata_json, "{\"user\":\"ml-engineer\",\"project\":\"model-training\"}",
                   "metadata_json");
    assert_seed_defaults();
}

Test(job_request, seed_gpu_job_with_custom_resources_keeps_16_vcpus_65536_mib_and_4_gpus)
{
    assert_ok(parse_text(seed_gpu_custom), "seed GPU custom");
    cr_assert_str_eq(req.script_key, "jobs/gpu_processing.py");
    assert_resources("gpu", 16, 65536, 4);
    assert_json_eq(req.metadata_json, "{\"user\":\"ml-engineer\",\"project\":\"model-training\"}",
                   "metadata_json");
    assert_seed_defaults();
}

Test(job_request, seed_cpu_job_with_default_resources_gets_2_vcpus_4096_mib_and_no_gpu)
{
    assert_ok(parse_text(seed_cpu_default), "seed CPU default");
    cr_assert_str_eq(req.script_key, "jobs/cpu_processing.py");
    assert_resources("cpu", 2, 4096, 0);
    assert_json_eq(req.metadata_json, "{\"user\":\"ml-engineer\",\"project\":\"data-pipeline\"}",
                   "metadata_json");
    assert_seed_defaults();
}

Test(job_request, seed_cpu_job_with_custom_resources_keeps_8_vcpus_and_16384_mib)
{
    assert_ok(parse_text(seed_cpu_custom), "seed CPU custom");
    cr_assert_str_eq(req.script_key, "jobs/cpu_processing.py");
    assert_resources("cpu", 8, 16384, 0);
    assert_json_eq(req.metadata_json, "{\"user\":\"ml-engineer\",\"project\":\"data-pipeline\"}",
                   "metadata_json");
    assert_seed_defaults();
}

Test(job_request, seed_cleanup_message_maps_data_operation_and_needs_no_metadata)
{
    assert_ok(parse_text(seed_cleanup), "seed cleanup");
    cr_assert_str_eq(req.script_key, "jobs/cleanup_processor.py");
    assert_resources("cpu", 2, 4096, 0);
    cr_assert_not_null(req.operation);
    cr_assert_str_eq(req.operation, "cleanup-cache");
    cr_assert_str_eq(req.metadata_json, "{}");
    assert_seed_defaults();
}

/* ---- the native shape ------------------------------------------------------ */

/* API.md's example body, verbatim. */
static const char native_example[] =
    "{\n"
    "  \"script_key\": \"jobs/train.py\",\n"
    "  \"compute_type\": \"gpu\",\n"
    "  \"vcpus\": 4, \"memory\": 16384, \"gpus\": 1,\n"
    "  \"args\": [\"--epochs\", \"3\"],\n"
    "  \"env\": {\"LEARNING_RATE\": \"0.001\"},\n"
    "  \"timeout_seconds\": 3600,\n"
    "  \"max_attempts\": 3,\n"
    "  \"operation\": \"cleanup-cache\",\n"
    "  \"metadata\": {\"user\": \"ml-engineer\", \"project\": \"model-training\", "
    "\"experiment\": \"exp-7\"},\n"
    "  \"notify\": {\"emails\": [\"a@example.com\"], \"webhooks\": "
    "[\"https://hooks.example.com/ml\"]},\n"
    "  \"dispatch\": \"batch\"\n"
    "}";

Test(job_request, api_example_body_is_accepted_and_every_field_round_trips)
{
    assert_ok(parse_text(native_example), "API.md example");
    cr_assert_str_eq(req.script_key, "jobs/train.py");
    assert_resources("gpu", 4, 16384, 1);
    cr_assert_eq(req.timeout_seconds, 3600);
    cr_assert_eq(req.max_attempts, 3);
    cr_assert_str_eq(req.operation, "cleanup-cache");
    cr_assert_str_eq(req.dispatch, "batch");
    /* Canonical compact texts: no whitespace between tokens. */
    cr_assert_str_eq(req.args_json, "[\"--epochs\",\"3\"]");
    cr_assert_str_eq(req.env_json, "{\"LEARNING_RATE\":\"0.001\"}");
    assert_json_eq(req.metadata_json,
                   "{\"user\":\"ml-engineer\",\"project\":\"model-training\","
                   "\"experiment\":\"exp-7\"}",
                   "metadata_json");
    assert_json_eq(
        req.notify_json,
        "{\"emails\":[\"a@example.com\"],\"webhooks\":[\"https://hooks.example.com/ml\"]}",
        "notify_json");
    cr_assert_null(strchr(req.metadata_json, ' '), "not compact: %s", req.metadata_json);
    cr_assert_null(strchr(req.notify_json, ' '), "not compact: %s", req.notify_json);
    /* Each text equals the body's own value. */
    const char *const names[] = {"args", "env", "metadata", "notify"};
    const char *const texts[] = {req.args_json, req.env_json, req.metadata_json, req.notify_json};
    for (size_t i = 0; i < 4; i++) {
        json_t *got = load(texts[i]);
        cr_assert(json_equal(got, json_object_get(body, names[i])), "%s: %s", names[i], texts[i]);
        json_decref(got);
    }
}

Test(job_request, minimal_body_takes_every_default)
{
    assert_ok(parse_text("{\"script_key\":\"jobs/train.py\"}"), "minimal");
    cr_assert_str_eq(req.script_key, "jobs/train.py");
    assert_resources("gpu", 4, 16384, 1);
    cr_assert_null(req.operation);
    cr_assert_str_eq(req.metadata_json, "{}");
    assert_seed_defaults();
}

Test(job_request, null_for_every_optional_field_means_use_the_default)
{
    assert_ok(parse_text("{\"script_key\":\"jobs/train.py\",\"compute_type\":null,\"vcpus\":null,"
                         "\"memory\":null,\"gpus\":null,\"args\":null,\"env\":null,"
                         "\"timeout_seconds\":null,\"max_attempts\":null,\"operation\":null,"
                         "\"metadata\":null,\"notify\":null,\"dispatch\":null}"),
              "all null");
    assert_resources("gpu", 4, 16384, 1);
    cr_assert_null(req.operation);
    cr_assert_str_eq(req.metadata_json, "{}");
    assert_seed_defaults();
}

Test(job_request, null_values_inside_metadata_and_notify_are_defaults_too)
{
    assert_ok(parse_text("{\"script_key\":\"k\",\"compute_type\":\"cpu\",\"vcpus\":null,"
                         "\"metadata\":{\"user\":\"u\",\"experiment\":null},"
                         "\"notify\":{\"emails\":null,\"webhooks\":null}}"),
              "nested null");
    assert_resources("cpu", 2, 4096, 0);
    assert_json_eq(req.metadata_json, "{\"user\":\"u\"}", "metadata_json");
    assert_json_eq(req.notify_json, "{\"emails\":[],\"webhooks\":[]}", "notify_json");
}

/* The integration tests' setting: http:// webhooks to a loopback host. */
static void allow_http_webhooks(void)
{
    struct kv vars[] = {{"MLGW_WEBHOOK_ALLOW_HTTP", "on"}, {NULL, NULL}};
    load_config(vars);
}

Test(job_request, values_at_every_limit_are_accepted)
{
    allow_http_webhooks();
    json_t *b = load("{\"script_key\":\"k\",\"vcpus\":256,\"memory\":2097152,\"gpus\":8,"
                     "\"timeout_seconds\":1209600,\"max_attempts\":10}");
    json_object_set_new(b, "script_key", repeat('a', 1024));
    json_t *args = json_array(), *env = json_object(), *meta = json_object();
    json_t *emails = json_array();
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof(name), "V%d", i);
        json_array_append_new(args, i == 0 ? repeat('x', 4096) : json_string("a"));
        json_object_set_new(env, name, i == 0 ? repeat('x', 4096) : json_string(""));
    }
    for (int i = 0; i < 32; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        json_object_set_new(meta, name, i == 0 ? repeat('m', 256) : json_string("v"));
    }
    for (int i = 0; i < 20; i++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "user%d@example.com", i);
        json_array_append_new(emails, json_string(addr));
    }
    json_object_set_new(b, "args", args);
    json_object_set_new(b, "env", env);
    json_object_set_new(b, "metadata", meta);
    json_object_set_new(b, "operation", repeat('o', 64));
    json_object_set_new(b, "notify",
                        json_pack("{s:o,s:[s,s,s,s]}", "emails", emails, "webhooks",
                                  "https://hooks.example.com:8443/ml?x=1",
                                  "http://127.0.0.1:9000/hook", "http://localhost:8080/",
                                  "http://[::1]/h"));
    assert_ok(parse(b), "limits");
    assert_resources("gpu", 256, 2097152, 8);
    cr_assert_eq(req.timeout_seconds, 1209600);
    cr_assert_eq(req.max_attempts, 10);
    cr_assert_eq(strlen(req.script_key), 1024);
    cr_assert_eq(strlen(req.operation), 64);
    const char *const names[] = {"args", "env", "metadata", "notify"};
    const char *const texts[] = {req.args_json, req.env_json, req.metadata_json, req.notify_json};
    for (size_t i = 0; i < 4; i++) {
        json_t *got = load(texts[i]);
        cr_assert(json_equal(got, json_object_get(body, names[i])), "%s differs", names[i]);
        json_decref(got);
    }
}

Test(job_request, lower_limits_are_accepted)
{
    assert_ok(parse_text("{\"script_key\":\"a\",\"compute_type\":\"cpu\",\"vcpus\":1,"
                         "\"memory\":1,\"gpus\":0,\"timeout_seconds\":60,\"max_attempts\":1,"
                         "\"operation\":\"o\",\"args\":[],\"env\":{},\"metadata\":{},"
                         "\"notify\":{}}"),
              "lower limits");
    assert_resources("cpu", 1, 1, 0);
    cr_assert_eq(req.timeout_seconds, 60);
}

Test(job_request, script_keys_with_dots_inside_a_segment_are_accepted)
{
    const char *const keys[] = {"jobs/a..b.py", "jobs/.config.py", "...", "a/.../b",
                                "Jobs/Sub-Dir/train_v2.py"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *b = json_pack("{s:s}", "script_key", keys[i]);
        assert_ok(parse(b), keys[i]);
        cr_assert_str_eq(req.script_key, keys[i]);
    }
}

Test(job_request, every_dispatch_is_accepted)
{
    const char *const d[] = {"batch", "sns", "local"};
    for (size_t i = 0; i < 3; i++) {
        assert_ok(parse(json_pack("{s:s,s:s}", "script_key", "k", "dispatch", d[i])), d[i]);
        cr_assert_str_eq(req.dispatch, d[i]);
    }
}

/* ---- one failing case per rule --------------------------------------------- */

struct bad_case {
    const char *what;
    const char *patch;     /* a JSON object merged into {"script_key":"jobs/train.py"} */
    json_t *(*make)(void); /* or a builder of the patch (values too long to write) */
    const char *field;     /* the one field the error must name */
};

static json_t *key_1025(void)
{
    return json_pack("{s:o}", "script_key", repeat('a', 1025));
}

static json_t *args_101(void)
{
    json_t *a = json_array();
    for (int i = 0; i < 101; i++)
        json_array_append_new(a, json_string("x"));
    return json_pack("{s:o}", "args", a);
}

static json_t *arg_4097(void)
{
    return json_pack("{s:[s,o]}", "args", "ok", repeat('x', 4097));
}

static json_t *env_101(void)
{
    json_t *e = json_object();
    for (int i = 0; i < 101; i++) {
        char name[16];
        snprintf(name, sizeof(name), "V%d", i);
        json_object_set_new(e, name, json_string("x"));
    }
    return json_pack("{s:o}", "env", e);
}

static json_t *env_4097(void)
{
    return json_pack("{s:{s:o}}", "env", "A", repeat('x', 4097));
}

static json_t *operation_65(void)
{
    return json_pack("{s:o}", "operation", repeat('o', 65));
}

static json_t *meta_257(void)
{
    return json_pack("{s:{s:o}}", "metadata", "user", repeat('m', 257));
}

static json_t *meta_33(void)
{
    json_t *m = json_object();
    for (int i = 0; i < 33; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        json_object_set_new(m, name, json_string("v"));
    }
    return json_pack("{s:o}", "metadata", m);
}

static json_t *emails_21(void)
{
    json_t *a = json_array();
    for (int i = 0; i < 21; i++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "user%d@example.com", i);
        json_array_append_new(a, json_string(addr));
    }
    return json_pack("{s:{s:o}}", "notify", "emails", a);
}

static json_t *webhooks_11(void)
{
    json_t *a = json_array();
    for (int i = 0; i < 11; i++)
        json_array_append_new(a, json_string("https://hooks.example.com/ml"));
    return json_pack("{s:{s:o}}", "notify", "webhooks", a);
}

static json_t *metadata_key_65(void)
{
    json_t *m = json_object();
    char key[66];
    memset(key, 'k', 65);
    key[65] = '\0';
    json_object_set_new(m, key, json_string("v"));
    return json_pack("{s:o}", "metadata", m);
}

/* 13 characters; five make a 65-character metadata key */
#define K13 "kkkkkkkkkkkkk"
#define P(what, patch, field)                                                                      \
    {                                                                                              \
        what, patch, NULL, field                                                                   \
    }
#define M(what, make, field)                                                                       \
    {                                                                                              \
        what, NULL, make, field                                                                    \
    }

ParameterizedTestParameters(job_request, each_rule_reports_exactly_one_error_under_its_field)
{
    static struct bad_case cases[] = {
        /* script_key */
        P("script_key null", "{\"script_key\":null}", "script_key"),
        P("script_key number", "{\"script_key\":42}", "script_key"),
        P("script_key array", "{\"script_key\":[\"a\"]}", "script_key"),
        P("script_key empty", "{\"script_key\":\"\"}", "script_key"),
        M("script_key 1025 chars", key_1025, "script_key"),
        P("script_key space", "{\"script_key\":\"jobs/train 1.py\"}", "script_key"),
        P("script_key @", "{\"script_key\":\"jobs/tr@in.py\"}", "script_key"),
        P("script_key backslash", "{\"script_key\":\"jobs\\\\train.py\"}", "script_key"),
        P("script_key non-ASCII", "{\"script_key\":\"jobs/tr\\u00e4in.py\"}", "script_key"),
        P("script_key NUL", "{\"script_key\":\"jobs/a\\u0000b.py\"}", "script_key"),
        P("script_key leading /", "{\"script_key\":\"/jobs/train.py\"}", "script_key"),
        P("script_key trailing /", "{\"script_key\":\"jobs/\"}", "script_key"),
        P("script_key //", "{\"script_key\":\"jobs//train.py\"}", "script_key"),
        P("script_key .. inside", "{\"script_key\":\"jobs/../secret.py\"}", "script_key"),
        P("script_key .. first", "{\"script_key\":\"../train.py\"}", "script_key"),
        P("script_key .. last", "{\"script_key\":\"jobs/..\"}", "script_key"),
        P("script_key ..", "{\"script_key\":\"..\"}", "script_key"),
        P("script_key . inside", "{\"script_key\":\"jobs/./train.py\"}", "script_key"),
        P("script_key . first", "{\"script_key\":\"./train.py\"}", "script_key"),
        P("script_key .", "{\"script_key\":\".\"}", "script_key"),
        /* compute_type */
        P("compute_type tpu", "{\"compute_type\":\"tpu\"}", "compute_type"),
        P("compute_type GPU", "{\"compute_type\":\"GPU\"}", "compute_type"),
        P("compute_type number", "{\"compute_type\":1}", "compute_type"),
        /* vcpus, memory, gpus */
        P("vcpus 0", "{\"vcpus\":0}", "vcpus"),
        P("vcpus 257", "{\"vcpus\":257}", "vcpus"),
        P("vcpus 4.5", "{\"vcpus\":4.5}", "vcpus"),
        P("vcpus \"4\"", "{\"vcpus\":\"4\"}", "vcpus"),
        P("vcpus true", "{\"vcpus\":true}", "vcpus"),
        P("memory 0", "{\"memory\":0}", "memory"),
        P("memory -1", "{\"memory\":-1}", "memory"),
        P("memory 2097153", "{\"memory\":2097153}", "memory"),
        P("memory string", "{\"memory\":\"16GB\"}", "memory"),
        P("gpus -1", "{\"gpus\":-1}", "gpus"),
        P("gpus 9", "{\"gpus\":9}", "gpus"),
        P("gpus 1.5", "{\"gpus\":1.5}", "gpus"),
        P("gpus with cpu", "{\"compute_type\":\"cpu\",\"gpus\":1}", "gpus"),
        /* args */
        P("args string", "{\"args\":\"--epochs 3\"}", "args"),
        P("args object", "{\"args\":{\"epochs\":\"3\"}}", "args"),
        M("args 101 items", args_101, "args"),
        P("args number item", "{\"args\":[\"--epochs\",3]}", "args[1]"),
        P("args null item", "{\"args\":[\"--epochs\",null]}", "args[1]"),
        M("args item 4097 bytes", arg_4097, "args[1]"),
        P("args item with NUL", "{\"args\":[\"a\\u0000b\"]}", "args[0]"),
        /* env */
        P("env array", "{\"env\":[\"A=1\"]}", "env"),
        P("env string", "{\"env\":\"A=1\"}", "env"),
        P("env lower-case name", "{\"env\":{\"learning_rate\":\"1\"}}", "env.learning_rate"),
        P("env mixed-case name", "{\"env\":{\"Rate\":\"1\"}}", "env.Rate"),
        P("env leading digit", "{\"env\":{\"1RATE\":\"1\"}}", "env.1RATE"),
        P("env hyphen", "{\"env\":{\"A-B\":\"1\"}}", "env.A-B"),
        P("env empty name", "{\"env\":{\"\":\"1\"}}", "env."),
        P("env AWS_SECRET_ACCESS_KEY", "{\"env\":{\"AWS_SECRET_ACCESS_KEY\":\"x\"}}",
          "env.AWS_SECRET_ACCESS_KEY"),
        P("env AWS_REGION", "{\"env\":{\"AWS_REGION\":\"us-east-1\"}}", "env.AWS_REGION"),
        P("env AWS_", "{\"env\":{\"AWS_\":\"x\"}}", "env.AWS_"),
        P("env number value", "{\"env\":{\"A\":1}}", "env.A"),
        P("env null value", "{\"env\":{\"A\":null}}", "env.A"),
        P("env value with NUL", "{\"env\":{\"A\":\"x\\u0000y\"}}", "env.A"),
        M("env value 4097 bytes", env_4097, "env.A"),
        M("env 101 entries", env_101, "env"),
        /* timeout_seconds, max_attempts */
        P("timeout 59", "{\"timeout_seconds\":59}", "timeout_seconds"),
        P("timeout 1209601", "{\"timeout_seconds\":1209601}", "timeout_seconds"),
        P("timeout string", "{\"timeout_seconds\":\"3600\"}", "timeout_seconds"),
        P("max_attempts 0", "{\"max_attempts\":0}", "max_attempts"),
        P("max_attempts 11", "{\"max_attempts\":11}", "max_attempts"),
        P("max_attempts 2.5", "{\"max_attempts\":2.5}", "max_attempts"),
        /* operation */
        P("operation space", "{\"operation\":\"cleanup cache\"}", "operation"),
        P("operation slash", "{\"operation\":\"cleanup/cache\"}", "operation"),
        P("operation empty", "{\"operation\":\"\"}", "operation"),
        P("operation number", "{\"operation\":7}", "operation"),
        P("operation NUL", "{\"operation\":\"a\\u0000b\"}", "operation"),
        M("operation 65 chars", operation_65, "operation"),
        /* metadata */
        P("metadata array", "{\"metadata\":[\"ml-engineer\"]}", "metadata"),
        P("metadata string", "{\"metadata\":\"ml-engineer\"}", "metadata"),
        P("metadata number value", "{\"metadata\":{\"user\":1}}", "metadata.user"),
        P("metadata object value", "{\"metadata\":{\"user\":{}}}", "metadata.user"),
        M("metadata value 257 bytes", meta_257, "metadata.user"),
        M("metadata 33 keys", meta_33, "metadata"),
        P("metadata bad key", "{\"metadata\":{\"a b\":\"x\"}}", "metadata.a b"),
        M("metadata key 65 chars", metadata_key_65, "metadata." K13 K13 K13 K13 K13),
        /* notify */
        P("notify string", "{\"notify\":\"a@example.com\"}", "notify"),
        P("notify array", "{\"notify\":[\"a@example.com\"]}", "notify"),
        P("notify unknown key", "{\"notify\":{\"sms\":[\"+15550100\"]}}", "notify.sms"),
        P("notify emails string", "{\"notify\":{\"emails\":\"a@example.com\"}}", "notify.emails"),
        P("email without @", "{\"notify\":{\"emails\":[\"not-an-email\"]}}", "notify.emails[0]"),
        P("email two @", "{\"notify\":{\"emails\":[\"a@b@example.com\"]}}", "notify.emails[0]"),
        P("email empty local", "{\"notify\":{\"emails\":[\"@example.com\"]}}", "notify.emails[0]"),
        P("email dotless domain", "{\"notify\":{\"emails\":[\"a@localhost\"]}}",
          "notify.emails[0]"),
        P("email empty label", "{\"notify\":{\"emails\":[\"a@example..com\"]}}",
          "notify.emails[0]"),
        P("email hyphen label", "{\"notify\":{\"emails\":[\"a@-x.example.com\"]}}",
          "notify.emails[0]"),
        P("email with space", "{\"notify\":{\"emails\":[\"a b@example.com\"]}}",
          "notify.emails[0]"),
        P("email header injection",
          "{\"notify\":{\"emails\":[\"a@example.com\\r\\nBcc: x@example.com\"]}}",
          "notify.emails[0]"),
        P("email number", "{\"notify\":{\"emails\":[\"a@example.com\",1]}}", "notify.emails[1]"),
        M("21 emails", emails_21, "notify.emails"),
        P("webhook plain http", "{\"notify\":{\"webhooks\":[\"http://example.com\"]}}",
          "notify.webhooks[0]"),
        P("webhook userinfo", "{\"notify\":{\"webhooks\":[\"https://user@host\"]}}",
          "notify.webhooks[0]"),
        P("webhook user:password",
          "{\"notify\":{\"webhooks\":[\"https://user:pw@hooks.example.com/ml\"]}}",
          "notify.webhooks[0]"),
        P("webhook http userinfo to loopback",
          "{\"notify\":{\"webhooks\":[\"http://localhost@example.com/\"]}}", "notify.webhooks[0]"),
        P("webhook http loopback-looking host",
          "{\"notify\":{\"webhooks\":[\"http://127.0.0.1.nip.io/hook\"]}}", "notify.webhooks[0]"),
        P("webhook http localhost subdomain",
          "{\"notify\":{\"webhooks\":[\"http://localhost.example.com/\"]}}", "notify.webhooks[0]"),
        P("webhook ftp", "{\"notify\":{\"webhooks\":[\"ftp://example.com/x\"]}}",
          "notify.webhooks[0]"),
        P("webhook no host", "{\"notify\":{\"webhooks\":[\"https:///ml\"]}}", "notify.webhooks[0]"),
        P("webhook whitespace", "{\"notify\":{\"webhooks\":[\"https://hooks.example.com/a b\"]}}",
          "notify.webhooks[0]"),
        P("webhook relative", "{\"notify\":{\"webhooks\":[\"/hook\"]}}", "notify.webhooks[0]"),
        M("11 webhooks", webhooks_11, "notify.webhooks"),
        /* dispatch */
        P("dispatch ftp", "{\"dispatch\":\"ftp\"}", "dispatch"),
        P("dispatch BATCH", "{\"dispatch\":\"BATCH\"}", "dispatch"),
        P("dispatch number", "{\"dispatch\":1}", "dispatch"),
        /* unknown top-level fields */
        P("unknown gpu", "{\"gpu\":1}", "gpu"),
        P("unknown cpus", "{\"cpus\":2}", "cpus"),
        P("unknown data without trigger_type", "{\"data\":{}}", "data"),
    };
    return cr_make_param_array(struct bad_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *tc, job_request,
                  each_rule_reports_exactly_one_error_under_its_field)
{
    json_t *b = load("{\"script_key\":\"jobs/train.py\"}");
    json_t *patch = tc->patch != NULL ? load(tc->patch) : tc->make();
    cr_assert_not_null(patch, "%s: no patch", tc->what);
    cr_assert_eq(json_object_update(b, patch), 0);
    json_decref(patch);
    assert_only(parse(b), tc->field, tc->what);
}

Test(job_request, missing_script_key_is_reported_as_required)
{
    assert_only(parse_text("{}"), "script_key", "empty body");
    assert_only(parse_text("{\"compute_type\":\"cpu\"}"), "script_key", "no script_key");
}

Test(job_request, every_reserved_contract_variable_is_refused_in_env)
{
    size_t n = 0;
    for (const char *const *name = rt_reserved_env; *name != NULL; name++, n++) {
        char field[300];
        snprintf(field, sizeof(field), "env.%s", *name);
        assert_only(parse(json_pack("{s:s,s:{s:s}}", "script_key", "k", "env", *name, "x")), field,
                    *name);
    }
    /* API.md's list: ten names, AWS_DEFAULT_REGION and ML_OUTPUT_DIR; and the four a
     * pipeline step gets (ML_INPUT_DIR, PARENT_OUTPUT_URIS, ARRAY_INDEX, ARRAY_SIZE). */
    cr_assert_eq(n, 16);
}

Test(job_request, env_names_like_reserved_ones_are_accepted)
{
    assert_ok(parse_text("{\"script_key\":\"k\",\"env\":{\"_X\":\"1\",\"JOB_ID_SUFFIX\":\"x\","
                         "\"MY_AWS_THING\":\"y\",\"AWS\":\"z\",\"A1_2\":\"\"}}"),
              "near-reserved names");
    assert_json_eq(req.env_json,
                   "{\"_X\":\"1\",\"JOB_ID_SUFFIX\":\"x\",\"MY_AWS_THING\":\"y\",\"AWS\":\"z\","
                   "\"A1_2\":\"\"}",
                   "env_json");
}

/* ---- several problems at once --------------------------------------------- */

Test(job_request, every_invalid_field_is_reported_in_one_answer)
{
    static const char *const fields[] = {
        "script_key",
        "gpus",
        "vcpus",
        "memory",
        "args[0]",
        "env.AWS_REGION",
        "env.lower",
        "timeout_seconds",
        "max_attempts",
        "operation",
        "metadata.user",
        "notify.emails[0]",
        "notify.webhooks[0]",
        "dispatch",
        "gpu",
    };
    int rc = parse_text("{\"script_key\":\"/abs\",\"compute_type\":\"cpu\",\"gpus\":2,\"vcpus\":0,"
                        "\"memory\":\"big\",\"args\":[1],"
                        "\"env\":{\"AWS_REGION\":\"x\",\"lower\":\"y\"},"
                        "\"timeout_seconds\":10,\"max_attempts\":0,\"operation\":\"a b\","
                        "\"metadata\":{\"user\":5},"
                        "\"notify\":{\"emails\":[\"x\"],\"webhooks\":[\"http://example.com\"]},"
                        "\"dispatch\":\"ftp\",\"gpu\":1}");
    size_t n = sizeof(fields) / sizeof(fields[0]);
    cr_assert_eq(rc, (int)n, "got %d: %s", rc, errs());
    cr_assert_eq(json_array_size(errors), n, "%s", errs());
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(count_field(fields[i]), 1, "%s: %s", fields[i], errs());
}

Test(job_request, each_bad_item_of_a_list_is_reported_by_its_index)
{
    int rc = parse_text("{\"script_key\":\"k\",\"args\":[\"ok\",1,\"ok\",false],"
                        "\"notify\":{\"emails\":[\"a@example.com\",\"x\",\"y\"]}}");
    cr_assert_eq(rc, 4, "%s", errs());
    cr_assert_eq(count_field("args[1]"), 1, "%s", errs());
    cr_assert_eq(count_field("args[3]"), 1, "%s", errs());
    cr_assert_eq(count_field("notify.emails[1]"), 1, "%s", errs());
    cr_assert_eq(count_field("notify.emails[2]"), 1, "%s", errs());
}

/* ---- the trigger message envelope ------------------------------------------ */

Test(job_request, trigger_type_other_than_batch_job_is_refused)
{
    assert_only(parse_text("{\"trigger_type\":\"pipeline\",\"data\":{\"script_key\":\"k\"}}"),
                "trigger_type", "pipeline");
    assert_only(parse_text("{\"trigger_type\":\"BATCH_JOB\",\"data\":{\"script_key\":\"k\"}}"),
                "trigger_type", "upper case");
    assert_only(parse_text("{\"trigger_type\":1,\"data\":{\"script_key\":\"k\"}}"), "trigger_type",
                "number");
    assert_only(parse_text("{\"trigger_type\":null,\"data\":{\"script_key\":\"k\"}}"),
                "trigger_type", "null");
}

Test(job_request, envelope_without_data_object_reports_data)
{
    const char *const bodies[] = {
        "{\"trigger_type\":\"batch_job\"}",
        "{\"trigger_type\":\"batch_job\",\"data\":null}",
        "{\"trigger_type\":\"batch_job\",\"data\":[{\"script_key\":\"k\"}]}",
        "{\"trigger_type\":\"batch_job\",\"data\":\"jobs/train.py\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        int rc = parse_text(bodies[i]);
        cr_assert_gt(rc, 0, "%s", bodies[i]);
        cr_assert_eq((size_t)rc, json_array_size(errors), "%s: %s", bodies[i], errs());
        cr_assert_eq(count_field("data"), 1, "%s: %s", bodies[i], errs());
    }
}

Test(job_request, unknown_envelope_key_is_reported_by_its_name)
{
    assert_only(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"k\"},"
                           "\"priority\":1}"),
                "priority", "priority");
    /* job fields belong inside data */
    assert_only(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"k\"},"
                           "\"vcpus\":8}"),
                "vcpus", "vcpus beside data");
}

Test(job_request, metadata_inside_data_is_refused)
{
    assert_only(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"k\","
                           "\"metadata\":{\"user\":\"u\"}}}"),
                "data.metadata", "data.metadata");
}

Test(job_request, field_names_inside_data_are_prefixed)
{
    assert_only(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"k\","
                           "\"vcpus\":0}}"),
                "data.vcpus", "data.vcpus");
    assert_only(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{}}"), "data.script_key",
                "data.script_key");
    assert_only(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"k\","
                           "\"gpu\":1}}"),
                "data.gpu", "data.gpu");
    assert_only(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"k\","
                           "\"compute_type\":\"cpu\",\"gpus\":2}}"),
                "data.gpus", "data.gpus with cpu");
    int rc = parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"k\","
                        "\"args\":[1],\"env\":{\"lower\":\"x\"},\"notify\":{\"emails\":[\"x\"]},"
                        "\"operation\":\"a b\"}}");
    cr_assert_eq(rc, 4, "%s", errs());
    cr_assert_eq(count_field("data.args[0]"), 1, "%s", errs());
    cr_assert_eq(count_field("data.env.lower"), 1, "%s", errs());
    cr_assert_eq(count_field("data.notify.emails[0]"), 1, "%s", errs());
    cr_assert_eq(count_field("data.operation"), 1, "%s", errs());
}

Test(job_request, envelope_metadata_is_reported_without_the_data_prefix)
{
    assert_only(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"k\"},"
                           "\"metadata\":{\"user\":1}}"),
                "metadata.user", "metadata.user");
    assert_only(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"k\"},"
                           "\"metadata\":[]}"),
                "metadata", "metadata array");
}

Test(job_request, envelope_with_every_job_field_in_data_is_accepted)
{
    assert_ok(parse_text("{\"trigger_type\":\"batch_job\",\"data\":{\"script_key\":\"jobs/x.py\","
                         "\"compute_type\":\"cpu\",\"vcpus\":3,\"memory\":2048,\"gpus\":0,"
                         "\"args\":[\"-v\"],\"env\":{\"A\":\"b\"},\"timeout_seconds\":600,"
                         "\"max_attempts\":2,\"operation\":\"warm\",\"notify\":{\"emails\":"
                         "[\"ops@example.com\"]},\"dispatch\":\"sns\"},"
                         "\"metadata\":{\"user\":\"u\",\"project\":\"p\",\"experiment\":\"e\"}}"),
              "full envelope");
    assert_resources("cpu", 3, 2048, 0);
    cr_assert_str_eq(req.script_key, "jobs/x.py");
    cr_assert_str_eq(req.args_json, "[\"-v\"]");
    cr_assert_str_eq(req.env_json, "{\"A\":\"b\"}");
    cr_assert_eq(req.timeout_seconds, 600);
    cr_assert_eq(req.max_attempts, 2);
    cr_assert_str_eq(req.operation, "warm");
    cr_assert_str_eq(req.dispatch, "sns");
    assert_json_eq(req.metadata_json, "{\"user\":\"u\",\"project\":\"p\",\"experiment\":\"e\"}",
                   "metadata_json");
    assert_json_eq(req.notify_json, "{\"emails\":[\"ops@example.com\"],\"webhooks\":[]}",
                   "notify_json");
}

Test(job_request, every_envelope_problem_is_reported_in_one_answer)
{
    static const char *const fields[] = {"extra",           "trigger_type", "data.metadata",
                                         "data.script_key", "data.vcpus",   "metadata.user"};
    int rc = parse_text("{\"trigger_type\":\"sns\",\"data\":{\"script_key\":\"..\",\"vcpus\":999,"
                        "\"metadata\":{}},\"metadata\":{\"user\":1},\"extra\":true}");
    size_t n = sizeof(fields) / sizeof(fields[0]);
    cr_assert_eq(rc, (int)n, "got %d: %s", rc, errs());
    cr_assert_eq(json_array_size(errors), n, "%s", errs());
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(count_field(fields[i]), 1, "%s: %s", fields[i], errs());
}

/* ---- configuration ---------------------------------------------------------- */

Test(job_request, configured_max_vcpus_moves_the_bound)
{
    struct kv vars[] = {{"MLGW_MAX_VCPUS", "8"}, {NULL, NULL}};
    load_config(vars);
    assert_ok(parse_text("{\"script_key\":\"k\",\"vcpus\":8}"), "vcpus 8");
    cr_assert_eq(req.vcpus, 8);
    assert_only(parse_text("{\"script_key\":\"k\",\"vcpus\":9}"), "vcpus", "vcpus 9");
    const char *msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    cr_assert_not_null(strstr(msg, "8"), "message does not name the bound: %s", msg);
    /* the seed's custom GPU job (16 vCPUs) no longer fits */
    assert_only(parse_text(seed_gpu_custom), "data.vcpus", "seed GPU custom over the max");
}

Test(job_request, configured_limits_for_memory_and_gpus_move_their_bounds)
{
    struct kv vars[] = {{"MLGW_MAX_MEMORY", "32768"}, {"MLGW_MAX_GPUS", "2"}, {NULL, NULL}};
    load_config(vars);
    assert_only(parse_text("{\"script_key\":\"k\",\"memory\":32769}"), "memory", "memory");
    assert_only(parse_text("{\"script_key\":\"k\",\"gpus\":3}"), "gpus", "gpus");
    assert_ok(parse_text("{\"script_key\":\"k\",\"memory\":32768,\"gpus\":2}"), "at the bounds");
}

Test(job_request, configured_defaults_apply_per_compute_type)
{
    struct kv vars[] = {{"MLGW_GPU_JOB_VCPUS", "8"},
                        {"MLGW_GPU_JOB_MEMORY", "30000"},
                        {"MLGW_GPU_JOB_GPUS", "2"},
                        {"MLGW_CPU_JOB_VCPUS", "3"},
                        {"MLGW_CPU_JOB_MEMORY", "6000"},
                        {"MLGW_DISPATCH", "batch"},
                        {NULL, NULL}};
    load_config(vars);
    assert_ok(parse_text(seed_gpu_default), "gpu");
    assert_resources("gpu", 8, 30000, 2);
    cr_assert_str_eq(req.dispatch, "batch");
    assert_ok(parse_text(seed_cpu_default), "cpu");
    assert_resources("cpu", 3, 6000, 0);
    cr_assert_str_eq(req.dispatch, "batch");
    assert_ok(parse_text("{\"script_key\":\"k\",\"dispatch\":\"local\"}"), "explicit dispatch");
    cr_assert_str_eq(req.dispatch, "local");
}

Test(job_request, a_long_non_ascii_field_name_is_still_reported)
{
    /* Truncating the name must not split a UTF-8 character (the error would
     * otherwise be lost when it is packed into JSON). */
    char text[2048] = "{\"script_key\": \"k\", \"";
    size_t k = strlen(text);
    for (int i = 0; i < 200; i++) {
        text[k++] = '\xc3';
        text[k++] = '\xa9';
    }
    memcpy(text + k, "\": 1}", 6);
    int rc = parse_text(text);
    cr_assert_eq(rc, 1);
    cr_assert_eq(json_array_size(errors), 1, "the problem is in errors: %s", errs());
    const char *f = field_at(0);
    cr_assert(f != NULL && strlen(f) <= 320);
}

Test(job_request, webhook_ports_must_be_numbers_in_range)
{
    allow_http_webhooks();
    const char *bad[] = {
        "{\"script_key\": \"k\", \"notify\": {\"webhooks\": [\"http://localhost:abc/\"]}}",
        "{\"script_key\": \"k\", \"notify\": {\"webhooks\": [\"https://h.example:99999/\"]}}",
        "{\"script_key\": \"k\", \"notify\": {\"webhooks\": [\"https://h.example:/x\"]}}",
        "{\"script_key\": \"k\", \"notify\": {\"webhooks\": [\"https://[::1/x\"]}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_only(parse_text(bad[i]), "notify.webhooks[0]", bad[i]);
    }
    assert_ok(parse_text("{\"script_key\": \"k\", \"notify\": {\"webhooks\": "
                         "[\"https://h.example:8443/x\", \"http://[::1]:9000/h\"]}}"),
              "ports in range");
}

Test(job_request, email_addresses_with_stray_dots_are_refused)
{
    const char *bad[] = {"a@example.com.", "a..b@example.com", ".a@example.com", "a.@example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "{\"script_key\": \"k\", \"notify\": {\"emails\": [\"%s\"]}}",
                 bad[i]);
        assert_only(parse_text(text), "notify.emails[0]", bad[i]);
    }
}

/* ---- env names that change how a program starts ------------------------------- */

Test(job_request, the_reported_attack_env_is_refused_naming_each_variable)
{
    int rc = parse_text("{\"script_key\":\"k\",\"env\":{\"PYTHONWARNINGS\":"
                        "\"ignore::antigravity.x\",\"BROWSER\":\"/bin/bash\","
                        "\"BASH_ENV\":\"/tmp/x\"}}");
    cr_assert_eq(rc, 3, "%s", errs());
    static const char *const fields[] = {"env.PYTHONWARNINGS", "env.BROWSER", "env.BASH_ENV"};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(count_field(fields[i]), 1, "%s: %s", fields[i], errs());
        const char *msg = json_string_value(json_object_get(json_array_get(errors, i), "message"));
        cr_assert_str_eq(msg, "changes how a program starts; not allowed");
    }
    cr_assert_str_eq(req.env_json, "{}");
}

Test(job_request, loader_interpreter_and_shell_variables_are_refused_in_env)
{
    static const char *const names[] = {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONWARNINGS",
        "PYTHONHOME",
        "PYTHONINSPECT",
        "PYTHON",
        "BASH_ENV",
        "ENV",
        "BASH_FUNC_X",
        "BROWSER",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PATH",
        "HOME",
        "SHELL",
        "IFS",
        "SHELLOPTS",
        "PS4",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "FTP_PROXY",
        "TMPDIR",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "GCONV_PATH",
        "LOCPATH",
        "MALLOC_CHECK_",
        "MALLOC_ARENA_MAX",
        "GLIBC_TUNABLES",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "CLASSPATH",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_GLOBAL",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CURL_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "OPENSSL_CONF",
        "DYLD_INSERT_LIBRARIES",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char field[300];
        snprintf(field, sizeof(field), "env.%s", names[i]);
        assert_only(parse(json_pack("{s:s,s:{s:s}}", "script_key", "k", "env", names[i], "x")),
                    field, names[i]);
        cr_assert(rt_env_refused(names[i]), "%s", names[i]);
    }
    /* Every entry of the list matches itself (patterns by an instance). */
    for (const char *const *p = rt_refused_env; *p != NULL; p++) {
        char name[64];
        snprintf(name, sizeof(name), "%s", (*p)[0] == '*' ? "X" : "");
        size_t k = strlen(name);
        for (const char *c = *p; *c != '\0' && k < sizeof(name) - 2; c++)
            if (*c != '*')
                name[k++] = *c;
        name[k] = '\0';
        cr_assert(rt_env_refused(name), "%s (from %s)", name, *p);
    }
}

Test(job_request, bash_function_exports_are_refused)
{
    cr_assert(rt_env_refused("BASH_FUNC_ls%%"));
    cr_assert(rt_env_refused("X%%"));
    int rc = parse_text("{\"script_key\":\"k\",\"env\":{\"BASH_FUNC_ls%%\":\"() { id; }\"}}");
    cr_assert_eq(rc, 1, "%s", errs());
    cr_assert_eq(count_field("env.BASH_FUNC_ls%%"), 1, "%s", errs());
}

Test(job_request, locale_and_ordinary_names_stay_allowed_in_env)
{
    assert_ok(parse_text("{\"script_key\":\"k\",\"env\":{\"LANG\":\"C.UTF-8\",\"LC_ALL\":\"C\","
                         "\"LC_CTYPE\":\"C\",\"LANGUAGE\":\"en\",\"LEARNING_RATE\":\"0.1\","
                         "\"MY_PATH\":\"/x\",\"HOMEDIR\":\"/h\",\"PROXY_TIMEOUT\":\"3\","
                         "\"NO_PROXY_LIST\":\"a\",\"MY_LD_FLAG\":\"1\",\"PATHS\":\"p\"}}"),
              "ordinary names");
}

Test(job_request, the_operator_allow_list_narrows_env_after_the_deny_list)
{
    struct kv vars[] = {{"MLGW_JOB_ENV_ALLOW", "LEARNING_RATE,HF_*,PYTHON*"}, {NULL, NULL}};
    load_config(vars);
    assert_ok(parse_text("{\"script_key\":\"k\",\"env\":{\"LEARNING_RATE\":\"0.1\","
                         "\"HF_HUB_OFFLINE\":\"1\"}}"),
              "allowed names");
    assert_only(parse_text("{\"script_key\":\"k\",\"env\":{\"EPOCHS\":\"3\"}}"), "env.EPOCHS",
                "a name outside the allow-list");
    const char *msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    cr_assert_str_eq(msg, "is not a name this gateway lets jobs set");
    /* Allowing PYTHON* does not let PYTHONPATH through: the deny-list comes first. */
    assert_only(parse_text("{\"script_key\":\"k\",\"env\":{\"PYTHONPATH\":\"/tmp\"}}"),
                "env.PYTHONPATH", "denied even when allowed");
    msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    cr_assert_str_eq(msg, "changes how a program starts; not allowed");
}

/* ---- webhooks: https only unless the operator allows http ---------------------- */

Test(job_request, plain_http_webhooks_to_loopback_are_refused_by_default)
{
    int rc = parse_text("{\"script_key\":\"k\",\"notify\":{\"webhooks\":["
                        "\"http://127.0.0.1:5432/x\",\"http://localhost:8080/\","
                        "\"http://[::1]/h\",\"https://127.0.0.1:8443/hook\"]}}");
    cr_assert_eq(rc, 3, "%s", errs());
    cr_assert_eq(count_field("notify.webhooks[0]"), 1, "%s", errs());
    cr_assert_eq(count_field("notify.webhooks[1]"), 1, "%s", errs());
    cr_assert_eq(count_field("notify.webhooks[2]"), 1, "%s", errs());
    /* An https URL is valid syntax; where it leads is checked when it is sent. */
    cr_assert_eq(count_field("notify.webhooks[3]"), 0, "%s", errs());
}

Test(job_request, http_webhooks_to_loopback_need_the_operator_setting)
{
    allow_http_webhooks();
    assert_ok(parse_text("{\"script_key\":\"k\",\"notify\":{\"webhooks\":["
                         "\"http://127.0.0.1:5432/x\",\"http://localhost:8080/\"]}}"),
              "allowed http");
    assert_only(parse_text("{\"script_key\":\"k\",\"notify\":{\"webhooks\":["
                           "\"http://10.0.0.1/x\"]}}"),
                "notify.webhooks[0]", "http elsewhere stays refused");
}

/* ---- the errors list is bounded ------------------------------------------------ */

Test(job_request, a_mebibyte_of_unknown_keys_gets_a_short_errors_list)
{
    json_t *b = json_object();
    json_object_set_new(b, "script_key", json_string("k"));
    size_t n = 0;
    for (size_t bytes = 0; bytes < 1024 * 1024; bytes += 14, n++) {
        char key[16];
        snprintf(key, sizeof(key), "x%07zu", n);
        json_object_set_new(b, key, json_integer(0)); /* "x0000000":0, */
    }
    int rc = parse(b);
    cr_assert_eq((size_t)rc, n, "every problem is counted");
    cr_assert_eq(json_array_size(errors), 50, "%zu entries", json_array_size(errors));
    cr_assert_str_eq(field_at(49), "(more)");
    const char *msg = json_string_value(json_object_get(json_array_get(errors, 49), "message"));
    char want[32];
    snprintf(want, sizeof(want), "%zu more", n - 49);
    cr_assert_not_null(strstr(msg, want), "%s", msg);
    for (size_t i = 0; i < 49; i++)
        cr_assert_neq(strcmp(field_at(i), "(more)"), 0);
    cr_assert_lt(strlen(errs()), 8192, "the answer stays small");
}

Test(job_request, fifty_problems_are_all_listed_and_fifty_one_are_cut)
{
    for (int total = 50; total <= 51; total++) {
        json_t *b = json_object();
        json_object_set_new(b, "script_key", json_string("k"));
        for (int i = 0; i < total; i++) {
            char key[16];
            snprintf(key, sizeof(key), "u%02d", i);
            json_object_set_new(b, key, json_true());
        }
        cr_assert_eq(parse(b), total);
        cr_assert_eq(json_array_size(errors), 50, "%d: %s", total, errs());
        if (total == 50) {
            cr_assert_eq(count_field("(more)"), 0, "%s", errs());
        } else {
            cr_assert_str_eq(field_at(49), "(more)");
            const char *msg =
                json_string_value(json_object_get(json_array_get(errors, 49), "message"));
            cr_assert_not_null(strstr(msg, "2 more"), "%s", msg);
        }
    }
}

/* ---- what JSON Schema counts: whole reals, characters ----------------------- */

Test(job_request, a_whole_real_is_an_integer_as_json_schema_counts_it_a_fraction_is_not)
{
    assert_ok(parse_text("{\"script_key\":\"a.py\",\"vcpus\":8.0,\"timeout_seconds\":3600.0,"
                         "\"max_attempts\":2e0}"),
              "whole reals");
    cr_expect_eq(req.vcpus, 8);
    cr_expect_eq(req.timeout_seconds, 3600);
    cr_expect_eq(req.max_attempts, 2);
    assert_only(parse_text("{\"script_key\":\"a.py\",\"timeout_seconds\":3600.5}"),
                "timeout_seconds", "a fraction");
    assert_only(parse_text("{\"script_key\":\"a.py\",\"vcpus\":1e300}"), "vcpus",
                "a whole real past long long");
}

/* n copies of the UTF-8 text ch (new). */
static json_t *repeat_text(const char *ch, size_t n)
{
    size_t len = strlen(ch);
    char *s = malloc(n * len + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, ch, len);
    s[n * len] = '\0';
    json_t *v = json_string(s);
    free(s);
    return v;
}

Test(job_request, length_limits_count_characters_not_bytes)
{
    /* 256 "é" are 512 bytes: within metadata's 256 characters; 257 are not. */
    json_t *b = load("{\"script_key\":\"a.py\",\"metadata\":{},\"env\":{},\"args\":[]}");
    json_object_set_new(json_object_get(b, "metadata"), "user", repeat_text("\xc3\xa9", 256));
    json_object_set_new(json_object_get(b, "env"), "A", repeat_text("\xe2\x82\xac", 4096));
    json_array_append_new(json_object_get(b, "args"), repeat_text("\xf0\x9f\x98\x8d", 4096));
    assert_ok(parse(b), "at the limits, in multi-byte characters");
    b = load("{\"script_key\":\"a.py\",\"metadata\":{}}");
    json_object_set_new(json_object_get(b, "metadata"), "user", repeat_text("\xc3\xa9", 257));
    assert_only(parse(b), "metadata.user", "257 characters");
}
