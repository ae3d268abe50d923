"""Batched gradient ascent: the image that most excites each filter of a layer (tf_reference/SPEC.md).

:func:`visualize_filters` validates, resolves the target, plans the chunks and runs one of two loops:
the pixel method's (:func:`_run_chunk`, SPEC §1-§14, the default) or the fourier method's
(:func:`torch_filtviz.fourier.run_chunk`, SPEC §15). What follows describes the pixel loop; the
fourier loop shares the target, the objective, the chunking and the precision handling.

One batch element per filter, each maximizing its own filter. The per-element losses are summed
before the backward pass, and a sample's gradient only depends on its own loss, so each element
gets exactly its own gradient; the step is normalised by that element's own RMS. Hence a filter's
result does not depend on which other filters share its batch, and batching is pure speed.

Speed: the forward pass stops right after the layer (hooks), no weight gradient is computed,
losses stay on the device until the chunk ends (no host sync per step). Memory format:
``channels_last`` (NHWC) is the default on CPU, where oneDNN's NHWC conv kernels measured
1.14x faster than NCHW (``make bench``, block3_conv1); results differ from NCHW only by float
rounding. ``precision="bf16"`` (autocast forward; loss, normalisation and update in fp32) is
3.2x faster on this CPU with AMX-bf16 (``make bench``; on GPUs expected, not yet measured), but the pictures then differ slightly from
the fp32 spec, so fp32 stays the default.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from filtviz_core import algorithm as alg
from filtviz_core import fourier as fourier_core
from filtviz_core import methods
from filtviz_core.errors import FiltvizError
from filtviz_core.transforms import output_size
from filtviz_core.runrecord import run_record as _run_record
from torch_filtviz import fourier as fourier_loop
from torch_filtviz import placement
from torch_filtviz import precision as precision_mode
from torch_filtviz.hooks import Capture, Target, capture, target_channels
from torch_filtviz.models import min_input_size, resolve_device
from torch_filtviz.objectives import interior_mean as _objective
from torch_filtviz.precision import conv_math
from torch_filtviz.probe import classify_failure, size_text
from torch_filtviz.targets import Resolver, model_device_dtype, model_trace, module_path, unknown_layer

PRECISIONS = ("fp32", "tf32", "bf16")


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
    model: dict[str, Any] = field(default_factory=dict)  # name, class, preprocessing
    target: dict[str, Any] = field(default_factory=dict)  # module path, input/output, why
    method: str = methods.DEFAULT_METHOD  # "pixel" (SPEC §1-§14) or "fourier" (SPEC §15)

    def run_record(self, weights: dict[str, Any] | None = None) -> dict[str, Any]:
        """The run.json dictionary (same schema as tf_reference's); ``weights`` defaults to the model's."""
        import torchvision

        extra: dict[str, Any] = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                                 "model": self.model, "target": self.target, "method": self.method}
        if self.device.startswith("cuda") and torch.cuda.is_available():
            extra["device_name"] = torch.cuda.get_device_name(torch.device(self.device))
        return _run_record(
            framework="torch",
            framework_version=f"torch {torch.__version__}; torchvision {torchvision.__version__}",
            weights=self.weights if weights is None else weights,
            layer=self.layer, filters=self.filters, params=self.params, losses=self.losses,
            dead=self.dead, seconds=self.seconds, device=self.device, extra=extra,
        )


def _run_chunk(cap: Capture, target: Target, x0: np.ndarray, filters: list[int], *, steps: int, lr: float,
               snaps: tuple[int, ...], clip: bool, device: torch.device, precision: str, channels_last: bool,
               pbar: Any, model_dtype: torch.dtype = torch.float32
               ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], np.ndarray]:
    """Ascent for one chunk of filters (SPEC §6-§9): (raw, losses, snapshots, dead) as numpy."""
    n = len(filters)
    # clone(): a CPU tensor from_numpy shares the caller's init array, which must never be updated in place.
    x = torch.from_numpy(np.ascontiguousarray(x0)).to(device).permute(0, 3, 1, 2)
    x = x.clone(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    x.requires_grad_(True)
    index = torch.tensor(filters, device=device)
    rows = torch.arange(n, device=device)
    losses, dead, kept = placement.ascent_records(n, steps, device)
    autocast = precision_mode.autocast(device, precision)
    cast = model_dtype != torch.float32  # a half/bf16 model sees its own dtype; the image stays fp32

    def objective(image: torch.Tensor) -> torch.Tensor:
        with autocast:
            act = cap(image.to(model_dtype) if cast else image)[target.name]
        return _objective(act, index, rows, target.channel_dim)

    if 0 in snaps:
        kept[0] = x.detach().clone()
    frozen = None  # dead elements (SPEC §9): their image never changes, even when clipping
    for k in range(max(steps, 1)):  # steps=0 still takes the gradient at x0, to tell dead filters
        loss = objective(x)
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
        with torch.no_grad():
            losses[steps] = objective(x)

    def nhwc(t: torch.Tensor) -> np.ndarray:
        return t.detach().permute(0, 2, 3, 1).float().cpu().numpy().astype(np.float32, copy=False)

    return (nhwc(x), placement.to_host(losses.t()), {s: nhwc(t) for s, t in kept.items()},
            dead.cpu().numpy())


def _bytes_per_image(trace, target: Target, height: int, width: int) -> int:
    """Memory one image costs up to the target: every traced value up to it, forward and backward."""
    total = 0
    for op in trace.ops:
        if op.shape:
            total += int(np.prod(op.shape[1:], dtype=np.int64)) * 4
        if op.kind == "module" and op.name == target.path:
            break
    return int(total * placement.BACKWARD_FACTOR)


def _image_size(init: np.ndarray | None, size: int) -> tuple[np.ndarray | None, int, int]:
    """(init as (F, H, W, 3) or None, height, width); (-1, -1) when init is malformed (explained later)."""
    if init is not None:
        if np.ndim(init) == 3:  # one (H, W, 3) image, as tf_reference accepts for a single filter
            init = np.asarray(init)[None]
        shape = np.shape(init)
        height, width = (int(shape[1]), int(shape[2])) if len(shape) == 4 else (-1, -1)
        if len(shape) == 4 and min(height, width) < 1:
            raise FiltvizError(f"init must be a (F, H, W, 3) float32 array in pixel units, got shape {shape}")
        return init, height, width
    if int(size) != size or size < 1:
        raise FiltvizError(f"size must be a whole number of pixels >= 1, got {size}")
    return None, int(size), int(size)


def visualize_filters(
    model: nn.Module,
    layer: str,
    filters: int | str | Iterable[int],
    *,
    method: str = methods.DEFAULT_METHOD,
    steps: int | None = None,
    size: int = alg.DEFAULT_SIZE,
    lr: float | None = None,
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
    method_options: Mapping[str, Any] | methods.FourierOptions | None = None,
) -> FilterResults:
    """Gradient ascent on one input image per filter of ``layer`` (alias or module path).

    ``method``: ``"pixel"`` (the canonical ascent of SPEC.md §1-§14: pixels, RMS-normalised steps;
    100 steps, lr 1.0 by default) or ``"fourier"`` (SPEC.md §15: a decorrelated Fourier spectrum, random
    transforms at every step, Adam; 128 steps, lr 0.05 by default). ``steps``/``lr`` None take the
    method's default. ``method_options`` overrides the fourier method's other parameters by name
    (``filtviz_core.methods.FourierOptions``: ``pad``, ``jitter``, ``scale``, ``rotate``, ``jitter2``,
    ``transforms``, ``decay``, ``divisor``, ``decorrelate``, ``init_std``, ``beta1``, ``beta2``, ``eps``,
    ``pad_value``).

    ``filters``: an index, a list, or a string such as ``"0-15,20"``. ``init``: (F, H, W, 3)
    float32 starting images in pixel units (overrides ``seed`` and ``size``; pixel method only). The model takes RGB
    pixels (0-255, NCHW; see :func:`~torch_filtviz.wrap_model`) and runs on ``device``
    (None/"auto": CUDA, then MPS, then CPU) in eval mode with gradients on, whatever the caller's
    ``no_grad``/``inference_mode``; afterwards it is back on its device, in its modes, with its
    ``requires_grad`` flags. ``batch_size`` filters run together (default: as many as fit in half
    the free memory the device reports; halved whenever a chunk runs out of memory). Results do
    not depend on the batching beyond float rounding. ``channels_last``: None picks the faster
    memory format for the device (NHWC on CPU). ``precision``: ``"fp32"`` (IEEE fp32 convolutions
    and matmuls, whatever TF32 setting the process has), ``"tf32"`` or ``"bf16"`` (autocast).
    """
    started = time.perf_counter()
    alg.check_objective(objective)
    steps, lr, options = methods.resolve(method, steps, lr, method_options)
    alg.check_seed(seed)
    methods.check_pixel_only(options, init_given=init is not None, clip=clip)
    if precision not in PRECISIONS:
        raise FiltvizError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise FiltvizError(f"batch size must be a whole number >= 1, got {batch_size}")
    dev = resolve_device(device)
    if channels_last is None:
        channels_last = dev.type == "cpu"
    path = module_path(model, layer)
    if path is None:
        raise unknown_layer(model, str(layer))
    init, height, width = _image_size(init, size)
    seen_h, seen_w = (height, width) if options is None or height < 1 else output_size(height, width, options)
    if height > 0:
        methods.check_seen_size(min(height, width), min(seen_h, seen_w), min_input_size(model, layer), layer, options)
    snaps = alg.snapshot_steps(snapshots, steps)

    with (placement.grad_enabled(), placement.placed(model, dev), placement.eval_mode(model),
          placement.frozen(model), conv_math(precision)):
        model_dtype = model_device_dtype(model)[1]
        if height > 0:
            trace = model_trace(model, (seen_h, seen_w))
            if trace.error is not None and not trace.module_calls(path):  # the pass failed before the layer
                if placement.is_out_of_memory(trace.error):
                    raise trace.error
                raise classify_failure(model, trace.error, path, layer, height, width) from None
            target = Resolver(model, trace).resolve(layer, path, model.get_submodule(path), objective)
            shape = _target_shape(trace, target, layer, seen_h, seen_w)
            count = target_channels(target, torch.empty(shape, device="meta"))
        else:  # malformed init: let check_init explain after the filters are known
            trace, target, count = None, None, 1 << 30
        chosen = alg.parse_filters(filters, count, layer)
        if options is None:
            x0 = alg.check_init(init, len(chosen)) if init is not None else alg.initial_images(chosen, height, seed)
        if batch_size:
            chunk = int(batch_size)
        else:
            chunk = placement.chunk_size(dev, len(chosen), _bytes_per_image(trace, target, seen_h, seen_w))
        used = chunk
        raws, losses, dead = [], [], []
        snap_parts: dict[int, list[np.ndarray]] = {s: [] for s in snaps}
        pbar = None
        if progress:
            from tqdm.auto import tqdm

            pbar = tqdm(total=steps * len(chosen), desc=f"{layer}", unit="img-step", leave=False)
        try:
            with capture(model, target) as cap:
                pos = 0
                while pos < len(chosen):
                    part = chosen[pos:pos + chunk]
                    shown = pbar.n if pbar is not None else 0
                    try:
                        if options is None:
                            r, lo, sn, de = _run_chunk(cap, target, x0[pos:pos + len(part)], part, steps=steps,
                                                       lr=lr, snaps=snaps, clip=clip, device=dev, precision=precision,
                                                       channels_last=channels_last, pbar=pbar, model_dtype=model_dtype)
                        else:
                            r, lo, sn, de = fourier_loop.run_chunk(
                                cap, target, part, seed=seed, steps=steps, lr=lr, options=options, height=height,
                                width=width, snaps=snaps, device=dev, precision=precision,
                                channels_last=channels_last, pbar=pbar, model_dtype=model_dtype)
                    except Exception as exc:  # noqa: BLE001 - only allocation failures are retried
                        if not placement.is_out_of_memory(exc) or len(part) == 1:
                            raise
                        r = None  # handled below, once the traceback (and the chunk's tensors) are gone
                    if r is None:
                        cap.values = {}  # drop the failed chunk's activations before freeing the cache
                        placement.release_cache(dev)
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
    if options is None:  # the pixel method's params, exactly as before methods existed
        params = {
            "steps": steps, "size": height if height == width else [height, width], "lr": float(lr),
            "seed": int(seed), "snapshots": list(snaps), "objective": objective,
            "init": "given" if init is not None else "seeded", "clip": bool(clip), "precision": precision,
            "channels_last": bool(channels_last), "batch_size": used,
        }
    else:
        params = {
            "method": method, "steps": steps, "size": height if height == width else [height, width],
            "lr": float(lr), "seed": int(seed), "snapshots": list(snaps), "objective": objective, "init": "seeded",
            "seen_size": [seen_h, seen_w], "precision": precision, "channels_last": bool(channels_last),
            "batch_size": used, **options.as_params(),
        }
    describe = getattr(model, "describe", None)
    return FilterResults(
        filters=list(chosen), layer=layer, raw=raw,
        images=alg.deprocess(raw) if options is None else fourier_core.to_uint8(raw),
        losses=np.concatenate(losses).astype(np.float64), snapshots={s: np.concatenate(p) for s, p in snap_parts.items()},
        dead=np.concatenate(dead).astype(bool), params=params, seconds=time.perf_counter() - started,
        device=str(dev), weights=dict(getattr(model, "weights_info", {}) or {}),
        model=describe() if callable(describe) else {"name": type(model).__name__, "class": type(model).__name__,
                                                     "preprocess": "none"},
        target=target.describe(model) if target is not None else {}, method=method,
    )


def _target_shape(trace, target: Target, layer: str, height: int, width: int) -> tuple[int, ...]:
    """Shape of the target tensor for one image, from the trace; checked to be maps or units."""
    shape = None
    for op in trace.ops:
        if target.function_call is not None:
            if op.kind == "function" and op.activation and op.call == target.function_call:
                shape = op.shape
                break
        elif op.kind == "module" and op.name == target.path and op.call == target.call:
            if target.where == "output":
                shape = op.shape
            else:
                producer = trace.producer(op.inputs[0], ("function", "module")) if op.inputs else None
                shape = producer.shape if producer is not None else op.shape
            break
    if shape is None:
        raise FiltvizError(f"layer {layer!r} was not reached by the forward pass of the model")
    if len(shape) not in (2, 4):
        raise FiltvizError(f"layer {layer!r} gives a {tuple(shape)} tensor; filter visualization needs "
                           "(N, C, H, W) feature maps or (N, C) units")
    if len(shape) == 4 and min(shape[2:] if target.channel_dim == 1 else shape[1:3]) < 1:
        raise FiltvizError(f"size {size_text(height, width)} is too small for {layer}: its map is empty")
    return tuple(shape)
