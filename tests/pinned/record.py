"""Record (or check) the pinned runs: losses and pictures of a fixed set of ascents, bitwise.

The single optimization loop replaced two loops per framework; these runs, recorded with the code
before that change, must come out bitwise equal after it. Bitwise equality holds on one machine only
(CPU kernels differ between processors), so the files are keyed by this machine's CPU and library
versions (:func:`machine_key`); ``tests/test_pinned_runs.py`` checks them where the key matches.

    python tests/pinned/record.py [torch] [tf]    # record for this machine (tests/pinned/<framework>-<key>/)
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# (name, layer, filters, method, keyword arguments). Blocks 1, 3 and 5; both methods; fp32 on CPU;
# a post_relu run with dead filters, a clipped run, explicit snapshots, and a run split into chunks.
TORCH_RUNS = [
    ("pixel_b1", "block1_conv2", "0-3", "pixel", dict(steps=12, size=40, snapshots=[0, 5, 12])),
    ("pixel_b3", "block3_conv1", "0-3", "pixel", dict(steps=8, size=48)),
    ("pixel_b5_chunks", "block5_conv3", "0-3", "pixel", dict(steps=5, size=64, batch_size=2)),
    ("pixel_b5_post", "block5_conv3", "0-3", "pixel", dict(steps=4, size=48, objective="post_relu")),
    ("pixel_b3_clip", "block3_conv1", "0-1", "pixel", dict(steps=6, size=40, clip=True)),
    ("fourier_b1", "block1_conv2", "0-3", "fourier", dict(steps=10, size=40, snapshots=[0, 4, 10])),
    ("fourier_b3", "block3_conv1", "0-3", "fourier", dict(steps=8, size=48)),
    ("fourier_b5", "block5_conv3", "0-3", "fourier", dict(steps=5, size=64)),
    ("fourier_b5_post", "block5_conv3", "0-3", "fourier", dict(steps=4, size=48, objective="post_relu")),
    (
        "fourier_b3_plain",
        "block3_conv1",
        "0-1",
        "fourier",
        dict(steps=6, size=40, method_options={"transforms": False, "decorrelate": False}),
    ),
]
TF_RUNS = [
    ("pixel_b1", "block1_conv2", "0-1", "pixel", dict(steps=10, size=40, snapshots=[0, 5, 10])),
    ("pixel_b3", "block3_conv1", "0-1", "pixel", dict(steps=6, size=48)),
    ("pixel_b5_post", "block5_conv3", "0-1", "pixel", dict(steps=3, size=48, objective="post_relu")),
    ("fourier_b1", "block1_conv2", "0-1", "fourier", dict(steps=8, size=40, snapshots=[0, 4, 8])),
    ("fourier_b5", "block5_conv3", "0-1", "fourier", dict(steps=4, size=64)),
]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                yield line.split(":", 1)[1].strip()
    except OSError:
        yield platform.processor()


def machine_key(framework: str) -> str:
    """CPU model and flags plus the library versions: where bitwise equality can be expected."""
    if framework == "torch":
        import torch

        versions = f"torch {torch.__version__}; threads {torch.get_num_threads()}"
    else:
        import tensorflow as tf

        versions = f"tensorflow {tf.__version__}"
    text = "\n".join(sorted(set(cpu_name()))) + "\n" + versions + "\n" + platform.machine() + sys.version.split()[0]
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def torch_results(weights_path: str) -> dict[str, dict[str, np.ndarray]]:
    from torch_filtviz import load_vgg16, visualize_filters

    model = load_vgg16(weights_path)
    out = {}
    for name, layer, filters, method, kwargs in TORCH_RUNS:
        r = visualize_filters(model, layer, filters, method=method, device="cpu", progress=False, **kwargs)
        out[name] = {
            "raw": r.raw,
            "images": r.images,
            "losses": r.losses,
            "dead": r.dead,
            **{f"snap{k}": v for k, v in r.snapshots.items()},
        }
    return out


def tf_results(weights_path: str) -> dict[str, dict[str, np.ndarray]]:
    from tf_reference import load_vgg16, visualize_filters

    model = load_vgg16(weights_path)
    out = {}
    for name, layer, filters, method, kwargs in TF_RUNS:
        rs = visualize_filters(model, layer, filters, method=method, **kwargs)
        arrays = {
            "raw": np.stack([r.raw for r in rs]),
            "images": np.stack([r.image for r in rs]),
            "losses": np.stack([r.losses for r in rs]),
            "dead": np.array([r.dead for r in rs]),
        }
        for k in rs[0].snapshots:
            arrays[f"snap{k}"] = np.stack([r.snapshots[k] for r in rs])
        out[name] = arrays
    return out


def folder(framework: str) -> Path:
    return HERE / f"{framework}-{machine_key(framework)}"


def record(framework: str, weights_path: str) -> Path:
    results = torch_results(weights_path) if framework == "torch" else tf_results(weights_path)
    target = folder(framework)
    target.mkdir(parents=True, exist_ok=True)
    for name, arrays in results.items():
        np.savez_compressed(target / f"{name}.npz", **arrays)
    (target / "machine.json").write_text(json.dumps({"cpu": sorted(set(cpu_name()))[0][:200]}, indent=1) + "\n")
    return target


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    from filtviz_core.weights import resolve_weights

    path = str(resolve_weights("auto").path)
    for fw in sys.argv[1:] or ["torch", "tf"]:
        print(record(fw, path))
