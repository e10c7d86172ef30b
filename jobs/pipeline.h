/*
 * pipeline.h — the pipeline engine's planning half: what jobs one step of a
 * run becomes. A step without fan-out is one job; `array_size` N is N jobs,
 * each with ARRAY_INDEX and ARRAY_SIZE in its environment; a `matrix` is one
 * job per combination of its values, each with those values in its
 * environment. The other half, which advances a run when one of its jobs
 * ends, runs inside the database, in the transaction that ends the job
 * (mlgw_pipeline_job_changed, migrations/0009_pipelines.sql), so that no
 * path that ends a job — local executor, callback, reconciler, cancel — can
 * leave a run behind or start a step twice.
 *
 * Pure functions on caller-owned values; safe from any thread.
 */
#ifndef MLGW_JOBS_PIPELINE_H
#define MLGW_JOBS_PIPELINE_H

#include <jansson.h>

/* At most this many jobs per step, for array_size and for a matrix. */
enum { JOBS_FANOUT_MAX = 1000 };

/* The number of matrix combinations (the product of the value counts),
 * stopping at JOBS_FANOUT_MAX + 1; 0 when matrix is not an object of
 * non-empty arrays. */
long jobs_matrix_size(json_t *matrix);

/* The fan-out entries of a step (new array: json_decref it), one per job:
 * {} for a plain step; {"array_index": i, "env": {"ARRAY_INDEX": "i",
 * "ARRAY_SIZE": "n"}} for array_size n; {"matrix": {...}, "env": {...}} for
 * each matrix combination, names in sorted order, the first varying slowest.
 * NULL when the step's array_size or matrix is out of range (validated
 * before) or memory runs out. */
json_t *jobs_pipeline_fanout(json_t *step);

#endif
