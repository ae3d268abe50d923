"""The speed benchmark (``make bench``): filter visualization timed against the alternatives, side by
side in one process run.

Methods (all start from the identical ``filtviz_core.algorithm.initial_images`` and maximize the
same objective on the same weights):

=================  ===========================================================================
tf_eager           tf_reference, one filter at a time, eager ``GradientTape`` (the notebook's way)
tf_compiled        tf_reference, one filter at a time, ``tf.function`` step (traced once, warm)
torch_one          torch_filtviz.visualize_filters with ``batch_size=1`` (same loop, batch 1)
torch_fp32         torch_filtviz batched, fp32, default memory format (channels_last on CPU, NCHW elsewhere)
torch_fp32_nchw    ... fp32, forced NCHW (contiguous) memory format
torch_fp32_cl      ... fp32, forced channels_last memory format
torch_bf16         ... bf16 autocast (loss, RMS and update stay fp32), default memory format
torch_bf16_cl      ... bf16 autocast + channels_last (the CUDA fast path)
lucent             Lucent's ``render_vis`` on the same model: pixel parameterization in the same
                   0-255 units, no transforms, ``channel`` objective per batch element, Adam
=================  ===========================================================================

Figures: seconds per method (median, min, max of ``--repeats`` after one warm-up), image-steps
per second (filters x steps / seconds), the ratio of each method's rate to every other's, and the
achieved TFLOP/s = (forward + input-gradient conv FLOPs of the useful work) / seconds. One-at-a-time
methods may time a subset of the filters (``--baseline-filters``) and are scaled to the whole job.
A speed target is met only when the min-max ranges of the repeats do not overlap
(:func:`filtviz_bench.timing.speed_verdict`).

    python -m filtviz_bench.speed --layer block3_conv1 --filters 16 --size 64 --steps 20 --out benchmarks/cpu
    python -m filtviz_bench.speed --job block5      # GPU: all 512 filters of block5_conv3, 128 px, 100 steps
    python -m filtviz_bench.speed --job atlas       # GPU: all 4,224 conv filters, 128 px, 100 steps
    python -m filtviz_bench.speed --report benchmarks/cpu/bench.json   # the table and verdicts of a past run
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch

from filtviz_bench import machine
from filtviz_bench.adapters import lucent_pixel_method, tf_method, torch_method
from filtviz_bench.flops import gpu_peak, job_flops, math_kind
from filtviz_bench.jobs import JOBS, Job, make_job
from filtviz_bench.lucent_runner import lucent_available
from filtviz_bench.timing import Method, speed_verdict, stats, time_methods
from filtviz_core.atomic import write_json
from filtviz_core.errors import FiltvizError

SCHEMA = 1
METHODS = (
    "tf_eager",
    "tf_compiled",
    "torch_one",
    "torch_fp32",
    "torch_fp32_nchw",
    "torch_fp32_cl",
    "torch_bf16",
    "torch_bf16_cl",
    "lucent",
)
# On CPU the defaults already are channels_last, so the forced-_cl rows would repeat them.
CPU_METHODS = ("tf_eager", "tf_compiled", "torch_one", "torch_fp32", "torch_fp32_nchw", "torch_bf16", "lucent")
CUDA_METHODS = ("tf_compiled", "torch_one", "torch_fp32", "torch_fp32_cl", "torch_bf16", "torch_bf16_cl", "lucent")
LABELS = {
    "tf_eager": "TF eager, one filter at a time",
    "tf_compiled": "TF tf.function, one filter at a time",
    "torch_one": "torch, one filter at a time",
    "torch_fp32": "torch_filtviz batched fp32 (defaults)",
    "torch_fp32_nchw": "torch_filtviz batched fp32, NCHW forced",
    "torch_fp32_cl": "torch_filtviz batched fp32 channels_last",
    "torch_bf16": "torch_filtviz batched bf16 autocast (default format)",
    "torch_bf16_cl": "torch_filtviz batched bf16 + channels_last",
    "lucent": "Lucent render_vis batched (Adam)",
}
# The speed targets of the CPU run: (method, baseline, least ratio of rates).
CPU_TARGETS: tuple[tuple[str, str, float], ...] = (
    ("torch_fp32", "tf_compiled", 1.0),
    ("torch_fp32", "tf_eager", 2.5),
    ("torch_bf16", "tf_compiled", 1.5),
    ("torch_fp32", "lucent", 2.0),
)


def build_methods(
    names: Sequence[str], job: Job, device: torch.device, *, batch_size: int | None = None
) -> tuple[list[Method], dict[str, str], dict[str, Any]]:
    """The methods that can run here, the skipped ones with the reason, and the models' facts."""
    from torch_filtviz import load_vgg16

    model = load_vgg16(job.weights, device=device)
    methods: list[Method] = []
    skipped: dict[str, str] = {}
    facts: dict[str, Any] = {"flops": job_flops(model, job)}
    tf_model = None
    for name in names:
        if name not in METHODS:
            raise FiltvizError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
        if name.startswith("tf_"):
            if tf_model is None:
                try:
                    from tf_reference import load_vgg16 as tf_load
                except ImportError as exc:
                    skipped[name] = f"TensorFlow not importable: {exc}"
                    continue
                tf_model = tf_load(job.weights)
            from tf_reference.ascent import device_name as tf_device

            if device.type == "cuda" and not tf_device().startswith("gpu"):
                skipped[name] = "TensorFlow sees no GPU here: a CPU baseline would not be comparable"
                continue
            m = tf_method(name, job, tf_model)
            m.notes += f"; TF device {tf_device()}"
            methods.append(m)
        elif name == "lucent":
            why = lucent_available()
            if why is not None:
                skipped[name] = why
                continue
            # Its own copy of the model (same weights): Lucent's hooks never touch the one torch_* time.
            methods.append(lucent_pixel_method(job, load_vgg16(job.weights, device=device), device))
        else:
            if "bf16" in name and device.type == "cpu" and not machine.cpu_bf16_ok():
                skipped[name] = "this CPU has no native bf16 (avx512_bf16/amx): emulated bf16 is slow and meaningless"
                continue
            methods.append(torch_method(name, job, model, device, batch_size))
    return methods, skipped, facts


