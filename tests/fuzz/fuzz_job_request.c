/*
 * fuzz_job_request.c — POST /jobs validation (routes/job_request.c) on
 * arbitrary bytes. The bytes are read as the route reads a body
 * (json_loadb with JSON_REJECT_DUPLICATES; anything but an object is refused
 * before validation, so it is skipped here), then validated with the default
 * configuration. Checked besides crashes and leaks: the count returned is the
 * number of problems listed, each problem has a field and a message, and an
 * accepted request is within the configured limits.
 */
#include <jansson.h>

#include "common/config.h"
#include "routes/job_request.h"
#include "tests/fuzz/fuzz.h"

static const char *config_get(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "DATABASE_URL") == 0 ? "dbname=fuzz" : NULL;
}

/* The defaults, loaded once and kept for the process (still reachable). */
static const struct gw_config *config(void)
{
    static struct gw_config cfg;
    static int loaded;
    if (!loaded) {
        FUZZ_CHECK(gw_config_load(&cfg, config_get, NULL, NULL) == 0);
        loaded = 1;
    }
    return &cfg;
}

static void check_problems(const json_t *errors, int n)
{
    FUZZ_CHECK(n >= 0 && (size_t)n == json_array_size(errors));
    for (size_t i = 0; i < json_array_size(errors); i++) {
        const json_t *e = json_array_get(errors, i);
        FUZZ_CHECK(json_is_string(json_object_get(e, "field")));
        FUZZ_CHECK(json_is_string(json_object_get(e, "message")));
    }
}

static void check_accepted(const struct rt_job_request *r, const struct gw_config *cfg)
{
    FUZZ_CHECK(r->script_key != NULL && r->script_key[0] != '\0');
    FUZZ_CHECK(strcmp(r->compute_type, "gpu") == 0 || strcmp(r->compute_type, "cpu") == 0);
    FUZZ_CHECK(r->vcpus >= 1 && r->vcpus <= cfg->max_vcpus);
    FUZZ_CHECK(r->memory >= 1 && r->memory <= cfg->max_memory);
    FUZZ_CHECK(r->gpus >= 0 && r->gpus <= cfg->max_gpus);
    FUZZ_CHECK(r->max_attempts >= 1 && r->max_attempts <= 10);
    FUZZ_CHECK(r->dispatch != NULL);
    /* The canonical texts that are stored must be JSON again. */
    const char *texts[] = {r->args_json, r->env_json, r->metadata_json, r->notify_json};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (texts[i] == NULL)
            continue;
        json_t *back = json_loads(texts[i], 0, NULL);
        FUZZ_CHECK(back != NULL);
        json_decref(back);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct gw_config *cfg = config();
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    json_t *errors = json_array();
    FUZZ_CHECK(errors != NULL);
    struct rt_job_request req;
    int n = rt_job_request_parse(&req, body, cfg, errors);
    check_problems(errors, n);
    if (n == 0)
        check_accepted(&req, cfg);
    rt_job_request_dispose(&req);
    json_decref(errors);
    json_decref(body);
    return 0;
}
