"""VGG16 parity between the packages: tf_reference (Keras, the reference) and torch_filtviz (the port).

Used by the pytest suite, by ``scripts/compare_frameworks.py`` and by the sweep
(``python -m parity_tests.sweep``), so all three apply the same checks and bounds:

* **activations** of all 13 conv layers on the sample photo and on seeded noise — fixed bounds
  (deterministic: :data:`~parity_tests.checks.ACTIVATION_RTOL`);
* **gradients**: the objective and its input gradient at the seeded start, Keras through the
  independent implementation of :mod:`parity_tests.spec`, torch through the product's own
  ``torch_filtviz.objectives.filter_objective`` — fixed bounds;
* **ascent**: the first update x1 - x0 (deterministic: fixed bounds), dead flags, snapshot
  steps, and the loss histories: in block 1 against fixed bounds (plus the deprocessed images);
  from block 2 on against the float32 **noise floor measured in the same run** — the reference
  ascent run a second time from a start perturbed by 1 ulp per pixel — times :data:`FLOOR_RULE`.

The Keras side of a configuration is computed once (:func:`activation_reference`,
:func:`layer_reference`) and compared with any number of torch sides (the correct port, or one
with a planted bug: :mod:`parity_tests.mutations`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from filtviz_core import algorithm
from filtviz_core.vgg16 import CONV_NAMES, block_of
from parity_tests import spec
from parity_tests.checks import (
    ACTIVATION_RTOL,
    FIXED_NOTE,
    Check,
    CurveBounds,
    FloorRule,
    check_activations,
    check_curves,
    check_curves_against_floor,
    check_equal,
    check_first_update,
    check_gradients,
    check_images,
)
from parity_tests.metrics import relative_max_diff
from parity_tests.mutations import TorchSide, torch_side
from parity_tests.runners import keras_activations, to_nchw, to_nhwc, torch_activations, torch_filter_gradients

# Block 1 loss histories stay within ~1e-7 of the curve's scale for almost every filter (a late
# ReLU flip lifts the odd one to ~1e-5), so block 1 keeps fixed bounds (parity_tests/README.md).
BLOCK1_BOUNDS = CurveBounds(
    max_rel=1e-4, min_pearson=0.999999, final_rel=1e-4, gain_rel=1e-4, note="fixed: block 1 barely amplifies round-off"
)
# From block 2 on the ascent amplifies float32 round-off: the bound is k times the noise floor
# measured in the same run, never above the cap. k and the cap come from the measured spread of
# (port divergence / floor): worst 2.7 in the calibration (python -m parity_tests.noise_floor),
# 5.7 in the sweep; the largest divergence of a correct run was 0.18 (parity_tests/README.md).
FLOOR_RULE = FloorRule(k=16.0, cap=0.5)
FLOOR_SAMPLES = 4  # at least this many (filter, rerun) samples of the floor per layer: ceil(4 / F) reruns
OBJECTIVE_RTOL = 1e-5
GAIN_FROM = 10  # the first default snapshot: the block-1 loss gained from it to the last step must agree
IMAGE_MAX_LEVELS = 1  # deprocessed block1 images: grey levels ...
IMAGE_MIN_FRACTION = 0.99  # ... on at least this fraction of pixel values
FEATURE_MAP_RTOL = ACTIVATION_RTOL
PHOTO_SIZE = 128  # px: the activation checks' inputs
FAMILIES = ("activations", "gradients", "ascent")  # cheapest first: the order the sweep stops in


@dataclass
class AscentRun:
    """One framework's results for F filters of one layer, stacked: the common ground of both APIs."""

    framework: str
    layer: str
    filters: list[int]
    losses: np.ndarray  # (F, steps + 1)
    raw: np.ndarray  # (F, H, W, 3) float32
    images: np.ndarray  # (F, H, W, 3) uint8
    snapshots: dict[int, np.ndarray]  # step -> (F, H, W, 3)
    dead: list[bool]
    seconds: float
    init: np.ndarray | None = None  # (F, H, W, 3): the start both frameworks were given


