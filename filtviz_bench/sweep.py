"""Variants of the fourier method (steps, lr, options) scored side by side by the quality evaluator: the
measurement behind the fourier method's defaults (SPEC.md's fourier section says what was chosen and why).

One process, one set of noise baselines, every variant on the same filters:

    python -m filtviz_bench.sweep --layers block4_conv3,block5_conv3 --filters 4 \\
        --variant lucid:steps=128 --variant lr0.1:steps=128,lr=0.1 --variant wide:steps=128,scale=[0.8,1.2],rotate=20

A variant is ``NAME:key=value,...`` with keys ``steps``, ``lr`` and any fourier option (values as JSON);
``NAME:method=pixel,steps=100`` or ``method=lucent`` (``lucent_best``, ``lucent_224``) adds another method
for reference.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from filtviz_bench import evaluator, machine, quality_report, renderers
from filtviz_bench.jobs import choose_filters, option_value
from filtviz_bench.quality import scored_run
from filtviz_core.atomic import write_json
from filtviz_core.errors import FiltvizError


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"wide:steps=128,scale=[0.8,1.2]"`` -> ("wide", {"steps": 128, "scale": [0.8, 1.2]})."""
    name, sep, body = text.partition(":")
    if not sep or not name:
        raise FiltvizError(f"a variant is NAME:key=value,..., got {text!r}")
    out: dict[str, Any] = {}
    for part in filter(None, re.split(r",(?![^\[]*\])", body)):  # commas outside brackets
        key, eq, value = part.partition("=")
        if not eq:
            raise FiltvizError(f"variant {name!r}: {part!r} is not key=value")
        out[key.strip()] = option_value(value)
    return name, out


def run_sweep(
    layers: Sequence[str],
    filters_spec: str,
    size: int,
    variants: Sequence[tuple[str, dict[str, Any]]],
    *,
    noise: int = 32,
    k: int = 16,
    seed: int = 0,
    weights: str = "keras",
    device: torch.device = torch.device("cpu"),
    precision: str = "fp32",
) -> dict[str, Any]:
    from torch_filtviz import load_vgg16

    model = load_vgg16(weights, device=device)
    filters = choose_filters(layers, filters_spec, size)
    held = evaluator.HeldOut(k=k)
    base = {
        layer: evaluator.noise_baseline(model, layer, size, count=noise, heldout=held, device=device)
        for layer in layers
    }
    rows: dict[str, Any] = {}
    for name, spec in variants:
        spec = dict(spec)
        method = spec.pop("method", "fourier")
        steps = int(spec.pop("steps", renderers.default_steps(method) or 128))
        lr = spec.pop("lr", None)
        why = renderers.unavailable(method)
        if why:
            raise FiltvizError(f"variant {name!r}: {why}")
        if method in renderers.TORCH_METHODS:
            render = renderers.torch_renderer(
                model, method, size=size, seed=seed, device=device, precision=precision, options=spec or None, lr=lr
            )
        else:
            render = renderers.lucent_renderer(weights, method, size=size, seed=seed, device=device)
        run = scored_run(model, render, filters, steps, base, held, device)
        rows[name] = {
            "method": method,
            "steps": steps,
            "lr": lr,
            "options": spec,
            "seconds": run["seconds"],
            "summary": run["summary"],
            "per_layer": run["per_layer"],
            "scores": run["scores"],
        }
        seconds = run["seconds"]
        s = rows[name]["summary"]
        print(
            f"{name}: median z {quality_report._num(s['median_z'])}, "
            f"kept {quality_report._num(s['median_kept'], '.2f')}, "
            f"alpha {quality_report._num(s['median_alpha'], '.2f')}, flat {s['flat']}, {seconds:.0f} s",
            flush=True,
        )
    return {
        "layers": list(layers),
        "filters": filters_spec,
        "size": size,
        "noise": noise,
        "k": k,
        "seed": seed,
        "device": machine.device_name(device),
        "load_average": machine.load_average(),
        "variants": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    names = list(result["variants"])
    first = result["variants"][names[0]]["scores"] if names else []
    lines = [
        (
            "| variant | method | steps | lr | options | median z | z per layer | kept | alpha | share > 0.25 | "
            "flat | z > first, share | s |"
        ),
        "|" + "---|" * 13,
    ]
    for name in names:
        v = result["variants"][name]
        s = v["summary"]
        per = " / ".join(quality_report._num(v["per_layer"][layer]["median_z"]) for layer in result["layers"])
        share, _n = quality_report.share_above(v["scores"], first)
        lines.append(
            f"| {name} | {v['method']} | {v['steps']} | {v['lr'] if v['lr'] is not None else 'default'} | "
            f"{json.dumps(v['options']) if v['options'] else '-'} | {quality_report._num(s['median_z'])} | "
            f"{per} | {quality_report._num(s['median_kept'], '.2f')} | "
            f"{quality_report._num(s['median_alpha'], '.2f')} | "
            f"{quality_report._num(s['median_high_share'], '.2f')} | {s['flat']} | {share:.0%} | "
            f"{v['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str = "python -m filtviz_bench.sweep") -> dict[str, Any]:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", default="block4_conv3,block5_conv3")
    p.add_argument("--filters", default="4")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--variant", action="append", required=True, help="NAME:key=value,... (repeatable)")
    p.add_argument("--noise", type=int, default=32)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--out", help="write the result here as JSON")
    args = p.parse_args(argv)
    started = time.perf_counter()
    result = run_sweep(
        [s.strip() for s in args.layers.split(",") if s.strip()],
        args.filters,
        args.size,
        [parse_variant(v) for v in args.variant],
        noise=args.noise,
        k=args.k,
        seed=args.seed,
        precision=args.precision,
    )
    result["command"] = "python -m filtviz_bench.sweep " + " ".join(sys.argv[1:] if argv is None else argv)
    result["wall_seconds"] = time.perf_counter() - started
    print(markdown(result))
    if args.out:
        write_json(Path(args.out), result)
    return result


if __name__ == "__main__":
    from filtviz_core.cli_common import run_guarded

    sys.exit(run_guarded("python -m filtviz_bench.sweep", lambda: (main(), 0)[1]))
