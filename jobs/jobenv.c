/*
 * jobenv.c — what a job is given to run with: its Batch job name and its
 * environment (jobenv.h). It builds values only; it submits nothing and
 * reads no configuration but what it is passed.
 */
#include "jobs/jobenv.h"

#include <stddef.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/json.h"

#include "common/poison.h"

static int alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

void jobs_batch_job_name(char *out, const char *project, const char *job_id)
{
    /* 90 of the project + '-' + a 36-character id stays within Batch's 128. */
    char clean[91];
    size_t o = 0;
    for (const char *p = project ? project : ""; *p != '\0' && o < sizeof(clean) - 1; p++) {
        if (o == 0 && !alnum(*p))
            continue; /* a name starts alphanumeric */
        char ch = *p;
        if (!alnum(ch) && ch != '_' && ch != '-')
            ch = '-';
        clean[o++] = ch;
    }
    clean[o] = '\0';
    gw_fmt(out, 129, "%s-%s", o > 0 ? clean : "mlgw", job_id);
}

json_t *jobs_environment(const struct gw_config *cfg, const json_t *job, const char *region,
                         const char *output_dir)
{
    json_t *env = json_object();
    const json_t *meta = json_object_get(job, "metadata");
    const char *id = gw_json_str(job, "id");
    char prefix[64];
    gw_fmt(prefix, sizeof(prefix), "jobs/%s", id);
    json_object_set_new(env, "ML_INPUT_BUCKET",
                        json_string(cfg->input_bucket ? cfg->input_bucket : ""));
    json_object_set_new(env, "ML_OUTPUT_BUCKET",
                        json_string(cfg->output_bucket ? cfg->output_bucket : ""));
    json_object_set_new(env, "OUTPUT_PREFIX", json_string(prefix));
    json_object_set_new(env, "COMPUTE_TYPE", json_string(gw_json_str(job, "compute_type")));
    json_object_set_new(env, "SCRIPT_KEY", json_string(gw_json_str(job, "script_key")));
    json_object_set_new(env, "JOB_ID", json_string(id));
    json_object_set_new(env, "TRIGGER_USER",
                        json_string(gw_json_str(meta, "user") ? gw_json_str(meta, "user") : ""));
    json_object_set_new(
        env, "TRIGGER_PROJECT",
        json_string(gw_json_str(meta, "project") ? gw_json_str(meta, "project") : ""));
    json_object_set_new(
        env, "TRIGGER_EXPERIMENT",
        json_string(gw_json_str(meta, "experiment") ? gw_json_str(meta, "experiment") : ""));
    if (gw_json_str(job, "operation") != NULL)
        json_object_set_new(env, "OPERATION", json_string(gw_json_str(job, "operation")));
    if (region != NULL)
        json_object_set_new(env, "AWS_DEFAULT_REGION", json_string(region));
    json_object_set_new(env, "ML_OUTPUT_DIR", json_string(output_dir));
    json_object_update_missing(env, json_object_get(job, "env"));
    return env;
}

int jobs_output_uri(char *out, size_t outlen, const struct gw_config *cfg, const char *job_id)
{
    int n = cfg->output_bucket != NULL
                ? snprintf(out, outlen, "s3://%s/jobs/%s/", cfg->output_bucket, job_id)
                : snprintf(out, outlen, "file://%s/output/jobs/%s/", cfg->local_root, job_id);
    return n >= 0 && (size_t)n < outlen ? 0 : -1;
}
