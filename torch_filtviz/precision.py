"""The float32 math of convolutions and matmuls during a call: IEEE fp32, or TF32 when asked for.

PyTorch lets cuDNN use TF32 tensor cores for fp32 convolutions by default (a 10-bit mantissa),
which would move results away from the spec, so ``precision="fp32"`` forbids it for the call and
``"tf32"`` allows it. PyTorch has two APIs for this switch, and refuses to mix them ("a mix of the
legacy and new APIs"): the legacy ``allow_tf32`` flags, and the ``fp32_precision`` settings
(``torch.backends.cudnn.conv.fp32_precision = "ieee"``, ``torch.backends.fp32_precision = "tf32"``).
:func:`conv_math` uses whichever the caller's process is using — the legacy flags while they are
readable, the new settings otherwise — and restores every setting it touched when the call ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch

#: The new API's (backend, op) settings that decide conv/matmul math during a call.
NEW_API_KEYS = (
    ("cuda", "conv"),
    ("cuda", "rnn"),
    ("cuda", "matmul"),
    ("mkldnn", "conv"),
    ("mkldnn", "rnn"),
    ("mkldnn", "matmul"),
)
PARENTS = {
    ("cuda", "conv"): ("cuda", "all"),
    ("cuda", "rnn"): ("cuda", "all"),
    ("cuda", "matmul"): ("cuda", "all"),
    ("mkldnn", "conv"): ("mkldnn", "all"),
    ("mkldnn", "rnn"): ("mkldnn", "all"),
    ("mkldnn", "matmul"): ("mkldnn", "all"),
    ("cuda", "all"): ("generic", "all"),
    ("mkldnn", "all"): ("generic", "all"),
}


def has_new_api() -> bool:
    return hasattr(torch._C, "_get_fp32_precision_getter") and hasattr(torch._C, "_set_fp32_precision_setter")


def legacy_readable() -> bool:
    """Whether the legacy ``allow_tf32`` flags can be read (False once the new API has been used)."""
    try:
        torch.backends.cudnn.allow_tf32  # noqa: B018 - the read is the test
        torch.backends.cuda.matmul.allow_tf32  # noqa: B018
    except RuntimeError:
        return False
    return True


def api_in_use() -> str:
    """``"legacy"`` or ``"new"``: which precision API the process is on (see the module docstring)."""
    if not has_new_api():
        return "legacy"
    return "legacy" if legacy_readable() else "new"


def _get(key: tuple[str, str]) -> str:
    return torch._C._get_fp32_precision_getter(*key)


def _set(key: tuple[str, str], value: str) -> None:
    torch._C._set_fp32_precision_setter(*key, value)


def effective(backend: str, op: str) -> str:
    """The fp32 math (``"ieee"``, ``"tf32"``, ``"bf16"``) in force for ``backend``'s ``op`` right now.

    Read through whichever API is in use, so it reports what the library really runs with.
    """
    if api_in_use() == "legacy":
        if backend == "cuda" and op in ("conv", "rnn"):
            return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"
        if backend == "cuda" and op == "matmul":
            return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
    key: tuple[str, str] | None = (backend, op)
    while key is not None:
        value = _get(key)
        if value != "none":
            return value
        key = PARENTS.get(key)
    return "ieee"


@contextmanager
def conv_math(precision: str) -> Iterator[None]:
    """fp32 (IEEE) or TF32 convolution and matmul math for the duration; ``"bf16"`` counts as fp32 here
    (bf16 autocast decides its own math). Every setting touched is restored afterwards."""
    tf32 = precision == "tf32"
    if api_in_use() == "legacy":
        flags: tuple[Any, ...] = (torch.backends.cudnn, torch.backends.cuda.matmul)  # modules with allow_tf32
        changed = [(f, f.allow_tf32) for f in flags if f.allow_tf32 != tf32]  # untouched flags stay exactly as set
        shadow = {key: _get(key) for key in NEW_API_KEYS} if has_new_api() else {}
        for f, _ in changed:
            f.allow_tf32 = tf32
        try:
            yield
        finally:
            for f, old in changed:
                f.allow_tf32 = old
            for key, old_value in shadow.items():  # the legacy setters write the new API's view too: put it back
                if _get(key) != old_value:
                    _set(key, old_value)
        return
    saved_new = {key: _get(key) for key in NEW_API_KEYS}  # op level only: parents stay untouched
    value = "tf32" if tf32 else "ieee"
    for key in NEW_API_KEYS:
        _set(key, "ieee" if key[0] == "mkldnn" else value)  # TF32 is a CUDA option; CPU math stays IEEE
    try:
        yield
    finally:
        for key, old in saved_new.items():
            _set(key, old)


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The network's autocast for one ascent: bf16 for ``precision="bf16"``, none otherwise (the loss,
    the step and the picture stay fp32 either way)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()
