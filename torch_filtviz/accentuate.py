"""Feature accentuation in torch: :func:`accentuate`, what in one photo drives each filter (SPEC.md §19).

Hamblin et al. 2024 (Horama's ``accentuation``): each filter's picture starts from the photo instead of
noise, and the objective gains a penalty tying the picture to that start:
``value = unit objective - strength * mean(((picture - start picture) / 255) ** 2)``.

Built on the one optimization loop (``torch_filtviz.loop.optimize``) with the method's own parts
(``method_parts.build``): only the start (``theta`` set from ``filtviz_core.accentuate.start``) and the
objective (:class:`Tether`, the penalty added to the compiled per-filter objective) differ. Every filter
starts from the same photo, its transforms are drawn from ``(seed, filter, step)`` and the penalty is
per picture, so a filter's result does not depend on the other filters of its batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from filtviz_core import accentuate as core
from filtviz_core import algorithm as alg
from filtviz_core import methods
from filtviz_core import objectives as core_objectives
from filtviz_core.errors import FiltvizError
from filtviz_core.fourier import PIXEL_MAX, to_uint8
from torch_filtviz import job as jobs
from torch_filtviz.ascent import FilterResults, _check_maco_channels
from torch_filtviz.loop import ObjectiveFn
from torch_filtviz.method_parts import Setting
from torch_filtviz.models import min_input_size, resolve_device
from torch_filtviz.targets import model_device_dtype


class Tether:
    """The penalty that ties each picture to its start, as a wrapper of the loop's transform and objective.

    The loop hands the picture to the transform right before the forward pass whose captured tensors the
    objective then reads (``torch_filtviz/loop.py``), so :meth:`view` keeps that picture and
    :meth:`objective` subtracts ``strength * distance(picture, reference)`` from each element's value
    (for V views, every view's value, so their mean carries it once). ``strength == 0`` leaves the
    objective exactly as it is.
    """

    def __init__(self, reference: torch.Tensor, strength: float) -> None:
        # (n, 3, H, W) pixel units: the start picture, copied (the pixel method's picture IS theta, updated in place)
        self.reference = reference.detach().float().clone()
        self.strength = float(strength)
        self.picture: torch.Tensor | None = None

    def distance(self, picture: torch.Tensor) -> torch.Tensor:
        """(n,) fp32: the mean of ``((picture - reference) / 255) ** 2`` over each picture."""
        d = (picture.float() - self.reference) / PIXEL_MAX
        return d.square().flatten(1).mean(dim=1)

    def view(
        self, transform: Callable[[torch.Tensor, int], torch.Tensor]
    ) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """``transform``, keeping the picture it is given (and its ``views``)."""
        tether = self

        class Seen:
            views = int(getattr(transform, "views", 1))

            def __call__(self, picture: torch.Tensor, k: int) -> torch.Tensor:
                tether.picture = picture
                return transform(picture, k)

        return Seen()

    def objective(self, values: ObjectiveFn) -> ObjectiveFn:
        """``values`` minus the penalty of the picture last seen."""
        if self.strength == 0.0:
            return values

        def tethered(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
            assert self.picture is not None, "the transform runs before the objective"
            return values(acts) - self.strength * self.distance(self.picture)

        return tethered


def accentuate(
    model: nn.Module,
    layer: str,
    filters: int | str | Iterable[int],
    photo: core.PhotoInput,
    *,
    method: str = "fourier",
    strength: float | None = None,
    steps: int | None = None,
    size: int = alg.DEFAULT_SIZE,
    lr: float | None = None,
    seed: int = alg.DEFAULT_SEED,
    snapshots: Iterable[int] | None = alg.DEFAULT_SNAPSHOTS,
    objective: str = alg.DEFAULT_OBJECTIVE,
    unit: str = "channel",
    clip: bool = False,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    progress: bool = True,
    method_options: Mapping[str, Any] | methods.MethodOptions | None = None,
) -> FilterResults:
    """Feature accentuation: each filter's picture starts from ``photo`` and is optimized to excite the filter
    while a penalty ties it to that start (SPEC.md §19, Hamblin et al. 2024).

    ``photo``: an image file (JPEG, PNG, ...) or an ``(H, W, 3)`` array in pixel units (uint8, or float in
    [0, 255]), resized to ``size`` (short side, centre crop). The start: the photo itself (``method="pixel"``),
    its spectrum under the fourier parameterization (``"fourier"``, the default: the exact inverse of the
    picture function, the photo clipped to [1, 254] first), or its phase under the maco method's own
    magnitude (``"maco"``). Each element maximizes
    ``unit objective - strength * mean(((picture - start picture) / 255) ** 2)``; ``strength`` None takes
    ``filtviz_core.accentuate.DEFAULT_STRENGTH``; 0 is the plain method from the photo. ``losses`` record that
    whole value. The pictures (``images``) are shown as they are, rounded (never contrast-stretched), so
    they compare with the photo.

    Every other argument is :func:`~torch_filtviz.visualize_filters`' (``clip`` for the pixel method only);
    returns the same :class:`~torch_filtviz.FilterResults`, with ``params`` holding ``init="photo"``, the
    photo and the strength.

    >>> import torch_filtviz as fv
    >>> model = fv.load_model("vgg16", weights="random")  # doctest: +SKIP
    >>> res = fv.accentuate(model, "block4_conv3", "0-3", "photo.jpg", steps=20, size=64)  # doctest: +SKIP
    >>> res.images.shape  # doctest: +SKIP
    (4, 64, 64, 3)
    """
    started = time.perf_counter()
    strength = core.check_strength(strength)
    steps, lr, options = jobs.check_call(
        method=method,
        steps=steps,
        lr=lr,
        seed=seed,
        activation=objective,
        method_options=method_options,
        init_given=False,
        clip=clip,
        precision=precision,
        batch_size=batch_size,
    )
    if unit not in core_objectives.UNITS:
        raise FiltvizError(f"unknown unit {unit!r}; valid: {', '.join(core_objectives.UNITS)}")
    dev = resolve_device(device)
    if channels_last is None:
        channels_last = dev.type == "cpu"
    paths = jobs.check_paths(model, [layer])
    _check_rgb(model)
    _check_maco_channels(model, options)
    _, height, width = jobs.picture_size(None, size)
    seen_h, seen_w = (height, width) if options is None else methods.seen_size(height, width, options)
    methods.check_seen_size(height, min(seen_h, seen_w), min_input_size(model, layer), layer, options)
    picture = core.load_photo(photo, height)
    snaps = alg.snapshot_steps(snapshots, steps)

    with jobs.session(model, dev, precision):
        model_dtype = model_device_dtype(model)[1]
        layers = jobs.resolve_layers(model, paths, objective, height, width, seen_h, seen_w)
        chosen = alg.parse_filters(filters, layers.shapes[layer][0], layer)
        magnitude = None
        if isinstance(options, methods.MacoOptions):
            from filtviz_core.maco import magnitude as maco_magnitude

            magnitude = maco_magnitude(height, width, options.magnitude)
        theta0 = core.start(method, picture, len(chosen), options, magnitude)
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
            init=theta0 if options is None else None,  # the pixel method's start is the photo itself
        )
        wrap = _tethered(theta0, strength, spectral=options is not None)
        job = jobs.Job(model, method, layers, setting, snaps, precision, model_dtype, wrap=wrap)

        def objective_for(rows: slice) -> core_objectives.Objective:
            return core_objectives.per_filter(layer, list(chosen[rows]), unit, 1, 0.0)

        raw, losses, snap, dead, used, alpha = jobs.run_elements(
            job, alg.element_keys(chosen), objective_for, batch_size=batch_size, progress=layer if progress else None
        )

    params: dict[str, Any] = {
        "method": method,
        "steps": steps,
        "size": height,
        "lr": float(lr),
        "seed": int(seed),
        "snapshots": list(snaps),
        "objective": objective,
        **core.run_params(photo, strength),
        "precision": precision,
        "channels_last": bool(channels_last),
        "batch_size": used,
    }
    if options is None:
        params["clip"] = bool(clip)
    else:
        params.update(seen_size=[seen_h, seen_w], **options.as_params())
    if unit != "channel":
        params["unit"] = unit
    return FilterResults(
        filters=list(chosen),
        layer=layer,
        raw=raw,
        images=to_uint8(raw),
        losses=losses,
        snapshots=snap,
        dead=dead,
        params=params,
        **jobs.provenance(model, layers, layer, dev, started),
        method=method,
        alpha=alpha,
    )


def _check_rgb(model: nn.Module) -> None:
    """A photo is RGB: the model's first convolution must take 3 channels."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and int(first.in_channels) != 3:
        raise FiltvizError(
            f"accentuate starts from an RGB photo; this model's first convolution takes {first.in_channels} "
            "channels (3 needed)"
        )


def _tethered(theta0: np.ndarray, strength: float, *, spectral: bool) -> Callable[..., tuple[Any, Any]]:
    """The :class:`~torch_filtviz.job.Job` ``wrap`` of accentuation: each chunk's picture starts from the
    photo (spectral methods: theta set from ``theta0``, in place, as the optimizer holds it; the pixel method's
    start is already the photo) and its transform and objective are tied to that start (:class:`Tether`)."""

    def wrap(rows: slice, param: Any, view: Any, values: Any) -> tuple[Any, Any]:
        if spectral:
            with torch.no_grad():
                param.theta.copy_(torch.as_tensor(np.array(theta0[rows]), device=param.theta.device))
        with torch.no_grad():
            tether = Tether(param.picture(param.theta), strength)
        return tether.view(view), tether.objective(values)

    return wrap
