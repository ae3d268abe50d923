"""Round-robin timing of contenders, and the rule that decides whether a speed target is met.

Why round robin: absolute times on shared machines are noise; ratios measured in the same process,
on the same inputs, interleaved (every repeat runs every method once) are not. Why the range rule:
a median ratio of 1.05 whose repeats overlap says nothing; a target counts as met only when even the
slowest repeat of the faster method beats the fastest repeat of the baseline by the asked factor.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from filtviz_bench.jobs import Job, subset

MET = "met"
OVERLAP = "not met (ranges overlap)"
NOT_MET = "not met"


@dataclass
class Method:
    """One contender: ``run(filters, steps=None)`` computes the job's ``filters`` (a {layer: indices}
    dict) for ``steps`` steps (None: the job's) and returns what it produced (losses, pictures)."""

    name: str
    run: Callable[..., Any]
    one_at_a_time: bool
    framework: str
    notes: str = ""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_methods(
    methods: Sequence[Method],
    job: Job,
    device: torch.device,
    *,
    repeats: int,
    baseline_filters: int | None = None,
    warmup_steps: int = 2,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Warm every method up (``warmup_steps`` steps on the same shapes), then ``repeats`` rounds, each
    running every method once in turn, so load changes on a shared machine hit all methods alike.

    Returns per method: ``seconds`` (one per round), ``filters_timed``, ``scale`` (a one-at-a-time
    method timed on ``baseline_filters`` per layer is scaled to the whole job), ``result`` (its last
    round's output) and ``method``.
    """
    plan = {m.name: subset(job, baseline_filters) if m.one_at_a_time else job.filters for m in methods}
    for m in methods:
        m.run(plan[m.name], steps=min(job.steps, warmup_steps))
    seconds: dict[str, list[float]] = {m.name: [] for m in methods}
    results: dict[str, Any] = {}
    for r in range(repeats):
        for m in methods:
            sync(device)
            start = time.perf_counter()
            got = m.run(plan[m.name])
            sync(device)
            seconds[m.name].append(time.perf_counter() - start)
            results[m.name] = got
        log(f"  round {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in seconds.items()))
    out = {}
    for m in methods:
        timed = plan[m.name]
        n_timed = sum(len(f) for f in timed.values())
        out[m.name] = {
            "seconds": seconds[m.name],
            "filters_timed": n_timed,
            "scale": scale_to_job(job, timed),
            "result": results[m.name],
            "method": m,
        }
    return out


def scale_to_job(job: Job, timed: dict[str, list[int]]) -> float:
    """Factor from the time of ``timed`` (a subset of the job's filters) to the whole job, layer by
    layer by conv cost (deeper layers cost more per filter); 1 when nothing was left out."""
    if all(len(timed[k]) == len(v) for k, v in job.filters.items()):
        return 1.0
    from filtviz_bench.flops import conv_flops
    from torch_filtviz import load_vgg16

    model = load_vgg16("random", device="cpu")
    cost = {layer: conv_flops(model, layer, job.size) for layer in job.filters}
    full = sum(cost[k] * len(v) for k, v in job.filters.items())
    part = sum(cost[k] * len(v) for k, v in timed.items())
    return full / part


def stats(values: Sequence[float]) -> dict[str, float]:
    return {"median": float(statistics.median(values)), "min": float(min(values)), "max": float(max(values))}


def speed_verdict(method_seconds: Sequence[float], baseline_seconds: Sequence[float], needed: float) -> dict[str, Any]:
    """Is the method at least ``needed`` times faster than the baseline (same work, repeats timed
    round robin)? ``ratio``: median over median; ``ratio_range``: [slowest method repeat vs fastest
    baseline repeat, fastest vs slowest]. Met only when the whole range reaches ``needed`` (the
    method's min-max range of rates lies above ``needed`` x the baseline's, no overlap); "not met
    (ranges overlap)" when the target lies inside the range; "not met" when it lies above it."""
    m, b = stats(method_seconds), stats(baseline_seconds)
    worst, best = b["min"] / m["max"], b["max"] / m["min"]
    verdict = MET if worst >= needed else OVERLAP if best >= needed else NOT_MET
    return {
        "needed": needed,
        "ratio": b["median"] / m["median"],
        "ratio_range": [worst, best],
        "met": verdict == MET,
        "verdict": verdict,
    }
