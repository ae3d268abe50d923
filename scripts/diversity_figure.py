"""The diversity figure of docs/objectives.md: four pictures of one filter without and with the diversity penalty.

    python scripts/diversity_figure.py --weights 1000,3000 --out docs/diversity.jpg

Renders ``channel(LAYER, FILTER)`` and ``channel(LAYER, FILTER) - W * diversity(LAYER)`` for each W with
``fv.render(..., batch=4, method="fourier")`` at the method's defaults (VGG16, the Keras weights), draws
one row each, and writes the measured numbers beside the picture (``<out>.json``): each row's Gram
similarity at the layer (the penalty; (K - 1) / K for identical pictures), the mean pairwise correlation
of the pictures' grey levels, and the filter's activation on each picture.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def row_numbers(model, layer: str, filt: int, res) -> dict:
    import torch

    from torch_filtviz import objectives as obj

    x = torch.from_numpy(np.ascontiguousarray(res.raw)).permute(0, 3, 1, 2)
    with torch.no_grad():
        gram = obj.objective_values(model, obj.diversity(layer), x).numpy()
        act = obj.objective_values(model, obj.channel(layer, filt), x).numpy()
    grey = res.images.astype(np.float64).mean(axis=3).reshape(len(x), -1)
    c = np.corrcoef(grey)
    k = len(x)
    return {
        "objective": res.params["objective"],
        "gram_similarity": float(gram.sum()),  # Lucid's value: the sum
        "pixel_correlation": float((c.sum() - k) / (k * (k - 1))),
        "activation": act.tolist(),
        "seconds": res.seconds,
    }


def main(argv: list[str] | None = None) -> int:
    from filtviz_core.objectives import DIVERSITY_WEIGHT

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layer", default="block4_conv3")
    p.add_argument("--filter", type=int, default=12)
    p.add_argument("--weights", default=str(DIVERSITY_WEIGHT), help="comma-separated penalty weights, one row each")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=None, help="default: the fourier method's")
    p.add_argument("--out", default="docs/diversity.jpg")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import torch_filtviz as fv
    from filtviz_core import atomic
    from filtviz_core.weights import resolve_weights
    from torch_filtviz import objectives as obj

    model = fv.load_vgg16(resolve_weights("auto").path)
    goal = obj.channel(args.layer, args.filter)
    weights = [float(w) for w in args.weights.split(",")]
    rows = [goal] + [goal - w * obj.diversity(args.layer) for w in weights]
    results = [
        fv.render(model, g, batch=args.batch, method="fourier", steps=args.steps, size=args.size, progress=False)
        for g in rows
    ]
    numbers = [row_numbers(model, args.layer, args.filter, r) for r in results]
    fig, axes = plt.subplots(len(rows), args.batch, figsize=(2.2 * args.batch, 2.5 * len(rows)), squeeze=False)
    for r, (res, nums) in enumerate(zip(results, numbers)):
        for i in range(args.batch):
            ax = axes[r, i]
            ax.imshow(res.images[i])
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(
            f"{'no penalty' if r == 0 else f'w = {weights[r - 1]:g}'}\nGram sim. "
            f"{nums['gram_similarity'] / args.batch:.2f}",
            fontsize=8,
        )
        axes[r, 0].set_title(nums["objective"], fontsize=7, loc="left")
    fig.tight_layout()
    out = Path(args.out)
    atomic.save_figure(fig, out)
    atomic.write_json(
        out.with_suffix(".json"),
        {
            "command": "python scripts/diversity_figure.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "settings": vars(args),
            "rows": numbers,
        },
    )
    print(json.dumps(numbers, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