def _final(losses: dict[str, np.ndarray], timed: dict[str, list[int]]) -> dict[tuple[str, int], float]:
    """(layer, filter) -> final loss, for comparing methods on the filters they share."""
    return {(layer, f): float(losses[layer][i, -1]) for layer, fs in timed.items() for i, f in enumerate(fs)}


def summarize(
    results: dict[str, dict[str, Any]], job: Job, device: torch.device, flops: float, peak_override: float | None = None
) -> dict[str, Any]:
    """The ``methods`` and ``ratios`` entries of bench.json."""
    dev_name = machine.device_name(device)
    methods: dict[str, Any] = {}
    finals = {}
    for name, res in results.items():
        m: Method = res["method"]
        secs = [s * res["scale"] for s in res["seconds"]]
        st = stats(secs)
        kind = math_kind(name, device)
        peak = (
            peak_override
            if peak_override is not None
            else (gpu_peak(dev_name, kind) if device.type == "cuda" else None)
        )
        tflops = flops / st["median"] / 1e12
        losses = res["result"]
        timed = {layer: fs[: len(losses[layer])] for layer, fs in job.filters.items()}
        finals[name] = _final(losses, timed)
        methods[name] = {
            "label": LABELS[name],
            "framework": m.framework,
            "one_at_a_time": m.one_at_a_time,
            "notes": m.notes,
            "filters_timed": res["filters_timed"],
            "scaled_to_job": res["scale"] != 1.0,
            "seconds_timed": [float(s) for s in res["seconds"]],
            "seconds": st,
            "image_steps_per_s": {
                "median": job.image_steps / st["median"],
                "min": job.image_steps / st["max"],
                "max": job.image_steps / st["min"],
            },
            "tflops": tflops,
            "math": kind,
            "peak_tflops": peak,
            "fraction_of_peak": (tflops / peak) if peak else None,
            "final_loss_mean": float(np.mean(list(finals[name].values()))),
        }
    ref = "torch_fp32" if "torch_fp32" in finals else None
    for name in methods:
        diff = None
        if ref is not None and name != ref:
            shared = [k for k in finals[name] if k in finals[ref]]
            rel = [abs(finals[name][k] - finals[ref][k]) / max(abs(finals[ref][k]), 1e-12) for k in shared]
            diff = {"median": float(np.median(rel)), "max": float(np.max(rel)), "filters": len(rel)} if rel else None
        methods[name]["final_loss_rel_diff_vs_torch_fp32"] = diff
    # ratios[a][b]: how many times faster a runs than b (rate of a / rate of b).
    ratios = {
        a: {b: methods[b]["seconds"]["median"] / methods[a]["seconds"]["median"] for b in methods if b != a}
        for a in methods
    }
    return {"methods": methods, "ratios": ratios}


