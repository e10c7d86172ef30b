#!/usr/bin/env bash
# commits.sh — what bounds the write path. On a private PostgreSQL (fsync on)
# migrated by the release gateway, pgbench runs the very INSERT of POST /jobs
# (db/jobs.c's JOB_INSERT_CTE, as bench/run.sh extracts it):
#   1. one job per transaction, as the gateway commits today (with the
#      outbox trigger's NOTIFY, which wakes the dispatchers);
#   2. the same with the outbox trigger's NOTIFY disabled;
#   3. BATCH jobs per transaction (what group commit would do), NOTIFYs on;
#   4. one client, one job per transaction (the commit latency alone);
# beside pg_test_fsync's rate of one 8 kB write + fdatasync on the same disk.
# Writes bench/results/commits-latest.md. Settings: BENCH_DURATION (10),
# BENCH_CONNECTIONS (16), BENCH_BATCH (16).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNECTIONS:-16}
batch=${BENCH_BATCH:-16}
dir=build/bench-commits
gw=build/ml-gateway
mkdir -p "$dir" bench/results
[[ -x "$gw" ]] || { echo "commits.sh: build first (make)" >&2; exit 1; }
log() { echo "bench-commits: $*" >&2; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_database commits
url=$DATABASE_URL
"$gw" migrate 2>"$dir/migrate.log"
psql_q() { psql "$url" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }

# A job as bench/run.sh's POST body makes it, for the statement's parameters.
psql_q "INSERT INTO jobs (id, status, script_key, compute_type, vcpus, memory, gpus, metadata,
          dispatch, output_uri)
        VALUES (gen_random_uuid(), 'QUEUED', 'jobs/bench.py', 'cpu', 2, 4096, 0,
          '{\"user\": \"bench\"}', 'local', 'file:///bench/')" >/dev/null
psql_q "SELECT to_jsonb(j) FROM jobs j LIMIT 1" >"$dir/seed-row.json"
python3 bench/bench.py pgbench-script db/jobs.c "$dir/seed-row.json" "$dir/one.sql" "$dir/defs"
defs=()
while IFS= read -r d; do defs+=(-D "$d"); done <"$dir/defs"
{
  echo "BEGIN;"
  for ((i = 0; i < batch; i++)); do cat "$dir/one.sql"; done
  echo "COMMIT;"
} >"$dir/batch.sql"

run_pgbench() { # NAME SCRIPT CLIENTS: prints "tps p50_ms p99_ms transactions"
  local j=$(($3 < 2 ? 1 : 2))
  psql_q CHECKPOINT
  rm -f "$dir/log-$1".*
  log "pgbench $1: -c $3 -j $j -T $duration -f $2"
  pgbench -n -M prepared -c "$3" -j "$j" -T "$duration" -f "$2" "${defs[@]}" -l \
    --log-prefix="$dir/log-$1" "$url" >"$dir/pgbench-$1.txt" 2>&1 \
    || { cat "$dir/pgbench-$1.txt" >&2; exit 1; }
  python3 bench/bench.py pgbench "$dir/pgbench-$1.txt" "$dir/log-$1"
}

log "pg_test_fsync in $dir/pg"
pg_bin=$(pg_config --bindir 2>/dev/null || true)
fsync_tool=$pg_bin/pg_test_fsync
[[ -x "$fsync_tool" ]] || fsync_tool=$(compgen -G '/usr/lib/postgresql/*/bin/pg_test_fsync' | tail -1)
"$fsync_tool" -s 3 -f "$dir/pg/fsync-test" >"$dir/fsync.txt" 2>&1
rm -f "$dir/pg/fsync-test"
fsync_ops=$(awk '/one 8kB write/ { on = 1 } on && $1 == "fdatasync" { print $2; exit }' "$dir/fsync.txt")

one=$(run_pgbench one "$dir/one.sql" "$conns")
psql_q "ALTER TABLE dispatch_outbox DISABLE TRIGGER dispatch_outbox_notify"
quiet=$(run_pgbench quiet "$dir/one.sql" "$conns")
psql_q "ALTER TABLE dispatch_outbox ENABLE TRIGGER dispatch_outbox_notify"
batched=$(run_pgbench batch "$dir/batch.sql" "$conns")
single=$(run_pgbench single "$dir/one.sql" 1)

read -r one_tps one_p50 one_p99 _ <<<"$one"
read -r quiet_tps quiet_p50 quiet_p99 _ <<<"$quiet"
read -r b_tps b_p50 b_p99 _ <<<"$batched"
read -r s_tps s_p50 s_p99 _ <<<"$single"
b_jobs=$(awk -v t="$b_tps" -v n="$batch" 'BEGIN { printf "%.1f", t * n }')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
busy=$(awk '{ print $1 }' /proc/loadavg)
{
  echo "# ml-gateway write path: what bounds it — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "Host: \`$(uname -srm)\`, $(nproc) CPUs, ${cpu:-unknown CPU}; load average $busy at the end."
  echo "PostgreSQL $(psql_q 'SHOW server_version'), fsync=$(psql_q 'SHOW fsync'), synchronous_commit=$(psql_q 'SHOW synchronous_commit')."
  echo "pgbench \`-n -M prepared -T $duration\`, the INSERT of POST /jobs (\`JOB_INSERT_CTE\`)."
  echo
  echo "| Run | Transactions/s | Jobs/s | p50 (ms) | p99 (ms) |"
  echo "|---|---:|---:|---:|---:|"
  echo "| pg_test_fsync: one 8 kB write + fdatasync | $fsync_ops | | | |"
  echo "| 1 client, 1 job a transaction | $s_tps | $s_tps | $s_p50 | $s_p99 |"
  echo "| $conns clients, 1 job a transaction (as today) | $one_tps | $one_tps | $one_p50 | $one_p99 |"
  echo "| $conns clients, 1 job a transaction, the outbox NOTIFY disabled | $quiet_tps | $quiet_tps | $quiet_p50 | $quiet_p99 |"
  echo "| $conns clients, $batch jobs a transaction | $b_tps | $b_jobs | $b_p50 | $b_p99 |"
  echo
  echo "Ratios: without NOTIFY ÷ with: $(ratio "$quiet_tps" "$one_tps"); $batch jobs a transaction ÷ one (jobs/s): $(ratio "$b_jobs" "$one_tps"); one job a transaction at $conns clients ÷ fdatasync rate: $(ratio "$one_tps" "$fsync_ops")."
} >bench/results/commits-latest.md
cat bench/results/commits-latest.md
