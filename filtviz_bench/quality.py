"""The quality benchmark (``make quality``): the pixel method, the fourier method and Lucent on the same
filters, scored by one evaluator (:mod:`filtviz_bench.evaluator`) on the exported pictures.

Runs (each on every chosen filter of every layer, ``--size`` px):

====================  ===========================================================================
pixel, fourier        torch_filtviz, ``--steps`` steps each (equal forward+backward image passes)
lucent                Lucent ``render_vis`` defaults on torchvision's VGG16 (in-place ReLUs) at the
                      picture's size (``fixed_image_size``), ``--steps``
lucent_224            the same with render_vis's upsampling to 224 px (all its defaults), ``--steps``
lucent_best           as ``lucent`` with the hook on the pre-activation (out-of-place ReLUs), ``--steps``
<name>_default        each method at its own default number of steps, where that differs (by default
                      pixel, fourier and lucent; the other two on request)
====================  ===========================================================================

Then a speed job (``--speed-*``) times the fourier method (bf16 where the CPU has it, and fp32) against
Lucent at its defaults as users run it (whole network, 224 px), round robin, and applies the range rule.

    python -m filtviz_bench quality --out benchmarks/quality --readme-figure docs/two_methods.jpg
    python -m filtviz_bench quality --layers block5_conv3 --filters 0-3 --runs pixel,fourier --no-speed
    python -m filtviz_bench quality --quick --out /tmp/q        # seconds: the whole path on tiny sizes
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from filtviz_bench import evaluator, figures, lucent_runner, machine, quality_report, renderers
from filtviz_bench.jobs import Job, choose_filters, compact, option_pairs
from filtviz_bench.timing import Method, speed_verdict, stats, time_methods
from filtviz_core.atomic import write_bytes, write_json
from filtviz_core.errors import FiltvizError

SCHEMA = 1
DEFAULT_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
README_LAYERS = ("block3_conv3", "block4_conv3", "block5_conv3")
README_COLUMNS = ("pixel", "fourier", "lucent")
RUN_NAMES = tuple(renderers.METHODS) + tuple(f"{m}_default" for m in renderers.METHODS)
# Lucent at its default 512 steps costs most of a full run: its two variants only on request.
DEFAULT_RUNS = tuple(r for r in RUN_NAMES if r not in ("lucent_best_default", "lucent_224_default"))
# --quick: the whole path (every run, the speed job, the figures) in seconds; the default runs are capped to
# the equal-passes steps, so they fold into those runs.
QUICK = {
    "layers": "block1_conv2,block2_conv1",
    "filters": "2",
    "size": 32,
    "steps": 2,
    "noise": 3,
    "k": 2,
    "speed_filters": 1,
    "speed_steps": 1,
    "speed_repeats": 2,
    "cap_default_steps": 2,
}


@dataclass
class Config:
    layers: list[str]
    filters: dict[str, list[int]]
    filters_spec: str
    size: int
    equal_steps: int
    runs: list[str]
    noise: int
    heldout: evaluator.HeldOut
    seed: int
    weights: str
    speed: bool
    speed_filters: int
    speed_steps: int
    speed_repeats: int
    cap_default_steps: int | None
    fourier_options: dict[str, Any] = field(default_factory=dict)
    fourier_lr: float | None = None
    readme_rows: int = 4

    def describe(self) -> dict[str, Any]:
        return {
            "layers": self.layers,
            "filters": self.filters_spec,
            "filter_indices": {k: compact(v) for k, v in self.filters.items()},
            "size": self.size,
            "equal_steps": self.equal_steps,
            "runs": self.runs,
            "noise_pictures": self.noise,
            "heldout": asdict(self.heldout),
            "seed": self.seed,
            "weights": self.weights,
            "speed": {"filters_per_layer": self.speed_filters, "steps": self.speed_steps, "repeats": self.speed_repeats}
            if self.speed
            else None,
            "cap_default_steps": self.cap_default_steps,
            "fourier_options": self.fourier_options,
            "fourier_lr": self.fourier_lr,
            "evaluator": {"eval_seed": evaluator.EVAL_SEED, "noise_seed": evaluator.NOISE_SEED},
        }


@dataclass(frozen=True)
class RunSpec:
    name: str
    method: str
    steps: int
    budget: str  # "equal passes" or "default"


def plan(cfg: Config) -> tuple[list[RunSpec], dict[str, str]]:
    """The runs to make (distinct method and steps) and the skipped ones with the reason."""
    specs, skipped = [], {}
    for name in cfg.runs:
        method = name.removesuffix("_default")
        why = renderers.unavailable(method)
        if why is not None:
            skipped[name] = why
            continue
        if name.endswith("_default"):
            steps = int(renderers.default_steps(method))  # type: ignore[arg-type]
            if cfg.cap_default_steps is not None:
                steps = min(steps, cfg.cap_default_steps)
            if steps == cfg.equal_steps and method in cfg.runs:
                continue  # the same computation as the equal-passes run
            specs.append(RunSpec(name, method, steps, "default"))
        else:
            specs.append(RunSpec(name, method, cfg.equal_steps, "equal passes"))
    return specs, skipped


def make_renderer(method: str, cfg: Config, model: torch.nn.Module, device: torch.device) -> renderers.Renderer:
    if method in renderers.TORCH_METHODS:
        options = cfg.fourier_options if method == "fourier" else None
        lr = cfg.fourier_lr if method == "fourier" else None
        return renderers.torch_renderer(
            model, method, size=cfg.size, seed=cfg.seed, device=device, options=options, lr=lr
        )
    return renderers.lucent_renderer(cfg.weights, method, size=cfg.size, seed=cfg.seed, device=device)


def lucent_hook_facts(cfg: Config, runs: dict[str, dict[str, Any]], device: torch.device) -> dict[str, Any] | None:
    """What Lucent's hook sees, and its effect: per filter, whether its pre-activation is <= 0 everywhere on
    Lucent's seeded start picture — the filters whose post-ReLU map, all Lucent's hook sees under
    torchvision's in-place ReLU, has a zero gradient — and how many pictures of each Lucent run ended flat."""
    if not any(run["method"] in renderers.LUCENT_METHODS for run in runs.values()):
        return None
    optvis = lucent_runner.import_lucent()
    model = lucent_runner.keras_vgg16(cfg.weights, inplace_relu=False, device=device)
    starts_below = {}
    for layer, chosen in cfg.filters.items():
        with lucent_runner.seeded(cfg.seed), torch.no_grad():
            _, image_f = optvis.param.image(cfg.size, batch=len(chosen))
            conv = lucent_runner.truncated(model, layer).features[:-1]  # stop at the conv: pre-activation
            maps = conv(model.preprocess(image_f().to(device)))
        for i, f in enumerate(chosen):
            starts_below[(layer, f)] = bool(maps[i, f].max() <= 0)
    flat = {
        name: {(s["layer"], s["filter"]) for s in run["scores"] if s["flat"]}
        for name, run in runs.items()
        if run["method"] in renderers.LUCENT_METHODS
    }
    below = {k for k, v in starts_below.items() if v}
    n = len(starts_below)
    parts = [
        (
            f"Lucent's hook on a conv (e.g. `{lucent_runner.module_name(cfg.layers[-1])}`) keeps the module's output "
            "tensor, which torchvision's in-place ReLU then overwrites: Lucent optimizes the post-ReLU map, and a "
            "filter whose pre-activation is <= 0 everywhere has a zero gradient and never moves. On Lucent's seeded "
            f"start picture ({cfg.size} px) {len(below)} of {n} filters are <= 0 everywhere."
        )
    ]
    for name, keys in flat.items():
        z = runs[name]["summary"]["median_z"]
        parts.append(
            f"{name} ({runs[name]['steps']} steps): {len(keys)} flat pictures ({len(keys & below)} of them "
            f"among those), median robust z {quality_report._num(z)}."
        )
    return {
        "starts_below_zero": sorted(f"{k[0]}:{k[1]}" for k in below),
        "filters": n,
        "flat": {name: sorted(f"{k[0]}:{k[1]}" for k in keys) for name, keys in flat.items()},
        "text": " ".join(parts),
    }


