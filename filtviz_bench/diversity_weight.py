"""How strong the diversity penalty of ``visualize_filters(..., diversity=K)`` should be, measured.

For each layer, filter and candidate weight w: K pictures of the filter with the penalty weighted by w,
then, on the final pictures (the network sees them as they are, no transform):

* ``kept``: the filter's objective (SPEC §5's interior mean), mean over the K pictures, divided by the
  same at w = 0: what the penalty costs in activation;
* ``gram``: the diversity penalty itself (the mean cosine similarity of the K pictures' Gram matrices at
  the layer, ``filtviz_core.objectives.gram_similarity``; (K - 1) / K when they are alike, lower when not);
* ``pixels``: the mean pairwise correlation of the K display pictures' grey levels.

The rule that picks the default: the largest weight whose median ``kept`` over the filters is at least
:data:`KEEP` (as diverse as possible while keeping most of the activation). Writes ``weights.json`` and
``README.md`` under ``--out``.

    python -m filtviz_bench.diversity_weight --out benchmarks/diversity
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

KEEP = 0.8


def measure(
    model, layer: str, filt: int, weight: float, *, k: int, method: str, steps: int, size: int, seed: int
) -> dict:
    import torch

    import torch_filtviz as fv
    from filtviz_core.objectives import gram_similarity
    from torch_filtviz import objectives as obj

    res = fv.visualize_filters(
        model,
        layer,
        [filt],
        method=method,
        steps=steps,
        size=size,
        seed=seed,
        diversity=k,
        diversity_weight=weight,
        progress=False,
        snapshots=[],
    )
    pictures = torch.from_numpy(np.ascontiguousarray(res.raw)).permute(0, 3, 1, 2)
    with torch.no_grad():
        values = obj.objective_values(model, obj.channel(layer, filt), pictures).numpy()
        target = fv.resolve_target(model, layer, "pre_relu")
        with fv.capture(model, target) as cap:
            a = cap(pictures)[layer].float()
    flat = a.flatten(2).transpose(1, 2).numpy() if a.ndim == 4 else a[:, None, :].numpy()
    grey = res.images.astype(np.float64).mean(axis=3).reshape(k, -1)
    corr = np.corrcoef(grey)
    return {
        "layer": layer,
        "filter": filt,
        "weight": weight,
        "activation": float(values.mean()),
        "gram": float(gram_similarity(flat).mean()),
        "pixels": float((corr.sum() - k) / (k * (k - 1))),
        "seconds": res.seconds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m filtviz_bench.diversity_weight",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--layers", default="block3_conv3,block4_conv3,block5_conv3")
    p.add_argument("--filters", default="0,1")
    p.add_argument("--weights-list", default="0,300,500,700,1000,3000")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--method", default="fourier")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/diversity")
    args = p.parse_args(argv)

    import torch_filtviz as fv
    from filtviz_core.weights import resolve_weights

    model = fv.load_vgg16(resolve_weights("auto").path)
    weights = [float(w) for w in args.weights_list.split(",")]
    rows = []
    started = time.perf_counter()
    for layer in args.layers.split(","):
        for filt in (int(f) for f in args.filters.split(",")):
            for w in weights:
                row = measure(
                    model,
                    layer,
                    filt,
                    w,
                    k=args.k,
                    method=args.method,
                    steps=args.steps,
                    size=args.size,
                    seed=args.seed,
                )
                rows.append(row)
                print(json.dumps(row), flush=True)
    base = {(r["layer"], r["filter"]): r["activation"] for r in rows if r["weight"] == 0.0}
    for r in rows:
        r["kept"] = r["activation"] / base[(r["layer"], r["filter"])]
    summary = []
    for w in weights:
        mine = [r for r in rows if r["weight"] == w]
        summary.append(
            {
                "weight": w,
                "kept": float(np.median([r["kept"] for r in mine])),
                "gram": float(np.median([r["gram"] for r in mine])),
                "pixels": float(np.median([r["pixels"] for r in mine])),
            }
        )
    allowed = [s["weight"] for s in summary if s["kept"] >= KEEP]
    chosen = max(allowed) if allowed else 0.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python -m filtviz_bench.diversity_weight " + " ".join(argv or []),
        "settings": vars(args),
        "rule": f"largest weight with median kept >= {KEEP}",
        "chosen": chosen,
        "summary": summary,
        "runs": rows,
        "seconds": time.perf_counter() - started,
    }
    (out / "weights.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        "# Diversity weight, measured",
        "",
        (
            f"`python -m filtviz_bench.diversity_weight --out {args.out}` (VGG16 genuine weights, {args.method}, "
            f"{args.steps} steps, {args.size} px, K = {args.k}, layers {args.layers}, filters {args.filters}; "
            "medians over the layer-filter pairs)."
        ),
        "",
        "| weight | kept activation | Gram similarity | pixel correlation |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s['weight']:g} | {s['kept']:.2f} | {s['gram']:.3f} | {s['pixels']:.3f} |" for s in summary]
    lines += ["", f"Rule: the largest weight whose median kept activation is at least {KEEP}: **{chosen:g}**.", ""]
    (out / "README.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
