"""Gradient ascent on the input image, and renders of any objective, exactly as SPEC.md states them.

Section names in the comments ("§6 Step") point at SPEC.md. Every run goes through the one loop of
``tf_reference/loop.py`` (§16) with the parts of its method (``tf_reference/method_parts.py``):
:func:`visualize_filters` one filter at a time (a batch of 1, or one diversity group of K pictures),
:func:`render` any objective with a batch of N pictures. The per-step work is one function, eager or
wrapped in ``tf.function`` (the default: the same numbers, faster; SPEC.md §13 says by how much).
"""

from __future__ import annotations

import contextlib
import numbers
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from filtviz_core import algorithm, methods, runrecord
from filtviz_core import objectives as core
from filtviz_core.algorithm import (
    DEFAULT_LR,
    DEFAULT_OBJECTIVE,
    DEFAULT_SEED,
    DEFAULT_SIZE,
    DEFAULT_SNAPSHOTS,
)
from filtviz_core.errors import FiltvizError
from filtviz_core.objectives import Objective
from filtviz_core.vgg16 import CONV_NAMES, POOL_NAMES, min_size_for
from tf_reference import keras_model, loop
from tf_reference.filter_options import DEFAULT_UNIT, check_diversity, check_unit
from tf_reference.method_parts import Parts, assemble
from tf_reference.model import caffe_preprocess, get_conv_layer, input_channels
from tf_reference.objectives import capture_fn, channel_arguments, compile_objective, shapes_of, structure

# (x, filter_index) -> scalar objective; x is (1, H, W, 3) float32 pixels.
ObjectiveFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
# (x, filter_index, lr) -> (loss at x, x after the step, gradient all zero?).
StepFn = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


@dataclass
class FilterResult:
    """One picture: the raw pixel image, its display image, loss history and snapshots.

    From :func:`visualize_filters` one per filter (``copy`` k of K with ``diversity=K``); from
    :func:`render` one per batch element (``filter_index`` = the element, ``objective`` = what was
    rendered)."""

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
    copy: int = 0  # the k-th of diversity=K pictures of this filter (0 with one picture per filter)
    objective: Objective | None = None  # render: the objective rendered (run.json records it)
    alpha: np.ndarray | None = None  # maco (§17.5): (H, W) float32 transparency in [0, 1]; None otherwise


# --- the one-filter functions of §13, as thin wrappers over the loop's parts ---------------------------


def _one_filter_capture(model: keras.Model, layer_name: str, objective: str):
    algorithm.check_objective(objective)
    get_conv_layer(model, layer_name)
    return capture_fn(model, [layer_name], objective)


def make_objective(model: keras.Model, layer_name: str, objective: str = DEFAULT_OBJECTIVE) -> ObjectiveFn:
    """The scalar that the ascent maximizes for one filter of ``layer_name`` (§4 Model input, §5 Objective)."""
    capture = _one_filter_capture(model, layer_name, objective)
    values = compile_objective(core.per_filter(layer_name, [0]), 1)

    def objective_fn(x: tf.Tensor, filter_index: tf.Tensor) -> tf.Tensor:
        channels = (tf.reshape(tf.cast(filter_index, tf.int32), [1]),)
        return values(capture(caffe_preprocess(x)), channels)[0]  # §4: caffe inside the differentiated function

    return objective_fn