def speed_job(cfg: Config, model: torch.nn.Module, device: torch.device, log: Callable[[str], None]) -> dict[str, Any]:
    """The fourier method against Lucent at its defaults as its users run it (the whole torchvision VGG16,
    pictures upsampled to 224 px), on the same filters and steps, round robin."""
    if renderers.unavailable("fourier") or renderers.unavailable("lucent"):
        return {"why": "n/a: " + (renderers.unavailable("fourier") or renderers.unavailable("lucent") or "")}
    job = Job(
        name="quality-speed",
        filters={k: v[: cfg.speed_filters] for k, v in cfg.filters.items()},
        size=cfg.size,
        steps=cfg.speed_steps,
        weights=cfg.weights,
        seed=cfg.seed,
    )
    methods: list[Method] = []
    precisions = (["bf16"] if device.type != "cpu" or machine.cpu_bf16_ok() else []) + ["fp32"]
    labels = {}
    for precision in precisions:
        render = renderers.torch_renderer(
            model,
            "fourier",
            size=cfg.size,
            seed=cfg.seed,
            device=device,
            precision=precision,
            options=cfg.fourier_options or None,
            lr=cfg.fourier_lr,
        )

        def run(filters: dict[str, list[int]], steps: int | None = None, _render=render) -> None:
            for layer, chosen in filters.items():
                _render(layer, chosen, job.steps if steps is None else steps)

        name = f"fourier_{precision}"
        labels[name] = f"torch_filtviz fourier, {precision}, batched per layer"
        methods.append(Method(name, run, False, "torch", labels[name]))
    full = lucent_runner.keras_vgg16(cfg.weights, inplace_relu=True, device=device)

    def run_lucent(filters: dict[str, list[int]], steps: int | None = None) -> None:
        for layer, chosen in filters.items():
            lucent_runner.render(
                full,
                layer,
                chosen,
                steps=job.steps if steps is None else steps,
                size=cfg.size,
                seed=cfg.seed,
                upsample=True,
                device=device,
            )

    labels["lucent"] = "Lucent render_vis defaults (whole network, 224 px), batched per layer"
    methods.append(Method("lucent", run_lucent, False, "torch+lucent", labels["lucent"]))
    log(f"speed: {job.n_filters} filters x {job.steps} steps, {cfg.speed_repeats} round-robin repeats")
    timed = time_methods(methods, job, device, repeats=cfg.speed_repeats, warmup_steps=1, log=log)
    out: dict[str, Any] = {
        "job": f"{', '.join(job.filters)}; {cfg.speed_filters} filters per layer, {cfg.size} px, {job.steps} steps",
        "repeats": cfg.speed_repeats,
        "image_steps": job.image_steps,
        "methods": {},
        "ratios": {},
    }
    for name, res in timed.items():
        st = stats(res["seconds"])
        out["methods"][name] = {
            "label": labels[name],
            "seconds_timed": res["seconds"],
            "seconds": st,
            "image_steps_per_s": job.image_steps / st["median"],
        }
    for precision in precisions:
        name = f"fourier_{precision}"
        out["ratios"][name] = speed_verdict(
            timed[name]["seconds"], timed["lucent"]["seconds"], quality_report.SPEED_OVER_LUCENT
        )
    out["fast"] = f"fourier_{precisions[0]}"
    out["verdict"] = out["ratios"][out["fast"]]
    return out


