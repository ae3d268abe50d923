"""Gradient ascent on the input image, one filter at a time, exactly as SPEC.md states it.

Section names in the comments ("§6 Step") point at SPEC.md. The loop is plain Python over
steps; the per-step work (forward, gradient, update) is one function built by
:func:`make_step_fn`, either eager (simple, obviously correct) or wrapped in ``tf.function``
(the default: same numbers, 3.3x faster on the 2-core CPU: SPEC.md §13).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from filtviz_core import algorithm, methods, runrecord
from filtviz_core.algorithm import (
    DEFAULT_LR,
    DEFAULT_OBJECTIVE,
    DEFAULT_SEED,
    DEFAULT_SIZE,
    DEFAULT_SNAPSHOTS,
    DEFAULT_STEPS,
    RMS_FLOOR,
    deprocess,
)
from filtviz_core.errors import FiltvizError
from filtviz_core.fourier import to_uint8
from filtviz_core.transforms import output_size
from filtviz_core.vgg16 import min_size_for
from tf_reference.model import caffe_preprocess, get_conv_layer, submodel

# (x, filter_index) -> scalar objective; x is (1, H, W, 3) float32 pixels.
ObjectiveFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
# (x, filter_index, lr) -> (loss at x, x after the step, gradient all zero?).
StepFn = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


@dataclass
class FilterResult:
    """One filter's ascent: the raw pixel image, its display image, loss history and snapshots."""

    layer: str
    filter_index: int
    raw: np.ndarray  # (H, W, 3) float32 pixel units, x_steps
    image: np.ndarray  # (H, W, 3) uint8: deprocess(raw) (pixel), raw rounded as it is (fourier, §15.7)
    losses: np.ndarray  # (steps + 1,) objective at x_0 .. x_steps
    snapshots: dict[int, np.ndarray]  # step k -> x_k, (H, W, 3) float32
    dead: bool
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    method: str = methods.DEFAULT_METHOD  # "pixel" (§1-§14) or "fourier" (§15)


def make_objective(model: keras.Model, layer_name: str, objective: str = DEFAULT_OBJECTIVE) -> ObjectiveFn:
    """The scalar that the ascent maximizes for one filter of ``layer_name`` (§4 Model input, §5 Objective)."""
    algorithm.check_objective(objective)
    conv = get_conv_layer(model, layer_name)
    if objective == "pre_relu":
        # §5: A = conv(h, K) + b with h = the conv layer's input (for block1_conv1, the model input itself).
        to_input = None if conv.input is model.input else keras.Model(model.input, conv.input)

        def activation(m: tf.Tensor) -> tf.Tensor:
            h = m if to_input is None else to_input(m, training=False)
            return conv.convolution_op(h, conv.kernel) + conv.bias
    else:
        # §5: A = the Keras layer output (ReLU included), the notebook's objective.
        to_output = submodel(model, layer_name)

        def activation(m: tf.Tensor) -> tf.Tensor:
            return to_output(m, training=False)

    def objective_fn(x: tf.Tensor, filter_index: tf.Tensor) -> tf.Tensor:
        a = activation(caffe_preprocess(x))  # §4: caffe preprocessing inside the differentiated function
        rows, cols = algorithm.interior(int(a.shape[1]), int(a.shape[2]))  # §5 border rule
        return tf.reduce_mean(a[0, rows, cols, filter_index])

    return objective_fn


