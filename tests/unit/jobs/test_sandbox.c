/*
 * test_sandbox.c — unit tests for jobs/sandbox.c: the command line of a
 * sandboxed attempt (what is bound, how, and as whom), its limits, and
 * finding programs. Nothing is started here (the integration tests run real
 * sandboxes: tests/integration/test_sandbox.c).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/sandbox.h"

static struct jobs_sandbox sandbox(int as_root)
{
    struct jobs_sandbox sb;
    memset(&sb, 0, sizeof(sb));
    sb.on = 1;
    sb.as_root = as_root;
    sb.uid = as_root ? 999 : JOBS_SANDBOX_NOBODY;
    sb.gid = as_root ? 995 : JOBS_SANDBOX_NOBODY;
    strcpy(sb.bwrap, "/usr/bin/bwrap");
    strcpy(sb.setpriv, "/usr/bin/setpriv");
    jobs_strv_add(&sb.base, sb.bwrap);
    jobs_strv_add(&sb.base, "--unshare-pid");
    return sb;
}

static const struct jobs_sandbox_attempt at = {
    .job_id = "0190a3a4-0000-7000-8000-000000000001",
    .work_dir = "/srv/mlgw/local/work/0190a3a4-0000-7000-8000-000000000001",
    .outputs_dir = "/srv/mlgw/local/output",
    .output_dir = "/srv/mlgw/local/output/jobs/0190a3a4-0000-7000-8000-000000000001",
    .input_dir = "/srv/mlgw/local/input",
    .cache_dir = "/srv/mlgw/local/cache",
    .entrypoint = "/opt/ml-gateway/images/entrypoint/entrypoint.py",
    .python = "/usr/bin/python3",
    .ro_files = {"/etc/ssl/custom-ca.pem", NULL},
};

/* The index of the first "a b c" run of arguments in sv, or -1. */
static long find3(const struct jobs_strv *sv, const char *a, const char *b, const char *c)
{
    for (size_t i = 0; i + 2 < sv->n; i++)
        if (strcmp(sv->v[i], a) == 0 && strcmp(sv->v[i + 1], b) == 0 &&
            (c == NULL || strcmp(sv->v[i + 2], c) == 0))
            return (long)i;
    return -1;
}

static long find1(const struct jobs_strv *sv, const char *a)
{
    for (size_t i = 0; i < sv->n; i++)
        if (strcmp(sv->v[i], a) == 0)
            return (long)i;
    return -1;
}

Test(jobs_sandbox, an_attempt_sees_its_own_directories_at_their_places)
{
    struct jobs_sandbox sb = sandbox(1);
    struct jobs_strv cmd = {0};
    jobs_sandbox_command(&cmd, &sb, &at);
    cr_assert(!cmd.failed);
    cr_assert_null(cmd.v[cmd.n]);
    cr_assert_str_eq(cmd.v[0], "/usr/bin/bwrap");
    cr_assert_str_eq(cmd.v[1], "--unshare-pid", "the shared options come first");
    cr_assert(find3(&cmd, "--setenv", "JOB_ID", at.job_id) > 0);
    long tmp = find3(&cmd, "--bind",
                     "/srv/mlgw/local/work/0190a3a4-0000-7000-8000-000000000001/tmp", "/tmp");
    cr_assert(tmp > 0, "the attempt's tmp/ is its /tmp");
    long work = find3(&cmd, "--bind", at.work_dir, at.work_dir);
    cr_assert(work > tmp, "/tmp is bound before what lies below it");
    long outputs = find3(&cmd, "--ro-bind", at.outputs_dir, at.outputs_dir);
    cr_assert(outputs > 0, "what jobs published, read-only");
    cr_assert(find3(&cmd, "--bind", at.output_dir, at.output_dir) > outputs,
              "its own output directory, writable, on top");
    cr_assert(find3(&cmd, "--ro-bind", at.input_dir, at.input_dir) > 0);
    cr_assert(find3(&cmd, "--bind", at.cache_dir, at.cache_dir) > 0);
    cr_assert(find3(&cmd, "--ro-bind", at.entrypoint, at.entrypoint) > 0, "the entrypoint alone");
    cr_assert(find3(&cmd, "--ro-bind-try", "/etc/ssl/custom-ca.pem", NULL) > 0);
    cr_assert(find3(&cmd, "--perms", "0755", "--dir") > 0, "directories above are 0755");
    cr_assert(find3(&cmd, "--dir", "/srv/mlgw/local", NULL) > 0);
    cr_assert_eq(find3(&cmd, "--bind", "/srv/mlgw/local", "/srv/mlgw/local"), -1,
                 "never the whole root (logs, other jobs)");
    cr_assert_eq(find3(&cmd, "--ro-bind", "/opt/ml-gateway", NULL), -1, "never the repository");
    cr_assert_eq(find1(&cmd, "/usr/bin/python3") > 0, 1);
    cr_assert_eq(find3(&cmd, "--ro-bind", "/usr/bin/python3", NULL), -1,
                 "a system interpreter is there already");
    cr_assert_eq(find1(&cmd, "--unshare-net"), -1, "jobs keep the network");
    cr_assert_eq(find1(&cmd, "--dev-bind-try"), -1, "no GPU devices for a CPU job");
    long sep = find1(&cmd, "--");
    cr_assert(find3(&cmd, "--chdir", at.work_dir, "--") == sep - 2);
    cr_assert_str_eq(cmd.v[sep + 1], "/usr/bin/setpriv");
    cr_assert(find1(&cmd, "--reuid=999") > sep && find1(&cmd, "--regid=995") > sep);
    cr_assert(find1(&cmd, "--no-new-privs") > sep && find1(&cmd, "--bounding-set=-all") > sep);
    cr_assert_str_eq(cmd.v[cmd.n - 2], "/usr/bin/python3");
    cr_assert_str_eq(cmd.v[cmd.n - 1], at.entrypoint);
    jobs_strv_dispose(&cmd);
    jobs_strv_dispose(&sb.base);
}