def scored_run(
    model: torch.nn.Module,
    render: renderers.Renderer,
    filters: dict[str, list[int]],
    steps: int,
    baselines: dict[str, evaluator.NoiseBaseline],
    heldout: evaluator.HeldOut,
    device: torch.device,
    log: Callable[[str, float, list[float]], None] | None = None,
) -> dict[str, Any]:
    """One run (a renderer at ``steps``) over every layer's filters, each picture scored against its
    layer's noise baseline: scores, seconds (in all and per layer), pictures by layer, and their summaries.
    ``log(layer, seconds, z-scores)`` after each layer."""
    scores: list[dict[str, Any]] = []
    seconds, per_layer_seconds, pictures = 0.0, {}, {}
    for layer, chosen in filters.items():
        pics = render(layer, chosen, steps)
        seconds += pics.seconds
        per_layer_seconds[layer] = pics.seconds
        pictures[layer] = pics.images
        layer_scores = [
            {**s.as_dict(), "dead": bool(dead)}
            for s, dead in zip(
                evaluator.score(model, layer, chosen, pics.images, baselines[layer], heldout=heldout, device=device),
                pics.dead,
            )
        ]
        scores += layer_scores
        if log is not None:
            log(layer, pics.seconds, [s["z"] for s in layer_scores])
    return {
        "scores": scores,
        "seconds": seconds,
        "seconds_per_layer": per_layer_seconds,
        "pictures": pictures,
        "summary": quality_report.summarize(scores),
        "per_layer": {layer: quality_report.summarize([s for s in scores if s["layer"] == layer]) for layer in filters},
    }


