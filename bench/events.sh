#!/usr/bin/env bash
# events.sh — callback ingest rate: wrk POSTs distinct EventBridge "Batch Job
# State Change" events to the release gateway (dedup on: every event id is
# recorded) on a private PostgreSQL with fsync on, twice: with group commit on
# (MLGW_GROUP_COMMIT=on), then off, a fresh gateway each time, with the
# gateway's default settings otherwise (MLGW_THREADS, MLGW_DB_POOL_SIZE,
# MLGW_DB_WRITERS, MLGW_GROUP_COMMIT_MAX are passed on when set). Writes
# bench/results/events-latest.md and bench/results/events-<UTC timestamp>.md.
# Goals: ≥ 5,000 events/s with group commit on, and on ÷ off ≥ 2. With
# BENCH_ROUNDS=N (1), N rounds of on then off: the figures are the medians of
# the rounds, the ratio the median of the rounds' ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNECTIONS:-32}
jobs=${BENCH_JOBS:-1000}
rounds=${BENCH_ROUNDS:-1}
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "events.sh: BENCH_ROUNDS must be a positive integer" >&2; exit 1; }
dir=build/bench-events
gw=build/ml-gateway
mkdir -p "$dir" bench/results
[[ -x "$gw" ]] || { echo "events.sh: build first (make)" >&2; exit 1; }
log() { echo "bench-events: $*" >&2; }
gc_note=""
if ! grep -qaF MLGW_GROUP_COMMIT "$gw"; then
  gc_note="Warning: $gw does not read MLGW_GROUP_COMMIT (no group commit in this build): the runs \"on\" and \"off\" ran the same code."
  log "$gc_note"
fi

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_database events
url=$DATABASE_URL
psql_q() { psql "$url" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }
secret=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
export MLGW_LOG_LEVEL=warn MLGW_CALLBACK_SECRET=$secret \
  MLGW_DISPATCH_WORKERS=0 MLGW_NOTIFY_WORKERS=0 MLGW_LOCAL_ROOT=$PWD/$dir/local
"$gw" migrate 2>"$dir/migrate.log"
psql_q "
  INSERT INTO jobs (id, status, script_key, compute_type, vcpus, memory, gpus, dispatch,
                    batch_job_id, output_uri)
  SELECT gen_random_uuid(), 'SUBMITTED', 'jobs/bench.py', 'cpu', 2, 4096, 0, 'batch',
         'bench-' || n, 's3://bench/jobs/' || n || '/'
  FROM generate_series(1, $jobs) AS n"

# run_events MODE: a gateway with MLGW_GROUP_COMMIT=MODE, the wrk run, the check
# that job_events gained at least as many rows as wrk counted events; sets
# `result` to "events/s p50_ms p99_ms events recorded peak_rss_kib".
run_events() {
  local rps p50 p99 n before stored rss
  psql_q CHECKPOINT
  before=$(psql_q "SELECT count(*) FROM job_events")
  MLGW_GROUP_COMMIT=$1 gw_log=gateway-$1 bench_start_gateway
  log "group commit $1: wrk -t2 -c$conns -d${duration}s (events for $jobs jobs)"
  BENCH_CALLBACK_SECRET=$secret BENCH_EVENT_JOBS=$jobs wrk -t2 -c"$conns" -d"${duration}s" --latency \
    -s bench/wrk.lua "http://127.0.0.1:$port/events/batch" >"$dir/wrk-$1.txt" 2>&1
  # bench.py stops the run when any request failed.
  read -r rps p50 p99 n < <(python3 bench/bench.py wrk "$dir/wrk-$1.txt")
  stored=$(($(psql_q "SELECT count(*) FROM job_events") - before))
  ((stored >= n)) || { echo "events.sh: wrk counted $n events but $stored were recorded (group commit $1)" >&2; exit 1; }
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$gw_pid/status")
  bench_stop_gateway
  result="$rps $p50 $p99 $n $stored $rss"
}

# Not in $( ): a failed run must stop the script, and the gateway's pid must
# stay visible to bench_cleanup.
on_runs=() off_runs=() ratios=()
for ((r = 1; r <= rounds; r++)); do
  ((rounds == 1)) || log "round $r of $rounds"
  run_events on
  on_runs+=("$result")
  run_events off
  off_runs+=("$result")
  ratios+=("$(awk -v a="${on_runs[-1]%% *}" -v b="${off_runs[-1]%% *}" 'BEGIN { printf "%.2f", a / b }')")
done
# The run whose events/s is the median of the rounds (lines "rps ..."), and the median ratio.
median_run() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }
read -r on_rps on_p50 on_p99 on_n on_stored on_rss <<<"$(median_run "${on_runs[@]}")"
read -r off_rps off_p50 off_p99 off_n off_stored off_rss <<<"$(median_run "${off_runs[@]}")"
ratio=$(median_run "${ratios[@]}")

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
atleast() { awk -v v="$1" -v goal="$2" 'BEGIN { print (v >= goal ? "met" : "**missed**") }'; }
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] || commit="$commit (with uncommitted changes)"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/events-latest.md
{
  echo "# ml-gateway callback ingest — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "Host: \`$(uname -srm)\`, $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)."
  echo "PostgreSQL $(psql_q 'SHOW server_version') with fsync on; release gateway at $commit, logs at warn,"
  echo "MLGW_THREADS=${MLGW_THREADS:-default}, MLGW_DB_POOL_SIZE=${MLGW_DB_POOL_SIZE:-default},"
  echo "MLGW_DB_WRITERS=${MLGW_DB_WRITERS:-default}, MLGW_GROUP_COMMIT_MAX=${MLGW_GROUP_COMMIT_MAX:-default}."
  echo "wrk \`-t2 -c$conns -d${duration}s\`, every request a new event id for one of $jobs jobs; $rounds round(s) of"
  echo "one run with MLGW_GROUP_COMMIT=on, then one with off, each by a fresh gateway after a CHECKPOINT."
  ((rounds == 1)) || echo "Each row is the round whose events/s is the median; the ratio is the median of the rounds' ratios."
  [[ -z "$gc_note" ]] || printf '\n**%s**\n' "$gc_note"
  echo
  echo "| Group commit | Events/s | p50 (ms) | p99 (ms) | Events | Recorded | Gateway peak RSS (MiB) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| on | $on_rps | $on_p50 | $on_p99 | $on_n | $on_stored | $(mib "$on_rss") |"
  echo "| off | $off_rps | $off_p50 | $off_p99 | $off_n | $off_stored | $(mib "$off_rss") |"
  echo
  echo "| Goal | Measured | Goal | |"
  echo "|---|---:|---:|---|"
  echo "| Events/s, group commit on | $on_rps | ≥ 5000 | $(atleast "$on_rps" 5000) |"
  echo "| Events/s, group commit on ÷ off | $ratio | ≥ 2 | $(atleast "$ratio" 2) |"
  if ((rounds > 1)); then
    echo
    echo "| Round | on (events/s) | off (events/s) | on ÷ off |"
    echo "|---:|---:|---:|---:|"
    for ((r = 0; r < rounds; r++)); do
      echo "| $((r + 1)) | ${on_runs[r]%% *} | ${off_runs[r]%% *} | ${ratios[r]} |"
    done
  fi
} >"$out"
cp "$out" "bench/results/events-$stamp.md"
cat "$out"
log "written to $out and bench/results/events-$stamp.md"
