#!/usr/bin/env python
"""A quick check of the fourier method against the pixel method (and of fourier variants), in one process.

    python scripts/fourier_check.py --layers block3_conv1,block4_conv3,block5_conv3 --filters 0-3 --out checks/fourier
    python scripts/fourier_check.py --layers block5_conv3 --filters 0-3 \\
        --variant steps=64 --variant steps=256 --variant lr=0.1 --variant '{"rotate": 5, "scale": [0.95, 1.05]}'

For each layer it runs the pixel method at its defaults and the fourier method at its defaults
(plus each ``--variant``: fourier with some parameters changed), interleaved in one process, and
scores the exported uint8 pictures (what a user sees) with a small evaluator:

* ``robust``: the filter's objective (pre-activation interior mean, the one both methods maximize)
  averaged over K random transformations of the picture that the methods never saw while
  optimizing: shifts up to 16 px with reflect padding, zoom 0.8-1.2, rotation +-20 degrees
  (``torch.nn.functional.grid_sample``, bilinear); ``kept`` = robust / the untransformed objective;
  ``z`` = (robust - mean) / std of the same filter's objective on 1/f-noise pictures;
* ``alpha``: the power-spectrum slope of the picture's luminance (Hann window, radial average in
  log-spaced bins from 2/N to 0.5 cycles/px, least-squares on log-log; natural photos: about 2);
  ``hf``: the share of power above 0.25 cycles/px;
* image-steps per second of each run (filters x steps / seconds; same process, same inputs).

A quick check for choosing defaults, not the project's quality benchmark (``make quality``).
Writes ``check.json`` and ``check.md`` under ``--out``; prints the table.

    python scripts/fourier_check.py --speed --layers block3_conv1 --filters 0-7 --size 128 --speed-steps 10

``--speed`` times instead: the pixel method, the fourier method (the network sees 140 px for a 128 px
picture) and the fourier method with ``pad=6`` (the network sees 128 px, as the pixel method), round
robin (every repeat runs each once, so machine load hits all alike), after one warm-up each; prints
the median [min-max] seconds, image-steps per second and the ratios (written to ``speed.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from filtviz_core import atomic
from filtviz_core.algorithm import parse_filters
from filtviz_core.vgg16 import FILTER_COUNTS

K_TRANSFORMS = 16
N_NOISE = 16


def parse_variant(text: str) -> dict:
    """``steps=64``, ``lr=0.1``, ``pad=8`` or a JSON object of fourier options (steps/lr allowed)."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    key, _, value = text.partition("=")
    try:
        return {key: json.loads(value)}
    except json.JSONDecodeError:
        return {key: value}


def held_out_transforms(k: int, size: int, seed: int = 1234) -> torch.Tensor:
    """(k, 2, 3) affine_grid matrices: shift <= 16 px, zoom 0.8-1.2, rotation +-20 degrees."""
    rng = np.random.default_rng(seed)
    mats = []
    for _ in range(k):
        angle = np.deg2rad(rng.uniform(-20, 20))
        zoom = rng.uniform(0.8, 1.2)
        shift = rng.uniform(-16, 16, size=2) * 2 / size  # normalized coordinates
        c, s = np.cos(angle) / zoom, np.sin(angle) / zoom
        mats.append([[c, -s, shift[0]], [s, c, shift[1]]])
    return torch.tensor(np.array(mats), dtype=torch.float32)


