"""The run.json record both frameworks write, with the same schema, so runs can be compared.

A reader can reproduce a run from it: framework and versions, weights (source, SHA-256), layer,
filters, every parameter, the loss history of every filter, dead flags, time and device.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np

from filtviz_core import atomic

SCHEMA_VERSION = 1
FIELDS = (
    "framework",
    "framework_version",
    "weights",
    "layer",
    "filters",
    "params",
    "losses",
    "dead",
    "seconds",
    "device",
    "created",
)


def run_record(
    *,
    framework: str,
    framework_version: str,
    weights: dict[str, Any],
    layer: str,
    filters: Sequence[int],
    params: dict[str, Any],
    losses: np.ndarray,
    dead: Sequence[bool] | np.ndarray,
    seconds: float,
    device: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run.json dictionary (losses: one list of steps + 1 floats per filter)."""
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "framework": framework,
        "framework_version": framework_version,
        "weights": {"source": weights.get("source"), "sha256": weights.get("sha256")},
        "layer": layer,
        "filters": [int(f) for f in filters],
        "params": _plain(params),
        "losses": np.asarray(losses, dtype=np.float64).tolist(),
        "dead": [bool(d) for d in dead],
        "seconds": float(seconds),
        "device": device,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    record.update(_plain(extra or {}))
    return record


def write_run(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write run.json atomically."""
    atomic.write_json(path, record)


def _plain(value: Any) -> Any:
    """JSON-friendly copy: numpy scalars/arrays and tuples become plain Python."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
