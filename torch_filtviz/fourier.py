"""The fourier method's loop (tf_reference/SPEC.md §15): spectrum -> picture -> transform -> objective -> Adam.

One function, :func:`run_chunk`, drives the three seams for a batch of filters: the
parameterization (:class:`~torch_filtviz.parameterizations.FourierImage`), the transforms
(:func:`~torch_filtviz.transforms.resample` with the numpy draws of ``filtviz_core.transforms``)
and the optimizer (:class:`~torch_filtviz.optimizers.Adam`). The objective is the pixel method's
(:func:`~torch_filtviz.objectives.interior_mean` on the captured target), on what the network sees.

Speed: the forward pass stops after the layer (the capture), no weight gradient is built, the
picture is never upsampled (the network sees ``H + 2 pad - jitter - jitter2`` px), the transform is
one gather per step, the draws of every step go to the device once per chunk, and losses stay on
the device until the chunk ends. The batch is NHWC throughout, so with ``channels_last`` the
network gets it without a copy. The pixel method keeps its own loop (``ascent._run_chunk``), so its
numbers are untouched by this one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from filtviz_core import fourier as core
from filtviz_core import transforms as draws
from filtviz_core.methods import FourierOptions
from torch_filtviz import placement
from torch_filtviz import precision as precision_mode
from torch_filtviz.hooks import Capture, Target
from torch_filtviz.objectives import interior_mean
from torch_filtviz.optimizers import Adam
from torch_filtviz.parameterizations import FourierImage
from torch_filtviz.transforms import resample


def run_chunk(cap: Capture, target: Target, filters: list[int], *, seed: int, steps: int, lr: float,
              options: FourierOptions, height: int, width: int, snaps: tuple[int, ...], device: torch.device,
              precision: str, channels_last: bool, pbar: Any, model_dtype: torch.dtype = torch.float32
              ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], np.ndarray]:
    """SPEC §15.5-§15.8 for one chunk of filters: (raw, losses, snapshots, dead) as numpy, NHWC pictures."""
    n = len(filters)
    spectrum = torch.from_numpy(core.initial_spectra(filters, height, width, seed, options.init_std)).to(device)
    spectrum.requires_grad_(True)
    picture = FourierImage(height, width, options, device)
    out_h, out_w = draws.output_size(height, width, options)
    matrices = None
    if options.transforms:  # every step's draws (and the one the last loss is measured under), sent once
        matrices = torch.from_numpy(draws.affines(seed, filters, range(steps + 1), height, width, options)).to(device)
    adam = Adam(spectrum, lr, options.beta1, options.beta2, options.eps)
    index = torch.tensor(filters, device=device)
    rows = torch.arange(n, device=device)
    losses, dead, kept = placement.ascent_records(n, steps, device)
    autocast = precision_mode.autocast(device, precision)
    cast = model_dtype != torch.float32

    def seen(image: torch.Tensor, k: int) -> torch.Tensor:
        """What the network sees at step k (§15.3): the transformed picture, NCHW."""
        if matrices is not None:
            image = resample(image, matrices[k], out_h, out_w, options.pad_value)
        image = image.permute(0, 3, 1, 2)  # NHWC memory = channels_last
        return image if channels_last else image.contiguous()

    def objective(image: torch.Tensor) -> torch.Tensor:
        with autocast:
            act = cap(image.to(model_dtype) if cast else image)[target.name]
        return interior_mean(act, index, rows, target.channel_dim)

    frozen = None
    for k in range(max(steps, 1)):  # steps=0 still takes the gradient at the start, to tell dead filters
        image = picture(spectrum)
        if k in snaps:
            kept[k] = image.detach().clone()
        loss = objective(seen(image, k))
        (grad,) = torch.autograd.grad(loss.sum(), spectrum)
        losses[k] = loss.detach()
        if k == 0:
            dead = (grad == 0).flatten(1).all(dim=1)
            frozen = dead.view(n, 1, 1, 1, 1)
        if steps == 0:
            break
        adam.ascend(spectrum, torch.where(frozen, torch.zeros_like(grad), grad))  # dead filters stay put (§15.8)
        if pbar is not None:
            pbar.update(n)
    with torch.no_grad():
        image = picture(spectrum)
        if steps > 0:
            losses[steps] = objective(seen(image, steps))
            if steps in snaps:
                kept[steps] = image.clone()
        losses[:, dead] = losses[0, dead]  # a frozen filter's loss history is its first value (§15.8)

    def host(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy().astype(np.float32, copy=False)

    return host(image), placement.to_host(losses.t()), {s: host(t) for s, t in kept.items()}, dead.cpu().numpy()
