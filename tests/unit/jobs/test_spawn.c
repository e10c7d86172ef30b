/*
 * test_spawn.c — unit tests for jobs/spawn.c: an attempt that cannot open
 * its descriptors leaves its job untouched (commit is never called) and
 * nothing behind, so the executor keeps the job at the head of its queue;
 * a child forked for a job never runs the gateway's signal handlers.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
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

/* A handler like the gateway's: a SIGTERM writes to a pipe its main loop
 * reads, which starts the shutdown. */
static int term_pipe[2] = {-1, -1};

static void on_term(int sig)
{
    (void)sig;
    char c = 's';
    (void)!write(term_pipe[1], &c, 1);
}

Test(jobs_spawn, a_signal_to_a_forked_child_never_runs_the_gateways_handler)
{
    cr_assert_eq(pipe(term_pipe), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGTERM, &sa, NULL), 0);
    sigset_t before, after;
    cr_assert_eq(pthread_sigmask(SIG_SETMASK, NULL, &before), 0);

    pid_t pid = jobs_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* The child, before it would exec: SIGTERM must end it, not reach
         * the parent's pipe. */
        raise(SIGTERM);
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
              "the child ended by SIGTERM's default action (status %#x)", status);
    int fl = fcntl(term_pipe[0], F_GETFL);
    cr_assert_eq(fcntl(term_pipe[0], F_SETFL, fl | O_NONBLOCK), 0);
    char c;
    cr_assert_eq(read(term_pipe[0], &c, 1), -1, "nothing reached the gateway's pipe");
    cr_assert_eq(pthread_sigmask(SIG_SETMASK, NULL, &after), 0);
    for (int sig = 1; sig < NSIG; sig++)
        cr_assert_eq(sigismember(&after, sig), sigismember(&before, sig),
                     "the parent's mask is back (signal %d)", sig);
    signal(SIGTERM, SIG_DFL);
    close(term_pipe[0]);
    close(term_pipe[1]);
}
