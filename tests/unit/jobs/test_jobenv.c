/*
 * jobs/jobenv.c: the AWS Batch job name built from project and job id, and
 * the environment contract every job runs with.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "common/config.h"
#include "jobs/jobenv.h"

static const char id[] = "01a22429-8619-75a4-90bc-3da40c49c5bd";

static int batch_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (i == 0 && !alnum)
            return 0;
        if (!alnum && c != '-' && c != '_')
            return 0;
    }
    return 1;
}

Test(jobs_jobenv, job_name_is_project_then_the_gateway_job_id)
{
    char out[129];
    jobs_batch_job_name(out, "data-pipeline", id);
    cr_assert_str_eq(out, "data-pipeline-01a22429-8619-75a4-90bc-3da40c49c5bd");
}

Test(jobs_jobenv, job_name_replaces_what_batch_refuses_and_starts_alphanumeric)
{
    char out[129];
    jobs_batch_job_name(out, "__model training!/v2", id);
    cr_assert_str_eq(out, "model-training--v2-01a22429-8619-75a4-90bc-3da40c49c5bd");
    cr_assert(batch_name_ok(out));
    jobs_batch_job_name(out, "ünïcode", id);
    cr_assert(batch_name_ok(out), "%s", out);
    cr_assert(strstr(out, id) != NULL);
}

Test(jobs_jobenv, job_name_without_a_usable_project_is_mlgw_and_the_id)
{
    char out[129];
    jobs_batch_job_name(out, NULL, id);
    cr_assert_str_eq(out, "mlgw-01a22429-8619-75a4-90bc-3da40c49c5bd");
    jobs_batch_job_name(out, "!!!", id);
    cr_assert_str_eq(out, "mlgw-01a22429-8619-75a4-90bc-3da40c49c5bd");
}

Test(jobs_jobenv, a_long_project_is_cut_so_the_id_always_fits)
{
    char project[300];
    memset(project, 'p', sizeof(project) - 1);
    project[sizeof(project) - 1] = '\0';
    char out[129];
    jobs_batch_job_name(out, project, id);
    cr_assert(batch_name_ok(out), "%zu chars", strlen(out));
    cr_assert(strstr(out, id) != NULL, "the id survives");
}

/* ---- the environment ---- */

static json_t *sample_job(void)
{
    json_t *job = json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:s,s:s,s:s}}", "id", id,
                            "compute_type", "gpu", "script_key", "train.py", "metadata", "user",
                            "ann", "project", "vision", "experiment", "e7", "env", "LR", "0.1",
                            "JOB_ID", "spoofed", "ML_OUTPUT_DIR", "/elsewhere");
    cr_assert_not_null(job);
    return job;
}

static const char *env_str(const json_t *env, const char *k)
{
    const char *v = json_string_value(json_object_get(env, k));
    cr_assert_not_null(v, "%s is missing or not a string", k);
    return v;
}

Test(jobs_jobenv, environment_carries_the_contract_and_the_jobs_own_env)
{
    char in[] = "ml-in", out[] = "ml-out";
    struct gw_config cfg = {.input_bucket = in, .output_bucket = out};
    json_t *job = sample_job();
    json_t *env = jobs_environment(&cfg, job, "eu-west-1", "/workspace/output");
    cr_assert_str_eq(env_str(env, "ML_INPUT_BUCKET"), "ml-in");
    cr_assert_str_eq(env_str(env, "ML_OUTPUT_BUCKET"), "ml-out");
    char prefix[64];
    (void)snprintf(prefix, sizeof(prefix), "jobs/%s", id);
    cr_assert_str_eq(env_str(env, "OUTPUT_PREFIX"), prefix);
    cr_assert_str_eq(env_str(env, "COMPUTE_TYPE"), "gpu");
    cr_assert_str_eq(env_str(env, "SCRIPT_KEY"), "train.py");
    cr_assert_str_eq(env_str(env, "TRIGGER_USER"), "ann");
    cr_assert_str_eq(env_str(env, "TRIGGER_PROJECT"), "vision");
    cr_assert_str_eq(env_str(env, "TRIGGER_EXPERIMENT"), "e7");
    cr_assert_str_eq(env_str(env, "AWS_DEFAULT_REGION"), "eu-west-1");
    cr_assert_str_eq(env_str(env, "LR"), "0.1", "the job's own env is added");
    cr_assert_str_eq(env_str(env, "JOB_ID"), id, "the contract wins over the job's env");
    cr_assert_str_eq(env_str(env, "ML_OUTPUT_DIR"), "/workspace/output");
    cr_assert_null(json_object_get(env, "OPERATION"), "no operation, no OPERATION");
    cr_assert_eq(json_object_size(env), 12, "11 of the contract and LR");
    json_decref(env);
    json_decref(job);
}

Test(jobs_jobenv, environment_without_buckets_region_or_metadata_is_still_complete)
{
    struct gw_config cfg = {0};
    json_t *job = json_pack("{s:s,s:s,s:s,s:s}", "id", id, "compute_type", "cpu", "script_key",
                            "a.py", "operation", "evaluate");
    cr_assert_not_null(job);
    json_t *env = jobs_environment(&cfg, job, NULL, "");
    cr_assert_str_eq(env_str(env, "ML_INPUT_BUCKET"), "");
    cr_assert_str_eq(env_str(env, "ML_OUTPUT_BUCKET"), "");
    cr_assert_str_eq(env_str(env, "TRIGGER_USER"), "");
    cr_assert_str_eq(env_str(env, "TRIGGER_PROJECT"), "");
    cr_assert_str_eq(env_str(env, "TRIGGER_EXPERIMENT"), "");
    cr_assert_str_eq(env_str(env, "OPERATION"), "evaluate");
    cr_assert_str_eq(env_str(env, "ML_OUTPUT_DIR"), "");
    cr_assert_null(json_object_get(env, "AWS_DEFAULT_REGION"), "no region, no AWS_DEFAULT_REGION");
    json_decref(env);
    json_decref(job);
}
