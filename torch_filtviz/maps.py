"""Feature maps: what given layers output for given images (the notebook's activation grids).

One gradient-free forward pass that stops after the deepest requested layer. An alias names the
Keras layer output (VGG16 ``block1_conv2`` = post-ReLU); a module path names that module's own
output (``features.2`` = the conv before its ReLU).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from filtviz_core.errors import FiltvizError
from filtviz_core.images import as_image_batch
from torch_filtviz.channels import input_channels
from torch_filtviz.hooks import capture, channels_first, resolve_target
from torch_filtviz.models import min_input_size
from torch_filtviz.placement import eval_mode, is_out_of_memory, model_device_dtype
from torch_filtviz.probe import check_fixed_size, classify_failure


def feature_maps(
    model: nn.Module, images: np.ndarray | torch.Tensor, layers: str | Sequence[str]
) -> dict[str, torch.Tensor]:
    """``{layer: (N, C, h, w) float32 tensor on the CPU}`` for each requested layer, in the order given
    (channels-last maps, such as an ``nn.Linear`` on NHWC, are put channels first).

    ``images``: numpy RGB pixels, (H, W, 3) or (N, H, W, 3), uint8 or float on the 0-255 scale,
    or a torch tensor (N, 3, H, W) / (3, H, W) of pixels. The model runs where its parameters are,
    in eval mode (its own modes are restored afterwards).
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise FiltvizError("no layer asked for")
    targets = [resolve_target(model, name) for name in names]
    device = model_device_dtype(model)[0]
    if isinstance(images, torch.Tensor):
        x = images[None] if images.ndim == 3 else images
        c = input_channels(model)
        if x.ndim != 4 or x.shape[1] != c:
            raise FiltvizError(f"image tensors must be (N, {c}, H, W) pixels, got shape {tuple(images.shape)}")
        x = x.to(device=device, dtype=torch.float32).contiguous()
        minimum = min_input_size(model, names)
        if min(x.shape[2:]) < minimum:
            raise FiltvizError(
                f"image of {x.shape[2]}x{x.shape[3]} px is too small for {names}: it needs at least {minimum} px"
            )
    else:
        batch = as_image_batch(images, minimum=min_input_size(model, names), channels=input_channels(model))
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(device).permute(0, 3, 1, 2).contiguous()
    check_fixed_size(model, *x.shape[2:], *x.shape[2:])  # a vision transformer: one line naming its size
    dtype = model_device_dtype(model)[1]
    try:
        with torch.no_grad(), eval_mode(model), capture(model, targets) as cap:
            values = cap(x.to(dtype))
    except (RuntimeError, ValueError, IndexError) as exc:
        if is_out_of_memory(exc):
            raise
        raise classify_failure(
            model, exc, targets[-1].path, ", ".join(names), int(x.shape[2]), int(x.shape[3])
        ) from None
    return {t.name: channels_first(t, values[t.name]).detach().float().cpu().contiguous() for t in targets}
