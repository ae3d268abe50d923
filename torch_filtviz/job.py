"""One optimization call's set-up and chunked run, shared by ``visualize_filters`` and ``render``.

:func:`check_call` validates what does not need the model; :func:`resolve_layers` traces the model
once and resolves every layer an objective names to the tensor it denotes; :func:`run_elements`
runs the batch elements in chunks that fit the device (halving a chunk that runs out of memory),
each chunk through :func:`run_chunk` -> ``torch_filtviz.loop.optimize``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from filtviz_core import algorithm as alg
from filtviz_core import methods
from filtviz_core.algorithm import Key
from filtviz_core.errors import FiltvizError
from filtviz_core.objectives import Objective
from torch_filtviz import method_parts, placement
from torch_filtviz import precision as precision_mode
from torch_filtviz.hooks import Capture, Target, capture
from torch_filtviz.loop import optimize
from torch_filtviz.objectives import compile_objective, unit_shape
from torch_filtviz.precision import conv_math
from torch_filtviz.probe import check_fixed_size, classify_failure, size_text
from torch_filtviz.targets import Resolver, model_trace, module_path, unknown_layer

PRECISIONS = ("fp32", "tf32", "bf16")


def check_call(
    *,
    method: str,
    steps: int | None,
    lr: float | None,
    seed: int,
    activation: str,
    method_options: Any,
    init_given: bool,
    clip: bool,
    precision: str,
    batch_size: int | None,
) -> tuple[int, float, methods.MethodOptions | None]:
    """Everything checked before the model is touched: (steps, lr, method options) with defaults filled in."""
    alg.check_objective(activation)
    steps, lr, options = methods.resolve(method, steps, lr, method_options)
    alg.check_seed(seed)
    methods.check_pixel_only(options, init_given=init_given, clip=clip)
    if precision not in PRECISIONS:
        raise FiltvizError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise FiltvizError(f"batch size must be a whole number >= 1, got {batch_size}")
    return steps, lr, options


def picture_size(init: np.ndarray | None, size: int) -> tuple[np.ndarray | None, int, int]:
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


@contextmanager
def session(model: nn.Module, device: torch.device, precision: str) -> Iterator[None]:
    """The model on ``device`` in eval mode with frozen weights and gradients on, the call's conv math;
    all restored afterwards, whatever the caller's ``no_grad``/``inference_mode``."""
    with ExitStack() as stack:
        for ctx in (
            placement.grad_enabled(),
            placement.placed(model, device),
            placement.eval_mode(model),
            placement.frozen(model),
            conv_math(precision),
        ):
            stack.enter_context(ctx)
        yield


@dataclass
class Layers:
    """The layers of a call, resolved on one trace: targets and each one's (channels, map size or None)."""

    trace: Any
    targets: dict[str, Target]
    shapes: dict[str, tuple[int, tuple[int, int] | None]]
    tensor_shapes: dict[str, tuple[int, ...]]


def check_paths(model: nn.Module, layers: Sequence[str]) -> dict[str, str]:
    """Each layer's module path; one line listing the valid names for an unknown one."""
    paths = {}
    for layer in layers:
        path = module_path(model, layer)
        if path is None:
            raise unknown_layer(model, str(layer))
        paths[layer] = path
    return paths


def resolve_layers(
    model: nn.Module, paths: Mapping[str, str], activation: str, height: int, width: int, seen_h: int, seen_w: int
) -> Layers:
    """Trace the model at the size the network sees and resolve every layer (SPEC §5's tensor); a model with
    a fixed input size (a vision transformer) shown another size is refused in one line naming the size."""
    check_fixed_size(model, height, width, seen_h, seen_w)
    trace = model_trace(model, (seen_h, seen_w))
    targets, shapes, tensor_shapes = {}, {}, {}
    for layer, path in paths.items():
        if trace.error is not None and not trace.module_calls(path):  # the pass failed before the layer
            if placement.is_out_of_memory(trace.error):
                raise trace.error
            raise classify_failure(model, trace.error, path, layer, height, width) from None
        target = Resolver(model, trace).resolve(layer, path, model.get_submodule(path), activation)
        shape = target_shape(trace, target, layer, seen_h, seen_w)
        targets[layer], tensor_shapes[layer] = target, shape
        shapes[layer] = unit_shape(target, shape)
    return Layers(trace, targets, shapes, tensor_shapes)


def target_shape(trace, target: Target, layer: str, height: int, width: int) -> tuple[int, ...]:
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
    if len(shape) not in (2, 4) and not (len(shape) == 3 and target.tokens is not None):
        raise FiltvizError(
            f"layer {layer!r} gives a {tuple(shape)} tensor; filter visualization needs "
            "(N, C, H, W) feature maps, (N, C) units or a vision transformer's (N, T, C) tokens"
        )
    if len(shape) == 4 and min(unit_shape(target, tuple(shape))[1] or (1,)) < 1:
        raise FiltvizError(f"size {size_text(height, width)} is too small for {layer}: its map is empty")
    return tuple(shape)


def bytes_per_image(trace, targets: Mapping[str, Target]) -> int:
    """Memory one image costs up to the deepest target: every traced value, forward and backward."""
    paths = {t.path for t in targets.values()}
    seen: set[str] = set()
    total = 0
    for op in trace.ops:
        if op.shape:
            total += int(np.prod(op.shape[1:], dtype=np.int64)) * 4
        if op.kind == "module" and op.name in paths:
            seen.add(op.name)
            if seen == paths:
                break
    return int(total * placement.BACKWARD_FACTOR)


