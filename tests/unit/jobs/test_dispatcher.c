/*
 * server/dispatcher.c: the AWS Batch job name built from project and job id.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "jobs/dispatcher.h"

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

Test(server_dispatcher, job_name_is_project_then_the_gateway_job_id)
{
    char out[129];
    jobs_batch_job_name(out, "data-pipeline", id);
    cr_assert_str_eq(out, "data-pipeline-01a22429-8619-75a4-90bc-3da40c49c5bd");
}

Test(server_dispatcher, job_name_replaces_what_batch_refuses_and_starts_alphanumeric)
{
    char out[129];
    jobs_batch_job_name(out, "__model training!/v2", id);
    cr_assert_str_eq(out, "model-training--v2-01a22429-8619-75a4-90bc-3da40c49c5bd");
    cr_assert(batch_name_ok(out));
    jobs_batch_job_name(out, "ünïcode", id);
    cr_assert(batch_name_ok(out), "%s", out);
    cr_assert(strstr(out, id) != NULL);
}

Test(server_dispatcher, job_name_without_a_usable_project_is_mlgw_and_the_id)
{
    char out[129];
    jobs_batch_job_name(out, NULL, id);
    cr_assert_str_eq(out, "mlgw-01a22429-8619-75a4-90bc-3da40c49c5bd");
    jobs_batch_job_name(out, "!!!", id);
    cr_assert_str_eq(out, "mlgw-01a22429-8619-75a4-90bc-3da40c49c5bd");
}

Test(server_dispatcher, a_long_project_is_cut_so_the_id_always_fits)
{
    char project[300];
    memset(project, 'p', sizeof(project) - 1);
    project[sizeof(project) - 1] = '\0';
    char out[129];
    jobs_batch_job_name(out, project, id);
    cr_assert(batch_name_ok(out), "%zu chars", strlen(out));
    cr_assert(strstr(out, id) != NULL, "the id survives");
}
