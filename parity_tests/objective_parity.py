"""Objectives in Lucent's vocabulary (SPEC.md §16) in both frameworks, as checks.

Three levels, each reusing the bounds the suite already applies to the filter objective:

* **values and input gradients** of every objective kind — ``channel``, ``neuron`` (centre and an
  explicit x/y), ``direction`` (a seeded random vector), ``diversity``, terms restricted by ``batch=i``,
  and ``channel - w * diversity`` — from the same numpy pictures (a batch of 3): TF's
  ``tf_reference.objectives.objective_values`` (NHWC) against torch_filtviz's ``objective_values``
  (NCHW). Values: within :data:`~parity_tests.vgg_parity.OBJECTIVE_RTOL` of the batch's largest |value|
  (``relative_max_diff``, as the filter objective's check) or, where cancellation made the values
  smaller than what they add up, of that magnitude (:func:`magnitudes`, :func:`value_diff`); the
  gradient of the batch's sum per element with cosine >= :data:`~parity_tests.checks.GRAD_MIN_COSINE`.
  Deterministic, so fixed bounds. Both frameworks are also held, to the same bound, against a float64
  numpy evaluation of the definitions of ``filtviz_core.objectives`` (``gram_similarity`` for
  diversity) on the activations TF captured: when the frameworks disagree, that says which side is
  wrong.

  Why the magnitude: float32 rounds a sum on the scale of its summands, and the activations themselves
  differ between the frameworks by ~1e-6 of their largest (the activation checks). Measured on all 13
  layers (seeded starts, the photo and a 48x64 picture, pre_relu and post_relu): block5_conv2's
  ``channel(11)`` on the 48x64 batch has values 8.53, -4.85, 2.26 from activations whose mean |A| is 48,
  and TF vs torch differ by 9.95e-6 of the largest value, although each framework matches float64 on
  its own activations to 1.6e-7; ``channel - 100 * diversity`` post_relu there (values ~4.7, terms ~30)
  differs by 9.8e-6 (torch vs float64: 1.09e-5); a neuron is one activation (block5_conv2's neuron
  (11, x=3, y=1) on the seeded starts: values 0.44, -2.03, 1.93, TF vs torch 1.02e-5 of the largest).
  Relative to what they add up, these are all far below the bound (README, "Objectives").
* **loss histories** of ``visualize_filters(..., unit="neuron")`` and of
  ``render(channel(L, c) - w * diversity(L), batch=3)`` from the same seeded starts: the pixel method
  through :func:`parity_tests.vgg_parity.ascent_checks` (first update, block 1 per step to
  ``BLOCK1_BOUNDS``, deeper layers to ``FLOOR_RULE`` times the noise floor measured in the same run from
  1-ulp-perturbed starts), the fourier method through :func:`parity_tests.fourier_parity.ascent_checks`;
* **planted bugs** (:data:`PLANTED`) on the torch side only, while it runs, so that the checks above
  can be seen to fail.

    python -m parity_tests.objective_parity [--size 64] [--curve-size 48] [--steps 20] [--markdown]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from filtviz_core import algorithm
from filtviz_core import objectives as core
from filtviz_core.objectives import DIVERSITY_WEIGHT, Objective
from filtviz_core.vgg16 import FILTER_COUNTS, block_of
from parity_tests import fourier_parity
from parity_tests.checks import FIXED_NOTE, Check, Report, check_gradients, fmt
from parity_tests.fourier_parity import FourierRun, three_way_checks
from parity_tests.metrics import relative_max_diff
from parity_tests.runners import inference_mode, to_nchw, to_nhwc
from parity_tests.vgg_parity import (
    OBJECTIVE_RTOL,
    AscentRun,
    ascent_checks,
    floor_reruns,
    init_for,
    perturb_ulp,
    snapshots_for,
)

LAYERS = ("block1_conv2", "block3_conv3", "block5_conv3")
SIZE = 64  # px; block5_conv3 needs >= 16
CHANNEL = 11  # the channel the channel/neuron terms name (every VGG16 conv has >= 64)
VECTOR_SEED = 7  # numpy seed of the direction's random vector
BATCH = 3
CURVE_SIZE, STEPS = 48, 20  # the loss-history cases: px, steps
WIDE = (48, 64)  # (height, width) of the non-square pictures: a neuron's row and column cannot be confused


def map_size(layer: str, height: int, width: int) -> tuple[int, int]:
    """VGG16's map size at ``layer`` for an (height, width) picture (SAME convs, 2x2 pools)."""
    shift = block_of(layer) - 1
    return height >> shift, width >> shift


