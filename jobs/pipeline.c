/*
 * pipeline.c — fan-out of a pipeline step into its jobs (pipeline.h). It
 * builds values only; it stores and dispatches nothing.
 */
#include "jobs/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#include "common/poison.h"

long jobs_matrix_size(json_t *matrix)
{
    if (!json_is_object(matrix) || json_object_size(matrix) == 0)
        return 0;
    long n = 1;
    const char *name;
    json_t *values;
    json_object_foreach(matrix, name, values)
    {
        (void)name;
        if (!json_is_array(values) || json_array_size(values) == 0)
            return 0;
        n *= (long)json_array_size(values);
        if (n > JOBS_FANOUT_MAX)
            return JOBS_FANOUT_MAX + 1;
    }
    return n;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *array_fanout(long n)
{
    json_t *out = json_array();
    char size[24];
    gw_fmt(size, sizeof(size), "%ld", n);
    for (long i = 0; out != NULL && i < n; i++) {
        char idx[24];
        gw_fmt(idx, sizeof(idx), "%ld", i);
        json_t *e = json_pack("{s:I,s:{s:s,s:s}}", "array_index", (json_int_t)i, "env",
                              "ARRAY_INDEX", idx, "ARRAY_SIZE", size);
        if (e == NULL || json_array_append_new(out, e) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* Combination k of the matrix: the index into each name's values, the last
 * name varying fastest. */
static json_t *matrix_entry(json_t *matrix, const char *const *names, size_t nnames, long k)
{
    json_t *combo = json_object();
    for (size_t i = nnames; combo != NULL && i-- > 0;) {
        json_t *values = json_object_get(matrix, names[i]);
        long count = (long)json_array_size(values);
        json_t *v = json_array_get(values, (size_t)(k % count));
        k /= count;
        if (json_object_set(combo, names[i], v) != 0) {
            json_decref(combo);
            combo = NULL;
        }
    }
    if (combo == NULL)
        return NULL;
    return json_pack("{s:o,s:O}", "matrix", combo, "env", combo);
}

static json_t *matrix_fanout(json_t *matrix)
{
    long n = jobs_matrix_size(matrix);
    if (n < 1 || n > JOBS_FANOUT_MAX)
        return NULL;
    size_t nnames = json_object_size(matrix);
    const char **names = calloc(nnames, sizeof(*names));
    json_t *out = names ? json_array() : NULL;
    size_t i = 0;
    const char *name;
    json_t *values;
    json_object_foreach(matrix, name, values)
    {
        (void)values;
        if (names != NULL)
            names[i++] = name;
    }
    if (names != NULL)
        qsort((void *)names, nnames, sizeof(*names), cmp_names);
    for (long k = 0; out != NULL && k < n; k++) {
        json_t *e = matrix_entry(matrix, names, nnames, k);
        if (e == NULL || json_array_append_new(out, e) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    free((void *)names);
    return out;
}

json_t *jobs_pipeline_fanout(json_t *step)
{
    json_t *size = json_object_get(step, "array_size");
    json_t *matrix = json_object_get(step, "matrix");
    if (size != NULL && !json_is_null(size)) {
        json_int_t n = json_integer_value(size);
        if (!json_is_integer(size) || n < 2 || n > JOBS_FANOUT_MAX)
            return NULL;
        return array_fanout((long)n);
    }
    if (matrix != NULL && !json_is_null(matrix))
        return matrix_fanout(matrix);
    return json_pack("[{}]");
}
