"""The one optimization loop of tf_reference, with its seams (SPEC.md §16).

Every method is the same loop over steps with four injected parts (assembled per method in
``tf_reference/method_parts.py``):

* a **parameterization**: the parameters and the picture they make, in pixel units (``pixel``: the
  picture itself, §2-§3; ``fourier``: a spectrum, §15.2);
* a **transform**: what the network sees of the picture at step k (the identity, or §15.3's affine
  resampling with the numpy draws of ``filtviz_core.transforms``);
* an **objective**: the captured tensors -> one value per batch element (``tf_reference.objectives``);
* an **optimizer**: §6's RMS-normalised step (optionally clipped) or §15.6's Adam.

The loop runs a batch of B elements at once (B = 1 for ``visualize_filters``' one filter at a time,
B = N for ``render``). The per-step work is one function (:func:`build`), eager or in ``tf.function``;
the loop itself (:func:`run`) is plain Python over steps, and keeps the order of §7-§9 and
§15.5-§15.8: loss and gradient at step k, snapshot of the picture after k updates, the dead test at
step 0, one extra forward after the last update.

Views: a transform with ``views = V`` (the maco method's crops, §17.3) returns V views of each picture,
view-major (row ``v * B + i``); the objective is evaluated on each view's B rows and element i's value is
the mean over its V views. Transparency: a parameterization with ``transparency = True`` (maco) makes the
step also return the gradient with respect to the picture, summed in absolute value over the steps
(§17.5); otherwise it is not computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import tensorflow as tf

from filtviz_core.algorithm import Key
from tf_reference.model import caffe_preprocess
from tf_reference.objectives import Capture, Compiled


class Parameterization(Protocol):
    """What is optimized, and the picture it makes."""

    identity: bool  # the parameters ARE the picture (no op between them)

    def start(self, keys: Sequence[Key], seed: int) -> np.ndarray:
        """(B, ...) float32 starting parameters, element i seeded by ``keys[i]``."""

    def picture(self, params: tf.Tensor) -> tf.Tensor:
        """Parameters -> (B, H, W, 3) RGB pictures in pixel units."""


class Transform(Protocol):
    """What the network sees of the picture at step k."""

    identity: bool

    def matrices(self, keys: Sequence[Key], steps: int, seed: int) -> np.ndarray:
        """(steps + 1, B, 2, 3) float32: the affine map of each step and element."""

    def apply(self, picture: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
        """(B, H, W, 3) pictures -> (B, Ho, Wo, 3), element i through ``matrix[i]``."""


class Optimizer(Protocol):
    """How a gradient moves the parameters (ascending)."""

    def state(self, params: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """The starting state (Adam: m = v = 0; the RMS step: none)."""

    def constants(self, k: int) -> tuple[tf.Tensor, ...]:
        """The float32 constants of step k (the lr; Adam's bias corrections)."""

    def update(
        self, params: tf.Tensor, g: tf.Tensor, state: tuple[tf.Tensor, ...], consts: tuple[tf.Tensor, ...]
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, ...]]:
        """(parameters after the step, the new state)."""


@dataclass(frozen=True)
class Fns:
    """The built per-step functions of one (parts, objective, batch size)."""

    # (params, state, matrix, channels, consts)
    #   -> (values (B,), params', state', all(g == 0) per element, picture, d values / d picture or None)
    step: Callable
    loss: Callable  # (params, matrix, channels) -> values (B,)
    picture: Callable  # params -> picture


