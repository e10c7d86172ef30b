#!/usr/bin/env bash
# pipelines.sh — the pipeline engine's overhead on the release gateway, a
# private PostgreSQL with fsync on and the local executor (no-op Python
# jobs): per edge of a 20-step chain, the parent's end → the child's job
# created and started (p50/p99 over BENCH_CHAIN_RUNS runs), and a 1000-way
# fan-out: the parent's end → all 1000 jobs created, → all started, and the
# gateway's peak RSS. Writes bench/results/pipelines-latest.md.
# Goals: p50 per edge ≤ 20 ms; the 1000 jobs created in ≤ 1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_CHAIN_RUNS:-5}
width=${BENCH_FANOUT:-1000}
dir=build/bench-pipelines
gw=build/ml-gateway
mkdir -p "$dir" bench/results
[[ -x "$gw" ]] || { echo "pipelines.sh: build first (make)" >&2; exit 1; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_database pipelines
url=$DATABASE_URL
rm -rf "$dir/root"
mkdir -p "$dir/root/input/jobs"
printf 'pass\n' >"$dir/root/input/jobs/noop.py"
MLGW_LOCAL_PYTHON=${MLGW_LOCAL_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
export MLGW_LOCAL_PYTHON
scripts/sandbox-user.sh "$dir/root"
export MLGW_LOG_LEVEL=warn MLGW_NOTIFY_WORKERS=0 \
  MLGW_LOCAL_ROOT=$PWD/$dir/root MLGW_LOCAL_VCPUS=64 MLGW_LOCAL_MEMORY=65536 MLGW_LOCAL_GPUS=0
bench_start_gateway
key=$("$gw" keys create --name bench --scopes jobs:read,jobs:write --rate 1000000 --burst 1000000 2>/dev/null)
base="http://127.0.0.1:$port"

python3 bench/pipelines.py chain "$base" "$key" "$url" 20 "$runs" >"$dir/chain.txt"
read -r create50 create99 start50 start99 edges < "$dir/chain.txt"
python3 bench/pipelines.py fanout "$base" "$key" "$url" "$width" >"$dir/fanout.txt"
read -r fan_created fan_started < "$dir/fanout.txt"
rss=$(awk '/VmHWM/ {print $2}' "/proc/$gw_pid/status")
edge_ok=missed fan_ok=missed
python3 -c "import sys; sys.exit(0 if float('$start50') <= 20 else 1)" && edge_ok=met
python3 -c "import sys; sys.exit(0 if float('$fan_created') <= 1000 else 1)" && fan_ok=met

out=bench/results/pipelines-latest.md
{
  echo "# ml-gateway pipelines: the engine's overhead — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "Host: \`$(uname -srm)\`, $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)."
  echo "PostgreSQL $(psql "$url" -X -t -A -c 'SHOW server_version') with fsync on; release gateway, logs at warn;"
  echo "local executor (64 vCPU slots), job sandbox \`MLGW_LOCAL_SANDBOX=${MLGW_LOCAL_SANDBOX:-on}\`; every job a no-op Python script."
  echo "Times from the database: the parent job's \`stopped_at\` to the child's step's RUNNING history row (written right after its jobs and outbox rows) / the child job's \`started_at\`."
  echo
  echo "| 20-step chain, $runs runs ($edges edges) | p50 (ms) | p99 (ms) |"
  echo "|---|---:|---:|"
  echo "| parent ended → child job created (the engine, in the parent's transaction) | $create50 | $create99 |"
  echo "| **parent ended → child job started** (engine, outbox wake-up, executor intake, fork) | **$start50** | $start99 |"
  echo
  echo "| $width-way fan-out (array_size) | ms |"
  echo "|---|---:|"
  echo "| **parent ended → all $width jobs created** | **$fan_created** |"
  echo "| parent ended → all $width jobs started (64 at a time; each a Python start-up) | $fan_started |"
  echo
  echo "Gateway peak RSS: $(awk "BEGIN {printf \"%.1f\", $rss / 1024}") MiB."
  echo "Goals: p50 per edge ≤ 20 ms: **$edge_ok**; $width jobs created in ≤ 1 s: **$fan_ok**."
} >"$out"
cat "$out"
