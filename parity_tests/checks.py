"""Checks and reports: a measured value against its bound, and a list of them that passes or fails.

Every check is a :class:`Check` (name, value, bound, comparison, group and a ``note`` that says
where the bound comes from); a :class:`Report` holds them, says whether all passed, names the
first failure, and renders itself as a dict (JSON) or Markdown. The ``check_*`` functions turn
paired results (activations, input gradients, loss histories, images, flags) into checks with
the metrics of :mod:`parity_tests.metrics`. Keras is the reference side in every pair.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from parity_tests.metrics import (
    FLOAT32_EPS,
    channel_stat_diffs,
    cosine,
    curve_divergence,
    curve_relative_diff,
    norm_ratio_diff,
    pearson,
    relative_max_diff,
    relative_scalar_diff,
)

# Deterministic computations (one forward or backward pass) agree to float32 round-off. Their bounds
# are fixed, >= 5x above the worst measured over the sweep's 32 configurations (parity_tests/README.md):
# activations 2.6e-6 (VGG16 at 128 px), gradient and first-update cosines 1 - 2.2e-6.
ACTIVATION_RTOL = 2e-5  # max abs diff / max abs activation
STAT_RTOL = 1e-5  # per-channel mean/std difference / max abs activation
GRAD_MIN_COSINE = 0.99998
UPDATE_NORM_RTOL = 1e-5  # first ascent update: | ||dx_other|| / ||dx_ref|| - 1 |
UPDATE_MIN_COSINE = 0.99998
FIXED_NOTE = "fixed: deterministic, float32 round-off only"


@dataclass(frozen=True)
class Check:
    """One measured quantity and its bound. ``op`` is ``"<="``, ``">="`` or ``"=="``; ``note`` says
    where the bound comes from (e.g. the noise floor it was derived from)."""

    name: str
    value: float
    bound: float
    op: str = "<="
    group: str = ""
    note: str = ""

    @property
    def passed(self) -> bool:
        if not math.isfinite(self.value):
            return False
        if self.op == "<=":
            return bool(self.value <= self.bound)
        if self.op == ">=":
            return bool(self.value >= self.bound)
        return bool(self.value == self.bound)

    @property
    def margin(self) -> float:
        """How many times the bound the value could grow (<=) or shrink toward it (>=) and still pass."""
        if self.op == "<=":
            return self.bound / self.value if self.value > 0 else math.inf
        if self.op == ">=":  # distance to 1 (cosine/Pearson) against the allowed distance
            gap, allowed = 1.0 - self.value, 1.0 - self.bound
            return allowed / gap if gap > 0 else math.inf
        return 1.0 if self.passed else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "value": float(self.value), "bound": float(self.bound), "passed": self.passed}

    def describe(self) -> str:
        """One line: ``name = value (bound op b; note)``."""
        why = f"; {self.note}" if self.note else ""
        return f"{self.name} = {fmt(self.value)} (bound {self.op} {fmt(self.bound)}{why})"


@dataclass
class Report:
    """A list of checks; ``passed`` only when every one of them is within its bound."""

    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def extend(self, checks: Iterable[Check]) -> Report:
        self.checks.extend(checks)
        return self

    def __add__(self, other: Report) -> Report:
        return Report(self.checks + other.checks)

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def worst(self, group: str | None = None) -> Check | None:
        """The check closest to (or furthest past) its bound, optionally within one group."""
        pool = [c for c in self.checks if group is None or c.group == group]
        return min(pool, key=lambda c: c.margin) if pool else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "n_checks": len(self.checks),
            "n_failed": len(self.failures()),
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_markdown(self) -> str:
        notes = any(c.note for c in self.checks)
        lines = [
            "| check | value | bound | pass |" + (" why this bound |" if notes else ""),
            "|---|---:|---:|:---:|" + ("---|" if notes else ""),
        ]
        for c in self.checks:
            row = f"| {c.name} | {fmt(c.value)} | {c.op} {fmt(c.bound)} | {'yes' if c.passed else '**NO**'} |"
            lines.append(row + (f" {c.note} |" if notes else ""))
        return "\n".join(lines)

    def summary(self) -> str:
        bad = self.failures()
        head = f"{len(self.checks) - len(bad)}/{len(self.checks)} checks within bounds"
        return head if not bad else head + "; failed: " + "; ".join(c.describe() for c in bad[:6])


def fmt(x: float) -> str:
    """Numbers as the reports print them: cosines and correlations as their gap to 1."""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, float) and 0.999 < x < 1.0:
        return f"1-{1.0 - x:.1e}"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


# --- deterministic quantities: fixed bounds -----------------------------------------------------------


def check_activations(
    name: str,
    ref: np.ndarray,
    other: np.ndarray,
    *,
    rtol: float = ACTIVATION_RTOL,
    stat_rtol: float = STAT_RTOL,
    group: str = "activations",
) -> list[Check]:
    """Checks of one layer's activations (same layout on both sides): max diff and channel stats."""
    dmean, dstd = channel_stat_diffs(ref, other)
    why = FIXED_NOTE
    return [
        Check(f"{group}/{name}/rel_max_diff", relative_max_diff(ref, other), rtol, "<=", group, why),
        Check(f"{group}/{name}/channel_mean_diff", dmean, stat_rtol, "<=", group, why),
        Check(f"{group}/{name}/channel_std_diff", dstd, stat_rtol, "<=", group, why),
    ]