def run_quality(
    cfg: Config,
    device: torch.device,
    out: Path | None,
    readme_figure: Path | None = None,
    save_pictures: bool = False,
    log: Callable[[str], None] = print,
    command: str = "",
) -> dict[str, Any]:
    """Everything: noise baselines, pictures, scores, the speed job, the report (written under ``out``)."""
    from torch_filtviz import load_vgg16

    started = time.perf_counter()
    load_before = machine.load_average()
    model = load_vgg16(cfg.weights, device=device)
    specs, skipped = plan(cfg)
    baselines = {}
    for layer in cfg.layers:
        t = time.perf_counter()
        baselines[layer] = evaluator.noise_baseline(
            model, layer, cfg.size, count=cfg.noise, heldout=cfg.heldout, device=device
        )
        log(f"noise baseline {layer}: {time.perf_counter() - t:.1f} s")
    runs: dict[str, dict[str, Any]] = {}
    pictures: dict[str, dict[str, np.ndarray]] = {}
    made: dict[str, renderers.Renderer] = {}
    for spec in specs:
        if spec.method not in made:
            made[spec.method] = make_renderer(spec.method, cfg, model, device)
        run = scored_run(
            model,
            made[spec.method],
            cfg.filters,
            spec.steps,
            baselines,
            cfg.heldout,
            device,
            log=lambda layer, seconds, zs, name=spec.name: log(
                f"{name} {layer}: {seconds:.1f} s, median z {quality_report._num(quality_report._median(zs))}"
            ),
        )
        pictures[spec.name] = run.pop("pictures")
        n = sum(len(v) for v in cfg.filters.values())
        runs[spec.name] = {
            "method": spec.method,
            "label": renderers.LABELS[spec.method],
            "steps": spec.steps,
            "budget": spec.budget,
            "seconds": run["seconds"],
            "seconds_per_layer": run["seconds_per_layer"],
            "seconds_per_image_step": run["seconds"] / max(1, n * spec.steps),
            "scores": run["scores"],
            "summary": run["summary"],
            "per_layer": run["per_layer"],
        }
    speed = speed_job(cfg, model, device, log) if cfg.speed else None
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "config": cfg.describe(),
        "device": {"type": device.type, "name": machine.device_name(device), "platform": platform.platform()},
        "versions": machine.versions(),
        "threads": {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
        "env": machine.env_vars(),
        "runs": runs,
        "speed": speed,
        "skipped": skipped,
    }
    report["targets"] = quality_report.quality_targets(runs, speed)
    report["lucent_hook"] = lucent_hook_facts(cfg, runs, device)
    report["wall_seconds"] = time.perf_counter() - started
    report["load_average"] = {"before": load_before, "after": machine.load_average()}
    if out is not None:
        write_outputs(report, pictures, cfg, out, readme_figure, save_pictures)
    return report