@dataclass
class Job:
    """What every chunk of one call shares."""

    model: nn.Module
    method: str
    layers: Layers
    setting: method_parts.Setting
    snaps: tuple[int, ...]
    precision: str
    model_dtype: torch.dtype
    # Optional per-chunk change of the loop's parts: ``wrap(rows, param, view, values) -> (view, values)``,
    # e.g. accentuation's start and penalty (torch_filtviz/accentuate.py); None leaves them as built.
    wrap: Callable[[slice, Any, Any, Any], tuple[Any, Any]] | None = None


def run_chunk(
    job: Job, cap: Capture, keys: Sequence[Key], rows: slice, objective: Objective, pbar: Any
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], np.ndarray, np.ndarray | None]:
    """One chunk: the method's parts for these elements, the compiled objective, the loop."""
    s = job.setting
    param, view, optimizer = method_parts.build(job.method, keys, rows, s)
    values = compile_objective(objective, job.layers.targets, len(keys), s.device)
    if job.wrap is not None:
        view, values = job.wrap(rows, param, view, values)
    return optimize(
        cap,
        param,
        view,
        values,
        optimizer,
        steps=s.steps,
        snaps=job.snaps,
        autocast=precision_mode.autocast(s.device, job.precision),
        model_dtype=job.model_dtype,
        pbar=pbar,
    )


def run_elements(
    job: Job,
    keys: Sequence[Key],
    objective_for: Callable[[slice], Objective],
    *,
    unit: int = 1,
    batch_size: int | None = None,
    progress: str | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], np.ndarray, int, np.ndarray | None]:
    """Every element, in chunks of whole ``unit`` s (a diversity group is never split): (pictures,
    losses, snapshots, dead, the chunk size used, the transparency ``(n, H, W)`` in [0, 1] or None).
    ``objective_for(rows)`` is the objective of the elements ``keys[rows]``. A chunk that runs out of
    memory is halved and run again. ``progress``: the label of a progress bar (image-steps) on stderr,
    None for none."""
    pbar = _progress_bar(progress, job.setting.steps * len(keys))
    try:
        return _run_elements(job, keys, objective_for, unit, batch_size, pbar)
    finally:
        if pbar is not None:
            pbar.close()


def _run_elements(
    job: Job,
    keys: Sequence[Key],
    objective_for: Callable[[slice], Objective],
    unit: int,
    batch_size: int | None,
    pbar: Any,
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], np.ndarray, int, np.ndarray | None]:
    n = len(keys)
    if batch_size:
        chunk = int(batch_size)
    else:
        chunk = placement.chunk_size(job.setting.device, n, bytes_per_image(job.layers.trace, job.layers.targets))
    chunk = max(unit, chunk // unit * unit)
    used = chunk
    raws, losses, dead, alphas = [], [], [], []
    snap_parts: dict[int, list[np.ndarray]] = {s: [] for s in job.snaps}
    with capture(job.model, list(job.layers.targets.values())) as cap:
        pos = 0
        while pos < n:
            rows = slice(pos, min(n, pos + chunk))
            shown = pbar.n if pbar is not None else 0
            try:
                r, lo, sn, de, al = run_chunk(job, cap, keys[rows], rows, objective_for(rows), pbar)
            except Exception as exc:  # only allocation failures are retried
                if not placement.is_out_of_memory(exc) or rows.stop - rows.start <= unit:
                    raise
                r = None  # handled below, once the traceback (and the chunk's tensors) are gone
            if r is None:
                cap.values = {}  # drop the failed chunk's activations before freeing the cache
                placement.release_cache(job.setting.device)
                if pbar is not None:  # the failed chunk's steps are done again
                    pbar.n = shown
                    pbar.refresh()
                chunk = max(unit, (rows.stop - rows.start) // 2 // unit * unit)
                used = min(used, chunk)
                continue
            raws.append(r)
            losses.append(lo)
            dead.append(de)
            alphas.append(al)
            for s in job.snaps:
                snap_parts[s].append(sn[s])
            pos = rows.stop
    alpha = None
    present = [a for a in alphas if a is not None]
    if alphas and len(present) == len(alphas):
        from filtviz_core.maco import alpha as normalised

        alpha = normalised(np.concatenate(present))
    return (
        np.concatenate(raws),
        np.concatenate(losses).astype(np.float64),
        {s: np.concatenate(p) for s, p in snap_parts.items()},
        np.concatenate(dead).astype(bool),
        used,
        alpha,
    )


def _progress_bar(desc: str | None, total: int) -> Any:
    if desc is None:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img-step", leave=False)


def model_description(model: nn.Module) -> dict[str, Any]:
    describe = getattr(model, "describe", None)
    return (
        describe()
        if callable(describe)
        else {"name": type(model).__name__, "class": type(model).__name__, "preprocess": "none"}
    )


def provenance(model: nn.Module, layers: Layers, layer: str, device: torch.device, started: float) -> dict[str, Any]:
    """What every results object records about where it came from: time since ``started``, device, weights,
    model and the tensor optimized (``FilterResults`` keyword arguments)."""
    return {
        "seconds": time.perf_counter() - started,
        "device": str(device),
        "weights": dict(getattr(model, "weights_info", {}) or {}),
        "model": model_description(model),
        "target": layers.targets[layer].describe(model),
    }
