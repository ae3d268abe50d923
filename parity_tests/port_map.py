"""Which Keras layer is which torch module: the layer map of a port, and where each pair is compared.

A map pairs Keras layer names with torch module paths. It comes from a JSON file
(``{"keras_layer": "torch.module.path", ...}``; a SeparableConv2D may map to a list of two paths,
``["sep.depthwise", "sep.pointwise"]``) or ``auto``, for Sequential and Functional models alike
(branches, residual adds): the Keras layers in graph order (the model's topological order) are
paired with the torch modules in the order the forward pass calls them, by kind and output shape:

* a layer with weights (Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D, Dense,
  BatchNormalization, LayerNormalization) takes the next torch module with parameters of its kind,
  output shape and converted weight shape (looking further on when the next one does not fit: a
  branch called in another order; two branches alike in all three are paired in call order); a
  SeparableConv2D takes a depthwise conv (``groups = in_channels``) followed by a 1x1 conv: their parent
  module when it holds just the two, else the two as a list;
* a weightless layer (pooling, Add) takes a torch module of its kind (a class named ``*Pool*`` or
  ``*Add*``) with its output shape, where the port has one; where it has none the layer is skipped.

When a layer with weights finds no partner, one line names it, its kind and shape, and the next
torch module left; the command prints the map so the user can check it.

**Fused activations.** ``Conv2D(activation="relu")`` computes the convolution and its ReLU in one
layer, while a torch port applies the ReLU in a separate module or a functional call. Each pair
is compared like for like: when the Keras layer has a fused activation and the torch module is
not itself an activation module, both sides are compared **before the activation** (Keras:
the layer applied with a linear activation to its own input; torch: the module's output). When
the torch module *is* an activation (e.g. ``features.1``, an ``nn.ReLU``), both are compared
after it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core.errors import FiltvizError

KERAS_KINDS = {
    "Conv1D": "conv1d",
    "Conv2D": "conv2d",
    "Conv2DTranspose": "conv2d_transpose",
    "DepthwiseConv2D": "depthwise",
    "SeparableConv2D": "separable",
    "Dense": "dense",
    "BatchNormalization": "batchnorm",
    "LayerNormalization": "layernorm",
    "MaxPooling2D": "pool",
    "AveragePooling2D": "pool",
    "GlobalAveragePooling2D": "pool",
    "GlobalMaxPooling2D": "pool",
    "MaxPooling1D": "pool",
    "AveragePooling1D": "pool",
    "Add": "add",
}
WEIGHTLESS_KINDS = ("pool", "add")


@dataclass(frozen=True)
class LayerPair:
    """One mapped pair: where it is compared (``before_activation`` names the Keras layer's fused
    activation when both sides are compared before it, else None: outputs are compared)."""

    keras: str
    torch: str  # the module whose output is compared
    keras_kind: str
    torch_kind: str
    before_activation: str | None = None
    torch_parts: tuple[str, ...] = ()  # a SeparableConv2D's (depthwise, pointwise) module paths

    @property
    def compared_at(self) -> str:
        return f"before {self.before_activation}" if self.before_activation else "output"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "keras": self.keras,
            "torch": self.torch,
            "keras_kind": self.keras_kind,
            "torch_kind": self.torch_kind,
            "compared_at": self.compared_at,
        }
        if self.torch_parts:
            out["torch_parts"] = list(self.torch_parts)
        return out


def keras_kind(layer: Any) -> str:
    return KERAS_KINDS.get(type(layer).__name__, type(layer).__name__)


def torch_kind(module: Any) -> str:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        return "depthwise" if is_depthwise(module) else "conv2d"
    if isinstance(module, nn.Conv1d):
        return "conv1d"
    if isinstance(module, nn.ConvTranspose2d):
        return "conv2d_transpose"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "batchnorm"
    if isinstance(module, nn.LayerNorm):
        return "layernorm"
    if separable_parts(module) is not None:
        return "separable"
    name = type(module).__name__
    if "Pool" in name:
        return "pool"
    if "Add" in name:
        return "add"
    return name


def is_depthwise(module: Any) -> bool:
    from torch import nn

    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def is_pointwise(module: Any) -> bool:
    from torch import nn

    return isinstance(module, nn.Conv2d) and module.groups == 1 and tuple(module.kernel_size) == (1, 1)


def separable_parts(module: Any) -> tuple[str, str] | None:
    """(depthwise, pointwise) child names of a module that holds just those two convs with parameters."""
    with_params = [(n, m) for n, m in module.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    if len(with_params) == 2 and is_depthwise(with_params[0][1]) and is_pointwise(with_params[1][1]):
        return with_params[0][0], with_params[1][0]
    return None


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


def pair(keras_model: Any, torch_model: Any, keras_name: str, torch_path: str | Sequence[str]) -> LayerPair:
    """A :class:`LayerPair`, both ends checked to exist, with its comparison point decided. ``torch_path``:
    a module path, or a SeparableConv2D's [depthwise, pointwise] paths (compared at the pointwise conv)."""
    if not isinstance(torch_path, str):
        paths = list(torch_path)
        if len(paths) != 2 or not all(isinstance(x, str) for x in paths):
            raise FiltvizError(
                f"Keras {keras_name}: a list maps a SeparableConv2D to [depthwise, pointwise], got {paths}"
            )
        pair(keras_model, torch_model, keras_name, paths[0])  # it exists
        p = pair(keras_model, torch_model, keras_name, paths[1])
        return LayerPair(p.keras, p.torch, p.keras_kind, "separable", p.before_activation, (paths[0], paths[1]))
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
    parts = separable_parts(module) if keras_kind(layer) == "separable" else None
    full = tuple(f"{torch_path}.{x}" for x in parts) if parts else ()
    return LayerPair(keras_name, torch_path, keras_kind(layer), torch_kind(module), before, full)


