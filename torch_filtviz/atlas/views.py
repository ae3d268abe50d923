"""A unit's other pictures in an atlas: K diverse ones (``--diversity K``) and its minimizer (``--negative``).

Why separate kinds of work: each view is rendered in its own chunks, recorded in its own manifest parts
(kind ``<method>.diversity`` / ``<method>.negative``) and checked on a rerun by its own settings, so adding
``--negative`` to an atlas renders only the negatives, and a later run without it keeps them.
:func:`filtviz_core.site.manifest.merge_manifest` folds them into the method's entry of each unit
(``files.diversity``, ``files.negative``).

Both follow the method's seed rules: a diversity group is filter f's K seeded starts ``(f, diversity, k)``
(one group per unit, never split: :func:`~torch_filtviz.visualize_filters` with ``diversity=K``); the
negative starts from the very start of the unit's own picture (seed ``(seed, f)``) and maximizes
``-channel(layer, f)`` (the objective algebra), so a unit's negative does not depend on its chunk either.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from filtviz_core import algorithm as alg
from filtviz_core import methods
from filtviz_core import objectives as core_objectives
from filtviz_core.errors import FiltvizError

VIEWS = ("diversity", "negative")


def view_kind(method: str, view: str) -> str:
    """The chunk kind of a view of ``method``'s pictures: ``fourier.diversity``."""
    return f"{method}.{view}"


def split_kind(kind: str) -> tuple[str, str | None]:
    """(method, view or None) of a chunk kind."""
    method, _, view = kind.partition(".")
    return method, (view if view in VIEWS else None)


def check_diversity(k: int | None) -> int:
    """``--diversity K``: 0 (none) or a whole number >= 2 (one picture is the unit's picture itself)."""
    if k is None:
        return 0
    if isinstance(k, bool) or int(k) != k or k < 0 or k == 1:
        raise FiltvizError(f"--diversity must be 0 (none) or a whole number >= 2 (pictures per unit), got {k}")
    return int(k)


def render_diversity(
    model: nn.Module, layer: str, filters: Sequence[int], method: str, params: Mapping[str, Any], k: int
):
    """K diverse pictures of each filter, one diversity group per filter, all in one batch:
    ``images[i*K + j]`` is filter ``filters[i]``'s j-th picture."""
    from torch_filtviz.ascent import visualize_filters

    kwargs = {key: v for key, v in params.items() if key not in ("batch_size", "method")}
    return visualize_filters(
        model, layer, list(filters), method=method, diversity=int(k), batch_size=len(filters) * int(k), **kwargs
    )


def render_negative(model: nn.Module, layer: str, filters: Sequence[int], method: str, params: Mapping[str, Any]):
    """The picture that minimizes each filter: the method's ascent on ``-channel(layer, f)`` from the
    filter's own seeded start, all filters in one batch. ``losses`` hold the objective maximized (minus
    the channel's value)."""
    from torch_filtviz import job as jobs
    from torch_filtviz.ascent import FilterResults, _check_maco_channels
    from torch_filtviz.channels import input_channels
    from torch_filtviz.method_parts import Setting
    from torch_filtviz.models import min_input_size, resolve_device
    from torch_filtviz.targets import model_device_dtype

    started = time.perf_counter()
    objective = params.get("objective", alg.DEFAULT_OBJECTIVE)
    precision = params.get("precision", "fp32")
    seed = int(params.get("seed", alg.DEFAULT_SEED))
    steps, lr, options = jobs.check_call(
        method=method,
        steps=params.get("steps"),
        lr=params.get("lr"),
        seed=seed,
        activation=objective,
        method_options=params.get("method_options"),
        init_given=False,
        clip=bool(params.get("clip", False)),
        precision=precision,
        batch_size=None,
    )
    dev = resolve_device(params.get("device"))
    channels_last = params.get("channels_last")
    if channels_last is None:
        channels_last = dev.type == "cpu"
    paths = jobs.check_paths(model, [layer])
    _check_maco_channels(model, options)
    _, height, width = jobs.picture_size(None, int(params.get("size", alg.DEFAULT_SIZE)))
    seen_h, seen_w = (height, width) if options is None else methods.seen_size(height, width, options)
    methods.check_seen_size(min(height, width), min(seen_h, seen_w), min_input_size(model, layer), layer, options)
    snaps = alg.snapshot_steps(params.get("snapshots", alg.DEFAULT_SNAPSHOTS), steps)
    chosen = [int(f) for f in filters]
    with jobs.session(model, dev, precision):
        layers = jobs.resolve_layers(model, paths, objective, height, width, seen_h, seen_w)
        setting = Setting(
            seed=seed,
            steps=steps,
            lr=lr,
            height=height,
            width=width,
            options=options,
            device=dev,
            channels_last=bool(channels_last),
            clip=bool(params.get("clip", False)),
            channels=input_channels(model),
        )
        job = jobs.Job(model, method, layers, setting, snaps, precision, model_device_dtype(model)[1])
        unit = str(params.get("unit", "channel"))

        def objective_for(rows: slice):
            return -core_objectives.per_filter(layer, chosen[rows], unit)

        raw, losses, snap, dead, _, alpha = jobs.run_elements(
            job, alg.element_keys(chosen), objective_for, batch_size=len(chosen), progress=None
        )
    return FilterResults(
        filters=chosen,
        layer=layer,
        raw=raw,
        images=methods.display(method)(raw),
        losses=losses,
        snapshots=snap,
        dead=dead,
        params={"method": method, "steps": steps, "lr": float(lr), "seed": seed, "objective": objective},
        seconds=time.perf_counter() - started,
        device=str(dev),
        method=method,
        alpha=alpha,
    )
