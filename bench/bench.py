#!/usr/bin/env python3
"""bench.py — the text work behind bench/run.sh.

  bench.py insert-sql JOBS_C
      print the SQL of the JOB_INSERT_CTE macro in JOBS_C (db/jobs.c): its
      adjacent string literals, concatenated, exactly as the C compiler does.
  bench.py pgbench-script JOBS_C SEED_ROW_JSON SCRIPT_OUT DEFS_OUT
      write a pgbench script running that very statement, and the pgbench
      -D definitions of its parameters (one "name=value" a line). The values
      come from SEED_ROW_JSON (to_jsonb of a job row the gateway inserted for
      the benchmark's request body), so they are what the gateway sends; the
      job id ($1 in the code) becomes gen_random_uuid(), a NULL parameter the
      literal NULL (pgbench variables cannot be NULL).
  bench.py check-binary JOBS_C BINARY
      fail unless that SQL is in BINARY verbatim (the gateway being measured
      was built from this db/jobs.c).
  bench.py wrk WRK_OUTPUT
      print "rps p50_ms p99_ms requests" from wrk --latency output, or fail
      when wrk reported any failed request.
  bench.py medians ROUNDS_FILE
      ROUNDS_FILE holds one line a round: the 4 figures of POST (group commit
      on), pgbench, GET, bare and POST (group commit off), as printed by the
      "wrk" and "pgbench" commands. Print the median of each of the 20 columns, then
      the medians of the per-round ratios POST/pgbench, GET/bare, POST on/off
      and POST off/pgbench.
  bench.py pgbench PGBENCH_OUTPUT LOG_PREFIX
      print "tps p50_ms p99_ms transactions" from pgbench's output and its
      per-transaction logs (-l --log-prefix), or fail when any transaction
      failed.
  bench.py local BASE_URL API_KEY JOBS DATABASE_URL
      POST JOBS local jobs (jobs/noop.py) one at a time, each after the
      previous one ended; print "p50 p99" of started_at - created_at (from
      the database), of POST -> 202, and of POST -> RUNNING seen by polling,
      all in ms. Fails when a job does not succeed.
"""
import glob
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse

MACRO = "JOB_INSERT_CTE"


def die(msg):
    sys.exit(f"bench.py: {msg}")


