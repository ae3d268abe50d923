"""What a failed forward pass means: a too-small input, an input the model does not take, or a real failure.

A network given a too-small image fails somewhere inside (a pooling window larger than its map,
an empty tensor). That deserves "size 8 px is too small for layer4: it needs at least 33 px" —
but only when the size really is the cause: a bf16 model, a 1-channel model or a CUDA error must
be reported as what it is. The test is direct: the same network is run on a larger image; if that
works, the size was the cause and the smallest size that works is found by bisection.

Some networks take one input size only (vision transformers: torchvision's ``VisionTransformer``
asserts ``image_size``, timm's patch embedding its ``img_size``; torchvision's ``MaxVit`` is built for
one size). :func:`fixed_input_size` reads that size from the model, so probes run at it and a wrong
size is refused in one line naming the size the model needs (:func:`check_fixed_size`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from filtviz_core.cli_common import first_line
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError
from torch_filtviz.channels import input_channels
from torch_filtviz.placement import eval_mode, model_device_dtype
from torch_filtviz.trace import FORWARD_ERRORS, meta_copy

LARGE_SIZES = (224, 512)  # sizes tried to tell "too small" from any other failure


def size_text(height: int, width: int) -> str:
    return f"{height} px" if height == width else f"{height}x{width} px"


def _reached(model: nn.Module, size: int, paths: set[str]) -> set[str]:
    """Which of ``paths`` produce a non-empty output for a grey ``size`` px image (the pass may fail later).

    Runs on a "meta" copy of the model (shapes only), or on the model itself when it cannot run on meta.
    """
    device, dtype = model_device_dtype(model)
    try:
        return _reached_on(meta_copy(model).eval(), torch.device("meta"), dtype, size, paths, strict=True)
    except _NotOnMeta:
        with eval_mode(model):
            return _reached_on(model, device, dtype, size, paths, strict=False)


class _NotOnMeta(Exception):
    pass


def _reached_on(model: nn.Module, device, dtype, size: int, paths: set[str], strict: bool) -> set[str]:
    seen: set[str] = set()
    handles = []
    for path, module in model.named_modules():
        if path in paths:

            def hook(m, a, out, _p=path):
                t = out[0] if isinstance(out, (tuple, list)) else out
                if isinstance(t, torch.Tensor) and t.numel() > 0:
                    seen.add(_p)

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), torch.inference_mode(False):
            model(torch.full((1, input_channels(model), size, size), 128.0, device=device, dtype=dtype))
    except NotImplementedError as exc:
        if strict:
            raise _NotOnMeta from exc
        raise
    except FORWARD_ERRORS as exc:
        if strict and not size_like(exc):
            raise _NotOnMeta from exc
    finally:
        for h in handles:
            h.remove()
    return seen


def size_like(exc: BaseException) -> bool:
    """Errors meta kernels raise for inputs that are too small (everything else: try the real model)."""
    text = str(exc).lower()
    return any(
        s in text
        for s in (
            "too small",
            "can't be greater",
            "output size",
            "input size",
            "kernel size",
            "non-empty",
            "empty",
            "expected input",
        )
    )


def smallest_sizes(model: nn.Module, paths: Iterable[str], largest: int = LARGE_SIZES[-1]) -> dict[str, int | None]:
    """Smallest square input (px) for which each module path gives a non-empty output (None: not even at
    ``largest``). A model with a fixed input size (:func:`fixed_input_size`) is run at that size only."""
    wanted = set(paths)
    fixed = fixed_input_size(model)
    if fixed is not None:
        reached_fixed = _reached(model, fixed, wanted)
        return {path: fixed if path in reached_fixed else None for path in wanted}
    cache: dict[int, set[str]] = {}

    def reached(size: int) -> set[str]:
        if size not in cache:
            cache[size] = _reached(model, size, wanted)
        return cache[size]

    result: dict[str, int | None] = {}
    for path in wanted:
        if path not in reached(largest):
            result[path] = None
            continue
        lo, hi = 1, largest  # invariant: reached at hi
        if path in reached(1):
            result[path] = 1
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if path in reached(mid):
                hi = mid
            else:
                lo = mid
        result[path] = hi
    return result


def classify_failure(model: nn.Module, exc: BaseException, path: str, layer: str, height: int, width: int) -> Exception:
    """The exception to raise for a forward pass at ``height`` x ``width`` that failed with ``exc``."""
    needed = None
    if min(height, width) < LARGE_SIZES[-1]:
        needed = smallest_sizes(model, [path]).get(path)
    if needed is not None and needed > min(height, width):
        return FiltvizError(f"size {size_text(height, width)} is too small for {layer}: it needs at least {needed} px")
    return describe_failure(exc, size_text(height, width), input_channels(model))


def describe_failure(exc: BaseException, size: str, channels: int = 3) -> Exception:
    """A failure that is not about the size, named for what it is (``channels``: the pictures' channel count)."""
    text = first_line(exc)
    low = text.lower()
    if "cuda" in low or "cudnn" in low or "mps" in low or "device-side" in low:
        return FiltvizRuntimeError(f"the device failed while running the model: {text}")
    if "channels" in low and "expected" in low:
        return FiltvizError(
            f"the model does not take {channels}-channel images (N, {channels}, H, W): {text}; "
            "give its input channel count with in_channels= (--in-channels)"
        )
    return FiltvizRuntimeError(
        f"the model failed on a grey {size} {channels}-channel image: {type(exc).__name__}: {text}"
    )


# --- models that take one input size only ---------------------------------------------------------------


def fixed_input_size(model: nn.Module) -> int | None:
    """The one square input size (px) ``model`` accepts, read from the model, or None for any size.

    torchvision ``VisionTransformer``: its ``image_size``; timm (any model with a patch embedding that
    checks its size, ``strict_img_size`` and no ``dynamic_img_size``): ``patch_embed.img_size``;
    torchvision ``MaxVit``: the size its attention grids were built for (4 x the first grid: the stem
    and the first block each halve the picture). A wrapped model (:func:`~torch_filtviz.wrap_model`)
    is read through its network.

    >>> from torchvision.models import VisionTransformer
    >>> from torch_filtviz.probe import fixed_input_size
    >>> vit = VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=1, hidden_dim=8, mlp_dim=8)
    >>> fixed_input_size(vit)
    32
    """
    for module in model.modules():
        kind = type(module).__name__
        size = getattr(module, "image_size", None)
        if kind == "VisionTransformer" and isinstance(size, int):  # torchvision
            return int(size)
        img_size = getattr(module, "img_size", None)
        if (
            getattr(module, "strict_img_size", False)
            and not getattr(module, "dynamic_img_size", False)
            and img_size is not None
        ):  # timm's PatchEmbed
            h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
            if h == w:
                return int(h)
        if kind == "PartitionAttentionLayer" and hasattr(module, "grid_size"):  # torchvision MaxVit
            grid = getattr(module, "grid_size")  # noqa: B009 - a plain attribute, typed as Any
            return int(4 * (grid if isinstance(grid, int) else grid[0]))
    return None


def check_fixed_size(
    model: nn.Module, height: int, width: int, seen_h: int, seen_w: int, option: str = "--size"
) -> None:
    """One line when a model with a fixed input size would be shown another size: it names the size to give.

    ``height`` x ``width``: the picture; ``seen_h`` x ``seen_w``: what the network sees (the fourier
    method's canvas differs from the picture by a fixed margin, so the size to give is shifted by it).
    ``option``: the command-line option the line names (``--input-size`` for ``filtviz summary``).
    """
    fixed = fixed_input_size(model)
    if fixed is None or (seen_h, seen_w) == (fixed, fixed):
        return
    name = getattr(model, "name", None) or type(model).__name__
    margin = seen_h - height
    give = f"{option} {fixed - margin}" + (f" (size={fixed - margin})" if option == "--size" else "")
    if (seen_h, seen_w) == (height, width):
        raise FiltvizError(
            f"{name} takes {fixed}x{fixed} px pictures only (its fixed input size), got {size_text(height, width)}: "
            f"use {give}"
        )
    raise FiltvizError(
        f"{name} takes {fixed}x{fixed} px inputs only (its fixed input size); size {size_text(height, width)} shows "
        f"it {size_text(seen_h, seen_w)} (this method's canvas): use {give}"
    )


def probe_failure(exc: BaseException, size: int | tuple[int, int], channels: int = 3) -> Exception:
    """A forward pass of a probe (``filtviz layers``, tracing) that failed for a reason other than the size:
    one line with the model's own error and a hint, never a table of "not reached"."""
    height, width = (size, size) if isinstance(size, int) else size
    failure = describe_failure(exc, size_text(height, width), channels)
    hint = f"; check that the model's forward runs on one (1, {channels}, {height}, {width}) tensor"
    return type(failure)(f"{failure}{hint}")
