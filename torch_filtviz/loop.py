"""The optimization loop: the one place where pictures are optimized (tf_reference/SPEC.md §16.2).

Every method and every objective runs through :func:`optimize`, with four injected parts:

* ``param`` (``torch_filtviz.parameterizations``): ``theta``, and ``picture(theta)`` in pixel units;
* ``transform`` (``torch_filtviz.transforms``): what the network sees of the picture at step k;
* ``objective`` (``torch_filtviz.objectives.compile_objective``): captured tensors -> one value per element;
* ``optimizer`` (``torch_filtviz.optimizers``): moves ``theta`` along the gradient, in place.

Per step k: picture -> (snapshot k) -> view -> forward (stopped after the last captured layer) ->
values -> gradient of their sum with respect to theta -> step. A batch element's gradient depends
only on its own value unless the objective couples the batch (a diversity term), so batching is pure
speed otherwise. Losses stay on the device until the loop ends (no host sync per step).

Views: a transform with ``views = V`` (the maco method's crops) returns V views of each picture,
view-major (row ``v * n + i``); the objective is evaluated on each view's n rows and element i's value
is the mean over its V views (so a diversity term couples elements within a view, never views).
Transparency: a parameterization with ``transparency = True`` (maco) makes the loop also take the
gradient with respect to the picture and accumulate its absolute value over the steps; otherwise
nothing extra is computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np
import torch

from torch_filtviz import placement


class Parameterization(Protocol):
    theta: torch.Tensor

    def picture(self, theta: torch.Tensor) -> torch.Tensor: ...


class Optimizer(Protocol):
    def step(self, param: torch.Tensor, grad: torch.Tensor, frozen: torch.Tensor) -> None: ...


Transform = Callable[[torch.Tensor, int], torch.Tensor]
ObjectiveFn = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


def optimize(
    forward: Callable[[torch.Tensor], Mapping[str, torch.Tensor]],
    param: Parameterization,
    transform: Transform,
    objective: ObjectiveFn,
    optimizer: Optimizer,
    *,
    steps: int,
    snaps: tuple[int, ...],
    autocast: AbstractContextManager,
    model_dtype: torch.dtype = torch.float32,
    pbar: Any = None,
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], np.ndarray, np.ndarray | None]:
    """Run ``steps`` steps; returns (pictures NHWC float32, losses (n, steps + 1) float64,
    snapshots {k: NHWC pictures after k steps}, dead (n,) bool, transparency) as numpy; transparency
    is the ``(n, H, W, 3)`` sum of ``|d values / d picture|`` over the steps (zero for dead elements), or
    None when the parameterization does not ask for it.

    ``forward``: the capture (a batch -> the captured tensors). Loss k is the objective of the picture
    after k steps, seen through view k; ``steps = 0`` still takes the gradient at the start, to tell
    dead elements (exactly zero gradient at step 0), which stay at their start with every loss equal
    to the first.
    """
    theta = param.theta
    n = theta.shape[0]
    losses, dead, kept = placement.ascent_records(n, steps, theta.device)
    cast = model_dtype != torch.float32  # a half/bf16 model sees its own dtype; the picture stays fp32
    views = int(getattr(transform, "views", 1))
    wants_alpha = bool(getattr(param, "transparency", False))
    alpha: torch.Tensor | None = None

    def value(picture: torch.Tensor, k: int) -> torch.Tensor:
        seen = transform(picture, k)
        with autocast:
            acts = forward(seen.to(model_dtype) if cast else seen)
        if views == 1:
            return objective(acts)
        per_view = [objective({name: a[v * n : (v + 1) * n] for name, a in acts.items()}) for v in range(views)]
        return torch.stack(per_view).mean(dim=0)  # each element: the mean over its views

    frozen = torch.zeros((n,) + (1,) * (theta.ndim - 1), dtype=torch.bool, device=theta.device)
    for k in range(max(steps, 1)):
        picture = param.picture(theta)
        if k in snaps:
            kept[k] = picture.detach().clone()
        loss = value(picture, k)
        if wants_alpha:
            grad, grad_picture = torch.autograd.grad(loss.sum(), (theta, picture))
            if steps > 0:
                alpha = grad_picture.abs() if alpha is None else alpha + grad_picture.abs()
        else:
            (grad,) = torch.autograd.grad(loss.sum(), theta)
        losses[k] = loss.detach()
        if k == 0:
            dead = (grad == 0).flatten(1).all(dim=1)
            frozen = dead.view(frozen.shape)
        if steps == 0:
            break
        optimizer.step(theta, grad, frozen)
        if pbar is not None:
            pbar.update(n)
    with torch.no_grad():
        picture = param.picture(theta)
        if steps > 0:
            losses[steps] = value(picture, steps)
            if steps in snaps:
                kept[steps] = picture.clone()
        losses[:, dead] = losses[0, dead]  # a dead element's history is its first value (SPEC §9)

    def nhwc(t: torch.Tensor) -> np.ndarray:
        return t.detach().permute(0, 2, 3, 1).float().cpu().numpy().astype(np.float32, copy=False)

    transparency = None
    if wants_alpha:
        transparency = nhwc(alpha) if alpha is not None else np.zeros(nhwc(picture).shape, np.float32)
        transparency[dead.cpu().numpy()] = 0.0
    return (
        nhwc(picture),
        placement.to_host(losses.t()),
        {s: nhwc(t) for s, t in kept.items()},
        dead.cpu().numpy(),
        transparency,
    )
