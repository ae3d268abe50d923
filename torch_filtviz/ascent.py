"""One picture per filter: :func:`visualize_filters`, the image that most excites each filter of a layer.

A thin layer over the one optimization loop (``torch_filtviz/loop.py``, SPEC.md §16): batch element i
maximizes filter ``filters[i]`` (SPEC §5's interior mean, or its centre neuron with ``unit="neuron"``),
starting from the seeded draw of that filter, with the method's parts (``method_parts.py``). The
per-element values are summed before the backward pass and a sample's gradient only depends on its own
value, so each filter's result does not depend on which other filters share its batch: batching is
pure speed. ``diversity=K`` is the exception by design: a filter's K pictures form one group, coupled
by the diversity penalty, and always run in one chunk.

Speed: the forward pass stops right after the layer (hooks), no weight gradient is computed, losses
stay on the device until the chunk ends. ``channels_last`` (NHWC) is the default on CPU, where
oneDNN's NHWC kernels are faster (measured in docs/benchmarks.md); results differ from
NCHW only by float rounding. ``precision="bf16"`` (autocast forward; loss, normalisation and update in
fp32) is faster on CPUs with bf16 units, but the pictures then differ slightly from the fp32 spec, so
fp32 stays the default.
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
from filtviz_core import methods
from filtviz_core import objectives as core_objectives
from filtviz_core.errors import FiltvizError
from filtviz_core.runrecord import run_record as _run_record
from torch_filtviz import job as jobs
from torch_filtviz.channels import input_channels
from torch_filtviz.method_parts import Setting
from torch_filtviz.models import min_input_size, resolve_device
from torch_filtviz.objectives import check_tokens
from torch_filtviz.targets import model_device_dtype

PRECISIONS = jobs.PRECISIONS


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
    method: str = methods.DEFAULT_METHOD  # "pixel" (SPEC §1-§14), "fourier" (SPEC §15) or "maco" (SPEC §17)
    objective: dict[str, Any] = field(default_factory=dict)  # render's objective: its words and terms
    diversity: int = 1  # pictures per filter (filters[i] repeats each filter this many times)
    alpha: np.ndarray | None = None  # maco (SPEC §17.5): (F, H, W) float32 transparency in [0, 1]; else None

    def run_record(self, weights: dict[str, Any] | None = None) -> dict[str, Any]:
        """The run.json dictionary (same schema as tf_reference's); ``weights`` defaults to the model's."""
        import torchvision

        extra: dict[str, Any] = {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "model": self.model,
            "target": self.target,
            "method": self.method,
        }
        if self.objective:
            extra["objective"] = self.objective
        if self.diversity > 1:  # SPEC §16.7: each picture's copy k of its filter
            extra["copies"] = [i % self.diversity for i in range(len(self.filters))]
        if self.device.startswith("cuda") and torch.cuda.is_available():
            extra["device_name"] = torch.cuda.get_device_name(torch.device(self.device))
        return _run_record(
            framework="torch",
            framework_version=f"torch {torch.__version__}; torchvision {torchvision.__version__}",
            weights=self.weights if weights is None else weights,
            layer=self.layer,
            filters=self.filters,
            params=self.params,
            losses=self.losses,
            dead=self.dead,
            seconds=self.seconds,
            device=self.device,
            extra=extra,
        )


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
    method_options: Mapping[str, Any] | methods.MethodOptions | None = None,
    unit: str = "channel",
    diversity: int = 1,
    diversity_weight: float | None = None,
    tokens: str = core_objectives.DEFAULT_TOKENS,
) -> FilterResults:
    """Gradient ascent on one input image per filter of ``layer`` (alias or module path).

    ``method``: ``"pixel"`` (the canonical ascent of SPEC.md §1-§14: pixels, RMS-normalised steps;
    100 steps, lr 1.0 by default) or ``"fourier"`` (SPEC.md §15: a decorrelated Fourier spectrum, random
    transforms at every step, Adam; 128 steps, lr 0.05 by default) or ``"maco"`` (SPEC.md §17: the phase
    under a fixed natural-image magnitude, ``crops`` noisy crops per step, NAdam; 256 steps, lr 1.0; its
    transparency comes back as ``alpha``; ``method_options`` as ``filtviz_core.methods.MacoOptions``, e.g.
    ``{"crops": 8}``). ``steps``/``lr`` None take the method's default. ``method_options`` overrides the
    fourier method's other parameters by name
    (``filtviz_core.methods.FourierOptions``: ``pad``, ``jitter``, ``scale``, ``rotate``, ``jitter2``,
    ``transforms``, ``decay``, ``divisor``, ``decorrelate``, ``init_std``, ``beta1``, ``beta2``, ``eps``,
    ``pad_value``).

    ``unit``: ``"channel"`` (the mean of the filter's map over its interior, SPEC §5) or ``"neuron"``
    (the filter at the centre of its map). ``diversity=K``: K different pictures of each filter, one
    diversity group each (SPEC §16.4): ``images`` is ``(F*K, H, W, 3)`` with filter f's k-th picture at
    ``f*K + k`` (``filters`` repeats each filter K times); ``diversity_weight`` (default
    ``filtviz_core.objectives.DIVERSITY_WEIGHT``) weighs the penalty against the objective.
    ``tokens``: on a vision transformer's (N, T, C) token layer, ``"patches"`` (channel: the mean over
    the patch tokens, class token excluded; neuron: the centre patch token), ``"cls"`` (the class
    token) or ``"all"`` (channel: the mean over every token); see ``filtviz_core.objectives``.

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

    >>> import torch_filtviz as fv
    >>> model = fv.load_model("vgg16", weights="random")  # doctest: +SKIP
    >>> res = fv.visualize_filters(model, "block1_conv2", "0-3", steps=10, size=32, progress=False)  # doctest: +SKIP
    >>> res.images.shape  # doctest: +SKIP
    (4, 32, 32, 3)
    """
    started = time.perf_counter()
    steps, lr, options = jobs.check_call(
        method=method,
        steps=steps,
        lr=lr,
        seed=seed,
        activation=objective,
        method_options=method_options,
        init_given=init is not None,
        clip=clip,
        precision=precision,
        batch_size=batch_size,
    )
    if unit not in core_objectives.UNITS:
        raise FiltvizError(f"unknown unit {unit!r}; valid: {', '.join(core_objectives.UNITS)}")
    group, weight = _diversity(diversity, diversity_weight, init is not None)
    core_objectives.per_filter(layer, [0], unit, tokens=tokens)  # a bad tokens= is refused before the model runs
    dev = resolve_device(device)
    if channels_last is None:
        channels_last = dev.type == "cpu"
    paths = jobs.check_paths(model, [layer])
    _check_maco_channels(model, options)
    init, height, width = jobs.picture_size(init, size)
    seen_h, seen_w = (height, width) if options is None or height < 1 else methods.seen_size(height, width, options)
    if height > 0:
        methods.check_seen_size(min(height, width), min(seen_h, seen_w), min_input_size(model, layer), layer, options)
    snaps = alg.snapshot_steps(snapshots, steps)

    with jobs.session(model, dev, precision):
        model_dtype = model_device_dtype(model)[1]
        if height > 0:
            layers = jobs.resolve_layers(model, paths, objective, height, width, seen_h, seen_w)
            count = layers.shapes[layer][0]
        else:  # malformed init: let check_init explain after the filters are known
            layers, count = None, 1 << 30
        chosen = alg.parse_filters(filters, count, layer)
        x0 = alg.check_init(init, len(chosen), input_channels(model)) if init is not None else None
        assert layers is not None
        check_tokens(core_objectives.per_filter(layer, chosen, unit, tokens=tokens).terms[0][1], layers.targets[layer])
        keys = alg.element_keys(chosen, group)
        per_element = [f for f in chosen for _ in range(group)]
        setting = Setting(
            seed=int(seed),
            steps=steps,
            lr=lr,
            height=height,
            width=width,
            options=options,
            device=dev,
            channels_last=bool(channels_last),
            clip=bool(clip),
            init=x0,
            channels=input_channels(model),
        )
        job = jobs.Job(model, method, layers, setting, snaps, precision, model_dtype)

        def objective_for(rows: slice):
            return core_objectives.per_filter(layer, per_element[rows], unit, group, weight, tokens)

        raw, losses, snap, dead, used, alpha = jobs.run_elements(
            job, keys, objective_for, unit=group, batch_size=batch_size, progress=layer if progress else None
        )

    if options is None:  # the pixel method's params, exactly as before methods existed
        params = {
            "steps": steps,
            "size": height if height == width else [height, width],
            "lr": float(lr),
            "seed": int(seed),
            "snapshots": list(snaps),
            "objective": objective,
            "init": "given" if init is not None else "seeded",
            "clip": bool(clip),
            "precision": precision,
            "channels_last": bool(channels_last),
            "batch_size": used,
        }
    else:
        params = {
            "method": method,
            "steps": steps,
            "size": height if height == width else [height, width],
            "lr": float(lr),
            "seed": int(seed),
            "snapshots": list(snaps),
            "objective": objective,
            "init": "seeded",
            "seen_size": [seen_h, seen_w],
            "precision": precision,
            "channels_last": bool(channels_last),
            "batch_size": used,
            **options.as_params(),
        }
    if unit != "channel":
        params["unit"] = unit
    if layers.targets[layer].tokens is not None:  # a token layer: which tokens were read
        params["tokens"] = tokens
    if group > 1:
        params.update(diversity=group, diversity_weight=weight)
    return FilterResults(
        filters=list(per_element),
        layer=layer,
        raw=raw,
        images=methods.display(method)(raw),
        losses=losses,
        snapshots=snap,
        dead=dead,
        params=params,
        **jobs.provenance(model, layers, layer, dev, started),
        method=method,
        diversity=group,
        alpha=alpha,
    )


def _check_maco_channels(model: nn.Module, options: methods.MethodOptions | None) -> None:
    """The maco method on a model whose input is not RGB (1 or N channels) needs the user's magnitude."""
    if isinstance(options, methods.MacoOptions):
        from filtviz_core.maco import check_channels

        check_channels(input_channels(model), options.magnitude)


def _diversity(diversity: int, weight: float | None, init_given: bool) -> tuple[int, float]:
    """(pictures per filter, penalty weight), checked."""
    if isinstance(diversity, bool) or int(diversity) != diversity or diversity < 1:
        raise FiltvizError(f"diversity must be a whole number >= 1 (pictures per filter), got {diversity!r}")
    if weight is None:
        weight = core_objectives.DIVERSITY_WEIGHT
    if not np.isfinite(weight) or weight < 0:
        raise FiltvizError(f"diversity weight must be a finite number >= 0, got {weight!r}")
    if diversity > 1 and init_given:
        raise FiltvizError(
            "init gives one start per filter; diversity=K draws K seeded starts per filter, "
            "so the two do not go together"
        )
    return int(diversity), float(weight)