def job_seconds(method: dict[str, Any]) -> list[float]:
    """A method's timed repeats in seconds for the whole job (one-at-a-time subsets scaled up)."""
    s = method["seconds"]
    timed = method["seconds_timed"]
    scale = s["median"] / float(np.median(timed)) if method.get("scaled_to_job") else 1.0
    return [t * scale for t in timed]


def check_targets(bench: dict[str, Any]) -> list[dict[str, Any]]:
    """The CPU targets, as measured, under the range rule (GPU targets are absolute times: see the job's
    seconds). Works on a bench.json dictionary, so a past run's verdicts can be recomputed."""
    if bench["device"]["type"] != "cpu":
        return []
    out = []
    ms = bench["methods"]
    for method, base, need in CPU_TARGETS:
        entry: dict[str, Any] = {"method": method, "baseline": base, "needed": need}
        if method in ms and base in ms:
            entry.update(speed_verdict(job_seconds(ms[method]), job_seconds(ms[base]), need))
        else:
            entry.update({"ratio": None, "ratio_range": None, "met": None, "verdict": "n/a"})
        out.append(entry)
    return out


def target_line(t: dict[str, Any]) -> str:
    """``- target A >= kx B: 1.05x [0.98-1.28] not met (ranges overlap)``."""
    head = f"- target {t['method']} >= {t['needed']}x {t['baseline']}: "
    if t.get("ratio") is None:
        return head + "n/a"
    lo, hi = t["ratio_range"]
    return head + f"{t['ratio']:.2f}x [{lo:.2f}-{hi:.2f}] {t['verdict']}"


