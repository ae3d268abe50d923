"""Run tf_reference and torch_filtviz on one configuration and report whether they agree.

    python scripts/compare_frameworks.py --layers block1_conv2,block3_conv1,block5_conv3 \\
        --filters 0-3 --steps 100 --out report/

Both frameworks load the same verified weights file and start from the same numpy arrays. The
checks are those of ``parity_tests.vgg_parity``: fixed bounds for the deterministic quantities
(activations, gradients, the first ascent step, block-1 loss curves), and from block 2 on loss
curves within k x the noise floor measured in this run (TensorFlow again from starts moved by one
ulp per pixel). The report folder gets ``report.json`` (every metric, its bound, where the bound
comes from, pass/fail), ``report.md`` (tables), and figures: loss curves overlaid per filter with
their divergence and the floor's, final images side by side with a difference map, activation
statistics per layer. Exit status: 0 when every check is within its bound, 1 when any is not, 2
for bad input (one line on stderr) — so a CI job can call it.
``--perturb-torch 1e-3`` multiplies every torch conv kernel by (1 + 1e-3 * N(0, 1)) (seeded), a
planted porting bug the report must catch (exit 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from filtviz_core import atomic
from filtviz_core.algorithm import DEFAULT_SEED, check_steps, parse_filters
from filtviz_core.errors import FiltvizError
from filtviz_core.vgg16 import CONV_NAMES, FILTER_COUNTS, MIN_IMAGE_SIZE, min_size_for

DEFAULT_SIZE = 64  # px: the parity suite's size; deep layers at 128 px cost minutes on a CPU


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other bad input
        raise FiltvizError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="compare_frameworks.py", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--layers", default="block1_conv2,block3_conv1,block5_conv3", help="comma-separated Keras conv layer names"
    )
    p.add_argument("--filters", default="0-3", help="filter indices for every layer, e.g. 0-3 or 0,5,9")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help="image side in px (default 64)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--weights", default="keras", help="keras (the verified file) or a weights file path")
    p.add_argument("--out", default="report", help="report folder (created)")
    p.add_argument(
        "--perturb-torch",
        type=float,
        default=0.0,
        metavar="EPS",
        help="perturb the torch conv kernels by EPS relative (a planted bug: expect exit 1)",
    )
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    if not layers:
        raise FiltvizError("no layers given; valid: " + ", ".join(CONV_NAMES))
    for name in layers:
        if name not in CONV_NAMES:
            raise FiltvizError(f"unknown layer {name!r}; valid: {', '.join(CONV_NAMES)}")
    args.layers = list(dict.fromkeys(layers))
    args.filter_lists = {name: parse_filters(args.filters, FILTER_COUNTS[name], name) for name in args.layers}
    check_steps(args.steps, 1.0)
    if args.steps < 1:
        raise FiltvizError(f"steps must be at least 1, got {args.steps}")
    need = max([MIN_IMAGE_SIZE] + [min_size_for(n) for n in args.layers])
    if args.size < need:
        raise FiltvizError(f"size {args.size} px is too small: the layers need at least {need} px")
    if args.seed < 0:
        raise FiltvizError(f"seed must be >= 0, got {args.seed}")
    if not np.isfinite(args.perturb_torch) or args.perturb_torch < 0:
        raise FiltvizError(f"--perturb-torch must be a number >= 0, got {args.perturb_torch}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FiltvizError(f"--out {out} exists and is not a folder")
    return args


def perturb_conv_kernels(model, eps: float, seed: int = 0) -> None:
    """Multiply each conv kernel element by (1 + eps * N(0,1)), seeded: a stand-in for a subtly wrong port."""
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                noise = rng.standard_normal(tuple(module.weight.shape)).astype(np.float32)
                module.weight.mul_(torch.from_numpy(1 + eps * noise))


def run(args: argparse.Namespace, models: tuple | None = None) -> int:
    """The comparison; ``models`` = (keras, torch) already loaded from the same file (tests pass them;
    ``--perturb-torch`` modifies the torch one in place)."""
    import torch

    from filtviz_core.weights import resolve_weights
    from parity_tests import figures, vgg_parity
    from parity_tests.checks import Report
    from parity_tests.mutations import torch_side
    from parity_tests.runners import to_nchw, to_nhwc, torch_activations
    from tf_reference.model import load_vgg16 as keras_load
    from torch_filtviz.models import load_vgg16 as torch_load

    started = time.perf_counter()
    out = Path(args.out)
    weights = resolve_weights("auto" if args.weights == "keras" else args.weights)
    keras_model, torch_model = models if models is not None else (keras_load(weights.path), torch_load(weights.path))
    if args.perturb_torch:
        perturb_conv_kernels(torch_model, args.perturb_torch)
    side = torch_side(torch_model)
    timings: dict[str, float] = {"load": time.perf_counter() - started}
    report = Report()

    # 1. Activations at every conv layer, on the sample photo and on noise; both packages' feature maps.
    t0 = time.perf_counter()
    act_ref = vgg_parity.activation_reference(keras_model, args.seed)
    report.extend(vgg_parity.activation_checks(act_ref, side))
    photo = act_ref.inputs["photo"]
    paths = {name: torch_model.aliases[name] for name in CONV_NAMES}
    t_acts = torch_activations(torch_model, list(paths.values()), to_nchw(photo))
    act_stats = {}
    for name in CONV_NAMES:
        k, t = act_ref.acts["photo"][name], to_nhwc(t_acts[paths[name]])
        act_stats[name] = {
            "ref_mean": float(np.abs(k).mean()),
            "other_mean": float(np.abs(t).mean()),
            "ref_max": float(np.abs(k).max()),
            "other_max": float(np.abs(t).max()),
            "rel_max_diff": report[f"activations/photo/{name}/rel_max_diff"].value,
        }
    report.extend(vgg_parity.feature_map_checks(keras_model, torch_model, photo[0].astype(np.uint8), CONV_NAMES))
    timings["activations"] = time.perf_counter() - t0

    # 2. Input gradients of the objective and 3. the ascent itself (with its noise floor), per layer.
    runs = {}
    for layer in args.layers:
        t0 = time.perf_counter()
        ref = vgg_parity.layer_reference(
            keras_model, layer, args.filter_lists[layer], steps=args.steps, size=args.size, seed=args.seed
        )
        timings[f"reference/{layer}/tensorflow"] = ref.seconds
        t0 = time.perf_counter()
        report.extend(vgg_parity.layer_checks(ref, side, "gradients")[0])
        checks, t_run = vgg_parity.layer_checks(ref, side, "ascent")
        report.extend(checks)
        timings[f"port/{layer}/torch"] = time.perf_counter() - t0
        runs[layer] = (ref.run, t_run, ref.again)

    # Figures, then the report files (written last: their presence means the run finished).
    figs = {"activations.png": figures.plot_activation_stats(act_stats, vgg_parity.FEATURE_MAP_RTOL)}
    for layer, (k_run, t_run, again) in runs.items():
        figs[f"losses_{layer}.png"] = figures.plot_loss_curves(
            layer, k_run.filters, k_run.losses, t_run.losses, again=again[0].losses if again else None
        )
        figs[f"images_{layer}.png"] = figures.plot_image_pairs(layer, k_run.filters, k_run.images, t_run.images)
    for name, fig in figs.items():
        atomic.save_figure(fig, out / name)
    timings["total"] = time.perf_counter() - started

    config = {
        "layers": args.layers,
        "filters": args.filter_lists,
        "steps": args.steps,
        "size": args.size,
        "seed": args.seed,
        "lr": 1.0,
        "objective": "pre_relu",
        "perturb_torch": args.perturb_torch,
        "weights": weights.describe(),
        "floor_rule": {
            "k": vgg_parity.FLOOR_RULE.k,
            "cap": vgg_parity.FLOOR_RULE.cap,
            "min_floor": vgg_parity.FLOOR_RULE.min_floor,
        },
    }
    versions = {
        "tensorflow": __import__("tensorflow").__version__,
        "keras": __import__("keras").__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    doc = {
        "config": config,
        "versions": versions,
        "seconds": timings,
        **report.to_dict(),
        "losses": {
            layer: {
                "filters": k.filters,
                "tensorflow": k.losses.tolist(),
                "torch": t.losses.tolist(),
                "tensorflow_reruns_1ulp": [r.losses.tolist() for r in a],
            }
            for layer, (k, t, a) in runs.items()
        },
        "figures": sorted(figs),
    }
    atomic.write_json(out / "report.json", doc)
    atomic.write_bytes(out / "report.md", markdown(report, config, versions, timings, sorted(figs)).encode())
    print(f"{'PASS' if report.passed else 'FAIL'}: {report.summary()} ({timings['total']:.0f} s); report in {out}/")
    return 0 if report.passed else 1


def markdown(report, config: dict, versions: dict, timings: dict, figs: list[str]) -> str:
    verdict = (
        "**PASS**: every check within its bound"
        if report.passed
        else f"**FAIL**: {len(report.failures())} of {len(report.checks)} checks out of bounds"
    )
    lines = [
        "# Framework parity report: tf_reference (TensorFlow/Keras) vs torch_filtviz (PyTorch)",
        "",
        verdict,
        "",
        f"Layers {', '.join(config['layers'])}; filters {config['filters']}; {config['steps']} steps; "
        f"{config['size']} px; seed {config['seed']}; lr 1.0; objective pre_relu"
        + (f"; **torch weights perturbed by {config['perturb_torch']:g}**" if config["perturb_torch"] else "")
        + ".",
        f"Weights: {config['weights']['source']} (sha256 {str(config['weights']['sha256'])[:16]}...). "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + ".",
        "",
        (
            "Keras is the reference: relative differences are measured against its values. Loss curves: "
            "max over steps of |a-b| / max |a| (the curve's own scale, so a curve crossing zero is not inflated "
            "there). Activations, gradients and the first ascent step are deterministic: fixed bounds. From "
            "block 2 on, gradient ascent amplifies float32 round-off, so the loss curves are held to "
            f"{config['floor_rule']['k']:g} x the noise floor measured in this run (TensorFlow run again from "
            "a start moved by 1 ulp per pixel), never above "
            f"{config['floor_rule']['cap']:g}; each check's note spells out its arithmetic."
        ),
        "",
    ]
    if report.failures():
        lines += ["## Failed checks", "", _table(report.failures()), ""]
    groups: dict[str, list] = {}
    for c in report.checks:
        groups.setdefault(c.group, []).append(c)
    for group, checks in groups.items():
        lines += [f"## {group} ({sum(c.passed for c in checks)}/{len(checks)} pass)", "", _table(checks), ""]
    lines += ["## Time (s)", "", "| part | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()]
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figs] + [""]
    return "\n".join(lines)


def _table(checks) -> str:
    from parity_tests.compare import Report

    return Report(list(checks)).to_markdown()


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        return run(args)
    except FiltvizError as exc:
        print(f"compare_frameworks.py: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