@dataclass(frozen=True)
class Call:
    """One torch module's first call in the forward pass: its path, output shape (channels last, no batch)
    and whether it holds parameters of its own."""

    path: str
    module: Any
    shape: tuple[int, ...] | None
    params: bool


def torch_calls(model: Any, example: np.ndarray) -> list[Call]:
    """Every submodule's first call on ``example`` (NCHW/torch layout), in the order the calls end."""
    import torch

    from parity_tests.runners import inference_mode, model_device

    calls: dict[str, Call] = {}
    handles = []
    for path, module in model.named_modules():
        if not path:
            continue

        def hook(_m, _i, out, path=path, module=module):
            if path not in calls:
                shape = tuple(int(d) for d in out.shape[1:]) if isinstance(out, torch.Tensor) else None
                if shape is not None and len(shape) == 3:
                    shape = (shape[1], shape[2], shape[0])  # CHW -> HWC, as Keras
                own = any(True for _ in module.parameters(recurse=False))
                calls[path] = Call(path, module, shape, own)

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), inference_mode(model):
            model(torch.from_numpy(np.ascontiguousarray(example, np.float32)).to(model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return list(calls.values())


def keras_shapes(model: Any, example_nhwc: np.ndarray) -> dict[str, tuple[int, ...]]:
    """Each layer's output shape (no batch) on ``example_nhwc``."""
    import keras

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    outs = keras.Model(model.inputs[0], [layer.output for layer in layers])(
        np.asarray(example_nhwc, np.float32), training=False
    )
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {layer.name: tuple(int(d) for d in o.shape[1:]) for layer, o in zip(layers, outs)}


def _fmt_shape(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else "(" + ", ".join(map(str, shape)) + ")"


def _separable_groups(calls: list[Call], wanted: int) -> dict[str, tuple[str, str, str]]:
    """Depthwise or pointwise path -> (compared path, depthwise, pointwise) for up to ``wanted`` depthwise
    convs each followed (among the modules with parameters) by a 1x1 conv: Keras' SeparableConv2D."""
    with_params = [c for c in calls if c.params]
    groups: dict[str, tuple[str, str, str]] = {}
    for a, b in itertools.pairwise(with_params):
        if len(groups) >= 2 * wanted:
            break
        if a.path in groups or not (is_depthwise(a.module) and is_pointwise(b.module)):
            continue
        if b.module.in_channels != a.module.out_channels:
            continue
        parent = a.path.rpartition(".")[0]
        compared = b.path
        if parent and parent == b.path.rpartition(".")[0]:
            parent_call = next((c for c in calls if c.path == parent), None)
            if parent_call is not None and separable_parts(parent_call.module) is not None:
                compared = parent
        groups[a.path] = groups[b.path] = (compared, a.path, b.path)
    return groups


def _find(layer: Any, kind: str, shape: tuple[int, ...], calls: list[Call], used: set[str], groups, grouped):
    """The first unused torch module with parameters that fits a Keras layer with weights: (index, call)."""
    for i, c in enumerate(calls):
        if not c.params or c.path in used or c.shape != shape:
            continue
        if kind == "separable" and c.path in groups and groups[c.path][2] == c.path:
            return i, c
        plain = kind != "separable" and c.path not in grouped and torch_kind(c.module) == kind
        if plain and _weight_shape_fits(layer, kind, c.module):
            return i, c
    return None


def _weight_shape_fits(layer: Any, kind: str, module: Any) -> bool:
    """Whether the torch module's weight has the shape the Keras layer's kernel converts to (two branches'
    convs of one output shape but other kernels are told apart); True where there is nothing to compare."""
    kernel = getattr(layer, "kernel", None)
    weight = getattr(module, "weight", None)
    if kernel is None or weight is None:
        return True
    k = tuple(int(d) for d in kernel.shape)
    expected = {
        "conv2d": lambda: (k[3], k[2], k[0], k[1]),
        "conv1d": lambda: (k[2], k[1], k[0]),
        "conv2d_transpose": lambda: (k[3], k[2], k[0], k[1]),
        "depthwise": lambda: (k[2] * k[3], 1, k[0], k[1]),
        "dense": lambda: (k[1], k[0]),
    }.get(kind)
    return expected is None or tuple(weight.shape) == expected()


def auto_map(keras_model: Any, torch_model: Any, example_nchw: np.ndarray) -> list[LayerPair]:
    """Keras layers in graph order paired with torch modules in call order, by kind and output shape
    (module docstring); one line naming the first layer with weights that finds no partner."""
    from parity_tests.runners import to_nhwc

    for layer in keras_model.layers:
        if hasattr(layer, "layers") and layer.weights:
            raise FiltvizError(f"--map auto: Keras layer {layer.name!r} is a nested model; give the map as JSON")
    calls = torch_calls(torch_model, example_nchw)
    k_shapes = keras_shapes(keras_model, to_nhwc(np.asarray(example_nchw)))
    layers = [layer for layer in keras_model.layers if layer.name in k_shapes]
    groups = _separable_groups(calls, sum(keras_kind(layer) == "separable" for layer in layers))
    grouped = set(groups)
    used: set[str] = set()
    last = -1  # index in ``calls`` of the last torch module paired
    pairs = []
    for layer in layers:
        kind, shape = keras_kind(layer), k_shapes[layer.name]
        if layer.weights:
            found = _find(layer, kind, shape, calls, used, groups, grouped)
            if found is None:
                left = [c for c in calls if c.params and c.path not in used]
                hint = (
                    f"; the next torch module with parameters is {left[0].path} ({torch_kind(left[0].module)}, "
                    f"output {_fmt_shape(left[0].shape)})"
                    if left
                    else "; no torch module with parameters is left"
                )
                raise FiltvizError(
                    f"--map auto: cannot pair Keras layer {layer.name} ({kind}, output {_fmt_shape(shape)}): no "
                    f"torch module of that kind and output shape{hint}; give the map as JSON"
                )
            i, c = found
            parts: tuple[str, ...] = ()
            path = c.path
            if kind == "separable":
                path, dw, pw = groups[c.path]
                parts = (dw, pw)
                used.update({path, dw, pw})
            used.add(c.path)
            pairs.append(_pair_from(keras_model, torch_model, layer.name, path, parts))
            last = max(last, i)
        elif kind in WEIGHTLESS_KINDS:
            for i, c in enumerate(calls):
                fits = c.shape == shape and torch_kind(c.module) == kind
                if fits and i > last and not c.params and c.path not in used:
                    used.add(c.path)
                    pairs.append(_pair_from(keras_model, torch_model, layer.name, c.path, ()))
                    last = i
                    break
    if not pairs:
        raise FiltvizError("--map auto: no Keras layer could be paired with a torch module; give the map as JSON")
    return pairs


def _pair_from(keras_model: Any, torch_model: Any, keras_name: str, path: str, parts: tuple[str, ...]) -> LayerPair:
    p = pair(keras_model, torch_model, keras_name, path)
    kind = "separable" if parts else p.torch_kind
    return LayerPair(p.keras, p.torch, p.keras_kind, kind, p.before_activation, parts)


def read_map(path: str | Path) -> dict[str, Any]:
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
        or not all(
            isinstance(k, str) and (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)))
            for k, v in data.items()
        )
    ):
        raise FiltvizError(
            f"--map {path} must be a JSON object of Keras layer name -> torch module path, "
            'e.g. {"conv1": "features.0"}'
        )
    return data


def build_map(
    keras_model: Any, torch_model: Any, spec: str | Mapping[str, Any], example_nchw: np.ndarray
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
        parts = f" ({' + '.join(p.torch_parts)})" if p.torch_parts else ""
        lines.append(f"  {p.keras:<{width}} -> {p.torch}{parts}  [{p.keras_kind}; {p.compared_at}]")
    return "\n".join(lines)