def snapshots_for(steps: int) -> tuple[int, ...]:
    """Steps kept as images: 1 (the first update), 10 (the gain's start) and the last."""
    return tuple(sorted({s for s in (1, GAIN_FROM, steps) if 0 < s <= steps}))


def init_for(filters: Sequence[int], size: int, seed: int) -> np.ndarray:
    """The spec's seeded starting images: handed to both frameworks as one explicit array."""
    return algorithm.initial_images(list(filters), size, seed)


def floor_reruns(n_filters: int) -> int:
    """How many times the reference runs again for the noise floor: enough for FLOOR_SAMPLES samples."""
    return max(1, -(-FLOOR_SAMPLES // max(1, n_filters)))


def perturb_ulp(x: np.ndarray, seed: int = 1) -> np.ndarray:
    """``x`` (float32) with every value moved by one unit in the last place, up or down (seeded).

    A change of rounding only: the start is the same image to float32 precision, so how far an
    ascent from it drifts from the original is the noise floor of that ascent.
    """
    x = np.asarray(x, np.float32)
    up = np.random.default_rng(seed).random(x.shape) < 0.5
    return np.where(up, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))).astype(np.float32)


def run_keras(
    model,
    layer: str,
    filters: Sequence[int],
    init: np.ndarray,
    *,
    steps: int,
    snapshots: Sequence[int] | None = None,
    objective: str = "pre_relu",
) -> AscentRun:
    """tf_reference's ascent (one filter at a time) from ``init`` (F, H, W, 3)."""
    from tf_reference.ascent import visualize_filters

    snapshots = snapshots_for(steps) if snapshots is None else snapshots
    start = time.perf_counter()
    results = visualize_filters(
        model, layer, list(filters), steps=steps, init=init, snapshots=snapshots, objective=objective
    )
    seconds = time.perf_counter() - start
    keep = sorted(results[0].snapshots)
    return AscentRun(
        "tensorflow",
        layer,
        list(filters),
        np.stack([r.losses for r in results]),
        np.stack([r.raw for r in results]),
        np.stack([r.image for r in results]),
        {k: np.stack([r.snapshots[k] for r in results]) for k in keep},
        [bool(r.dead) for r in results],
        seconds,
        np.asarray(init, np.float32),
    )


def run_torch(
    model,
    layer: str,
    filters: Sequence[int],
    init: np.ndarray,
    *,
    steps: int,
    snapshots: Sequence[int] | None = None,
    objective: str = "pre_relu",
    lr: float = 1.0,
    **kwargs,
) -> AscentRun:
    """torch_filtviz's batched ascent from the same ``init`` (CPU, its default memory format)."""
    from torch_filtviz.ascent import visualize_filters

    snapshots = snapshots_for(steps) if snapshots is None else snapshots
    start = time.perf_counter()
    res = visualize_filters(
        model,
        layer,
        list(filters),
        steps=steps,
        init=init,
        snapshots=snapshots,
        objective=objective,
        lr=lr,
        progress=False,
        device="cpu",
        **kwargs,
    )
    seconds = time.perf_counter() - start
    return AscentRun(
        "torch",
        layer,
        list(filters),
        np.asarray(res.losses, np.float64),
        np.asarray(res.raw),
        np.asarray(res.images),
        {int(k): np.asarray(v) for k, v in res.snapshots.items()},
        [bool(d) for d in np.asarray(res.dead)],
        seconds,
        np.asarray(init, np.float32),
    )


def run_side(
    side: TorchSide, layer: str, filters: Sequence[int], init: np.ndarray, *, steps: int, objective: str = "pre_relu"
) -> AscentRun:
    """:func:`run_torch` for a :class:`~parity_tests.mutations.TorchSide` (its bug planted)."""
    with side.planted():
        return run_torch(
            side.model,
            layer,
            filters,
            init,
            steps=steps,
            objective=side.objective_for(objective),
            lr=algorithm.DEFAULT_LR * side.lr_scale,
        )


# --- checks of paired results -------------------------------------------------------------------------


