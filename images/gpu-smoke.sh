#!/usr/bin/env bash
# gpu-smoke.sh [IMAGE] — the GPU image end to end, on a machine with Docker, an NVIDIA
# GPU and the NVIDIA Container Toolkit (`docker run --gpus all` works).
#
#   1. builds images/ml-python/Dockerfile for linux/amd64 into the local engine as IMAGE
#      (default ml-python:smoke); with SKIP_BUILD=1 uses IMAGE as it is (a pushed one);
#   2. checks that PyTorch and TensorFlow each see the GPU inside it;
#   3. runs examples/gpu_training.py for one epoch through the job entrypoint exactly as
#      AWS Batch would (the image's own ENTRYPOINT, user and environment), with the script
#      read from a local input folder and the outputs published to a local folder;
#   4. checks the manifest: exit code 0, job id and attempt, checkpoint.pt and metrics.json
#      listed with the sizes and SHA-256 of the published files, and metrics.json trained
#      one epoch on CUDA.
#
# Exit status 0 when every check passed; the work folder is kept on failure. Takes the
# image's build time (~15-20 minutes from scratch) plus about a minute.
set -euo pipefail

image=${1:-ml-python:smoke}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

fail() {
  echo "gpu-smoke: FAILED: $*" >&2
  exit 1
}

for tool in docker python3; do
  command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not on PATH"
done

if [[ -z ${SKIP_BUILD:-} ]]; then
  echo "gpu-smoke: building $image" >&2
  docker buildx build --platform linux/amd64 --load -f "$here/ml-python/Dockerfile" \
    -t "$image" "$here" || fail "the image does not build"
fi

echo "gpu-smoke: frameworks and the GPU" >&2
docker run --rm --gpus all --entrypoint /opt/venv/bin/python "$image" -c '
import tensorflow as tf, torch
assert torch.cuda.is_available(), "PyTorch sees no GPU"
gpus = tf.config.list_physical_devices("GPU")
assert gpus, "TensorFlow sees no GPU"
x = tf.random.normal((256, 256))
tf.debugging.assert_all_finite(tf.linalg.matmul(x, x), "TensorFlow matmul")
y = torch.randn(256, 256, device="cuda")
assert torch.isfinite(y @ y).all(), "PyTorch matmul"
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}, "
      f"tensorflow {tf.__version__} with {len(gpus)} GPU(s)")
' || fail "the frameworks do not see the GPU"

work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-smoke.XXXXXX")
mkdir -p "$work/input/jobs" "$work/published"
cp "$root/examples/gpu_training.py" "$work/input/jobs/"
# The job runs as the image's non-root user (uid 10001): it must be able to write here.
chmod 0777 "$work/published"

echo "gpu-smoke: gpu_training.py, one epoch, through the entrypoint (work folder $work)" >&2
set +e
docker run --rm --gpus all \
  -e JOB_ID=gpu-smoke -e MLGW_ATTEMPT=1 -e SCRIPT_KEY=jobs/gpu_training.py \
  -e MLGW_INPUT_DIR=/input -e MLGW_OUTPUT_URI=file:///published/ \
  -v "$work/input:/input:ro" -v "$work/published:/published" \
  "$image" --epochs 1 --samples 65536 --batch-size 1024 --device cuda
status=$?
set -e
[[ $status -eq 0 ]] || fail "the job exited with $status (outputs in $work/published)"

python3 - "$work/published" <<'EOF' || fail "the published outputs are not right (see $work)"
import hashlib, json, os, sys
out = sys.argv[1]
with open(os.path.join(out, "manifest.json")) as handle:
    manifest = json.load(handle)
assert manifest["exit_code"] == 0, manifest
assert manifest["job_id"] == "gpu-smoke" and manifest["attempt"] == 1, manifest
assert "error" not in manifest, manifest["error"]
files = {f["path"]: f for f in manifest["files"]}
assert {"checkpoint.pt", "metrics.json"} <= set(files), sorted(files)
for path, entry in files.items():
    with open(os.path.join(out, path), "rb") as handle:
        data = handle.read()
    assert len(data) == entry["size"], path
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], path
with open(os.path.join(out, "metrics.json")) as handle:
    metrics = json.load(handle)
assert metrics["status"] == "completed", metrics["status"]
assert metrics["device"].startswith("cuda"), metrics["device"]
assert metrics["epochs_done"] == 1, metrics["epochs_done"]
print(f"manifest: {len(files)} file(s), {manifest['duration_seconds']} s; "
      f"{metrics['device']}, {metrics['precision']}, "
      f"{metrics['samples_per_s'] or 0:.0f} samples/s")
EOF

rm -rf "$work"
echo "gpu-smoke: ok" >&2