def build(
    parameterization: Parameterization,
    transform: Transform,
    capture: Capture,
    objective: Compiled,
    optimizer: Optimizer,
    *,
    compiled: bool = True,
    preprocess: Callable[[tf.Tensor], tf.Tensor] = caffe_preprocess,
) -> Fns:
    """The step (§6 / §15.5-§15.6) and the loss alone (§7 / §15.7), eager or in ``tf.function``.

    Order inside the tape: picture = parameterization(params); seen = transform(picture, matrix);
    m = caffe(seen) (§4); acts = capture(m); values = objective(acts, channels). The gradient is that
    of the sum of the values, so each element gets its own value's gradient (plus what couples
    the batch: a diversity term)."""

    views = int(getattr(transform, "views", 1))
    wants_alpha = bool(getattr(parameterization, "transparency", False))

    def forward(params: tf.Tensor, matrix: tf.Tensor, channels: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        picture = parameterization.picture(params)
        seen = picture if transform.identity else transform.apply(picture, matrix)
        acts = capture(preprocess(seen))  # §4: caffe (VGG16; the model's own scaling otherwise) inside the tape
        if views == 1:
            return objective(acts, channels), picture
        n = int(picture.shape[0])
        per_view = [
            objective({name: a[v * n : (v + 1) * n] for name, a in acts.items()}, channels) for v in range(views)
        ]
        return tf.reduce_mean(tf.stack(per_view), axis=0), picture  # each element: the mean over its views

    def step(params, state, matrix, channels, consts):
        with tf.GradientTape() as tape:
            tape.watch(params)
            values, picture = forward(params, matrix, channels)
        g_picture = None
        if wants_alpha:
            g, g_picture = tape.gradient(values, [params, picture])
        else:
            g = tape.gradient(values, params)
        params_next, state_next = optimizer.update(params, g, state, consts)
        batch = int(params.shape[0])
        zero = tf.reduce_all(tf.equal(tf.reshape(g, [batch, -1]), 0.0), axis=1)  # §9's dead test, per element
        return values, params_next, state_next, zero, picture, g_picture

    def loss_only(params, matrix, channels):
        return forward(params, matrix, channels)[0]

    def picture_only(params):
        return parameterization.picture(params)

    wrap = tf.function if compiled else (lambda fn: fn)
    return Fns(wrap(step), wrap(loss_only), (lambda p: p) if parameterization.identity else wrap(picture_only))


@dataclass
class Outcome:
    """What the loop returns for a batch: per element the picture, losses, snapshots and dead flag."""

    raw: np.ndarray  # (B, H, W, 3) float32, the picture after the last step
    losses: np.ndarray  # (B, steps + 1) float64
    snapshots: dict[int, np.ndarray]  # step -> (B, H, W, 3) float32
    dead: np.ndarray  # (B,) bool
    seconds: float
    alpha: np.ndarray | None = None  # (B, H, W) float32 transparency in [0, 1] (maco, §17.5), else None


def run(
    fns: Fns,
    optimizer: Optimizer,
    params0: np.ndarray,
    matrices: np.ndarray,
    channels: tuple[tf.Tensor, ...],
    *,
    steps: int,
    keep: Iterable[int],
    progress: Any = None,
) -> Outcome:
    """The loop of §6-§9 / §15.5-§15.8 for a batch of B elements.

    ``losses[k]`` comes from the forward pass of step k (under draw k), ``losses[steps]`` from one extra
    forward after the last update (under draw ``steps``); ``snapshots[k]`` is the picture after k
    updates. An element whose gradient at step 0 is zero everywhere is dead (§9, §15.8): frozen at its
    start, every loss = its first. ``steps = 0`` still takes the gradient at the start, never applied.
    ``progress``: a callable called once per step (a progress bar's update), or None.
    """
    keep = set(keep)
    start = time.perf_counter()
    params = tf.constant(params0)
    state = optimizer.state(params)
    batch = int(params.shape[0])
    losses: list[np.ndarray] = []
    kept: dict[int, np.ndarray] = {}
    dead = np.zeros(batch, bool)
    transparency: np.ndarray | None = None
    for k in range(max(steps, 1)):
        values, params_next, state_next, zero, picture, g_picture = fns.step(
            params, state, tf.nest.map_structure(tf.constant, matrices[k]), channels, optimizer.constants(k)
        )
        if g_picture is not None:
            size = np.abs(g_picture.numpy()).astype(np.float64)
            transparency = np.zeros_like(size) if transparency is None else transparency
            if steps:
                transparency += size
        if k in keep:
            kept[k] = picture.numpy()  # §8 / §15.7: the picture after k updates
        losses.append(values.numpy())  # §7 Loss history
        if k == 0:
            dead = np.asarray(zero.numpy(), bool)
            if dead.all():
                break  # §9: every element frozen at its start
        if steps:
            if dead.any():  # freeze the dead elements, move the others
                alive = tf.reshape(tf.constant(~dead), [batch] + [1] * (params.shape.rank - 1))
                params_next = tf.where(alive, params_next, params)
            params, state = params_next, state_next
        if progress is not None:
            progress()
    raw = fns.picture(params).numpy().astype(np.float32)
    if dead.all():
        history = np.repeat(np.asarray(losses[:1], np.float64), steps + 1, axis=0)
        kept = dict.fromkeys(keep, raw)
    else:
        if steps:
            if steps in keep:
                kept[steps] = raw
            losses.append(
                fns.loss(params, tf.nest.map_structure(tf.constant, matrices[steps]), channels).numpy()
            )  # §7: after the last update
        history = np.asarray(losses, np.float64)
        if dead.any():
            history[:, dead] = history[:1, dead]
            for k in kept:
                kept[k] = kept[k].copy()
                kept[k][dead] = raw[dead]
    alpha = None
    if transparency is not None:
        from filtviz_core.maco import alpha as normalised

        transparency[dead] = 0.0
        alpha = normalised(transparency)
    return Outcome(
        raw=raw,
        losses=history.T.copy(),
        snapshots=dict(sorted(kept.items())),
        dead=dead,
        seconds=time.perf_counter() - start,
        alpha=alpha,
    )