def objective_cases(layer: str, height: int = SIZE, width: int = SIZE, channel: int = CHANNEL) -> dict[str, Objective]:
    """Every kind of term on ``layer``, by name: what the value and gradient checks evaluate."""
    h, w = map_size(layer, height, width)
    vector = np.random.default_rng(VECTOR_SEED).normal(size=FILTER_COUNTS[layer])
    return {
        "channel": core.channel(layer, channel),
        "neuron": core.neuron(layer, channel),  # the centre (h // 2, w // 2)
        "neuron_xy": core.neuron(layer, channel, x=(3 * w) // 4, y=h // 4),
        "direction": core.direction(layer, vector),
        "diversity": core.diversity(layer),
        "batch": core.channel(layer, channel, batch=1) + core.neuron(layer, channel + 1, batch=2),
        "channel_minus_diversity": core.channel(layer, channel) - DIVERSITY_WEIGHT * core.diversity(layer),
    }


def seeded_pictures(size: int = SIZE, seed: int = 0) -> np.ndarray:
    """The spec's seeded starts of keys 0, 1, 2: (3, size, size, 3) float32 RGB pixels."""
    return algorithm.initial_images(list(range(BATCH)), size, seed)


def photo_pictures(height: int = SIZE, width: int = SIZE) -> np.ndarray:
    """The sample photo, the photo mirrored left-right, and the seeded start of key 0 cropped to the
    same size: (3, height, width, 3) float32 — structured pictures, and a batch whose elements differ."""
    from filtviz_core.images import load_image

    photo = load_image(size=(height, width), fit="stretch").astype(np.float32)
    grey = algorithm.initial_images([0], max(height, width), 0)[0, :height, :width]
    return np.stack([photo, photo[:, ::-1], grey]).astype(np.float32)


# --- values and input gradients -----------------------------------------------------------------------


def keras_values(
    model, objective: Objective, x: np.ndarray, activation: str = "pre_relu"
) -> tuple[np.ndarray, np.ndarray]:
    """tf_reference's values (B,) and the gradient (B, H, W, 3) of their sum, from NHWC pixels."""
    import tensorflow as tf

    from tf_reference.objectives import objective_values

    xt = tf.constant(np.asarray(x, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        values = objective_values(model, objective, xt, activation)
        total = tf.reduce_sum(values)
    return values.numpy(), tape.gradient(total, xt).numpy()


def torch_values(
    model, objective: Objective, x: np.ndarray, activation: str = "pre_relu"
) -> tuple[np.ndarray, np.ndarray]:
    """torch_filtviz's values (B,) and the gradient of their sum, from the same pixels (given NCHW),
    returned NHWC. Runs in inference mode, as the ascent does."""
    import torch

    from torch_filtviz.objectives import objective_values

    xt = torch.from_numpy(np.ascontiguousarray(to_nchw(np.asarray(x, np.float32)))).requires_grad_(True)
    with torch.enable_grad(), inference_mode(model):
        values = objective_values(model, objective, xt, activation)
        (grad,) = torch.autograd.grad(values.sum(), xt)
    return values.detach().numpy(), to_nhwc(grad.numpy())


def numpy_values(objective: Objective, acts: dict[str, np.ndarray]) -> np.ndarray:
    """The definitions of ``filtviz_core.objectives`` in float64 numpy on captured NHWC maps: (B,)."""
    out = None
    for weight, term in objective.terms:
        a = np.asarray(acts[term.layer], np.float64)
        b, h, w, _ = a.shape
        rows, cols = algorithm.interior(h, w)
        if term.kind == "channel":
            v = np.array([a[i, rows, cols, c].mean() for i, c in enumerate(term.channel_for(b))])
        elif term.kind == "neuron":
            y, x = term.position(h, w)
            v = np.array([a[i, y, x, c] for i, c in enumerate(term.channel_for(b))])
        elif term.kind == "direction":
            v = (a[:, rows, cols, :] @ term.unit_vector().astype(np.float64)).mean(axis=(1, 2))
        elif term.kind == "diversity":
            v = core.gram_similarity(a.reshape(b, h * w, -1), term.group)
        else:
            raise ValueError(f"unknown objective kind {term.kind!r}")
        if term.batch is not None:
            v = np.where(np.arange(b) == term.batch, v, 0.0)
        out = weight * v if out is None else out + weight * v
    return out


def keras_captured(model, objective: Objective, x: np.ndarray, activation: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    from tf_reference.model import caffe_preprocess
    from tf_reference.objectives import capture_fn

    acts = capture_fn(model, objective.layers(), activation)(caffe_preprocess(tf.constant(np.asarray(x, np.float32))))
    return {layer: a.numpy() for layer, a in acts.items()}


@dataclass
class ValueCase:
    """Both frameworks' values and gradients of one objective on one batch, and the float64 definition."""

    name: str
    objective: Objective
    activation: str
    keras: tuple[np.ndarray, np.ndarray]
    torch: tuple[np.ndarray, np.ndarray]
    numpy: np.ndarray
    scale: float = 0.0  # the largest of magnitudes(): what the value differences are measured against


def magnitudes(objective: Objective, acts: dict[str, np.ndarray]) -> np.ndarray:
    """Per element, the magnitude of what its value adds up, on captured NHWC maps: (B,) float64.

    ``sum_k |w_k| * m_k(i)`` with ``m_k`` the mean |activation| over the interior of the channel
    (``channel``), the interior mean of ``sum_c |A_c| |v_c|`` (``direction``), the largest |activation| of
    the channel in the element's map (``neuron``: one activation, rounded on its channel's scale) and 1
    (``diversity``: cosines of unit-norm Grams); 0 where ``batch=`` excludes the element. Without
    cancellation (within a channel's mean, or between weighted terms) this is |value| itself.
    """
    out = None
    for weight, term in objective.terms:
        a = np.abs(np.asarray(acts[term.layer], np.float64))
        b, h, w, _ = a.shape
        rows, cols = algorithm.interior(h, w)
        if term.kind == "channel":
            m = np.array([a[i, rows, cols, c].mean() for i, c in enumerate(term.channel_for(b))])
        elif term.kind == "neuron":
            m = np.array([a[i, :, :, c].max() for i, c in enumerate(term.channel_for(b))])
        elif term.kind == "direction":
            m = (a[:, rows, cols, :] @ np.abs(term.unit_vector().astype(np.float64))).mean(axis=(1, 2))
        else:
            m = np.ones(b)
        if term.batch is not None:
            m = np.where(np.arange(b) == term.batch, m, 0.0)
        out = abs(weight) * m if out is None else out + abs(weight) * m
    return out


def value_diff(ref: np.ndarray, other: np.ndarray, magnitude: float = 0.0) -> float:
    """max |other - ref| / max(max |ref|, ``magnitude``): ``relative_max_diff`` (relative to the batch's
    largest |value|), or relative to the largest :func:`magnitudes` where cancellation made the values
    smaller than what they add up."""
    ref, other = np.asarray(ref, np.float64), np.asarray(other, np.float64)
    largest = float(np.max(np.abs(ref))) if ref.size else 0.0
    if magnitude <= largest or ref.shape != other.shape:
        return relative_max_diff(ref, other)
    return float(np.max(np.abs(ref - other))) / magnitude


def case_checks(case: ValueCase) -> list[Check]:
    """Values three ways (TF vs torch, each vs the float64 definition) and the gradients per element."""
    out = {"tensorflow": case.keras[0], "torch": case.torch[0], "numpy": case.numpy}
    largest = float(np.max(np.abs(case.keras[0])))
    note = FIXED_NOTE
    if case.scale > 1.01 * largest:
        note += (
            f"; relative to the magnitude {fmt(case.scale)} of what the values add up (largest |value| {fmt(largest)})"
        )
    checks = three_way_checks("values", case.name, out, lambda a, b: value_diff(a, b, case.scale), OBJECTIVE_RTOL)
    checks = [Check(c.name, c.value, c.bound, c.op, c.group, note) for c in checks]
    return checks + check_gradients(case.name, case.keras[1], case.torch[1])


def value_checks(
    keras_model,
    torch_model,
    x: np.ndarray,
    cases: dict[str, Objective],
    *,
    activation: str = "pre_relu",
    label: str = "",
    bug: str | None = None,
) -> list[Check]:
    """:func:`case_checks` of every objective of ``cases`` on the pictures ``x`` (B, H, W, 3); ``bug``:
    one of :data:`PLANTED`, planted while the torch side runs."""
    checks: list[Check] = []
    captured: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
    for kind, objective in cases.items():
        name = "/".join(p for p in (label, objective.layers()[0], kind, activation) if p)
        layers = tuple(objective.layers())
        if layers not in captured:
            captured[layers] = keras_captured(keras_model, objective, x, activation)
        ref = keras_values(keras_model, objective, x, activation)
        with PLANTED[bug]() if bug is not None else contextlib.nullcontext():
            other = torch_values(torch_model, objective, x, activation)
        acts = captured[layers]
        checks += case_checks(
            ValueCase(
                name,
                objective,
                activation,
                ref,
                other,
                numpy_values(objective, acts),
                float(np.max(magnitudes(objective, acts))),
            )
        )
    return checks


# --- loss histories -----------------------------------------------------------------------------------


@contextlib.contextmanager
def perturbed_starts(seed: int) -> Iterator[None]:
    """tf_reference's seeded pixel starts moved by one ulp per value (vgg_parity.perturb_ulp), while the
    block runs: render takes no ``init``, so this is how its noise floor reruns start."""
    from tf_reference.method_parts import Pixels

    original = Pixels.start

    def start(self, keys, seed_):
        return perturb_ulp(original(self, keys, seed_), seed)

    Pixels.start = start
    try:
        yield
    finally:
        Pixels.start = original


def _ascent_run(
    framework: str,
    layer: str,
    keys: Sequence[int],
    losses,
    raw,
    images,
    snapshots,
    dead,
    seconds: float,
    init: np.ndarray | None,
) -> AscentRun:
    return AscentRun(
        framework,
        layer,
        list(keys),
        np.asarray(losses, np.float64),
        np.asarray(raw),
        np.asarray(images),
        {int(k): np.asarray(v) for k, v in snapshots.items()},
        [bool(d) for d in dead],
        seconds,
        None if init is None else np.asarray(init, np.float32),
    )


def _from_keras_results(results, layer: str, keys: Sequence[int], seconds: float, init) -> AscentRun:
    keep = sorted(results[0].snapshots)
    return _ascent_run(
        "tensorflow",
        layer,
        keys,
        np.stack([r.losses for r in results]),
        np.stack([r.raw for r in results]),
        np.stack([r.image for r in results]),
        {k: np.stack([r.snapshots[k] for r in results]) for k in keep},
        [r.dead for r in results],
        seconds,
        init,
    )


def keras_filters(
    model,
    layer: str,
    filters: Sequence[int],
    *,
    steps: int,
    init: np.ndarray | None = None,
    size: int = SIZE,
    unit: str = "neuron",
    diversity: int = 1,
) -> AscentRun:
    """tf_reference's ``visualize_filters(..., unit=unit, diversity=diversity)`` from ``init`` (F, H, W, 3)
    or, without it, from the seeded starts of the elements' keys (§16.5)."""
    from tf_reference.ascent import visualize_filters

    start = time.perf_counter()
    res = visualize_filters(
        model,
        layer,
        list(filters),
        steps=steps,
        init=init,
        size=size,
        snapshots=snapshots_for(steps),
        unit=unit,
        diversity=diversity,
    )
    return _from_keras_results(
        res,
        layer,
        [r.filter_index for r in res],
        time.perf_counter() - start,
        start_of(filters, size, diversity) if init is None else init,
    )


def torch_filters(
    model,
    layer: str,
    filters: Sequence[int],
    *,
    steps: int,
    init: np.ndarray | None = None,
    size: int = SIZE,
    unit: str = "neuron",
    diversity: int = 1,
) -> AscentRun:
    """torch_filtviz's ``visualize_filters`` with the same arguments (CPU, its default memory format)."""
    from torch_filtviz.ascent import visualize_filters

    start = time.perf_counter()
    res = visualize_filters(
        model,
        layer,
        list(filters),
        steps=steps,
        init=init,
        size=size,
        snapshots=snapshots_for(steps),
        unit=unit,
        diversity=diversity,
        device="cpu",
        progress=False,
    )
    return _ascent_run(
        "torch",
        layer,
        res.filters,
        res.losses,
        res.raw,
        res.images,
        res.snapshots,
        res.dead,
        time.perf_counter() - start,
        start_of(filters, size, diversity) if init is None else init,
    )


def start_of(filters: Sequence[int], size: int, diversity: int = 1, seed: int = 0) -> np.ndarray:
    """The seeded starts of ``visualize_filters(filters, diversity=K)``: one per element key (§16.5)."""
    return algorithm.initial_images(algorithm.element_keys(list(filters), diversity), size, seed)


def diversity_objective(layer: str, channel: int = CHANNEL, weight: float = DIVERSITY_WEIGHT) -> Objective:
    """What the render cases optimize: ``channel(L, c) - w * diversity(L)``."""
    return core.channel(layer, channel) - weight * core.diversity(layer)


def keras_render(
    model,
    objective: Objective,
    *,
    steps: int,
    size: int,
    batch: int = BATCH,
    method: str = "pixel",
    ulp_seed: int | None = None,
) -> AscentRun | FourierRun:
    """tf_reference's ``render``; ``ulp_seed``: from 1-ulp-perturbed starts (pixel, the noise floor)."""
    from tf_reference.ascent import render

    keep = snapshots_for(steps) if method == "pixel" else fourier_parity.snapshots_for(steps)
    start = time.perf_counter()
    with perturbed_starts(ulp_seed) if ulp_seed is not None else contextlib.nullcontext():
        res = render(model, objective, batch=batch, method=method, steps=steps, size=size, snapshots=keep)
    seconds = time.perf_counter() - start
    layer, keys = objective.layers()[0], list(range(batch))
    if method != "pixel":
        return FourierRun(
            "tensorflow",
            layer,
            keys,
            np.stack([r.losses for r in res]),
            np.stack([r.raw for r in res]),
            {k: np.stack([r.snapshots[k] for r in res]) for k in sorted(res[0].snapshots)},
            [bool(r.dead) for r in res],
            seconds,
        )
    return _from_keras_results(res, layer, keys, seconds, algorithm.initial_images(keys, size, 0))


def torch_render(
    model, objective: Objective, *, steps: int, size: int, batch: int = BATCH, method: str = "pixel"
) -> AscentRun | FourierRun:
    """torch_filtviz's ``render`` of the same objective (CPU, its default memory format)."""
    from torch_filtviz.render import render

    keep = snapshots_for(steps) if method == "pixel" else fourier_parity.snapshots_for(steps)
    start = time.perf_counter()
    res = render(
        model,
        objective,
        batch=batch,
        method=method,
        steps=steps,
        size=size,
        snapshots=keep,
        device="cpu",
        progress=False,
    )
    seconds = time.perf_counter() - start
    layer, keys = objective.layers()[0], list(range(batch))
    snaps = {int(k): np.asarray(v) for k, v in res.snapshots.items()}
    if method != "pixel":
        return FourierRun(
            "torch",
            layer,
            keys,
            np.asarray(res.losses, np.float64),
            np.asarray(res.raw),
            snaps,
            [bool(d) for d in res.dead],
            seconds,
        )
    return _ascent_run(
        "torch",
        layer,
        keys,
        res.losses,
        res.raw,
        res.images,
        snaps,
        res.dead,
        seconds,
        algorithm.initial_images(keys, size, 0),
    )


@dataclass
class CurvePair:
    """A reference run, the port's run, and (pixel, from block 2 on) the reference's noise-floor reruns."""

    name: str
    ref: AscentRun | FourierRun
    other: AscentRun | FourierRun
    again: list[AscentRun]

    def checks(self) -> list[Check]:
        if isinstance(self.ref, FourierRun):
            return fourier_parity.ascent_checks(self.ref, self.other)
        return ascent_checks(self.ref, self.other, self.again or None)


def filters_pair(
    keras_model,
    torch_model,
    layer: str,
    filters: Sequence[int],
    *,
    steps: int,
    size: int = SIZE,
    unit: str = "neuron",
    diversity: int = 1,
    init: np.ndarray | None = None,
) -> CurvePair:
    """``visualize_filters(unit=..., diversity=...)`` in both frameworks from the same starts: ``init``, or
    the spec's seeded starts (given to both as ``init`` when ``diversity`` is 1, so that the noise-floor
    reruns can start 1 ulp away from them)."""
    if init is None and diversity == 1:
        init = init_for(filters, size, 0)
    kw = dict(steps=steps, size=size, unit=unit, diversity=diversity)
    ref = keras_filters(keras_model, layer, filters, init=init, **kw)
    again = []
    if block_of(layer) > 1:
        if init is None:
            raise ValueError(f"{layer}: loss histories beyond block 1 need the noise floor, from a given init")
        again = [
            keras_filters(keras_model, layer, filters, init=perturb_ulp(init, s), **kw)
            for s in range(1, floor_reruns(len(ref.filters)) + 1)
        ]
    name = f"visualize_filters/{unit}" + (f"/diversity={diversity}" if diversity > 1 else "") + f"/{layer}"
    return CurvePair(name, ref, torch_filters(torch_model, layer, filters, init=init, **kw), again)


def render_pair(
    keras_model, torch_model, objective: Objective, *, steps: int, size: int = SIZE, method: str = "pixel"
) -> CurvePair:
    """``render(objective, batch=3)`` in both frameworks (each element from the seeded start of its key)."""
    layer = objective.layers()[0]
    kw = dict(steps=steps, size=size, method=method)
    ref = keras_render(keras_model, objective, **kw)
    again = []
    if method == "pixel" and block_of(layer) > 1:
        again = [keras_render(keras_model, objective, ulp_seed=s, **kw) for s in range(1, floor_reruns(BATCH) + 1)]
    return CurvePair(f"render/{method}/{layer}", ref, torch_render(torch_model, objective, **kw), again)


# --- planted bugs (torch side only) -------------------------------------------------------------------


@contextlib.contextmanager
def neuron_rows_cols_swapped() -> Iterator[None]:
    """The default neuron at (row W // 2, column H // 2): height and width swapped. Planted in
    ``filtviz_core.objectives.Term.position`` while only torch code runs (TF reads it too)."""
    original = core.Term.position

    def position(self, height, width):
        return original(self, width, height)

    core.Term.position = position
    try:
        yield
    finally:
        core.Term.position = original


@contextlib.contextmanager
def diversity_keeps_self() -> Iterator[None]:
    """torch's diversity sums <G_i, G_j> over every j, forgetting to exclude j == i: the own term
    <G_i, G_i> / K = 1 / K (unit-norm Grams) is added to each element. Planted around
    ``torch_filtviz.objectives._term_fn`` (the product's own term, whatever its arguments)."""
    from torch_filtviz import objectives as tobj

    original = tobj._term_fn

    def term_fn(term, *args, **kwargs):
        fn = original(term, *args, **kwargs)
        if term.kind != "diversity":
            return fn
        return lambda act: fn(act) + 1.0 / float(term.group or act.shape[0])

    tobj._term_fn = term_fn
    try:
        yield
    finally:
        tobj._term_fn = original


PLANTED: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
    "neuron_rows_cols_swapped": neuron_rows_cols_swapped,
    "diversity_keeps_self": diversity_keeps_self,
}


# --- the command line -----------------------------------------------------------------------------------


def summarize(report: Report, group: str) -> str:
    worst = report.worst(group)
    if worst is None:
        return f"{group}: no checks"
    bad = [c for c in report.failures() if c.group == group]
    return (
        f"{group}: {sum(c.group == group for c in report.checks)} checks, {len(bad)} failed; closest to its "
        f"bound: {worst.describe()}"
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = argparse.ArgumentParser(
        prog="python -m parity_tests.objective_parity",
        description="Objectives (SPEC.md §16) in tf_reference and torch_filtviz: values, "
        "gradients, loss histories, and planted bugs.",
    )
    p.add_argument("--size", type=int, default=SIZE, help="picture size of the value cases (px)")
    p.add_argument("--curve-size", type=int, default=CURVE_SIZE, help="picture size of the loss-history cases (px)")
    p.add_argument("--steps", type=int, default=STEPS, help="steps of the loss-history cases")
    p.add_argument(
        "--all-layers",
        action="store_true",
        help="values and gradients on all 13 conv layers, seeded, photo and 48x64, pre_relu and post_relu "
        "(as the suite's --parity-full); slow",
    )
    p.add_argument("--markdown", action="store_true", help="print every check as a Markdown table")
    args = p.parse_args(argv)
    from filtviz_core.weights import resolve_weights
    from tf_reference.model import load_vgg16 as keras_load
    from torch_filtviz.models import load_vgg16 as torch_load

    path = resolve_weights("auto").path
    keras_model, torch_model = keras_load(path), torch_load(path)
    started = time.perf_counter()

    values = Report()
    pictures = {
        "seeded": seeded_pictures(args.size),
        "photo": photo_pictures(args.size, args.size),
        "48x64": photo_pictures(*WIDE),
    }
    wide = pictures["48x64"]
    if args.all_layers:
        from filtviz_core.vgg16 import CONV_NAMES

        for layer in CONV_NAMES:
            for label, x in pictures.items():
                for activation in ("pre_relu", "post_relu"):
                    values.extend(
                        value_checks(
                            keras_model,
                            torch_model,
                            x,
                            objective_cases(layer, *x.shape[1:3]),
                            activation=activation,
                            label=label,
                        )
                    )
    else:
        for layer in LAYERS:
            values.extend(
                value_checks(
                    keras_model,
                    torch_model,
                    pictures["seeded"],
                    objective_cases(layer, args.size, args.size),
                    label="seeded",
                )
            )
        for label, activation in (("photo", "pre_relu"), ("photo", "post_relu"), ("48x64", "pre_relu")):
            x = pictures[label]
            values.extend(
                value_checks(
                    keras_model,
                    torch_model,
                    x,
                    objective_cases("block3_conv3", *x.shape[1:3]),
                    activation=activation,
                    label=label,
                )
            )
    print(f"## Values and input gradients ({time.perf_counter() - started:.0f} s)\n")
    print(summarize(values, "values"))
    print(summarize(values, "gradients"))
    tf_torch = [c for c in values.checks if c.name.endswith("/tf_vs_torch")]
    print(
        f"TF vs torch, largest value difference: {fmt(max(c.value for c in tf_torch))} "
        f"(bound {fmt(OBJECTIVE_RTOL)}); smallest gradient cosine: "
        f"{fmt(min(c.value for c in values.checks if c.group == 'gradients'))}"
    )
    if args.markdown:
        print("\n" + values.to_markdown())

    curves = Report()
    kw = dict(steps=args.steps, size=args.curve_size)
    pairs = [
        filters_pair(keras_model, torch_model, "block1_conv2", [0, 5], **kw),
        filters_pair(keras_model, torch_model, "block3_conv1", [0, 7], **kw),
        filters_pair(keras_model, torch_model, "block1_conv2", [3], unit="channel", diversity=BATCH, **kw),
        render_pair(keras_model, torch_model, diversity_objective("block1_conv2"), **kw),
        render_pair(keras_model, torch_model, diversity_objective("block3_conv1"), **kw),
        render_pair(keras_model, torch_model, diversity_objective("block1_conv2"), method="fourier", **kw),
    ]
    print(f"\n## Loss histories ({args.curve_size} px, {args.steps} steps)\n")
    for pair in pairs:
        report = Report(pair.checks())
        curves.extend(report.checks)
        curve = [c for c in report.checks if c.group == "losses"]
        worst = min(curve, key=lambda c: c.margin)
        print(f"{pair.name}: {'pass' if report.passed else 'FAIL'}; closest curve check {worst.describe()}")
    if args.markdown:
        print("\n" + curves.to_markdown())

    print("\n## Planted bugs (torch side)\n")
    caught = True
    for bug, layer in (("neuron_rows_cols_swapped", "block3_conv3"), ("diversity_keeps_self", "block3_conv3")):
        report = Report(
            value_checks(keras_model, torch_model, wide, objective_cases(layer, *WIDE), label="48x64", bug=bug)
        )
        failed = report.failures()
        caught &= bool(failed)
        print(
            f"{bug}: {'caught' if failed else 'NOT CAUGHT'} by {len(failed)} checks, e.g. "
            + ("; ".join(c.describe() for c in failed[:2]) if failed else "-")
        )
    passed = values.passed and curves.passed and caught
    print(f"\n{'all within bounds' if passed else 'FAILED'} ({time.perf_counter() - started:.0f} s)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
