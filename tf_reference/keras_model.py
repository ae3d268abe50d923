"""Any Keras model in tf_reference: loading it, how it sees pixels, and which tensor a layer name denotes.

VGG16 (``load_vgg16``) is the canonical spec; every other Keras model comes in through
:func:`load_model` (a ``.keras``/``.h5``/``.hdf5`` file, or a ``keras.applications`` name, offline),
behind a named input scaling (``filtviz_core.preprocessing``: ``none`` by default, as 0-255 pixels).

``objective="pre_relu"`` means, as on the torch side (``torch_filtviz/targets.py``), the **input of the
activation that follows** the layer: the layer computed with a linear activation when the activation is
fused (``Conv2D(activation="relu")``), else the input of the first ``Activation``/``ReLU``-like layer
reached through channel-wise steps (``BatchNormalization``, ``Dropout``, a residual ``Add``). An
activation layer's pre-activation is its own input. ``"post_relu"`` is that activation's output (the
layer's own output when it has none after it). :func:`resolve` says which tensor was used, in words,
and :meth:`KerasTarget.describe` is run.json's ``target`` entry.

>>> import keras
>>> from tf_reference.keras_model import resolve
>>> inp = keras.Input((16, 16, 1))
>>> x = keras.layers.Conv2D(4, 3, name="conv")(inp)
>>> x = keras.layers.BatchNormalization(name="bn")(x)
>>> out = keras.layers.ReLU(name="relu")(x)
>>> resolve(keras.Model(inp, out), "conv", "pre_relu").describe()["tensor"]
'bn output'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from filtviz_core import algorithm
from filtviz_core.errors import FiltvizError
from filtviz_core.preprocessing import check_preprocess
from tf_reference.model import get_layer, input_channels, preprocess_fn, preprocess_name

__all__ = [
    "KerasTarget",
    "capture",
    "channel_count",
    "describe_model",
    "input_channels",
    "load_model",
    "preprocess_fn",
    "preprocess_name",
    "resolve",
]

MODEL_FILES = (".keras", ".h5", ".hdf5")
ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")
# Layers that keep each channel where it is: the walk to the activation goes through them.
CHANNEL_WISE = ("BatchNormalization", "Dropout", "SpatialDropout2D", "GaussianNoise", "Add", "Identity")


# --- loading ----------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def application_names() -> list[str]:
    """The ``keras.applications`` model builders (``VGG16``, ``MobileNetV2``, ``ResNet50``, ...)."""
    return sorted(
        name
        for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name, None))
    )


def load_model(
    path_or_name: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    preprocess: str | None = None,
    input_shape: Sequence[int] | None = None,
) -> keras.Model:
    """Any Keras model, ready for ``summary``, ``feature_maps``, ``visualize_filters`` and ``render``.

    ``path_or_name``: a ``.keras``, ``.h5`` or ``.hdf5`` file (Keras 3 or the legacy Keras 2 HDF5
    layout; loaded without its training configuration), ``"vgg16"`` (the canonical model,
    :func:`tf_reference.model.load_vgg16`, ``weights`` as there), or a ``keras.applications`` name
    such as ``"MobileNetV2"`` (built with ``include_top=False``; ``weights`` ``None`` for Keras' own
    random init or a local weights file — ``"imagenet"`` is refused, it needs a download).
    ``preprocess``: how the model sees 0-255 pixels (``filtviz_core.preprocessing.PREPROCESSING``);
    default ``none`` (``caffe`` for vgg16). ``input_shape``: for an application name, (H, W, C).
    The model carries ``filtviz_weights`` (run.json's source and SHA-256), ``filtviz_preprocess`` and
    ``filtviz_name``.

    >>> model = load_model("MobileNetV2", input_shape=(32, 32, 3))  # doctest: +SKIP
    >>> model.filtviz_preprocess
    'none'
    """
    text = os.fspath(path_or_name)
    if text.lower() == "vgg16":
        from tf_reference.model import load_vgg16

        model = load_vgg16("keras" if weights is None else weights)
        model.filtviz_preprocess = check_preprocess(preprocess or "caffe", 3)
        model.filtviz_name = "vgg16"
        return model
    path = Path(text)
    if path.suffix.lower() in MODEL_FILES:
        if not path.is_file():
            raise FiltvizError(f"model file {text}: no such file")
        if weights is not None:
            raise FiltvizError(f"model file {text} holds its own weights; weights= is for application names")
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # noqa: BLE001 - Keras raises many kinds for unreadable files
            raise FiltvizError(f"model file {text}: cannot load it ({_first_line(exc)})") from None
        info = {"source": f"file:{path.name}", "sha256": _sha256(path)}
    elif path.suffix or os.sep in text:
        raise FiltvizError(
            f"model {text!r}: expected a {', '.join(MODEL_FILES)} file or a keras.applications name such as "
            "MobileNetV2 (or vgg16)"
        )
    else:
        model, info = _application(text, weights, input_shape)
    if not getattr(model, "inputs", None) or len(model.inputs) != 1:
        raise FiltvizError(f"model {text}: needs a built model with one image input (a Functional or Sequential model)")
    model.filtviz_weights = info
    model.filtviz_preprocess = check_preprocess(preprocess or "none", input_channels(model))
    model.filtviz_name = path.stem if path.suffix else text
    return model


def _application(name: str, weights: Any, input_shape: Sequence[int] | None) -> tuple[keras.Model, dict]:
    names = application_names()
    match = {n.lower(): n for n in names}.get(name.lower())
    if match is None:
        raise FiltvizError(
            f"unknown model {name!r}: give a .keras/.h5/.hdf5 file or a keras.applications name "
            f"({', '.join(names[:6])}, ...)"
        )
    if weights is not None and str(weights) == "imagenet":
        raise FiltvizError(
            f"{match} with weights='imagenet' needs a download (offline here): use weights=None (random) "
            "or a local weights file"
        )
    source: dict[str, Any] = {"source": f"keras.applications.{match}:random", "sha256": None}
    if weights is not None and str(weights) != "random":
        wpath = Path(os.fspath(weights))
        if not wpath.is_file():
            raise FiltvizError(f"weights {weights}: no such file (weights: None, 'random' or a local file)")
        source = {"source": f"file:{wpath.name}", "sha256": _sha256(wpath)}
    shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
    try:
        model = getattr(keras.applications, match)(include_top=False, weights=None, input_shape=shape)
        if source["sha256"] is not None:
            model.load_weights(str(weights))
    except ValueError as exc:
        raise FiltvizError(f"{match}: {_first_line(exc)}") from None
    return model, source


# --- input --------------------------------------------------------------------------------------------


def describe_model(model: keras.Model) -> dict[str, Any]:
    """run.json's ``model`` entry, as the torch side writes it: name, class, preprocessing."""
    return {
        "name": getattr(model, "filtviz_name", None) or model.name,
        "class": type(model).__name__,
        "preprocess": preprocess_name(model),
    }


# --- the graph, and which tensor a layer name denotes ---------------------------------------------------


def _consumers(model: keras.Model) -> dict[str, list[Any]]:
    """Layer name -> the layers of ``model`` that take its output, from the model's own nodes."""
    out: dict[str, list[Any]] = {layer.name: [] for layer in model.layers}
    for nodes in getattr(model, "_nodes_by_depth", {}).values():
        for node in nodes:
            for tensor in node.input_tensors:
                source = tensor._keras_history.operation
                if source.name in out and node.operation not in out[source.name]:
                    out[source.name].append(node.operation)
    return out


def fused_activation(layer: Any) -> str | None:
    """The name of a layer's own non-linear activation (``Conv2D(activation="relu")``), else None."""
    activation = getattr(layer, "activation", None)
    if activation is None or type(layer).__name__ in ACTIVATION_LAYERS:
        return None
    name = getattr(activation, "__name__", type(activation).__name__)
    return None if name == "linear" else name


@dataclass(frozen=True)
class KerasTarget:
    """The tensor a layer name denotes: ``source``'s ``where`` (``"output"``, ``"input"``, or
    ``"linear"``: the layer computed with its fused activation switched off); ``note`` says why."""

    name: str
    activation: str
    source: str
    where: str
    note: str

    def describe(self) -> dict[str, Any]:
        """run.json's ``target`` entry."""
        tensor = {"linear": f"{self.source} before its fused activation"}.get(self.where, f"{self.source} {self.where}")
        return {
            "layer": self.name,
            "module": self.source,
            "activation": self.activation,
            "tensor": tensor,
            "note": self.note,
        }


def resolve(model: keras.Model, name: str, activation: str = algorithm.DEFAULT_OBJECTIVE) -> KerasTarget:
    """Which tensor ``name`` denotes under ``activation`` (module docstring); one line when none fits."""
    algorithm.check_objective(activation)
    target = _resolve(model, get_layer(model, name), activation)
    if target is None:
        raise FiltvizError(
            f"activation='pre_relu' needs a layer followed by an activation and {name} "
            f"({type(model.get_layer(name)).__name__}) is not one (use activation='post_relu', or one of: "
            f"{', '.join(pre_activation_layers(model)[:12])})"
        )
    return target


def _resolve(model: keras.Model, layer: Any, activation: str) -> KerasTarget | None:
    name = layer.name
    kind = type(layer).__name__
    fused = fused_activation(layer)
    post = activation == "post_relu"
    if fused:
        if post:
            return KerasTarget(name, activation, name, "output", f"the layer's output, after its fused {fused}")
        return KerasTarget(name, activation, name, "linear", f"{name} computed with its fused {fused} switched off")
    if kind in ACTIVATION_LAYERS:
        where = "output" if post else "input"
        return KerasTarget(name, activation, name, where, f"{name} is the activation ({kind}): its {where}")
    consumers = _consumers(model)
    current = layer
    while len(consumers.get(current.name, [])) == 1:
        nxt = consumers[current.name][0]
        nxt_kind = type(nxt).__name__
        if nxt_kind in ACTIVATION_LAYERS:
            if post:
                return KerasTarget(name, activation, nxt.name, "output", f"the output of {nxt.name} ({nxt_kind})")
            via = f" through {current.name}" if current is not layer else ""
            return KerasTarget(
                name, activation, current.name, "output", f"the input of {nxt.name} ({nxt_kind}) that follows{via}"
            )
        if nxt_kind not in CHANNEL_WISE or fused_activation(nxt):
            break
        current = nxt
    if post:
        return KerasTarget(name, activation, name, "output", "the layer's output (no activation follows it)")
    return None


def pre_activation_layers(model: keras.Model) -> list[str]:
    """The layers that have a pre-activation (a fused or a following activation), in model order."""
    return [layer.name for layer in model.layers[1:] if _resolve(model, layer, "pre_relu") is not None]


@contextlib.contextmanager
def _linear(layer: Any) -> Iterator[Any]:
    saved = layer.activation
    layer.activation = keras.activations.linear
    try:
        yield layer
    finally:
        layer.activation = saved


def _is_spec_capture(model: keras.Model, targets: Sequence[KerasTarget]) -> bool:
    """True where ``tf_reference.objectives.capture_fn`` computes these targets as they are (the spec's
    VGG16 path: fused Conv2D pre-activations, or layer outputs), so its exact arithmetic is kept."""
    for t in targets:
        if t.where == "linear" and type(model.get_layer(t.source)) is keras.layers.Conv2D:
            continue
        if t.where == "output" and t.source == t.name:
            continue
        return False
    return True


def capture(model: keras.Model, layers: Sequence[str], activation: str = algorithm.DEFAULT_OBJECTIVE):
    """``m`` (the model's input) -> ``{layer: tensor}`` for every layer, one forward pass (``objectives.capture_fn``
    for what it covers, the spec's path; the resolved targets otherwise)."""
    from tf_reference.objectives import capture_fn

    layers = list(dict.fromkeys(layers))
    targets = []
    for name in layers:
        try:
            targets.append(resolve(model, name, activation))
        except FiltvizError:
            return capture_fn(model, layers, activation)  # its own one line for what it refuses
    if _is_spec_capture(model, targets):
        return capture_fn(model, layers, activation)
    sources = [model.get_layer(t.source) for t in targets]
    outs = [s.input if t.where in ("input", "linear") else s.output for t, s in zip(targets, sources)]
    probe = keras.Model(model.inputs[0], outs)

    def run(m: tf.Tensor) -> dict[str, tf.Tensor]:
        values = probe(m, training=False)
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        captured = {}
        for t, s, v in zip(targets, sources, values):
            if t.where == "linear":
                with _linear(s):
                    v = s(v, training=False)
            captured[t.name] = v
        return captured

    return run


def channel_count(model: keras.Model, name: str, activation: str = algorithm.DEFAULT_OBJECTIVE) -> int:
    """How many filters (channels: the last dimension) ``name``'s resolved tensor has."""
    t = resolve(model, name, activation)
    source = model.get_layer(t.source)
    shape = source.input.shape if t.where == "input" else source.output.shape
    if t.where == "linear":
        shape = source.output.shape
    last = shape[-1] if len(shape) else None
    if last is None:
        raise FiltvizError(f"{name}: its channel count is not fixed ({tuple(shape)})")
    return int(last)