def pink_noise(n: int, size: int, seed: int = 99) -> np.ndarray:
    """(n, size, size, 3) uint8 pictures with a 1/f amplitude spectrum (alpha = 2), mean 127.5, std 50."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    amp = 1.0 / np.maximum(np.sqrt(fx * fx + fy * fy), 1.0 / size)
    out = []
    for _ in range(n):
        spec = (rng.normal(size=(3, size, size // 2 + 1)) + 1j * rng.normal(size=(3, size, size // 2 + 1))) * amp
        img = np.fft.irfft2(spec, s=(size, size)).transpose(1, 2, 0)
        img = (img - img.mean()) / img.std() * 50 + 127.5
        out.append(np.clip(img, 0, 255))
    return np.stack(out).astype(np.uint8)


def objective_values(model, layer: str, filters: list[int], pictures: np.ndarray) -> np.ndarray:
    """The objective of filter filters[i] on pictures[i] ((F, H, W, 3) uint8 or float), no grad."""
    from torch_filtviz.objectives import filter_objective

    x = torch.from_numpy(np.ascontiguousarray(pictures, dtype=np.float32)).permute(0, 3, 1, 2)
    with torch.no_grad():
        return filter_objective(model, layer, filters, x).numpy().astype(np.float64)


def robust_scores(model, layer: str, filters: list[int], pictures: np.ndarray, noise: np.ndarray) -> dict:
    size = pictures.shape[1]
    mats = held_out_transforms(K_TRANSFORMS, size)
    x = torch.from_numpy(np.ascontiguousarray(pictures, dtype=np.float32)).permute(0, 3, 1, 2)
    plain = objective_values(model, layer, filters, pictures)
    moved = []
    for m in mats:
        grid = F.affine_grid(m[None].expand(len(filters), 2, 3), list(x.shape), align_corners=False)
        warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        moved.append(objective_values(model, layer, filters, warped.permute(0, 2, 3, 1).numpy()))
    robust = np.mean(moved, axis=0)
    base = np.stack(
        [
            objective_values(model, layer, filters, np.repeat(noise[j : j + 1], len(filters), 0))
            for j in range(len(noise))
        ]
    )  # (N_NOISE, F)
    z = (robust - base.mean(0)) / np.maximum(base.std(0), 1e-12)
    kept = robust / np.where(np.abs(plain) > 1e-12, plain, np.nan)
    return {"plain": plain.tolist(), "robust": robust.tolist(), "kept": kept.tolist(), "z": z.tolist()}


def spectrum_stats(picture: np.ndarray) -> tuple[float, float]:
    """(alpha, share of power above 0.25 cycles/px) of the luminance of one (H, W, 3) picture."""
    lum = picture.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    n = lum.shape[0]
    win = np.outer(np.hanning(n), np.hanning(lum.shape[1]))
    power = np.abs(np.fft.fft2((lum - lum.mean()) * win)) ** 2
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(lum.shape[1])[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    total = power[f > 0].sum()
    hf = float(power[f > 0.25].sum() / total) if total > 0 else float("nan")
    edges = np.geomspace(2.0 / n, 0.5, 13)
    xs, ys = [], []
    for lo, hi in itertools.pairwise(edges):
        sel = (f >= lo) & (f < hi)
        if sel.any() and power[sel].mean() > 0:
            xs.append(np.log(np.sqrt(lo * hi)))
            ys.append(np.log(power[sel].mean()))
    alpha = float(-np.polyfit(xs, ys, 1)[0]) if len(xs) > 2 else float("nan")
    return alpha, hf


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", default="block3_conv1,block4_conv3,block5_conv3")
    p.add_argument("--filters", default="0-3")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", action="append", default=[], help="fourier with some parameters changed")
    p.add_argument("--no-pixel", action="store_true", help="skip the pixel method")
    p.add_argument("--out", default="checks/fourier")
    p.add_argument("--speed", action="store_true", help="time pixel vs fourier instead of scoring pictures")
    p.add_argument("--speed-steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import torch_filtviz as fv

    model = fv.load_vgg16()
    if args.speed:
        return speed(model, args)
    runs = ([] if args.no_pixel else [("pixel", {"method": "pixel"})]) + [("fourier", {"method": "fourier"})]
    for text in args.variant:
        change = parse_variant(text)
        kwargs = {"method": "fourier"}
        options = {k: v for k, v in change.items() if k not in ("steps", "lr")}
        kwargs.update({k: v for k, v in change.items() if k in ("steps", "lr")})
        if options:
            kwargs["method_options"] = options
        runs.append(("fourier " + ",".join(f"{k}={v}" for k, v in change.items()), kwargs))
    noise = pink_noise(N_NOISE, args.size)
    rows = []
    for layer in args.layers.split(","):
        filters = parse_filters(args.filters, FILTER_COUNTS[layer], layer)
        for name, kwargs in runs:
            start = time.perf_counter()
            res = fv.visualize_filters(
                model, layer, filters, size=args.size, seed=args.seed, device="cpu", progress=False, **kwargs
            )
            seconds = time.perf_counter() - start
            scores = robust_scores(model, layer, filters, res.images, noise)
            spectra = [spectrum_stats(img) for img in res.images]
            steps = res.params["steps"]
            rows.append(
                {
                    "layer": layer,
                    "method": name,
                    "filters": filters,
                    "steps": steps,
                    "seconds": seconds,
                    "image_steps_per_s": len(filters) * steps / seconds,
                    "seen_size": res.params.get("seen_size"),
                    **scores,
                    "alpha": [a for a, _ in spectra],
                    "hf": [h for _, h in spectra],
                    "final_loss": res.losses[:, -1].tolist(),
                }
            )
            r = rows[-1]
            print(
                f"{layer:13} {name:40} z {statistics.median(r['z']):8.1f}  kept {np.nanmedian(r['kept']):5.2f}  "
                f"alpha {statistics.median(r['alpha']):5.2f}  hf {statistics.median(r['hf']):5.2f}  "
                f"{r['image_steps_per_s']:6.2f} img-steps/s  {seconds:6.1f} s",
                flush=True,
            )
    out = Path(args.out)
    atomic.write_json(
        out / "check.json",
        {
            "size": args.size,
            "seed": args.seed,
            "k_transforms": K_TRANSFORMS,
            "n_noise": N_NOISE,
            "torch": torch.__version__,
            "rows": rows,
        },
    )
    lines = [
        (
            "| layer | method | steps | robust z (median) | kept (median) | alpha (median) | hf (median) | "
            "image-steps/s |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['layer']} | {r['method']} | {r['steps']} | {statistics.median(r['z']):.1f} | "
            f"{np.nanmedian(r['kept']):.2f} | {statistics.median(r['alpha']):.2f} | "
            f"{statistics.median(r['hf']):.2f} | {r['image_steps_per_s']:.2f} |"
        )
    atomic.write_bytes(out / "check.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))
    return 0


def speed(model, args) -> int:
    import torch_filtviz as fv

    layer = args.layers.split(",")[0]
    filters = parse_filters(args.filters, FILTER_COUNTS[layer], layer)
    runs = {
        "pixel": {"method": "pixel"},
        "fourier": {"method": "fourier"},
        "fourier pad=6": {"method": "fourier", "method_options": {"pad": 6}},
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats + 1):  # the first round warms up and is not kept
        for name, kwargs in runs.items():
            start = time.perf_counter()
            fv.visualize_filters(
                model,
                layer,
                filters,
                steps=args.speed_steps,
                size=args.size,
                device="cpu",
                progress=False,
                snapshots=[],
                **kwargs,
            )
            if repeat:
                times[name].append(time.perf_counter() - start)
    work = len(filters) * args.speed_steps
    med = {name: statistics.median(t) for name, t in times.items()}
    rows = {
        name: {
            "seconds": t,
            "median": med[name],
            "image_steps_per_s": work / med[name],
            "vs_pixel": med["pixel"] / med[name],
        }
        for name, t in times.items()
    }
    for name, r in rows.items():
        t = r["seconds"]
        print(
            f"{name:14} {r['median']:7.2f} s [{min(t):.2f}-{max(t):.2f}]  {r['image_steps_per_s']:6.2f} img-steps/s  "
            f"x pixel {r['vs_pixel']:.2f}"
        )
    atomic.write_json(
        Path(args.out) / "speed.json",
        {
            "layer": layer,
            "filters": filters,
            "size": args.size,
            "steps": args.speed_steps,
            "repeats": args.repeats,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
