"""Feature accentuation in TensorFlow: :func:`accentuate`, what in one photo drives each filter (SPEC.md §19).

Hamblin et al. 2024 (Horama's ``accentuation``): each filter's picture starts from the photo instead of
noise, and the objective gains a penalty tying the picture to that start:
``value = unit objective - strength * mean(((picture - start picture) / 255) ** 2)``.

The one loop (``tf_reference/loop.py``) with the method's own parts (``method_parts.assemble``); only the
start (``filtviz_core.accentuate.start``, the same numpy array torch_filtviz starts from) and the
objective (:class:`Tether`) differ. One filter at a time, as :func:`~tf_reference.visualize_filters`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from filtviz_core import accentuate as core
from filtviz_core import algorithm, methods
from filtviz_core import objectives as core_objectives
from filtviz_core.algorithm import DEFAULT_OBJECTIVE, DEFAULT_SEED, DEFAULT_SIZE, DEFAULT_SNAPSHOTS, Key
from filtviz_core.errors import FiltvizError
from filtviz_core.fourier import PIXEL_MAX, to_uint8
from tf_reference import keras_model, loop
from tf_reference.ascent import (
    FilterResult,
    _check_common,
    _check_input_size,
    _check_size,
    _check_whole_size,
    _results,
)
from tf_reference.filter_options import DEFAULT_UNIT, check_unit
from tf_reference.loop import Transform
from tf_reference.method_parts import assemble
from tf_reference.objectives import Compiled, channel_arguments, compile_objective, structure


class Tether:
    """The penalty that ties each picture to its start, as a wrapper of the loop's transform and objective.

    Inside one step the loop hands the picture to the transform, then the captured tensors of what it
    returns to the objective (``tf_reference/loop.py``'s ``forward``), so :meth:`transform` keeps the
    picture and :meth:`objective` subtracts ``strength * distance(picture, reference)`` (for V views, from
    every view's value, so their mean carries it once). ``strength == 0`` leaves the objective as it is.
    """

    def __init__(self, reference: tf.Tensor, strength: float) -> None:
        self.reference = tf.constant(reference, tf.float32)  # (1, H, W, 3) pixel units: the start picture
        self.strength = float(strength)
        self.picture: tf.Tensor | None = None

    def distance(self, picture: tf.Tensor) -> tf.Tensor:
        """(B,) float32: the mean of ``((picture - reference) / 255) ** 2`` over each picture."""
        d = (picture - self.reference) / PIXEL_MAX
        return tf.reduce_mean(tf.square(d), axis=[1, 2, 3])

    def transform(self, inner: Transform) -> Transform:
        """``inner``, keeping the picture it is given (never the identity shortcut, so it always sees it)."""
        tether = self

        class Seen:
            identity = False
            views = int(getattr(inner, "views", 1))

            def matrices(self, keys: Sequence[Key], steps: int, seed: int):
                return inner.matrices(keys, steps, seed)

            def apply(self, picture: tf.Tensor, matrix) -> tf.Tensor:
                tether.picture = picture
                return picture if inner.identity else inner.apply(picture, matrix)

        return Seen()

    def objective(self, values: Compiled) -> Compiled:
        """``values`` minus the penalty of the picture last seen."""
        if self.strength == 0.0:
            return values

        def tethered(acts, channels):
            assert self.picture is not None, "the transform runs before the objective"
            return values(acts, channels) - self.strength * self.distance(self.picture)

        return tethered


def accentuate(
    model: keras.Model,
    layer_name: str,
    filters: str | int | Iterable[int],
    photo: core.PhotoInput,
    *,
    method: str = "fourier",
    strength: float | None = None,
    steps: int | None = None,
    size: int = DEFAULT_SIZE,
    lr: float | None = None,
    seed: int = DEFAULT_SEED,
    snapshots: Iterable[int] | None = DEFAULT_SNAPSHOTS,
    objective: str = DEFAULT_OBJECTIVE,
    unit: str = DEFAULT_UNIT,
    clip: bool = False,
    compiled: bool = True,
    progress: bool = False,
    method_options: Mapping[str, Any] | methods.MethodOptions | None = None,
) -> list[FilterResult]:
    """Feature accentuation (SPEC.md §19): each filter's picture starts from ``photo`` and is optimized to
    excite the filter while ``strength`` times the mean squared difference to its start (``[0, 1]`` units)
    is subtracted from the objective. The same arguments and start as ``torch_filtviz.accentuate``;
    returns one :class:`~tf_reference.FilterResult` per filter, as :func:`~tf_reference.visualize_filters`,
    with ``image`` the picture as it is, rounded (never contrast-stretched).

    >>> import tf_reference as tfr
    >>> model = tfr.load_vgg16("keras")  # doctest: +SKIP
    >>> res = tfr.accentuate(model, "block4_conv3", "0-1", "photo.jpg", steps=20, size=64)  # doctest: +SKIP
    >>> res[0].image.shape  # doctest: +SKIP
    (64, 64, 3)
    """
    strength = core.check_strength(strength)
    count, steps, lr, options = _check_common(
        model, layer_name, method, steps, lr, seed, objective, method_options, None, clip
    )
    check_unit(unit)
    indices = algorithm.parse_filters(filters, count, layer_name)
    size = _check_whole_size(size)
    if keras_model.input_channels(model) != 3:
        raise FiltvizError(
            f"accentuate starts from an RGB photo; this model takes {keras_model.input_channels(model)} "
            "input channels (3 needed)"
        )
    _check_size(size, layer_name, options)
    _check_input_size(model, size, options)
    picture = core.load_photo(photo, size)
    keep = algorithm.snapshot_steps(snapshots, int(steps))

    parts = assemble(method, size, size, lr, options, clip=clip)
    theta0 = core.start(method, picture, 1, options, getattr(parts.parameterization, "magnitude", None))
    tether = Tether(parts.parameterization.picture(tf.constant(theta0)), strength)
    shape = core_objectives.per_filter(layer_name, [0], unit)
    fns = loop.build(
        parts.parameterization,
        tether.transform(parts.transform),
        keras_model.capture(model, [layer_name], objective),
        tether.objective(compile_objective(structure(shape), 1)),
        parts.optimizer,
        compiled=bool(compiled),
        preprocess=keras_model.preprocess_fn(model),
    )
    params: dict[str, Any] = {
        "method": method,
        "steps": int(steps),
        "size": size,
        "lr": float(lr),
        "seed": int(seed),
        "snapshots": sorted(keep),
        "objective": objective,
        **core.run_params(photo, strength),
        "compiled": bool(compiled),
    }
    if options is None:
        params["clip"] = bool(clip)
    else:
        params.update(seen_size=list(parts.seen_size), **options.as_params())
    if unit != DEFAULT_UNIT:
        params["unit"] = unit

    iterator: Iterable[int] = indices
    if progress:
        from tqdm import tqdm

        iterator = tqdm(indices, desc=layer_name, unit="filter")
    results: list[FilterResult] = []
    for f in iterator:
        out = loop.run(
            fns,
            parts.optimizer,
            theta0,
            parts.transform.matrices([f], int(steps), int(seed)),
            channel_arguments(core_objectives.per_filter(layer_name, [f], unit), 1),
            steps=int(steps),
            keep=keep,
        )
        results += _results(out, layer_name, method, params, [int(f)])
    for r in results:
        r.image = to_uint8(r.raw)
    return results
