#!/usr/bin/env bash
# venv.sh DIR REQUIREMENTS — creates a Python venv from a requirements file
# (the test tools of tests/requirements.txt, the lint tools of
# scripts/lint-requirements.txt) when missing or out of date.
set -euo pipefail
dir=$1
req=$2
stamp="$dir/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
py=$(command -v python3)
echo "venv: creating $dir from $req" >&2
rm -rf "$dir"
"$py" -m venv "$dir"
"$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
"$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
echo "$want" > "$stamp"
