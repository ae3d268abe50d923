"""Where a feature-map position looks in the input: the receptive field of a layer.

A dataset example is the crop of a photo that one position of a filter's map sees. The geometry is
composed from the convolutions and poolings the forward pass runs before the layer (kernel, stride,
padding, dilation), recorded with hooks on a probe pass, so it is exact for a chain of them (VGG,
AlexNet). When the pass is not a chain (a residual network: a module's input is not the previous
module's output), the stride is taken from the measured map size, the size from the chain (an upper
bound), and ``exact`` is False.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from filtviz_core.errors import FiltvizError
from torch_filtviz.channels import input_channels
from torch_filtviz.hooks import capture, channels_first, resolve_target, target_channels

SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class Geometry:
    """Receptive field of a layer, per axis (rows, cols): ``stride`` (input px between neighbouring
    positions), ``size`` (px seen by one position), ``offset`` (input coordinate of the centre of
    position 0, in pixel-centre units; negative when padding reaches outside the image)."""

    stride: tuple[int, int]
    size: tuple[int, int]
    offset: tuple[float, float]
    exact: bool = True

    def box(self, row: int, col: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) in the input, bottom/right exclusive, clipped to height x width."""
        out = []
        for pos, axis, limit in ((row, 0, height), (col, 1, width)):
            start = round(self.offset[axis] + pos * self.stride[axis] - (self.size[axis] - 1) / 2)
            out.append((max(0, start), min(limit, start + self.size[axis])))
        (top, bottom), (left, right) = out
        return top, left, bottom, right

    def as_dict(self) -> dict:
        return {"stride": list(self.stride), "size": list(self.size), "offset": list(self.offset), "exact": self.exact}


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _params(module: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[float, float], tuple[int, int]]:
    """(kernel, stride, padding before, dilation) per axis of a conv or pooling module."""
    kernel, stride = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
    dilation = _pair(getattr(module, "dilation", 1))
    padding = getattr(module, "padding", 0)
    if isinstance(padding, str):  # Conv2d(padding="same" | "valid")
        k, d = kernel, dilation
        pad = ((d[0] * (k[0] - 1)) // 2, (d[1] * (k[1] - 1)) // 2) if padding == "same" else (0, 0)
    else:
        pad = _pair(padding)
    return kernel, stride, pad, dilation


def receptive_field(
    model: nn.Module, layer: str, height: int, width: int | None = None, objective: str | None = None
) -> tuple[Geometry, tuple[int, int]]:
    """(geometry of ``layer``, its map size (h, w)) for a ``height`` x ``width`` input, from one probe
    pass; FiltvizError when the input is too small for the layer."""
    geometry, map_size, _ = probe_layers(model, [layer], height, width, objective)[layer]
    return geometry, map_size


def grey_pass(model: nn.Module, targets, height: int, width: int, handles: list, mark) -> dict:
    """One gradient-free pass of a grey ``height`` x ``width`` image, capturing ``targets``;
    ``mark(name)`` is called as the pass reaches each target (its hook registered after ``handles``,
    the caller's own hooks, so it runs after theirs on the same module). Every hook is removed after."""
    handles = list(handles)
    for target in targets:

        def hook(*_, _name=target.name):
            mark(_name)

        register = (
            target.module.register_forward_pre_hook if target.where == "input" else target.module.register_forward_hook
        )
        handles.append(register(hook))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    try:
        with torch.no_grad(), capture(model, targets) as cap:
            return cap(torch.full((1, input_channels(model), height, width), 128.0, device=device))
    finally:
        for handle in handles:
            handle.remove()


def probe_layers(
    model: nn.Module, layers: list[str], height: int, width: int | None = None, objective: str | None = None
) -> dict[str, tuple[Geometry, tuple[int, int], int]]:
    """``{layer: (geometry, map size (h, w), channels)}`` for every layer, from ONE gradient-free
    probe pass of a grey ``height`` x ``width`` image; FiltvizError when it is too small for one."""
    width = height if width is None else width
    targets = [resolve_target(model, layer, objective) for layer in layers]
    events: list[tuple] = []  # ("call", module, in size, out size) and ("target", name), in pass order
    handles = []

    def record(module, args, output):
        events.append(("call", module, tuple(args[0].shape[-2:]), tuple(output.shape[-2:])))

    for module in model.modules():
        if isinstance(module, SPATIAL):
            handles.append(module.register_forward_hook(record))
    try:
        acts = grey_pass(model, targets, height, width, handles, lambda name: events.append(("target", name)))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FiltvizError(f"size {_size_text(height, width)} is too small for {', '.join(layers)}: {first}") from None
    found = {}
    for layer, target in zip(layers, targets):
        act = channels_first(target, acts[layer])  # (N, C, h, w), whatever the layer's own layout
        if act.ndim != 4 or min(act.shape[-2:]) < 1:
            if act.ndim == 4:
                raise FiltvizError(
                    f"size {_size_text(height, width)} is too small for {layer}: its feature map is empty"
                )
            act = act.reshape(act.shape[0], -1, 1, 1)
        map_size = (int(act.shape[-2]), int(act.shape[-1]))
        calls = []
        for event in events:
            if event[0] == "target" and event[1] == layer:
                break
            if event[0] == "call":
                calls.append(event[1:])
        found[layer] = (_compose(calls, height, width, map_size), map_size, target_channels(target, acts[layer]))
    return found


def _size_text(height: int, width: int) -> str:
    return f"{height} px" if height == width else f"{height}x{width} px"


def _compose(calls, height: int, width: int, map_size: tuple[int, int]) -> Geometry:
    jump, size, start = [1, 1], [1, 1], [0.0, 0.0]
    exact, expected = True, (height, width)
    for module, got_in, got_out in calls:
        if got_in != expected:
            exact = False
        kernel, stride, pad, dilation = _params(module)
        for a in range(2):
            span = dilation[a] * (kernel[a] - 1) + 1
            start[a] += ((span - 1) / 2 - pad[a]) * jump[a]
            size[a] += (span - 1) * jump[a]
            jump[a] *= stride[a]
        expected = got_out
    if expected != map_size:
        exact = False
    if not exact:  # not a chain: measured stride, chain size as an upper bound, centred positions
        jump = [max(1, round(height / map_size[0])), max(1, round(width / map_size[1]))]
        size = [min(size[0], height), min(size[1], width)]
        start = [(jump[0] - 1) / 2, (jump[1] - 1) / 2]
    return Geometry((jump[0], jump[1]), (size[0], size[1]), (start[0], start[1]), exact)
