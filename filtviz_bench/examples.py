"""``python -m filtviz_bench examples``: the throughput of the atlas's dataset pass, in photos per second,
held against the FLOP limit of the machine.

Why: the dataset examples of an atlas come from one streaming pass over the user's photos (decoded by
DataLoader workers, one forward pass per batch for every requested layer); its speed decides whether a
folder of thousands of photos takes minutes or hours. Thousands of photos are needed offline, so
:func:`make_photos` makes them from the bundled sample photos (random crops, flips and sizes, written as
JPEG, PNG and WebP, in subfolders, with a few unreadable files). The pass is timed ``--repeats`` times over
the first ``--images`` photos (from scratch each time, checkpoint included); its useful work is the conv
FLOPs of every photo up to the deepest layer, at the photo's own fitted shape
(:func:`filtviz_bench.flops.conv_flops` counts the same way). The machine's limit is the datasheet peak
on a known GPU, and on a CPU the best fp32 matrix-multiply rate measured here, with the same threads.

    python -m filtviz_bench examples --photos /tmp/filtviz_photos --make 2000 --out benchmarks/examples
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from filtviz_bench import machine

ALL_VGG_CONV = [
    "block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2", "block3_conv3",
    "block4_conv1", "block4_conv2", "block4_conv3", "block5_conv1", "block5_conv2", "block5_conv3",
]  # fmt: skip


def make_photos(folder: str | os.PathLike[str], count: int, seed: int = 0, broken: int = 3) -> dict[str, int]:
    """Write ``count`` photos made from the default sample photos into ``folder`` (10 subfolders): each
    a random crop (30-100 % of each side), maybe mirrored, resized to a short side of 160-480 px, saved
    as JPEG, PNG or WebP; plus ``broken`` unreadable files (a truncated JPEG, a text file named .png,
    an empty .webp). Existing files of the same names are kept (a rerun is quick)."""
    from PIL import Image

    from filtviz_core.images import open_rgb
    from filtviz_core.photos import default_photos

    root = Path(folder)
    sources = [open_rgb(p.path) for p in default_photos()]
    rng = np.random.default_rng(seed)
    made = 0
    for i in range(count):
        src = sources[i % len(sources)]
        w, h = src.size
        cw, ch = int(w * rng.uniform(0.3, 1.0)), int(h * rng.uniform(0.3, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        flip = bool(rng.integers(0, 2))
        short = int(rng.integers(160, 481))
        fmt = ("jpg", "png", "webp")[int(rng.integers(0, 3))]
        path = root / f"set{i % 10}" / f"photo{i:05d}.{fmt}"
        if path.exists():
            continue
        img = src.crop((x, y, x + cw, y + ch))
        if flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        scale = short / min(img.size)
        img = img.resize((max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))))
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, quality=90) if fmt != "png" else img.save(path)
        made += 1
    bad = root / "unreadable"
    bad.mkdir(parents=True, exist_ok=True)
    first = next(iter(sorted(root.glob("set*/*.jpg"))), None)
    writers = [
        ("truncated.jpg", (first.read_bytes()[: first.stat().st_size // 3] if first else b"\xff\xd8\xff")),
        ("text.png", b"this is not a picture\n"),
        ("empty.webp", b""),
    ]
    for name, blob in writers[:broken]:
        (bad / name).write_bytes(blob)
    return {"made": made, "photos": count, "unreadable": min(broken, len(writers))}


def matmul_peak(device: torch.device, size: int = 2048, seconds: float = 2.0) -> float:
    """The best fp32 matrix-multiply rate measured here (TFLOP/s): the practical limit of the device."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        (a @ b).sum().item()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = max(best, 2 * size**3 / (time.perf_counter() - t) / 1e12)
    return best


def _fitted_shapes(photos, short_side: int) -> list[tuple[int, int] | None]:
    """The (rows, cols) each photo runs at (from its header: no decoding); None if unreadable."""
    from filtviz_core.images import probe_image
    from filtviz_core.photos import fitted_shape

    shapes: list[tuple[int, int] | None] = []
    for photo in photos:
        try:
            w, h = probe_image(photo.path)
        except Exception:  # noqa: BLE001 - an unreadable photo costs nothing
            shapes.append(None)
            continue
        scale = short_side / min(w, h)
        rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
        rows, cols, _, _ = fitted_shape(rh, rw, short_side)
        shapes.append((rows, cols))
    return shapes


def pass_flops(model, layer: str, shapes: list[tuple[int, int] | None]) -> float:
    """Forward conv FLOPs of the pass: every readable photo up to ``layer`` at its own shape."""
    from torch_filtviz.atlas.cost import layer_costs

    per: dict[tuple[int, int], int] = {}
    total = 0.0
    for shape in shapes:
        if shape is None:
            continue
        if shape not in per:
            per[shape] = layer_costs(model, [layer], shape[0], shape[1], objective="pre_relu")[layer]
        total += per[shape]
    return total


