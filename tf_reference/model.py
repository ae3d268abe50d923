"""Keras VGG16 (``include_top=False``) with the neutral weights file, as the notebook built it.

The model's input stays Keras' own: caffe-preprocessed images (BGR, mean-subtracted). Callers
hand in RGB pixel images; :func:`caffe_preprocess` (SPEC.md "Model input") turns them into that.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from filtviz_core.errors import FiltvizError
from filtviz_core.images import as_image_batch
from filtviz_core.preprocessing import PREPROCESSING
from filtviz_core.vgg16 import CAFFE_MEAN_BGR, CONV_NAMES
from filtviz_core.weights import load_tensors


def load_vgg16(weights: str | os.PathLike[str] = "keras", *, seed: int = 0, verify: bool = True) -> keras.Model:
    """``keras.applications.VGG16(include_top=False, weights=None)`` with weights set by layer name.

    ``weights``: ``"keras"`` (the verified neutral file, offline), ``"imagenet"`` (Keras' own
    download, for online users), ``"random"`` (seeded), or a path to a weights file.
    The verified source is kept as ``model.filtviz_weights`` (run.json's ``weights`` entry).
    """
    if str(weights) == "imagenet":
        model = keras.applications.VGG16(include_top=False, weights="imagenet")
        model.filtviz_weights = {"source": "keras:imagenet", "sha256": None}
        return model
    tensors, info = load_tensors(weights, seed=seed, verify=verify)
    model = keras.applications.VGG16(include_top=False, weights=None)
    for name in CONV_NAMES:
        model.get_layer(name).set_weights([tensors[f"{name}/kernel"], tensors[f"{name}/bias"]])
    model.filtviz_weights = info
    model.filtviz_preprocess = "caffe"  # §4
    return model


def summary(model: keras.Model, line_length: int | None = None) -> str:
    """Keras' own ``model.summary()`` text (captured, not printed), as the notebook showed it."""
    lines: list[str] = []
    model.summary(line_length=line_length, print_fn=lambda text, *args, **kwargs: lines.append(text))
    return "\n".join(lines)


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the model's Conv2D layers, in order."""
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def get_layer(model: keras.Model, layer_name: str) -> keras.layers.Layer:
    """The named layer, or a ValueError listing the valid names."""
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise FiltvizError(f"unknown layer {layer_name!r}; valid: {', '.join(names[1:])}")
    return model.get_layer(layer_name)


def get_conv_layer(model: keras.Model, layer_name: str) -> keras.layers.Conv2D:
    """The named Conv2D layer (the only layers with filters to visualize), or a ValueError listing them."""
    names = conv_layer_names(model)
    if layer_name not in names:
        raise FiltvizError(f"unknown conv layer {layer_name!r}; valid: {', '.join(names)}")
    return model.get_layer(layer_name)


def submodel(model: keras.Model, layer_name: str) -> keras.Model:
    """Functional-API model from the VGG16 input to ``layer_name``'s output (post-ReLU for convs)."""
    layer = get_layer(model, layer_name)
    return keras.Model(inputs=model.input, outputs=layer.output, name=f"vgg16_to_{layer_name}")


def caffe_preprocess(images: tf.Tensor | np.ndarray) -> tf.Tensor:
    """RGB pixels (0-255) -> the model's input: RGB->BGR, minus the caffe means (SPEC.md "Model input").

    Equal to ``keras.applications.vgg16.preprocess_input`` but written out, differentiable and
    without touching its argument, so the spec can state it in one line.
    """
    x = tf.convert_to_tensor(images, dtype=tf.float32)
    return x[..., ::-1] - tf.constant(CAFFE_MEAN_BGR, dtype=tf.float32)


def feature_maps(model: keras.Model, images: np.ndarray, layer_names: str | Sequence[str]) -> dict[str, np.ndarray]:
    """The layers' outputs (post-ReLU for VGG16's convs), NHWC float32, for pixel images (H, W, C) or
    (N, H, W, C), seen through the model's preprocessing (caffe for VGG16, §4)."""

    names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
    if not names:
        raise FiltvizError("no layers given; valid: " + ", ".join(layer.name for layer in model.layers[1:]))
    layers = [get_layer(model, name) for name in names]
    batch = as_image_batch(images) if getattr(model, "name", "") == "vgg16" else _pixel_batch(model, images)
    probe = keras.Model(inputs=model.input, outputs=[layer.output for layer in layers])
    outputs = probe(preprocess_fn(model)(batch), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {name: np.asarray(out, dtype=np.float32) for name, out in zip(names, outputs)}


def _pixel_batch(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) float32 pixels for any model: C its input's channels."""
    arr = np.asarray(images, dtype=np.float32)
    arr = arr[None] if arr.ndim == 3 else arr
    channels = input_channels(model)
    if arr.ndim != 4 or arr.shape[-1] != channels:
        raise FiltvizError(
            f"images must be (H, W, {channels}) or (N, H, W, {channels}) pixel arrays for this model, "
            f"got shape {np.shape(images)}"
        )
    return arr


# --- how any Keras model sees pixels (tf_reference.keras_model loads the models) -----------------------

Preprocess = Callable[[tf.Tensor], tf.Tensor]


def input_channels(model: keras.Model) -> int:
    """The model's picture channels (its input's last dimension; 3 when left open)."""
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
    last = shape[-1] if shape is not None and len(shape) else None
    return int(last) if last else 3


def preprocess_name(model: keras.Model) -> str:
    """How the model sees pixels: ``filtviz_preprocess`` when it carries one (load_model, load_vgg16),
    ``caffe`` for a bare ``keras.applications.VGG16`` (the spec's §4), else ``none``."""
    name = getattr(model, "filtviz_preprocess", None)
    if name is None:
        name = "caffe" if getattr(model, "name", "") == "vgg16" else "none"
    if name not in PREPROCESSING:
        raise FiltvizError(f"model preprocessing {name!r} unknown; valid: {', '.join(PREPROCESSING)}")
    return name


def preprocess_fn(model: keras.Model) -> Preprocess:
    """pixels (B, H, W, C) -> the model's input, differentiable: the spec's ``caffe_preprocess`` for caffe."""
    name = preprocess_name(model)
    if name == "caffe":
        return caffe_preprocess
    if name == "imagenet":
        mean = tf.constant([0.485 * 255, 0.456 * 255, 0.406 * 255], tf.float32)
        std = tf.constant([0.229 * 255, 0.224 * 255, 0.225 * 255], tf.float32)
        return lambda x: (tf.convert_to_tensor(x, tf.float32) - mean) / std
    scale: dict[str, Preprocess] = {
        "none": lambda x: tf.convert_to_tensor(x, tf.float32),
        "unit": lambda x: tf.convert_to_tensor(x, tf.float32) / 255.0,
        "symmetric": lambda x: tf.convert_to_tensor(x, tf.float32) / 127.5 - 1.0,
    }
    if name in scale:
        return scale[name]
    from filtviz_core.preprocessing import MNIST_MEAN, MNIST_STD

    return lambda x: (tf.convert_to_tensor(x, tf.float32) / 255.0 - MNIST_MEAN) / MNIST_STD