def c_unescape(s):
    simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "?": "?"}
    out, i = [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s) and s[i + 1] in simple:
            out.append(simple[s[i + 1]])
            i += 2
        elif ch == "\\":
            die(f"unsupported escape {s[i:i + 4]!r} in {MACRO}")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def insert_sql(jobs_c):
    """The macro's literals, concatenated, and the statement's declared nparams."""
    with open(jobs_c, encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = next((i for i, l in enumerate(lines)
                  if re.match(rf"\s*#\s*define\s+{MACRO}\b", l)), None)
    if start is None:
        die(f"no #define {MACRO} in {jobs_c}")
    body = []
    i = start
    while True:
        line = lines[i]
        cont = line.rstrip().endswith("\\")
        body.append(line.rstrip()[:-1] if cont else line)
        if not cont:
            break
        i += 1
    text = "\n".join(body)
    text = re.sub(rf"^\s*#\s*define\s+{MACRO}", "", text)
    literals = re.findall(r'"((?:[^"\\\n]|\\.)*)"', text)
    leftover = re.sub(r'"((?:[^"\\\n]|\\.)*)"', "", text).strip()
    if not literals or leftover:
        die(f"{MACRO} is not only adjacent string literals (left: {leftover[:60]!r})")
    sql = "".join(c_unescape(l) for l in literals)
    # The statement that uses it declares how many parameters it binds.
    m = re.search(rf'\{{\s*"[^"]+"\s*,\s*{MACRO}\s*,\s*(\d+)\s*\}}', "\n".join(lines))
    nparams = int(m.group(1)) if m else None
    return sql, nparams


def split_top(s):
    """Split a comma list at depth 0, outside quotes."""
    parts, depth, quote, cur = [], 0, False, []
    for ch in s:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def pgbench_script(jobs_c, seed_json, script_out, defs_out):
    sql, nparams = insert_sql(jobs_c)
    m = re.search(r"INSERT INTO jobs \(([^)]*)\) VALUES \((.*?)\) RETURNING", sql, re.S)
    if not m:
        die(f"{MACRO} has no 'INSERT INTO jobs (...) VALUES (...) RETURNING'")
    cols, vals = split_top(m.group(1)), split_top(m.group(2))
    if len(cols) != len(vals):
        die(f"{MACRO}: {len(cols)} columns but {len(vals)} values")
    params = {int(v[1:]): c for c, v in zip(cols, vals) if re.fullmatch(r"\$\d+", v)}
    used = {int(n) for n in re.findall(r"\$(\d+)", sql)}
    if used != set(params):
        die(f"{MACRO} uses parameters outside the VALUES list: {sorted(used - set(params))}")
    if nparams is not None and set(params) != set(range(1, nparams + 1)):
        die(f"{MACRO} binds {sorted(params)} but its statement declares {nparams} parameters")
    with open(seed_json, encoding="utf-8") as f:
        row = json.loads(f.read())
    subst, defs = {}, []
    for n, col in sorted(params.items()):
        if col not in row:
            die(f"the seed job row has no column {col!r}")
        v = row[col]
        if col == "id":
            subst[n] = "gen_random_uuid()"
        elif v is None:
            subst[n] = "NULL"
        else:
            if isinstance(v, (dict, list)):
                v = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
            elif isinstance(v, bool):
                v = "true" if v else "false"
            v = str(v)
            if "\n" in v:
                die(f"parameter ${n} ({col}) holds a newline")
            subst[n] = f":p{n}"
            defs.append(f"p{n}={v}")
    out = re.sub(r"\$(\d+)", lambda mm: subst[int(mm.group(1))], sql)
    with open(script_out, "w", encoding="utf-8") as f:
        f.write(" ".join(out.split("\n")) + ";\n")
    with open(defs_out, "w", encoding="utf-8") as f:
        f.write("".join(d + "\n" for d in defs))


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def to_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not m:
        die(f"cannot read the duration {text!r}")
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def wrk(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    bench = re.search(r"^bench: requests=(\d+) non2xx=(\d+) connect=(\d+) read=(\d+) "
                      r"write=(\d+) timeout=(\d+)$", text, re.M)
    if not bench:
        die(f"{path}: no 'bench:' line from the Lua done() (did wrk run the script?)")
    requests, *errors = (int(x) for x in bench.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if any(errors) or non2xx or requests == 0:
        die(f"{path}: FAILED REQUESTS — requests={requests} non2xx={errors[0]} "
            f"connect={errors[1]} read={errors[2]} write={errors[3]} timeout={errors[4]}; "
            "a benchmark of errors is worthless\n" + text)
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if not (rps and p50 and p99):
        die(f"{path}: no Requests/sec or latency distribution (wrk --latency?)")
    print(f"{float(rps.group(1)):.1f} {to_ms(p50.group(1)):.3f} {to_ms(p99.group(1)):.3f} "
          f"{requests}")


def percentile(sorted_vals, p):
    """Nearest-rank percentile."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def pgbench(path, log_prefix):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    tps = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", text, re.M)
    done = re.search(r"^number of transactions actually processed: (\d+)", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    if not tps or not done:
        die(f"{path}: no tps line\n{text}")
    if (failed and int(failed.group(1)) > 0) or "aborted" in text or int(done.group(1)) == 0:
        die(f"{path}: FAILED TRANSACTIONS\n{text}")
    lat = []
    for log in glob.glob(log_prefix + ".*"):
        with open(log, encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    lat.append(int(fields[2]) / 1000.0)  # microseconds
    lat.sort()
    print(f"{float(tps.group(1)):.1f} {percentile(lat, 50):.3f} {percentile(lat, 99):.3f} "
          f"{done.group(1)}")


def medians(path):
    with open(path, encoding="utf-8") as f:
        rows = [[float(x) for x in line.split()] for line in f if line.strip()]
    if not rows or any(len(r) != 20 for r in rows):
        die(f"{path}: expected lines of 20 figures")
    cols = [statistics.median(r[i] for r in rows) for i in range(20)]
    ratios = [statistics.median(r[a] / r[b] for r in rows)
              for a, b in ((0, 4), (8, 12), (0, 16), (16, 4))]
    fmt = ["{:.1f}", "{:.3f}", "{:.3f}", "{:.0f}"] * 5
    print(" ".join(f.format(v) for f, v in zip(fmt, cols)), " ".join(f"{x:.2f}" for x in ratios))


def local(base, key, jobs, db_url):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    auth = {"Authorization": f"Bearer {key}"}
    body = json.dumps({"script_key": "jobs/noop.py", "compute_type": "cpu", "vcpus": 1,
                       "memory": 64, "dispatch": "local"})

    def call(method, path, payload=None):
        headers = dict(auth)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")

    ids, ack, seen = [], [], []
    for _ in range(jobs):
        t0 = time.perf_counter()
        status, job = call("POST", "/jobs", body)
        t1 = time.perf_counter()
        if status != 202:
            die(f"POST /jobs answered {status}: {job}")
        ids.append(job["id"])
        ack.append((t1 - t0) * 1000)
        deadline = t0 + 30
        while True:
            status, job = call("GET", f"/jobs/{ids[-1]}")
            if job["status"] not in ("QUEUED", "RUNNABLE"):
                seen.append((time.perf_counter() - t0) * 1000)
                break
            if time.perf_counter() > deadline:
                die(f"job {ids[-1]} did not start in 30 s")
            time.sleep(0.002)
        while job["status"] not in ("SUCCEEDED", "FAILED", "CANCELLED"):
            if time.perf_counter() > deadline:
                die(f"job {ids[-1]} did not end in 30 s")
            time.sleep(0.02)
            status, job = call("GET", f"/jobs/{ids[-1]}")
        if job["status"] != "SUCCEEDED":
            die(f"job {ids[-1]} is {job['status']}: {job.get('status_reason')}")
    sql = ("SELECT extract(epoch FROM started_at - created_at) * 1000 FROM jobs "
           "WHERE dispatch = 'local' AND started_at IS NOT NULL")
    out = subprocess.run(["psql", db_url, "-X", "-t", "-A", "-c", sql], check=True,
                         capture_output=True, text=True).stdout
    start = sorted(float(x) for x in out.split())
    if len(start) != jobs:
        die(f"{len(start)} of {jobs} jobs have a start time")
    # The job script writes the time it began to run into its outputs (local.sh's noop.py):
    # accept -> script running includes the sandbox and both interpreters' start-up.
    sql = ("SELECT id, extract(epoch FROM created_at) FROM jobs "
           "WHERE dispatch = 'local' AND started_at IS NOT NULL")
    out = subprocess.run(["psql", db_url, "-X", "-t", "-A", "-F", " ", "-c", sql], check=True,
                         capture_output=True, text=True).stdout
    running = []
    for line in out.split("\n"):
        if line.strip():
            job_id, created = line.split()
            path = os.path.join(os.environ["MLGW_LOCAL_ROOT"], "output", "jobs", job_id,
                                "began.txt")
            with open(path) as f:
                running.append((float(f.read()) - float(created)) * 1000)
    running.sort()
    ack.sort()
    seen.sort()
    print(" ".join(f"{percentile(v, p):.2f}" for v in (start, ack, seen, running)
                   for p in (50, 99)))


LIST_QUERIES = [
    ("no filter", ""),
    ("status", "status=RUNNING"),
    ("compute_type", "compute_type=gpu"),
    ("user", "user=user-5"),
    ("project", "project=project-41"),
    ("experiment", "experiment=exp-101"),
    ("created_after", "created_after=2000-01-01T00:00:00Z"),
    ("created_before (last month)", "created_before=NOW-30D"),
    ("status + user + project", "status=SUCCEEDED&user=user-5&project=project-5"),
    ("empty: user + status that never meet", "status=QUEUED&user=user-1"),
    ("empty: unknown user", "user=nobody"),
    ("empty: status + compute_type + project", "status=CANCELLED&compute_type=gpu&project=project-1"),
    ("a page deep (cursor after 20 pages)", "CURSOR20"),
]


def list_bench(base, team_key, admin_key, reqs):
    """GET /jobs with each filter, p50/p99 over reqs requests, as a team key and as admin."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    month_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 30 * 86400))

    def get(key, query):
        conn.request("GET", f"/jobs?{query}", headers={"Authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, body

    for label, query in LIST_QUERIES:
        for who, key in (("team", team_key), ("admin", admin_key)):
            q = query.replace("NOW-30D", month_ago)
            if q == "CURSOR20":
                q = ""
                for _ in range(20):
                    status, body = get(key, q)
                    cursor = json.loads(body)["next_cursor"]
                    q = f"cursor={cursor}"
            times, statuses, items = [], {}, 0
            for _ in range(reqs):
                t0 = time.perf_counter()
                status, body = get(key, q)
                times.append((time.perf_counter() - t0) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    items = len(json.loads(body)["items"])
            times.sort()
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
            print(f"| {label} | {who} | {percentile(times, 50):.2f} | {percentile(times, 99):.2f} "
                  f"| {items} | {shown} |")


def main(argv):
    if len(argv) == 3 and argv[1] == "insert-sql":
        print(insert_sql(argv[2])[0])
    elif len(argv) == 4 and argv[1] == "check-binary":
        sql = insert_sql(argv[2])[0].encode()
        with open(argv[3], "rb") as f:
            if sql not in f.read():
                die(f"{argv[3]} does not hold {MACRO} of {argv[2]}: rebuild it (make)")
    elif len(argv) == 6 and argv[1] == "pgbench-script":
        pgbench_script(*argv[2:])
    elif len(argv) == 3 and argv[1] == "wrk":
        wrk(argv[2])
    elif len(argv) == 3 and argv[1] == "medians":
        medians(argv[2])
    elif len(argv) == 4 and argv[1] == "pgbench":
        pgbench(argv[2], argv[3])
    elif len(argv) == 6 and argv[1] == "local":
        local(argv[2], argv[3], int(argv[4]), argv[5])
    elif len(argv) == 6 and argv[1] == "list":
        list_bench(argv[2], argv[3], argv[4], int(argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
