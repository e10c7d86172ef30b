"""``batch_job``: submit the message's job to the GPU or the CPU Batch queue.

The message (the original pipeline's, and what the gateway publishes for ``dispatch: sns``)::

    {"trigger_type": "batch_job",
     "data": {"script_key": "jobs/train.py", "compute_type": "gpu",
              "vcpus": 16, "memory": 65536, "gpus": 4, "operation": "cleanup-cache",
              "job_id": "…", "args": [], "env": {}, "timeout_seconds": 3600, "max_attempts": 3},
     "metadata": {"user": "…", "project": "…", "experiment": "…"}}

Only ``script_key`` is required. ``compute_type`` defaults to ``gpu``; resources default
to the Terraform variables (``ml_gpu_job_vcpus``…) and a message may override each one.
The job gets the environment contract of API.md ("The job's environment contract"), the
same names and values the gateway gives the jobs it submits itself, and the same job name
and ``mlgw:*`` tags, so that the gateway's callbacks and reconciler recognise it.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from .base import BaseTrigger, TriggerError

#: Names a message's ``env`` cannot set: the job's environment contract.
RESERVED_ENV = frozenset({
    "ML_INPUT_BUCKET", "ML_OUTPUT_BUCKET", "OUTPUT_PREFIX", "COMPUTE_TYPE", "SCRIPT_KEY",
    "JOB_ID", "TRIGGER_USER", "TRIGGER_PROJECT", "TRIGGER_EXPERIMENT", "OPERATION",
    "ML_OUTPUT_DIR", "AWS_DEFAULT_REGION",
})
#: Names that change how a loader, interpreter or shell starts (as the gateway refuses).
REFUSED_ENV = re.compile(
    r"^(LD_.*|DYLD_.*|MALLOC_.*|BASH_FUNC_.*|GCONV_PATH|LOCPATH|NLSPATH|GLIBC_TUNABLES|PATH|"
    r"HOME|SHELL|ENV|BASH_ENV|SHELLOPTS|BASHOPTS|PS4|PROMPT_COMMAND|IFS|TMPDIR|PYTHON.*)$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
SCRIPT_KEY = re.compile(r"^[A-Za-z0-9._/-]{1,1024}$")
OPERATION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
OUTPUT_DIR = "/workspace/output"
COMPUTE_TYPES = ("gpu", "cpu")
MIN_ATTEMPT_SECONDS = 60  # Batch's floor for attemptDurationSeconds


def _int(data: Mapping[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = data.get(name, default)
    if value is None:
        value = default
    # bool is an int in Python: "vcpus": true is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TriggerError(f"data.{name} must be an integer")
    if not lo <= value <= hi:
        raise TriggerError(f"data.{name} must be between {lo} and {hi}, not {value}")
    return value


def _check_script_key(key: Any) -> str:
    if not isinstance(key, str) or not SCRIPT_KEY.match(key):
        raise TriggerError("data.script_key must be 1 to 1024 of letters, digits and . _ / -")
    if key.startswith("/") or "//" in key or ".." in key.split("/"):
        raise TriggerError("data.script_key must be a relative key without '..' or '//'")
    return key


def batch_job_name(project: str | None, job_id: str) -> str:
    """``<project>-<job id>`` as the gateway names its Batch jobs (jobs/jobenv.c)."""
    clean: list[str] = []
    for byte in (project or "").encode("utf-8"):  # bytes, as the C code walks them
        if len(clean) == 90:  # 90 + "-" + a 36-character id stays within Batch's 128
            break
        ch = chr(byte)
        alnum = byte < 128 and ch.isalnum()
        if not clean and not alnum:
            continue  # a name starts alphanumeric
        clean.append(ch if alnum or ch in "_-" else "-")
    return f"{''.join(clean) or 'mlgw'}-{job_id}"


class BatchJobTrigger(BaseTrigger):
    trigger_type = "batch_job"

    def validate(self) -> None:
        d = self.data
        s = self.settings
        self.script_key = _check_script_key(d.get("script_key"))
        compute = d.get("compute_type", "gpu")
        if compute not in COMPUTE_TYPES:
            raise TriggerError("data.compute_type must be gpu or cpu")
        self.compute_type = compute
        gpu = compute == "gpu"
        self.vcpus = _int(d, "vcpus", s.gpu_vcpus if gpu else s.cpu_vcpus, 1, s.max_vcpus)
        self.memory = _int(d, "memory", s.gpu_memory if gpu else s.cpu_memory, 4, s.max_memory)
        if gpu:
            self.gpus = _int(d, "gpus", s.gpu_gpus, 0, s.max_gpus)
        else:
            self.gpus = _int(d, "gpus", 0, 0, 0)  # a CPU job asking for a GPU is a mistake
        operation = d.get("operation")
        if operation is not None and (not isinstance(operation, str)
                                      or not OPERATION.match(operation)):
            raise TriggerError("data.operation must be 1 to 64 of letters, digits and . _ -")
        self.operation = operation
        job_id = d.get("job_id")
        if job_id is None:
            job_id = str(uuid.uuid4())
        elif not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise TriggerError("data.job_id must be 1 to 64 of letters, digits, _ and -")
        self.job_id = job_id
        self.args = self._args(d.get("args"))
        self.extra_env = self._env(d.get("env"))
        timeout = d.get("timeout_seconds")
        self.timeout = None if timeout is None else _int(
            d, "timeout_seconds", 0, MIN_ATTEMPT_SECONDS, 14 * 86400)
        self.attempts = _int(d, "max_attempts", 1, 1, 10)
        for key in ("user", "project", "experiment"):
            value = self.metadata.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > 256):
                raise TriggerError(f"metadata.{key} must be a string of at most 256 characters")

    @staticmethod
    def _args(args: Any) -> list[str]:
        if args is None:
            return []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise TriggerError("data.args must be a list of strings")
        return args

    @staticmethod
    def _env(env: Any) -> dict[str, str]:
        if env is None:
            return {}
        if not isinstance(env, Mapping):
            raise TriggerError("data.env must be an object of strings")
        for name, value in env.items():
            if not ENV_NAME.match(name) or not isinstance(value, str):
                raise TriggerError(f"data.env.{name}: names are [A-Za-z_][A-Za-z0-9_]*, "
                                   "values strings")
            if name in RESERVED_ENV or REFUSED_ENV.match(name):
                raise TriggerError(f"data.env.{name}: this name is reserved")
        return dict(env)

    def environment(self) -> dict[str, str]:
        """The job's environment contract (API.md), then the message's own names."""
        s = self.settings
        env = {
            "ML_INPUT_BUCKET": s.input_bucket,
            "ML_OUTPUT_BUCKET": s.output_bucket,
            "OUTPUT_PREFIX": f"jobs/{self.job_id}",
            "COMPUTE_TYPE": self.compute_type,
            "SCRIPT_KEY": self.script_key,
            "JOB_ID": self.job_id,
            "TRIGGER_USER": self.metadata.get("user") or "",
            "TRIGGER_PROJECT": self.metadata.get("project") or "",
            "TRIGGER_EXPERIMENT": self.metadata.get("experiment") or "",
        }
        if self.operation is not None:
            env["OPERATION"] = self.operation
        if s.region:
            env["AWS_DEFAULT_REGION"] = s.region
        env["ML_OUTPUT_DIR"] = OUTPUT_DIR
        env.update(self.extra_env)
        return env

    def submit_request(self) -> dict[str, Any]:
        """The SubmitJob parameters (also what the tests look at)."""
        s = self.settings
        gpu = self.compute_type == "gpu"
        resources = [{"type": "VCPU", "value": str(self.vcpus)},
                     {"type": "MEMORY", "value": str(self.memory)}]
        if self.gpus > 0:
            resources.append({"type": "GPU", "value": str(self.gpus)})
        overrides: dict[str, Any] = {
            "resourceRequirements": resources,
            "environment": [{"name": k, "value": v} for k, v in self.environment().items()],
        }
        if self.args:
            overrides["command"] = self.args
        tags = {"mlgw:job-id": self.job_id}
        for key in ("user", "project", "experiment"):
            if self.metadata.get(key):
                tags[f"mlgw:{key}"] = self.metadata[key]
        req: dict[str, Any] = {
            "jobName": batch_job_name(self.metadata.get("project"), self.job_id),
            "jobQueue": s.gpu_queue if gpu else s.cpu_queue,
            "jobDefinition": s.gpu_definition if gpu else s.cpu_definition,
            "containerOverrides": overrides,
            "tags": tags,
            "propagateTags": True,
        }
        if self.timeout is not None:
            req["timeout"] = {"attemptDurationSeconds": self.timeout}
        if self.attempts > 1:
            # Retry only what a spot reclaim or a lost host did; a failing script fails once.
            req["retryStrategy"] = {
                "attempts": self.attempts,
                "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": "RETRY"},
                                   {"onReason": "*", "action": "EXIT"}],
            }
        return req

    def execute(self) -> dict[str, Any]:
        req = self.submit_request()
        out = self.clients.get("batch").submit_job(**req)
        return {"job_id": self.job_id, "batch_job_id": out["jobId"], "job_name": req["jobName"],
                "job_queue": req["jobQueue"], "compute_type": self.compute_type}
