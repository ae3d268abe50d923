"""A small independent implementation of the filter objective and ascent (tf_reference/SPEC.md), in both frameworks.

The parity suite uses it to check what the packages cannot check about themselves: that, from
identical numpy inputs, each framework computes the same objective and the same input gradient,
written here without any code from ``tf_reference`` or ``torch_filtviz``'s ascent. Its knobs
(``preprocess``, ``border``) let the mutation tests plant a porting bug on the torch side.

Both gradient functions take a batch of pixel images (F, H, W, 3), one per filter, and return
the per-filter objective (F,) and its gradient (F, H, W, 3): the batch items are independent, so
one backward pass serves all filters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from filtviz_core.algorithm import BORDER, BORDER_MIN_SIDE, RMS_FLOOR
from filtviz_core.vgg16 import CAFFE_MEAN_BGR, TORCH_CONV_INDEX

GradFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def interior_slices(height: int, width: int, border: int = BORDER) -> tuple[slice, slice]:
    """The spec's border rule, with the border width as a parameter (the mutation tests use 1 and 3)."""
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


# --- PyTorch -------------------------------------------------------------------------------------


def torch_objective_grad(model, layer: str, filters: Sequence[int], x: np.ndarray, *,
                         preprocess: Callable | None = None, border: int = BORDER,
                         relu_before: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The same in torch, on a PixelModel (``preprocess`` + ``features``): the pre-activation is the
    output of ``features[conv index]``. ``preprocess``/``border``/``relu_before`` exist for mutations."""
    import torch

    conv_idx = TORCH_CONV_INDEX[layer] if isinstance(layer, str) else int(layer)
    xt = torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(x, np.float32), (0, 3, 1, 2))))
    xt.requires_grad_(True)
    pre_fn = preprocess if preprocess is not None else model.preprocess
    with torch.enable_grad():
        pre = model.features[: conv_idx + 1](pre_fn(xt))
        if relu_before:
            pre = torch.relu(pre)
        rows, cols = interior_slices(pre.shape[2], pre.shape[3], border)
        chosen = pre[torch.arange(len(filters)), torch.as_tensor(list(filters))]  # N, H, W
        loss = chosen[:, rows, cols].mean(dim=(1, 2))
        (grad,) = torch.autograd.grad(loss.sum(), xt)
    return loss.detach().numpy(), grad.permute(0, 2, 3, 1).numpy()


# --- the ascent loop, framework-neutral -----------------------------------------------------------


def ascent(grad_fn: GradFn, x0: np.ndarray, steps: int, lr: float = 1.0,
           snapshots: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """The spec's ascent from ``x0`` (F, H, W, 3): returns (losses (F, steps+1), final x, snapshots).

    Step: x <- x + lr * g / max(rms(g), 1e-12), rms over each filter's own image.
    """
    x = np.array(x0, np.float32, copy=True)
    losses = np.zeros((x.shape[0], steps + 1), np.float64)
    kept: dict[int, np.ndarray] = {0: x.copy()} if 0 in snapshots else {}
    for k in range(steps + 1):
        loss, grad = grad_fn(x)
        losses[:, k] = loss
        if k == steps:
            break
        rms = np.sqrt(np.mean(np.square(grad, dtype=np.float32), axis=(1, 2, 3), keepdims=True))
        x = (x + lr * grad / np.maximum(rms, RMS_FLOOR)).astype(np.float32)
        if k + 1 in snapshots:
            kept[k + 1] = x.copy()
    return losses, x, kept
