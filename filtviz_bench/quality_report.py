"""What the quality benchmark concludes from its scores: per-run summaries, the targets with their
verdicts, and the markdown printed and committed beside quality.json.

The targets compare runs at equal forward+backward image passes (same steps): the fourier method
against Lucent as its users run it, against Lucent with its hook moved to the pre-activation ("at its
best") and against the pixel method, filter by filter on the same filters; plus the fourier method's
naturalness, its dead pictures and its speed (under the range rule of :mod:`filtviz_bench.timing`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# (name, what, needed): the quality targets at equal image passes.
Z_OVER_LUCENT = 0.75  # fourier's robust z above Lucent's (defaults) on at least this share of filters
Z_OVER_PIXEL = 0.90  # ... above the pixel method's
Z_OVER_LUCENT_BEST = 0.50  # ... above Lucent's at its best, and its median at least Lucent's
ALPHA_RANGE = (1.5, 3.0)  # the fourier pictures' median spectral slope
SPEED_OVER_LUCENT = 3.0  # image-steps per second against Lucent at its defaults
Z_NOISE = 2.0  # a picture whose robust z is below this is not told apart from 1/f noise


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None and math.isfinite(v)], float)


def _median(values: Sequence[float | None]) -> float | None:
    v = _finite(values)
    return float(np.median(v)) if len(v) else None


def summarize(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians and counts over a run's scored pictures (dicts of :class:`filtviz_bench.evaluator.Score`
    plus ``dead``)."""
    z = _finite([s["z"] for s in scores])
    return {
        "pictures": len(scores),
        "median_z": _median([s["z"] for s in scores]),
        "z_quartiles": [float(np.percentile(z, 25)), float(np.percentile(z, 75))] if len(z) else None,
        "median_kept": _median([s["kept"] for s in scores]),
        "kept_defined": len(_finite([s["kept"] for s in scores])),
        "median_alpha": _median([s["alpha"] for s in scores]),
        "median_high_share": _median([s["high_share"] for s in scores]),
        "median_contrast": _median([s["contrast"] for s in scores]),
        "flat": int(sum(bool(s["flat"]) for s in scores)),
        "dead": int(sum(bool(s["dead"]) or bool(s["flat"]) for s in scores)),
        "below_noise": int(sum((s["z"] is None) or (s["z"] < Z_NOISE) for s in scores)),
    }


