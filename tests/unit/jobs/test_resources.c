/*
 * test_resources.c — unit tests for jobs/resources.c: how GPU slots are
 * named after the gateway's CUDA_VISIBLE_DEVICES, and how many there are.
 * Detection itself (nvidia-smi, /dev, /proc) depends on the machine and is
 * covered by the integration tests through MLGW_LOCAL_GPUS.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "jobs/resources.h"

Test(jobs_resources, without_cuda_visible_devices_slots_are_named_0_to_n_minus_1)
{
    struct jobs_resources r;
    memset(&r, 0, sizeof(r));
    jobs_resources_name_gpus(&r, 3, NULL);
    cr_expect_eq(r.gpus, 3);
    cr_expect_str_eq(r.gpu_names[0], "0");
    cr_expect_str_eq(r.gpu_names[1], "1");
    cr_expect_str_eq(r.gpu_names[2], "2");
    jobs_resources_name_gpus(&r, 2, "");
    cr_expect_eq(r.gpus, 2, "an empty CUDA_VISIBLE_DEVICES is none");
}

Test(jobs_resources, cuda_visible_devices_names_the_slots_and_caps_their_number)
{
    struct jobs_resources r;
    memset(&r, 0, sizeof(r));
    jobs_resources_name_gpus(&r, 8, "2,GPU-3f1c,5");
    cr_expect_eq(r.gpus, 3, "never more slots than visible devices");
    cr_expect_str_eq(r.gpu_names[0], "2");
    cr_expect_str_eq(r.gpu_names[1], "GPU-3f1c");
    cr_expect_str_eq(r.gpu_names[2], "5");
}

Test(jobs_resources, fewer_gpus_than_visible_devices_take_the_first_ones)
{
    struct jobs_resources r;
    memset(&r, 0, sizeof(r));
    jobs_resources_name_gpus(&r, 1, "6,7");
    cr_expect_eq(r.gpus, 1);
    cr_expect_str_eq(r.gpu_names[0], "6");
}

Test(jobs_resources, empty_entries_of_cuda_visible_devices_are_skipped)
{
    struct jobs_resources r;
    memset(&r, 0, sizeof(r));
    jobs_resources_name_gpus(&r, 4, ",1,,3,");
    cr_expect_eq(r.gpus, 2);
    cr_expect_str_eq(r.gpu_names[0], "1");
    cr_expect_str_eq(r.gpu_names[1], "3");
    jobs_resources_name_gpus(&r, 4, ",,");
    cr_expect_eq(r.gpus, 0, "no entries at all: no GPUs");
}

Test(jobs_resources, no_more_than_64_slots)
{
    struct jobs_resources r;
    memset(&r, 0, sizeof(r));
    jobs_resources_name_gpus(&r, 100, NULL);
    cr_expect_eq(r.gpus, JOBS_MAX_GPUS);
    cr_expect_str_eq(r.gpu_names[63], "63");
    char many[400] = "";
    for (int i = 0; i < 70; i++) {
        size_t n = strlen(many);
        snprintf(many + n, sizeof(many) - n, "%s%d", i ? "," : "", i);
    }
    jobs_resources_name_gpus(&r, 100, many);
    cr_expect_eq(r.gpus, JOBS_MAX_GPUS);
    cr_expect_str_eq(r.gpu_names[63], "63");
}

Test(jobs_resources, configured_counts_are_taken_as_they_are)
{
    struct gw_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.local_gpus = 0;
    cfg.local_vcpus = 3;
    cfg.local_memory = 2048;
    struct jobs_resources r;
    memset(&r, 0, sizeof(r));
    jobs_resources_detect(&r, &cfg);
    cr_expect_eq(r.vcpus, 3);
    cr_expect_eq(r.memory_mib, 2048);
    cr_expect_eq(r.gpus, 0);
    cr_expect_str_eq(r.gpus_from, "MLGW_LOCAL_GPUS");
}
