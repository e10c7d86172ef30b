/*
 * test_supervise.c — unit tests for jobs/supervise.c: how an attempt's exit
 * status, the reason the gateway stopped it, and the attempts left map to
 * the job's end. No processes are started.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "jobs/spawn.h"
#include "jobs/supervise.h"

/* waitpid statuses, as Linux encodes them. */
static int exited(int code)
{
    return (code & 0xff) << 8;
}

static int killed(int sig)
{
    return sig & 0x7f;
}

static struct jobs_attempt attempt(int n, int max, enum jobs_stop stop)
{
    struct jobs_attempt a;
    memset(&a, 0, sizeof(a));
    a.attempt = n;
    a.max_attempts = max;
    a.timeout_s = 30;
    a.stop = stop;
    return a;
}

Test(jobs_supervise, an_attempt_that_exits_0_succeeds)
{
    struct jobs_attempt a = attempt(1, 3, JOBS_STOP_NONE);
    struct jobs_end end;
    jobs_supervise_end(&end, &a, exited(0));
    cr_expect_str_eq(end.status, "SUCCEEDED");
    cr_expect_eq(end.requeue, 0);
    cr_expect_eq(end.exit_code, 0);
    cr_expect_str_eq(end.how, "exited with code 0");
    cr_expect_str_eq(end.reason, "the job exited with code 0");
}

Test(jobs_supervise, a_failed_attempt_with_attempts_left_goes_back_to_the_queue)
{
    struct jobs_attempt a = attempt(1, 3, JOBS_STOP_NONE);
    struct jobs_end end;
    jobs_supervise_end(&end, &a, exited(2));
    cr_expect_str_eq(end.status, "RUNNABLE");
    cr_expect_eq(end.requeue, 1);
    cr_expect_eq(end.exit_code, 2);
    cr_expect_str_eq(end.reason, "attempt 1 of 3 exited with code 2; retrying");
}

Test(jobs_supervise, the_last_failed_attempt_fails_the_job)
{
    struct jobs_attempt a = attempt(3, 3, JOBS_STOP_NONE);
    struct jobs_end end;
    jobs_supervise_end(&end, &a, exited(127));
    cr_expect_str_eq(end.status, "FAILED");
    cr_expect_eq(end.requeue, 0);
    cr_expect_eq(end.exit_code, 127);
    cr_expect_str_eq(end.reason, "the job exited with code 127");
}

Test(jobs_supervise, a_signal_counts_as_exit_code_128_plus_the_signal)
{
    struct jobs_attempt a = attempt(1, 1, JOBS_STOP_NONE);
    struct jobs_end end;
    jobs_supervise_end(&end, &a, killed(SIGKILL));
    cr_expect_str_eq(end.status, "FAILED");
    cr_expect_eq(end.exit_code, 128 + SIGKILL);
    cr_expect_str_eq(end.how, "was killed by signal 9");
    cr_expect_str_eq(end.reason, "the job was killed by signal 9");
}

Test(jobs_supervise, a_timed_out_job_fails_and_is_not_retried)
{
    struct jobs_attempt a = attempt(1, 3, JOBS_STOP_TIMEOUT);
    struct jobs_end end;
    jobs_supervise_end(&end, &a, killed(SIGTERM));
    cr_expect_str_eq(end.status, "FAILED");
    cr_expect_eq(end.requeue, 0);
    cr_expect_eq(end.exit_code, 128 + SIGTERM);
    cr_expect_str_eq(end.reason,
                     "timed out after 30 s (timeout_seconds); the attempt was killed by signal 15");
}

Test(jobs_supervise, a_cancelled_job_is_cancelled_whatever_its_exit_code)
{
    struct jobs_attempt a = attempt(1, 3, JOBS_STOP_CANCEL);
    struct jobs_end end;
    jobs_supervise_end(&end, &a, exited(0));
    cr_expect_str_eq(end.status, "CANCELLED");
    cr_expect_eq(end.requeue, 0);
    cr_expect_str_eq(end.reason, "cancelled; the attempt exited with code 0");
}

Test(jobs_supervise, a_shutdown_requeues_the_job_while_it_has_attempts_left)
{
    struct jobs_attempt a = attempt(1, 2, JOBS_STOP_SHUTDOWN);
    struct jobs_end end;
    jobs_supervise_end(&end, &a, exited(143));
    cr_expect_str_eq(end.status, "RUNNABLE");
    cr_expect_eq(end.requeue, 1);
    cr_expect_str_eq(end.reason,
                     "gateway stopped during attempt 1 of 2; it runs again after the restart");
    a = attempt(2, 2, JOBS_STOP_SHUTDOWN);
    jobs_supervise_end(&end, &a, exited(143));
    cr_expect_str_eq(end.status, "FAILED");
    cr_expect_eq(end.requeue, 0);
    cr_expect_str_eq(end.reason, "gateway stopped during attempt 2 of 2");
}

Test(jobs_supervise, an_attempt_that_finishes_during_the_shutdown_grace_succeeds)
{
    struct jobs_attempt a = attempt(1, 2, JOBS_STOP_SHUTDOWN);
    struct jobs_end end;
    jobs_supervise_end(&end, &a, exited(0));
    cr_expect_str_eq(end.status, "SUCCEEDED");
    cr_expect_eq(end.requeue, 0);
}