def ascent_checks(
    ref: AscentRun,
    other: AscentRun,
    again: Sequence[AscentRun] | AscentRun | None = None,
    *,
    rule: FloorRule = FLOOR_RULE,
) -> list[Check]:
    """Checks of two ascents from the same start.

    All blocks: the first update (when both kept step 1 and know their start), dead flags and
    snapshot steps. Block 1: loss histories against :data:`BLOCK1_BOUNDS` and the deprocessed
    images. Blocks 2-5: loss histories against ``rule`` applied to the noise floor, ``again``
    being the reference's reruns from ulp-perturbed starts (required there).
    """
    layer = ref.layer
    steps = ref.losses.shape[1] - 1
    checks: list[Check] = []
    if 1 in ref.snapshots and 1 in other.snapshots and ref.init is not None:
        checks += check_first_update(layer, ref.init, ref.snapshots[1], other.snapshots[1])
    if block_of(layer) == 1:
        gain = (GAIN_FROM, steps) if steps > GAIN_FROM else None
        for i, f in enumerate(ref.filters):
            checks += check_curves(f"{layer}/{f}", ref.losses[i], other.losses[i], BLOCK1_BOUNDS, gain_steps=gain)
    else:
        if again is None:
            raise ValueError(f"{layer}: loss histories beyond block 1 need the reference's rerun (the noise floor)")
        reruns = [again] if isinstance(again, AscentRun) else list(again)
        checks += check_curves_against_floor(
            layer,
            ref.filters,
            ref.losses,
            other.losses,
            [r.losses for r in reruns],
            rule,
            floor_label="tensorflow again from 1-ulp-perturbed starts",
        )
    checks += check_equal(f"{layer}/dead", ref.dead, other.dead)
    checks += check_equal(f"{layer}/snapshot_steps", sorted(ref.snapshots), sorted(other.snapshots))
    if block_of(layer) == 1:
        for i, f in enumerate(ref.filters):
            checks += check_images(
                f"{layer}/{f}",
                ref.images[i],
                other.images[i],
                max_levels=IMAGE_MAX_LEVELS,
                min_fraction=IMAGE_MIN_FRACTION,
            )
    return checks


def objective_checks(
    layer: str, ref: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray]
) -> list[Check]:
    """(values, gradients) of both sides: cosine per filter >= 0.99999, values within 1e-5."""
    return check_gradients(layer, ref[1], other[1]) + [
        Check(
            f"objective/{layer}/rel_max_diff",
            relative_max_diff(ref[0], other[0]),
            OBJECTIVE_RTOL,
            "<=",
            "objective",
            FIXED_NOTE,
        )
    ]


