"""The reusable comparison core: does a PyTorch port compute what its Keras original computes?

Everything here works for any pair of models, not only VGG16:

* :func:`compare` runs both models on the same numpy inputs and checks the activations of every
  mapped layer (max abs diff / max abs activation, and per-channel mean and std);
* :func:`check_gradients`, :func:`check_curves`, :func:`check_images`, :func:`check_equal` turn
  other paired results (input gradients, loss histories, display images, flags) into checks.

Every check is a :class:`Check` (a measured value, its bound, pass/fail); a :class:`Report` holds
them, says whether all passed, and renders itself as a dict (JSON) or a Markdown table. Keras is
the reference side: relative errors are measured against the Keras value.

Input conventions of :func:`compare`: ``inputs`` is one numpy array, NHWC (channels last), float.
The Keras model receives ``keras_preprocess(inputs)`` (NHWC, in the Keras model's own input space);
the torch model receives ``torch_preprocess(inputs)`` transposed to NCHW as a float32 tensor.
Either callable defaults to identity. Torch activations (NCHW) are transposed to NHWC before
comparison; outputs of other ranks (e.g. dense layers, (N, C)) are compared as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

ACTIVATION_RTOL = 1e-5  # max abs diff / max abs activation (issue 3)
STAT_RTOL = 1e-5  # per-channel mean/std difference / max abs activation
GRAD_MIN_COSINE = 0.99999


@dataclass(frozen=True)
class Check:
    """One measured quantity and its bound. ``op`` is ``"<="``, ``">="`` or ``"=="``."""

    name: str
    value: float
    bound: float
    op: str = "<="
    group: str = ""

    @property
    def passed(self) -> bool:
        if not math.isfinite(self.value):
            return False
        if self.op == "<=":
            return self.value <= self.bound
        if self.op == ">=":
            return self.value >= self.bound
        return self.value == self.bound

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
        return {**asdict(self), "passed": self.passed}


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
        return {"passed": self.passed, "n_checks": len(self.checks), "n_failed": len(self.failures()),
                "checks": [c.to_dict() for c in self.checks]}

    def to_markdown(self) -> str:
        lines = ["| check | value | bound | pass |", "|---|---:|---:|:---:|"]
        for c in self.checks:
            lines.append(f"| {c.name} | {_fmt(c.value)} | {c.op} {_fmt(c.bound)} | {'yes' if c.passed else '**NO**'} |")
        return "\n".join(lines)

    def summary(self) -> str:
        bad = self.failures()
        head = f"{len(self.checks) - len(bad)}/{len(self.checks)} checks within bounds"
        return head if not bad else head + "; failed: " + ", ".join(f"{c.name}={_fmt(c.value)}" for c in bad[:8])


def _fmt(x: float) -> str:
    if isinstance(x, float) and 0.999 < x < 1.0:  # cosines and correlations: show the gap to 1
        return f"1-{1.0 - x:.1e}"
    if isinstance(x, bool) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e6):
        return str(int(x)) if not isinstance(x, bool) else str(x)
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


# --- metrics on numpy arrays ---------------------------------------------------------------------


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
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        return -math.inf
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(a @ b / (na * nb))


def curve_relative_diff(ref: np.ndarray, other: np.ndarray, floor: float = 0.01) -> float:
    """max over steps of |ref - other| / max(|ref|, floor * max |ref|): a curve that crosses zero
    is measured against 1% of its largest value instead of blowing up there."""
    ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
    if ref.shape != other.shape:
        return math.inf
    peak = float(np.max(np.abs(ref))) if ref.size else 0.0
    denom = np.maximum(np.abs(ref), floor * peak)
    diff = np.abs(ref - other)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.where(denom == 0, 1e-300, denom))
    return float(np.max(rel)) if rel.size else 0.0


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


# --- checks ----------------------------------------------------------------------------------------


def check_activations(name: str, ref: np.ndarray, other: np.ndarray, *, rtol: float = ACTIVATION_RTOL,
                      stat_rtol: float = STAT_RTOL, group: str = "activations") -> list[Check]:
    """Checks of one layer's activations (same layout on both sides): max diff and channel stats."""
    dmean, dstd = channel_stat_diffs(ref, other)
    return [
        Check(f"{group}/{name}/rel_max_diff", relative_max_diff(ref, other), rtol, "<=", group),
        Check(f"{group}/{name}/channel_mean_diff", dmean, stat_rtol, "<=", group),
        Check(f"{group}/{name}/channel_std_diff", dstd, stat_rtol, "<=", group),
    ]


def check_gradients(name: str, ref: np.ndarray, other: np.ndarray, *, min_cosine: float = GRAD_MIN_COSINE,
                    group: str = "gradients", per_item: bool = True) -> list[Check]:
    """Cosine similarity of input gradients; with ``per_item`` the worst over the leading axis
    (one gradient image per filter), so one bad filter cannot hide among good ones."""
    ref, other = np.asarray(ref), np.asarray(other)
    if per_item and ref.ndim > 1 and ref.shape == other.shape:
        value = min(cosine(r, o) for r, o in zip(ref, other))
    else:
        value = cosine(ref, other)
    return [Check(f"{group}/{name}/min_cosine", value, min_cosine, ">=", group)]


@dataclass(frozen=True)
class CurveBounds:
    """Bounds on two loss histories of one filter; ``None`` leaves that metric unchecked."""

    max_rel: float | None = None  # per step, relative (curve_relative_diff)
    min_pearson: float | None = None
    final_rel: float | None = None  # |final_ref - final_other| / |final_ref|
    gain_rel: float | None = None  # (loss[b] - loss[a]) between two snapshot steps, relative


