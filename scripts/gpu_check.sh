#!/usr/bin/env bash
# The prepared, one-shot GPU check of the performance targets, for a session that is lent a device machine
# (device tool: Python 3.12, torch, numpy 2, no TensorFlow, no registry; run from the source tree).
# Carry only the weights file for the correctness part: it is looked up in $FILTVIZ_HOME.
#
#   device run (timeout ~540 s):  FILTVIZ_HOME=. bash scripts/gpu_check.sh "$OUT"
#   CPU dry run of the same path: GPU_CHECK_DRY=1 bash scripts/gpu_check.sh /tmp/gpu_dry
#   some parts only (to split the work over two device calls): GPU_CHECK_PARTS=torchrun bash scripts/gpu_check.sh "$OUT"
#
# Parts (GPU_CHECK_PARTS, comma-separated; default all): maco, correctness, block5, atlas, torchrun.
# maco needs horama==0.3.0 and xplique==2.0.2 (its spectrum) importable: carry their wheels
# (pip download --no-deps) and pip install --no-deps --target them first; it is skipped when they are missing.
# Writes under OUT: env.txt, correctness.txt (CUDA vs CPU, batched vs one-at-a-time, bf16 vs fp32),
# block5/bench.json (512 filters of block5_conv3, 128 px, 100 steps) and atlas/bench.json (4,224 filters),
# each with the device name and achieved TFLOP/s; torchrun.json: the whole atlas website of VGG16 (4,224
# filters, 128 px, 100 steps) from a one-GPU `torchrun ... atlas --html`, bf16 then fp32, against the targets
# (block5_conv3's 512 filters <= 3 s, all 4,224 <= 20 s on an H100), and whether a few filters rendered
# alone in another folder equal the full run's bit for bit (the sites themselves stay in $GPU_CHECK_WORK).
# Copy them into benchmarks/<device>/ afterwards.
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
PARTS=",${GPU_CHECK_PARTS:-maco,correctness,block5,atlas,torchrun},"
want() { [[ "$PARTS" == *",$1,"* ]]; }
{ date -u; nvidia-smi 2>&1 | head -15; $PY -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"; } > "$OUT/env.txt" 2>&1

# Our batched maco beside Horama's one-objective-per-call maco, equal settings (SPEC.md §17.3)
if want maco; then
  if [ -n "${GPU_CHECK_DRY:-}" ]; then MACO=(--filters 2 --horama-filters 1 --size 32 --steps 2 --crops 2 --repeats 1)
  else MACO=(--filters 64 --horama-filters 4 --size 128 --steps 32 --crops 32 --repeats 2); fi
  timeout 200 $PY scripts/maco_speed.py --device $DEVICE --precisions fp32,tf32,bf16 "${MACO[@]}" --out "$OUT/maco" \
    > "$OUT/maco.log" 2>&1
  echo "maco rc=$?" >> "$OUT/maco.log"
fi

want correctness && DEVICE=$DEVICE CHECK_SIZE=$CHECK_SIZE timeout 120 $PY - > "$OUT/correctness.txt" 2>&1 <<'PYEOF'
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
want correctness && echo "correctness rc=$?" >> "$OUT/correctness.txt"

if want block5; then
  timeout 300 $PY -m filtviz_bench.speed --job block5 --device $DEVICE "${SHRINK[@]}" --out "$OUT/block5" > "$OUT/block5.log" 2>&1
  echo "block5 rc=$?" >> "$OUT/block5.log"
fi
if want atlas; then
  timeout 240 $PY -m filtviz_bench.speed --job atlas --device $DEVICE --methods torch_bf16_cl,torch_bf16 "${SHRINK[@]}" \
    --out "$OUT/atlas" > "$OUT/atlas.log" 2>&1
  echo "atlas rc=$?" >> "$OUT/atlas.log"
fi

if want torchrun; then
  # The atlas website as users run it on one GPU: torchrun, nccl, chunks of 128, writer threads.
  WORK=${GPU_CHECK_WORK:-/tmp/gpu_check_work}
  rm -rf "$WORK"; mkdir -p "$WORK"
  WEIGHTS=keras
  $PY -c "from filtviz_core.weights import resolve_weights; resolve_weights('auto', download=False)" > /dev/null 2>&1 \
    || WEIGHTS=random
  if [ -n "${GPU_CHECK_DRY:-}" ]; then
    SITE=(--layers block1_conv2,block5_conv3 --per-layer 6 --size 32 --steps 3 --chunk-size 4); ALONE=(--per-layer 2)
  else
    SITE=(--per-layer all --size 128 --steps 100); ALONE=(--per-layer 3)
  fi
  : > "$OUT/torchrun.log"
  for PREC in bf16 fp32; do
    T0=$(date +%s%N)
    timeout 330 $PY -m torch.distributed.run --nproc_per_node=1 --master-port 29533 -m torch_filtviz atlas \
      --html "$WORK/$PREC" --weights $WEIGHTS --device $DEVICE --precision $PREC --examples 0 --no-progress \
      "${SITE[@]}" >> "$OUT/torchrun.log" 2>&1
    echo "$PREC rc=$? wall_ms=$(( ($(date +%s%N) - T0) / 1000000 ))" >> "$OUT/torchrun.log"
  done
  # Reproducibility on the device: the first filters of two layers alone (padded chunks, other neighbours)
  timeout 120 $PY -m torch.distributed.run --nproc_per_node=1 --master-port 29534 -m torch_filtviz atlas \
    --html "$WORK/alone" --weights $WEIGHTS --device $DEVICE --precision bf16 --examples 0 --no-progress \
    "${SITE[@]}" --layers block3_conv1,block5_conv3 "${ALONE[@]}" >> "$OUT/torchrun.log" 2>&1
  echo "alone rc=$?" >> "$OUT/torchrun.log"
  $PY scripts/atlas_compare.py "$WORK/alone" "$WORK/bf16" --json "$WORK/alone_vs_bf16.json" >> "$OUT/torchrun.log" 2>&1
  WORK=$WORK $PY - > "$OUT/torchrun.json" 2>> "$OUT/torchrun.log" <<'PYEOF'
import json, os
from pathlib import Path
work = Path(os.environ["WORK"])
found = {}
for prec in ("bf16", "fp32"):
    try:
        doc = json.loads((work / prec / "atlas.json").read_text())
    except (OSError, ValueError) as exc:
        found[prec] = {"error": str(exc)}
        continue
    run = doc["runs"][-1]
    layers = {layer["name"]: [u["methods"]["pixel"]["seconds"] for u in layer["units"] if "pixel" in u["methods"]]
              for layer in doc["layers"]}
    render = {name: round(sum(s), 3) for name, s in layers.items() if s}
    block5 = render.get("block5_conv3")
    share = (run.get("ranks") or [{}])[0].get("seconds")
    found[prec] = {"status": run["status"], "device": run["device"], "device_name": run.get("device_name"),
                   "filters": sum(len(s) for s in layers.values()), "chunk_size": run["chunk_size"],
                   "render_seconds_by_layer": render, "render_seconds": round(sum(render.values()), 2),
                   "rank_seconds_with_files": share,
                   "target_block5_conv3_le_3s": None if block5 is None else block5 <= 3.0,
                   "target_all_le_20s": None if share is None else share <= 20.0}
try:
    found["alone_vs_bf16"] = json.loads((work / "alone_vs_bf16.json").read_text())
except (OSError, ValueError) as exc:
    found["alone_vs_bf16"] = {"error": str(exc)}
print(json.dumps(found, indent=2))
PYEOF
fi
for f in maco.log correctness.txt block5.log atlas.log torchrun.log; do [ -f "$OUT/$f" ] && tail -n 3 "$OUT/$f"; done
[ -f "$OUT/torchrun.json" ] && head -c 1500 "$OUT/torchrun.json"
