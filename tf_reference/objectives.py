"""Objectives in TensorFlow: what the loop maximizes, one value per batch element (SPEC.md §5, §16).

The objectives and their algebra are framework-free (``filtviz_core.objectives``, re-exported here
with the same names and meanings: ``channel``, ``neuron``, ``direction``, ``diversity``, ``sum``,
``Objective``). This module evaluates one on TensorFlow tensors:

* :func:`capture_fn` builds the one forward pass that captures every layer an objective names
  (``pre_relu``: the conv output before its ReLU, ``conv(h, K) + b`` as §5 states it;
  ``post_relu``: the Keras layer output);
* :func:`compile_objective` turns an objective into ``values(acts, channels) -> (B,)`` float32,
  term by term as ``filtviz_core.objectives`` defines them. The channel of every ``channel`` /
  ``neuron`` term is an argument (:func:`channel_arguments`), not a constant, so a ``tf.function``
  built for one filter serves every filter of the layer without tracing again;
* :func:`evaluate` and :func:`objective_values` check an objective against its layers and batch
  and evaluate it on given tensors or on pictures.

    >>> from tf_reference import objectives as obj
    >>> print(obj.channel("block4_conv3", 12) - 100 * obj.diversity("block4_conv3"))
    channel(block4_conv3, 12) - 100 * diversity(block4_conv3)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from filtviz_core import algorithm
from filtviz_core import objectives as core
from filtviz_core.errors import FiltvizError
from filtviz_core.objectives import (  # the constructors users write
    DIVERSITY_WEIGHT,
    Objective,
    Term,
    channel,
    direction,
    diversity,
    neuron,
    per_filter,
    sum,  # noqa: A004
)
from tf_reference.model import caffe_preprocess, conv_layer_names, get_layer, submodel

__all__ = [
    "DIVERSITY_WEIGHT",
    "Objective",
    "capture_fn",
    "channel",
    "channel_arguments",
    "compile_objective",
    "direction",
    "diversity",
    "evaluate",
    "neuron",
    "objective_values",
    "per_filter",
    "shapes_of",
    "structure",
    "sum",
]

# {layer: captured tensor} -> (B,) values; ``channels`` holds one (B,) int32 tensor per channel/neuron term.
Compiled = Callable[[Mapping[str, tf.Tensor], Sequence[tf.Tensor]], tf.Tensor]
Capture = Callable[[tf.Tensor], dict[str, tf.Tensor]]


# --- capture: the network's tensors the objective reads --------------------------------------------


def capture_fn(model: keras.Model, layers: Sequence[str], activation: str = algorithm.DEFAULT_OBJECTIVE) -> Capture:
    """``m`` (the caffe-preprocessed batch, §4) -> ``{layer: tensor}`` for every layer, in ONE forward pass.

    ``activation="pre_relu"``: ``A = conv(h, K) + b`` with ``h`` the conv layer's input (§5; for the
    first conv, ``m`` itself), so every layer must be a conv; ``"post_relu"``: the Keras layer output
    (any layer). Several layers share one Functional sub-model with several outputs.
    """
    algorithm.check_objective(activation)
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise FiltvizError("an objective needs at least one layer")
    if activation == "pre_relu":
        convs = conv_layer_names(model)
        for name in layers:
            if name not in convs:
                get_layer(model, name)  # an unknown name: the list of every layer
                raise FiltvizError(
                    f"activation='pre_relu' needs conv layers and {name} is not one (use "
                    f"activation='post_relu', or a conv layer: {', '.join(convs)})"
                )
        conv = [model.get_layer(name) for name in layers]
        needed = [c for c in conv if c.input is not model.input]
        if len(needed) == 1:
            # The single-layer case exactly as §13 builds it: a sub-model to the conv layer's input.
            to_inputs = keras.Model(model.input, needed[0].input)
        elif needed:
            to_inputs = keras.Model(model.input, [c.input for c in needed])
        else:
            to_inputs = None

        def capture(m: tf.Tensor) -> dict[str, tf.Tensor]:
            hs = [] if to_inputs is None else to_inputs(m, training=False)
            hs = list(hs) if isinstance(hs, (list, tuple)) else [hs]
            inputs = {c.name: h for c, h in zip(needed, hs)}
            return {c.name: c.convolution_op(inputs.get(c.name, m), c.kernel) + c.bias for c in conv}

        return capture
    for name in layers:
        get_layer(model, name)
    if len(layers) == 1:
        to_output = submodel(model, layers[0])  # the single-layer case as §13 builds it

        def capture_one(m: tf.Tensor) -> dict[str, tf.Tensor]:
            return {layers[0]: to_output(m, training=False)}

        return capture_one
    probe = keras.Model(model.input, [model.get_layer(name).output for name in layers])

    def capture_many(m: tf.Tensor) -> dict[str, tf.Tensor]:
        return dict(zip(layers, probe(m, training=False)))

    return capture_many


def shapes_of(acts: Mapping[str, tf.Tensor | np.ndarray]) -> dict[str, tuple[int, tuple[int, int] | None]]:
    """``{layer: (channels, (h, w) or None)}`` of captured tensors (NHWC maps or (B, C) units)."""
    out: dict[str, tuple[int, tuple[int, int] | None]] = {}
    for layer, a in acts.items():
        shape = tuple(int(d) for d in a.shape)
        if len(shape) == 4:
            out[layer] = (shape[3], (shape[1], shape[2]))
        elif len(shape) == 2:
            out[layer] = (shape[1], None)
        else:
            raise FiltvizError(f"{layer}: an objective reads (B, H, W, C) maps or (B, C) units, got shape {shape}")
    return out


# --- evaluation --------------------------------------------------------------------------------------


def structure(objective: Objective) -> Objective:
    """The objective without its channel indices: what a compiled function depends on (its cache key)."""
    return Objective(
        tuple(
            (w, dataclasses.replace(t, channel=None) if t.kind in ("channel", "neuron") else t)
            for w, t in objective.terms
        )
    )


def channel_arguments(objective: Objective, batch_size: int) -> tuple[tf.Tensor, ...]:
    """The ``channels`` argument of a compiled objective: per channel/neuron term, the (B,) int32
    channel each element maximizes."""
    return tuple(
        tf.constant(np.asarray(t.channel_for(batch_size), np.int32))
        for _, t in objective.terms
        if t.kind in ("channel", "neuron")
    )


def _per_element(a: tf.Tensor, batch_size: int, pick: Callable[[tf.Tensor, int], tf.Tensor]) -> tf.Tensor:
    """(B,) from one scalar per element, each computed on its own as the one-filter objective did."""
    return tf.stack([pick(a, i) for i in range(batch_size)])


def _term_fn(term: Term, batch_size: int) -> Callable[[tf.Tensor, tf.Tensor | None], tf.Tensor]:
    """One term: (captured tensor, its channels or None) -> (B,) float32."""
    if term.kind == "channel":

        def channel_value(a: tf.Tensor, ch: tf.Tensor) -> tf.Tensor:
            if a.shape.rank == 2:
                return _per_element(a, batch_size, lambda t, i: t[i, ch[i]])
            rows, cols = algorithm.interior(int(a.shape[1]), int(a.shape[2]))  # §5 border rule
            return _per_element(a, batch_size, lambda t, i: tf.reduce_mean(t[i, rows, cols, ch[i]]))

        return channel_value
    if term.kind == "neuron":

        def neuron_value(a: tf.Tensor, ch: tf.Tensor) -> tf.Tensor:
            if a.shape.rank == 2:
                return _per_element(a, batch_size, lambda t, i: t[i, ch[i]])
            y, x = term.position(int(a.shape[1]), int(a.shape[2]))
            return _per_element(a, batch_size, lambda t, i: t[i, y, x, ch[i]])

        return neuron_value
    if term.kind == "direction":
        unit = tf.constant(term.unit_vector())

        def direction_value(a: tf.Tensor, _: tf.Tensor | None) -> tf.Tensor:
            a = tf.cast(a, tf.float32)
            if a.shape.rank == 2:
                return tf.linalg.matvec(a, unit)
            rows, cols = algorithm.interior(int(a.shape[1]), int(a.shape[2]))
            projected = tf.tensordot(a[:, rows, cols, :], unit, axes=[[3], [0]])  # (B, h', w')
            return tf.reduce_mean(projected, axis=[1, 2])

        return direction_value
    if term.kind == "diversity":
        group = term.group or batch_size

        def diversity_value(a: tf.Tensor, _: tf.Tensor | None) -> tf.Tensor:
            a = tf.cast(a, tf.float32)
            c = int(a.shape[-1])
            flat = tf.reshape(a, [batch_size, -1, c])  # (B, positions, C); units are one position
            grams = tf.reshape(tf.matmul(flat, flat, transpose_a=True), [batch_size, c * c])  # G_i = F_i^T F_i
            norm = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(grams), axis=1, keepdims=True), core.GRAM_EPS))
            g = tf.reshape(grams / norm, [batch_size // group, group, c * c])
            sim = tf.matmul(g, g, transpose_b=True)  # (B / group, group, group): <G_i, G_j>
            own = tf.linalg.diag_part(sim)
            return tf.reshape((tf.reduce_sum(sim, axis=2) - own) / float(group), [batch_size])

        return diversity_value
    raise FiltvizError(f"unknown objective kind {term.kind!r}; valid: {', '.join(core.KINDS)}")


def compile_objective(objective: Objective, batch_size: int) -> Compiled:
    """``objective`` as ``values(acts, channels) -> (B,)`` float32 (``channels``: :func:`channel_arguments`).

    A lone term of weight 1 is returned as it is, so §5's one-filter objective keeps its exact
    arithmetic; otherwise the weighted terms are summed in order (``value * weight``, left to right).
    ``batch=i`` sets the term to 0 for every other element. The channel indices written in the
    objective are not used: they come as the ``channels`` argument.
    """
    core.check_objective(objective)
    for _, term in objective.terms:
        if term.tokens is not None:
            raise FiltvizError(
                f"{term.describe()}: tokens={term.tokens} reads a vision transformer's token layer; tf_reference "
                "has none (Keras maps and units take the default, tokens=patches)"
            )
    parts = []
    slot = 0
    for weight, term in objective.terms:
        takes = term.kind in ("channel", "neuron")
        fn = _term_fn(term, batch_size)
        if term.batch is not None:
            fn = _restricted(fn, term.batch, batch_size)
        parts.append((float(weight), term.layer, fn, slot if takes else None))
        slot += takes

    def value(part, acts, channels):
        _, layer, fn, at = part
        return fn(acts[layer], None if at is None else channels[at])

    if len(parts) == 1 and parts[0][0] == 1.0:
        return lambda acts, channels: value(parts[0], acts, channels)

    def total(acts: Mapping[str, tf.Tensor], channels: Sequence[tf.Tensor]) -> tf.Tensor:
        out = None
        for part in parts:
            v = value(part, acts, channels) * part[0]
            out = v if out is None else out + v
        return out

    return total


def _restricted(fn, batch: int, batch_size: int):
    mask = tf.constant(np.arange(batch_size) == batch)

    def only(a, ch):
        v = fn(a, ch)
        return tf.where(mask, v, tf.zeros_like(v))

    return only


def evaluate(objective: Objective, acts: Mapping[str, tf.Tensor | np.ndarray]) -> tf.Tensor:
    """``objective`` on captured tensors ``{layer: (B, H, W, C) or (B, C)}``: (B,) float32, after
    checking every term against its layer and the batch (one line naming what is wrong)."""
    core.check_objective(objective)
    missing = [layer for layer in objective.layers() if layer not in acts]
    if missing:
        raise FiltvizError(f"{objective} reads {missing[0]}, which was not captured (given: {', '.join(acts)})")
    tensors = {layer: tf.convert_to_tensor(acts[layer], tf.float32) for layer in objective.layers()}
    sizes = {int(t.shape[0]) for t in tensors.values()}
    if len(sizes) != 1:
        raise FiltvizError(f"the captured tensors hold different batch sizes: {sorted(sizes)}")
    (batch_size,) = sizes
    objective.check(shapes_of(tensors), batch_size)
    return compile_objective(objective, batch_size)(tensors, channel_arguments(objective, batch_size))


def objective_values(
    model: keras.Model,
    objective: Objective,
    images: tf.Tensor | np.ndarray,
    activation: str = algorithm.DEFAULT_OBJECTIVE,
) -> tf.Tensor:
    """``objective`` for RGB pixel pictures ``images`` (B, H, W, 3): (B,) float32, one forward pass
    (caffe preprocessing, §4, then :func:`capture_fn`)."""
    core.check_objective(objective)
    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape.rank != 4 or int(x.shape[-1]) != 3:
        raise FiltvizError(f"images must be (B, H, W, 3) RGB pixels, got shape {tuple(x.shape)}")
    acts = capture_fn(model, objective.layers(), activation)(caffe_preprocess(x))
    return evaluate(objective, acts)
