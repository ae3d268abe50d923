#!/usr/bin/env python
"""Time filter visualization against the alternatives, side by side in one process run.

Why one run: absolute times on shared machines are noise; ratios measured in the same process,
on the same inputs, interleaved (every repeat runs every method once, round robin) are not.

Methods (all start from the identical ``filtviz_core.algorithm.initial_images`` and maximize the
same objective on the same weights):

=================  ===========================================================================
tf_eager           tf_reference, one filter at a time, eager ``GradientTape`` (the notebook's way)
tf_compiled        tf_reference, one filter at a time, ``tf.function`` step (traced once, warm)
torch_one          torch_filtviz.visualize_filters with ``batch_size=1`` (same loop, batch 1)
torch_fp32         torch_filtviz batched, fp32, default memory format (channels_last on CPU, NCHW elsewhere)
torch_fp32_nchw    ... fp32, forced NCHW (contiguous) memory format
torch_fp32_cl      ... fp32, forced channels_last memory format
torch_bf16         ... bf16 autocast (loss, RMS and update stay fp32), default memory format
torch_bf16_cl      ... bf16 autocast + channels_last (the CUDA fast path)
lucent             Lucent's ``render_vis`` on the same model: pixel parameterization in the same
                   0-255 units, no transforms, ``channel`` objective per batch element, Adam
=================  ===========================================================================

Figures: seconds per method (median, min, max of ``--repeats`` after one warm-up), image-steps
per second (filters x steps / seconds), the ratio of each method's rate to every other's, and the
achieved TFLOP/s = (forward + input-gradient conv FLOPs of the useful work) / seconds. One-at-a-time
methods may time a subset of the filters (``--baseline-filters``) and are scaled to the whole job.

    python scripts/benchmark.py --layer block3_conv1 --filters 16 --size 64 --steps 20 --out benchmarks/cpu
    python scripts/benchmark.py --job block5      # GPU: all 512 filters of block5_conv3, 128 px, 100 steps
    python scripts/benchmark.py --job atlas       # GPU: all 4,224 conv filters, 128 px, 100 steps
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from filtviz_core import algorithm as alg  # noqa: E402
from filtviz_core import vgg16 as vgg_spec  # noqa: E402
from filtviz_core.atomic import write_json  # noqa: E402
from filtviz_core.errors import FiltvizError  # noqa: E402

SCHEMA = 1
METHODS = ("tf_eager", "tf_compiled", "torch_one", "torch_fp32", "torch_fp32_nchw", "torch_fp32_cl", "torch_bf16",
           "torch_bf16_cl", "lucent")
# On CPU the defaults already are channels_last, so the forced-_cl rows would repeat them.
CPU_METHODS = ("tf_eager", "tf_compiled", "torch_one", "torch_fp32", "torch_fp32_nchw", "torch_bf16", "lucent")
CUDA_METHODS = ("tf_compiled", "torch_one", "torch_fp32", "torch_fp32_cl", "torch_bf16", "torch_bf16_cl", "lucent")
ONE_AT_A_TIME = ("tf_eager", "tf_compiled", "torch_one")
LABELS = {
    "tf_eager": "TF eager, one filter at a time",
    "tf_compiled": "TF tf.function, one filter at a time",
    "torch_one": "torch, one filter at a time",
    "torch_fp32": "torch_filtviz batched fp32 (defaults)",
    "torch_fp32_nchw": "torch_filtviz batched fp32, NCHW forced",
    "torch_fp32_cl": "torch_filtviz batched fp32 channels_last",
    "torch_bf16": "torch_filtviz batched bf16 autocast (default format)",
    "torch_bf16_cl": "torch_filtviz batched bf16 + channels_last",
    "lucent": "Lucent render_vis batched (Adam)",
}
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
# Preset jobs: (layers, filters per layer or None for all, size, steps).
JOBS: dict[str, dict[str, Any]] = {
    "cpu": {"layers": ["block3_conv1"], "filters": 16, "size": 64, "steps": 20},
    "block5": {"layers": ["block5_conv3"], "filters": None, "size": 128, "steps": 100},
    "atlas": {"layers": list(vgg_spec.CONV_NAMES), "filters": None, "size": 128, "steps": 100},
}
# What the issue asks of the CPU run: (method, baseline, least ratio of rates).
CPU_TARGETS: tuple[tuple[str, str, float], ...] = (
    ("torch_fp32", "tf_compiled", 1.0),
    ("torch_fp32", "tf_eager", 2.5),
    ("torch_bf16", "tf_compiled", 1.5),
    ("torch_fp32", "lucent", 2.0),
)


@dataclass
class Job:
    """What every method computes: ``filters[layer]`` of each layer, ``size`` px, ``steps`` steps."""

    name: str
    filters: dict[str, list[int]]
    size: int
    steps: int
    lr: float = alg.DEFAULT_LR
    seed: int = alg.DEFAULT_SEED
    weights: str = "random"
    inits: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for layer, chosen in self.filters.items():
            self.inits[layer] = alg.initial_images(chosen, self.size, self.seed)

    @property
    def n_filters(self) -> int:
        return sum(len(f) for f in self.filters.values())

    @property
    def image_steps(self) -> int:
        return self.n_filters * self.steps

    def describe(self) -> dict[str, Any]:
        layers = list(self.filters)
        return {"name": self.name, "layers": layers, "filters": {k: _compact(v) for k, v in self.filters.items()},
                "n_filters": self.n_filters, "size": self.size, "steps": self.steps, "lr": self.lr,
                "seed": self.seed, "weights": self.weights, "objective": alg.DEFAULT_OBJECTIVE,
                "image_steps": self.image_steps}


def _compact(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (what parse_filters reads back)."""
    parts, start = [], None
    for i, v in enumerate(indices):
        if start is None:
            start = v
        if i + 1 == len(indices) or indices[i + 1] != v + 1:
            parts.append(str(v) if v == start else f"{start}-{v}")
            start = None
    return ",".join(parts)