Test(jobs_sandbox, unprivileged_the_interpreter_runs_at_once_and_without_outputs_nothing_is_bound)
{
    struct jobs_sandbox sb = sandbox(0);
    struct jobs_sandbox_attempt cpu = at;
    cpu.output_dir = NULL;
    struct jobs_strv cmd = {0};
    jobs_sandbox_command(&cmd, &sb, &cpu);
    long sep = find1(&cmd, "--");
    cr_assert_str_eq(cmd.v[sep + 1], "/usr/bin/python3", "no setpriv");
    cr_assert_eq(find1(&cmd, "/usr/bin/setpriv"), -1);
    cr_assert_eq(find3(&cmd, "--bind", at.output_dir, NULL), -1);
    jobs_strv_dispose(&cmd);
    jobs_strv_dispose(&sb.base);
}

Test(jobs_sandbox, limits_follow_the_jobs_memory)
{
    int res[4];
    struct rlimit lim[4];
    jobs_sandbox_limits(res, lim, 2048, 1 << 20);
    cr_assert_eq(res[0], RLIMIT_DATA);
    cr_assert_eq(lim[0].rlim_cur, (rlim_t)(2 * 2048 + JOBS_SANDBOX_DATA_HEADROOM_MIB) << 20);
    cr_assert_eq(lim[0].rlim_max, lim[0].rlim_cur);
    cr_assert_eq(res[1], RLIMIT_NPROC);
    cr_assert_eq(lim[1].rlim_cur, JOBS_SANDBOX_NPROC);
    cr_assert_eq(res[2], RLIMIT_NOFILE);
    cr_assert_eq(lim[2].rlim_cur, JOBS_SANDBOX_NOFILE);
    cr_assert_eq(res[3], RLIMIT_CORE);
    cr_assert_eq(lim[3].rlim_cur, 0);
    jobs_sandbox_limits(res, lim, 64, 1024);
    cr_assert_eq(lim[2].rlim_cur, 1024, "never above the gateway's own hard limit");
}

Test(jobs_sandbox, programs_are_found_as_execvp_would)
{
    char path[PATH_MAX];
    cr_assert_eq(jobs_sandbox_find(path, sizeof(path), "sh"), GW_OK);
    cr_assert(path[0] == '/' && strstr(path, "/sh") != NULL, "%s", path);
    cr_assert_eq(jobs_sandbox_find(path, sizeof(path), "/nonexistent/bwrap"), GW_ENOTFOUND);
    cr_assert_eq(jobs_sandbox_find(path, sizeof(path), "no-such-program-here"), GW_ENOTFOUND);
    cr_assert_eq(jobs_sandbox_init_pid(getpid()), 0, "a process without children has none");
}
