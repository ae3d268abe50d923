"""Which Keras layer is which torch module: the layer map of a port, and where each pair is compared.

A map pairs Keras layer names with torch module paths. It comes from a JSON file
(``{"keras_layer": "torch.module.path", ...}``) or ``auto``: the Keras layers with weights
(Conv2D, DepthwiseConv2D, Dense, BatchNormalization), in the model's order, paired one for one
with the torch modules that hold parameters, in the order the forward pass calls them — which
fits sequential-like models; the command prints the map so the user can check it.

**Fused activations.** ``Conv2D(activation="relu")`` computes the convolution and its ReLU in one
layer, while a torch port applies the ReLU in a separate module or a functional call. Each pair
is compared like for like: when the Keras layer has a fused activation and the torch module is
not itself an activation module, both sides are compared **before the activation** (Keras:
the layer applied with a linear activation to its own input; torch: the module's output). When
the torch module *is* an activation (e.g. ``features.1``, an ``nn.ReLU``), both are compared
after it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core.errors import FiltvizError

KERAS_KINDS = {"Conv2D": "conv2d", "DepthwiseConv2D": "depthwise", "Dense": "dense", "BatchNormalization": "batchnorm"}


@dataclass(frozen=True)
class LayerPair:
    """One mapped pair: where it is compared (``before_activation`` names the Keras layer's fused
    activation when both sides are compared before it, else None: outputs are compared)."""

    keras: str
    torch: str
    keras_kind: str
    torch_kind: str
    before_activation: str | None = None

    @property
    def compared_at(self) -> str:
        return f"before {self.before_activation}" if self.before_activation else "output"

    def to_dict(self) -> dict[str, Any]:
        return {
            "keras": self.keras,
            "torch": self.torch,
            "keras_kind": self.keras_kind,
            "torch_kind": self.torch_kind,
            "compared_at": self.compared_at,
        }


def keras_kind(layer: Any) -> str:
    return KERAS_KINDS.get(type(layer).__name__, type(layer).__name__)


def torch_kind(module: Any) -> str:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return "depthwise" if depthwise else "conv2d"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "batchnorm"
    return type(module).__name__


def fused_activation(layer: Any) -> str | None:
    """The name of a Keras layer's own non-linear activation (``Conv2D(activation="relu")``), else None."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = getattr(activation, "__name__", type(activation).__name__)
    return None if name == "linear" else name


def is_activation_module(module: Any) -> bool:
    from torch_filtviz.hooks import ACTIVATIONS

    return isinstance(module, ACTIVATIONS)


def keras_parameterised(model: Any) -> list[Any]:
    """The Keras layers with weights, in the model's order (nested models are refused)."""
    layers = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.weights:
            raise FiltvizError(f"--map auto: Keras layer {layer.name!r} is a nested model; give the map as JSON")
        if layer.weights:
            layers.append(layer)
    return layers


def torch_parameterised(model: Any, example: np.ndarray) -> list[str]:
    """Paths of the torch modules that hold parameters of their own, in the order the forward pass
    first calls them on ``example`` (NCHW/torch layout)."""
    import torch

    from parity_tests.runners import inference_mode, model_device

    order: list[str] = []
    handles = []
    for path, module in model.named_modules():
        if path and any(True for _ in module.parameters(recurse=False)):

            def hook(_m, _i, _o, path=path):
                if path not in order:
                    order.append(path)

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), inference_mode(model):
            model(torch.from_numpy(np.ascontiguousarray(example, np.float32)).to(model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return order


def pair(keras_model: Any, torch_model: Any, keras_name: str, torch_path: str) -> LayerPair:
    """A :class:`LayerPair`, both ends checked to exist, with its comparison point decided."""
    try:
        layer = keras_model.get_layer(keras_name)
    except ValueError:
        names = ", ".join(layer.name for layer in keras_model.layers)
        raise FiltvizError(f"the Keras model has no layer {keras_name!r}; it has: {names}") from None
    try:
        module = torch_model.get_submodule(torch_path)
    except AttributeError:
        raise FiltvizError(
            f"the torch model has no module {torch_path!r} (give module paths as in "
            "model.named_modules(), e.g. features.0)"
        ) from None
    fused = fused_activation(layer)
    before = fused if fused and not is_activation_module(module) else None
    return LayerPair(keras_name, torch_path, keras_kind(layer), torch_kind(module), before)


def auto_map(keras_model: Any, torch_model: Any, example_nchw: np.ndarray) -> list[LayerPair]:
    """Parameterised layers paired in order; refuses counts or kinds that do not line up."""
    k_layers = keras_parameterised(keras_model)
    t_paths = torch_parameterised(torch_model, example_nchw)
    if len(k_layers) != len(t_paths):
        raise FiltvizError(
            f"--map auto: the Keras model has {len(k_layers)} layers with weights "
            f"({', '.join(layer.name for layer in k_layers) or 'none'}), the torch model {len(t_paths)} modules with "
            f"parameters ({', '.join(t_paths) or 'none'}); give the map as JSON"
        )
    pairs = []
    for layer, path in zip(k_layers, t_paths):
        p = pair(keras_model, torch_model, layer.name, path)
        if p.keras_kind != p.torch_kind:
            raise FiltvizError(
                f"--map auto: Keras {layer.name} ({p.keras_kind}) lines up with torch {path} "
                f"({p.torch_kind}); give the map as JSON"
            )
        pairs.append(p)
    return pairs


def read_map(path: str | Path) -> dict[str, str]:
    """A JSON map file: an object of Keras layer name -> torch module path (both strings)."""
    path = Path(path)
    if not path.is_file():
        raise FiltvizError(f"--map: no such file: {path} (use a JSON file or 'auto')")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FiltvizError(f"--map {path} is not valid JSON: {exc}") from None
    if (
        not isinstance(data, dict)
        or not data
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())
    ):
        raise FiltvizError(
            f"--map {path} must be a JSON object of Keras layer name -> torch module path, "
            'e.g. {"conv1": "features.0"}'
        )
    return data


def build_map(
    keras_model: Any, torch_model: Any, spec: str | Mapping[str, str], example_nchw: np.ndarray
) -> list[LayerPair]:
    """``spec``: ``"auto"``, a JSON file path, or a dict already read."""
    if isinstance(spec, str) and spec == "auto":
        return auto_map(keras_model, torch_model, example_nchw)
    mapping = read_map(spec) if isinstance(spec, (str, Path)) else dict(spec)
    return [pair(keras_model, torch_model, k, t) for k, t in mapping.items()]


def format_map(pairs: list[LayerPair], how: str) -> str:
    """The map as the command prints it: one line per pair, with where it is compared."""
    width = max([len(p.keras) for p in pairs] + [5])
    lines = [f"layer map ({how}): keras -> torch, compared at"]
    for p in pairs:
        lines.append(f"  {p.keras:<{width}} -> {p.torch}  [{p.keras_kind}; {p.compared_at}]")
    return "\n".join(lines)