def make_job(name: str, layers: Sequence[str] | None = None, filters: str | int | None = None,
             size: int | None = None, steps: int | None = None, *, weights: str = "random",
             lr: float = alg.DEFAULT_LR, seed: int = alg.DEFAULT_SEED) -> Job:
    """A preset (``cpu``, ``block5``, ``atlas``) with any field overridden. ``filters``: a count
    ("16": the first 16 of each layer), ``"all"``, or a list such as ``"0-7,20"``."""
    if name not in JOBS:
        raise FiltvizError(f"unknown job {name!r}; valid: {', '.join(JOBS)}")
    preset = JOBS[name]
    layers = list(layers or preset["layers"])
    size = int(size or preset["size"])
    steps = int(preset["steps"] if steps is None else steps)
    spec = preset["filters"] if filters is None else filters
    chosen: dict[str, list[int]] = {}
    for layer in layers:
        if layer not in vgg_spec.FILTER_COUNTS:
            raise FiltvizError(f"unknown conv layer {layer!r}; valid: {', '.join(vgg_spec.CONV_NAMES)}")
        count = vgg_spec.FILTER_COUNTS[layer]
        alg.check_image_size(size, vgg_spec.min_size_for(layer), layer)
        if spec is None or str(spec) == "all":
            chosen[layer] = list(range(count))
        elif re.fullmatch(r"\d+", str(spec)):
            chosen[layer] = list(range(min(int(spec), count)))
        else:
            chosen[layer] = alg.parse_filters(str(spec), count, layer)
    alg.check_steps(steps, lr)
    return Job(name=name, filters=chosen, size=size, steps=steps, lr=lr, seed=seed, weights=weights)


def subset(job: Job, per_layer: int | None) -> dict[str, list[int]]:
    """The filters a one-at-a-time method times: the first ``per_layer`` of each layer (None: all)."""
    return {layer: (f if per_layer is None else f[:per_layer]) for layer, f in job.filters.items()}


