"""A second, small CNN defined in both frameworks: shows the comparison core is not VGG16-specific.

The weights live in a neutral dict with Keras names and layouts (conv kernels HWIO, dense
kernels (in, out)); :func:`torch_state_dict` converts them (OIHW, (out, in)), as a port would.
The net mixes what ports get wrong: a max-pool, a strided conv, a conv without activation,
global average pooling and a dense layer.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

INPUT_SIZE = 32
# (name, kind, in channels, out channels, stride, activation)
LAYERS = (
    ("conv1", "conv", 3, 8, 1, "relu"),
    ("conv2", "conv", 8, 16, 2, "relu"),
    ("conv3", "conv", 16, 16, 1, None),
    ("logits", "dense", 16, 10, None, None),
)
# Keras layer name -> torch submodule path with the same output.
LAYER_MAP = {
    "conv1": "relu1",
    "pool1": "pool1",
    "conv2": "relu2",
    "conv3": "conv3",
    "gap": "flatten",
    "logits": "logits",
}


def neutral_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded He-scaled weights with non-zero biases, Keras layouts, float32."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, kind, cin, cout, _, _ in LAYERS:
        shape = (3, 3, cin, cout) if kind == "conv" else (cin, cout)
        fan_in = int(np.prod(shape[:-1]))
        tensors[f"{name}/kernel"] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        tensors[f"{name}/bias"] = (0.1 * rng.standard_normal(cout)).astype(np.float32)
    return tensors


def keras_model(weights: dict[str, np.ndarray]):
    """The net in Keras (NHWC). Strided conv uses ``valid`` padding: TF's asymmetric ``same``
    padding at stride 2 has no direct torch equivalent."""
    import keras

    inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="valid", activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(10, name="logits")(x)
    model = keras.Model(inp, out, name="small_cnn")
    for name, *_ in LAYERS:
        model.get_layer(name).set_weights([weights[f"{name}/kernel"], weights[f"{name}/bias"]])
    return model


def torch_state_dict(weights: dict[str, np.ndarray]) -> dict:
    """Keras layouts -> torch: conv HWIO -> OIHW, dense (in, out) -> (out, in)."""
    import torch

    state = {}
    for name, kind, *_ in LAYERS:
        kernel = weights[f"{name}/kernel"]
        kernel = kernel.transpose(3, 2, 0, 1) if kind == "conv" else kernel.T
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(weights[f"{name}/bias"]))
    return state


def torch_architecture():
    """The same net in torch (NCHW), named so that :data:`LAYER_MAP` addresses its modules; torch's
    default init (no weights loaded)."""
    from torch import nn

    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 8, 3, padding=1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(8, 16, 3, stride=2)),
                ("relu2", nn.ReLU()),
                ("conv3", nn.Conv2d(16, 16, 3, padding=1)),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("logits", nn.Linear(16, 10)),
            ]
        )
    )


def torch_model(weights: dict[str, np.ndarray]):
    """:func:`torch_architecture` carrying ``weights`` (converted by :func:`torch_state_dict`)."""
    model = torch_architecture()
    model.load_state_dict(torch_state_dict(weights))
    return model.eval().requires_grad_(False)
