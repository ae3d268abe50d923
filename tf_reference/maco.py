"""The MACO method's TensorFlow pieces, exactly as SPEC.md §17 states them.

The framework-free pieces (the magnitude, the seeded phases, the crops and noise of every step, NAdam's
constants) come from ``filtviz_core.maco``; this module writes the rest out in TensorFlow: the phase ->
picture map (§17.2) and the crops (§17.3), each in the same formula and order of operations as
torch_filtviz's twins. The method is assembled in ``tf_reference/method_parts.py`` and run by the one
loop of ``tf_reference/loop.py`` (SPEC.md §16).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from filtviz_core import fourier as core_fourier
from filtviz_core import maco as core


def phase_to_image(phase: tf.Tensor, magnitude: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """§17.2: phases (n, C, H, W // 2 + 1) -> pixel pictures (n, H, W, C), float32 (C = 3: recorrelated)."""
    matrix = tf.constant(core_fourier.color_matrix(True, int(phase.shape[1])).astype(np.float32))
    axes = [1, 2, 3]
    p = (phase - tf.reduce_mean(phase, axis=axes, keepdims=True)) / (
        tf.math.reduce_std(phase, axis=axes, keepdims=True) + core.STD_EPS
    )
    spectrum = tf.complex(tf.cos(p) * magnitude, tf.sin(p) * magnitude)
    t = tf.signal.irfft2d(spectrum, fft_length=[height, width])  # (n, C, H, W), 1/(HW)
    t = (t - tf.reduce_mean(t, axis=axes, keepdims=True)) / (
        tf.math.reduce_std(t, axis=axes, keepdims=True) + core.STD_EPS
    )
    u = tf.einsum("dc,nchw->nhwd", matrix, t)
    return tf.sigmoid(u) * core_fourier.PIXEL_MAX


def crop_views(images: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor, noise: tf.Tensor, fill: float) -> tf.Tensor:
    """§17.3: (n, H, W, C) pictures -> their (n, V, H, W, C) noisy crops (``rows`` (n, V, 4, H), ``cols``
    (n, V, 4, W): two source indices, the second's weight, inside 1 / outside 0), as torch_filtviz writes it."""
    n, h, w, ch = (int(d) for d in images.shape)
    views, ho, wo = int(rows.shape[1]), int(rows.shape[-1]), int(cols.shape[-1])
    flat = tf.reshape(images, [n, h * w, ch])
    r0, r1, fy = tf.cast(rows[:, :, 0], tf.int32), tf.cast(rows[:, :, 1], tf.int32), rows[:, :, 2]
    c0, c1, fx = tf.cast(cols[:, :, 0], tf.int32), tf.cast(cols[:, :, 1], tf.int32), cols[:, :, 2]

    def at(i: tf.Tensor, j: tf.Tensor) -> tf.Tensor:
        index = tf.reshape(i[:, :, :, None] * w + j[:, :, None, :], [n, views * ho * wo])
        return tf.reshape(tf.gather(flat, index, batch_dims=1), [n, views, ho, wo, ch])

    fx5, fy5 = fx[:, :, None, :, None], fy[:, :, :, None, None]
    tl = at(r0, c0)
    top = tl + (at(r0, c1) - tl) * fx5
    bl = at(r1, c0)
    bottom = bl + (at(r1, c1) - bl) * fx5
    crop = top + (bottom - top) * fy5
    inside = (rows[:, :, 3, :, None] * cols[:, :, 3, None, :])[..., None] > 0
    return tf.where(inside, crop, tf.constant(fill, tf.float32)) + noise
