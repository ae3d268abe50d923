"""Capture the tensors that :class:`~torch_filtviz.targets.Target` s denote, on any ``nn.Module``.

Why hooks: they work on any network without rewriting it. A target hangs on a module (its input
through a pre-hook, its output through a hook) at a given call of that module in the pass, or,
for an activation applied functionally after a step no module owns (``F.relu(x + shortcut)``),
on that activation function call, seen through a ``TorchFunctionMode`` for the duration of the pass.

:func:`capture` registers the hooks and always removes them. When ``stop`` is set and every
requested tensor has been seen, the capture raises :class:`StopForward`, which ends the forward
pass there, so deep layers are never computed for a shallow target. ``StopForward`` derives from
``BaseException``: a model whose forward catches ``Exception`` cannot swallow it. Captured tensors
are cloned whenever the pass goes on past them, so an in-place activation cannot overwrite them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from filtviz_core.errors import FiltvizError
from torch_filtviz.channels import input_channels
from torch_filtviz.placement import eval_mode, model_device_dtype
from torch_filtviz.targets import OBJECTIVE_KINDS, Target, channels_first, resolve_target, target_channels  # noqa: F401  (re-exported)
from torch_filtviz.trace import ACTIVATION_FUNCTIONS, ACTIVATION_MODULES, function_name  # re-exported

ACTIVATIONS = ACTIVATION_MODULES  # the modules whose input is a pre-activation (kept under its old name)


class StopForward(BaseException):
    """Raised inside a hook to end the forward pass once every target has been captured.

    A ``BaseException`` on purpose: ``except Exception`` in a model's forward must not swallow it.
    """


class _FunctionTaps(TorchFunctionMode):
    """Counts activation-function calls during one pass and hands the wanted ones to the capture."""

    def __init__(self, cap: Capture, wanted: dict[int, list[Target]]) -> None:
        super().__init__()
        self.cap, self.wanted, self.count = cap, wanted, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = function_name(func)
        if name not in ACTIVATION_FUNCTIONS:
            return func(*args, **kwargs)
        index, self.count = self.count, self.count + 1
        targets = self.wanted.get(index, ())
        for t in targets:
            if t.where == "input":
                self.cap._take(t, args[0])
        result = func(*args, **kwargs)
        for t in targets:
            if t.where == "output":
                self.cap._take(t, result)
        return result


class Capture:
    """Runs the model and returns the captured tensors, ending the pass early when allowed.

    Made by :func:`capture`; call it with a batch: ``acts = cap(x)`` -> ``{name: tensor}``.
    """

    def __init__(self, model: nn.Module, targets: Sequence[Target], stop: bool) -> None:
        self.model = model
        self.targets = list({t.name: t for t in targets}.values())
        self.stop = stop
        self.values: dict[str, torch.Tensor] = {}
        self.calls: dict[tuple[str, int], int] = {}  # (hook kind, id(module)) -> calls seen in this pass
        self.functional: dict[int, list[Target]] = {
            t.function_call: [] for t in self.targets if t.function_call is not None
        }
        for t in self.targets:
            if t.function_call is not None:
                self.functional[t.function_call].append(t)

    def _reset(self) -> None:
        self.values = {}
        self.calls = {}

    def _take(self, target: Target, tensor: torch.Tensor) -> None:
        if target.name in self.values:
            return
        last = len(self.values) + 1 == len(self.targets)
        ends_here = self.stop and last
        if target.relu:
            tensor = F.relu(tensor)  # a new tensor: nothing later can write into it
        elif not ends_here:
            tensor = tensor.clone()  # the pass goes on: an in-place op could overwrite it
        self.values[target.name] = tensor
        if ends_here:
            raise StopForward

    def _counted(self, key: tuple[str, nn.Module]) -> int:
        """Index of the current call of a module's hook in this pass (0 = first)."""
        ident = (key[0], id(key[1]))
        n = self.calls.get(ident, 0)
        self.calls[ident] = n + 1
        return n

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self._reset()
        try:
            with self._function_taps():
                self.model(x)
        except StopForward:
            pass
        missing = [t.name for t in self.targets if t.name not in self.values]
        if missing:
            raise FiltvizError(f"layer {missing[0]!r} was not reached by the forward pass of the model")
        return self.values

    def _function_taps(self):
        return _FunctionTaps(self, self.functional) if self.functional else nullcontext()


@contextmanager
def capture(model: nn.Module, targets: Target | Sequence[Target], stop: bool = True) -> Iterator[Capture]:
    """Register hooks for ``targets`` on ``model``; yields a :class:`Capture`.

    Hooks are removed on exit, also after an exception. Calling ``model(x)`` directly inside the
    block works too for module targets (the early stop is swallowed on exit; read ``cap.values``).
    """
    targets = [targets] if isinstance(targets, Target) else list(targets)
    if not targets:
        raise FiltvizError("no layer to capture")
    cap = Capture(model, targets, stop)
    handles = []
    if any(t.call for t in cap.targets):  # call counts must restart with every pass, also a direct model(x)
        handles.append(model.register_forward_pre_hook(lambda m, a: cap._reset(), prepend=True))
    try:
        by_module: dict[tuple[int, str], tuple[nn.Module, list[Target]]] = {}
        for target in cap.targets:
            if target.function_call is None:
                by_module.setdefault((id(target.module), target.where), (target.module, []))[1].append(target)
        for (_, where), (module, wanted) in by_module.items():
            if where == "input":

                def pre_hook(mod, args, _wanted=wanted):
                    k = cap._counted(("in", mod))
                    for t in _wanted:
                        if t.call == k:
                            cap._take(t, args[0])

                handles.append(module.register_forward_pre_hook(pre_hook))
            else:

                def hook(mod, args, output, _wanted=wanted):
                    k = cap._counted(("out", mod))
                    for t in _wanted:
                        if t.call == k:
                            cap._take(t, output[0] if isinstance(output, (tuple, list)) else output)

                handles.append(module.register_forward_hook(hook))
        with suppress(StopForward):
            yield cap
    finally:
        for handle in handles:
            handle.remove()


def layer_output(model: nn.Module, target: Target, x: torch.Tensor) -> torch.Tensor:
    """The captured tensor of ``target`` for input ``x``, with the pass stopped right after it."""
    with capture(model, target) as cap:
        return cap(x)[target.name]


def layer_channels(model: nn.Module, layer: str, size: int = 64) -> int:
    """Number of channels (filters) of ``layer``: a conv's ``out_channels`` when that is what the
    name denotes, else measured by one truncated, gradient-free forward of a grey ``size`` px image
    (in the channel dim the target names: the last one of channels-last maps and of token tensors;
    a model with a fixed input size, a vision transformer, is run at that size)."""
    from torch_filtviz.probe import fixed_input_size

    size = fixed_input_size(model) or size
    target = resolve_target(model, layer)
    if isinstance(target.module, nn.Conv2d):
        return int(target.module.out_channels)
    device, dtype = model_device_dtype(model)
    with torch.no_grad(), torch.inference_mode(False), eval_mode(model):
        grey = torch.full((1, input_channels(model), size, size), 128.0, device=device, dtype=dtype)
        out = layer_output(model, target, grey)
    if out.ndim < 2:
        raise FiltvizError(f"layer {layer!r} has no channel dimension (output shape {tuple(out.shape)})")
    return target_channels(target, out)
