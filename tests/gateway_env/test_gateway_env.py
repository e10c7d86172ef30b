#!/usr/bin/env python3
"""deploy/outputs.tf's ``gateway_env`` against the gateway itself.

usage: test_gateway_env.py ML_GATEWAY_BINARY PG_DIR

(a) Every name in the ``gateway_env`` output is a setting the gateway reads: an ``MLGW_*``/
    ``ML_*`` name of the gateway's settings table (``ml-gateway config``, the table of
    README.md), an ``AWS_*`` name of README.md's "AWS settings" table; and the names are
    exactly those the gateway needs to hand jobs to the pipeline.
(b) The gateway started with those names set to values of the shape Terraform produces (and a
    fresh database on the throwaway cluster in PG_DIR) passes its configuration check: it logs
    each value back in its "starting" line, warns about nothing AWS, listens and answers
    /healthz and /readyz, and stops cleanly. The same start with one value broken exits 2
    naming the setting, so the check is shown to look at these names.
Standard library only.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The settings a gateway needs to dispatch to deploy/'s pipeline (README.md, DESIGN's table):
# queues and definitions (dispatch: batch), the trigger topic (dispatch: sns), the
# notifications topic, buckets, per-type defaults mirroring the Terraform variables, the job
# log group (GET /jobs/{id}/logs), the region, and batch as the default target.
EXPECTED = {
    "AWS_REGION", "MLGW_DISPATCH",
    "MLGW_GPU_JOB_QUEUE", "MLGW_CPU_JOB_QUEUE", "MLGW_GPU_JOB_DEFINITION", "MLGW_CPU_JOB_DEFINITION",
    "MLGW_GPU_JOB_VCPUS", "MLGW_GPU_JOB_MEMORY", "MLGW_GPU_JOB_GPUS", "MLGW_CPU_JOB_VCPUS",
    "MLGW_CPU_JOB_MEMORY", "MLGW_TRIGGER_TOPIC_ARN", "MLGW_NOTIFY_TOPIC_ARN",
    "MLGW_BATCH_LOG_GROUP", "ML_INPUT_BUCKET", "ML_OUTPUT_BUCKET",
}

# Values of the shape `terraform output -json gateway_env` gives with the example tfvars.
ACCOUNT = "123456789012"
PLAUSIBLE = {
    "AWS_REGION": "us-east-1",
    "MLGW_DISPATCH": "batch",
    "MLGW_GPU_JOB_QUEUE": f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/ml-pipeline-ml-gpu-job-queue",
    "MLGW_CPU_JOB_QUEUE": f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/ml-pipeline-ml-cpu-job-queue",
    "MLGW_GPU_JOB_DEFINITION": "ml-pipeline-ml-gpu-job",
    "MLGW_CPU_JOB_DEFINITION": "ml-pipeline-ml-cpu-job",
    "MLGW_GPU_JOB_VCPUS": "4", "MLGW_GPU_JOB_MEMORY": "16384", "MLGW_GPU_JOB_GPUS": "1",
    "MLGW_CPU_JOB_VCPUS": "2", "MLGW_CPU_JOB_MEMORY": "4096",
    "MLGW_TRIGGER_TOPIC_ARN": f"arn:aws:sns:us-east-1:{ACCOUNT}:ml-pipeline-ml-trigger-events",
    "MLGW_NOTIFY_TOPIC_ARN": f"arn:aws:sns:us-east-1:{ACCOUNT}:ml-pipeline-ml-job-notifications",
    "MLGW_BATCH_LOG_GROUP": "/aws/batch/ml-pipeline-ml-jobs",
    "ML_INPUT_BUCKET": f"ml-pipeline-ml-input-{ACCOUNT}",
    "ML_OUTPUT_BUCKET": f"ml-pipeline-ml-output-{ACCOUNT}",
}

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def gateway_env_names(outputs_tf: str) -> list[str]:
    """The keys of `locals { gateway_env = { … } }` in deploy/outputs.tf, which the output
    gateway_env and the gateway module's task both use."""
    if not re.search(r'^output\s+"gateway_env"\s*\{[^}]*value\s*=\s*local\.gateway_env\s*$',
                     outputs_tf, re.S | re.M):
        raise SystemExit('deploy/outputs.tf has no output "gateway_env" = local.gateway_env')
    v = re.search(r"^\s*gateway_env\s*=\s*\{(.*?)^\s*\}", outputs_tf, re.S | re.M)
    if not v:
        raise SystemExit("local.gateway_env is not a literal map in deploy/outputs.tf")
    return re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", v.group(1), re.M)


def config_table_names(binary: str) -> set[str]:
    out = subprocess.run([binary, "config"], check=True, capture_output=True, text=True).stdout
    return set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", out, re.M))


