#!/usr/bin/env bash
# local.sh — the local executor's accept → start latency: POST /jobs (dispatch
# local) one job at a time to the release gateway on a private PostgreSQL with
# fsync on, and for each job take started_at − created_at from the database:
# from the transaction that accepted the job to the moment the executor's
# fork of the job entrypoint returned (the interpreter's own start-up is not
# counted). Also the 202's round trip and the whole POST → child running
# time as the client sees it. Writes bench/results/local-latest.md.
# Goal: p50 ≤ 20 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${BENCH_LOCAL_JOBS:-200}
dir=build/bench-local
gw=build/ml-gateway
mkdir -p "$dir" bench/results
[[ -x "$gw" ]] || { echo "local.sh: build first (make)" >&2; exit 1; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_database local
url=$DATABASE_URL
rm -rf "$dir/root"
mkdir -p "$dir/root/input/jobs"
# The job itself does nothing but note when it began (accept → script running).
printf '%s\n' 'import os, time' \
  "open(os.path.join(os.environ['ML_OUTPUT_DIR'], 'began.txt'), 'w').write(repr(time.time()))" \
  >"$dir/root/input/jobs/noop.py"
# The sandbox shows jobs the interpreter's own installation: name the real one (a pyenv
# shim in PATH would not run there).
MLGW_LOCAL_PYTHON=${MLGW_LOCAL_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
export MLGW_LOCAL_PYTHON
# The job sandbox (on unless MLGW_LOCAL_SANDBOX=off) needs its user when run as root.
scripts/sandbox-user.sh "$dir/root"
export MLGW_LOG_LEVEL=warn MLGW_NOTIFY_WORKERS=0 \
  MLGW_LOCAL_ROOT=$PWD/$dir/root MLGW_LOCAL_VCPUS=64 MLGW_LOCAL_MEMORY=65536 MLGW_LOCAL_GPUS=0
bench_start_gateway
key=$("$gw" keys create --name bench --scopes jobs:read,jobs:write --rate 1000000 --burst 1000000 2>/dev/null)

python3 bench/bench.py local "http://127.0.0.1:$port" "$key" "$n" "$url" >"$dir/result.txt"
read -r p50 p99 ack50 ack99 seen50 seen99 run50 run99 < "$dir/result.txt"
rss=$(awk '/VmHWM/ {print $2}' "/proc/$gw_pid/status")
verdict=missed
python3 -c "import sys; sys.exit(0 if float('$p50') <= 20 else 1)" && verdict=met

out=bench/results/local-latest.md
{
  echo "# ml-gateway local executor: accept → start — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "Host: \`$(uname -srm)\`, $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)."
  echo "PostgreSQL $(psql "$url" -X -t -A -c 'SHOW server_version') with fsync on; release gateway, logs at warn."
  echo "$n jobs (\`dispatch: local\`, a script that only notes when it began), posted one at a time, each after the previous one ended."
  echo "Job sandbox: \`MLGW_LOCAL_SANDBOX=${MLGW_LOCAL_SANDBOX:-on}\` ($(bwrap --version 2>/dev/null || echo 'no bwrap'), gateway as uid $(id -u))."
  echo
  echo "| | p50 (ms) | p99 (ms) |"
  echo "|---|---:|---:|"
  echo "| **accept → child started** (started_at − created_at, in the database) | **$p50** | $p99 |"
  echo "| POST /jobs → 202 (client) | $ack50 | $ack99 |"
  echo "| POST /jobs → RUNNING seen by polling GET /jobs/{id} every 2 ms (client) | $seen50 | $seen99 |"
  echo "| accept → job script running (its own clock; the sandbox's set-up and both interpreters' start-up included) | $run50 | $run99 |"
  echo
  echo "Gateway peak RSS: $(awk "BEGIN {printf \"%.1f\", $rss / 1024}") MiB. Goal: accept → started p50 ≤ 20 ms: **$verdict**."
} >"$out"
cat "$out"