def check_gradients(
    name: str,
    ref: np.ndarray,
    other: np.ndarray,
    *,
    min_cosine: float = GRAD_MIN_COSINE,
    group: str = "gradients",
    per_item: bool = True,
) -> list[Check]:
    """Cosine similarity of input gradients; with ``per_item`` the worst over the leading axis
    (one gradient image per filter), so one bad filter cannot hide among good ones."""
    ref, other = np.asarray(ref), np.asarray(other)
    if per_item and ref.ndim > 1 and ref.shape == other.shape:
        value = min(cosine(r, o) for r, o in zip(ref, other))
    else:
        value = cosine(ref, other)
    return [Check(f"{group}/{name}/min_cosine", value, min_cosine, ">=", group, FIXED_NOTE)]


def check_first_update(
    name: str,
    x0: np.ndarray,
    ref_x1: np.ndarray,
    other_x1: np.ndarray,
    *,
    norm_rtol: float = UPDATE_NORM_RTOL,
    min_cosine: float = UPDATE_MIN_COSINE,
    group: str = "update",
) -> list[Check]:
    """The ascent's first step, x1 - x0, one image per filter: its length and its direction.

    One step is one gradient and one normalisation, nothing chaotic yet, so it is held to fixed
    bounds like the gradients: the worst filter's norm ratio within ``norm_rtol`` of 1 (a step
    size or normalisation bug, such as a learning rate 1% off, lands at 1e-2) and cosine.
    """
    x0 = np.asarray(x0, np.float64)
    ref_dx, other_dx = np.asarray(ref_x1, np.float64) - x0, np.asarray(other_x1, np.float64) - x0
    if ref_dx.shape != other_dx.shape:
        norm, cos = math.inf, -math.inf
    else:
        norm = max(norm_ratio_diff(r, o) for r, o in zip(ref_dx, other_dx))
        cos = min(cosine(r, o) for r, o in zip(ref_dx, other_dx))
    why = "fixed: one step is one gradient, deterministic"
    return [
        Check(f"{group}/{name}/norm_ratio_diff", norm, norm_rtol, "<=", group, why),
        Check(f"{group}/{name}/min_cosine", cos, min_cosine, ">=", group, why),
    ]


@dataclass(frozen=True)
class CurveBounds:
    """Fixed bounds on two loss histories of one filter; ``None`` leaves that metric unchecked."""

    max_rel: float | None = None  # curve_relative_diff: max_t |a_t - b_t| / max_t |a_t|
    min_pearson: float | None = None
    final_rel: float | None = None  # |final_ref - final_other| / |final_ref|
    gain_rel: float | None = None  # (loss[b] - loss[a]) between two snapshot steps, relative
    note: str = ""  # where the bounds come from, for the report


def check_curves(
    name: str,
    ref: np.ndarray,
    other: np.ndarray,
    bounds: CurveBounds,
    *,
    gain_steps: tuple[int, int] | None = None,
    group: str = "losses",
) -> list[Check]:
    """Checks of one pair of loss histories (steps + 1 values each) against fixed bounds."""
    ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
    checks = []
    why = bounds.note
    if bounds.max_rel is not None:
        checks.append(
            Check(f"{group}/{name}/max_rel_diff", curve_relative_diff(ref, other), bounds.max_rel, "<=", group, why)
        )
    if bounds.min_pearson is not None:
        checks.append(Check(f"{group}/{name}/pearson", pearson(ref, other), bounds.min_pearson, ">=", group, why))
    if bounds.final_rel is not None:
        final = relative_scalar_diff(ref[-1], other[-1]) if ref.shape == other.shape else math.inf
        checks.append(Check(f"{group}/{name}/final_rel_diff", final, bounds.final_rel, "<=", group, why))
    if bounds.gain_rel is not None and gain_steps is not None:
        a, b = gain_steps
        if ref.shape == other.shape and len(ref) > b:
            gain = relative_scalar_diff(ref[b] - ref[a], other[b] - other[a])
        else:
            gain = math.inf
        checks.append(Check(f"{group}/{name}/gain_{a}_{b}_rel_diff", gain, bounds.gain_rel, "<=", group, why))
    return checks