def figure_columns(
    report: dict[str, Any],
    pictures: dict[str, dict[str, np.ndarray]],
    cfg: Config,
    layers: Sequence[str],
    names: Sequence[str],
    rows: int | None = None,
):
    groups = []
    for layer in layers:
        chosen = cfg.filters[layer][:rows] if rows else cfg.filters[layer]
        heads = [f"{n}\n{report['runs'][n]['steps']} steps" for n in names]
        cols = [pictures[n][layer][: len(chosen)] for n in names]
        groups.append((layer, [f"{layer.split('_')[0]} f{f}" for f in chosen], heads, cols))
    return groups


def write_outputs(
    report: dict[str, Any],
    pictures: dict[str, dict[str, np.ndarray]],
    cfg: Config,
    out: Path,
    readme_figure: Path | None,
    save_pictures: bool,
) -> None:
    names = list(report["runs"])
    if names:
        # The full figure: one panel per layer, stacked; rows filters, columns runs.
        panels = [figures.grid([g]) for g in figure_columns(report, pictures, cfg, cfg.layers, names)]
        full = figures.Image.new(
            "RGB", (max(p.width for p in panels), sum(p.height + figures.GAP for p in panels)), figures.BACKGROUND
        )
        y = 0
        for p in panels:
            full.paste(p, (0, y))
            y += p.height + figures.GAP
        figures.save(full, out / "figure.jpg")
        report["figure"] = str(out / "figure.jpg")
    if readme_figure is not None:
        cols = [f"{m}_default" if f"{m}_default" in report["runs"] else m for m in README_COLUMNS]
        cols = [c for c in cols if c in report["runs"]]
        layers = [layer for layer in README_LAYERS if layer in cfg.filters] or cfg.layers[-1:]
        if cols:
            figures.save(
                figures.grid(figure_columns(report, pictures, cfg, layers, cols, cfg.readme_rows)), readme_figure
            )
            report["readme_figure"] = {
                "path": str(readme_figure),
                "runs": cols,
                "layers": layers,
                "rows_per_layer": cfg.readme_rows,
            }
    if save_pictures:
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, **{f"{n}/{layer}": a for n, per in pictures.items() for layer, a in per.items()})
        write_bytes(out / "pictures.npz", buf.getvalue())
    write_json(out / "quality.json", report)
    write_bytes(out / "quality.md", (quality_report.markdown(report) + "\n").encode())


