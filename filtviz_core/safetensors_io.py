"""A deterministic, numpy-only reader/writer for the safetensors format.

Why not the ``safetensors`` package: the canonical weights file is pinned by the SHA-256 of its
bytes, so the bytes must not depend on a library version. This writer always produces the same
file for the same tensors (names sorted, compact JSON header, space-padded to 8 bytes), and the
file stays readable by ``safetensors.numpy.load_file`` (a test checks that).
"""

from __future__ import annotations

import json
import struct

import numpy as np

from filtviz_core.errors import WeightsError

_DTYPES = {"F32": np.dtype("<f4")}


def encode(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors bytes of ``tensors`` (float32 only), byte-for-byte reproducible."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def decode(blob: bytes, where: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata from safetensors bytes; any inconsistency raises :class:`WeightsError`."""

    def bad(why: str) -> WeightsError:
        return WeightsError(f"{where} is not a valid safetensors weights file ({why}); delete it or pass another file")

    if len(blob) < 8:
        raise bad("shorter than its 8-byte header length")
    (head_len,) = struct.unpack("<Q", blob[:8])
    if head_len > len(blob) - 8:
        raise bad("truncated header")
    try:
        header = json.loads(blob[8 : 8 + head_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad("unreadable header") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data = memoryview(blob)[8 + head_len :]
    tensors: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        try:
            dtype = _DTYPES[spec["dtype"]]
            shape = tuple(int(s) for s in spec["shape"])
            start, end = (int(v) for v in spec["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise bad(f"tensor {name!r} has an unsupported entry") from None
        if not 0 <= start <= end <= len(data) or end - start != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
            raise bad(f"tensor {name!r} lies outside the file (truncated?)")
        tensors[name] = np.frombuffer(data[start:end], dtype=dtype).reshape(shape).copy()
    return tensors, {str(k): str(v) for k, v in metadata.items()}
