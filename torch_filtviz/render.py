"""Render any objective: :func:`render`, a batch of pictures that maximize one objective (SPEC.md §16.3).

Where :func:`~torch_filtviz.visualize_filters` makes one picture per filter, ``render`` takes any
objective of ``torch_filtviz.objectives`` (channel, neuron, direction, diversity, their weighted sums,
any of them restricted to one batch element) and optimizes ``batch`` pictures at once, in one chunk
(a diversity term couples them). Batch element i starts from the seeded draw of key ``i``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from filtviz_core import algorithm as alg
from filtviz_core import methods
from filtviz_core.errors import FiltvizError
from filtviz_core.objectives import Objective, check_objective
from torch_filtviz import job as jobs
from torch_filtviz.ascent import FilterResults, _check_maco_channels
from torch_filtviz.channels import input_channels
from torch_filtviz.method_parts import Setting
from torch_filtviz.models import min_input_size, resolve_device
from torch_filtviz.targets import model_device_dtype


def render(
    model: nn.Module,
    objective: Objective,
    *,
    batch: int = 1,
    method: str = methods.DEFAULT_METHOD,
    steps: int | None = None,
    size: int = alg.DEFAULT_SIZE,
    lr: float | None = None,
    seed: int = alg.DEFAULT_SEED,
    snapshots: Iterable[int] | None = alg.DEFAULT_SNAPSHOTS,
    activation: str = alg.DEFAULT_OBJECTIVE,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    progress: bool = True,
    method_options: Mapping[str, Any] | methods.MethodOptions | None = None,
) -> FilterResults:
    """``batch`` pictures maximizing ``objective``, as :class:`~torch_filtviz.FilterResults`.

    ``objective``: built from ``torch_filtviz.objectives`` (``channel``, ``neuron``, ``direction``,
    ``diversity``, ``+``, ``-``, ``w *``, ``sum``, ``batch=i``). ``activation``: which tensor a layer
    denotes, ``"pre_relu"`` (default, SPEC §5) or ``"post_relu"``, for every layer of the objective.
    ``method``, ``steps``, ``size``, ``lr``, ``seed``, ``snapshots``, ``device``, ``precision``,
    ``channels_last``, ``method_options``: as :func:`~torch_filtviz.visualize_filters`. The results hold
    one row per batch element (``filters`` is ``[0, ..., batch - 1]``, ``layer`` the objective's first
    layer, ``losses[i]`` the objective's value for element i at every step) and the objective in words
    (``params["objective"]``) and as terms (``run_record()["objective"]``).

    >>> import torch_filtviz as fv
    >>> from torch_filtviz import objectives as obj
    >>> model = fv.load_model("vgg16", weights="random")  # doctest: +SKIP
    >>> goal = obj.channel("block4_conv3", 12) - 100 * obj.diversity("block4_conv3")
    >>> res = fv.render(model, goal, batch=4, method="fourier", steps=20, size=64)  # doctest: +SKIP
    >>> res.images.shape  # doctest: +SKIP
    (4, 64, 64, 3)
    """
    started = time.perf_counter()
    check_objective(objective)
    if isinstance(batch, bool) or int(batch) != batch or batch < 1:
        raise FiltvizError(f"batch must be a whole number >= 1, got {batch!r}")
    batch = int(batch)
    steps, lr, options = jobs.check_call(
        method=method,
        steps=steps,
        lr=lr,
        seed=seed,
        activation=activation,
        method_options=method_options,
        init_given=False,
        clip=False,
        precision=precision,
        batch_size=None,
    )
    dev = resolve_device(device)
    if channels_last is None:
        channels_last = dev.type == "cpu"
    layer_list = objective.layers()
    paths = jobs.check_paths(model, layer_list)
    _, height, width = jobs.picture_size(None, size)
    seen_h, seen_w = methods.seen_size(height, width, options)
    _check_maco_channels(model, options)
    methods.check_seen_size(
        height, min(seen_h, seen_w), min_input_size(model, layer_list), ", ".join(layer_list), options
    )
    snaps = alg.snapshot_steps(snapshots, steps)

    with jobs.session(model, dev, precision):
        layers = jobs.resolve_layers(model, paths, activation, height, width, seen_h, seen_w)
        objective.check(layers.shapes, batch)
        setting = Setting(
            seed=int(seed),
            steps=steps,
            lr=lr,
            height=height,
            width=width,
            options=options,
            device=dev,
            channels_last=bool(channels_last),
            channels=input_channels(model),
        )
        job = jobs.Job(model, method, layers, setting, snaps, precision, model_device_dtype(model)[1])
        keys = list(range(batch))
        raw, losses, snap, dead, _, alpha = jobs.run_elements(
            job,
            keys,
            lambda rows: objective,
            unit=batch,
            batch_size=batch,
            progress=str(objective)[:40] if progress else None,
        )

    params: dict[str, Any] = {
        "method": method,
        "steps": steps,
        "size": height,
        "lr": float(lr),
        "seed": int(seed),
        "snapshots": list(snaps),
        "objective": str(objective),
        "activation": activation,
        "init": "seeded",
        "batch": batch,
        "precision": precision,
        "channels_last": bool(channels_last),
    }
    if options is not None:
        params.update(seen_size=[seen_h, seen_w], **options.as_params())
    first = layer_list[0]
    return FilterResults(
        filters=keys,
        layer=first,
        raw=raw,
        images=methods.display(method)(raw),
        losses=losses,
        snapshots=snap,
        dead=np.asarray(dead, bool),
        params=params,
        **jobs.provenance(model, layers, first, dev, started),
        method=method,
        objective=objective.as_record(),
        alpha=alpha,
    )