def make_step_fn(model: keras.Model, layer_name: str, objective: str = DEFAULT_OBJECTIVE, *,
                 compiled: bool = True, clip: bool = False) -> StepFn:
    """One ascent step (§6 Step): ``step(x, filter_index, lr) -> (loss(x), x_next, all(g == 0))``.

    ``compiled=False`` runs eagerly; ``compiled=True`` wraps the same Python in ``tf.function``
    (traced once per image size; ``filter_index`` and ``lr`` are tensors so they never retrace).
    """
    objective_fn = make_objective(model, layer_name, objective)

    def step(x: tf.Tensor, filter_index: tf.Tensor, lr: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = objective_fn(x, filter_index)
        g = tape.gradient(loss, x)
        rms = tf.sqrt(tf.reduce_mean(tf.square(g)))
        x_next = x + lr * g / tf.maximum(rms, RMS_FLOOR)
        if clip:
            x_next = tf.clip_by_value(x_next, 0.0, 255.0)
        return loss, x_next, tf.reduce_all(tf.equal(g, 0.0))  # the last is §9's dead test

    return tf.function(step) if compiled else step


def make_loss_fn(model: keras.Model, layer_name: str, objective: str = DEFAULT_OBJECTIVE, *,
                 compiled: bool = True) -> ObjectiveFn:
    """The objective alone (forward only), for the loss after the last step (§7 Loss history)."""
    objective_fn = make_objective(model, layer_name, objective)
    return tf.function(objective_fn) if compiled else objective_fn


# Built functions per model, so a run of many filters traces tf.function once, not once per filter.
_FN_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached(model: keras.Model, key: tuple, build: Callable[[], Any]) -> Any:
    per_model = _FN_CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def _check_common(model: keras.Model, layer_name: str, method: str, steps: int | None, lr: float | None, seed: int,
                  objective: str, method_options: Mapping[str, Any] | methods.FourierOptions | None,
                  init: np.ndarray | None, clip: bool) -> tuple[int, int, float, methods.FourierOptions | None]:
    """Validate everything but the image and filters: (filter count, steps, lr, fourier options or None)."""
    algorithm.check_objective(objective)
    steps, lr, options = methods.resolve(method, steps, lr, method_options)
    algorithm.check_seed(seed)
    methods.check_pixel_only(options, init_given=init is not None, clip=clip)
    return int(get_conv_layer(model, layer_name).filters), steps, lr, options


def _check_size(side: int, layer_name: str, options: methods.FourierOptions | None) -> None:
    """The picture the network sees must fit the layer: the image itself, or §15.3's transformed canvas."""
    seen = int(side) if options is None else min(output_size(int(side), int(side), options))
    methods.check_seen_size(int(side), seen, min_size_for(layer_name), layer_name, options)


def visualize_filter(model: keras.Model, layer_name: str, filter_index: int, *, method: str = methods.DEFAULT_METHOD,
                     steps: int | None = None, size: int = DEFAULT_SIZE, lr: float | None = None,
                     seed: int = DEFAULT_SEED, init: np.ndarray | None = None,
                     snapshots: Iterable[int] | None = DEFAULT_SNAPSHOTS, objective: str = DEFAULT_OBJECTIVE,
                     clip: bool = False, compiled: bool = True,
                     method_options: Mapping[str, Any] | methods.FourierOptions | None = None) -> FilterResult:
    """The image that maximizes one filter's mean response (SPEC.md), with its loss history.

    ``method``: ``"pixel"`` (§1-§14; 100 steps, lr 1.0 by default) or ``"fourier"`` (§15; 128 steps,
    lr 0.05); ``steps``/``lr`` None take the method's default; ``method_options`` overrides the
    fourier method's other parameters by name (``filtviz_core.methods.FourierOptions``).
    ``init`` (H, W, 3) float32 pixels replaces the seeded start of the pixel method (and
    ``size``/``seed``), so another framework can be started from the identical array.
    """
    count, steps, lr, options = _check_common(model, layer_name, method, steps, lr, seed, objective, method_options,
                                              init, clip)
    (filter_index,) = algorithm.parse_filters([filter_index], count, layer_name)
    if options is not None:
        return _ascend_fourier(model, layer_name, filter_index, steps=steps, size=size, lr=lr, seed=int(seed),
                               options=options, snapshots=snapshots, objective=objective, compiled=bool(compiled))
    return _ascend(model, layer_name, filter_index, steps=int(steps), size=size, lr=float(lr), seed=int(seed),
                   init=None if init is None else algorithm.check_init(init), snapshots=snapshots,
                   objective=objective, clip=bool(clip), compiled=bool(compiled))


def visualize_filters(model: keras.Model, layer_name: str, filters: str | int | Iterable[int], *,
                      method: str = methods.DEFAULT_METHOD, steps: int | None = None, size: int = DEFAULT_SIZE,
                      lr: float | None = None, seed: int = DEFAULT_SEED, init: np.ndarray | None = None,
                      snapshots: Iterable[int] | None = DEFAULT_SNAPSHOTS, objective: str = DEFAULT_OBJECTIVE,
                      clip: bool = False, compiled: bool = True, progress: bool = False,
                      method_options: Mapping[str, Any] | methods.FourierOptions | None = None
                      ) -> list[FilterResult]:
    """Several filters of one layer, one at a time as the notebook did (§2: filters are independent).

    ``filters``: ``"0-15"``, an index or a list; ``init``: (F, H, W, 3), one start per filter (pixel
    method). ``method``/``method_options``: as :func:`visualize_filter`. Everything is validated
    before the first step, so bad input fails fast.
    """
    count, steps, lr, options = _check_common(model, layer_name, method, steps, lr, seed, objective, method_options,
                                              init, clip)
    indices = algorithm.parse_filters(filters, count, layer_name)
    inits = None if init is None else algorithm.check_init(init, len(indices))
    side = size if inits is None else min(inits.shape[1:3])
    _check_size(int(side), layer_name, options)
    algorithm.snapshot_steps(snapshots, int(steps))
    iterator: Iterable[int] = range(len(indices))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=layer_name, unit="filter")
    if options is not None:
        return [_ascend_fourier(model, layer_name, indices[i], steps=steps, size=size, lr=lr, seed=int(seed),
                                options=options, snapshots=snapshots, objective=objective, compiled=bool(compiled))
                for i in iterator]
    return [
        _ascend(model, layer_name, indices[i], steps=int(steps), size=size, lr=float(lr), seed=int(seed),
                init=None if inits is None else inits[i], snapshots=snapshots, objective=objective,
                clip=bool(clip), compiled=bool(compiled))
        for i in iterator
    ]


