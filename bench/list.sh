#!/usr/bin/env bash
# list.sh — the list endpoints at scale: 1,000,000 jobs (BENCH_LIST_JOBS) in
# a private PostgreSQL (fsync on), spread over 4 teams, 10 statuses, 2
# compute types, 1,000 users, 100 projects and a year of creation times; then
# GET /jobs with each filter alone and the worst combinations, as a key of
# one team (so the team filter is always on) and as admin, measuring p50/p99
# over BENCH_LIST_REQUESTS requests each (one at a time, 200 by default),
# including filters whose answer is empty (the expensive case: nothing stops
# the scan early). Writes bench/results/list-latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${BENCH_LIST_JOBS:-1000000}
reqs=${BENCH_LIST_REQUESTS:-200}
dir=build/bench-list
gw=build/ml-gateway
mkdir -p "$dir" bench/results
[[ -x "$gw" ]] || { echo "list.sh: build first (make)" >&2; exit 1; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_database list
url=$DATABASE_URL
export MLGW_LOG_LEVEL=warn MLGW_NOTIFY_WORKERS=0 MLGW_DISPATCH_WORKERS=0
bench_start_gateway
team_key=$("$gw" keys create --name bench-team --scopes jobs:read --team team-1 --rate 1000000 --burst 1000000 2>/dev/null)
admin_key=$("$gw" keys create --name bench-admin --scopes admin --rate 1000000 --burst 1000000 2>/dev/null)

echo "list.sh: inserting $n jobs" >&2
t0=$(date +%s)
psql "$url" -X -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO jobs (id, status, script_key, compute_type, vcpus, memory, gpus, dispatch,
                  output_uri, metadata, team, created_at, updated_at)
SELECT gen_random_uuid(),
       (ARRAY['QUEUED','SUBMITTED','RUNNABLE','RUNNING','SUCCEEDED','SUCCEEDED','SUCCEEDED',
              'FAILED','CANCELLED','DISPATCH_FAILED'])[1 + i % 10],
       'jobs/train.py', CASE WHEN i % 3 = 0 THEN 'gpu' ELSE 'cpu' END, 2, 4096,
       CASE WHEN i % 3 = 0 THEN 1 ELSE 0 END, 'batch', 's3://bench/out/',
       jsonb_build_object('user', 'user-' || (i % 1000), 'project', 'project-' || (i % 100),
                          'experiment', 'exp-' || (i % 5000)),
       'team-' || (i % 4),
       now() - make_interval(secs => (i::float8 / $n) * 365 * 86400),
       now()
FROM generate_series(1, $n) AS i;
ANALYZE jobs;
SQL
echo "list.sh: inserted in $(( $(date +%s) - t0 )) s" >&2

python3 bench/bench.py list "http://127.0.0.1:$port" "$team_key" "$admin_key" "$reqs" >"$dir/result.txt"
out=bench/results/list-latest.md
{
  echo "# ml-gateway list endpoints at scale — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "Host: \`$(uname -srm)\`, $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)."
  echo "PostgreSQL $(psql "$url" -X -t -A -c 'SHOW server_version') with fsync on; release gateway, logs at warn."
  echo "$n jobs over 4 teams; $reqs requests per row, one at a time; limit 50 (the default)."
  echo "MLGW_DB_STATEMENT_TIMEOUT_MS bounds any one statement (default 5000 ms): a slower one is 503."
  echo
  echo "| Query | Key | p50 (ms) | p99 (ms) | items | statuses |"
  echo "|---|---|---:|---:|---:|---|"
  cat "$dir/result.txt"
} >"$out"
cat "$out"
