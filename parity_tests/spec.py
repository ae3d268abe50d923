"""An independent Keras implementation of the filter objective and its input gradient (tf_reference/SPEC.md).

The gradient checks compare it with torch_filtviz's own objective (``filter_objective``, the
product's hooks and border rule): written here from the spec without any code of
``tf_reference``, so the reference side of that check does not share a bug with either package.

:func:`keras_objective_grad` takes a batch of pixel images (F, H, W, 3), one per filter, and
returns the per-filter objective (F,) and its gradient (F, H, W, 3): the batch items are
independent, so one backward pass serves all filters.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from filtviz_core.algorithm import BORDER, BORDER_MIN_SIDE
from filtviz_core.vgg16 import CAFFE_MEAN_BGR


def interior_slices(height: int, width: int, border: int = BORDER) -> tuple[slice, slice]:
    """The spec's border rule, written out (the width as a parameter)."""
    if height > BORDER_MIN_SIDE and width > BORDER_MIN_SIDE:
        return slice(border, height - border), slice(border, width - border)
    return slice(0, height), slice(0, width)


def caffe_numpy(x: np.ndarray) -> np.ndarray:
    """Keras caffe preprocessing of NHWC RGB pixels, written out: RGB -> BGR, subtract the means."""
    return (np.asarray(x, np.float32)[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)).astype(np.float32)


# --- Keras -----------------------------------------------------------------------------------------

_KERAS_SUBMODELS: dict[tuple[int, str], object] = {}


def keras_objective_grad(model, layer: str, filters: Sequence[int], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objective (mean pre-activation over the interior) and its gradient w.r.t. RGB pixels, in TF.

    The pre-activation is recomputed from the layer's input with its own kernel and bias, so the
    Keras model is never modified.
    """
    import keras
    import tensorflow as tf

    key = (id(model), layer)
    if key not in _KERAS_SUBMODELS:
        _KERAS_SUBMODELS[key] = keras.Model(model.input, model.get_layer(layer).input)
    sub = _KERAS_SUBMODELS[key]
    conv = model.get_layer(layer)
    mean = tf.constant(CAFFE_MEAN_BGR, tf.float32)
    idx = tf.constant(np.asarray(filters, np.int32))
    xt = tf.constant(np.asarray(x, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        bgr = tf.reverse(xt, axis=[-1]) - mean
        pre = tf.nn.conv2d(sub(bgr, training=False), conv.kernel, strides=1, padding="SAME") + conv.bias
        rows, cols = interior_slices(int(pre.shape[1]), int(pre.shape[2]))
        maps = tf.transpose(pre, (0, 3, 1, 2))  # N, C, H, W
        chosen = tf.gather(maps, idx, axis=1, batch_dims=1)  # N, H, W: item i's filter i
        loss = tf.reduce_mean(chosen[:, rows, cols], axis=(1, 2))
        total = tf.reduce_sum(loss)
    grad = tape.gradient(total, xt)
    return loss.numpy(), grad.numpy()
