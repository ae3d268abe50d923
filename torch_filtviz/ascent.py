"""Batched gradient ascent: the image that most excites each filter of a layer (tf_reference/SPEC.md).

One batch element per filter, each maximizing its own filter. The per-element losses are summed
before the backward pass, and a sample's gradient only depends on its own loss, so each element
gets exactly its own gradient; the step is normalised by that element's own RMS. Hence a filter's
result does not depend on which other filters share its batch, and batching is pure speed.

Speed: the forward pass stops right after the layer (hooks), no weight gradient is computed,
losses stay on the device until the chunk ends (no host sync per step). Memory format:
``channels_last`` (NHWC) is the default on CPU, where oneDNN's NHWC conv kernels measured
1.3-1.5x faster than NCHW (``scripts/benchmark.py``); results differ from NCHW only by float
rounding. ``precision="bf16"`` (autocast forward; loss, normalisation and update in fp32) is
several times faster on hardware with bf16 units, but the pictures then differ slightly from
the fp32 spec, so fp32 stays the default.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from filtviz_core import algorithm as alg
from filtviz_core.errors import FiltvizError
from filtviz_core.runrecord import run_record as _run_record
from torch_filtviz.hooks import Capture, Target, capture, resolve_target
from torch_filtviz.models import min_input_size, resolve_device
from torch_filtviz.objectives import interior_mean as _objective

PRECISIONS = ("fp32", "tf32", "bf16")
CUDA_PIXELS_PER_CHUNK = 512 * 128 * 128  # default CUDA chunk: 512 filters at 128 px (halved on OOM)
_OOM_ERRORS: tuple[type[BaseException], ...] = tuple(
    {getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)} - {None}
)


@dataclass
class FilterResults:
    """The outcome of :func:`visualize_filters` for the filters of one layer (arrays NHWC, numpy)."""

    filters: list[int]
    layer: str
    raw: np.ndarray  # (F, H, W, 3) float32, pixel units, the optimized images
    images: np.ndarray  # (F, H, W, 3) uint8, deprocessed for display
    losses: np.ndarray  # (F, steps + 1) float64, objective at x0 .. x_steps
    snapshots: dict[int, np.ndarray]  # step -> (F, H, W, 3) float32
    dead: np.ndarray  # (F,) bool, gradient exactly zero at the start
    params: dict[str, Any]
    seconds: float
    device: str
    weights: dict[str, Any] = field(default_factory=dict)  # the model's weights_info, for run.json

    def run_record(self, weights: dict[str, Any] | None = None) -> dict[str, Any]:
        """The run.json dictionary (same schema as tf_reference's); ``weights`` defaults to the model's."""
        import torchvision

        extra: dict[str, Any] = {"torch": torch.__version__, "torchvision": torchvision.__version__}
        if self.device.startswith("cuda") and torch.cuda.is_available():
            extra["device_name"] = torch.cuda.get_device_name(torch.device(self.device))
        return _run_record(
            framework="torch",
            framework_version=f"torch {torch.__version__}; torchvision {torchvision.__version__}",
            weights=self.weights if weights is None else weights,
            layer=self.layer, filters=self.filters, params=self.params, losses=self.losses,
            dead=self.dead, seconds=self.seconds, device=self.device, extra=extra,
        )


@contextmanager
def _conv_math(precision: str) -> Iterator[None]:
    """fp32 means fp32: cuDNN may use TF32 tensor cores for convolutions by default (10-bit mantissa),
    which would move CUDA results away from the spec. ``"tf32"`` allows it, ``"fp32"`` forbids it, for
    the duration of the call only (the caller's global setting is restored)."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


@contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Parameters without ``requires_grad`` for the duration, so no weight gradient is built."""
    saved = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def _size_text(height: int, width: int) -> str:
    return f"{height} px" if height == width else f"{height}x{width} px"


def _probe(cap: Capture, target: Target, layer: str, height: int, width: int,
           device: torch.device) -> tuple[int, int, int]:
    """(channels, h, w) of the layer's map for one grey image; a too-small input becomes FiltvizError."""
    x = torch.full((1, 3, height, width), 128.0, device=device)
    try:
        with torch.no_grad():
            act = cap(x)[target.name]
    except _OOM_ERRORS:
        raise
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FiltvizError(f"size {_size_text(height, width)} is too small for {layer}: {first}") from None
    if act.ndim == 2:
        return int(act.shape[1]), 1, 1
    if act.ndim != 4:
        raise FiltvizError(f"layer {layer!r} gives a {tuple(act.shape)} tensor; filter visualization needs "
                           "(N, C, H, W) feature maps or (N, C) units")
    if act.shape[2] < 1 or act.shape[3] < 1:
        raise FiltvizError(f"size {_size_text(height, width)} is too small for {layer}: its map is empty")
    return int(act.shape[1]), int(act.shape[2]), int(act.shape[3])


def _run_chunk(cap: Capture, target: Target, x0: np.ndarray, filters: list[int], *, steps: int, lr: float,
               snaps: tuple[int, ...], clip: bool, device: torch.device, precision: str, channels_last: bool,
               pbar: Any) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], np.ndarray]:
    """Ascent for one chunk of filters: (raw, losses, snapshots, dead) as numpy."""
    n = len(filters)
    # clone(): a CPU tensor from_numpy shares the caller's init array, which must never be updated in place.
    x = torch.from_numpy(np.ascontiguousarray(x0)).to(device).permute(0, 3, 1, 2)
    x = x.clone(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    x.requires_grad_(True)
    index = torch.tensor(filters, device=device)
    rows = torch.arange(n, device=device)
    losses = torch.empty(steps + 1, n, device=device, dtype=torch.float32)
    dead = torch.zeros(n, dtype=torch.bool, device=device)
    kept: dict[int, torch.Tensor] = {}
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16"
                else nullcontext())
    if 0 in snaps:
        kept[0] = x.detach().clone()
    frozen = None  # dead elements (SPEC §9): their image never changes, even when clipping
    for k in range(max(steps, 1)):  # steps=0 still takes the gradient at x0, to tell dead filters
        with autocast:
            act = cap(x)[target.name]
        loss = _objective(act, index, rows)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        losses[k] = loss.detach()
        if k == 0:
            dead = (grad == 0).flatten(1).all(dim=1)
            frozen = dead.view(n, 1, 1, 1)
        if steps == 0:
            break
        rms = grad.square().mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(alg.RMS_FLOOR)
        with torch.no_grad():
            x.add_(lr * grad / rms)  # a dead element's gradient is 0: it stays put
            if clip:
                x.copy_(torch.where(frozen, x, x.clamp(0.0, 255.0)))
        if k + 1 in snaps:
            kept[k + 1] = x.detach().clone()
        if pbar is not None:
            pbar.update(n)
    if steps > 0:
        with torch.no_grad(), autocast:
            losses[steps] = _objective(cap(x)[target.name], index, rows)

    def nhwc(t: torch.Tensor) -> np.ndarray:
        return t.detach().permute(0, 2, 3, 1).float().cpu().numpy().astype(np.float32, copy=False)

    return (nhwc(x), losses.t().double().cpu().numpy(), {s: nhwc(t) for s, t in kept.items()},
            dead.cpu().numpy())


