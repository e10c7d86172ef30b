#!/usr/bin/env bash
# moto.sh start|stop DIR VENV — moto in server mode on a free loopback port,
# the AWS emulator the aws/ tests talk to. start writes DIR/url, configures
# Batch to run jobs without Docker and creates the test resources
# (tests/tools/moto_setup.py) into DIR/resources.json; stop ends it.
set -euo pipefail
cmd=${1:?usage: moto.sh start|stop DIR VENV}
dir=${2:?usage: moto.sh start|stop DIR VENV}
venv=${3:-}
mkdir -p "$dir"

case "$cmd" in
start)
  py="$venv/bin/python"
  [[ -x "$py" ]] || { echo "moto.sh: no Python venv at $venv (make venv)" >&2; exit 1; }
  if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    sleep 0.5
  fi
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # -H 127.0.0.1: moto binds to every interface otherwise.
  setsid "$py" -m moto.server -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  url="http://127.0.0.1:$port"
  deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    if curl -sf -o /dev/null "$url/moto-api/"; then
      curl -sf -X POST -H 'Content-Type: application/json' \
        -d '{"batch": {"use_docker": false}}' "$url/moto-api/config" >/dev/null
      echo "$url" > "$dir/url"
      here=$(cd "$(dirname "$0")" && pwd)
      "$py" "$here/../tools/moto_setup.py" "$url" > "$dir/resources.json"
      exit 0
    fi
    sleep 0.2
  done
  echo "moto.sh: moto did not start within 60 s; its log:" >&2
  tail -n 30 "$dir/moto.log" >&2
  exit 1
  ;;
stop)
  if [[ -f "$dir/pid" ]]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
  ;;
*)
  echo "moto.sh: unknown command '$cmd'" >&2
  exit 2
  ;;
esac
