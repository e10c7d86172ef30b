#!/usr/bin/env bash
# gpu-check.sh — on a machine with an NVIDIA GPU: runs examples/gpu_training.py
# through the local executor (POST /jobs, dispatch local, 1 GPU, bf16) on a
# private PostgreSQL and prints the job's samples/s and model FLOP
# utilisation (MFU) from its published metrics.json. Needs a Python with a
# CUDA build of PyTorch: MLGW_LOCAL_PYTHON, else build/venv/bin/python.
# GPU_PEAK_TFLOPS overrides the bf16 dense peak looked up from nvidia-smi's
# GPU name. Writes bench/results/gpu-check-latest.md. Exit 2: no GPU here.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build/gpu-check
gw=build/ml-gateway
python=${MLGW_LOCAL_PYTHON:-$PWD/build/venv/bin/python}
epochs=${GPU_CHECK_EPOCHS:-3}
samples=${GPU_CHECK_SAMPLES:-2097152}
device=${GPU_CHECK_DEVICE:-cuda}
mkdir -p "$dir" bench/results
[[ -x "$gw" ]] || make build
if [[ "$device" == cpu ]]; then
  samples=${GPU_CHECK_SAMPLES:-16384}
elif ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu-check: no CUDA GPU visible to $python (torch.cuda.is_available() is false)" >&2
  exit 2
fi
name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
peak=${GPU_PEAK_TFLOPS:-}
if [[ -z "$peak" ]]; then
  # bf16 dense tensor-core peaks from the vendors' data sheets (SXM parts).
  case "$name" in
    *H200*|*H100*) peak=989 ;;
    *A100*) peak=312 ;;
    *L40S*) peak=362 ;;
    *L4*) peak=121 ;;
    *A10G*) peak=70 ;;
    *) peak="" ;;
  esac
fi

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_database gpucheck
rm -rf "$dir/root"
mkdir -p "$dir/root/input/jobs"
cp examples/*.py "$dir/root/input/jobs/"
export MLGW_LOG_LEVEL=warn MLGW_NOTIFY_WORKERS=0 MLGW_LOCAL_ROOT=$PWD/$dir/root \
  MLGW_LOCAL_PYTHON=$python
bench_start_gateway
key=$("$gw" keys create --name gpu-check --scopes jobs:read,jobs:write --rate 1000000 --burst 1000000 2>/dev/null)

if [[ "$device" == cpu ]]; then
  shape='"--hidden", "256", "--layers", "2", "--batch-size", "1024", "--precision", "fp32"'
  resources='"compute_type": "cpu", "vcpus": 1, "memory": 1024'
  out=$dir/result.md
else
  shape='"--hidden", "4096", "--layers", "4", "--batch-size", "8192", "--precision", "bf16"'
  resources='"compute_type": "gpu", "gpus": 1, "vcpus": 1, "memory": 4096'
  out=bench/results/gpu-check-latest.md
fi
args="[\"--epochs\", \"$epochs\", \"--samples\", \"$samples\", $shape, \"--device\", \"$device\"${peak:+, \"--peak-tflops\", \"$peak\"}]"
body="{\"script_key\": \"jobs/gpu_training.py\", $resources, \"args\": $args}"
id=$(curl -sf -X POST "http://127.0.0.1:$port/jobs" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d "$body" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "gpu-check: job $id on ${name:-an unknown GPU}" >&2
status=""
for _ in $(seq 1 1200); do
  status=$(curl -sf "http://127.0.0.1:$port/jobs/$id" -H "Authorization: Bearer $key" |
    python3 -c 'import json, sys; j = json.load(sys.stdin); print(j["status"], j.get("status_reason") or "")')
  case "$status" in SUCCEEDED*|FAILED*|CANCELLED*) break ;; esac
  sleep 0.5
done
tail -n 20 "$dir/root/logs/$id.log" >&2 || true
[[ "$status" == SUCCEEDED* ]] || { echo "gpu-check: the job ended $status" >&2; exit 1; }
metrics=$dir/root/output/jobs/$id/metrics.json
python3 - "$metrics" "$name" "$peak" >"$out" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
name, peak = sys.argv[2] or "unknown GPU", sys.argv[3]
mfu = m.get("mfu")
print(f"# gpu_training.py through the local executor on {name}\n")
print(f"- device: {m.get('device')}, precision: {m.get('precision')}")
print(f"- samples/s: {m.get('samples_per_s'):,.0f}")
print(f"- achieved: {m.get('achieved_flops_per_s', 0) / 1e9:,.1f} GFLOP/s (training FLOPs per sample: "
      f"{m.get('flops_per_sample', {}).get('train')})")
print(f"- MFU: {100 * mfu:.1f}% of {peak} TFLOP/s bf16" if mfu else "- MFU: unknown peak (set GPU_PEAK_TFLOPS)")
PY
cat "$out"