# ---------------------------------------------------------------- FLOPs and peaks


def conv_flops(model: torch.nn.Module, layer: str, size: int) -> int:
    """Forward conv FLOPs (2 per multiply-add) for one ``size`` px image, up to and including the
    conv of ``layer`` (the pre-activation objective stops there). The input gradient of a conv
    costs the same again, so one ascent step costs twice this."""
    from torch_filtviz.hooks import capture, resolve_target

    total = 0

    def count(module: torch.nn.Module, args: Any, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += 2 * (module.in_channels // module.groups) * kh * kw * out.shape[1] * out.shape[2] * out.shape[3]

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        target = resolve_target(model, layer, "pre_relu")
        device = next(model.parameters()).device
        with torch.no_grad(), capture(model, target) as cap:
            cap(torch.full((1, 3, size, size), 128.0, device=device))
    finally:
        for h in handles:
            h.remove()
    return int(total)


def job_flops(model: torch.nn.Module, job: Job) -> float:
    """Useful FLOPs of the whole job: per filter ``steps`` x (forward + input gradient) + one last forward."""
    return float(sum(len(f) * (2 * job.steps + 1) * conv_flops(model, layer, job.size)
                     for layer, f in job.filters.items()))


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
    if device.type == "cuda" and method == "lucent" and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "fp32"


# ---------------------------------------------------------------- methods


@dataclass
class Method:
    """One contender: ``run(filters) -> {layer: losses (F, steps + 1)}`` on the job's inits."""

    name: str
    run: Callable[[dict[str, list[int]]], dict[str, np.ndarray]]
    one_at_a_time: bool
    framework: str
    notes: str = ""


def _init_for(job: Job, layer: str, chosen: list[int]) -> np.ndarray:
    index = {f: i for i, f in enumerate(job.filters[layer])}
    return job.inits[layer][[index[f] for f in chosen]]


def torch_method(name: str, job: Job, model: torch.nn.Module, device: torch.device,
                 batch_size: int | None = None) -> Method:
    from torch_filtviz import visualize_filters

    precision = "bf16" if "bf16" in name else "fp32"
    # None = the library's default for the device (channels_last on CPU); the suffixes force one format.
    channels_last = True if name.endswith("_cl") else False if name.endswith("_nchw") else None
    one = name == "torch_one"

    def run(filters: dict[str, list[int]], steps: int | None = None) -> dict[str, np.ndarray]:
        out = {}
        for layer, chosen in filters.items():
            r = visualize_filters(model, layer, chosen, steps=job.steps if steps is None else steps, lr=job.lr,
                                  init=_init_for(job, layer, chosen), snapshots=None, device=device,
                                  precision=precision, channels_last=channels_last,
                                  batch_size=1 if one else batch_size, progress=False)
            out[layer] = r.losses
        return out

    layout = {True: "channels_last", False: "NCHW", None: "default format"}[channels_last]
    notes = "batch 1" if one else f"precision={precision}, {layout}"
    return Method(name, run, one, "torch", notes)


def tf_method(name: str, job: Job, tf_model: Any) -> Method:
    from tf_reference import ascent as tf_ascent

    compiled = name == "tf_compiled"

    def run(filters: dict[str, list[int]], steps: int | None = None) -> dict[str, np.ndarray]:
        out = {}
        for layer, chosen in filters.items():
            rs = tf_ascent.visualize_filters(tf_model, layer, chosen, steps=job.steps if steps is None else steps,
                                             lr=job.lr, init=_init_for(job, layer, chosen), snapshots=None,
                                             compiled=compiled)
            out[layer] = np.stack([r.losses for r in rs])
        return out

    return Method(name, run, True, "tensorflow", "tf_reference.visualize_filters(compiled=%s)" % compiled)


def lucent_method(job: Job, model: torch.nn.Module, device: torch.device) -> Method:
    """Lucent's own loop (``render_vis``) on the same model and pixel start, batched like ours.

    What differs from ours, on purpose kept as Lucent does it: Adam (lr = our lr, in pixel units)
    instead of the RMS-normalised step; the whole network runs forward (hooks on every module, no
    early stop); the objective is Lucent's ``channel`` (mean over the whole map, one term per batch
    element). ``fixed_image_size=size`` keeps its auto-upsampling to 224 px off (an identity resize).
    """
    from lucent.optvis import objectives, render
    from torch_filtviz.ascent import _objective
    from torch_filtviz.hooks import capture, resolve_target

    conv_path = {name: f"features_{idx}" for name, idx in vgg_spec.TORCH_CONV_INDEX.items()}

    def run(filters: dict[str, list[int]], steps: int | None = None) -> dict[str, np.ndarray]:
        n_steps = job.steps if steps is None else steps
        out = {}
        for layer, chosen in filters.items():
            x0 = torch.from_numpy(_init_for(job, layer, chosen)).permute(0, 3, 1, 2).contiguous().to(device)
            x = x0.clone().requires_grad_(True)
            objective = objectives.Objective.sum(
                [objectives.channel(conv_path[layer], f, batch=i) for i, f in enumerate(chosen)])
            if n_steps:
                before = {id(mod): set(mod._forward_hooks) for mod in model.modules()}
                try:
                    render.render_vis(model, objective, param_f=lambda: ([x], lambda: x),
                                      optimizer=lambda p: torch.optim.Adam(p, lr=job.lr), transforms=[],
                                      preprocess=False, thresholds=(n_steps,), progress=False, show_image=False,
                                      fixed_image_size=job.size)
                finally:  # render_vis never removes the hooks it puts on every module: do it for it
                    for mod in model.modules():
                        for key in set(mod._forward_hooks) - before[id(mod)]:
                            del mod._forward_hooks[key]
            # Our objective at x0 and at Lucent's last image, outside what Lucent itself computes.
            target = resolve_target(model, layer, "pre_relu")
            index = torch.tensor(chosen, device=device)
            rows = torch.arange(len(chosen), device=device)
            with torch.no_grad(), capture(model, target) as cap:
                first = _objective(cap(x0)[layer], index, rows)
                last = _objective(cap(x.detach())[layer], index, rows)
            losses = np.full((len(chosen), n_steps + 1), np.nan)
            losses[:, 0] = first.double().cpu().numpy()
            losses[:, -1] = last.double().cpu().numpy()
            out[layer] = losses
        return out

    return Method("lucent", run, False, "torch+lucent",
                  "render_vis, Adam(lr), whole network forward, channel objective over the whole map")


def build_methods(names: Sequence[str], job: Job, device: torch.device, *, batch_size: int | None = None
                  ) -> tuple[list[Method], dict[str, str], dict[str, Any]]:
    """The methods that can run here, the skipped ones with the reason, and the models' facts."""
    from torch_filtviz import load_vgg16

    model = load_vgg16(job.weights, device=device)
    methods: list[Method] = []
    skipped: dict[str, str] = {}
    facts: dict[str, Any] = {"flops": job_flops(model, job)}
    tf_model = None
    for name in names:
        if name not in METHODS:
            raise FiltvizError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
        if name.startswith("tf_"):
            if tf_model is None:
                try:
                    from tf_reference import load_vgg16 as tf_load
                except ImportError as exc:
                    skipped[name] = f"TensorFlow not importable: {exc}"
                    continue
                tf_model = tf_load(job.weights)
            from tf_reference.ascent import device_name as tf_device

            if device.type == "cuda" and not tf_device().startswith("gpu"):
                skipped[name] = "TensorFlow sees no GPU here: a CPU baseline would not be comparable"
                continue
            m = tf_method(name, job, tf_model)
            m.notes += f"; TF device {tf_device()}"
            methods.append(m)
        elif name == "lucent":
            try:
                import lucent.optvis.render  # noqa: F401
            except Exception as exc:  # noqa: BLE001 - any import failure means "not installed here"
                skipped[name] = f"Lucent not importable ({type(exc).__name__}: {exc}); see `make bench`"
                continue
            # Its own copy of the model (same weights): Lucent's hooks never touch the one torch_* time.
            methods.append(lucent_method(job, load_vgg16(job.weights, device=device), device))
        else:
            if "bf16" in name and device.type == "cpu" and not _cpu_bf16_ok():
                skipped[name] = "this CPU has no native bf16 (avx512_bf16/amx): emulated bf16 is slow and meaningless"
                continue
            methods.append(torch_method(name, job, model, device, batch_size))
    return methods, skipped, facts


def _cpu_bf16_ok() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return any(f in flags for f in ("avx512_bf16", "amx_bf16")) or "aarch64" in platform.machine()


# ---------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_methods(methods: Sequence[Method], job: Job, device: torch.device, *, repeats: int,
                 baseline_filters: int | None, log: Callable[[str], None] = print
                 ) -> dict[str, dict[str, Any]]:
    """Warm every method up (2 steps on the same shapes), then ``repeats`` rounds, each running
    every method once in turn, so load changes on a shared machine hit all methods alike."""
    plan = {m.name: subset(job, baseline_filters) if m.one_at_a_time else job.filters for m in methods}
    for m in methods:
        m.run(plan[m.name], steps=min(job.steps, 2))  # type: ignore[call-arg]
    seconds: dict[str, list[float]] = {m.name: [] for m in methods}
    losses: dict[str, dict[str, np.ndarray]] = {}
    for r in range(repeats):
        for m in methods:
            _sync(device)
            start = time.perf_counter()
            got = m.run(plan[m.name])
            _sync(device)
            seconds[m.name].append(time.perf_counter() - start)
            losses[m.name] = got
        log(f"  round {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in seconds.items()))
    out = {}
    for m in methods:
        timed = plan[m.name]
        n_timed = sum(len(f) for f in timed.values())
        # Scale a subset's time to the whole job layer by layer (deeper layers cost more per filter).
        scale = _scale_to_job(job, timed, m, device)
        out[m.name] = {"seconds": seconds[m.name], "filters_timed": n_timed, "scale": scale,
                       "losses": losses[m.name], "method": m}
    return out


def _scale_to_job(job: Job, timed: dict[str, list[int]], m: Method, device: torch.device) -> float:
    if all(len(timed[k]) == len(v) for k, v in job.filters.items()):
        return 1.0
    from torch_filtviz import load_vgg16

    model = load_vgg16("random", device="cpu")
    cost = {layer: conv_flops(model, layer, job.size) for layer in job.filters}
    full = sum(cost[k] * len(v) for k, v in job.filters.items())
    part = sum(cost[k] * len(v) for k, v in timed.items())
    return full / part


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {"median": float(statistics.median(values)), "min": float(min(values)), "max": float(max(values))}


def _final(losses: dict[str, np.ndarray], job: Job, timed: dict[str, list[int]]) -> dict[tuple[str, int], float]:
    """(layer, filter) -> final loss, for comparing methods on the filters they share."""
    return {(layer, f): float(losses[layer][i, -1]) for layer, fs in timed.items() for i, f in enumerate(fs)}


def summarize(results: dict[str, dict[str, Any]], job: Job, device: torch.device, flops: float,
              peak_override: float | None = None) -> dict[str, Any]:
    """The ``methods`` and ``ratios`` entries of bench.json."""
    dev_name = device_name(device)
    methods: dict[str, Any] = {}
    finals = {}
    for name, res in results.items():
        m: Method = res["method"]
        secs = [s * res["scale"] for s in res["seconds"]]
        st = _stats(secs)
        kind = math_kind(name, device)
        peak = peak_override if peak_override is not None else (gpu_peak(dev_name, kind) if device.type == "cuda"
                                                                else None)
        tflops = flops / st["median"] / 1e12
        timed = {layer: fs[:len(res["losses"][layer])] for layer, fs in job.filters.items()}
        finals[name] = _final(res["losses"], job, timed)
        methods[name] = {
            "label": LABELS[name], "framework": m.framework, "one_at_a_time": m.one_at_a_time, "notes": m.notes,
            "filters_timed": res["filters_timed"], "scaled_to_job": res["scale"] != 1.0,
            "seconds_timed": [float(s) for s in res["seconds"]],
            "seconds": st,
            "image_steps_per_s": {"median": job.image_steps / st["median"], "min": job.image_steps / st["max"],
                                  "max": job.image_steps / st["min"]},
            "tflops": tflops, "math": kind, "peak_tflops": peak,
            "fraction_of_peak": (tflops / peak) if peak else None,
            "final_loss_mean": float(np.mean(list(finals[name].values()))),
        }
    ref = "torch_fp32" if "torch_fp32" in finals else None
    for name in methods:
        diff = None
        if ref is not None and name != ref:
            shared = [k for k in finals[name] if k in finals[ref]]
            rel = [abs(finals[name][k] - finals[ref][k]) / max(abs(finals[ref][k]), 1e-12) for k in shared]
            diff = {"median": float(np.median(rel)), "max": float(np.max(rel)), "filters": len(rel)} if rel else None
        methods[name]["final_loss_rel_diff_vs_torch_fp32"] = diff
    # ratios[a][b]: how many times faster a runs than b (rate of a / rate of b).
    ratios = {a: {b: methods[b]["seconds"]["median"] / methods[a]["seconds"]["median"] for b in methods if b != a}
              for a in methods}
    return {"methods": methods, "ratios": ratios}


def check_targets(summary: dict[str, Any], device: torch.device) -> list[dict[str, Any]]:
    """The issue's CPU targets, as measured (GPU targets are absolute times: see the job's seconds)."""
    if device.type != "cpu":
        return []
    out = []
    for method, base, need in CPU_TARGETS:
        ratio = summary["ratios"].get(method, {}).get(base)
        out.append({"method": method, "baseline": base, "needed": need, "ratio": ratio,
                    "met": None if ratio is None else bool(ratio >= need)})
    return out


# ---------------------------------------------------------------- facts about the run


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
    info: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "torch_interop_threads": None,
                            "cpu_count": os.cpu_count()}
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    info["torch_interop_threads"] = torch.get_num_interop_threads()
    if with_tf:
        try:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(1)
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


# ---------------------------------------------------------------- output


def markdown(bench: dict[str, Any]) -> str:
    """The table printed to stdout and pasted into the README."""
    ms = bench["methods"]
    baselines = [b for b in ("tf_eager", "tf_compiled", "torch_one", "lucent") if b in ms]
    head = ["method", "seconds (median [min-max])", "image-steps/s", "TFLOP/s"] + [f"x {b}" for b in baselines]
    head.append("final loss vs fp32")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in ms.items():
        s = m["seconds"]
        cells = [f"{m['label']}" + (" *" if m["scaled_to_job"] else ""),
                 f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]",
                 f"{m['image_steps_per_s']['median']:.1f}", f"{m['tflops']:.3f}"]
        cells += ["-" if b == name else f"{bench['ratios'][name][b]:.2f}" for b in baselines]
        d = m["final_loss_rel_diff_vs_torch_fp32"]
        cells.append("ref" if name == "torch_fp32" else ("-" if d is None else f"{d['median']:.1e} (max {d['max']:.1e})"))
        rows.append("| " + " | ".join(cells) + " |")
    job = bench["job"]
    lines = [f"Job {job['name']}: {', '.join(job['layers'])}, {job['n_filters']} filters, {job['size']} px, "
             f"{job['steps']} steps, weights {job['weights']}; device {bench['device']['name']} "
             f"({bench['threads']['torch_threads']} threads, OMP_WAIT_POLICY={bench['env']['OMP_WAIT_POLICY']}); load average {bench['load_average']['before']} -> "
             f"{bench['load_average']['after']}; median of {bench['repeats']} after a warm-up.", ""]
    lines += rows
    if any(m["scaled_to_job"] for m in ms.values()):
        lines.append("\n\\* timed on a subset of the filters (`--baseline-filters`), scaled to the whole job.")
    for t in bench["targets"]:
        lines.append(f"- target {t['method']} >= {t['needed']}x {t['baseline']}: "
                     + ("n/a" if t["ratio"] is None else f"{t['ratio']:.2f}x {'met' if t['met'] else 'NOT met'}"))
    for name, why in bench["skipped"].items():
        lines.append(f"- skipped {name}: {why}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--job", default="cpu", choices=list(JOBS), help="preset; the options below override it")
    p.add_argument("--layer", action="append", dest="layers", help="conv layer (repeatable)")
    p.add_argument("--filters", help="count per layer (16), 'all', or a list such as 0-7,20")
    p.add_argument("--size", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--weights", default="random", help="random (timing), keras, or a weights file")
    p.add_argument("--device", default="auto")
    p.add_argument("--methods", help=f"comma list from {', '.join(METHODS)} (default: by device)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline-filters", type=int, default=None,
                   help="one-at-a-time methods time only this many filters per layer, scaled to the job "
                        "(default: all on CPU, 4 on CUDA)")
    p.add_argument("--batch-size", type=int, default=None, help="filters per chunk (default: torch_filtviz's)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads for torch and TF (default: torch's)")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak to compare against (default: looked up)")
    p.add_argument("--out", help="directory for bench.json (default: benchmarks/<device>/<job>)")
    return p.parse_args(argv)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from torch_filtviz import resolve_device

    device = resolve_device(args.device)
    names = (args.methods.split(",") if args.methods
             else list(CUDA_METHODS if device.type == "cuda" else CPU_METHODS))
    names = [n.strip() for n in names if n.strip()]
    if args.repeats < 1:
        raise FiltvizError("--repeats must be >= 1")
    job = make_job(args.job, args.layers, args.filters, args.size, args.steps, weights=args.weights)
    per_layer = args.baseline_filters if args.baseline_filters is not None else (4 if device.type == "cuda" else None)
    threads = set_threads(args.threads or torch.get_num_threads(), any(n.startswith("tf_") for n in names))
    load_before = load_average()
    print(f"benchmark {job.name}: {job.n_filters} filters x {job.steps} steps at {job.size} px on {device} "
          f"({device_name(device)}), methods {', '.join(names)}", flush=True)
    methods, skipped, facts = build_methods(names, job, device, batch_size=args.batch_size)
    results = time_methods(methods, job, device, repeats=args.repeats, baseline_filters=per_layer)
    summary = summarize(results, job, device, facts["flops"], args.peak_tflops)
    bench: dict[str, Any] = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python scripts/benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "job": job.describe(),
        "device": {"type": device.type, "name": device_name(device), "platform": platform.platform()},
        "versions": versions(),
        "threads": threads,
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "load_average": {"before": load_before, "after": load_average()},
        "repeats": args.repeats,
        "baseline_filters": per_layer,
        "flops_per_job": facts["flops"],
        "flops_definition": "conv FLOPs (2 per multiply-add) of forward + input gradient per step, plus the "
                            "last forward, for the job's filters up to each layer's conv",
        **summary,
        "skipped": skipped,
    }
    bench["targets"] = check_targets(bench, device)
    out = Path(args.out) if args.out else Path("benchmarks") / slug(f"{device.type}-{device_name(device)}") / job.name
    write_json(out / "bench.json", bench)
    print(markdown(bench))
    print(f"\nwrote {out / 'bench.json'}")
    return bench


if __name__ == "__main__":
    try:
        main()
    except FiltvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