def _default_batch(device: torch.device, n_filters: int, height: int, width: int) -> int:
    if device.type == "cpu":
        return n_filters
    return max(1, min(n_filters, CUDA_PIXELS_PER_CHUNK // max(1, height * width)))


def visualize_filters(
    model: nn.Module,
    layer: str,
    filters: int | str | Iterable[int],
    *,
    steps: int = alg.DEFAULT_STEPS,
    size: int = alg.DEFAULT_SIZE,
    lr: float = alg.DEFAULT_LR,
    seed: int = alg.DEFAULT_SEED,
    init: np.ndarray | None = None,
    snapshots: Iterable[int] | None = alg.DEFAULT_SNAPSHOTS,
    objective: str = alg.DEFAULT_OBJECTIVE,
    clip: bool = False,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    progress: bool = True,
) -> FilterResults:
    """Gradient ascent on one input image per filter of ``layer`` (alias or module path).

    ``filters``: an index, a list, or a string such as ``"0-15,20"``. ``init``: (F, H, W, 3)
    float32 starting images in pixel units (overrides ``seed`` and ``size``). The model takes RGB
    pixels (0-255, NCHW) and is moved to ``device`` (None/"auto": CUDA, MPS, then CPU) in eval
    mode. ``batch_size`` filters run together (default: all on CPU, a memory-sized chunk on
    CUDA, halved whenever a chunk runs out of memory). Results do not depend on the batching.
    ``channels_last``: None picks the faster memory format for the device (NHWC on CPU).
    """
    started = time.perf_counter()
    alg.check_objective(objective)
    alg.check_steps(steps, lr)
    steps = int(steps)
    alg.check_seed(seed)
    if precision not in PRECISIONS:
        raise FiltvizError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise FiltvizError(f"batch size must be a whole number >= 1, got {batch_size}")
    dev = resolve_device(device)
    if channels_last is None:
        channels_last = dev.type == "cpu"
    target = resolve_target(model, layer, objective)
    if init is not None:
        if np.ndim(init) == 3:  # one (H, W, 3) image, as tf_reference accepts for a single filter
            init = np.asarray(init)[None]
        shape = np.shape(init)
        height, width = (int(shape[1]), int(shape[2])) if len(shape) == 4 else (-1, -1)
        if len(shape) == 4 and min(height, width) < 1:
            raise FiltvizError(f"init must be a (F, H, W, 3) float32 array in pixel units, got shape {shape}")
    else:
        if int(size) != size or size < 1:
            raise FiltvizError(f"size must be a whole number of pixels >= 1, got {size}")
        height = width = int(size)
    if height > 0:
        alg.check_image_size(min(height, width), min_input_size(model, layer), layer)
    snaps = alg.snapshot_steps(snapshots, steps)

    model.to(dev).eval()
    with _frozen(model), _conv_math(precision), capture(model, target) as cap:
        if height > 0:
            count, _, _ = _probe(cap, target, layer, height, width, dev)
        else:  # malformed init: let check_init explain after the filters are known
            count = 1 << 30
        chosen = alg.parse_filters(filters, count, layer)
        if init is not None:
            x0 = alg.check_init(init, len(chosen))
        else:
            x0 = alg.initial_images(chosen, height, seed)
        chunk = int(batch_size) if batch_size else _default_batch(dev, len(chosen), height, width)
        used = chunk
        raws, losses, dead = [], [], []
        snap_parts: dict[int, list[np.ndarray]] = {s: [] for s in snaps}
        pbar = None
        if progress:
            from tqdm.auto import tqdm

            pbar = tqdm(total=steps * len(chosen), desc=f"{layer}", unit="img-step", leave=False)
        try:
            pos = 0
            while pos < len(chosen):
                part = chosen[pos:pos + chunk]
                shown = pbar.n if pbar is not None else 0
                try:
                    r, lo, sn, de = _run_chunk(cap, target, x0[pos:pos + len(part)], part, steps=steps, lr=lr,
                                               snaps=snaps, clip=clip, device=dev, precision=precision,
                                               channels_last=channels_last, pbar=pbar)
                except _OOM_ERRORS:
                    if len(part) == 1:
                        raise
                    r = None  # handled below, once the traceback (and the chunk's tensors) are gone
                if r is None:
                    cap.values = {}  # drop the failed chunk's activations before freeing the cache
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                    if pbar is not None:  # the failed chunk's steps are done again
                        pbar.n = shown
                        pbar.refresh()
                    chunk = max(1, len(part) // 2)
                    used = min(used, chunk)
                    continue
                raws.append(r)
                losses.append(lo)
                dead.append(de)
                for s in snaps:
                    snap_parts[s].append(sn[s])
                pos += len(part)
        finally:
            if pbar is not None:
                pbar.close()

    raw = np.concatenate(raws)
    params = {
        "steps": steps, "size": height if height == width else [height, width], "lr": float(lr),
        "seed": int(seed), "snapshots": list(snaps), "objective": objective,
        "init": "given" if init is not None else "seeded", "clip": bool(clip), "precision": precision,
        "channels_last": bool(channels_last), "batch_size": used,
    }
    return FilterResults(
        filters=list(chosen), layer=layer, raw=raw, images=alg.deprocess(raw),
        losses=np.concatenate(losses).astype(np.float64), snapshots={s: np.concatenate(p) for s, p in snap_parts.items()},
        dead=np.concatenate(dead).astype(bool), params=params, seconds=time.perf_counter() - started,
        device=str(dev), weights=dict(getattr(model, "weights_info", {}) or {}),
    )