def markdown(bench: dict[str, Any]) -> str:
    """The table printed to stdout (the docs render it from bench.json)."""
    ms = bench["methods"]
    baselines = [b for b in ("tf_eager", "tf_compiled", "torch_one", "lucent") if b in ms]
    head = ["method", "seconds (median [min-max])", "image-steps/s", "TFLOP/s"] + [f"x {b}" for b in baselines]
    head.append("final loss vs fp32")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in ms.items():
        s = m["seconds"]
        cells = [
            f"{m['label']}" + (" *" if m["scaled_to_job"] else ""),
            f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]",
            f"{m['image_steps_per_s']['median']:.1f}",
            f"{m['tflops']:.3f}",
        ]
        cells += ["-" if b == name else f"{bench['ratios'][name][b]:.2f}" for b in baselines]
        d = m["final_loss_rel_diff_vs_torch_fp32"]
        cells.append(
            "ref" if name == "torch_fp32" else ("-" if d is None else f"{d['median']:.1e} (max {d['max']:.1e})")
        )
        rows.append("| " + " | ".join(cells) + " |")
    job = bench["job"]
    lines = [
        (
            f"Job {job['name']}: {', '.join(job['layers'])}, {job['n_filters']} filters, {job['size']} px, "
            f"{job['steps']} steps, weights {job['weights']}; device {bench['device']['name']} "
            f"({bench['threads']['torch_threads']} threads, OMP_WAIT_POLICY={bench['env']['OMP_WAIT_POLICY']}); "
            f"load average {bench['load_average']['before']} -> {bench['load_average']['after']}; "
            f"median of {bench['repeats']} after a warm-up."
        ),
        "",
    ]
    lines += rows
    if any(m["scaled_to_job"] for m in ms.values()):
        lines.append("\n\\* timed on a subset of the filters (`--baseline-filters`), scaled to the whole job.")
    if bench["targets"]:
        lines.append(
            "\nTargets (ratio of medians [slowest-fastest repeat pairing]; met only when the whole range "
            "reaches the target):"
        )
    lines += [target_line(t) for t in bench["targets"]]
    for name, why in bench["skipped"].items():
        lines.append(f"- skipped {name}: {why}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m filtviz_bench.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--job", default="cpu", choices=list(JOBS), help="preset; the options below override it")
    p.add_argument("--layer", action="append", dest="layers", help="conv layer (repeatable)")
    p.add_argument("--filters", help="count per layer (16), 'all', or a list such as 0-7,20")
    p.add_argument("--size", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--weights", default="random", help="random (timing), keras, or a weights file")
    p.add_argument("--device", default="auto")
    p.add_argument("--methods", help=f"comma list from {', '.join(METHODS)} (default: by device)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--baseline-filters",
        type=int,
        default=None,
        help="one-at-a-time methods time only this many filters per layer, scaled to the job "
        "(default: all on CPU, 4 on CUDA)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="filters per chunk (default: torch_filtviz's)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads for torch and TF (default: torch's)")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak to compare against (default: looked up)")
    p.add_argument("--out", help="directory for bench.json (default: benchmarks/<device>/<job>)")
    p.add_argument(
        "--report",
        metavar="BENCH_JSON",
        help="print the table of a past run, its targets recomputed under the range rule; runs nothing",
    )
    return p.parse_args(argv)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A past bench.json with its targets recomputed under the range rule, printed as the run prints it."""
    try:
        bench = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise FiltvizError(f"cannot read {path}: {exc}") from None
    bench["targets"] = check_targets(bench)
    print(markdown(bench))
    return bench


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    from torch_filtviz import resolve_device

    device = resolve_device(args.device)
    names = args.methods.split(",") if args.methods else list(CUDA_METHODS if device.type == "cuda" else CPU_METHODS)
    names = [n.strip() for n in names if n.strip()]
    if args.repeats < 1:
        raise FiltvizError("--repeats must be >= 1")
    job = make_job(args.job, args.layers, args.filters, args.size, args.steps, weights=args.weights)
    per_layer = args.baseline_filters if args.baseline_filters is not None else (4 if device.type == "cuda" else None)
    threads = machine.set_threads(args.threads or torch.get_num_threads(), any(n.startswith("tf_") for n in names))
    load_before = machine.load_average()
    print(
        f"benchmark {job.name}: {job.n_filters} filters x {job.steps} steps at {job.size} px on {device} "
        f"({machine.device_name(device)}), methods {', '.join(names)}",
        flush=True,
    )
    methods, skipped, facts = build_methods(names, job, device, batch_size=args.batch_size)
    results = time_methods(methods, job, device, repeats=args.repeats, baseline_filters=per_layer)
    summary = summarize(results, job, device, facts["flops"], args.peak_tflops)
    bench: dict[str, Any] = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m filtviz_bench.speed " + " ".join(sys.argv[1:] if argv is None else argv),
        "job": job.describe(),
        "device": {"type": device.type, "name": machine.device_name(device), "platform": platform.platform()},
        "versions": machine.versions(),
        "threads": threads,
        "env": machine.env_vars(),
        "load_average": {"before": load_before, "after": machine.load_average()},
        "repeats": args.repeats,
        "baseline_filters": per_layer,
        "flops_per_job": facts["flops"],
        "flops_definition": "conv FLOPs (2 per multiply-add) of forward + input gradient per step, plus the "
        "last forward, for the job's filters up to each layer's conv",
        **summary,
        "skipped": skipped,
    }
    bench["targets"] = check_targets(bench)
    out = (
        Path(args.out)
        if args.out
        else Path("benchmarks") / slug(f"{device.type}-{machine.device_name(device)}") / job.name
    )
    write_json(out / "bench.json", bench)
    print(markdown(bench))
    print(f"\nwrote {out / 'bench.json'}")
    return bench


def cli(argv: Sequence[str] | None = None, prog: str = "python -m filtviz_bench.speed") -> int:
    """Run :func:`main` with the codebase's exit statuses: 2 bad input, 1 runtime failure, 130 Ctrl-C."""
    from filtviz_core.cli_common import run_guarded

    return run_guarded(prog, lambda: main(argv))


if __name__ == "__main__":
    sys.exit(cli())
