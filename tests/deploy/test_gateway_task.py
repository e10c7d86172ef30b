#!/usr/bin/env python3
"""The gateway's ECS task (deploy/modules/gateway) against the gateway itself, and the job
definitions (deploy/modules/batch) against the job's environment contract.

usage: test_gateway_task.py PLAN.json ML_GATEWAY_BINARY

PLAN.json is deploy/'s plan (the deploy_plan test, terraform.tfvars.example): its outputs
gateway_task_environment (the task's plain environment) and gateway_task_secret_names (its
ECS secrets) are what the task definition is built from.

(a) Every name the task sets, plain or secret, is a setting the gateway reads: a row of
    `ml-gateway config` (README.md's table) or of README.md's "AWS settings".
(b) Every setting the table marks required is set, and so is everything hosting behind the
    load balancer with Batch dispatch and callbacks needs.
(c) No setting the table marks (secret) is in the plain environment; the ECS secrets are
    exactly the (secret) settings the task sets.
(d) The gateway started with that environment (unknown plan values replaced by values of
    their shape) passes its configuration check; one value broken, it fails it (status 2).
(e) The job definitions set no name of the job's environment contract (jobs/jobenv.c: those
    come per job), and their cache variables are the images' (images/ml-python*/Dockerfile)
    under the mount the gateway reads as MLGW_CACHE_DIR.
Standard library only.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What the gateway behind the load balancer needs besides the table's required settings:
# the pipeline's settings (gateway_env), where to listen, the database password, callbacks,
# webhooks' signing key, and the model cache with its jobs sent to Batch.
HOSTING_NEEDS = {
    "AWS_REGION", "MLGW_DISPATCH", "MLGW_GPU_JOB_QUEUE", "MLGW_CPU_JOB_QUEUE",
    "MLGW_GPU_JOB_DEFINITION", "MLGW_CPU_JOB_DEFINITION", "MLGW_TRIGGER_TOPIC_ARN",
    "MLGW_NOTIFY_TOPIC_ARN", "MLGW_BATCH_LOG_GROUP", "ML_INPUT_BUCKET", "ML_OUTPUT_BUCKET",
    "MLGW_LISTEN", "MLGW_DATABASE_PASSWORD", "MLGW_CALLBACK_SECRET", "MLGW_CALLBACK_HEADER",
    "MLGW_WEBHOOK_SECRET", "MLGW_CACHE_DIR", "MLGW_CACHE_DISPATCH", "MLGW_SHUTDOWN_TIMEOUT",
}

ACCOUNT = "123456789012"
# Values of the shape AWS gives, for what the plan cannot know yet.
SHAPES = {
    "MLGW_GPU_JOB_QUEUE": f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/ml-pipeline-ml-gpu-job-queue",
    "MLGW_CPU_JOB_QUEUE": f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/ml-pipeline-ml-cpu-job-queue",
    "MLGW_TRIGGER_TOPIC_ARN": f"arn:aws:sns:us-east-1:{ACCOUNT}:ml-pipeline-ml-trigger-events",
    "MLGW_NOTIFY_TOPIC_ARN": f"arn:aws:sns:us-east-1:{ACCOUNT}:ml-pipeline-ml-job-notifications",
    "ML_INPUT_BUCKET": f"ml-pipeline-ml-input-{ACCOUNT}",
    "ML_OUTPUT_BUCKET": f"ml-pipeline-ml-output-{ACCOUNT}",
    "MLGW_SNS_TOPIC_ARNS": f"arn:aws:sns:us-east-1:{ACCOUNT}:ml-pipeline-ml-job-notifications",
}
SECRET_SHAPES = {
    # Nothing listens on port 1: the check passes, then the connection fails (status 1).
    "DATABASE_URL": "postgresql://mlgw@127.0.0.1:1/mlgw?sslmode=verify-full"
                    "&sslrootcert=/opt/ml-gateway/rds-ca-bundle.pem",
    "MLGW_DATABASE_PASSWORD": "from-the-rds-master-secret",
    "MLGW_CALLBACK_SECRET": "A" * 48,
    "MLGW_WEBHOOK_SECRET": "B" * 48,
    "MLGW_SMTP_PASSWORD": "smtp-password",
}

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def settings_table(binary: str) -> dict[str, dict[str, object]]:
    """name -> {required, secret} from `ml-gateway config`."""
    out = subprocess.run([binary, "config"], check=True, capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        m = re.match(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*([^|]*?)\s*\|[^|]*\|(.*)\|\s*$", line)
        if m:
            table[m.group(1)] = {"required": m.group(2) == "required",
                                 "secret": m.group(3).rstrip().endswith("(secret)")}
    return table


def aws_table_names(readme: str) -> set[str]:
    m = re.search(r"^### AWS settings\n(.*?)(?=^#)", readme, re.S | re.M)
    if not m:
        raise SystemExit('README.md has no "### AWS settings" section')
    rows = [line.split("|")[1] for line in m.group(1).splitlines() if line.startswith("| `")]
    return set(re.findall(r"`(AWS_[A-Z0-9_]+)`", "".join(rows)))


def task_from_plan(doc: dict) -> tuple[dict[str, object], set[str]]:
    outputs = doc.get("output_changes", {})
    env_change = outputs.get("gateway_task_environment") or {}
    env = dict(env_change.get("after") or {})
    unknown = env_change.get("after_unknown")
    for name in unknown if isinstance(unknown, dict) else {}:
        env.setdefault(name, None)  # known after apply
    secrets = set((outputs.get("gateway_task_secret_names") or {}).get("after") or [])
    return env, secrets


def run_config_check(binary: str, env: dict[str, str], tmp: str) -> subprocess.CompletedProcess:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "LANG": "C.UTF-8",
            "AWS_EC2_METADATA_DISABLED": "true", **env,
            # the image's paths, here: the repository's migrations; the cache is not read by migrate
            "MLGW_MIGRATIONS_DIR": str(ROOT / "migrations"), "MLGW_LOCAL_ROOT": tmp}
    return subprocess.run([binary, "migrate"], env=full, cwd=tmp, capture_output=True, text=True,
                          timeout=60)


def hcl_job_environment(batch_tf: str) -> dict[str, str]:
    m = re.search(r"^\s*environment = \[(.*?)^\s*\]", batch_tf, re.S | re.M)
    if not m:
        raise SystemExit("deploy/modules/batch/main.tf: no environment list in the job definition")
    return dict(re.findall(r'\{\s*name\s*=\s*"([A-Z_][A-Z0-9_]*)",\s*value\s*=\s*"([^"]*)"\s*\}', m.group(1)))


def dockerfile_env(path: pathlib.Path) -> dict[str, str]:
    text = path.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", line[4:]))
    return env


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    plan_path, binary = sys.argv[1], os.path.abspath(sys.argv[2])
    doc = json.loads(pathlib.Path(plan_path).read_text())
    env, secrets = task_from_plan(doc)
    check(bool(env) and bool(secrets), f"the plan has the task's environment ({len(env)}) and secrets ({len(secrets)})")

    table = settings_table(binary)
    check(len(table) > 50, f"`ml-gateway config` lists the settings ({len(table)})")
    aws = aws_table_names((ROOT / "README.md").read_text())

    # (a) known names
    for name in sorted(set(env) | secrets):
        known = name in aws if name.startswith("AWS_") else name in table
        check(known, f"{name} (task {'secret' if name in secrets else 'environment'}) is a setting the gateway reads")
    check(not (set(env) & secrets), f"no name is both plain and secret: {sorted(set(env) & secrets)}")

    # (b) required and needed names
    given = set(env) | secrets
    required = {n for n, row in table.items() if row["required"]}
    check(bool(required), f"the table marks required settings ({sorted(required)})")
    check(required <= given, f"every required setting is set (missing {sorted(required - given)})")
    check(HOSTING_NEEDS <= given, f"every setting hosting needs is set (missing {sorted(HOSTING_NEEDS - given)})")

    # (c) secrets never plain, and exactly the secret settings as ECS secrets
    marked = {n for n, row in table.items() if row["secret"]}
    check(len(marked) >= 5, f"the table marks secrets ({sorted(marked)})")
    plain_secrets = sorted(set(env) & (marked | {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"}))
    check(not plain_secrets, f"no secret in the plain environment: {plain_secrets}")
    check(secrets <= marked, f"the ECS secrets are settings marked secret (not: {sorted(secrets - marked)})")

    # (d) the configuration check
    values = {k: (v if v is not None else SHAPES.get(k, "")) for k, v in env.items()}
    check(all(values.values()), f"every unknown value has a shape: {[k for k, v in values.items() if not v]}")
    values.update({k: SECRET_SHAPES[k] for k in secrets})
    with tempfile.TemporaryDirectory(prefix="mlgw-task-") as tmp:
        r = run_config_check(binary, {k: str(v) for k, v in values.items()}, tmp)
        check(r.returncode != 2 and "PostgreSQL" in r.stderr,
              f"the task's settings pass the configuration check and it goes on to the database "
              f"(rc={r.returncode}, {r.stderr.strip()[-300:]!r})")
        leaked = [v for k, v in SECRET_SHAPES.items() if k != "DATABASE_URL" and v in r.stdout + r.stderr]
        check(not leaked, f"no secret value reaches the log: {leaked}")
        bad = dict(values, MLGW_LISTEN="0.0.0.0:99999")
        r = run_config_check(binary, {k: str(v) for k, v in bad.items()}, tmp)
        check(r.returncode == 2 and "MLGW_LISTEN" in r.stderr,
              f"the same with MLGW_LISTEN broken fails the check (rc={r.returncode})")

    # (e) the job definitions and the contract
    contract = set(re.findall(r'json_object_set_new\(\s*env,\s*"([A-Z_][A-Z0-9_]*)"',
                              (ROOT / "jobs/jobenv.c").read_text()))
    check({"ML_INPUT_BUCKET", "JOB_ID", "ML_OUTPUT_DIR", "SCRIPT_KEY"} <= contract,
          f"jobs/jobenv.c names the contract ({sorted(contract)})")
    job_env = hcl_job_environment((ROOT / "deploy/modules/batch/main.tf").read_text())
    check(bool(job_env), f"the job definitions' environment is found ({sorted(job_env)})")
    check(not (set(job_env) & contract),
          f"the job definitions set no contract name (per job instead): {sorted(set(job_env) & contract)}")
    for image in ("ml-python", "ml-python-slim"):
        image_env = dockerfile_env(ROOT / "images" / image / "Dockerfile")
        differ = {k: (v, image_env.get(k)) for k, v in job_env.items() if image_env.get(k) != v}
        check(not differ, f"the job definitions' cache variables are images/{image}'s: {differ}")
    check(job_env.get("MODEL_CACHE_DIR") == env.get("MLGW_CACHE_DIR") == "/opt/models",
          f"jobs write the cache where the gateway reads it (MODEL_CACHE_DIR "
          f"{job_env.get('MODEL_CACHE_DIR')!r}, MLGW_CACHE_DIR {env.get('MLGW_CACHE_DIR')!r})")
    gateway_tf = (ROOT / "deploy/modules/gateway/main.tf").read_text()
    check(re.search(r'containerPath = "/opt/models"\s*\n\s*readOnly\s*=\s*true', gateway_tf) is not None,
          "the gateway mounts the model cache read-only at /opt/models")

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