def make_step_fn(
    model: keras.Model,
    layer_name: str,
    objective: str = DEFAULT_OBJECTIVE,
    *,
    compiled: bool = True,
    clip: bool = False,
) -> StepFn:
    """One ascent step (§6 Step): ``step(x, filter_index, lr) -> (loss(x), x_next, all(g == 0))``.

    The pixel method's step of the one loop (§16) for a batch of one. ``compiled=False`` runs eagerly;
    ``compiled=True`` wraps the same Python in ``tf.function`` (traced once per image size;
    ``filter_index`` and ``lr`` are tensors so they never retrace).
    """
    parts = assemble("pixel", 0, 0, DEFAULT_LR, clip=clip)
    fns = _build(
        model,
        parts,
        [layer_name],
        objective,
        core.per_filter(layer_name, [0]),
        1,
        compiled,
        capture=_one_filter_capture(model, layer_name, objective),
    )
    unused = tf.zeros([1, 2, 3])

    def step(x: tf.Tensor, filter_index: tf.Tensor, lr: tf.Tensor):
        channels = (tf.reshape(tf.cast(filter_index, tf.int32), [1]),)
        values, x_next, _, zero, _, _ = fns.step(x, (), unused, channels, (tf.cast(lr, tf.float32),))
        return values[0], x_next, zero[0]

    return step


def make_loss_fn(
    model: keras.Model, layer_name: str, objective: str = DEFAULT_OBJECTIVE, *, compiled: bool = True
) -> ObjectiveFn:
    """The objective alone (forward only), for the loss after the last step (§7 Loss history)."""
    objective_fn = make_objective(model, layer_name, objective)
    return tf.function(objective_fn) if compiled else objective_fn


# --- built functions, per model ------------------------------------------------------------------------

# Built functions per model, so a run of many filters traces tf.function once, not once per filter.
_FN_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached(model: keras.Model, key: tuple, build: Callable[[], Any]) -> Any:
    per_model = _FN_CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def _build(
    model: keras.Model,
    parts: Parts,
    layers: Sequence[str],
    activation: str,
    objective: Objective,
    batch: int,
    compiled: bool,
    capture=None,
) -> loop.Fns:
    capture = keras_model.capture(model, layers, activation) if capture is None else capture
    return loop.build(
        parts.parameterization,
        parts.transform,
        capture,
        compile_objective(objective, batch),
        parts.optimizer,
        compiled=compiled,
        preprocess=keras_model.preprocess_fn(model),
    )


def _fns(
    model: keras.Model,
    parts: Parts,
    layers: Sequence[str],
    activation: str,
    objective: Objective,
    batch: int,
    compiled: bool,
) -> loop.Fns:
    """The step and loss functions of (method parts, layers, objective's structure, batch size), built once."""
    p = parts.parameterization
    key = (
        "loop",
        parts.method,
        p.height,
        p.width,
        getattr(p, "options", None),
        getattr(parts.optimizer, "clip", None),
        tuple(layers),
        activation,
        structure(objective),
        int(batch),
        bool(compiled),
    )
    return _cached(model, key, lambda: _build(model, parts, layers, activation, structure(objective), batch, compiled))


# --- checks ------------------------------------------------------------------------------------------


def _check_common(
    model: keras.Model,
    layer_name: str,
    method: str,
    steps: int | None,
    lr: float | None,
    seed: int,
    objective: str,
    method_options: Mapping[str, Any] | methods.MethodOptions | None,
    init: np.ndarray | None,
    clip: bool,
) -> tuple[int, int, float, methods.MethodOptions | None]:
    """Validate everything but the image and filters: (filter count, steps, lr, fourier options or None)."""
    algorithm.check_objective(objective)
    steps, lr, options = methods.resolve(method, steps, lr, method_options)
    algorithm.check_seed(seed)
    methods.check_pixel_only(options, init_given=init is not None, clip=clip)
    return _filter_count(model, layer_name, objective), steps, lr, options


def _filter_count(model: keras.Model, layer_name: str, objective: str) -> int:
    """A Conv2D's filters (the spec's path), else the channels of the layer's resolved tensor (keras_model)."""
    layer = model.get_layer(layer_name) if layer_name in [x.name for x in model.layers] else None
    if isinstance(layer, keras.layers.Conv2D) or layer is None:
        return int(get_conv_layer(model, layer_name).filters)
    try:
        return keras_model.channel_count(model, layer_name, objective)
    except FiltvizError:
        if model.name == "vgg16":
            get_conv_layer(model, layer_name)  # the spec's one line: the conv layers
        raise


