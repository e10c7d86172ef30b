/*
 * resources.c — this machine's vCPUs, memory and GPU slots (resources.h).
 *
 * Counts GPUs with nvidia-smi or the /dev/nvidia<N> files, reads
 * MemAvailable and the online cores, and names GPU slots after
 * CUDA_VISIBLE_DEVICES. Detection runs once, at the executor's start; it
 * does not watch the machine afterwards nor account for running jobs.
 */
#include "jobs/resources.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"

#include "common/poison.h"

static long long count_nvidia_smi(void)
{
    FILE *p = popen("nvidia-smi -L 2>/dev/null", "r");
    if (p == NULL)
        return 0;
    char line[512];
    long long n = 0;
    while (fgets(line, sizeof(line), p) != NULL)
        if (strncmp(line, "GPU ", 4) == 0)
            n++;
    (void)pclose(p);
    return n;
}

static long long count_nvidia_devices(void)
{
    DIR *d = opendir("/dev");
    if (d == NULL)
        return 0;
    long long n = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *s = de->d_name;
        if (strncmp(s, "nvidia", 6) != 0 || s[6] == '\0')
            continue;
        int digits = 1;
        for (const char *q = s + 6; *q != '\0'; q++)
            digits &= *q >= '0' && *q <= '9';
        n += digits;
    }
    closedir(d);
    return n;
}

static long long mem_available_mib(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (f == NULL)
        return 1024;
    char line[256];
    long long kb = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            break;
    (void)fclose(f);
    return kb > 0 ? kb / 1024 : 1024;
}

void jobs_resources_name_gpus(struct jobs_resources *r, long long gpus, const char *visible)
{
    int named = 0;
    if (visible != NULL && visible[0] != '\0') {
        char copy[1024];
        gw_fmt(copy, sizeof(copy), "%s", visible);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t != NULL && named < JOBS_MAX_GPUS;
             t = strtok_r(NULL, ",", &save))
            gw_fmt(r->gpu_names[named++], sizeof(r->gpu_names[0]), "%s", t);
        if (gpus > named)
            gpus = named;
    }
    if (gpus > JOBS_MAX_GPUS)
        gpus = JOBS_MAX_GPUS;
    for (int i = named; i < gpus; i++)
        gw_fmt(r->gpu_names[i], sizeof(r->gpu_names[0]), "%d", i);
    r->gpus = gpus;
}

void jobs_resources_detect(struct jobs_resources *out, const struct gw_config *cfg)
{
    long long gpus = cfg->local_gpus;
    out->gpus_from = "MLGW_LOCAL_GPUS";
    if (gpus < 0) {
        gpus = count_nvidia_smi();
        out->gpus_from = "nvidia-smi";
        if (gpus == 0) {
            gpus = count_nvidia_devices();
            out->gpus_from = "/dev/nvidia*";
        }
    }
    jobs_resources_name_gpus(out, gpus, getenv("CUDA_VISIBLE_DEVICES"));
    out->vcpus = cfg->local_vcpus > 0 ? cfg->local_vcpus : sysconf(_SC_NPROCESSORS_ONLN);
    if (out->vcpus < 1)
        out->vcpus = 1;
    out->memory_mib = cfg->local_memory > 0 ? cfg->local_memory : mem_available_mib();
}
