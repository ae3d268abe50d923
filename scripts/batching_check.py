"""How much a filter's result depends on the batch it shares: what the docs' batching statement rests on.

Renders the same filters of one layer (genuine VGG16 by default) several ways and compares each
filter's optimized image (pixel units, 0-255 scale), its display picture (uint8 grey levels) and its
loss history with the reference, one batch of all N filters:

* ``reversed``: the same batch in reverse order (every filter at another position);
* ``neighbours``: half of the filters with other partners in a batch of N;
* ``padded``: each filter alone, padded to N with copies of itself (what the atlas does);
* ``one thread``: the reference again with one CPU thread instead of torch's default;
* ``halves``: batches of N/2;  ``one at a time``: batches of 1.

    python scripts/batching_check.py                                  # block1_conv2, 64 px, 100 steps, 4 filters
    python scripts/batching_check.py --out benchmarks/cpu/batching_check.json

A row is "bitwise" when images and losses are identical bit for bit. Run it on a quiet machine or
not: the figures do not depend on the load, only on the hardware, the versions and the settings.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filtviz_core import algorithm as alg
from filtviz_core.site.chunks import pad_filters
from torch_filtviz import load_vgg16, visualize_filters


def compare(got: dict[int, tuple], want: dict[int, tuple]) -> dict:
    """Per-filter differences of (raw, losses) against the reference, over the filters both hold."""
    pixels, grey, loss = [], [], []
    for f, (raw, losses) in got.items():
        ref_raw, ref_losses = want[f]
        pixels.append(float(np.max(np.abs(raw - ref_raw))))
        grey.append(int(np.max(np.abs(alg.deprocess(raw).astype(int) - alg.deprocess(ref_raw).astype(int)))))
        loss.append(float(np.max(np.abs(losses - ref_losses)) / max(np.max(np.abs(ref_losses)), 1e-30)))
    return {
        "filters": sorted(got),
        "bitwise": max(pixels) == 0.0 and max(loss) == 0.0,
        "max_pixel_units": max(pixels),
        "max_grey_levels": max(grey),
        "max_loss_rel": max(loss),
        "median_loss_rel": float(np.median(loss)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="keras", help="keras (genuine, offline; default) or random")
    parser.add_argument("--layer", default="block1_conv2")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--filters", type=int, default=4, help="N, the reference batch (even); default: 4")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    n = args.filters
    if n < 2 or n % 2:
        parser.error("--filters must be an even number >= 2")
    model = load_vgg16(args.weights)
    kw = dict(steps=args.steps, size=args.size, snapshots=(), progress=False, device="cpu")
    started = time.perf_counter()

    def render(filters: list[int], batch: int, keep: int | None = None) -> dict[int, tuple]:
        r = visualize_filters(model, args.layer, filters, batch_size=batch, **kw)
        chosen = filters if keep is None else filters[:keep]
        return {f: (r.raw[i], r.losses[i]) for i, f in enumerate(chosen)}

    filters = list(range(n))
    ref = render(filters, n)
    rows = {"reversed": render(filters[::-1], n)}
    half = n // 2
    rows["neighbours"] = {f: v for f, v in render(filters[:half] + list(range(n, n + half)), n).items() if f < half}
    rows["padded"] = {}
    for f in filters:
        rows["padded"].update(render(pad_filters([f], n), n, keep=1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows["one thread"] = render(filters, n)
    finally:
        torch.set_num_threads(threads)
    rows["halves"] = render(filters, half)
    rows["one at a time"] = render(filters, 1)
    report = {
        "layer": args.layer,
        "size": args.size,
        "steps": args.steps,
        "batch": n,
        "weights": args.weights,
        "torch": torch.__version__,
        "threads": threads,
        "machine": platform.processor() or platform.machine(),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": {name: compare(got, ref) for name, got in rows.items()},
    }
    print(
        f"{args.layer}, {args.size} px, {args.steps} steps, {args.weights} weights, reference: one batch of {n} "
        f"({threads} threads), torch {torch.__version__}"
    )
    print(f"{'':<14} {'bitwise':>8} {'pixels (0-255)':>15} {'grey levels':>12} {'loss (rel.)':>12}")
    for name, row in report["rows"].items():
        print(
            f"{name:<14} {'yes' if row['bitwise'] else 'no':>8} {row['max_pixel_units']:>15.3g} "
            f"{row['max_grey_levels']:>12d} {row['max_loss_rel']:>12.2g}"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
