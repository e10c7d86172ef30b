/*
 * test_spawn.c — unit tests for jobs/spawn.c: an attempt that cannot open
 * its descriptors leaves its job untouched (commit is never called) and
 * nothing behind, so the executor keeps the job at the head of its queue.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "jobs/spawn.h"

static int commits;

static int count_commit(void *ctx, struct jobs_attempt *a)
{
    (void)ctx;
    (void)a;
    commits++;
    return GW_OK;
}

Test(jobs_spawn, running_out_of_descriptors_leaves_the_job_untouched)
{
    char root[] = "/tmp/mlgw-spawn-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    struct gw_err err = {0};
    struct gw_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.local_root = root;
    cr_assert_eq(jobs_spawn_make_root(&cfg, &err), GW_OK, "%s", err.msg);
    char python[] = "python3", entrypoint[] = "/nonexistent/entrypoint.py";
    cfg.local_python = python;
    cfg.local_entrypoint = entrypoint;
    struct jobs_sandbox sb;
    memset(&sb, 0, sizeof(sb)); /* off: the descriptors are the point here */
    json_t *job = json_pack("{s:s, s:i, s:i, s:s}", "id", "0190a3a4-0000-7000-8000-00000000000e",
                            "attempts", 0, "max_attempts", 1, "output_uri", "file:///nowhere/");
    struct jobs_attempt *a = NULL;
    cr_assert_eq(jobs_attempt_new(&a, job), GW_OK);

    /* Room for the log and /dev/null, not for the pipe. */
    int next = dup(0);
    cr_assert(next >= 0);
    close(next);
    struct rlimit lim;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
    struct rlimit low = {(rlim_t)next + 2, lim.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    int rc = jobs_spawn(a, &cfg, &sb, job, count_commit, NULL, &err);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);

    cr_assert_eq(rc, GW_EUNAVAIL, "%s", err.msg);
    cr_assert(strstr(err.msg, "Too many open files") != NULL, "%s", err.msg);
    cr_assert_eq(commits, 0, "the job was not marked RUNNING");
    cr_assert_eq(a->log_fd, -1);
    cr_assert_eq(a->out_fd, -1);
    cr_assert_neq(access(a->work_dir, F_OK), 0, "its work directory is gone");
    jobs_attempt_free(a);
    json_decref(job);
    jobs_spawn_remove_tree(root);
}
