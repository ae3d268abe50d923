"""``make demo``: everything the original notebook showed, written to ``outputs/`` in a few minutes on a CPU.

The summary table, the first-layer kernels, feature maps of the sample photo, and filter pictures
of the notebook's five layers with the 10-vs-100 steps comparison and a run.json per layer.
The plan below is sized to finish in well under 5 minutes on a 2-core CPU (the time is measured in
docs/getting-started.md, ``make demo``); a block5 image-step costs several times a block1 one, so
deeper layers get fewer filters.
Bigger runs are one command away: ``filtviz filters block5_conv1 --filters 0-63 --size 128``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from filtviz_core.algorithm import DEFAULT_SNAPSHOTS
from filtviz_core.cli_common import add_progress, progress_wanted, run_guarded

MAP_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
# (layer, number of filters from 0): the notebook's layers, fewer filters where a step costs more.
FILTER_PLAN = (
    ("block1_conv2", 16),
    ("block2_conv1", 16),
    ("block3_conv1", 12),
    ("block4_conv1", 8),
    ("block5_conv1", 8),
)
SIZE, STEPS = 64, 100
SNAPSHOTS = DEFAULT_SNAPSHOTS  # (10, 100): this very object means the default rule, fitted to --quick's 3 steps
QUICK = dict(size=32, steps=3, filters=2)  # --quick: a smoke test of the whole pipeline in seconds


def run(
    out: str | Path = "outputs",
    *,
    weights: str = "keras",
    device: str = "auto",
    quick: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """Write the demo's files under ``out``; returns name -> path of everything written."""
    from filtviz_core import atomic, images
    from filtviz_core.outputs import check_writable
    from torch_filtviz.ascent import visualize_filters
    from torch_filtviz.cli import write_results
    from torch_filtviz.maps import feature_maps
    from torch_filtviz.models import load_vgg16
    from torch_filtviz.plots import plot_feature_maps, plot_kernels
    from torch_filtviz.summary import summary

    out = check_writable(out)
    started = time.perf_counter()
    model = load_vgg16(weights, device=device)
    written: dict[str, Path] = {}

    written["summary"] = out / "summary.txt"
    atomic.write_bytes(written["summary"], (summary(model, print_fn=None) + "\n").encode())

    written["kernels"] = out / "block1_conv1_kernels.png"
    atomic.save_figure(plot_kernels(model, "block1_conv1"), written["kernels"])

    photo = images.load_image(None, size=224)
    written["feature_maps"] = out / "feature_maps.png"
    atomic.save_figure(plot_feature_maps(feature_maps(model, photo, MAP_LAYERS)), written["feature_maps"])
    print(f"summary, kernels and feature maps written in {time.perf_counter() - started:.1f} s", flush=True)

    size, steps = (QUICK["size"], QUICK["steps"]) if quick else (SIZE, STEPS)
    for layer, count in FILTER_PLAN:
        results = visualize_filters(
            model,
            layer,
            list(range(QUICK["filters"] if quick else count)),
            steps=steps,
            size=size,
            snapshots=SNAPSHOTS,
            device=device,
            progress=progress,
        )
        files = write_results(results, out / "filters" / layer)
        for key, path in files.items():
            written[f"{layer}_{key}"] = path
        print(
            f"{layer}: {len(results.filters)} filters x {steps} steps at {size} px in {results.seconds:.1f} s",
            flush=True,
        )

    written["index"] = out / "index.md"
    atomic.write_bytes(written["index"], _index(written, out, weights, size, steps).encode())
    print(f"\ndone in {time.perf_counter() - started:.1f} s; open {written['index']} or:")
    for key in ("summary", "kernels", "feature_maps"):
        print(f"  {key:<28} {written[key]}")
    for layer, _ in FILTER_PLAN:
        print(f"  {layer + ' grid':<28} {written[f'{layer}_grid']}")
        print(f"  {layer + ' 10 vs 100 steps':<28} {written[f'{layer}_iterations']}")
    print(f"  {'per-filter PNGs, run.json':<28} {out / 'filters' / '<layer>'}/")
    return written


def _index(written: dict[str, Path], out: Path, weights: str, size: int, steps: int) -> str:
    def rel(key: str) -> str:
        return written[key].relative_to(out).as_posix()

    lines = [
        "# torch_filtviz demo",
        "",
        (
            f"VGG16 ({weights} weights). Filter pictures: {steps} gradient-ascent steps at {size} px, "
            "objective = mean pre-ReLU activation of the filter."
        ),
        "",
        f"- [Model summary]({rel('summary')})",
        "",
        "## First-layer kernels",
        "",
        f"![kernels]({rel('kernels')})",
        "",
        "## Feature maps of the sample photo",
        "",
        f"![feature maps]({rel('feature_maps')})",
        "",
        "## What the filters respond to",
        "",
    ]
    for layer, _ in FILTER_PLAN:
        lines += [
            f"### {layer}",
            "",
            f"![{layer}]({rel(f'{layer}_grid')})",
            "",
            f"![{layer} iterations]({rel(f'{layer}_iterations')})",
            "",
            f"[run.json]({rel(f'{layer}_run')})",
            "",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_filtviz.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs", help="output folder; default: %(default)s")
    parser.add_argument("--weights", default="keras", help="keras, torchvision, random or a file; default: keras")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps; default: auto")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 3 steps: checks the pipeline in seconds")
    add_progress(parser)
    args = parser.parse_args(argv)

    def job() -> None:
        run(
            args.out,
            weights=args.weights,
            device=args.device,
            quick=args.quick,
            progress=progress_wanted(args.progress),
        )

    return run_guarded("demo", job)


if __name__ == "__main__":
    sys.exit(main())