def parse_args(argv: Sequence[str] | None, prog: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + __doc__.rsplit("\n\n", 1)[-1],
    )
    p.add_argument("--layers", help=f"comma list of VGG16 conv layers (default: {','.join(DEFAULT_LAYERS)})")
    p.add_argument("--filters", help="per layer: a count (the first N) or a list such as 0-7,20 (default: 8)")
    p.add_argument("--size", type=int, help="picture size in px (default: 128)")
    p.add_argument(
        "--steps",
        type=int,
        help=f"steps of the equal-passes runs (default: the fourier method's default, {renderers.fourier_steps()})",
    )
    p.add_argument(
        "--runs",
        help=f"comma list from {', '.join(RUN_NAMES)} (default: all but lucent_best_default, lucent_224_default)",
    )
    p.add_argument("--noise", type=int, help="1/f-noise pictures per layer for the z-score baseline (default: 32)")
    p.add_argument("--k", type=int, help="held-out transformations per picture (default: 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default="keras", help="keras (default) or a weights file")
    p.add_argument("--device", default="cpu", help="cpu (default: the targets are CPU targets), cuda, auto")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--no-speed", action="store_true", help="skip the timed speed job")
    p.add_argument("--speed-filters", type=int, help="filters per layer in the speed job (default: 4)")
    p.add_argument("--speed-steps", type=int, help="steps in the speed job (default: 8)")
    p.add_argument("--speed-repeats", type=int, help="round-robin repeats of the speed job (default: 3)")
    p.add_argument("--cap-default-steps", type=int, help="cap the <method>_default runs' steps (for quick checks)")
    p.add_argument(
        "--fourier-option",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a fourier method option, e.g. rotate=15 or scale=[0.8,1.2] (repeatable; for tuning)",
    )
    p.add_argument("--fourier-lr", type=float, help="the fourier method's lr (default: its own)")
    p.add_argument("--readme-rows", type=int, default=4, help="filters per layer in --readme-figure (default: 4)")
    p.add_argument("--readme-figure", help="also write the README figure (blocks 3-5; pixel, fourier, Lucent) here")
    p.add_argument("--save-pictures", action="store_true", help="also write every picture to OUT/pictures.npz")
    p.add_argument("--quick", action="store_true", help="tiny sizes for tests: the whole path in seconds")
    p.add_argument("--out", help="folder for quality.json, quality.md, figure.jpg (default: benchmarks/quality)")
    return p.parse_args(argv)


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if value < minimum:
        raise FiltvizError(f"--{name} must be >= {minimum}, got {value}")
    return value


def config_from(args: argparse.Namespace) -> Config:
    quick = QUICK if args.quick else {}

    def pick(name: str, default: Any) -> Any:
        given = getattr(args, name)
        return given if given is not None else quick.get(name, default)

    layers = [s.strip() for s in str(pick("layers", ",".join(DEFAULT_LAYERS))).split(",") if s.strip()]
    size = _positive("size", int(pick("size", 128)), 8)
    spec = str(pick("filters", "8"))
    filters = choose_filters(layers, spec, size)
    equal = _positive("steps", int(pick("steps", renderers.fourier_steps())))
    runs = [s.strip() for s in (args.runs or ",".join(DEFAULT_RUNS)).split(",") if s.strip()]
    bad = [r for r in runs if r not in RUN_NAMES]
    if bad:
        raise FiltvizError(f"unknown run {bad[0]!r}; valid: {', '.join(RUN_NAMES)}")
    options = option_pairs(args.fourier_option, "--fourier-option")
    cap = pick("cap_default_steps", None)
    return Config(
        layers=layers,
        filters=filters,
        filters_spec=spec,
        size=size,
        equal_steps=equal,
        runs=runs,
        noise=_positive("noise", int(pick("noise", 32)), 2),
        heldout=evaluator.HeldOut(k=_positive("k", int(pick("k", 16)))),
        seed=args.seed,
        weights=args.weights,
        speed=not args.no_speed,
        speed_filters=_positive("speed-filters", int(pick("speed_filters", 4))),
        speed_steps=_positive("speed-steps", int(pick("speed_steps", 8))),
        speed_repeats=_positive("speed-repeats", int(pick("speed_repeats", 3))),
        cap_default_steps=None if cap is None else _positive("cap-default-steps", int(cap)),
        fourier_options=options,
        fourier_lr=args.fourier_lr,
        readme_rows=_positive("readme-rows", args.readme_rows),
    )


def main(argv: Sequence[str] | None = None, prog: str = "python -m filtviz_bench quality") -> dict[str, Any]:
    args = parse_args(argv, prog)
    cfg = config_from(args)
    from torch_filtviz import resolve_device

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(_positive("threads", args.threads))
    out = Path(args.out or "benchmarks/quality")
    print(
        f"quality: {sum(len(v) for v in cfg.filters.values())} filters of {', '.join(cfg.layers)} at {cfg.size} px, "
        f"equal passes {cfg.equal_steps} steps, runs {', '.join(cfg.runs)}; {device} "
        f"({machine.device_name(device)}, {torch.get_num_threads()} threads)",
        flush=True,
    )
    command = "python -m filtviz_bench quality " + " ".join(sys.argv[1:] if argv is None else argv)
    report = run_quality(
        cfg,
        device,
        out,
        Path(args.readme_figure) if args.readme_figure else None,
        args.save_pictures,
        log=lambda line: print(line, flush=True),
        command=command.strip(),
    )
    print(quality_report.markdown(report))
    print(f"\nwrote {out / 'quality.json'}, {out / 'quality.md'}, {out / 'figure.jpg'}")
    return report


def cli(argv: Sequence[str] | None = None, prog: str = "python -m filtviz_bench quality") -> int:
    """:func:`main` with the codebase's exit statuses: 2 bad input, 1 runtime failure, 130 Ctrl-C."""
    from filtviz_core.cli_common import run_guarded

    return run_guarded(prog, lambda: main(argv, prog))


if __name__ == "__main__":
    sys.exit(cli())
