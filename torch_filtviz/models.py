"""VGG16 for PyTorch with its preprocessing built in: the model takes RGB pixels (0-255, NCHW).

``load_vgg16(weights="keras")`` is torchvision's ``vgg16().features`` carrying the Keras ImageNet
weights (from the neutral safetensors file, kernels HWIO -> OIHW), preceded by Keras' "caffe"
preprocessing, so it computes exactly what ``keras.applications.VGG16`` computes.
``weights="torchvision"`` gives torchvision's own weights behind the same interface.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from filtviz_core import vgg16 as spec
from filtviz_core.errors import FiltvizError, WeightsError
from filtviz_core.weights import NAMED_SOURCES, check_weights_choice, load_tensors

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
WEIGHT_NAMES = (*NAMED_SOURCES, "torchvision")


class CaffePreprocess(nn.Module):
    """Keras "caffe" preprocessing: RGB -> BGR, subtract the ImageNet BGR means, 0-255 scale."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(spec.CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) - self.mean


class TorchvisionPreprocess(nn.Module):
    """torchvision's ImageNet preprocessing: /255, then mean/std per RGB channel."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class PixelModel(nn.Module):
    """A conv base that takes RGB pixel images (N, 3, H, W, 0-255) and preprocesses them itself.

    Attributes: ``preprocess``, ``features`` (the network), ``name`` ("vgg16"), ``aliases``
    (Keras layer name -> module path), ``weights_info`` (run.json's ``weights`` entry).
    """

    def __init__(self, preprocess: nn.Module, features: nn.Module, name: str,
                 aliases: dict[str, str] | None = None, weights_info: dict | None = None) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.features = features
        self.name = name
        self.aliases = dict(aliases or {})
        self.weights_info = dict(weights_info or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.preprocess(x))


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
        if isinstance(module, nn.ReLU):  # an in-place ReLU would overwrite captured conv outputs
            features[i] = nn.ReLU(inplace=False)
    return features


def keras_state_dict(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """torchvision ``features`` state dict from Keras-named HWIO tensors (kernels -> OIHW)."""
    state: dict[str, torch.Tensor] = {}
    for name, idx in spec.TORCH_CONV_INDEX.items():
        state[f"{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(tensors[f"{name}/kernel"].transpose(3, 2, 0, 1)))
        state[f"{idx}.bias"] = torch.from_numpy(np.ascontiguousarray(tensors[f"{name}/bias"]))
    return state


def load_vgg16(weights: str | os.PathLike[str] = "keras", *, device: str | torch.device | None = None,
               seed: int = 0, verify: bool = True) -> PixelModel:
    """VGG16's conv base (Keras ``include_top=False``), ``eval()``, parameters frozen.

    ``weights``: ``"keras"`` (Keras ImageNet weights, caffe preprocessing; offline via the
    verified neutral file), ``"torchvision"`` (torchvision's IMAGENET1K_V1, RGB mean/std; needs
    its download or cache), ``"random"`` (seeded, for timing), or a path to a weights file.
    The model takes RGB images in 0-255 pixel units, (N, 3, H, W) float.
    """
    check_weights_choice(weights, WEIGHT_NAMES)
    features = _vgg16_features()
    if str(weights) == "torchvision":
        from torchvision.models import VGG16_Weights, vgg16

        try:
            source = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).features
        except Exception as exc:  # network or cache failure
            raise WeightsError(f"torchvision's VGG16 weights are not available here: {exc}") from None
        features.load_state_dict(source.state_dict())
        preprocess: nn.Module = TorchvisionPreprocess()
        info = {"source": "torchvision:IMAGENET1K_V1", "sha256": None}
    else:
        tensors, info = load_tensors(weights, seed=seed, verify=verify)
        features.load_state_dict(keras_state_dict(tensors))
        preprocess = CaffePreprocess()
    model = PixelModel(preprocess, features, "vgg16", vgg16_aliases(), info)
    model.eval().requires_grad_(False)
    if device is not None:
        model.to(resolve_device(device))
    return model


def layer_names(model: nn.Module, kind: str = "all") -> list[str]:
    """Selectable layer names of ``model`` in network order: its Keras-style aliases if it has
    them (VGG16: ``block1_conv1`` ... ``block5_pool``), else leaf module paths.

    ``kind``: ``"all"`` (the default) or ``"conv"`` (conv layers only).
    """
    aliases: dict[str, str] = getattr(model, "aliases", {}) or {}
    if aliases:
        names = list(aliases)
        return [n for n in names if "_conv" in n] if kind == "conv" else names
    leaves = [name for name, module in model.named_modules() if name and not list(module.children())]
    if kind == "conv":
        return [n for n in leaves if isinstance(model.get_submodule(n), nn.Conv2d)]
    return leaves


def min_input_size(model: nn.Module, layers: str | list[str] | tuple[str, ...]) -> int:
    """Smallest square input (px) whose maps at ``layers`` are at least 1x1: known for VGG16's Keras
    names; 1 for anything else (a too-small input then fails in the forward pass, which callers report)."""
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
        raise FiltvizError("device 'cuda' asked for, but no CUDA GPU is available here; use --device cpu")
    return resolved
