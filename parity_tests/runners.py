"""Model runners of the comparison core: what each framework computes, as numpy arrays.

Both sides run in inference mode: Keras with ``training=False``, torch with every module in
``eval()`` for the call (BatchNorm uses its running statistics and never updates them, Dropout
is off) and each module's own ``training`` flag restored afterwards, so comparing a freshly
built port neither compares training-mode layers nor changes the port.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np


@contextmanager
def inference_mode(model: Any) -> Iterator[Any]:
    """Every module of a torch ``model`` in ``eval()`` for the block; each module's own
    ``training`` flag is put back on exit (also after an exception)."""
    saved = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in saved:
            module.training = flag


def model_device(model: Any):
    """The device of a torch model's first parameter or buffer (CPU for a module without any)."""
    import torch

    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_nhwc(arr: np.ndarray) -> np.ndarray:
    """NCHW -> NHWC for 4-d arrays; other ranks unchanged (dense outputs are (N, C) on both sides)."""
    return np.transpose(arr, (0, 2, 3, 1)) if np.ndim(arr) == 4 else arr


def to_nchw(arr: np.ndarray) -> np.ndarray:
    """NHWC -> NCHW for 4-d arrays; other ranks unchanged."""
    return np.transpose(arr, (0, 3, 1, 2)) if np.ndim(arr) == 4 else arr