def keras_gradients(keras_model, layer: str, filters: Sequence[int], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The objective and its input gradient in Keras (independent implementation, :mod:`parity_tests.spec`)."""
    return spec.keras_objective_grad(keras_model, layer, filters, x)


def torch_gradients(
    side: TorchSide, layer: str, filters: Sequence[int], x: np.ndarray, objective: str = "pre_relu"
) -> tuple[np.ndarray, np.ndarray]:
    """The same through torch_filtviz's own objective and hooks, with the side's bug planted."""
    with side.planted():
        return torch_filter_gradients(side.model, layer, filters, x, side.objective_for(objective))


def gradient_checks(keras_model, torch_model, layer: str, filters: Sequence[int], x: np.ndarray) -> list[Check]:
    """Input gradients (and values) of the objective from the same images ``x`` (F, H, W, 3):
    Keras' independent implementation vs torch_filtviz's ``filter_objective``. ``torch_model``
    may be a model or a :class:`~parity_tests.mutations.TorchSide`."""
    side = torch_model if isinstance(torch_model, TorchSide) else torch_side(torch_model)
    return objective_checks(
        layer, keras_gradients(keras_model, layer, filters, x), torch_gradients(side, layer, filters, x)
    )


def feature_map_checks(
    keras_model, torch_model, images: np.ndarray, layers: Sequence[str] = CONV_NAMES, label: str = "photo"
) -> list[Check]:
    """tf_reference.feature_maps vs torch_filtviz.feature_maps (both from RGB pixel images)."""
    from tf_reference.model import feature_maps as keras_maps
    from torch_filtviz.maps import feature_maps as torch_maps

    k = keras_maps(keras_model, images, list(layers))
    t = torch_maps(torch_model, images, list(layers))
    checks: list[Check] = []
    for name in layers:
        t_map = t[name].detach().cpu().numpy() if hasattr(t[name], "detach") else np.asarray(t[name])
        checks += check_activations(
            f"{label}/{name}",
            np.asarray(k[name]),
            to_nhwc(t_map),
            rtol=FEATURE_MAP_RTOL,
            stat_rtol=FEATURE_MAP_RTOL,
            group="feature_maps",
        )
    return checks


# --- a configuration's reference side, computed once -------------------------------------------------


@dataclass
class ActivationReference:
    """Keras activations of all 13 conv layers on the sample photo and on seeded noise (RGB pixels)."""

    inputs: dict[str, np.ndarray]  # label -> (1, H, W, 3) float32
    acts: dict[str, dict[str, np.ndarray]]  # label -> layer -> NHWC


def activation_inputs(seed: int, size: int = PHOTO_SIZE) -> dict[str, np.ndarray]:
    """The sample photo and uniform noise over the pixel range (seeded), (1, size, size, 3) float32."""
    from filtviz_core.images import load_image

    photo = load_image(size=size, fit="stretch")[None].astype(np.float32)
    noise = np.random.default_rng(seed).uniform(0, 255, photo.shape).astype(np.float32)
    return {"photo": photo, "noise": noise}


def activation_reference(keras_model, seed: int, size: int = PHOTO_SIZE) -> ActivationReference:
    inputs = activation_inputs(seed, size)
    acts = {label: keras_activations(keras_model, CONV_NAMES, spec.caffe_numpy(x)) for label, x in inputs.items()}
    return ActivationReference(inputs, acts)


def activation_checks(ref: ActivationReference, side: TorchSide) -> list[Check]:
    """The port's activations (its own preprocessing on the same RGB pixels) against the reference."""
    paths = {name: side.model.aliases[name] for name in CONV_NAMES}
    checks: list[Check] = []
    for label, x in ref.inputs.items():
        t_acts = torch_activations(side.model, list(paths.values()), to_nchw(x))
        for name in CONV_NAMES:
            t_act = to_nhwc(t_acts[paths[name]])
            checks += check_activations(f"{label}/{name}", ref.acts[label][name], t_act)
    return checks


@dataclass
class LayerReference:
    """The Keras side of one layer's configuration: gradients at the start, the ascent, and (from
    block 2 on) the ascent again from 1-ulp-perturbed starts (:func:`floor_reruns` of them), for
    the noise floor."""

    layer: str
    filters: list[int]
    steps: int
    init: np.ndarray
    objective: tuple[np.ndarray, np.ndarray]  # (values (F,), gradients (F, H, W, 3))
    run: AscentRun
    again: list[AscentRun]  # empty in block 1
    seconds: float


def layer_reference(
    keras_model, layer: str, filters: Sequence[int], *, steps: int, size: int, seed: int
) -> LayerReference:
    start = time.perf_counter()
    filters = list(filters)
    init = init_for(filters, size, seed)
    grads = keras_gradients(keras_model, layer, filters, init)
    run = run_keras(keras_model, layer, filters, init, steps=steps)
    again = []
    if block_of(layer) > 1:
        for seed in range(1, floor_reruns(len(filters)) + 1):
            again.append(run_keras(keras_model, layer, filters, perturb_ulp(init, seed), steps=steps))
    return LayerReference(layer, filters, steps, init, grads, run, again, time.perf_counter() - start)


def layer_checks(ref: LayerReference, side: TorchSide, family: str) -> tuple[list[Check], AscentRun | None]:
    """The ``"gradients"`` or ``"ascent"`` checks of one torch side against ``ref``; the torch run
    is returned too for the ascent (for reports and figures)."""
    if family == "gradients":
        return objective_checks(ref.layer, ref.objective, torch_gradients(side, ref.layer, ref.filters, ref.init)), None
    if family == "ascent":
        run = run_side(side, ref.layer, ref.filters, ref.init, steps=ref.steps)
        return ascent_checks(ref.run, run, ref.again or None), run
    raise ValueError(f"unknown check family {family!r}; valid: gradients, ascent")
