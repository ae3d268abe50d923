"""Where and how the caller's model runs during a call, and how it is handed back.

A library call must not change the caller's objects: the model goes back to the device it was on,
every submodule back to the train/eval mode it was in, every parameter back to its
``requires_grad``. It also must work whatever autograd context the caller is in (a notebook's
``torch.no_grad()`` or ``torch.inference_mode()``): the ascent needs gradients, so it turns them
on for itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from filtviz_core.errors import FiltvizError

#: Share of the reported free memory that a chunk may plan to use (the rest: workspace, fragmentation).
MEMORY_SHARE = 0.5
#: Activation memory per traced forward value, times this, is the cost of one image's forward + backward.
BACKWARD_FACTOR = 3.0


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model's parameters live and their floating dtype (float32 if it has none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    for b in model.buffers():
        return b.device, torch.float32
    return torch.device("cpu"), torch.float32


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """``model.eval()`` for the duration; every submodule's own mode restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Parameters without ``requires_grad`` for the duration, so no weight gradient is built."""
    saved = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def model_devices(model: nn.Module) -> set[torch.device]:
    return {t.device for t in [*model.parameters(), *model.buffers()]}


@contextmanager
def placed(model: nn.Module, device: torch.device) -> Iterator[None]:
    """The model on ``device`` for the duration, then back where it was (when it was on one device)."""
    devices = model_devices(model)
    home = next(iter(devices)) if len(devices) == 1 else None
    if len(devices) > 1 and any(d != device for d in devices):
        raise FiltvizError(
            f"the model is spread over {', '.join(sorted(map(str, devices)))}; "
            f"move it to one device (or pass device= the one it is on)"
        )
    moved = home is not None and home != device
    if moved:
        model.to(device)
    try:
        yield
    finally:
        if moved:
            model.to(home)


@contextmanager
def grad_enabled() -> Iterator[None]:
    """Gradients on, whatever the caller's context (``no_grad`` or ``inference_mode``)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


# --- device memory -----------------------------------------------------------------------------------


def free_memory(device: torch.device) -> int | None:
    """Bytes the device reports free (CUDA: ``mem_get_info``; MPS: recommended maximum minus allocated;
    CPU: MemAvailable from /proc/meminfo on Linux), or None where it reports nothing."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        if device.type == "mps":
            mps = torch.mps
            if hasattr(mps, "recommended_max_memory"):
                return int(mps.recommended_max_memory()) - int(mps.driver_allocated_memory())
            return None
        if device.type == "cpu":
            return _cpu_available()
    except (RuntimeError, AttributeError, OSError):
        return None
    return None


def _cpu_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def chunk_size(device: torch.device, n_filters: int, bytes_per_image: int | None) -> int:
    """Filters per chunk: as many as fit in :data:`MEMORY_SHARE` of the device's free memory.

    Where the device reports no free memory (or the cost is unknown): every filter at once on CPU
    and MPS, and 64 on CUDA (halved on out-of-memory).
    """
    free = free_memory(device)
    if free is None or not bytes_per_image:
        return n_filters if device.type in ("cpu", "mps") else max(1, min(n_filters, 64))
    fit = int(free * MEMORY_SHARE // max(1, bytes_per_image))
    return max(1, min(n_filters, fit))


def is_out_of_memory(exc: BaseException) -> bool:
    """An allocation failure of the device: torch's OutOfMemoryError, or a cuDNN/cuBLAS/MPS allocation error."""
    oom_types = tuple(
        t
        for t in {getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)}
        if t is not None
    )
    if oom_types and isinstance(exc, oom_types):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc)
    return any(
        s in text
        for s in (
            "CUDNN_STATUS_ALLOC_FAILED",
            "CUBLAS_STATUS_ALLOC_FAILED",
            "out of memory",
            "MPS backend out of memory",
        )
    )


def release_cache(device: torch.device) -> None:
    """Give cached blocks back after a failed chunk (CUDA and MPS each have their own call)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps") and hasattr(torch.mps, "empty_cache"):
        torch.mps.empty_cache()


def ascent_records(
    n: int, steps: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
    """An ascent's records, kept on the device until its chunk ends: losses (steps + 1, n) float32,
    dead flags (n,), and snapshots by step (filled as the loop reaches them)."""
    return (
        torch.empty(steps + 1, n, device=device, dtype=torch.float32),
        torch.zeros(n, dtype=torch.bool, device=device),
        {},
    )


def to_host(t: torch.Tensor):
    """A device tensor as a float64 numpy array: moved to the CPU *before* widening (MPS has no float64)."""
    import numpy as np

    return t.detach().float().cpu().numpy().astype(np.float64)
