/*
 * test_pipeline.c — unit tests for jobs/pipeline.c: what one step of a run
 * becomes (one job, an array, or one job per matrix combination).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "jobs/pipeline.h"

static json_t *fanout_of(const char *step_json)
{
    json_t *step = json_loads(step_json, 0, NULL);
    cr_assert_not_null(step);
    json_t *out = jobs_pipeline_fanout(step);
    json_decref(step);
    return out;
}

Test(pipeline, a_plain_step_is_one_job_with_nothing_added)
{
    json_t *f = fanout_of("{\"name\": \"a\"}");
    cr_assert_eq(json_array_size(f), 1);
    cr_assert_eq(json_object_size(json_array_get(f, 0)), 0);
    json_decref(f);
}

Test(pipeline, an_array_is_n_jobs_with_their_index_and_size)
{
    json_t *f = fanout_of("{\"name\": \"a\", \"array_size\": 3}");
    cr_assert_eq(json_array_size(f), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(f, i);
        cr_assert_eq(json_integer_value(json_object_get(e, "array_index")), (json_int_t)i);
        char want[4];
        snprintf(want, sizeof(want), "%zu", i);
        json_t *env = json_object_get(e, "env");
        cr_assert_str_eq(json_string_value(json_object_get(env, "ARRAY_INDEX")), want);
        cr_assert_str_eq(json_string_value(json_object_get(env, "ARRAY_SIZE")), "3");
    }
    json_decref(f);
}

Test(pipeline, a_matrix_is_every_combination_sorted_by_name_the_last_varying_fastest)
{
    json_t *f =
        fanout_of("{\"matrix\": {\"LR\": [\"0.1\", \"0.01\"], \"BS\": [\"8\", \"16\", \"32\"]}}");
    cr_assert_eq(json_array_size(f), 6);
    const char *want[6][2] = {{"8", "0.1"},   {"8", "0.01"}, {"16", "0.1"},
                              {"16", "0.01"}, {"32", "0.1"}, {"32", "0.01"}};
    for (size_t i = 0; i < 6; i++) {
        json_t *m = json_object_get(json_array_get(f, i), "matrix");
        json_t *env = json_object_get(json_array_get(f, i), "env");
        cr_assert_str_eq(json_string_value(json_object_get(m, "BS")), want[i][0], "combo %zu", i);
        cr_assert_str_eq(json_string_value(json_object_get(m, "LR")), want[i][1], "combo %zu", i);
        cr_assert(json_equal(m, env));
    }
    json_decref(f);
}

Test(pipeline, out_of_range_fan_outs_give_nothing)
{
    cr_assert_null(fanout_of("{\"array_size\": 1}"));
    cr_assert_null(fanout_of("{\"array_size\": 1001}"));
    cr_assert_null(fanout_of("{\"matrix\": {\"A\": []}}"));
    json_t *big =
        json_loads("{\"A\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\"],"
                   " \"B\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\"],"
                   " \"C\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\"]}",
                   0, NULL);
    cr_assert_eq(jobs_matrix_size(big), 1000);
    json_array_append_new(json_object_get(big, "C"), json_string("11"));
    cr_assert_eq(jobs_matrix_size(big), JOBS_FANOUT_MAX + 1);
    json_decref(big);
}