def _ascend_fourier(model: keras.Model, layer_name: str, filter_index: int, *, steps: int, size: int, lr: float,
                    seed: int, options: methods.FourierOptions, snapshots: Iterable[int] | None, objective: str,
                    compiled: bool) -> FilterResult:
    """§15 for one filter: the loop is tf_reference.fourier.ascend."""
    from tf_reference import fourier

    if int(size) != size or size < 1:
        raise FiltvizError(f"size must be a whole number of pixels >= 1, got {size}")
    size = int(size)
    _check_size(size, layer_name, options)
    keep = algorithm.snapshot_steps(snapshots, steps)
    fns = _cached(model, ("fourier", layer_name, objective, options, size, compiled),
                  lambda: fourier.make_fourier_step_fn(model, layer_name, objective, options, size, size,
                                                       compiled=compiled))
    raw, losses, kept, dead, seconds = fourier.ascend(fns, filter_index, steps=steps, size=size, lr=lr, seed=seed,
                                                      options=options, keep=keep)
    params = {"method": "fourier", "steps": steps, "size": size, "lr": lr, "seed": seed, "snapshots": sorted(keep),
              "objective": objective, "init": "seeded", "seen_size": list(output_size(size, size, options)),
              "compiled": compiled, **options.as_params()}
    return FilterResult(layer=layer_name, filter_index=int(filter_index), raw=raw, image=to_uint8(raw),
                        losses=np.asarray(losses, dtype=np.float64), snapshots=kept, dead=dead, params=params,
                        seconds=seconds, method="fourier")


