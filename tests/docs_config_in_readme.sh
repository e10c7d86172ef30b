#!/usr/bin/env bash
# The README's settings table must be exactly what `ml-gateway config` prints.
set -euo pipefail
bin=$1
readme=$2
missing=0
while IFS= read -r line; do
  if ! grep -qxF -- "$line" "$readme"; then
    echo "README.md lacks or differs on: $line" >&2
    missing=1
  fi
done < <("$bin" config)
[[ $missing -eq 0 ]] && echo "README settings table matches the code"
exit $missing
