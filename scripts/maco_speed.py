"""Filters per second of our batched MACO beside Horama's MACO (one objective per call), at equal settings.

Both render the same filters of one VGG16 layer with the same picture size, crops per step, steps and
learning rate; ours runs every filter's crops in one batch, Horama (``horama==0.3.0``, PyTorch) one filter
per ``maco()`` call, as its users run it. Horama's spectrum file is copied from the xplique wheel into a
temporary folder it runs in, so it never downloads. Needs no TensorFlow, so it runs on a GPU machine:

    python scripts/maco_speed.py --device cuda --filters 64 --horama-filters 4 --precisions tf32,bf16 --out DIR
    python scripts/maco_speed.py --device cpu --filters 8 --horama-filters 2 --size 64 --steps 8 --crops 8

Writes OUT/maco_speed.json: seconds of each run (repeats), filters per second, and the ratio's range
(slowest of ours against fastest of Horama's, and the other way round).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import torch_filtviz as fv
from filtviz_core import maco as core_maco
from filtviz_core import vgg16 as vgg_spec
from filtviz_core.errors import FiltvizError


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def ours(model, layer: str, n: int, a: argparse.Namespace, precision: str = "fp32") -> float:
    t0 = time.perf_counter()
    fv.visualize_filters(
        model,
        layer,
        f"0-{n - 1}",
        method="maco",
        steps=a.steps,
        size=a.size,
        device=a.device,
        precision=precision,
        progress=False,
        snapshots=[a.steps],
        method_options={"crops": a.crops},
    )
    _sync(a.device)
    return time.perf_counter() - t0


def horama_run(model, conv: torch.nn.Module, n: int, a: argparse.Namespace, folder: Path) -> float:
    """``n`` filters, one ``horama.maco`` call each, the objective the filter's mean pre-activation."""
    from horama import maco

    captured: dict[str, torch.Tensor] = {}
    handle = conv.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))
    here = os.getcwd()
    os.chdir(folder)  # Horama reads spectrum_decorrelated.npy from the current folder
    try:
        t0 = time.perf_counter()
        for f in range(n):

            def objective(images: torch.Tensor, f: int = f) -> torch.Tensor:
                model(images)
                return captured["out"][:, f].mean()

            with contextlib.redirect_stderr(open(os.devnull, "w")):  # its tqdm bar
                maco(
                    objective,
                    total_steps=a.steps,
                    learning_rate=1.0,
                    image_size=a.size,
                    model_input_size=a.size,
                    values_range=(0.0, 255.0),
                    crops_per_iteration=a.crops,
                    device=a.device,
                )
        _sync(a.device)
        return time.perf_counter() - t0
    finally:
        os.chdir(here)
        handle.remove()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--layer", default="block5_conv3")
    p.add_argument("--filters", type=int, default=64, help="filters ours renders in one call")
    p.add_argument("--horama-filters", type=int, default=4, help="filters Horama renders (one call each)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--crops", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--precisions",
        default="fp32",
        help="ours at these precisions, comma list of fp32 (the spec), tf32 (what Horama gets from torch's "
        "defaults on CUDA), bf16; default: %(default)s",
    )
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        weights = "keras"
        model = fv.load_vgg16(weights)
    except FiltvizError:  # no weights file here: speed does not depend on the weights' values
        weights = "random"
        model = fv.load_vgg16(weights)
    model = model.to(a.device).eval()
    conv = model.features[vgg_spec.TORCH_CONV_INDEX[a.layer]]
    folder = Path(tempfile.mkdtemp())
    shutil.copy(core_maco.spectrum_path(), folder / "spectrum_decorrelated.npy")
    try:
        import horama  # noqa: F401

        have_horama = True
    except ImportError:
        have_horama = False
    # warm-up: kernels, allocator, cuDNN choices
    warm = argparse.Namespace(**{**vars(a), "steps": 2})
    ours(model, a.layer, 2, warm)
    if have_horama:
        horama_run(model, conv, 1, warm, folder)
    precisions = [p.strip() for p in a.precisions.split(",") if p.strip()]
    runs: dict[str, list[float]] = {"horama": [], **{f"ours_{p}": [] for p in precisions}}
    for _ in range(a.repeats):  # interleaved, so a change of load hits both
        for prec in precisions:
            runs[f"ours_{prec}"].append(ours(model, a.layer, a.filters, a, prec))
        if have_horama:
            runs["horama"].append(horama_run(model, conv, a.horama_filters, a, folder))
    fps = {
        name: [(a.horama_filters if name == "horama" else a.filters) / s for s in times] for name, times in runs.items()
    }
    result = {
        "command": "python scripts/maco_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": a.device,
        "device_name": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "weights": weights,
        "layer": a.layer,
        "size": a.size,
        "steps": a.steps,
        "crops": a.crops,
        "filters": {"ours": a.filters, "horama": a.horama_filters},
        "seconds": runs,
        "filters_per_second": fps,
    }
    if have_horama and runs["horama"]:
        result["ratio_min_max"] = {  # slowest of ours / fastest of Horama's, fastest / slowest
            name: [min(v) / max(fps["horama"]), max(v) / min(fps["horama"])]
            for name, v in fps.items()
            if name != "horama"
        }
    else:
        result["horama"] = "not installed (pip install --no-deps horama==0.3.0)"
    (out / "maco_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
