#!/usr/bin/env bash
# lock.sh [IMAGE...] — regenerates images/<image>/requirements.txt from
# requirements.in: every package the image installs, pinned with its hashes, resolved
# for CPython 3.11 on linux/amd64 (manylinux_2_28) from PyPI. Needs uv
# (`pip install uv`); reads only package metadata, downloads no wheel.
#
# Versions already in requirements.txt are kept where requirements.in allows them;
# UPGRADE=1 moves every package to its newest allowed version.
#
# The Dockerfiles install the lock with `pip install --no-deps --require-hashes`, so
# what is built is exactly what is listed. ml-python-slim's torch and torchaudio come
# from the PyTorch CPU index instead and are left out, with the CUDA wheels
# (nvidia-*, triton) only their PyPI builds need.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v uv >/dev/null 2>&1; then
  echo "lock.sh: uv is not on PATH (pip install uv)" >&2
  exit 1
fi
images=("$@")
[[ ${#images[@]} -gt 0 ]] || images=(ml-python-slim ml-python)

upgrade=()
[[ -z ${UPGRADE:-} ]] || upgrade=(--upgrade)

compile() { # IN OUT [uv options...]
  local in=$1 out=$2
  shift 2
  uv pip compile "$in" "${upgrade[@]}" --quiet --python-version 3.11 \
    --python-platform x86_64-manylinux_2_28 --index-url https://pypi.org/simple \
    --generate-hashes --custom-compile-command "images/lock.sh" -o "$out" "$@"
}

for image in "${images[@]}"; do
  in=$image/requirements.in
  if [[ ! -f $in ]]; then
    echo "lock.sh: no $in (images: ml-python-slim, ml-python)" >&2
    exit 2
  fi
  skip=()
  if [[ $image == ml-python-slim ]]; then
    # A first pass names the packages that only the CUDA build of torch needs.
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    compile "$in" "$tmp" --no-annotate
    mapfile -t cuda < <(grep -oE '^(nvidia-[a-z0-9-]+|triton)==' "$tmp" | tr -d '=')
    for name in torch torchaudio "${cuda[@]}"; do
      skip+=(--no-emit-package "$name")
    done
  fi
  compile "$in" "$image/requirements.txt" "${skip[@]}"
  echo "lock.sh: $image/requirements.txt: $(grep -cE '^[a-z0-9]' "$image/requirements.txt") packages" >&2
done