def _check_size(side: int, layer_name: str, options: methods.MethodOptions | None) -> None:
    """The picture the network sees must fit the layer: the image itself, or §15.3's transformed canvas."""
    if layer_name not in CONV_NAMES and layer_name not in POOL_NAMES:
        return  # another model's layer: too small a picture fails in one line when the loop runs
    seen = min(methods.seen_size(int(side), int(side), options))
    methods.check_seen_size(int(side), seen, min_size_for(layer_name), layer_name, options)


def _check_input_size(model: keras.Model, side: int, options: methods.MethodOptions | None) -> None:
    """A model with a fixed input size must see pictures of that size (one line otherwise)."""
    fixed = tuple(model.inputs[0].shape[1:3]) if getattr(model, "inputs", None) else ()
    if len(fixed) != 2 or None in fixed:
        return
    seen = tuple(methods.seen_size(side, side, options))
    if seen != tuple(int(d) for d in fixed):
        raise FiltvizError(
            f"the model takes {fixed[0]}x{fixed[1]} px pictures; at size {side} the network would see "
            f"{seen[0]}x{seen[1]} px (use size {fixed[0]} with the pixel method, or a model with an open input size)"
        )


def _check_whole_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, numbers.Real) or int(size) != size or size < 1:
        raise FiltvizError(f"size must be a whole number of pixels >= 1, got {size}")
    return int(size)


# --- visualize_filter(s) -------------------------------------------------------------------------------


def visualize_filter(
    model: keras.Model,
    layer_name: str,
    filter_index: int,
    *,
    method: str = methods.DEFAULT_METHOD,
    steps: int | None = None,
    size: int = DEFAULT_SIZE,
    lr: float | None = None,
    seed: int = DEFAULT_SEED,
    init: np.ndarray | None = None,
    snapshots: Iterable[int] | None = DEFAULT_SNAPSHOTS,
    objective: str = DEFAULT_OBJECTIVE,
    clip: bool = False,
    compiled: bool = True,
    method_options: Mapping[str, Any] | methods.MethodOptions | None = None,
    unit: str = DEFAULT_UNIT,
) -> FilterResult:
    """The image that maximizes one filter's mean response (SPEC.md), with its loss history.

    ``method``: ``"pixel"`` (§1-§14; 100 steps, lr 1.0 by default) or ``"fourier"`` (§15; 128 steps,
    lr 0.05); ``steps``/``lr`` None take the method's default; ``method_options`` overrides the
    fourier method's other parameters by name (``filtviz_core.methods.FourierOptions``).
    ``init`` (H, W, 3) float32 pixels replaces the seeded start of the pixel method (and
    ``size``/``seed``), so another framework can be started from the identical array.
    ``unit="neuron"`` maximizes the filter's centre neuron instead of its interior mean (§16.5).
    """
    _check_common(model, layer_name, method, steps, lr, seed, objective, method_options, init, clip)
    given = None if init is None else algorithm.check_init(init, None, input_channels(model))[None]
    return visualize_filters(
        model,
        layer_name,
        [filter_index],
        method=method,
        steps=steps,
        size=size,
        lr=lr,
        seed=seed,
        init=given,
        snapshots=snapshots,
        objective=objective,
        clip=clip,
        compiled=compiled,
        method_options=method_options,
        unit=unit,
    )[0]


