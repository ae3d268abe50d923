"""The MACO benchmark (``python -m filtviz_bench maco``, part of ``make quality``): our batched MACO beside
Xplique's and Horama's MACO (one objective at a time, as their users run them), our fourier method and
Lucent, scored by the quality benchmark's evaluator; then filters per second of the three MACOs.

Quality runs, on every chosen filter of every layer, ``--size`` px, all at equal image passes
(``--steps`` x ``--crops`` forward+backward passes of one picture per filter):

================  ===========================================================================
maco              torch_filtviz ``method="maco"``, ``--steps`` steps of ``--crops`` crops
maco_32           the same with MACO's default 32 crops (``--crops`` is the CPU preset; 32/crops x the passes)
maco_reseed       ``maco`` again with ``--seed`` + 1: how often one MACO beats itself by chance, the reference
                  for the same-method targets (ours >= Xplique's, ours >= Horama's)
xplique           Xplique 2.0.2 ``maco``, ``--steps`` x ``--crops`` (:mod:`filtviz_bench.maco_runners`)
horama            Horama 0.3.0 ``maco``, ``--steps`` x ``--crops``
fourier           torch_filtviz ``method="fourier"``, steps x crops steps (one view per step)
lucent            Lucent ``render_vis`` defaults at the picture's size, steps x crops steps
================  ===========================================================================

Speed (``--contenders``): the same filters, size, crops and steps for each MACO, interleaved round robin
(``--speed-repeats``), filters per second with min-max; Xplique and Horama per filter, ours batched.
``--contenders ours,horama`` needs no TensorFlow (for a GPU machine: ``--device cuda``).

``--model`` runs the torch contenders (maco, maco_32, horama, fourier) on another network of
:func:`torch_filtviz.load_model` (a torchvision name, random weights unless ``--weights`` names others):
Xplique and Lucent run the Keras VGG16 only, so they are skipped there with the reason.

    python -m filtviz_bench maco --out benchmarks/maco
    python -m filtviz_bench maco --no-quality --contenders ours,horama --device cuda --speed-filters 16
    python -m filtviz_bench maco --quick --out /tmp/m        # seconds: the whole path on tiny sizes
    python -m filtviz_bench maco --model resnet50 --layers layer2.3,layer3.5,layer4.2 --out benchmarks/maco/resnet50
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from filtviz_bench import evaluator, figures, machine, maco_runners, quality_report, renderers
from filtviz_bench.jobs import choose_filters, option_pairs
from filtviz_bench.quality import scored_run
from filtviz_bench.timing import speed_verdict, stats
from filtviz_core.atomic import write_bytes, write_json
from filtviz_core.errors import FiltvizError

SCHEMA = 1
LAYERS = ("block3_conv3", "block4_conv3", "block5_conv3")
RUNS = ("maco", "maco_32", "maco_reseed", "xplique", "horama", "fourier", "lucent")
CONTENDERS = ("ours", "xplique", "horama")
DEFAULT_CROPS = 32  # MACO's own default (Xplique's nb_crops; filtviz_core.options.MacoOptions.crops)
SPEED_TARGET = 3.0
SHARE_TARGET = 0.75
QUICK = {"layers": "block3_conv3", "filters": "0-1", "size": 32, "steps": 2, "crops": 2, "noise": 3, "k": 2}
QUICK_SPEED = {"speed_filters": 2, "speed_steps": 2, "speed_repeats": 2}


VGG16_ONLY = ("xplique", "lucent")  # their runners rebuild the Keras VGG16 (or its torchvision twin) themselves


def unavailable(run: str, model: str = "vgg16") -> str | None:
    if run in VGG16_ONLY and model != "vgg16":
        return f"runs the Keras VGG16 only (--model vgg16), not {model}"
    if run == "xplique":
        return maco_runners.xplique_available()
    if run == "horama":
        return maco_runners.horama_available()
    if run == "lucent":
        return renderers.unavailable("lucent")
    return None


def make_renderer(
    run: str, args: argparse.Namespace, model: torch.nn.Module, device: torch.device
) -> renderers.Renderer:
    crops = DEFAULT_CROPS if run == "maco_32" else args.crops
    if run in ("maco", "maco_32", "maco_reseed"):
        seed = args.seed + 1 if run == "maco_reseed" else args.seed
        options = {**args.maco_options, "crops": crops}
        return renderers.torch_renderer(model, "maco", size=args.size, seed=seed, device=device, options=options)
    if run == "fourier":
        return renderers.torch_renderer(model, "fourier", size=args.size, seed=args.seed, device=device)
    if run == "lucent":
        return renderers.lucent_renderer(args.weights, "lucent", size=args.size, seed=args.seed, device=device)
    if run == "xplique":
        return maco_runners.xplique_renderer(args.weights, size=args.size, crops=crops, seed=args.seed)
    return maco_runners.horama_renderer(model, size=args.size, crops=crops, seed=args.seed, device=device)


def run_steps(run: str, args: argparse.Namespace) -> int:
    """Equal image passes: the one-view methods take steps x crops steps."""
    return args.steps * args.crops if run in ("fourier", "lucent") else args.steps


def share_at_least(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """(share of the filters both runs scored on which a's robust z is at least b's, how many filters)."""
    sa, sb = quality_report.by_filter(a), quality_report.by_filter(b)
    shared = [k for k in sa if k in sb]

    def z(s: dict[str, Any]) -> float:
        return s["z"] if s["z"] is not None else -math.inf

    wins = sum(1 for k in shared if z(sa[k]) >= z(sb[k]))
    return (wins / len(shared) if shared else float("nan")), len(shared)


def quality_targets(runs: dict[str, dict[str, Any]], layers: Sequence[str]) -> list[dict[str, Any]]:
    """Our MACO at least each anchor on >= 75% of filters; where it beats fourier (per layer); the preset; and
    how often our MACO beats itself under another seed (the chance level of the same-method targets)."""
    out = []
    if "maco" not in runs:
        return out
    ours = runs["maco"]["scores"]
    for anchor in ("xplique", "horama"):
        if anchor in runs:
            share, n = share_at_least(ours, runs[anchor]["scores"])
            out.append(
                {
                    "target": f"maco >= {anchor} (robust z) on >= 75% of filters, equal passes",
                    "share": share,
                    "filters": n,
                    "met": bool(share >= SHARE_TARGET),
                    "median_z": [runs["maco"]["summary"]["median_z"], runs[anchor]["summary"]["median_z"]],
                }
            )
    for other in ("fourier", "lucent", "maco_32", "maco_reseed"):
        if other not in runs:
            continue
        per_layer = {}
        for layer in layers:
            a = [s for s in ours if s["layer"] == layer]
            b = [s for s in runs[other]["scores"] if s["layer"] == layer]
            share, n = share_at_least(a, b)
            per_layer[layer] = {
                "share": share,
                "filters": n,
                "median_z": [quality_report._median([s["z"] for s in a]), quality_report._median([s["z"] for s in b])],
            }
        share, n = share_at_least(ours, runs[other]["scores"])
        what = "the same method, another seed: chance level" if other == "maco_reseed" else "where it wins"
        out.append(
            {
                "target": f"maco vs {other} (not a target: {what})",
                "share": share,
                "filters": n,
                "met": None,
                "per_layer": per_layer,
            }
        )
    return out


def speed_run(
    args: argparse.Namespace, model: torch.nn.Module, device: torch.device, log: Callable[[str], None]
) -> dict[str, Any]:
    """Filters per second of each MACO on the same filters (the first ``--speed-filters`` of the last layer),
    size, crops and steps; one warm-up call each, then ``--speed-repeats`` interleaved rounds."""
    contenders = [c for c in args.contenders.split(",") if c]
    skipped = {c: why for c in contenders if c != "ours" and (why := unavailable(c, args.model))}
    contenders = [c for c in contenders if c not in skipped]
    layer = args.layers.split(",")[-1]
    filters = list(range(args.speed_filters))
    renders = {c: make_renderer("maco" if c == "ours" else c, args, model, device) for c in contenders}
    for c in contenders:
        renders[c](layer, filters[:1] if c != "ours" else filters, 1)  # warm up (graphs, caches)
    seconds: dict[str, list[float]] = {c: [] for c in contenders}
    for r in range(args.speed_repeats):
        for c in contenders:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            renders[c](layer, filters, args.speed_steps)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[c].append(time.perf_counter() - start)
        log(
            f"  speed round {r + 1}/{args.speed_repeats}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in seconds.items())
        )
    n = len(filters)
    out: dict[str, Any] = {
        "layer": layer,
        "filters": n,
        "size": args.size,
        "crops": args.crops,
        "steps": args.speed_steps,
        "repeats": args.speed_repeats,
        "skipped": skipped,
        "seconds": {c: stats(v) | {"all": v} for c, v in seconds.items()},
        "filters_per_second": {
            c: {"median": n / stats(v)["median"], "min": n / max(v), "max": n / min(v)} for c, v in seconds.items()
        },
    }
    anchors = [c for c in contenders if c != "ours"]
    if "ours" in seconds and anchors:
        faster = min(anchors, key=lambda c: stats(seconds[c])["median"])
        out["faster_anchor"] = faster
        out["verdict"] = speed_verdict(seconds["ours"], seconds[faster], SPEED_TARGET)
    return out


def model_text(config: dict[str, Any]) -> str:
    """The network, named when it is not the default VGG16 (older reports have no model: VGG16)."""
    model = config.get("model", "vgg16")
    return "" if model == "vgg16" else f"{model} ({config.get('weights')} weights): "


def markdown(report: dict[str, Any]) -> str:
    num = quality_report._num
    c = report["config"]
    lines = [
        f"# MACO benchmark ({report['created']})",
        "",
        f"`{report['command']}`",
        "",
        (
            f"{model_text(c)}{', '.join(c['layers'])}; filters {c['filters']}; {c['size']} px; "
            f"{c['steps']} steps x {c['crops']} crops = {c['steps'] * c['crops']} image passes per filter "
            f"(fourier, lucent: {c['steps'] * c['crops']} steps); "
            f"device {report['device']['name']}."
            + (f" Our MACO's options: {c['maco_options']} (the anchors keep theirs)." if c.get("maco_options") else "")
        ),
        "",
    ]
    if report["runs"]:
        lines += ["| run | steps | median robust z | per layer | median alpha | seconds |", "|---|---|---|---|---|---|"]
        for name, run in report["runs"].items():
            per = ", ".join(f"{k.split('_')[0]} {num(v['median_z'])}" for k, v in run["per_layer"].items())
            lines.append(
                f"| {name} | {run['steps']} | {num(run['summary']['median_z'])} | {per} | "
                f"{num(run['summary']['median_alpha'], '.2f')} | {run['seconds']:.0f} |"
            )
        lines.append("")
    for t in report["targets"]:
        verdict = "" if t["met"] is None else (" — met" if t["met"] else " — NOT met")
        extra = ""
        if "per_layer" in t:
            extra = "; " + ", ".join(
                f"{k.split('_')[0]} {v['share']:.0%} (z {num(v['median_z'][0])} vs {num(v['median_z'][1])})"
                for k, v in t["per_layer"].items()
            )
        lines.append(f"- {t['target']}: {t['share']:.0%} of {t['filters']}{extra}{verdict}")
    if report["skipped"]:
        lines += [""] + [f"- skipped {k}: {v}" for k, v in report["skipped"].items()]
    s = report.get("speed")
    if s:
        lines += [
            "",
            (
                f"Speed: {s['layer']}, {s['filters']} filters, {s['size']} px, {s['crops']} crops, "
                f"{s['steps']} steps, {s['repeats']} interleaved rounds."
            ),
            "",
        ]
        lines += ["| contender | filters/s (median) | min-max |", "|---|---|---|"]
        for k, v in s["filters_per_second"].items():
            lines.append(f"| {k} | {v['median']:.3f} | {v['min']:.3f}-{v['max']:.3f} |")
        if "verdict" in s:
            v = s["verdict"]
            lines += [
                "",
                (
                    f"- ours vs {s['faster_anchor']} (the faster anchor): {v['ratio']:.2f}x "
                    f"(range {v['ratio_range'][0]:.2f}-{v['ratio_range'][1]:.2f}x), target >= {SPEED_TARGET:g}x: "
                    f"{v['verdict']}"
                ),
            ]
        for k, why in s["skipped"].items():
            lines.append(f"- speed: skipped {k}: {why}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None, prog: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + __doc__.rsplit("\n\n", 1)[-1],
    )
    p.add_argument("--model", default="vgg16", help="vgg16 (default) or a torchvision network name (see --layers)")
    p.add_argument(
        "--layers",
        help=f"comma list of layers: VGG16 conv names (default: {','.join(LAYERS)}); required with another --model",
    )
    p.add_argument("--filters", help="per layer: a count (the first N) or a list such as 7,77 (default: 7,77)")
    p.add_argument("--size", type=int, help="picture size in px (default: 64)")
    p.add_argument("--steps", type=int, help="MACO steps (default: 48)")
    p.add_argument("--crops", type=int, help="MACO crops per step (default: 8, the CPU preset)")
    p.add_argument("--runs", help=f"comma list from {', '.join(RUNS)} (default: all)")
    p.add_argument("--noise", type=int, help="1/f-noise pictures per layer for the z-score baseline (default: 32)")
    p.add_argument("--k", type=int, help="held-out transformations per picture (default: 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--maco-option",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="an option of our MACO runs, e.g. box=[0.3,0.25] (repeatable; for tuning: the anchors keep theirs)",
    )
    p.add_argument(
        "--weights",
        help="vgg16: keras (default) or a weights file; another --model: random (default) or as filtviz takes",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    p.add_argument("--no-quality", action="store_true", help="only the speed run")
    p.add_argument("--no-speed", action="store_true", help="only the quality runs")
    p.add_argument("--contenders", default=",".join(CONTENDERS), help="speed: comma list from ours, xplique, horama")
    p.add_argument("--speed-filters", type=int, help="speed: filters of the last layer (default: 4)")
    p.add_argument("--speed-steps", type=int, help="speed: steps (default: 8)")
    p.add_argument("--speed-repeats", type=int, help="speed: interleaved rounds (default: 3)")
    p.add_argument("--quick", action="store_true", help="tiny sizes for tests: the whole path in seconds")
    p.add_argument("--out", help="folder for maco.json, maco.md, figure.jpg (default: benchmarks/maco)")
    args = p.parse_args(argv)
    from torch_filtviz.zoo import check_model_name

    check_model_name(args.model)
    if args.model != "vgg16" and not args.layers:
        raise FiltvizError(f"--model {args.model} needs --layers (VGG16's layer names are the default for vgg16 only)")
    if args.weights is None:
        args.weights = "keras" if args.model == "vgg16" else "random"
    defaults = {
        "layers": ",".join(LAYERS),
        "filters": "7,77",
        "size": 64,
        "steps": 48,
        "crops": 8,
        "noise": 32,
        "k": 16,
        "speed_filters": 4,
        "speed_steps": 8,
        "speed_repeats": 3,
    }
    quick = {**QUICK, **QUICK_SPEED} if args.quick else {}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick.get(name, value))
    for name in ("size", "steps", "crops", "noise", "k", "speed_filters", "speed_steps", "speed_repeats"):
        if int(getattr(args, name)) < (2 if name == "noise" else 1):
            raise FiltvizError(
                f"--{name.replace('_', '-')} must be >= {2 if name == 'noise' else 1}, got {getattr(args, name)}"
            )
    args.maco_options = option_pairs(args.maco_option, "--maco-option")
    if "crops" in args.maco_options:
        raise FiltvizError("--maco-option crops=...: use --crops (it sets the anchors' crops too)")
    args.runs = [r.strip() for r in (args.runs or ",".join(RUNS)).split(",") if r.strip()]
    bad = [r for r in args.runs if r not in RUNS] + [c for c in args.contenders.split(",") if c and c not in CONTENDERS]
    if bad:
        raise FiltvizError(
            f"unknown run or contender {bad[0]!r}; runs: {', '.join(RUNS)}; contenders: {', '.join(CONTENDERS)}"
        )
    return args


def main(argv: Sequence[str] | None = None, prog: str = "python -m filtviz_bench maco") -> dict[str, Any]:
    args = parse_args(argv, prog)
    from torch_filtviz import layer_channels, load_model, load_vgg16, resolve_device

    device = resolve_device(args.device)
    layers = [s.strip() for s in args.layers.split(",") if s.strip()]
    out = Path(args.out or "benchmarks/maco")
    log: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    started = time.perf_counter()
    if args.model == "vgg16":
        filters = choose_filters(layers, args.filters, args.size)
        model = load_vgg16(args.weights, device=device)
    else:
        model = load_model(args.model, args.weights, device=device, seed=args.seed)
        counts = {layer: layer_channels(model, layer, args.size) for layer in layers}
        filters = choose_filters(layers, args.filters, args.size, counts=counts)
    heldout = evaluator.HeldOut(k=args.k)
    runs: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    pictures: dict[str, dict[str, np.ndarray]] = {}
    if not args.no_quality:
        baselines = {
            layer: evaluator.noise_baseline(model, layer, args.size, count=args.noise, heldout=heldout, device=device)
            for layer in layers
        }
        for name in args.runs:
            why = unavailable(name, args.model)
            if why:
                skipped[name] = why
                log(f"skipped {name}: {why}")
                continue
            steps = run_steps(name, args)
            run = scored_run(
                model,
                make_renderer(name, args, model, device),
                filters,
                steps,
                baselines,
                heldout,
                device,
                log=lambda layer, sec, zs, name=name: log(
                    f"{name} {layer}: {sec:.1f} s, median z {quality_report._num(quality_report._median(zs))}"
                ),
            )
            pictures[name] = run.pop("pictures")
            crops = DEFAULT_CROPS if name == "maco_32" else 1 if name in ("fourier", "lucent") else args.crops
            runs[name] = {**run, "steps": steps, "crops": crops, "image_passes_per_filter": steps * crops}
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m filtviz_bench maco " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {
            "model": args.model,
            "layers": layers,
            "filters": args.filters,
            "size": args.size,
            "steps": args.steps,
            "crops": args.crops,
            "noise_pictures": args.noise,
            "heldout_k": args.k,
            "seed": args.seed,
            "maco_options": args.maco_options,
            "weights": args.weights,
            "xplique_noise_px": maco_runners.XPLIQUE_NOISE_PX,
            "horama_noise_px": maco_runners.HORAMA_NOISE_PX,
            "horama_box": list(maco_runners.HORAMA_BOX),
        },
        "device": {"type": device.type, "name": machine.device_name(device), "platform": platform.platform()},
        "versions": machine.versions(),
        "threads": torch.get_num_threads(),
        "load_average_before": machine.load_average(),
        "runs": runs,
        "skipped": skipped,
        "targets": quality_targets(runs, layers),
    }
    report["speed"] = None if args.no_speed else speed_run(args, model, device, log)
    report["load_average_after"] = machine.load_average()
    report["wall_seconds"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    if pictures:
        names = list(pictures)
        groups = [
            (
                layer,
                [f"{layer.split('_')[0]} f{f}" for f in filters[layer]],
                [f"{n}\n{runs[n]['steps']} steps" for n in names],
                [pictures[n][layer] for n in names],
            )
            for layer in layers
        ]
        figures.save(figures.grid(groups), out / "figure.jpg")
        report["figure"] = str(out / "figure.jpg")
    write_json(out / "maco.json", report)
    write_bytes(out / "maco.md", (markdown(report) + "\n").encode())
    print(markdown(report))
    print(f"\nwrote {out / 'maco.json'}, {out / 'maco.md'}")
    return report


def cli(argv: Sequence[str] | None = None, prog: str = "python -m filtviz_bench maco") -> int:
    """:func:`main` with the codebase's exit statuses: 2 bad input, 1 runtime failure, 130 Ctrl-C."""
    from filtviz_core.cli_common import run_guarded

    return run_guarded(prog, lambda: main(argv, prog))


if __name__ == "__main__":
    sys.exit(cli())