def _ascend(model: keras.Model, layer_name: str, filter_index: int, *, steps: int, size: int, lr: float, seed: int,
            init: np.ndarray | None, snapshots: Iterable[int] | None, objective: str, clip: bool,
            compiled: bool) -> FilterResult:
    """The validated loop of SPEC.md §3 and §6-§9."""
    # §3 Initialisation: the seeded grey noise, unless an explicit init fixes the image (and its size).
    x0 = algorithm.initial_image(filter_index, int(size), seed) if init is None else init
    algorithm.check_image_size(int(min(x0.shape[:2])), min_size_for(layer_name), layer_name)
    keep = set(algorithm.snapshot_steps(snapshots, steps))  # §8 Snapshots
    step_fn = _cached(model, ("step", layer_name, objective, compiled, clip),
                      lambda: make_step_fn(model, layer_name, objective, compiled=compiled, clip=clip))
    loss_fn = _cached(model, ("loss", layer_name, objective, compiled),
                      lambda: make_loss_fn(model, layer_name, objective, compiled=compiled))

    start = time.perf_counter()
    f = tf.constant(filter_index, dtype=tf.int32)
    rate = tf.constant(lr, dtype=tf.float32)
    x = tf.constant(x0[None], dtype=tf.float32)  # §2 Variable: (1, H, W, 3) float32 pixels
    losses: list[float] = []
    kept: dict[int, np.ndarray] = {}
    dead = False
    for k in range(max(steps, 1)):  # steps = 0 still takes the gradient at x0, for §9, but never applies it
        if k in keep:
            kept[k] = x[0].numpy()  # §8: x_k, before update k+1
        loss, x_next, zero_grad = step_fn(x, f, rate)  # §6 Step; loss = objective(x_k)
        losses.append(float(loss))  # §7 Loss history
        if k == 0 and bool(zero_grad):
            dead = True  # §9 Dead filter: frozen at x0, every loss = losses[0]
            break
        if steps:
            x = x_next
    if dead:
        losses = [losses[0]] * (steps + 1)
        kept = {k: x[0].numpy() for k in keep}
    elif steps:
        if steps in keep:
            kept[steps] = x[0].numpy()
        losses.append(float(loss_fn(x, f)))  # §7: one extra forward after the last update
    raw = x[0].numpy().astype(np.float32)
    seconds = time.perf_counter() - start
    params = {
        "steps": steps,
        "size": int(x0.shape[0]) if x0.shape[0] == x0.shape[1] else [int(x0.shape[0]), int(x0.shape[1])],
        "lr": lr,
        "seed": seed,
        "snapshots": sorted(keep),
        "objective": objective,
        "init": "seeded" if init is None else "given",
        "clip": clip,
        "compiled": compiled,
    }
    return FilterResult(layer=layer_name, filter_index=int(filter_index), raw=raw, image=deprocess(raw),
                        losses=np.asarray(losses, dtype=np.float64), snapshots=dict(sorted(kept.items())),
                        dead=dead, params=params, seconds=seconds)


def versions() -> str:
    """``framework_version`` of run.json: TensorFlow and Keras."""
    return f"tensorflow {tf.__version__}; keras {keras.__version__}"


def device_name() -> str:
    """Where TensorFlow placed the work: the first GPU if any, else the CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    return f"gpu:{gpus[0].name}" if gpus else "cpu"


def run_record(model: keras.Model, results: Sequence[FilterResult], *, extra: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """The run.json dictionary of a ``visualize_filters`` run (schema ``filtviz_core.runrecord``)."""
    if not results:
        raise FiltvizError("no results to record")
    layers = {r.layer for r in results}
    if len(layers) != 1:
        raise FiltvizError(f"one run.json holds one layer, got {sorted(layers)}")
    return runrecord.run_record(
        framework="tensorflow",
        framework_version=versions(),
        weights=getattr(model, "filtviz_weights", {"source": "unknown", "sha256": None}),
        layer=results[0].layer,
        filters=[r.filter_index for r in results],
        params=results[0].params,
        losses=np.stack([r.losses for r in results]),
        dead=[r.dead for r in results],
        seconds=sum(r.seconds for r in results),
        device=device_name(),
        extra={"tensorflow": tf.__version__, "keras": keras.__version__, "method": results[0].method, **(extra or {})},
    )