def check_curves(name: str, ref: np.ndarray, other: np.ndarray, bounds: CurveBounds, *,
                 gain_steps: tuple[int, int] | None = None, group: str = "losses") -> list[Check]:
    """Checks of one pair of loss histories (steps + 1 values each)."""
    ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
    checks = []
    if bounds.max_rel is not None:
        checks.append(Check(f"{group}/{name}/max_rel_diff", curve_relative_diff(ref, other), bounds.max_rel, "<=", group))
    if bounds.min_pearson is not None:
        checks.append(Check(f"{group}/{name}/pearson", pearson(ref, other), bounds.min_pearson, ">=", group))
    if bounds.final_rel is not None:
        final = relative_scalar_diff(ref[-1], other[-1]) if ref.shape == other.shape else math.inf
        checks.append(Check(f"{group}/{name}/final_rel_diff", final, bounds.final_rel, "<=", group))
    if bounds.gain_rel is not None and gain_steps is not None:
        a, b = gain_steps
        if ref.shape == other.shape and len(ref) > b:
            gain = relative_scalar_diff(ref[b] - ref[a], other[b] - other[a])
        else:
            gain = math.inf
        checks.append(Check(f"{group}/{name}/gain_{a}_{b}_rel_diff", gain, bounds.gain_rel, "<=", group))
    return checks


def check_images(name: str, ref: np.ndarray, other: np.ndarray, *, max_levels: int = 1,
                 min_fraction: float = 0.99, group: str = "images") -> list[Check]:
    """uint8 display images: the fraction of pixel values within ``max_levels`` grey levels."""
    ref, other = np.asarray(ref, np.int32), np.asarray(other, np.int32)
    frac = float(np.mean(np.abs(ref - other) <= max_levels)) if ref.shape == other.shape else 0.0
    return [Check(f"{group}/{name}/fraction_within_{max_levels}_levels", frac, min_fraction, ">=", group)]


def check_equal(name: str, ref: Sequence[Any], other: Sequence[Any], group: str = "flags") -> list[Check]:
    """Exact agreement of discrete results (e.g. dead-filter flags): the count of mismatches is 0."""
    ref, other = list(ref), list(other)
    mismatches = sum(a != b for a, b in zip(ref, other)) + abs(len(ref) - len(other))
    return [Check(f"{group}/{name}/mismatches", float(mismatches), 0.0, "==", group)]


# --- running models --------------------------------------------------------------------------------


def keras_activations(model: Any, layer_names: Sequence[str], inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of the named layers of a Keras model on ``inputs`` (already in its input space)."""
    import keras

    sub = keras.Model(model.input, [model.get_layer(n).output for n in layer_names])
    outs = sub(np.asarray(inputs, np.float32), training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {n: np.asarray(o) for n, o in zip(layer_names, outs)}


def torch_activations(model: Any, module_paths: Sequence[str], inputs_nchw: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of the named submodules of a torch model (forward hooks), as numpy arrays
    (NCHW as torch computes them). The forward runs under ``no_grad`` in the model's mode."""
    import torch

    captured: dict[str, np.ndarray] = {}
    handles = []
    for path in module_paths:
        def hook(_module, _inp, out, path=path):
            captured[path] = out.detach().cpu().numpy().copy()

        handles.append(model.get_submodule(path).register_forward_hook(hook))
    try:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            model(torch.from_numpy(np.ascontiguousarray(inputs_nchw, np.float32)).to(device))
    finally:
        for h in handles:
            h.remove()
    missing = [p for p in module_paths if p not in captured]
    if missing:
        raise ValueError(f"torch modules never ran in the forward pass: {missing}")
    return captured


def to_nhwc(arr: np.ndarray) -> np.ndarray:
    return np.transpose(arr, (0, 2, 3, 1)) if arr.ndim == 4 else arr


def compare(keras_model: Any, torch_model: Any, layer_map: Mapping[str, str], inputs: np.ndarray, *,
            keras_preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
            torch_preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
            rtol: float = ACTIVATION_RTOL, stat_rtol: float = STAT_RTOL, label: str = "",
            group: str = "activations") -> Report:
    """Run both models on the same NHWC ``inputs`` and check every mapped layer.

    ``layer_map``: Keras layer name -> torch submodule path whose output should equal it (e.g.
    ``{"block1_conv1": "features.1"}``: Keras' conv output is after its ReLU). See the module
    docstring for the input conventions. ``label`` names the input in the check names.
    """
    inputs = np.asarray(inputs, np.float32)
    if inputs.ndim != 4:
        raise ValueError(f"inputs must be NHWC (N, H, W, C), got shape {inputs.shape}")
    k_in = keras_preprocess(inputs.copy()) if keras_preprocess else inputs
    t_in = torch_preprocess(inputs.copy()) if torch_preprocess else inputs
    k_acts = keras_activations(keras_model, list(layer_map), k_in)
    t_acts = torch_activations(torch_model, list(layer_map.values()), np.transpose(t_in, (0, 3, 1, 2)))
    report = Report()
    for k_name, t_path in layer_map.items():
        name = f"{label}/{k_name}" if label else k_name
        report.extend(check_activations(name, k_acts[k_name], to_nhwc(t_acts[t_path]), rtol=rtol,
                                        stat_rtol=stat_rtol, group=group))
    return report