def visualize_filters(
    model: keras.Model,
    layer_name: str,
    filters: str | int | Iterable[int],
    *,
    method: str = methods.DEFAULT_METHOD,
    steps: int | None = None,
    size: int = DEFAULT_SIZE,
    lr: float | None = None,
    seed: int = DEFAULT_SEED,
    init: np.ndarray | None = None,
    snapshots: Iterable[int] | None = DEFAULT_SNAPSHOTS,
    objective: str = DEFAULT_OBJECTIVE,
    clip: bool = False,
    compiled: bool = True,
    progress: bool = False,
    method_options: Mapping[str, Any] | methods.MethodOptions | None = None,
    unit: str = DEFAULT_UNIT,
    diversity: int = 1,
    diversity_weight: float | None = None,
) -> list[FilterResult]:
    """Several filters of one layer, one at a time as the notebook did (§2: filters are independent).

    ``filters``: ``"0-15"``, an index or a list; ``init``: (F, H, W, 3), one start per filter (pixel
    method). ``method``/``method_options``: as :func:`visualize_filter`. ``unit``: ``"channel"`` (the
    interior mean, §5) or ``"neuron"`` (the centre neuron). ``diversity=K``: K different pictures of
    each filter, run as one batch of K coupled by ``diversity_weight`` (default
    ``filtviz_core.objectives.DIVERSITY_WEIGHT``) times the diversity penalty (§16.5); the results are
    stacked filter by filter (filter f's k-th picture at ``position(f) * K + k``, ``copy=k``).
    Everything is validated before the first step, so bad input fails fast.
    """
    count, steps, lr, options = _check_common(
        model, layer_name, method, steps, lr, seed, objective, method_options, init, clip
    )
    check_unit(unit)
    copies, weight = check_diversity(diversity, diversity_weight)
    indices = algorithm.parse_filters(filters, count, layer_name)
    inits = None if init is None else algorithm.check_init(init, len(indices), input_channels(model))
    if inits is not None and copies > 1:
        raise FiltvizError(
            f"init gives one start per filter; diversity={copies} starts each of a filter's "
            f"{copies} pictures from its own seeded draw"
        )
    if options is not None:
        size = _check_whole_size(size)
    if isinstance(options, methods.MacoOptions):
        from filtviz_core.maco import check_channels

        check_channels(input_channels(model), options.magnitude)
    side = size if inits is None else min(inits.shape[1:3])
    _check_size(int(side), layer_name, options)
    _check_input_size(model, int(side), options)
    keep = algorithm.snapshot_steps(snapshots, int(steps))
    height, width = (int(size), int(size)) if inits is None else (int(inits.shape[1]), int(inits.shape[2]))
    iterator: Iterable[int] = range(len(indices))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=layer_name, unit="filter")
    results: list[FilterResult] = []
    for i in iterator:
        results += _run_filter(
            model,
            layer_name,
            indices[i],
            method=method,
            steps=int(steps),
            height=height,
            width=width,
            lr=float(lr),
            seed=int(seed),
            options=options,
            init=None if inits is None else inits[i : i + 1],
            keep=keep,
            objective=objective,
            clip=bool(clip),
            compiled=bool(compiled),
            unit=unit,
            copies=copies,
            weight=weight,
        )
    return results


def _run_filter(
    model: keras.Model,
    layer_name: str,
    f: int,
    *,
    method: str,
    steps: int,
    height: int,
    width: int,
    lr: float,
    seed: int,
    options: methods.MethodOptions | None,
    init: np.ndarray | None,
    keep: Sequence[int],
    objective: str,
    clip: bool,
    compiled: bool,
    unit: str,
    copies: int,
    weight: float,
) -> list[FilterResult]:
    """One filter through the loop: a batch of one (§3-§9, §15), or one diversity group of ``copies``."""
    target = core.per_filter(layer_name, [f] * copies, unit, diversity_group=copies, diversity_weight=weight)
    keys = algorithm.element_keys([f], copies)  # f itself, or (f, 2, k): §16.5
    parts = assemble(method, height, width, lr, options, clip=clip, init=init, channels=input_channels(model))
    fns = _fns(model, parts, [layer_name], objective, target, copies, compiled)
    out = loop.run(
        fns,
        parts.optimizer,
        parts.parameterization.start(keys, seed),
        parts.transform.matrices(keys, steps, seed),
        channel_arguments(target, copies),
        steps=steps,
        keep=keep,
    )
    if options is None:
        params = {
            "steps": steps,
            "size": height if height == width else [height, width],
            "lr": lr,
            "seed": seed,
            "snapshots": sorted(keep),
            "objective": objective,
            "init": "seeded" if init is None else "given",
            "clip": clip,
            "compiled": compiled,
        }
    else:
        params = {
            "method": method,
            "steps": steps,
            "size": height,
            "lr": lr,
            "seed": seed,
            "snapshots": sorted(keep),
            "objective": objective,
            "init": "seeded",
            "seen_size": list(parts.seen_size),
            "compiled": compiled,
            **options.as_params(),
        }
    if unit != DEFAULT_UNIT:
        params["unit"] = unit
    if copies != 1:
        params["diversity"] = copies
        params["diversity_weight"] = weight
    return _results(out, layer_name, method, params, [int(f)] * copies, copies=list(range(copies)))


