#!/usr/bin/env bash
# run.sh — `make run`: serves the gateway in the foreground on 127.0.0.1:8080
# (MLGW_LISTEN overrides). Without DATABASE_URL it starts a private
# PostgreSQL under ./var/pg first. Ctrl-C stops the gateway gracefully, then
# the PostgreSQL it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

started_pg=0
if [[ -z "${DATABASE_URL:-}" ]]; then
  scripts/pg.sh start var/pg
  started_pg=1
  DATABASE_URL=$(cat var/pg/url)
  export DATABASE_URL
fi
export MLGW_LISTEN=${MLGW_LISTEN:-127.0.0.1:8080}
export MLGW_MIGRATIONS_DIR=${MLGW_MIGRATIONS_DIR:-$root/migrations}

gw_pid=""
cleanup() {
  trap - INT TERM EXIT
  if [[ -n "$gw_pid" ]] && kill -0 "$gw_pid" 2>/dev/null; then
    kill -TERM "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
  fi
  if [[ $started_pg -eq 1 ]]; then
    scripts/pg.sh stop var/pg || true
    echo "run: stopped the private PostgreSQL (data kept in var/pg)" >&2
  fi
}
trap cleanup INT TERM EXIT

# A development API key, created on first start and kept in var/dev-api-key
# (mode 600) while the database still knows it.
build/ml-gateway migrate 2>/dev/null || build/ml-gateway migrate
mkdir -p var
keyfile=var/dev-api-key
key=""
if [[ -s "$keyfile" ]]; then
  key=$(cat "$keyfile")
  hash=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
  known=$(psql "$DATABASE_URL" -X -tAc \
    "SELECT 1 FROM api_keys WHERE key_hash = decode('$hash', 'hex') AND revoked_at IS NULL" 2>/dev/null || true)
  [[ "$known" == 1 ]] || key=""
fi
if [[ -z "$key" ]]; then
  key=$(build/ml-gateway keys create --name "dev-$(hostname)" --scopes jobs:read,jobs:write,admin 2>/dev/null)
  (umask 077; printf '%s\n' "$key" > "$keyfile")
  echo "run: created a development API key (admin) in $keyfile" >&2
fi

# Local jobs (the default dispatch) read their scripts from var/local/input:
# the examples are put there as jobs/<name>.py (a newer example replaces an
# older copy; other files there are left alone).
export MLGW_LOCAL_ROOT=${MLGW_LOCAL_ROOT:-$root/var/local}
mkdir -p "$MLGW_LOCAL_ROOT/input/jobs"
cp -u examples/*.py "$MLGW_LOCAL_ROOT/input/jobs/"
# Local jobs run in the job sandbox as an unprivileged user of their own
# (when this runs as root): make it if missing, and let it use the root.
scripts/sandbox-user.sh "$MLGW_LOCAL_ROOT"
# The training and inference examples need PyTorch: local jobs run with the
# interpreter of build/jobs-venv (make run makes it from examples/requirements.txt),
# else of the test venv, whichever has it.
for venv in build/jobs-venv build/venv; do
  if [[ -z "${MLGW_LOCAL_PYTHON:-}" && -x $venv/bin/python ]] &&
     $venv/bin/python -c 'import torch' 2>/dev/null; then
    export MLGW_LOCAL_PYTHON=$root/$venv/bin/python
  fi
done
# The job sandbox shows jobs the interpreter's own installation: name the real one (a
# pyenv shim found in PATH would not run there).
if [[ -z "${MLGW_LOCAL_PYTHON:-}" ]]; then
  MLGW_LOCAL_PYTHON=$(python3 -c 'import sys; print(sys.executable)')
  export MLGW_LOCAL_PYTHON
fi

base="http://${MLGW_LISTEN}"
cat >&2 <<MSG
run: ml-gateway on $base (Ctrl-C stops it)
run: your API key: $key
run: try:
  curl -s $base/healthz
  curl -s -X POST $base/jobs -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \\
       -d '{"script_key": "jobs/cpu_processing.py", "compute_type": "cpu", "vcpus": 1, "memory": 512,
            "args": ["--groups", "4", "--signals-per-group", "50"], "metadata": {"user": "me"}}'
  curl -s "$base/jobs?limit=5" -H "Authorization: Bearer $key"
  curl -s "$base/jobs/<id>/logs" -H "Authorization: Bearer $key"
  ls $MLGW_LOCAL_ROOT/output/jobs/<id>/
MSG

build/ml-gateway &
gw_pid=$!
set +e
wait "$gw_pid"
status=$?
# A signal interrupts `wait`; wait again for the gateway's graceful exit.
if kill -0 "$gw_pid" 2>/dev/null; then
  wait "$gw_pid"
  status=$?
fi
set -e
gw_pid=""
exit "$status"
