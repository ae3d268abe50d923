"""The fourier method, one filter at a time, exactly as SPEC.md §15 states it.

Section names in the comments ("§15.4 Sampler") point at SPEC.md. The framework-free pieces (the
frequency scale, the colour matrix, the seeded spectra, the per-step transform draws and their
affine matrices) come from ``filtviz_core``; this module writes the rest out in TensorFlow:
the spectrum -> picture map, the bilinear sampler and Adam, each in the same formula and order of
operations as torch_filtviz's twins, and the loop. The step is one function built by
:func:`make_fourier_step_fn`, eager or in ``tf.function`` (the default), like the pixel method's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from filtviz_core import fourier as core
from filtviz_core import transforms as draws
from filtviz_core.methods import FourierOptions


def f32(x: float) -> float:
    """``x`` rounded to float32, as both frameworks use every constant of §15.6."""
    return float(np.float32(x))


def spectrum_to_image(spectrum: tf.Tensor, height: int, width: int, options: FourierOptions) -> tf.Tensor:
    """§15.2: spectra (n, 2, 3, H, W // 2 + 1) -> RGB pixel pictures (n, H, W, 3), float32."""
    scale = tf.constant(core.frequency_scale(height, width, options.decay).astype(np.float32))
    matrix = tf.constant(core.color_matrix(options.decorrelate).astype(np.float32))
    real = spectrum[:, 0] * scale
    imag = spectrum[:, 1] * scale
    # irfft2d divides by H*W; times sqrt(H*W) it is the orthonormal inverse.
    t = tf.signal.irfft2d(tf.complex(real, imag), fft_length=[height, width]) * f32(np.sqrt(height * width))
    t = t / f32(options.divisor)  # (n, 3, H, W)
    u = tf.einsum("dc,nchw->nhwd", matrix, t)
    return tf.sigmoid(u) * core.PIXEL_MAX


def resample(images: tf.Tensor, matrices: tf.Tensor, out_height: int, out_width: int, fill: float) -> tf.Tensor:
    """§15.4: bilinear resampling of (n, H, W, C) at ``A @ (r, c) + b``, ``fill`` outside the picture."""
    n, h, w, ch = (int(d) for d in images.shape)
    r = tf.range(out_height, dtype=tf.float32)[None, :, None]
    c = tf.range(out_width, dtype=tf.float32)[None, None, :]
    m = matrices[:, :, :, None, None]
    rows = m[:, 0, 0] * r + m[:, 0, 1] * c + m[:, 0, 2]
    cols = m[:, 1, 0] * r + m[:, 1, 1] * c + m[:, 1, 2]
    r0, c0 = tf.floor(rows), tf.floor(cols)
    fy, fx = (rows - r0)[..., None], (cols - c0)[..., None]
    # v = picture - fill with one row/column of zeros around it; every index outside lands on that border.
    flat = tf.reshape(tf.pad(images - fill, [[0, 0], [1, 1], [1, 1], [0, 0]]), [n, (h + 2) * (w + 2), ch])
    rows0 = tf.cast(tf.clip_by_value(r0, -1.0, float(h)), tf.int32) + 1
    rows1 = tf.cast(tf.clip_by_value(r0 + 1, -1.0, float(h)), tf.int32) + 1
    cols0 = tf.cast(tf.clip_by_value(c0, -1.0, float(w)), tf.int32) + 1
    cols1 = tf.cast(tf.clip_by_value(c0 + 1, -1.0, float(w)), tf.int32) + 1

    def at(i: tf.Tensor, j: tf.Tensor) -> tf.Tensor:
        index = tf.reshape(i * (w + 2) + j, [n, out_height * out_width])
        return tf.reshape(tf.gather(flat, index, batch_dims=1), [n, out_height, out_width, ch])

    top = (1 - fx) * at(rows0, cols0) + fx * at(rows0, cols1)
    bottom = (1 - fx) * at(rows1, cols0) + fx * at(rows1, cols1)
    return fill + (1 - fy) * top + fy * bottom


def adam_constants(options: FourierOptions, lr: float, t: int) -> dict[str, float]:
    """The float32 constants of Adam's step ``t`` (1, 2, ...), §15.6."""
    return {"lr": f32(lr), "c1": f32(1.0 - options.beta1 ** t), "c2": f32(1.0 - options.beta2 ** t)}


@dataclass(frozen=True)
class FourierFns:
    """The built functions of one (layer, objective, options, size): the step, the loss alone, the picture."""

    # (spectrum, m, v, matrix, filter_index, lr, c1, c2) -> (loss, spectrum', m', v', all(g == 0), picture)
    step: Callable
    loss: Callable  # (spectrum, matrix, filter_index) -> loss
    image: Callable  # spectrum -> picture


def make_fourier_step_fn(model: keras.Model, layer_name: str, objective: str, options: FourierOptions, height: int,
                         width: int, *, compiled: bool = True) -> FourierFns:
    """One step (§15.5-§15.6): ``step(spectrum, m, v, matrix, filter_index, lr, c1, c2)`` ->
    ``(loss, spectrum', m', v', all(g == 0), picture)``; the loss and picture are those before the update.
    ``compiled=False`` runs the same Python eagerly."""
    from tf_reference.ascent import make_objective

    objective_fn = make_objective(model, layer_name, objective)
    out_h, out_w = draws.output_size(height, width, options)
    b1, b2, one_b1, one_b2 = f32(options.beta1), f32(options.beta2), f32(1 - options.beta1), f32(1 - options.beta2)
    eps, fill = f32(options.eps), f32(options.pad_value)

    def seen(image: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:  # §15.3: what the network sees
        return resample(image, matrix, out_h, out_w, fill) if options.transforms else image

    def step(spectrum, m, v, matrix, filter_index, lr, c1, c2):
        with tf.GradientTape() as tape:
            tape.watch(spectrum)
            image = spectrum_to_image(spectrum, height, width, options)
            loss = objective_fn(seen(image, matrix), filter_index)
        g = tape.gradient(loss, spectrum)
        m = b1 * m + one_b1 * g  # §15.6 Adam, ascending
        v = b2 * v + one_b2 * (g * g)
        spectrum_next = spectrum + lr * (m / c1) / (tf.sqrt(v / c2) + eps)
        return loss, spectrum_next, m, v, tf.reduce_all(tf.equal(g, 0.0)), image

    def loss_only(spectrum, matrix, filter_index):
        return objective_fn(seen(spectrum_to_image(spectrum, height, width, options), matrix), filter_index)

    def image_only(spectrum):
        return spectrum_to_image(spectrum, height, width, options)

    wrap = tf.function if compiled else (lambda fn: fn)
    return FourierFns(wrap(step), wrap(loss_only), wrap(image_only))


def ascend(fns: FourierFns, filter_index: int, *, steps: int, size: int, lr: float, seed: int,
           options: FourierOptions, keep: Iterable[int]) -> tuple[np.ndarray, list[float], dict[int, np.ndarray], bool,
                                                                 float]:
    """The loop of §15.5-§15.8 for one filter: (raw picture, losses, snapshots, dead, seconds)."""
    keep = set(keep)
    start = time.perf_counter()
    f = tf.constant(filter_index, dtype=tf.int32)
    spectrum = tf.constant(core.initial_spectra([filter_index], size, size, seed, options.init_std))  # §15.2
    m = tf.zeros_like(spectrum)
    v = tf.zeros_like(spectrum)
    # §15.3: the draws of steps 0..steps (the last one is what the final loss is measured under).
    if options.transforms:
        matrices = draws.affines(seed, [filter_index], range(steps + 1), size, size, options)
    else:
        matrices = np.zeros((steps + 1, 1, 2, 3), np.float32)  # unused
    losses: list[float] = []
    kept: dict[int, np.ndarray] = {}
    dead = False
    for k in range(max(steps, 1)):  # steps = 0 still takes the gradient at the start, for §15.8
        consts = adam_constants(options, lr, k + 1)
        loss, spectrum_next, m_next, v_next, zero_grad, image = fns.step(
            spectrum, m, v, tf.constant(matrices[k]), f, tf.constant(consts["lr"]), tf.constant(consts["c1"]),
            tf.constant(consts["c2"]))
        if k in keep:
            kept[k] = image[0].numpy()  # §15.7: the picture after k updates
        losses.append(float(loss))
        if k == 0 and bool(zero_grad):
            dead = True  # §15.8: frozen at its start
            break
        if steps:
            spectrum, m, v = spectrum_next, m_next, v_next
    raw = fns.image(spectrum)[0].numpy().astype(np.float32)
    if dead:
        losses = [losses[0]] * (steps + 1)
        kept = {k: raw for k in keep}
    elif steps:
        if steps in keep:
            kept[steps] = raw
        losses.append(float(fns.loss(spectrum, tf.constant(matrices[steps]), f)))  # §15.7: under draw `steps`
    return raw, losses, dict(sorted(kept.items())), dead, time.perf_counter() - start
