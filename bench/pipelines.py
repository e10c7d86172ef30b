#!/usr/bin/env python3
"""The pipeline engine's overhead, measured against the release gateway (bench/pipelines.sh).

chain BASE KEY DB STEPS RUNS: runs a chain of STEPS no-op local steps RUNS times; for every
edge, the parent job's stopped_at → the child job inserted (the engine, inside the
transaction that ended the parent: the step's RUNNING history row, written right after the
child's job and outbox rows, at clock_timestamp()) and → the child's started_at (the engine, the
outbox wake-up and the executor's intake and fork). Prints "create50 create99 start50 start99
edges".

fanout BASE KEY DB N: one run of a step with array_size N after a no-op parent; the parent's
stopped_at → the N jobs inserted (as above), and → the last of them started. Prints
"created_ms started_ms".

Standard library only, plus psql for the database's own timestamps.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import urllib.request


def call(base: str, key: str, method: str, path: str, body: object | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read()
    return json.loads(text) if text else {}


def wait_run(base: str, key: str, name: str, run_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = call(base, key, "GET", f"/pipelines/{name}/runs/{run_id}")
        if run["status"] not in ("QUEUED", "RUNNING"):
            return run
        time.sleep(0.05)
    raise SystemExit(f"pipelines.py: run {run_id} did not end in {timeout} s")


def psql(db: str, sql: str) -> list[list[str]]:
    out = subprocess.run(["psql", db, "-X", "-q", "-t", "-A", "-F", "\t", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def chain(base: str, key: str, db: str, steps: int, runs: int) -> None:
    definition = {
        "name": "bench-chain",
        "defaults": {"script_key": "jobs/noop.py", "compute_type": "cpu", "vcpus": 1,
                     "memory": 64},
        "steps": [{"name": "s00"}] + [
            {"name": f"s{i:02d}", "depends_on": [f"s{i - 1:02d}"]} for i in range(1, steps)],
    }
    call(base, key, "POST", "/pipelines", definition)
    create: list[float] = []
    start: list[float] = []
    for _ in range(runs):
        run = call(base, key, "POST", "/pipelines/bench-chain/runs", {})
        done = wait_run(base, key, "bench-chain", run["id"], 600)
        if done["status"] != "SUCCEEDED":
            raise SystemExit(f"pipelines.py: the chain run ended {done['status']}")
        # "created": when the engine had inserted the child's job and outbox row (the step's
        # RUNNING history row, written right after them, at clock_timestamp()).
        rows = psql(db, (
            "SELECT extract(epoch FROM h.at - p.stopped_at) * 1000, "
            "extract(epoch FROM c.started_at - p.stopped_at) * 1000 "
            "FROM pipeline_run_steps s JOIN jobs c ON c.pipeline_run_id = s.run_id "
            "AND c.step = s.name JOIN jobs p ON p.pipeline_run_id = s.run_id "
            "AND p.step = s.depends_on[1] JOIN pipeline_run_history h ON h.run_id = s.run_id "
            "AND h.step = s.name AND h.status = 'RUNNING' "
            f"WHERE s.run_id = '{run['id']}'"))
        for created_ms, started_ms in rows:
            create.append(float(created_ms))
            start.append(float(started_ms))
    print(f"{percentile(create, 50):.2f} {percentile(create, 99):.2f} "
          f"{percentile(start, 50):.2f} {percentile(start, 99):.2f} {len(start)}")


def fanout(base: str, key: str, db: str, n: int) -> None:
    definition = {
        "name": "bench-fanout",
        "defaults": {"script_key": "jobs/noop.py", "compute_type": "cpu", "vcpus": 1,
                     "memory": 16},
        "steps": [{"name": "parent"},
                  {"name": "wide", "depends_on": ["parent"], "array_size": n}],
    }
    call(base, key, "POST", "/pipelines", definition)
    run = call(base, key, "POST", "/pipelines/bench-fanout/runs", {})
    done = wait_run(base, key, "bench-fanout", run["id"], 1800)
    if done["status"] != "SUCCEEDED":
        raise SystemExit(f"pipelines.py: the fan-out run ended {done['status']}")
    (row,) = psql(db, (
        "SELECT extract(epoch FROM (SELECT h.at FROM pipeline_run_history h "
        "WHERE h.run_id = p.pipeline_run_id AND h.step = 'wide' AND h.status = 'RUNNING') "
        "- p.stopped_at) * 1000, "
        "extract(epoch FROM max(c.started_at) - p.stopped_at) * 1000, count(*) "
        "FROM jobs c, jobs p WHERE c.pipeline_run_id = p.pipeline_run_id "
        f"AND c.step = 'wide' AND p.step = 'parent' AND p.pipeline_run_id = '{run['id']}' "
        "GROUP BY p.stopped_at, p.pipeline_run_id"))
    if int(row[2]) != n:
        raise SystemExit(f"pipelines.py: {row[2]} jobs instead of {n}")
    print(f"{float(row[0]):.2f} {float(row[1]):.2f}")


def main(argv: list[str]) -> int:
    if len(argv) == 7 and argv[1] == "chain":
        chain(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]))
    elif len(argv) == 6 and argv[1] == "fanout":
        fanout(argv[2], argv[3], argv[4], int(argv[5]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