def aws_table_names(readme: str) -> set[str]:
    m = re.search(r"^### AWS settings\n(.*?)(?=^#)", readme, re.S | re.M)
    if not m:
        raise SystemExit('README.md has no "### AWS settings" section')
    rows = [line.split("|")[1] for line in m.group(1).splitlines() if line.startswith("| `")]
    return set(re.findall(r"`(AWS_[A-Z0-9_]+)`", "".join(rows)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(url: str, sql: str) -> None:
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                   capture_output=True)


def with_db(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")


def http_get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def base_env(db_url: str, port: int, tmp: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "LANG": "C.UTF-8",
        "DATABASE_URL": db_url, "MLGW_LISTEN": f"127.0.0.1:{port}",
        "MLGW_MIGRATIONS_DIR": str(ROOT / "migrations"), "MLGW_LOCAL_ROOT": tmp,
        # Credentials and an endpoint that keep every AWS call on this machine (none is
        # expected: no job is submitted).
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true",
    }


def start_and_check(binary: str, env: dict[str, str], port: int, tmp: str) -> None:
    log_path = pathlib.Path(tmp) / "gateway.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([binary], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        listening = False
        while time.monotonic() < deadline and proc.poll() is None:
            if '"msg":"listening"' in log_path.read_text():
                listening = True
                break
            time.sleep(0.1)
        text = log_path.read_text()
        check(listening, f"the gateway with gateway_env's names starts and listens (rc={proc.poll()})")
        if not listening:
            print(text[-4000:])
            return
        check(http_get(f"http://127.0.0.1:{port}/healthz") == 200, "/healthz answers 200")
        check(http_get(f"http://127.0.0.1:{port}/readyz") == 200, "/readyz answers 200")
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        starting = next((entry for entry in lines if entry.get("msg") == "starting"), None)
        check(starting is not None, 'the gateway logs its settings ("starting")')
        config = (starting or {}).get("config", {})
        for name, value in PLAUSIBLE.items():
            if name.startswith("AWS_"):
                continue
            got = config.get(name)
            check(str(got) == value, f"the gateway read {name}={value} (logged: {got!r})")
        aws_warnings = [entry for entry in lines if entry.get("level") in ("warn", "error")
                        and re.search(r"AWS|region|dispatch|batch|sns|topic|queue",
                                      entry.get("msg", ""), re.I)]
        check(not aws_warnings, f"no warning about AWS or dispatch settings: {aws_warnings}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    check(proc.returncode == 0, f"the gateway stops cleanly on SIGTERM (rc={proc.returncode})")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    binary, pg_dir = sys.argv[1], sys.argv[2]

    # (a) the names
    names = gateway_env_names((ROOT / "deploy/outputs.tf").read_text())
    check(len(names) == len(set(names)), f"gateway_env names are unique: {names}")
    table = config_table_names(binary)
    check(len(table) > 50, f"`ml-gateway config` lists the settings ({len(table)})")
    aws = aws_table_names((ROOT / "README.md").read_text())
    check("AWS_REGION" in aws, f"README.md's AWS settings table lists AWS_REGION ({sorted(aws)})")
    for name in names:
        known = name in aws if name.startswith("AWS_") else name in table
        check(known, f"{name} is a setting the gateway reads")
    check(set(names) == EXPECTED, "gateway_env holds exactly the dispatch settings "
          f"(missing {sorted(EXPECTED - set(names))}, extra {sorted(set(names) - EXPECTED)})")
    check(set(PLAUSIBLE) == EXPECTED, "every expected name has a test value")

    # (b) the gateway started with them
    base_url = (pathlib.Path(pg_dir) / "url").read_text().strip()
    db = "t_gwenv_" + secrets.token_hex(6)
    psql(base_url, f"CREATE DATABASE {db}")
    try:
        with tempfile.TemporaryDirectory(prefix="mlgw-gwenv-") as tmp:
            port = free_port()
            env = base_env(with_db(base_url, db), port, tmp)
            env.update({name: PLAUSIBLE[name] for name in names if name in PLAUSIBLE})
            start_and_check(binary, env, port, tmp)

            # The same start with one of the names given a bad value stops at the check.
            bad = dict(env, MLGW_GPU_JOB_VCPUS="0")
            r = subprocess.run([binary], env=bad, cwd=ROOT, capture_output=True, text=True,
                               timeout=60)
            check(r.returncode == 2 and "MLGW_GPU_JOB_VCPUS" in r.stderr,
                  f"a bad MLGW_GPU_JOB_VCPUS fails the configuration check with status 2 "
                  f"(rc={r.returncode}, {r.stderr.strip()[:200]!r})")
    finally:
        psql(base_url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