# --- render ------------------------------------------------------------------------------------------


def render(
    model: keras.Model,
    objective: Objective,
    *,
    batch: int = 1,
    method: str = methods.DEFAULT_METHOD,
    steps: int | None = None,
    size: int = DEFAULT_SIZE,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
    lr: float | None = None,
    snapshots: Iterable[int] | None = DEFAULT_SNAPSHOTS,
    activation: str = DEFAULT_OBJECTIVE,
    method_options: Mapping[str, Any] | methods.MethodOptions | None = None,
    compiled: bool = True,
) -> list[FilterResult]:
    """Pictures of any objective (``tf_reference.objectives``): a batch of ``batch`` pictures optimized in
    ONE batch (a diversity term couples them), SPEC.md §16.3.

    Element i starts from the seeded draw of key i (``initial_images(range(batch), size, seed)``, or
    ``initial_spectra`` for the fourier method) and, with the fourier method, is transformed by the
    draws of key i. ``activation``: ``"pre_relu"`` (every layer of the objective must be a conv) or
    ``"post_relu"`` (the Keras layer outputs). Returns one :class:`FilterResult` per element
    (``filter_index = i``, ``layer`` = the objective's first layer), as ``visualize_filters`` does.
    """
    objective = core.check_objective(objective)
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 1:
        raise FiltvizError(f"batch must be a whole number >= 1 (pictures to render), got {batch!r}")
    batch = int(batch)
    if activation not in algorithm.OBJECTIVES:
        raise FiltvizError(f"unknown activation {activation!r}; valid: {', '.join(algorithm.OBJECTIVES)}")
    steps, lr, options = methods.resolve(method, steps, lr, method_options)
    algorithm.check_seed(seed)
    size = _check_whole_size(size)
    keep = algorithm.snapshot_steps(snapshots, int(steps))
    layers = objective.layers()
    if isinstance(options, methods.MacoOptions):
        from filtviz_core.maco import check_channels

        check_channels(input_channels(model), options.magnitude)
    parts = assemble(method, size, size, lr, options, channels=input_channels(model))
    _check_render_shapes(model, objective, layers, activation, parts, size, options, batch)
    fns = _fns(model, parts, layers, activation, objective, batch, bool(compiled))
    keys = list(range(batch))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=max(int(steps), 1), desc=str(objective)[:40], unit="step")
    try:
        out = loop.run(
            fns,
            parts.optimizer,
            parts.parameterization.start(keys, int(seed)),
            parts.transform.matrices(keys, int(steps), int(seed)),
            channel_arguments(objective, batch),
            steps=int(steps),
            keep=keep,
            progress=None if bar is None else (lambda: bar.update(1)),
        )
    finally:
        if bar is not None:
            bar.close()
    params: dict[str, Any] = {
        "method": method,
        "steps": int(steps),
        "size": size,
        "lr": float(lr),
        "seed": int(seed),
        "snapshots": sorted(keep),
        "objective": str(objective),
        "activation": activation,
        "init": "seeded",
        "batch": batch,
        "compiled": bool(compiled),
    }
    if options is not None:
        params.update(seen_size=list(parts.seen_size), **options.as_params())
    return _results(out, layers[0], method, params, list(range(batch)), objective=objective)


