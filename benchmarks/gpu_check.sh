#!/usr/bin/env bash
# The runner's GPU path, for real, on a machine with an NVIDIA GPU and PyTorch (issue 5):
#   1. benchmarks/runner_overhead.py per precision: the runner's CUDA-event timing against
#      torch.utils.benchmark on the same models (within 5 %) and its own overhead (< 1 %);
#   2. `python -m runner` as in a pod: KAIML_CONFIG_DIR + KAIML_CONFIG_INDEXES + JOB_COMPLETION_INDEX
#      + NODE_NAME, gpuCount 1, the built-in models and a TorchScript ResNet-50 (the resnet-gpus
#      sweep's model), each record checked (status ok, device type cuda, GPU name, node).
# Usage: benchmarks/gpu_check.sh [OUTDIR]   (figures and records land in OUTDIR, default ./gpu-check)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-check}
mkdir -p "$out"
: >"$out/runner.log"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
"$py" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version(), "GPU", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'

status=0
for precision in fp32 bf16 fp16; do
  echo "== runner_overhead.py --precision $precision"
  "$py" benchmarks/runner_overhead.py --device cuda --precision "$precision" --iterations 100 --check \
    --json "$out/overhead-$precision.json" || status=1
done

echo "== python -m runner, in-pod mode"
configs=$(mktemp -d)
if "$py" -c 'import torchvision' 2>/dev/null; then
  "$py" - "$configs/resnet50.pt" <<'PY'
import sys, torch, torchvision
m = torchvision.models.resnet50().eval().cuda()
torch.jit.trace(m, torch.randn(1, 3, 224, 224, device="cuda")).save(sys.argv[1])
PY
fi
"$py" - "$configs" <<'PY'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
import torch
gpu_type = "nvidia-" + torch.cuda.get_device_name().lower().removeprefix("nvidia ").split()[0] if torch.cuda.is_available() else "none"
base = {"gpuType": gpu_type, "gpuCount": 1, "warmup": 20, "iterations": 200}
configs = [
    {"model": "mlp", "batchSize": 256, "inputShape": [1024], "precision": "fp32"},
    {"model": "cnn", "batchSize": 32, "inputShape": [3, 224, 224], "precision": "bf16"},
    {"model": "transformer", "batchSize": 32, "inputShape": [128, 512], "modelArgs": {"heads": 8}, "precision": "fp16"},
]
if (d / "resnet50.pt").exists():
    for p in ("fp32", "fp16"):
        configs.append({"model": "torchscript", "modelPath": str(d / "resnet50.pt"), "batchSize": 32,
                        "inputShape": [3, 224, 224], "precision": p})
for i, c in enumerate(configs):
    (d / f"config-{i}.json").write_text(json.dumps({"sweep": "gpu-check", "kind": "model-latency", "index": i,
                                                     "config": {**base, **c}}))
print(len(configs))
PY
n=$(ls "$configs"/config-*.json | wc -l)
indexes=$(seq -s, 0 $((n - 1)))
for completion in $(seq 0 $((n - 1))); do
  KAIML_CONFIG_DIR=$configs KAIML_CONFIG_INDEXES=$indexes JOB_COMPLETION_INDEX=$completion KAIML_SWEEP=gpu-check \
    NODE_NAME=gpu-node-0 "$py" -m runner >>"$out/runner.log" || status=1
done
"$py" - "$out" <<'PY' || status=1
import json, pathlib, sys
from runner.result import find_result
bad = 0
for line in (pathlib.Path(sys.argv[1]) / "runner.log").read_text().splitlines():
    r = find_result(line)
    ok = r and r["status"] == "ok" and r["device"]["type"] == "cuda" and r["device"]["gpu"] and r["device"]["node"] == "gpu-node-0"
    bad += not ok
    c, lat = r["config"], r["latency_ms"] or {}
    print(f"{c['model']:<12}{c['precision']:>5} b{c['batchSize']:<4} mean {lat.get('mean', 0):8.3f} ms  p50 {lat.get('p50', 0):8.3f}"
          f"  p99 {lat.get('p99', 0):8.3f}  {r['throughput'] or 0:10.1f}/s  {r['device']['gpu']}  {'ok' if ok else 'BAD'}")
sys.exit(1 if bad else 0)
PY
echo "gpu check: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
