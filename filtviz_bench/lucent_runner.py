"""Lucent (``torch-lucent`` 0.1.8) run the way its users run it, for both benchmarks.

Users hand ``lucent.optvis.render.render_vis`` a torchvision model and an objective such as
``"features_28:5"``; Lucent hooks every module, names them by their path with ``_`` and reads the
hooked module's *output*. On torchvision's VGG16 the ReLU after each conv is in-place
(``nn.ReLU(inplace=True)``), so the tensor Lucent holds for ``features_28`` has been overwritten by
the ReLU by the time the objective reads it: Lucent optimizes the post-ReLU map, and a filter whose
map starts below zero everywhere has an exactly zero gradient and never moves (the dead filters that
torch_filtviz's pre-activation objective avoids). ``inplace_relu=False`` patches that: the hook then
sees the pre-activation ("Lucent at its best").

Lucent 0.1.8 calls ``kornia.get_rotation_matrix2d`` and ``kornia.warp_affine``, which current kornia
only has under ``kornia.geometry.transform``: :func:`import_lucent` aliases them before the import.
"""

from __future__ import annotations

import contextlib
import functools
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from filtviz_core import vgg16 as vgg_spec
from filtviz_core.errors import FiltvizRuntimeError

LUCENT_VERSION = "0.1.8"
DEFAULT_STEPS = 512  # render_vis(thresholds=(512,))
DEFAULT_LR = 0.05  # render_vis's Adam
UPSAMPLE_TO = 224  # render_vis upsamples smaller images to this before the model
INSTALL_HINT = (
    "pip install --no-deps torch-lucent==0.1.8 && pip install decorator kornia ipython "
    "(make bench and make quality do this)"
)


def module_name(layer: str) -> str:
    """Lucent's name of a Keras-named VGG16 conv: its torchvision module path joined by ``_``."""
    return f"features_{vgg_spec.TORCH_CONV_INDEX[layer]}"


def import_lucent() -> Any:
    """``lucent.optvis`` (render, param, objectives, transform), after aliasing the two kornia functions
    Lucent 0.1.8 expects at kornia's top level. Raises FiltvizRuntimeError when it is not installed."""
    try:
        import kornia
        import kornia.geometry.transform as kgt

        for name in ("get_rotation_matrix2d", "warp_affine"):
            if not hasattr(kornia, name):
                setattr(kornia, name, getattr(kgt, name))
        import lucent.optvis as optvis
        from lucent.optvis import objectives, param, render, transform  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"
        raise FiltvizRuntimeError(f"Lucent is not importable ({type(exc).__name__}: {exc}); {INSTALL_HINT}") from None
    return optvis


def lucent_available() -> str | None:
    """None if Lucent can run here, else why not."""
    try:
        import_lucent()
    except FiltvizRuntimeError as exc:
        return str(exc)
    return None


