/*
 * resources.h — what this machine offers local jobs: vCPUs, memory and GPU
 * slots, found once when the local executor starts.
 *
 * GPUs come from MLGW_LOCAL_GPUS, else `nvidia-smi -L`, else the
 * /dev/nvidia<N> device files; GPU slot i is the CUDA device named
 * gpu_names[i]: the gateway's own CUDA_VISIBLE_DEVICES entries when it has
 * them (never more slots than entries), else 0..n-1. vCPUs come from
 * MLGW_LOCAL_VCPUS, else the online cores; memory from MLGW_LOCAL_MEMORY,
 * else MemAvailable. Nothing here tracks what running jobs use
 * (scheduler.h does).
 *
 * Thread-safety: no shared state; a struct jobs_resources belongs to its
 * caller.
 */
#ifndef MLGW_JOBS_RESOURCES_H
#define MLGW_JOBS_RESOURCES_H

#include "common/config.h"

enum {
    JOBS_MAX_GPUS = 64,
    JOBS_GPU_NAME_MAX = 24, /* bytes of one CUDA device name, '\0' included */
};

struct jobs_resources {
    long long vcpus, memory_mib, gpus;
    char gpu_names[JOBS_MAX_GPUS][JOBS_GPU_NAME_MAX]; /* GPU slot i is CUDA device gpu_names[i] */
    const char *gpus_from; /* static: "MLGW_LOCAL_GPUS", "nvidia-smi" or "/dev/nvidia*" */
};

/* Fills out from cfg and this machine (runs nvidia-smi when cfg->local_gpus
 * is -1; reads /dev, /proc/meminfo and CUDA_VISIBLE_DEVICES). Cannot fail:
 * what cannot be read counts as none (GPUs) or 1024 MiB (memory). */
void jobs_resources_detect(struct jobs_resources *out, const struct gw_config *cfg);

/* Names the GPU slots of r: the comma-separated entries of visible (the
 * gateway's CUDA_VISIBLE_DEVICES; NULL or "" when it has none), then 0, 1, …
 * for the rest. Sets r->gpus to gpus, cut to the number of entries when
 * visible has any, and to JOBS_MAX_GPUS. Pure. */
void jobs_resources_name_gpus(struct jobs_resources *r, long long gpus, const char *visible);

#endif
