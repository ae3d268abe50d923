"""Useful work in FLOPs, and the peaks to hold it against: achieved TFLOP/s says how much of a device a
method uses, which a ratio between two slow methods cannot."""

from __future__ import annotations

import torch

from filtviz_bench.jobs import Job

# Dense peak TFLOP/s by GPU (vendor datasheets): fp32 (CUDA cores), tf32 and bf16 (tensor cores).
GPU_PEAKS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    ("H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),
    ("H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    ("H100 PCIe", {"fp32": 51.0, "tf32": 378.0, "bf16": 756.0}),
    ("H100", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),  # SXM5 (e.g. "NVIDIA H100 80GB HBM3")
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),
    ("L40S", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0}),
)


def conv_flops(model: torch.nn.Module, layer: str, size: int) -> int:
    """Forward conv FLOPs (2 per multiply-add) for one ``size`` px image, up to and including the
    conv of ``layer`` (the pre-activation objective stops there). The input gradient of a conv
    costs the same again, so one ascent step costs twice this. Counted by the atlas's own probe pass
    (:func:`torch_filtviz.atlas.cost.layer_costs`), so the benchmark and the atlas's work split agree."""
    from torch_filtviz.atlas.cost import layer_costs

    return int(layer_costs(model, [layer], size, objective="pre_relu")[layer])


def job_flops(model: torch.nn.Module, job: Job) -> float:
    """Useful FLOPs of the whole job: per filter ``steps`` x (forward + input gradient) + one last forward."""
    return float(
        sum(len(f) * (2 * job.steps + 1) * conv_flops(model, layer, job.size) for layer, f in job.filters.items())
    )


def gpu_peak(device_name: str, kind: str) -> float | None:
    """Dense peak TFLOP/s of a known GPU for ``kind`` (fp32, tf32, bf16); None if unknown."""
    for key, peaks in GPU_PEAKS:
        if key.lower() in device_name.lower():
            return peaks.get(kind)
    return None


def math_kind(method: str, device: torch.device) -> str:
    """Which units the method's convs run on: bf16, or fp32 (torch_filtviz's fp32 switches cuDNN TF32 off for
    its call; Lucent's runs under torch's global default, which allows TF32 on CUDA)."""
    if "bf16" in method:
        return "bf16"
    if device.type == "cuda" and method.startswith("lucent") and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "fp32"
