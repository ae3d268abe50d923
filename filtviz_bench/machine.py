"""Facts about the machine a benchmark ran on, recorded beside its figures so a reader can judge them."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

import torch


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torch", "torchvision", "numpy", "tensorflow", "keras", "torch-lucent", "kornia"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    if torch.cuda.is_available():
        out["cuda"] = torch.version.cuda
        out["cudnn"] = str(torch.backends.cudnn.version())
    return out


def set_threads(n: int, with_tf: bool) -> dict[str, Any]:
    """Give torch and TensorFlow the same number of intra-op threads (they run one after the other,
    never at once); TF's inter-op pool is 1 so its graph ops do not compete with its own kernels."""
    torch.set_num_threads(n)
    info: dict[str, Any] = {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": None,
        "cpu_count": os.cpu_count(),
    }
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    info["torch_interop_threads"] = torch.get_num_interop_threads()
    if with_tf:
        try:
            import tensorflow as tf

            try:
                tf.config.threading.set_intra_op_parallelism_threads(n)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TF already started in this process (e.g. a test suite): its pools stay
                info["tf_threads_note"] = "TensorFlow was initialised before the benchmark; its thread pools kept"
            info["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
            info["tf_inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        except ImportError:
            pass
    return info


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def cpu_bf16_ok() -> bool:
    """Whether this CPU runs bf16 natively (emulated bf16 is slow and its timings meaningless)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return any(f in flags for f in ("avx512_bf16", "amx_bf16")) or "aarch64" in platform.machine()


def env_vars() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