def keras_input(model: Any) -> Any:
    """The symbolic input of a Keras model: the tensor itself for one input (as Keras expects it back)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def keras_activations(model: Any, layer_names: Sequence[str], inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of the named layers of a Keras model on ``inputs`` (already in its input space)."""
    import keras

    sub = keras.Model(keras_input(model), [model.get_layer(n).output for n in layer_names])
    outs = sub(np.asarray(inputs, np.float32), training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {n: np.asarray(o) for n, o in zip(layer_names, outs)}


def torch_activations(model: Any, module_paths: Sequence[str], inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of the named submodules of a torch model (forward hooks), as numpy arrays in torch's
    own layout (NCHW for maps). ``inputs`` is handed to the model as it is (NCHW for images).

    The forward runs under ``no_grad`` in :func:`inference_mode`; the model's modes are restored.
    """
    import torch

    captured: dict[str, np.ndarray] = {}
    handles = []
    for path in module_paths:

        def hook(_module, _inp, out, path=path):
            if path not in captured:  # a module called twice: keep its first call
                captured[path] = out.detach().cpu().numpy().copy()

        handles.append(model.get_submodule(path).register_forward_hook(hook))
    try:
        x = torch.from_numpy(np.ascontiguousarray(inputs, np.float32)).to(model_device(model))
        with torch.no_grad(), inference_mode(model):
            model(x)
    finally:
        for h in handles:
            h.remove()
    missing = [p for p in module_paths if p not in captured]
    if missing:
        raise ValueError(f"torch modules never ran in the forward pass: {missing}")
    return captured


def torch_filter_gradients(
    model: Any, layer: str, filters: Sequence[int], images_nhwc: np.ndarray, objective: str = "pre_relu"
) -> tuple[np.ndarray, np.ndarray]:
    """torch_filtviz's own objective (``torch_filtviz.objectives.filter_objective``: the product's
    hooks and border rule) and its input gradient, one image per filter.

    ``images_nhwc``: (F, H, W, 3) RGB pixels. Returns the objective (F,) and the gradient
    (F, H, W, 3), both float numpy. Runs in :func:`inference_mode`.
    """
    import torch

    from torch_filtviz.objectives import filter_objective

    x = torch.from_numpy(np.ascontiguousarray(to_nchw(np.asarray(images_nhwc, np.float32))))
    x = x.to(model_device(model)).requires_grad_(True)
    with torch.enable_grad(), inference_mode(model):
        values = filter_objective(model, layer, list(filters), x, objective)
        (grad,) = torch.autograd.grad(values.sum(), x)
    return values.detach().cpu().numpy(), to_nhwc(grad.detach().cpu().numpy())


# --- any Keras/torch pair (the port command) ----------------------------------------------------------


@contextmanager
def linear_activation(layer: Any) -> Iterator[Any]:
    """A Keras layer with its fused activation switched to linear for the block (restored on exit):
    the layer then computes its pre-activation, e.g. the convolution plus bias of ``Conv2D(activation="relu")``."""
    import keras

    saved = layer.activation
    layer.activation = keras.activations.linear
    try:
        yield layer
    finally:
        layer.activation = saved


def _keras_values(model: Any, names: Sequence[str], before_activation: Sequence[str], x: Any) -> list[Any]:
    """Symbolic part of :func:`keras_layer_values`, differentiable when ``x`` is watched by a tape."""
    import keras

    layers = [model.get_layer(n) for n in names]
    outs = [layer.input if n in before_activation else layer.output for n, layer in zip(names, layers)]
    values = keras.Model(keras_input(model), outs)(x, training=False)
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    for i, (name, layer) in enumerate(zip(names, layers)):
        if name in before_activation:
            with linear_activation(layer):
                values[i] = layer(values[i], training=False)
    return values


def keras_layer_values(
    model: Any, names: Sequence[str], inputs: np.ndarray, before_activation: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """Outputs of the named Keras layers on ``inputs`` (inference mode); for the names in
    ``before_activation``, the layer's value before its fused activation instead."""
    values = _keras_values(model, list(names), list(before_activation), np.asarray(inputs, np.float32))
    return {n: np.asarray(v) for n, v in zip(names, values)}


def channel_objective_nhwc(act: Any, channels: Sequence[int]) -> Any:
    """TensorFlow: per item i, the mean of channel ``channels[i]`` over the interior of its map
    (the spec's border rule), or the unit itself for (N, C) outputs."""
    import tensorflow as tf

    from filtviz_core.algorithm import interior

    idx = tf.constant(np.asarray(channels, np.int32))
    if len(act.shape) == 2:
        return tf.gather(act, idx, axis=1, batch_dims=1)
    rows, cols = interior(int(act.shape[1]), int(act.shape[2]))
    maps = tf.transpose(act, (0, 3, 1, 2))
    chosen = tf.gather(maps, idx, axis=1, batch_dims=1)
    return tf.reduce_mean(chosen[:, rows, cols], axis=(1, 2))


def keras_channel_gradients(
    model: Any, name: str, channels: Sequence[int], images: np.ndarray, before_activation: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's objective (:func:`channel_objective_nhwc`) of a Keras layer, one input image per
    channel, and its gradient w.r.t. the input: ((C,), images' shape)."""
    import tensorflow as tf

    x = tf.constant(np.asarray(images, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        (act,) = _keras_values(model, [name], [name] if before_activation else [], x)
        values = channel_objective_nhwc(act, channels)
        total = tf.reduce_sum(values)
    return values.numpy(), tape.gradient(total, x).numpy()


def torch_channel_gradients(
    model: Any, path: str, channels: Sequence[int], images: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The same objective on a torch module's output, through torch_filtviz's own hooks
    (``resolve_target``/``capture``, the pass stopped after the module) and its interior mean.
    ``images`` in the model's own layout (NCHW); returns ((C,), images' shape)."""
    import torch

    from torch_filtviz.hooks import capture, resolve_target
    from torch_filtviz.objectives import interior_mean

    device = model_device(model)
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).to(device).requires_grad_(True)
    target = resolve_target(model, path)
    with torch.enable_grad(), inference_mode(model), capture(model, target) as cap:
        act = cap(x)[target.name]
        index = torch.tensor(list(channels), device=device)
        values = interior_mean(act, index, torch.arange(len(channels), device=device))
        (grad,) = torch.autograd.grad(values.sum(), x)
    return values.detach().cpu().numpy(), grad.detach().cpu().numpy()
