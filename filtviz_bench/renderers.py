"""The pictures of each contender in the quality benchmark, exported as their users get them (uint8).

* ``pixel``, ``fourier``: ``torch_filtviz.visualize_filters(method=...)`` on ``load_vgg16`` (the
  pictures are ``FilterResults.images``: the pixel method's display deprocessing, the fourier method's
  picture as is);
* ``lucent``: Lucent's ``render_vis`` with its defaults (FFT, decorrelated colours, standard transforms,
  Adam 0.05) on torchvision's VGG16 carrying the same Keras weights (in-place ReLUs: the hook sees the
  post-ReLU map), exported as ``(image * 255).astype(uint8)``; ``fixed_image_size`` = the picture's size,
  so the network sees the picture at the scale the evaluator shows it;
* ``lucent_224``: all of Lucent's defaults, including its upsampling of pictures under 224 px to 224
  before the model: the network then sees every feature ~1.6x larger than the exported picture has it;
* ``lucent_best``: as ``lucent`` with out-of-place ReLUs, so Lucent's hook sees the pre-activation.

The Lucent models are cut right after the target's ReLU (:func:`filtviz_bench.lucent_runner.keras_vgg16`
explains why that changes no picture): only the timed speed job runs Lucent's full network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from filtviz_bench import lucent_runner
from filtviz_bench.adapters import visualize
from filtviz_core import methods as core_methods

TORCH_METHODS = core_methods.METHODS  # every registered method (filtviz_core.methods.REGISTRY)
LUCENT_METHODS = ("lucent", "lucent_best", "lucent_224")
METHODS = TORCH_METHODS + LUCENT_METHODS
LABELS = {
    **{name: f"{name} (torch_filtviz)" for name in TORCH_METHODS},
    "lucent": "Lucent render_vis defaults, at the picture's size",
    "lucent_best": "Lucent, hook on the pre-activation",
    "lucent_224": "Lucent render_vis defaults, upsampled to 224 px",
}


@dataclass
class Pictures:
    """One method's pictures of some filters of one layer."""

    images: np.ndarray  # (F, H, W, 3) uint8, as exported
    dead: np.ndarray  # (F,) bool: reported dead by the method (Lucent reports nothing)
    seconds: float  # wall time of the rendering alone


Renderer = Callable[[str, list[int], int], Pictures]


def fourier_steps() -> int:
    """The fourier method's default number of steps."""
    return core_methods.default_steps("fourier")


def default_steps(method: str) -> int | None:
    """Each method's own default number of steps (the registry's for ours, Lucent's for Lucent)."""
    if method in TORCH_METHODS:
        return core_methods.default_steps(method)
    return lucent_runner.DEFAULT_STEPS


def unavailable(method: str) -> str | None:
    """None if ``method`` can run here, else why not."""
    if method in LUCENT_METHODS:
        return lucent_runner.lucent_available()
    return None


def torch_renderer(
    model: torch.nn.Module,
    method: str,
    *,
    size: int,
    seed: int,
    device: torch.device,
    precision: str = "fp32",
    options: dict[str, Any] | None = None,
    lr: float | None = None,
) -> Renderer:
    """Any torch_filtviz method (pixel, fourier, maco) for a batch of filters; ``options``: its ``method_options``."""
    extra: dict[str, Any] = {}
    if options:
        extra["method_options"] = options
    if lr is not None:
        extra["lr"] = lr

    def render(layer: str, filters: list[int], steps: int) -> Pictures:
        start = time.perf_counter()
        r = visualize(
            model,
            layer,
            filters,
            method=method,
            steps=steps,
            size=size,
            seed=seed,
            snapshots=None,
            device=device,
            precision=precision,
            **extra,
        )
        return Pictures(
            images=np.asarray(r.images, np.uint8), dead=np.asarray(r.dead, bool), seconds=time.perf_counter() - start
        )

    return render


def lucent_renderer(
    weights: str, method: str, *, size: int, seed: int, device: torch.device, upsample: bool | None = None
) -> Renderer:
    """Lucent's defaults (``render_vis``: FFT, decorrelated, standard transforms, Adam 0.05) for a batch
    of filters; ``lucent_best`` moves its hook to the pre-activation; ``upsample`` (default: only for
    ``lucent_224``) keeps render_vis's upsampling to 224 px."""
    full = lucent_runner.keras_vgg16(weights, inplace_relu=(method != "lucent_best"), device=device)
    upsample = (method == "lucent_224") if upsample is None else upsample

    def render(layer: str, filters: list[int], steps: int) -> Pictures:
        model = lucent_runner.truncated(full, layer)
        start = time.perf_counter()
        got = lucent_runner.render(
            model, layer, filters, steps=steps, size=size, seed=seed, upsample=upsample, device=device
        )
        return Pictures(images=got.images, dead=np.zeros(len(filters), bool), seconds=time.perf_counter() - start)

    return render