def _peak_rss_mib() -> float | None:
    """This process's peak resident memory (the pass's memory does not grow with the photo count)."""
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except (ImportError, OSError):
        return None


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": float(min(values)), "median": float(np.median(values)), "max": float(max(values))}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from filtviz_bench.flops import gpu_peak
    from filtviz_core.photos import folder_photos
    from torch_filtviz import models
    from torch_filtviz.atlas.dataset import default_batch, default_workers, stream_examples

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    threads = machine.set_threads(args.threads or torch.get_num_threads(), with_tf=False)
    made = make_photos(args.photos, args.make) if args.make else None
    lines: list[str] = []
    started = time.perf_counter()
    photos = folder_photos(args.photos, warn=lines.append)
    discovery = time.perf_counter() - started
    try:
        model = models.load_vgg16(args.weights)
    except Exception:  # noqa: BLE001 - the speed does not depend on the weights
        model = models.load_vgg16("random")
    model = model.to(device)
    layers = ALL_VGG_CONV
    timed = photos[: args.images] if args.images else photos
    workers = default_workers() if args.workers is None else args.workers
    batch = args.batch or default_batch(device)
    shapes = _fitted_shapes(timed, args.size)
    flops = pass_flops(model, layers[-1], shapes)
    load_before = machine.load_average()
    runs = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            found = stream_examples(
                model, layers, timed, args.k, short_side=args.size, batch_size=batch, workers=workers,
                checkpoint=Path(tmp) / "pass.npz", progress=not args.quiet,
            )  # fmt: skip
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        runs.append({"seconds": found.seconds, "images": found.images, "passes": found.passes,
                     "skipped": len(found.skipped), "images_per_s": found.images / found.seconds})  # fmt: skip
        print(f"repeat {r + 1}/{args.repeats}: {found.images} photos in {found.seconds:.1f} s "
              f"= {found.images / found.seconds:.2f} photos/s", file=sys.stderr)  # fmt: skip
    load_after = machine.load_average()
    rates = [r["images_per_s"] for r in runs]
    kind = "tf32" if device.type == "cuda" and torch.backends.cudnn.allow_tf32 else "fp32"
    name = machine.device_name(device)
    datasheet = gpu_peak(name, kind) if device.type == "cuda" else None
    measured_peak = matmul_peak(device, seconds=args.peak_seconds)
    seconds = [r["seconds"] for r in runs]
    achieved = [flops / s / 1e12 for s in seconds]
    return {
        "benchmark": "atlas dataset pass (filtviz_bench examples)",
        "command": "python -m filtviz_bench examples " + " ".join(sys.argv[2:] if args.argv is None else args.argv),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"type": device.type, "name": name, **threads},
        "versions": machine.versions(),
        "load_average": {"before": load_before, "after": load_after},
        "model": {"name": "vgg16", "weights": dict(getattr(model, "weights_info", {}) or {}).get("source")},
        "layers": layers,
        "photo_size": args.size,
        "k": args.k,
        "batch": batch,
        "workers": workers,
        "photos_made": made,
        "photos_found": len(photos) + len(photos.skipped),
        "photos_skipped_at_discovery": len(photos.skipped),
        "discovery_seconds": round(discovery, 3),
        "photos_timed": len(timed),
        "shapes": sorted({f"{s[0]}x{s[1]}" for s in shapes if s}),
        "repeats": runs,
        "peak_rss_mib": _peak_rss_mib(),
        "images_per_s": _stats(rates),
        "useful_tflop": flops / 1e12,
        "achieved_tflops": _stats(achieved),
        "peak": {
            "math": kind,
            "datasheet_tflops": datasheet,
            "measured_matmul_tflops": measured_peak,
            "fraction_of_datasheet": None if not datasheet else _stats([a / datasheet for a in achieved]),
            "fraction_of_matmul": _stats([a / measured_peak for a in achieved]),
        },
        "notes": "images/s counts the whole pass: decoding (workers), resizing, the forward passes of all 13 "
        "conv layers, the running top/bottom-k and the checkpoint; FLOPs count the convs up to block5_conv3 at "
        "each photo's fitted shape. The machine may be shared: see load_average.",
    }


def cli(argv: list[str] | None = None, prog: str = "python -m filtviz_bench examples") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", required=True, metavar="DIR", help="folder of photos (made there with --make N)")
    p.add_argument("--make", type=int, default=0, metavar="N", help="first make N photos in DIR (kept for reruns)")
    p.add_argument("--images", type=int, default=256, help="photos timed per repeat (0: all); default: %(default)s")
    p.add_argument("--repeats", type=int, default=3, help="timed passes; default: %(default)s")
    p.add_argument("--size", type=int, default=224, help="--photo-size of the pass; default: %(default)s")
    p.add_argument("--k", type=int, default=6, help="top and bottom examples kept per unit; default: %(default)s")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the atlas's default)")
    p.add_argument("--batch", type=int, default=None, help="photos per forward pass (default: the atlas's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--weights", default="keras", help="VGG16 weights (random if unavailable); default: %(default)s")
    p.add_argument("--peak-seconds", type=float, default=2.0, help="time the matmul peak this long; %(default)s")
    p.add_argument("--out", default="benchmarks/examples", help="folder for throughput.json; default: %(default)s")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    args.argv = argv
    from filtviz_core.errors import FiltvizError

    try:
        result = run(args)
    except FiltvizError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from filtviz_core import atomic

    name = "throughput.json" if result["device"]["type"] == "cpu" else f"throughput_{result['device']['type']}.json"
    atomic.write_json(out / name, result)
    r, t = result["images_per_s"], result["achieved_tflops"]
    print(
        f"dataset pass, VGG16 all 13 conv layers at {args.size} px on {result['device']['name']}: "
        f"{r['min']:.2f}-{r['max']:.2f} photos/s (median {r['median']:.2f}) over {args.repeats} x "
        f"{result['photos_timed']} photos; {t['min']:.3f}-{t['max']:.3f} TFLOP/s = "
        f"{result['peak']['fraction_of_matmul']['min']:.0%}-{result['peak']['fraction_of_matmul']['max']:.0%} of the "
        f"measured fp32 matmul rate ({result['peak']['measured_matmul_tflops']:.3f} TFLOP/s); {out / name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