def by_filter(scores: Sequence[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(s["layer"], s["filter"]): s for s in scores}


def share_above(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """(share of the filters both runs scored on which run a's robust z is above run b's, how many filters)."""
    sa, sb = by_filter(a), by_filter(b)
    shared = [k for k in sa if k in sb]
    wins = sum(
        1
        for k in shared
        if (sa[k]["z"] if sa[k]["z"] is not None else -math.inf) > (sb[k]["z"] if sb[k]["z"] is not None else -math.inf)
    )
    return (wins / len(shared) if shared else float("nan")), len(shared)


def _target(name: str, value: Any, needed: str, met: bool | None, detail: str = "") -> dict[str, Any]:
    verdict = "n/a" if met is None else ("met" if met else "not met")
    return {"target": name, "value": value, "needed": needed, "met": met, "verdict": verdict, "detail": detail}


def quality_targets(runs: dict[str, dict[str, Any]], speed: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The targets, at equal image passes (runs ``fourier``, ``lucent``, ``lucent_best``, ``pixel``)."""
    out = []
    f = runs.get("fourier")
    missing = "n/a: the fourier run is missing" if f is None else ""

    def versus(other: str, need: float, what: str) -> None:
        if f is None or other not in runs:
            out.append(_target(what, None, f">= {need:.0%}", None, missing or f"n/a: the {other} run is missing"))
            return
        share, n = share_above(f["scores"], runs[other]["scores"])
        out.append(_target(what, share, f">= {need:.0%}", bool(share >= need), f"{round(share * n)} of {n} filters"))

    versus("lucent", Z_OVER_LUCENT, "fourier robust z above Lucent's (defaults)")
    versus("pixel", Z_OVER_PIXEL, "fourier robust z above the pixel method's")
    if f is None or "lucent_best" not in runs:
        out.append(
            _target(
                "fourier median robust z >= Lucent at its best",
                None,
                ">=",
                None,
                missing or "n/a: the lucent_best run is missing",
            )
        )
    else:
        mf, mb = f["summary"]["median_z"], runs["lucent_best"]["summary"]["median_z"]
        ok = None if mf is None or mb is None else bool(mf >= mb)
        out.append(
            _target(
                "fourier median robust z >= Lucent at its best",
                [mf, mb],
                ">= Lucent's median",
                ok,
                f"{mf:.1f} vs {mb:.1f}" if ok is not None else "",
            )
        )
    versus("lucent_best", Z_OVER_LUCENT_BEST, "fourier robust z above Lucent at its best")
    if f is None:
        out.append(_target("fourier median alpha within [1.5, 3.0]", None, "[1.5, 3.0]", None, missing))
        out.append(_target("no dead fourier pictures", None, "0", None, missing))
    else:
        alpha = f["summary"]["median_alpha"]
        out.append(
            _target(
                "fourier median alpha within [1.5, 3.0]",
                alpha,
                "[1.5, 3.0]",
                None if alpha is None else bool(ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]),
            )
        )
        dead = f["summary"]["dead"]
        out.append(_target("no dead fourier pictures", dead, "0", dead == 0, f"{dead} of {f['summary']['pictures']}"))
    out.append(speed_target(speed))
    return out


def speed_target(speed: dict[str, Any] | None) -> dict[str, Any]:
    what = f"fourier image-steps/s >= {SPEED_OVER_LUCENT:g}x Lucent at its defaults"
    if not speed or not speed.get("verdict"):
        return _target(what, None, f">= {SPEED_OVER_LUCENT:g}x", None, (speed or {}).get("why", "n/a: not timed"))
    v = speed["verdict"]
    lo, hi = v["ratio_range"]
    t = _target(
        what,
        v["ratio"],
        f">= {SPEED_OVER_LUCENT:g}x",
        v["met"],
        f"{speed['fast']}: {v['ratio']:.2f}x [{lo:.2f}-{hi:.2f}]",
    )
    t["verdict"] = v["verdict"]
    return t


def _num(v: float | None, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v, fmt)


def markdown(report: dict[str, Any]) -> str:
    """The tables: one row per run; median robust z per layer; targets; speed; Lucent's hook."""
    cfg = report["config"]
    lines = [
        (
            f"Quality: {', '.join(cfg['layers'])}; filters {cfg['filters']} per layer; {cfg['size']} px; "
            f"equal passes = {cfg['equal_steps']} steps per filter; {cfg['noise_pictures']} 1/f-noise pictures, "
            f"K = {cfg['heldout']['k']} held-out transforms (shift +-{cfg['heldout']['shift']:.0%}, scale "
            f"1/{cfg['heldout']['scale']}-{cfg['heldout']['scale']}, rotation +-{cfg['heldout']['rotate']:g} deg, "
            f"blur sigma <= {cfg['heldout']['blur']:g} px); device {report['device']['name']} "
            f"({report['threads']['torch_threads']} threads); load average {report['load_average']['before']} -> "
            f"{report['load_average']['after']}; wall {report['wall_seconds']:.0f} s."
        ),
        "",
    ]
    head = [
        "run",
        "steps",
        "robust z median [q1-q3]",
        "kept",
        "alpha",
        "share > 0.25 c/px",
        "contrast",
        "flat",
        "dead",
        "z < 2",
        "render s",
        "s / image-step",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, run in report["runs"].items():
        s = run["summary"]
        q = s["z_quartiles"]
        cells = [
            f"{name}: {run['label']}",
            str(run["steps"]),
            f"{_num(s['median_z'])} [{_num(q[0]) if q else '-'}-{_num(q[1]) if q else '-'}]",
            _num(s["median_kept"], ".2f"),
            _num(s["median_alpha"], ".2f"),
            _num(s["median_high_share"], ".2f"),
            _num(s["median_contrast"], ".0f"),
            str(s["flat"]),
            str(s["dead"]),
            str(s["below_noise"]),
            f"{run['seconds']:.0f}",
            f"{run['seconds_per_image_step']:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Median robust z per layer (flat pictures in brackets):", ""]
    names = list(report["runs"])
    lines += ["| layer | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for layer in cfg["layers"]:
        cells = []
        for name in names:
            per = report["runs"][name]["per_layer"].get(layer)
            cells.append(
                "-" if per is None else f"{_num(per['median_z'])}" + (f" ({per['flat']})" if per["flat"] else "")
            )
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    lines += ["", "Targets (equal image passes):"]
    for t in report["targets"]:
        value = t["value"]
        shown = (
            f"{value:.0%}"
            if isinstance(value, float) and t["needed"].endswith("%")
            else _num(value, ".2f")
            if isinstance(value, float)
            else "-"
            if value is None
            else str(value)
        )
        if isinstance(value, (list, tuple)):  # a comparison of two numbers: its detail says them
            shown = ""
        said = " ".join(part for part in (shown, f"({t['detail']})" if t["detail"] else "") if part)
        lines.append(f"- {t['target']} {t['needed']}: {said} -> {t['verdict']}")
    speed = report.get("speed")
    if speed and speed.get("methods"):
        lines += [
            "",
            f"Speed ({speed['job']}; median of {speed['repeats']} round-robin repeats after a warm-up):",
            "",
            "| method | seconds (median [min-max]) | image-steps/s |",
            "|---|---|---|",
        ]
        for name, m in speed["methods"].items():
            st = m["seconds"]
            lines.append(
                f"| {name}: {m['label']} | {st['median']:.2f} [{st['min']:.2f}-{st['max']:.2f}] | "
                f"{m['image_steps_per_s']:.2f} |"
            )
        for name, v in speed.get("ratios", {}).items():
            lo, hi = v["ratio_range"]
            lines.append(
                f"- {name} vs lucent: {v['ratio']:.2f}x [{lo:.2f}-{hi:.2f}] {v['verdict']} (target {v['needed']:g}x)"
            )
    hook = report.get("lucent_hook")
    if hook:
        lines += ["", hook["text"]]
    for name, why in report["skipped"].items():
        lines.append(f"- skipped {name}: {why}")
    return "\n".join(lines)
