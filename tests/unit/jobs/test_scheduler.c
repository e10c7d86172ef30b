/*
 * test_scheduler.c — unit tests for jobs/scheduler.c: what a job asks for,
 * misfits against the machine, the fit against what is free, and how GPU
 * slots are handed out and given back. No database.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "jobs/resources.h"
#include "jobs/scheduler.h"

/* 8 vCPUs, 16 GiB, 4 GPUs named after CUDA_VISIBLE_DEVICES=4,5,6,7. */
static void machine(struct jobs_sched *s)
{
    memset(s, 0, sizeof(*s));
    s->cap.vcpus = 8;
    s->cap.memory_mib = 16384;
    jobs_resources_name_gpus(&s->cap, 4, "4,5,6,7");
}

Test(jobs_scheduler, a_jobs_ask_is_its_vcpus_memory_and_gpus_and_missing_ones_are_zero)
{
    json_t *job = json_pack("{s:i,s:i,s:i}", "vcpus", 2, "memory", 4096, "gpus", 1);
    struct jobs_ask ask;
    jobs_sched_ask(&ask, job);
    cr_expect_eq(ask.vcpus, 2);
    cr_expect_eq(ask.memory_mib, 4096);
    cr_expect_eq(ask.gpus, 1);
    json_decref(job);
    job = json_pack("{s:i}", "vcpus", 3);
    jobs_sched_ask(&ask, job);
    cr_expect_eq(ask.vcpus, 3);
    cr_expect_eq(ask.memory_mib, 0);
    cr_expect_eq(ask.gpus, 0);
    json_decref(job);
}

Test(jobs_scheduler, a_job_within_the_machine_has_no_misfit)
{
    struct jobs_sched s;
    machine(&s);
    struct jobs_executor_misfit m[3];
    const struct jobs_ask all = {8, 16384, 4};
    cr_expect_eq(jobs_sched_misfits(&s.cap, &all, m), 0);
    char why[256] = "x";
    jobs_sched_misfit_reason(why, sizeof(why), &s.cap, &all);
    cr_expect_str_eq(why, "");
}

Test(jobs_scheduler, misfits_come_in_the_order_vcpus_memory_gpus_with_what_the_machine_has)
{
    struct jobs_sched s;
    machine(&s);
    struct jobs_executor_misfit m[3];
    const struct jobs_ask ask = {16, 16385, 5};
    cr_assert_eq(jobs_sched_misfits(&s.cap, &ask, m), 3);
    cr_expect_str_eq(m[0].field, "vcpus");
    cr_expect_str_eq(m[0].unit, "vCPUs");
    cr_expect_eq(m[0].want, 16);
    cr_expect_eq(m[0].have, 8);
    cr_expect_str_eq(m[1].field, "memory");
    cr_expect_str_eq(m[1].unit, "MiB of memory");
    cr_expect_eq(m[1].want, 16385);
    cr_expect_eq(m[1].have, 16384);
    cr_expect_str_eq(m[2].field, "gpus");
    cr_expect_str_eq(m[2].unit, "GPUs");
    cr_expect_eq(m[2].want, 5);
    cr_expect_eq(m[2].have, 4);
}

Test(jobs_scheduler, the_misfit_reason_names_the_first_misfit_only)
{
    struct jobs_sched s;
    machine(&s);
    char why[256];
    const struct jobs_ask gpus = {1, 1, 5};
    jobs_sched_misfit_reason(why, sizeof(why), &s.cap, &gpus);
    cr_expect_str_eq(why, "the job asks for 5 GPUs; this machine offers 4");
    const struct jobs_ask both = {9, 20000, 0};
    jobs_sched_misfit_reason(why, sizeof(why), &s.cap, &both);
    cr_expect_str_eq(why, "the job asks for 9 vCPUs; this machine offers 8");
}

Test(jobs_scheduler, a_job_fits_only_in_what_running_attempts_leave_free)
{
    struct jobs_sched s;
    machine(&s);
    const struct jobs_ask half = {4, 8192, 2};
    cr_assert(jobs_sched_fits(&s, &half));
    struct jobs_grant g1, g2;
    jobs_sched_take(&g1, &s, &half);
    cr_assert(jobs_sched_fits(&s, &half), "the other half is still free");
    jobs_sched_take(&g2, &s, &half);
    const struct jobs_ask one_cpu = {1, 0, 0};
    const struct jobs_ask one_mib = {0, 1, 0};
    const struct jobs_ask one_gpu = {0, 0, 1};
    cr_expect_not(jobs_sched_fits(&s, &one_cpu));
    cr_expect_not(jobs_sched_fits(&s, &one_mib));
    cr_expect_not(jobs_sched_fits(&s, &one_gpu));
    const struct jobs_ask nothing = {0, 0, 0};
    cr_expect(jobs_sched_fits(&s, &nothing));
    jobs_sched_release(&s, &g1);
    cr_expect(jobs_sched_fits(&s, &half));
    cr_expect_not(jobs_sched_fits(&s, &(struct jobs_ask){5, 0, 0}));
}

Test(jobs_scheduler, gpu_slots_go_lowest_free_first_under_their_cuda_names)
{
    struct jobs_sched s;
    machine(&s);
    struct jobs_grant a, b, c;
    jobs_sched_take(&a, &s, &(struct jobs_ask){1, 1, 1});
    jobs_sched_take(&b, &s, &(struct jobs_ask){1, 1, 2});
    cr_expect_eq(a.gpu_mask, 0x1);
    cr_expect_str_eq(a.visible, "4");
    cr_expect_eq(b.gpu_mask, 0x6);
    cr_expect_str_eq(b.visible, "5,6");
    cr_expect_eq(jobs_sched_gpus_used(&s), 3);
    jobs_sched_release(&s, &a);
    jobs_sched_take(&c, &s, &(struct jobs_ask){1, 1, 2});
    cr_expect_eq(c.gpu_mask, 0x9, "slot 0, freed, then slot 3");
    cr_expect_str_eq(c.visible, "4,7");
    cr_expect_eq(s.used_vcpus, 2);
    cr_expect_eq(s.used_memory_mib, 2);
}

Test(jobs_scheduler, a_job_without_gpus_gets_none_and_an_empty_visible_list)
{
    struct jobs_sched s;
    machine(&s);
    struct jobs_grant g;
    jobs_sched_take(&g, &s, &(struct jobs_ask){2, 512, 0});
    cr_expect_eq(g.gpu_mask, 0);
    cr_expect_str_eq(g.visible, "");
    cr_expect_eq(g.vcpus, 2);
    cr_expect_eq(g.memory_mib, 512);
    cr_expect_eq(jobs_sched_gpus_used(&s), 0);
}

Test(jobs_scheduler, releasing_every_grant_gives_back_an_idle_machine)
{
    struct jobs_sched s;
    machine(&s);
    struct jobs_grant g[4];
    for (int i = 0; i < 4; i++)
        jobs_sched_take(&g[i], &s, &(struct jobs_ask){2, 4096, 1});
    cr_expect_eq(jobs_sched_gpus_used(&s), 4);
    for (int i = 3; i >= 0; i--)
        jobs_sched_release(&s, &g[i]);
    cr_expect_eq(s.used_vcpus, 0);
    cr_expect_eq(s.used_memory_mib, 0);
    cr_expect_eq(s.used_gpus, 0);
}
