"""Capture a layer's activations from any ``nn.Module`` with forward hooks.

Why hooks: they work on any network without rewriting it. A layer is named by its module path
(``features.28``) or by the model's alias (``model.aliases``: VGG16's Keras names, where
``block5_conv3`` is the post-ReLU output, as in Keras). Which tensor a name denotes depends on
the objective:

============  ==========================  ===========================
module        ``pre_relu``                ``post_relu`` / plain output
============  ==========================  ===========================
activation    its input (pre-hook)        its output
``Conv2d``    its output                  ``relu(its output)``
other         its output                  its output
============  ==========================  ===========================

:func:`capture` registers the hooks and always removes them. When ``stop`` is set and every
requested tensor has been seen, the hook raises a private exception that ends the forward pass
there, so deep layers of the network are never computed for a shallow target. Captured tensors
are cloned whenever the forward pass goes on past them, so an in-place ReLU cannot overwrite them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from filtviz_core.errors import FiltvizError
from torch_filtviz.models import layer_names

#: Modules whose input is the "pre-activation" of the layer they follow.
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
)
OBJECTIVE_KINDS = ("pre_relu", "post_relu", None)


@dataclass(frozen=True)
class Target:
    """One tensor to capture: ``name`` as the user gave it, the module ``path`` it hangs on,
    ``where`` ("input" = the module's first input, "output" = its output), and ``relu`` (apply
    a ReLU to what was captured: the post-ReLU view of a bare conv)."""

    name: str
    path: str
    module: nn.Module = field(compare=False, repr=False)
    where: Literal["input", "output"] = "output"
    relu: bool = False


class _StopForward(Exception):
    """Raised inside a hook to end the forward pass once every target has been captured."""


def _unknown_layer(model: nn.Module, layer: str) -> FiltvizError:
    names = layer_names(model)
    hint = " (or a module path such as features.0)" if getattr(model, "aliases", None) else ""
    return FiltvizError(f"unknown layer {layer!r}; valid: {', '.join(names)}{hint}")


def resolve_target(model: nn.Module, layer: str, objective: str | None = None) -> Target:
    """The :class:`Target` for ``layer`` (alias or module path) under ``objective``.

    ``objective``: ``"pre_relu"`` (the pre-activation), ``"post_relu"`` (the activation; for a
    bare ``Conv2d`` path this is ``relu(conv output)``), or None (the module's own output as is,
    what feature maps show).
    """
    if objective not in OBJECTIVE_KINDS:
        raise FiltvizError(f"unknown objective {objective!r}; valid: pre_relu, post_relu")
    if not isinstance(layer, str) or not layer:
        raise _unknown_layer(model, str(layer))
    aliases: dict[str, str] = getattr(model, "aliases", {}) or {}
    path = aliases.get(layer, layer)
    try:
        module = model.get_submodule(path)
    except AttributeError:
        raise _unknown_layer(model, layer) from None
    if module is model:
        raise _unknown_layer(model, layer)
    if isinstance(module, ACTIVATIONS):
        where = "input" if objective == "pre_relu" else "output"
        return Target(layer, path, module, where, False)
    if isinstance(module, nn.Conv2d):
        return Target(layer, path, module, "output", objective == "post_relu")
    return Target(layer, path, module, "output", False)


class Capture:
    """Runs the model and returns the captured tensors, ending the pass early when allowed.

    Made by :func:`capture`; call it with a batch: ``acts = cap(x)`` -> ``{name: tensor}``.
    """

    def __init__(self, model: nn.Module, targets: Sequence[Target], stop: bool) -> None:
        self.model = model
        self.targets = list({t.name: t for t in targets}.values())
        self.stop = stop
        self.values: dict[str, torch.Tensor] = {}

    def _take(self, target: Target, tensor: torch.Tensor) -> None:
        if target.name in self.values:  # a module called twice: keep its first call
            return
        last = len(self.values) + 1 == len(self.targets)
        ends_here = self.stop and last
        if target.relu:
            tensor = F.relu(tensor)  # a new tensor: nothing later can write into it
        elif not ends_here:
            tensor = tensor.clone()  # the pass goes on: an in-place op could overwrite it
        self.values[target.name] = tensor
        if ends_here:
            raise _StopForward

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.values = {}
        try:
            self.model(x)
        except _StopForward:
            pass
        missing = [t.name for t in self.targets if t.name not in self.values]
        if missing:
            raise FiltvizError(f"layer {missing[0]!r} was not reached by the forward pass of the model")
        return self.values


@contextmanager
def capture(model: nn.Module, targets: Target | Sequence[Target], stop: bool = True) -> Iterator[Capture]:
    """Register hooks for ``targets`` on ``model``; yields a :class:`Capture`.

    Hooks are removed on exit, also after an exception. Calling ``model(x)`` directly inside
    the block works too (the early stop is swallowed on exit; read ``cap.values`` afterwards).
    """
    targets = [targets] if isinstance(targets, Target) else list(targets)
    if not targets:
        raise FiltvizError("no layer to capture")
    cap = Capture(model, targets, stop)
    handles = []
    try:
        for target in cap.targets:
            if target.where == "input":
                def pre_hook(module, args, _t=target):
                    cap._take(_t, args[0])
                handles.append(target.module.register_forward_pre_hook(pre_hook))
            else:
                def hook(module, args, output, _t=target):
                    cap._take(_t, output)
                handles.append(target.module.register_forward_hook(hook))
        try:
            yield cap
        except _StopForward:
            pass
    finally:
        for handle in handles:
            handle.remove()


def layer_output(model: nn.Module, target: Target, x: torch.Tensor) -> torch.Tensor:
    """The captured tensor of ``target`` for input ``x``, with the pass stopped right after it."""
    with capture(model, target) as cap:
        return cap(x)[target.name]


def layer_channels(model: nn.Module, layer: str, size: int = 64) -> int:
    """Number of channels (filters) of ``layer``: a conv's ``out_channels`` when that is what the
    name denotes, else measured by one truncated, gradient-free forward of a grey ``size`` px image."""
    target = resolve_target(model, layer)
    if isinstance(target.module, nn.Conv2d):
        return int(target.module.out_channels)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.no_grad():
        out = layer_output(model, target, torch.full((1, 3, size, size), 128.0, device=device))
    if out.ndim < 2:
        raise FiltvizError(f"layer {layer!r} has no channel dimension (output shape {tuple(out.shape)})")
    return int(out.shape[1])
