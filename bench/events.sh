#!/usr/bin/env bash
# events.sh — callback ingest rate: wrk POSTs distinct EventBridge "Batch Job
# State Change" events to the release gateway (dedup on: every event id is
# recorded) on a private PostgreSQL with fsync on. Writes
# bench/results/events-latest.md. Goal: ≥ 5,000 events/s.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNECTIONS:-32}
# Each event is its own durable transaction: ingest is bound by commits, so
# more handler threads (and connections) let PostgreSQL group them. 16 was
# the best setting on the 2-CPU machine of bench/results/events-latest.md.
threads=${MLGW_THREADS:-16}
jobs=${BENCH_JOBS:-1000}
dir=build/bench-events
gw=build/ml-gateway
mkdir -p "$dir" bench/results
[[ -x "$gw" ]] || { echo "events.sh: build first (make)" >&2; exit 1; }
log() { echo "bench-events: $*" >&2; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_database events
url=$DATABASE_URL
secret=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
export MLGW_LOG_LEVEL=warn MLGW_CALLBACK_SECRET=$secret \
  MLGW_THREADS=$threads MLGW_DB_POOL_SIZE=$threads \
  MLGW_DISPATCH_WORKERS=0 MLGW_NOTIFY_WORKERS=0 MLGW_LOCAL_ROOT=$PWD/$dir/local
"$gw" migrate 2>"$dir/migrate.log"
psql "$url" -X -q -v ON_ERROR_STOP=1 -c "
  INSERT INTO jobs (id, status, script_key, compute_type, vcpus, memory, gpus, dispatch,
                    batch_job_id, output_uri)
  SELECT gen_random_uuid(), 'SUBMITTED', 'jobs/bench.py', 'cpu', 2, 4096, 0, 'batch',
         'bench-' || n, 's3://bench/jobs/' || n || '/'
  FROM generate_series(1, $jobs) AS n"

bench_start_gateway

log "wrk -t2 -c$conns -d${duration}s (events for $jobs jobs)"
BENCH_CALLBACK_SECRET=$secret BENCH_EVENT_JOBS=$jobs wrk -t2 -c"$conns" -d"${duration}s" --latency \
  -s bench/wrk.lua "http://127.0.0.1:$port/events/batch" >"$dir/wrk.txt" 2>&1
# bench.py stops the run when any request failed.
read -r rps p50 p99 n < <(python3 bench/bench.py wrk "$dir/wrk.txt")
stored=$(psql "$url" -X -t -A -c "SELECT count(*) FROM job_events")
((stored >= n)) || { echo "events.sh: wrk counted $n events but $stored were recorded" >&2; exit 1; }
rss=$(awk '/VmHWM/ {print $2}' "/proc/$gw_pid/status")
verdict=missed
python3 -c "import sys; sys.exit(0 if float('$rps') >= 5000 else 1)" && verdict=met

out=bench/results/events-latest.md
{
  echo "# ml-gateway callback ingest — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "Host: \`$(uname -srm)\`, $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)."
  echo "PostgreSQL $(psql "$url" -X -t -A -c 'SHOW server_version') with fsync on; release gateway, logs at warn, MLGW_THREADS=$threads and MLGW_DB_POOL_SIZE=$threads."
  echo "wrk \`-t2 -c$conns -d${duration}s\`, every request a new event id for one of $jobs jobs."
  echo
  echo "| Events/s | p50 (ms) | p99 (ms) | Events | Recorded | Gateway peak RSS (MiB) | Goal ≥ 5000/s |"
  echo "|---:|---:|---:|---:|---:|---:|---|"
  echo "| $rps | $p50 | $p99 | $n | $stored | $(awk "BEGIN {printf \"%.1f\", $rss / 1024}") | **$verdict** |"
} >"$out"
cat "$out"
