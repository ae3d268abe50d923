"""What a benchmark computes: which filters of which layers, at what size, for how many steps.

Every contender in one run starts from the same seeded images (``filtviz_core.algorithm.initial_images``),
so their times and results compare like with like.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from filtviz_core import algorithm as alg
from filtviz_core import vgg16 as vgg_spec
from filtviz_core.errors import FiltvizError

# Preset jobs: (layers, filters per layer or None for all, size, steps).
JOBS: dict[str, dict[str, Any]] = {
    "cpu": {"layers": ["block3_conv1"], "filters": 16, "size": 64, "steps": 20},
    "block5": {"layers": ["block5_conv3"], "filters": None, "size": 128, "steps": 100},
    "atlas": {"layers": list(vgg_spec.CONV_NAMES), "filters": None, "size": 128, "steps": 100},
}


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

    def init_for(self, layer: str, chosen: Sequence[int]) -> np.ndarray:
        """The starting images of ``chosen`` (a subset of the layer's filters), in that order."""
        index = {f: i for i, f in enumerate(self.filters[layer])}
        return self.inits[layer][[index[f] for f in chosen]]

    def describe(self) -> dict[str, Any]:
        layers = list(self.filters)
        return {
            "name": self.name,
            "layers": layers,
            "filters": {k: compact(v) for k, v in self.filters.items()},
            "n_filters": self.n_filters,
            "size": self.size,
            "steps": self.steps,
            "lr": self.lr,
            "seed": self.seed,
            "weights": self.weights,
            "objective": alg.DEFAULT_OBJECTIVE,
            "image_steps": self.image_steps,
        }


def compact(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (what parse_filters reads back)."""
    parts, start = [], None
    for i, v in enumerate(indices):
        if start is None:
            start = v
        if i + 1 == len(indices) or indices[i + 1] != v + 1:
            parts.append(str(v) if v == start else f"{start}-{v}")
            start = None
    return ",".join(parts)


def choose_filters(
    layers: Sequence[str], spec: str | int | None, size: int, counts: Mapping[str, int] | None = None
) -> dict[str, list[int]]:
    """Per layer: ``spec`` a count ("16": the first 16), None or ``"all"``, or a list such as ``"0-7,20"``;
    layers and the image size checked against VGG16, or ``counts`` (each layer's filter count, read from
    another network, whose sizes the caller has checked)."""
    chosen: dict[str, list[int]] = {}
    for layer in layers:
        if counts is not None:
            count = counts[layer]
        elif layer not in vgg_spec.FILTER_COUNTS:
            raise FiltvizError(f"unknown conv layer {layer!r}; valid: {', '.join(vgg_spec.CONV_NAMES)}")
        else:
            count = vgg_spec.FILTER_COUNTS[layer]
            alg.check_image_size(size, vgg_spec.min_size_for(layer), layer)
        if spec is None or str(spec) == "all":
            chosen[layer] = list(range(count))
        elif re.fullmatch(r"\d+", str(spec)):
            if int(spec) < 1:
                raise FiltvizError(f"filters per layer must be >= 1, got {spec}")
            chosen[layer] = list(range(min(int(spec), count)))
        else:
            chosen[layer] = alg.parse_filters(str(spec), count, layer)
    return chosen


def make_job(
    name: str,
    layers: Sequence[str] | None = None,
    filters: str | int | None = None,
    size: int | None = None,
    steps: int | None = None,
    *,
    weights: str = "random",
    lr: float = alg.DEFAULT_LR,
    seed: int = alg.DEFAULT_SEED,
) -> Job:
    """A preset (``cpu``, ``block5``, ``atlas``) with any field overridden. ``filters``: a count
    ("16": the first 16 of each layer), ``"all"``, or a list such as ``"0-7,20"``."""
    if name not in JOBS:
        raise FiltvizError(f"unknown job {name!r}; valid: {', '.join(JOBS)}")
    preset = JOBS[name]
    layers = list(layers or preset["layers"])
    size = int(size or preset["size"])
    steps = int(preset["steps"] if steps is None else steps)
    chosen = choose_filters(layers, preset["filters"] if filters is None else filters, size)
    alg.check_steps(steps, lr)
    return Job(name=name, filters=chosen, size=size, steps=steps, lr=lr, seed=seed, weights=weights)


def subset(job: Job, per_layer: int | None) -> dict[str, list[int]]:
    """The filters a one-at-a-time method times: the first ``per_layer`` of each layer (None: all)."""
    return {layer: (f if per_layer is None else f[:per_layer]) for layer, f in job.filters.items()}


def option_value(text: str) -> Any:
    """A NAME=VALUE option's value: JSON where it parses (``15``, ``[0.8, 1.2]``, ``true``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


def option_pairs(items: Sequence[str], flag: str) -> dict[str, Any]:
    """A repeatable ``--flag NAME=VALUE`` as a dict of method options (values as :func:`option_value` reads them)."""
    options: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise FiltvizError(f"{flag} takes NAME=VALUE, got {item!r}")
        options[name.strip()] = option_value(value)
    return options