class UnitCaffe(nn.Module):
    """Lucent's images are RGB in [0, 1]; Keras' VGG16 weights want caffe input: x255, RGB -> BGR, minus means."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(vgg_spec.CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 255.0).flip(1) - self.mean.to(x.dtype)


class KerasVGG16(nn.Module):
    """``torchvision.models.vgg16`` carrying Keras' conv weights behind caffe preprocessing, with
    torchvision's module names (``features_28`` for Lucent). ``truncated`` ends the forward pass after
    ``features`` (see :func:`truncated`)."""

    def __init__(self, features: nn.Module, avgpool: nn.Module, classifier: nn.Module, truncated: bool = False) -> None:
        super().__init__()
        self.preprocess = UnitCaffe()
        self.features = features
        self.avgpool = avgpool
        self.classifier = classifier
        self.truncated = truncated

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.preprocess(x))
        if self.truncated:
            return x
        return self.classifier(torch.flatten(self.avgpool(x), 1))


@functools.lru_cache(maxsize=2)
def _torchvision_vgg16(weights: str) -> nn.Module:
    """torchvision's VGG16 with ``weights``' conv kernels, built once per process (its random classifier
    alone takes a second to initialise); callers share its modules, never change them."""
    import torchvision

    from filtviz_core.weights import load_tensors
    from torch_filtviz.models import keras_state_dict

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vgg = torchvision.models.vgg16(weights=None)
    tensors, _ = load_tensors(weights, seed=0, verify=True)
    vgg.features.load_state_dict(keras_state_dict(tensors))
    return vgg.eval().requires_grad_(False)


def keras_vgg16(weights: str = "keras", *, inplace_relu: bool = True, device: str | torch.device = "cpu") -> KerasVGG16:
    """The model Lucent's users would build: torchvision's VGG16 (its in-place ReLUs unless
    ``inplace_relu=False``; classifier seeded, unused by conv objectives) with ``weights``' conv
    kernels (``keras``, ``random`` or a file, as :func:`torch_filtviz.load_vgg16` reads them)."""
    vgg = _torchvision_vgg16(str(weights))
    layers = OrderedDict(
        (name, nn.ReLU(inplace=inplace_relu) if isinstance(module, nn.ReLU) else module)
        for name, module in vgg.features.named_children()
    )
    model = KerasVGG16(nn.Sequential(layers), vgg.avgpool, vgg.classifier)
    return model.eval().requires_grad_(False).to(device)


def truncated(model: KerasVGG16, layer: str) -> KerasVGG16:
    """The same model (shared modules, same names) ending right after ``layer``'s conv and its ReLU.
    Lucent's objective reads only that hook, and its gradient flows only through what comes before,
    so its pictures do not change; the needless rest of the forward pass is saved."""
    keep = model.features[: vgg_spec.TORCH_CONV_INDEX[layer] + 2]  # nn.Sequential slices keep their names
    return KerasVGG16(keep, model.avgpool, model.classifier, truncated=True).eval()


@contextlib.contextmanager
def hooks_removed_after(model: nn.Module) -> Iterator[None]:
    """render_vis never removes the forward hooks it puts on every module: remove them for it."""
    before = {id(mod): set(mod._forward_hooks) for mod in model.modules()}
    try:
        yield
    finally:
        for mod in model.modules():
            for key in set(mod._forward_hooks) - before.get(id(mod), set()):
                del mod._forward_hooks[key]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Lucent draws its start (torch) and its transforms (numpy) from the global generators: seed them
    for the run and give the caller's states back afterwards."""
    state = np.random.get_state()  # noqa: NPY002 - Lucent draws from numpy's global generator
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002 - likewise
        try:
            yield
        finally:
            np.random.set_state(state)  # noqa: NPY002 - likewise


@dataclass
class LucentRun:
    """One render_vis call over a batch (one image per filter)."""

    images: np.ndarray  # (F, H, W, 3) uint8, exported as Lucent does: (image * 255).astype(uint8)
    final: torch.Tensor  # (F, 3, H, W) the last image as the model saw it before its transforms
    steps: int


def render(
    model: nn.Module,
    layer: str,
    filters: Sequence[int],
    *,
    steps: int,
    size: int = 128,
    seed: int = 0,
    lr: float = DEFAULT_LR,
    init: torch.Tensor | None = None,
    transforms: str = "standard",
    upsample: bool = True,
    device: str | torch.device = "cpu",
) -> LucentRun:
    """``render_vis`` for one image per filter of ``layer`` (batch element i maximizes ``filters[i]``
    with Lucent's ``channel`` objective, the mean of the hooked module's output).

    Lucent's defaults unless told otherwise: ``param.image(size, batch=F)`` (FFT, decorrelated colours,
    sigmoid), ``transform.standard_transforms``, Adam(lr 0.05), upsampling to 224 px when the image is
    smaller (``upsample=False`` passes ``fixed_image_size=size``). ``init``: optimize these (F, 3, H, W)
    pixels directly instead (Lucent's pixel parameterization of a given start, no sigmoid);
    ``transforms="none"`` drops the transforms. ``preprocess=False`` because the model preprocesses.
    """
    optvis = import_lucent()
    objective = optvis.objectives.Objective.sum(
        [optvis.objectives.channel(module_name(layer), int(f), batch=i) for i, f in enumerate(filters)]
    )
    chosen = {"standard": None, "none": []}[transforms]
    with seeded(seed), hooks_removed_after(model):
        if init is not None:
            x = init.detach().clone().to(device).requires_grad_(True)
            params, image_f = [x], (lambda: x)
        else:
            params, image_f = optvis.param.image(size, batch=len(filters))
        if steps:
            optvis.render.render_vis(
                model,
                objective,
                param_f=lambda: (params, image_f),
                optimizer=lambda p: torch.optim.Adam(p, lr=lr),
                transforms=chosen,
                preprocess=False,
                thresholds=(steps,),
                progress=False,
                show_image=False,
                fixed_image_size=None if upsample else size,
            )
        with torch.no_grad():
            final = image_f().detach()
    images = (final.permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8) if init is None else np.zeros(0, np.uint8)
    return LucentRun(images=images, final=final, steps=steps)
