"""Keras VGG16 (``include_top=False``) with the neutral weights file, as the notebook built it.

The model's input stays Keras' own: caffe-preprocessed images (BGR, mean-subtracted).
"""

from __future__ import annotations

import os

import keras

from filtviz_core.errors import FiltvizError
from filtviz_core.vgg16 import CONV_NAMES
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
    return model


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the model's Conv2D layers, in order."""
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def get_layer(model: keras.Model, layer_name: str) -> keras.layers.Layer:
    """The named layer, or a ValueError listing the valid names."""
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise FiltvizError(f"unknown layer {layer_name!r}; valid: {', '.join(names[1:])}")
    return model.get_layer(layer_name)