def _results(
    out: Any,
    layer: str,
    method: str,
    params: dict[str, Any],
    filters: Sequence[int],
    *,
    copies: Sequence[int] | None = None,
    objective: Objective | None = None,
) -> list[FilterResult]:
    """One FilterResult per batch element of a loop's output: element i shows ``filters[i]`` (its copy
    ``copies[i]`` within a diversity group), with an equal share of the run's seconds."""
    show = methods.display(method)
    return [
        FilterResult(
            layer=layer,
            filter_index=int(f),
            raw=out.raw[i],
            image=show(out.raw[i]),
            losses=out.losses[i],
            snapshots={s: out.snapshots[s][i] for s in out.snapshots},
            dead=bool(out.dead[i]),
            params=dict(params),
            seconds=out.seconds / len(filters),
            method=method,
            copy=0 if copies is None else copies[i],
            objective=objective,
            alpha=None if out.alpha is None else out.alpha[i],
        )
        for i, f in enumerate(filters)
    ]


def _check_render_shapes(
    model: keras.Model,
    objective: Objective,
    layers: Sequence[str],
    activation: str,
    parts: Parts,
    size: int,
    options: methods.MethodOptions | None,
    batch: int,
) -> None:
    """Every term against its layer's captured shape at the size the network sees, and the batch."""
    seen_h, seen_w = parts.seen_size
    for layer in layers:
        if layer in CONV_NAMES or layer in POOL_NAMES:
            methods.check_seen_size(size, min(seen_h, seen_w), min_size_for(layer), layer, options)
    capture = keras_model.capture(model, layers, activation)  # unknown layers, no pre-activation: one line
    try:
        acts = capture(keras_model.preprocess_fn(model)(tf.zeros([1, seen_h, seen_w, input_channels(model)])))
    except (ValueError, tf.errors.InvalidArgumentError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FiltvizError(f"size {size} px does not fit {', '.join(layers)}: {first}") from None
    shapes = shapes_of(acts)
    for layer, (_, hw) in shapes.items():
        if hw is not None and min(hw) < 1:
            raise FiltvizError(f"size {size} px is too small for {layer}: its map would be empty")
    objective.check(shapes, batch)


def versions() -> str:
    """``framework_version`` of run.json: TensorFlow and Keras."""
    return f"tensorflow {tf.__version__}; keras {keras.__version__}"


def device_name() -> str:
    """Where TensorFlow placed the work: the first GPU if any, else the CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    return f"gpu:{gpus[0].name}" if gpus else "cpu"


def run_record(
    model: keras.Model, results: Sequence[FilterResult], *, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run.json dictionary of a ``visualize_filters`` or ``render`` run (schema ``filtviz_core.runrecord``;
    a render adds ``objective``, the objective's terms and words)."""
    if not results:
        raise FiltvizError("no results to record")
    layers = {r.layer for r in results}
    if len(layers) != 1:
        raise FiltvizError(f"one run.json holds one layer, got {sorted(layers)}")
    extra = dict(extra or {})
    if results[0].objective is not None:
        extra["objective"] = results[0].objective.as_record()  # render: what was rendered
    activation = results[0].params.get("activation", results[0].params.get("objective", DEFAULT_OBJECTIVE))
    extra.setdefault("model", keras_model.describe_model(model))
    with contextlib.suppress(FiltvizError):  # what was optimized, as the torch side records it
        layers = results[0].objective.layers() if results[0].objective is not None else [results[0].layer]
        extra.setdefault("target", keras_model.resolve(model, layers[0], activation).describe())
    if any(r.copy for r in results):
        extra["copies"] = [r.copy for r in results]  # diversity=K: the k of each picture
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
        extra={"tensorflow": tf.__version__, "keras": keras.__version__, "method": results[0].method, **extra},
    )
