"""Numeric metrics of the comparison core: how far apart two arrays, two gradients, two loss curves are.

numpy only. The reference side comes first in every function: relative errors are measured
against it (Keras, the canonical spec, in this project). Shapes that differ give ``inf`` (or
``-inf`` for similarities), so a layout bug can never pass as a small number.
"""

from __future__ import annotations

import math

import numpy as np

FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 1.19e-7: the relative spacing of float32 numbers


def relative_max_diff(ref: np.ndarray, other: np.ndarray) -> float:
    """max |ref - other| / max |ref| (0 when both are all zero, inf when only ``ref`` is)."""
    ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
    if ref.shape != other.shape:
        return math.inf
    diff = float(np.max(np.abs(ref - other))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


def channel_stat_diffs(ref: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """Largest per-channel |Δmean| and |Δstd| (channels last), each over max |ref|."""
    ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
    if ref.shape != other.shape:
        return math.inf, math.inf
    axes = tuple(range(ref.ndim - 1))
    scale = float(np.max(np.abs(ref))) or 1.0
    dmean = np.max(np.abs(ref.mean(axis=axes) - other.mean(axis=axes))) / scale
    dstd = np.max(np.abs(ref.std(axis=axes) - other.std(axis=axes))) / scale
    return float(dmean), float(dstd)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two flattened arrays (1 when both are zero, 0 when only one is)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        return -math.inf
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(a @ b / (na * nb))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        return -math.inf
    a, b = a - a.mean(), b - b.mean()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def relative_scalar_diff(ref: float, other: float) -> float:
    ref, other = float(ref), float(other)
    if ref == other:
        return 0.0
    return abs(ref - other) / abs(ref) if ref != 0 else math.inf


def norm_ratio_diff(ref: np.ndarray, other: np.ndarray) -> float:
    """| ||other|| / ||ref|| - 1 |: a step of the wrong length (e.g. a learning rate off by 1%) shows here."""
    ref, other = np.asarray(ref, np.float64).ravel(), np.asarray(other, np.float64).ravel()
    if ref.shape != other.shape:
        return math.inf
    nr, no = np.linalg.norm(ref), np.linalg.norm(other)
    if nr == 0.0:
        return 0.0 if no == 0.0 else math.inf
    return abs(no / nr - 1.0)


# --- loss curves -------------------------------------------------------------------------------------


def curve_scale(ref: np.ndarray) -> float:
    """The scale a loss curve's differences are measured against: its largest magnitude, max_t |ref_t|.

    One number per curve, so a curve that crosses zero is not divided by ~0 there (a per-step
    denominator |ref_t| inflates the relative difference at the crossing); and float32 rounding of
    the loss values is ~``FLOAT32_EPS`` on this scale whatever the curve's offset.
    """
    ref = np.asarray(ref, np.float64)
    return float(np.max(np.abs(ref))) if ref.size else 0.0


def curve_divergence(ref: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per step t: max over s <= t of |ref_s - other_s| / curve_scale(ref) (non-decreasing, same length).

    The running maximum says how far apart the curves have been by step t; its last value is
    :func:`curve_relative_diff`. Shapes that differ give an all-``inf`` array.
    """
    ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
    if ref.shape != other.shape:
        return np.full(max(ref.size, 1), math.inf)
    diff = np.abs(ref - other)
    scale = curve_scale(ref)
    rel = np.where(diff == 0.0, 0.0, math.inf) if scale == 0.0 else diff / scale
    return np.maximum.accumulate(rel) if rel.size else np.zeros(1)


def curve_relative_diff(ref: np.ndarray, other: np.ndarray) -> float:
    """max over steps of |ref_t - other_t| / max_t |ref_t| (see :func:`curve_scale`)."""
    return float(curve_divergence(ref, other)[-1])