# --- chaotic quantities: bounds from the noise floor measured in the same run -------------------------


@dataclass(frozen=True)
class FloorRule:
    """How a chaotic quantity's bound follows from its measured float32 noise floor.

    bound = min(k * max(floor, min_floor), cap). ``k``: how far beyond the floor a correct port
    may land (chosen from the measured spread of that ratio); ``min_floor``: the float32
    resolution of the quantity, used when the measured floor is smaller (no chaos happened);
    ``cap``: a difference no correct port reaches, whatever the floor.
    """

    k: float
    cap: float
    min_floor: float = 8 * FLOAT32_EPS

    def bound(self, floor: float) -> float:
        return min(self.k * max(floor, self.min_floor), self.cap)

    def explain(self, floor: float, what: str = "") -> str:
        used = max(floor, self.min_floor)
        text = f"floor measured {fmt(floor)}{what}"
        if used > floor:
            text += f", raised to the float32 minimum {fmt(self.min_floor)}"
        allowed = self.k * used
        text += f", allowed {fmt(self.k)}x = {fmt(allowed)}"
        if allowed > self.cap:
            text += f", capped at {fmt(self.cap)}"
        return text


def check_curves_against_floor(
    layer: str,
    filters: Sequence[int],
    ref: np.ndarray,
    other: np.ndarray,
    ref_again: np.ndarray | Sequence[np.ndarray],
    rule: FloorRule,
    *,
    group: str = "losses",
    floor_label: str = "",
) -> list[Check]:
    """Loss histories of a chaotic ascent, judged against the noise floor of the same configuration.

    ``ref``, ``other``: (F, steps + 1) histories of the reference and the port from the same
    start; ``ref_again``: the reference run again from starts changed only by rounding, one
    (F, steps + 1) array per rerun. The floor is the largest
    :func:`~parity_tests.metrics.curve_relative_diff` between ``ref`` and a rerun, over the
    layer's filters and the reruns (one rerun of one filter is a noisy sample of the floor; the
    worst of several is a steadier one). Each filter's port difference must stay within
    ``rule.bound(floor)``; the note of every check spells the arithmetic out.
    """
    ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
    again = np.asarray(ref_again, np.float64)
    reruns = again[None] if again.ndim == ref.ndim else again
    floors = [curve_relative_diff(r, a) for rerun in reruns for r, a in zip(ref, rerun)]
    floor = max(floors) if floors else 0.0
    bound = rule.bound(floor)
    what = f" ({floor_label}, worst of {len(floors)})" if floor_label else ""
    note = rule.explain(floor, what)
    checks = []
    for i, f in enumerate(filters):
        value = curve_relative_diff(ref[i], other[i]) if ref.shape == other.shape else math.inf
        checks.append(Check(f"{group}/{layer}/{f}/divergence", value, bound, "<=", group, f"{note}, got {fmt(value)}"))
    return checks


def check_images(
    name: str,
    ref: np.ndarray,
    other: np.ndarray,
    *,
    max_levels: int = 1,
    min_fraction: float = 0.99,
    group: str = "images",
) -> list[Check]:
    """uint8 display images: the fraction of pixel values within ``max_levels`` grey levels."""
    ref, other = np.asarray(ref, np.int32), np.asarray(other, np.int32)
    frac = float(np.mean(np.abs(ref - other) <= max_levels)) if ref.shape == other.shape else 0.0
    return [Check(f"{group}/{name}/fraction_within_{max_levels}_levels", frac, min_fraction, ">=", group)]


def check_equal(name: str, ref: Sequence[Any], other: Sequence[Any], group: str = "flags") -> list[Check]:
    """Exact agreement of discrete results (e.g. dead-filter flags): the count of mismatches is 0."""
    ref, other = list(ref), list(other)
    mismatches = sum(a != b for a, b in zip(ref, other)) + abs(len(ref) - len(other))
    return [Check(f"{group}/{name}/mismatches", float(mismatches), 0.0, "==", group)]


__all__ = [
    "ACTIVATION_RTOL",
    "GRAD_MIN_COSINE",
    "STAT_RTOL",
    "Check",
    "CurveBounds",
    "FloorRule",
    "Report",
    "check_activations",
    "check_curves",
    "check_curves_against_floor",
    "check_equal",
    "check_first_update",
    "check_gradients",
    "check_images",
    "curve_divergence",
    "fmt",
]
