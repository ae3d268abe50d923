"""State dicts from files and torchvision's published weights, applied with every name and shape checked.

Both :func:`torch_filtviz.models.load_vgg16` (torchvision's VGG16 weights, a ``.pth`` file) and the
networks by name of :mod:`torch_filtviz.zoo` load weights this way, so it lives apart from both.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from filtviz_core.errors import WeightsError, WeightsUnavailable
from filtviz_core.weights import sha256_of

#: Side-branch parameters some checkpoints carry that a plain classifier has no place for.
DROPPED_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")
STATE_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")


def torchvision_weights(name: str, weights_name: str) -> dict[str, torch.Tensor]:
    """torchvision's published weights for ``name``, from torch's cache or downloaded (runtime failure if neither)."""
    import torchvision

    enum = getattr(torchvision.models.get_model_weights(name), weights_name)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)
    if not cached.is_file() and os.environ.get("FILTVIZ_OFFLINE"):
        raise WeightsUnavailable(
            f"torchvision's {name} weights ({enum}) are not in torch's cache ({cached}) and "
            "FILTVIZ_OFFLINE is set; use --weights random or a weights file"
        )
    chatter = io.StringIO()  # torch.hub announces the download on stdout: keep failures to one line
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            state = enum.get_state_dict(progress=False, check_hash=True)
        if not cached.is_file() or chatter.getvalue():
            print(f"downloaded torchvision's {name} weights ({enum}) to {cached}", file=sys.stderr)
        return state
    except Exception as exc:  # noqa: BLE001 - network, proxy or hash failures all mean "not available"
        raise WeightsUnavailable(
            f"torchvision's {name} weights are not available here ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); use --weights random or a file"
        ) from None


def load_state_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict]:
    """A state dict from ``.pth``/``.pt`` (``torch.load(weights_only=True)``) or ``.safetensors``, plus run.json's
    entry.

    A checkpoint that nests its weights under ``"state_dict"`` or ``"model"``, or prefixes them with
    ``module.`` (DataParallel), is unwrapped.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsUnavailable(f"weights file not found: {file}")
    suffix = file.suffix.lower()
    state: Any  # a state dict, or whatever torch.load found (checked below)
    if suffix not in STATE_SUFFIXES:
        raise WeightsError(f"unsupported weights file {file}: use a state dict saved as .pth/.pt or .safetensors")
    if suffix == ".safetensors":
        from filtviz_core import safetensors_io

        arrays, _ = safetensors_io.decode(file.read_bytes(), str(file))
        state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    else:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - pickle, zip and unsafe-global errors alike
            raise WeightsError(
                f"{file} is not a state dict torch can load safely (weights_only=True): {type(exc).__name__}"
            ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{file} does not hold a state dict (a mapping of names to tensors)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state), {"source": f"file:{file}", "sha256": sha256_of(file)}


def apply_state(network: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state`` strictly into ``network``; any missing, unexpected or mis-shaped tensor is one clear line."""
    own = network.state_dict()
    state = {k: v for k, v in state.items() if not (k.startswith(DROPPED_PREFIXES) and k not in own)}
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [
        (k, tuple(state[k].shape), tuple(v.shape))
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if shapes:
        k, got, want = shapes[0]
        more = f" ({len(shapes) - 1} more)" if len(shapes) > 1 else ""
        raise WeightsError(f"the weights do not fit {what}: {k} has shape {got} in the file, {want} in the model{more}")
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (first: {extra[0]})")
        raise WeightsError(f"the weights do not fit {what}: {', '.join(parts)}")
    network.load_state_dict(state, strict=True)
