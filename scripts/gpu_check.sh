#!/usr/bin/env bash
# The prepared, one-shot GPU check of the performance targets, for a session that is lent a device machine
# (device tool: Python 3.12, torch, numpy 2, no TensorFlow, no registry; run from the source tree).
# Carry only the weights file for the correctness part: it is looked up in $FILTVIZ_HOME.
#
#   device run (timeout ~540 s):  FILTVIZ_HOME=. bash scripts/gpu_check.sh "$OUT"
#   CPU dry run of the same path: GPU_CHECK_DRY=1 bash scripts/gpu_check.sh /tmp/gpu_dry
#
# Writes under OUT: env.txt, correctness.txt (CUDA vs CPU, batched vs one-at-a-time, bf16 vs fp32),
# block5/bench.json (512 filters of block5_conv3, 128 px, 100 steps) and atlas/bench.json (4,224 filters),
# each with the device name and achieved TFLOP/s. Copy them into benchmarks/<device>/ afterwards.
set -u
OUT=${1:?usage: gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:-.}
PY=${PYTHON:-python}
if [ -n "${GPU_CHECK_DRY:-}" ]; then
  DEVICE=cpu; SHRINK=(--filters 4 --size 32 --steps 3 --repeats 1); CHECK_SIZE=32
else
  DEVICE=cuda; SHRINK=(--repeats 2); CHECK_SIZE=64
fi
{ date -u; nvidia-smi 2>&1 | head -15; $PY -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"; } > "$OUT/env.txt" 2>&1

DEVICE=$DEVICE CHECK_SIZE=$CHECK_SIZE timeout 120 $PY - > "$OUT/correctness.txt" 2>&1 <<'PYEOF'
import os, time
import numpy as np
import torch_filtviz as fv
from filtviz_core.weights import resolve_weights
dev, size = os.environ["DEVICE"], int(os.environ["CHECK_SIZE"])
try:
    resolve_weights("auto", download=False); weights = "keras"
except Exception as exc:  # no weights file carried: correctness on random weights still compares paths
    print("weights: random (", exc, ")"); weights = "random"
model = fv.load_vgg16(weights)
def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
for layer in ("block1_conv2", "block3_conv1", "block5_conv3"):
    kw = dict(steps=100 if layer == "block1_conv2" else 20, size=size, progress=False)
    cpu = fv.visualize_filters(model, layer, "0-7", device="cpu", **kw)
    gpu = fv.visualize_filters(model, layer, "0-7", device=dev, **kw)
    one = fv.visualize_filters(model, layer, "0-7", device=dev, batch_size=1, **kw)
    bf = fv.visualize_filters(model, layer, "0-7", device=dev, precision="bf16", channels_last=True, **kw)
    print(f"{layer}: {dev} fp32 vs cpu losses {rel(cpu.losses, gpu.losses):.2e}; batched vs one {rel(one.losses, gpu.losses):.2e}; "
          f"bf16+cl vs fp32 final {np.median(np.abs(bf.losses[:, -1] / gpu.losses[:, -1] - 1)):.2e} (median); "
          f"dead {int(gpu.dead.sum())}; {gpu.seconds:.2f} s fp32, {bf.seconds:.2f} s bf16")
PYEOF
echo "correctness rc=$?" >> "$OUT/correctness.txt"

timeout 300 $PY -m filtviz_bench.speed --job block5 --device $DEVICE "${SHRINK[@]}" --out "$OUT/block5" > "$OUT/block5.log" 2>&1
echo "block5 rc=$?" >> "$OUT/block5.log"
timeout 240 $PY -m filtviz_bench.speed --job atlas --device $DEVICE --methods torch_bf16_cl,torch_bf16 "${SHRINK[@]}" \
  --out "$OUT/atlas" > "$OUT/atlas.log" 2>&1
echo "atlas rc=$?" >> "$OUT/atlas.log"
tail -n 3 "$OUT/correctness.txt" "$OUT/block5.log" "$OUT/atlas.log"
