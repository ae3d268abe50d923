"""The fourier method's TensorFlow pieces, exactly as SPEC.md §15 states them.

Section names in the comments ("§15.4 Sampler") point at SPEC.md. The framework-free pieces (the
frequency scale, the colour matrix, the seeded spectra, the per-step transform draws and their
affine matrices) come from ``filtviz_core``; this module writes the rest out in TensorFlow: the
spectrum -> picture map, the bilinear sampler and Adam's constants, each in the same formula and
order of operations as torch_filtviz's twins. The method is assembled from them in
``tf_reference/method_parts.py`` and run by the one loop of ``tf_reference/loop.py`` (SPEC.md §16).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from filtviz_core import fourier as core
from filtviz_core.methods import FourierOptions


def f32(x: float) -> float:
    """``x`` rounded to float32, as both frameworks use every constant of §15.6."""
    return float(np.float32(x))


def spectrum_to_image(spectrum: tf.Tensor, height: int, width: int, options: FourierOptions) -> tf.Tensor:
    """§15.2: spectra (n, 2, C, H, W // 2 + 1) -> pixel pictures (n, H, W, C), float32 (colours decorrelated
    for C = 3 only)."""
    scale = tf.constant(core.frequency_scale(height, width, options.decay).astype(np.float32))
    matrix = tf.constant(core.color_matrix(options.decorrelate, int(spectrum.shape[2])).astype(np.float32))
    real = spectrum[:, 0] * scale
    imag = spectrum[:, 1] * scale
    # irfft2d divides by H*W; times sqrt(H*W) it is the orthonormal inverse.
    t = tf.signal.irfft2d(tf.complex(real, imag), fft_length=[height, width]) * f32(np.sqrt(height * width))
    t = t / f32(options.divisor)  # (n, C, H, W)
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
    return {"lr": f32(lr), "c1": f32(1.0 - options.beta1**t), "c2": f32(1.0 - options.beta2**t)}
