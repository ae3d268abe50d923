"""Networks that take RGB pixels (0-255, NCHW) and preprocess them themselves.

:class:`PixelModel` is any network behind its own preprocessing (:mod:`torch_filtviz.preprocessing`),
so the pixel method keeps working in 0-255 pixel units whatever the network: :func:`wrap_model`
makes one from your ``nn.Module``; :func:`load_vgg16` makes VGG16's conv base carrying the Keras
ImageNet weights (from the neutral safetensors file, kernels HWIO -> OIHW) behind Keras' "caffe"
preprocessing, so it computes exactly what ``keras.applications.VGG16`` computes. Networks by
name (torchvision's, or your own factory) are loaded by :mod:`torch_filtviz.zoo`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from filtviz_core import vgg16 as spec
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError
from filtviz_core.weights import NAMED_SOURCES, check_weights_choice, load_tensors
from torch_filtviz.channels import first_convolution
from torch_filtviz.checkpoints import apply_state, load_state_file, torchvision_weights
from torch_filtviz.preprocessing import (  # noqa: F401
    DEFAULT_PREPROCESS,
    DEFAULT_PREPROCESS_NOT_RGB,
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    CaffePreprocess,
    TorchvisionPreprocess,
    make_preprocess,
    preprocess_name,
)
from torch_filtviz.targets import layer_names  # noqa: F401  (re-exported)

WEIGHT_NAMES = (*NAMED_SOURCES, "torchvision")


class PixelModel(nn.Module):
    """A network that takes pixel images (N, C, H, W, 0-255; C = ``in_channels``, 3 for RGB) and preprocesses
    them itself.

    Attributes: ``preprocess``, ``features`` (the network), ``name``, ``aliases`` (layer name ->
    module path, e.g. VGG16's Keras names), ``weights_info`` (run.json's ``weights`` entry), ``in_channels``
    (the pictures' channel count: 1 grey, 3 RGB, N multispectral) and
    ``network_prefix``: ``"features."`` when the network is a wrapped user or torchvision model, so
    its own module paths (``layer4.1.conv2``) name its layers; ``""`` for VGG16, whose paths
    (``features.28``) are torchvision's ``vgg16()`` paths already.
    """

    def __init__(
        self,
        preprocess: nn.Module,
        features: nn.Module,
        name: str,
        aliases: dict[str, str] | None = None,
        weights_info: dict | None = None,
        network_prefix: str = "",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.preprocess = preprocess
        self.features = features
        self.name = name
        self.aliases = dict(aliases or {})
        self.weights_info = dict(weights_info or {})
        self.network_prefix = network_prefix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.preprocess(x))

    def describe(self) -> dict:
        """run.json's ``model`` entry: what network, behind which preprocessing."""
        described: dict[str, Any] = {
            "name": self.name,
            "class": type(self.features).__name__,
            "preprocess": preprocess_name(self.preprocess),
        }
        if self.in_channels != 3:  # RGB models' records stay as they were
            described["in_channels"] = self.in_channels
        return described


def wrap_model(
    network: nn.Module,
    preprocess: str | nn.Module | Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    name: str | None = None,
    weights_info: dict | None = None,
    aliases: dict[str, str] | None = None,
    in_channels: int | None = None,
) -> PixelModel:
    """Your ``nn.Module`` behind its preprocessing, taking pixels (0-255, NCHW) like every model here.

    ``preprocess``: ``"imagenet"`` (torchvision's weights: /255, ImageNet mean/std; the default for an RGB
    network; None picks it, or ``"unit"`` for a grey or multispectral one, ``ToTensor()``'s convention),
    ``"caffe"`` (Keras' VGG weights), ``"none"`` (the network takes 0-255 pixels), ``"unit"`` (/255),
    ``"symmetric"`` (/127.5 - 1), ``"mnist"`` ((x/255 - 0.1307)/0.3081), or your own function/module of
    an NCHW pixel tensor. ``in_channels``: the pictures' channel count (1 grey, 3 RGB, N multispectral);
    None reads it from the network's first convolution (3 when it has none); a count the first
    convolution contradicts is refused. imagenet and caffe are RGB-only: a grey or multispectral model
    needs one of the others. Layers keep the network's own module paths (``layer4.1.conv2``); run.json
    records the name, class and preprocessing. A :class:`PixelModel` is returned as it is.

    >>> from torch import nn
    >>> grey = wrap_model(nn.Sequential(nn.Conv2d(1, 4, 3)), "unit")
    >>> grey.in_channels, grey.describe()["preprocess"]
    (1, 'unit')
    """
    if isinstance(network, PixelModel):
        return with_in_channels(network, in_channels)
    if not isinstance(network, nn.Module):
        raise FiltvizError(f"expected an nn.Module to wrap, got {type(network).__name__}")
    channels = _checked_channels(network, in_channels)
    if preprocess is None:
        preprocess = DEFAULT_PREPROCESS if channels == 3 else DEFAULT_PREPROCESS_NOT_RGB
    module, _ = make_preprocess(preprocess, channels)
    info = dict(weights_info or {"source": "as built", "sha256": None})
    return PixelModel(
        module,
        network,
        name or type(network).__name__.lower(),
        aliases,
        info,
        network_prefix="features.",
        in_channels=channels,
    )


def _checked_channels(network: nn.Module, in_channels: int | None) -> int:
    """The input channel count: ``in_channels`` when given and not contradicted by the first convolution."""
    from filtviz_core.algorithm import check_channels, check_given_channels

    first = first_convolution(network)
    if first is None:  # nothing to read the count from: the given one, or RGB
        return 3 if in_channels is None else check_channels(in_channels)
    where = f"first convolution ({first[0] or type(first[1]).__name__})"
    return check_given_channels(in_channels, int(first[1].in_channels), where)


def with_in_channels(model: PixelModel, in_channels: int | None) -> PixelModel:
    """``model`` with its pictures' channel count checked against ``in_channels`` (None: as it is) and set:
    what ``--in-channels`` does to a loaded model. Refused in one line when the first convolution or the
    preprocessing (imagenet, caffe: RGB only) says otherwise."""
    if in_channels is None:
        return model
    channels = _checked_channels(model.features, in_channels)
    name = preprocess_name(model.preprocess)
    if name in ("imagenet", "caffe"):
        from filtviz_core.preprocessing import check_preprocess

        check_preprocess(name, channels)
    model.in_channels = channels
    return model


def vgg16_aliases() -> dict[str, str]:
    """Keras layer name -> module path in :class:`PixelModel`. A conv's Keras output is post-ReLU,
    so ``block1_conv1`` names the ReLU after ``features.0``; ``features.0`` itself is the pre-activation."""
    paths = {name: idx + 1 for name, idx in spec.TORCH_CONV_INDEX.items()}
    paths.update(spec.TORCH_POOL_INDEX)
    return {name: f"features.{idx}" for name, idx in sorted(paths.items(), key=lambda item: item[1])}


def _vgg16_features() -> nn.Sequential:
    from torchvision.models import vgg16

    features = vgg16(weights=None).features
    for i, module in enumerate(features):
        if isinstance(module, nn.ReLU):  # out of place: captured conv outputs stay as they were computed
            features[i] = nn.ReLU(inplace=False)
    return features


def keras_state_dict(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """torchvision ``features`` state dict from Keras-named HWIO tensors (kernels -> OIHW)."""
    state: dict[str, torch.Tensor] = {}
    for name, idx in spec.TORCH_CONV_INDEX.items():
        state[f"{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(tensors[f"{name}/kernel"].transpose(3, 2, 0, 1)))
        state[f"{idx}.bias"] = torch.from_numpy(np.ascontiguousarray(tensors[f"{name}/bias"]))
    return state


def load_vgg16(
    weights: str | os.PathLike[str] = "keras",
    *,
    device: str | torch.device | None = None,
    seed: int = 0,
    verify: bool = True,
) -> PixelModel:
    """VGG16's conv base (Keras ``include_top=False``), ``eval()``, parameters frozen.

    ``weights``: ``"keras"`` (Keras ImageNet weights, caffe preprocessing; offline via the
    verified neutral file), ``"torchvision"`` (torchvision's IMAGENET1K_V1, RGB mean/std; downloads
    it unless it is in torch's cache), ``"random"`` (seeded, for timing), or a path to a weights
    file (Keras-format ``.safetensors``/``.h5``/``.onnx``, or a torchvision ``vgg16`` state dict
    ``.pth``/``.pt``, which gets the ImageNet mean/std preprocessing).
    The model takes RGB images in 0-255 pixel units, (N, 3, H, W) float.
    """
    check_weights_choice(weights, WEIGHT_NAMES)
    features = _vgg16_features()
    if str(weights) == "torchvision":
        source = torchvision_weights("vgg16", "IMAGENET1K_V1")
        features.load_state_dict({k[len("features.") :]: v for k, v in source.items() if k.startswith("features.")})
        preprocess: nn.Module = TorchvisionPreprocess()
        info = {"source": "torchvision:IMAGENET1K_V1", "sha256": None}
    elif str(weights).lower().endswith((".pth", ".pt")):
        state, info = load_state_file(weights)
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        apply_state(features, state, f"vgg16 (torchvision layout, features.*) from {weights}")
        preprocess = TorchvisionPreprocess()
    else:
        tensors, info = load_tensors(weights, seed=seed, verify=verify)
        features.load_state_dict(keras_state_dict(tensors))
        preprocess = CaffePreprocess()
    model = PixelModel(preprocess, features, "vgg16", vgg16_aliases(), info)
    model.eval().requires_grad_(False)
    if device is not None:
        model.to(resolve_device(device))
    return model


def min_input_size(model: nn.Module, layers: str | list[str] | tuple[str, ...]) -> int:
    """Smallest square input (px) whose maps at ``layers`` are at least 1x1: known for VGG16's Keras
    names; 1 for anything else (a too-small input then fails in the forward pass, where
    :mod:`torch_filtviz.probe` finds the real minimum)."""
    names = [layers] if isinstance(layers, str) else list(layers)
    aliases = getattr(model, "aliases", {}) or {}
    if getattr(model, "name", None) != "vgg16":
        return 1
    return max([spec.min_size_for(name) for name in names if name in aliases], default=1)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None picks CUDA, then MPS, then CPU; anything else is passed to ``torch.device``."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise FiltvizError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N, mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise FiltvizRuntimeError("device 'cuda' asked for, but no CUDA GPU is available here; use --device cpu")
    if resolved.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise FiltvizRuntimeError("device 'mps' asked for, but MPS is not available here; use --device cpu")
    return resolved
