"""Which tensor a layer name denotes: the module, the call, and input or output, on any architecture.

A layer is named by the model's alias (``model.aliases``: VGG16's Keras names, where
``block5_conv3`` is the post-ReLU output, as in Keras), by a module path of the wrapped network
(``layer4.1.conv2``) or by a module path of the model itself (``features.28``).

``objective="pre_relu"`` means the **input of the activation that follows** the layer, wherever
that activation is: an activation module (VGG16's ``nn.ReLU``), a functional ``F.relu`` /
``F.silu`` / ``F.gelu`` inside a block (GoogLeNet's ``BasicConv2d``), an activation module that
is called more than once (ResNet's blocks call one ``nn.ReLU`` twice: the second call's input
is ``bn2`` plus the shortcut), possibly after per-channel steps in between (batch norm, a
residual add, dropout). ``"post_relu"`` is that activation's output. Both are found in one traced
forward pass (:mod:`torch_filtviz.trace`) and resolved to a tensor the network really computes:

* a layer whose output is already activated (an activation module, GoogLeNet's ``conv1``, a
  ResNet block): pre-activation = the input of that last activation;
* a layer followed by an activation (a conv, a batch norm): the input of that activation;
* a pooling layer: its output (pools have no pre-activation of their own; the record says so);
* a layer with no activation after it (a linear bottleneck, ConvNeXt's depthwise conv): its output;
* a concatenation of activated branches (GoogLeNet's ``inception3a``) or a module called more than
  once: refused, with one line naming the module paths that do give a single pre-activation.

Nothing falls back silently: :meth:`Target.describe` (recorded in run.json) says which module,
which call, and input or output was used.

**Vision transformers.** Their blocks, MLPs and attention outputs give token tensors ``(N, T, C)``
(torchvision ``vit_b_16``: ``(N, 197, 768)``, the class token first, then 14 x 14 patches). Such a
tensor is a target like a conv map: its units are the last axis (``channel_dim=-1``) and
:attr:`Target.tokens` says how many prefix tokens (class, distillation, register) come before the
patches and on which grid the patches lie. The prefix is read **from the model**, never guessed from
T: torchvision's ``class_token``, timm's ``num_prefix_tokens``, any other module's ``cls_token``
parameter (see :func:`model_tokens`); a token tensor of a model that declares none has no class token
(its record says so). A 3-d tensor counts as tokens when the model declares a token layout, or when it
comes out of a ``linear``/``layer_norm`` (channels last); otherwise (``Conv1d``'s ``(N, C, L)``) its
units are axis 1. Swin's stages give ``(N, H, W, C)`` maps: channels last, as ConvNeXt's.
:func:`channels_first` shows a token tensor as the patch tokens on their grid, ``(N, C, rows, cols)``
(class token left out), so maps, neurons and atlas views treat a ViT layer like a conv map.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from filtviz_core.errors import FiltvizError
from torch_filtviz.channels import input_channels
from torch_filtviz.placement import eval_mode, model_device_dtype  # re-exported
from torch_filtviz.probe import describe_failure, fixed_input_size, probe_failure, size_like
from torch_filtviz.trace import (
    ACTIVATION_MODULES,
    CHANNEL_PRESERVING,
    CHANNELS_FIRST_MAKERS,
    CHANNELS_LAST_MAKERS,
    LAYOUT_OPS,
    Key,
    Tokens,
    Trace,
    meta_copy,
    trace_forward,
)

OBJECTIVE_KINDS = ("pre_relu", "post_relu", None)
POOLING = frozenset(
    {
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "lp_pool2d",
        "max_pool2d_with_indices",
        "adaptive_max_pool2d_with_indices",
    }
)
CONCAT = frozenset({"cat", "concat", "concatenate"})
TRACE_SIZES = (64, 224, 299)  # probe sizes tried in turn when the caller gives none (and the model has no fixed size)


@dataclass(frozen=True)
class Target:
    """One tensor to capture.

    ``name``: the layer as the user gave it; ``path``: the module the hook hangs on; ``where``:
    its first input or its output; ``relu``: apply a ReLU to what was captured (the post-ReLU view of
    a conv followed directly by a ReLU); ``call``: which call of that module in one forward pass
    (0 = the first); ``function_call``: when set, the tensor is the input/output of that activation
    *function* call (counted over the whole pass), made inside ``path``; ``channel_dim``: where the
    filters are (1 for NCHW maps, -1 for channels-last maps such as an ``nn.Linear`` on NHWC, and for
    token tensors); ``note``: why this tensor, in words; ``tokens``: for a vision transformer's (N, T, C)
    token tensor, its layout (prefix tokens and patch grid), else None.
    """

    name: str
    path: str
    module: nn.Module = field(compare=False, repr=False)
    where: Literal["input", "output"] = "output"
    relu: bool = False
    call: int = 0
    function: str | None = None
    function_call: int | None = None
    channel_dim: int = 1
    note: str = field(default="", compare=False)
    tokens: Tokens | None = None

    def describe(self, model: nn.Module | None = None) -> dict:
        """run.json's ``target`` entry: the module path, input or output, and why."""
        entry = {
            "layer": self.name,
            "module": display_path(model, self.path) if model is not None else self.path,
            "tensor": self.where,
            "call": self.call,
            "function": self.function,
            "relu_applied": self.relu,
            "channel_dim": self.channel_dim,
            "note": self.note,
        }
        if self.function_call is not None:
            entry["function_call"] = self.function_call
        if self.tokens is not None:
            entry["tokens"] = self.tokens.describe()
        return entry


# --- layer names ---------------------------------------------------------------------------------


def network_prefix(model: nn.Module) -> str:
    """Path prefix under which a wrapping model holds the user's network ('' for none)."""
    return getattr(model, "network_prefix", "") or ""


def display_path(model: nn.Module | None, path: str) -> str:
    """A module path as the user names it: relative to the wrapped network when there is one."""
    prefix = network_prefix(model) if model is not None else ""
    return path[len(prefix) :] if prefix and path.startswith(prefix) else path


def module_path(model: nn.Module, layer: str) -> str | None:
    """Full module path of ``layer`` (alias, path in the wrapped network, or path in the model), or None."""
    if not isinstance(layer, str) or not layer:
        return None
    aliases: dict[str, str] = getattr(model, "aliases", {}) or {}
    candidates = [aliases[layer]] if layer in aliases else []
    prefix = network_prefix(model)
    if prefix:
        candidates.append(prefix + layer)
    candidates.append(layer)
    for path in candidates:
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        if module is not model:
            return path
    return None


def layer_names(model: nn.Module, kind: str = "all") -> list[str]:
    """Selectable layer names of ``model`` in network order: its aliases if it has them
    (VGG16: ``block1_conv1`` ... ``block5_pool``), else leaf module paths (of the wrapped network).

    ``kind``: ``"all"`` (the default) or ``"conv"`` (conv layers only).
    """
    aliases: dict[str, str] = getattr(model, "aliases", {}) or {}
    if aliases:
        names = list(aliases)
        return [n for n in names if "_conv" in n] if kind == "conv" else names
    prefix = getattr(model, "network_prefix", "") or ""
    leaves = [
        (name, module)
        for name, module in model.named_modules()
        if name and not list(module.children()) and (not prefix or name.startswith(prefix))
    ]
    if kind == "conv":
        leaves = [(n, m) for n, m in leaves if isinstance(m, nn.Conv2d)]
    return [display_path(model, n) for n, _ in leaves]


def unknown_layer(model: nn.Module, layer: str) -> FiltvizError:
    names = layer_names(model)
    shown = names if len(names) <= 40 else names[:20] + ["..."] + names[-5:]
    hint = " (see 'filtviz layers')" if len(names) > 40 else ""
    if getattr(model, "aliases", None):
        hint += " (or a module path such as features.0)"
    return FiltvizError(f"unknown layer {layer!r}; valid: {', '.join(shown)}{hint}")


# --- tracing, cached -----------------------------------------------------------------------------

_TRACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def model_trace(model: nn.Module, size: int | tuple[int, int]) -> Trace:
    """The traced forward pass of one grey RGB image of ``size`` px (cached per model and size).

    The trace runs on a "meta" copy of the model (shapes only: fast, and nothing of the caller's
    model runs); a model that cannot run on meta tensors (data-dependent control flow) is traced
    for real, in eval mode, its modes restored. Errors of the forward pass propagate, so callers can
    tell a too-small input from other failures.
    """
    height, width = (size, size) if isinstance(size, int) else size
    device, dtype = model_device_dtype(model)
    key = (height, width, str(device), str(dtype), tuple(id(m) for m in model.modules()))
    per_model = _TRACES.setdefault(model, {})
    if key not in per_model:
        per_model.clear()  # one size at a time is enough: keep memory bounded
        trace = _trace(model, height, width, device, dtype)
        trace.tokens = model_tokens(model, height, width)
        per_model[key] = trace
    return per_model[key]


def _trace(model: nn.Module, height: int, width: int, device: torch.device, dtype: torch.dtype) -> Trace:
    with torch.inference_mode(False):
        try:
            copy_ = meta_copy(model).eval()
            grey = torch.full((1, input_channels(model), height, width), 128.0, device="meta", dtype=dtype)
            trace = trace_forward(copy_, grey)
            if trace.error is None or size_like(trace.error):
                return trace
        except Exception:  # noqa: BLE001 - a model that cannot even be copied: trace the real one
            pass
        with eval_mode(model):  # not runnable on meta tensors (data-dependent code): the real model decides
            grey = torch.full((1, input_channels(model), height, width), 128.0, device=device, dtype=dtype)
            return trace_forward(model, grey)


def any_trace(model: nn.Module) -> Trace:
    """A complete trace at the model's fixed input size (:func:`~torch_filtviz.probe.fixed_input_size`), else
    at the first of :data:`TRACE_SIZES` the model accepts (structure does not depend on size)."""
    fixed = fixed_input_size(model)
    trace = None
    for size in (fixed,) if fixed is not None else TRACE_SIZES:
        trace = model_trace(model, size)
        if trace.error is None:
            return trace
    assert trace is not None  # TRACE_SIZES is not empty
    return trace


def probe_trace(model: nn.Module, size: int | None = None) -> Trace:
    """:func:`any_trace` (or the trace at ``size``) for listings: a pass that failed for a reason other than
    the input size, or before any module ran, is raised as what it is
    (:func:`~torch_filtviz.probe.probe_failure`), never shown as modules that are "not reached"."""
    if size is not None:
        from torch_filtviz.probe import check_fixed_size

        check_fixed_size(model, size, size, size, size)
    trace = any_trace(model) if size is None else model_trace(model, size)
    prefix = network_prefix(model)  # the preprocessing module of a wrapped model does not count
    reached = any(op.kind == "module" and op.name.startswith(prefix) for op in trace.ops)
    if trace.error is not None and (not size_like(trace.error) or not reached):
        fixed = fixed_input_size(model)
        raise probe_failure(trace.error, size or fixed or TRACE_SIZES[-1], input_channels(model)) from None
    return trace


# --- vision transformers: token tensors ------------------------------------------------------------------


def model_tokens(model: nn.Module, height: int, width: int) -> Tokens | None:
    """The token layout ``model`` declares for a ``height`` x ``width`` input, or None (no vision transformer).

    The prefix (tokens before the patches) is read from the model: torchvision ``VisionTransformer``'s
    ``class_token`` (1), timm's ``num_prefix_tokens`` (class + distillation + register tokens), or
    another module's ``cls_token`` parameter of shape (1, k, C) (k). The patch grid is the input size
    divided by the model's ``patch_size`` (torchvision) or ``patch_embed.patch_size`` (timm).

    >>> from torchvision.models import VisionTransformer
    >>> from torch_filtviz.targets import model_tokens
    >>> vit = VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=1, hidden_dim=8, mlp_dim=8)
    >>> model_tokens(vit, 32, 32)
    Tokens(prefix=1, grid=(4, 4), source='VisionTransformer.class_token', class_token=True)
    """
    for module in model.modules():
        declared = _declared_prefix(module)
        if declared is None:
            continue
        prefix, source, has_class = declared
        patch = getattr(module, "patch_size", None)
        embed = getattr(module, "patch_embed", None)
        if patch is None and embed is not None:
            patch = getattr(embed, "patch_size", None)
        grid = None
        if patch is not None:
            ph, pw = (patch, patch) if isinstance(patch, int) else (int(patch[0]), int(patch[1]))
            if ph > 0 and pw > 0 and height >= ph and width >= pw:
                grid = (height // ph, width // pw)
        return Tokens(prefix, grid, source, has_class and prefix > 0)
    return None


def _declared_prefix(module: nn.Module) -> tuple[int, str, bool] | None:
    """(prefix tokens, where they were read: ``Class.attribute``, whether the first is a class token)
    declared by one module, or None."""
    kind = type(module).__name__
    count = getattr(module, "num_prefix_tokens", None)  # timm: class + distillation + register tokens
    if isinstance(count, int) and not isinstance(count, bool):
        has_class = getattr(module, "has_class_token", getattr(module, "cls_token", None) is not None)
        return int(count), f"{kind}.num_prefix_tokens", bool(has_class)
    for name in ("class_token", "cls_token"):  # torchvision ViT; other code
        token = getattr(module, name, None)
        if isinstance(token, torch.Tensor) and token.ndim == 3:
            return int(token.shape[1]), f"{kind}.{name}", True
    return None


def _square_grid(patches: int) -> tuple[int, int]:
    """The patch grid of ``patches`` tokens when the model gives none: a square if it is one, else one row."""
    side = round(patches**0.5)
    return (side, side) if side * side == patches else (1, patches)


def token_layout(trace: Trace, value: Key | None, shape: tuple[int, ...] | None) -> Tokens | None:
    """The layout of a traced 3-d value ``(N, T, C)`` if it holds tokens (see the module docstring), else None.

    With the model's layout (prefix P, grid of n patches): T == P + n gives that layout; T == n (a patch
    embedding's output, before the class token is added) gives no prefix; another T > P keeps the
    prefix with a square (or one-row) grid of the rest. Without one, a channels-last 3-d tensor is all patches.
    """
    if shape is None or len(shape) != 3:
        return None
    count = int(shape[1])
    declared = trace.tokens
    if declared is not None:
        patches = declared.grid[0] * declared.grid[1] if declared.grid else None
        if patches is not None and count == declared.prefix + patches:
            return declared
        if patches is not None and count == patches:
            return Tokens(0, declared.grid, f"{declared.source}; this tensor holds the patch tokens only", False)
        if count > declared.prefix:
            return Tokens(declared.prefix, _square_grid(count - declared.prefix), declared.source, declared.class_token)
    if layout_walk(trace, value) == -1:
        return Tokens(0, _square_grid(count), "the model declares no class token: every token is a patch", False)
    return None


def layout_walk(trace: Trace, value: Key | None) -> int | None:
    """Where the channels of ``value`` are, from the step that made them: -1 after a channels-last maker
    (``linear``/``layer_norm``), 1 after a channels-first one (convolution, batch norm, pooling), walking
    back through activations, channel-preserving steps and layout steps that keep the last axis
    (:data:`~torch_filtviz.trace.LAYOUT_OPS`); None when the walk cannot tell."""
    op = trace.producer(value) if value is not None else None
    while op is not None:
        if op.name in CHANNELS_LAST_MAKERS:
            return -1
        if op.name in CHANNELS_FIRST_MAKERS:
            return 1
        if not op.inputs:
            return None
        if op.activation or op.name in CHANNEL_PRESERVING or (op.name in LAYOUT_OPS and _keeps_last_axis(trace, op)):
            op = trace.producer(op.inputs[0])
            continue
        return None
    return None


def _keeps_last_axis(trace: Trace, op) -> bool:
    """Whether a layout step's output has its input's last axis as its own last axis (same size, not moved)."""
    source = trace.producer(op.inputs[0], ("function", "module"))
    before, after = (source.shape if source is not None else None), op.shape
    if not before or not after or before[-1] != after[-1]:
        return False
    dims = [d for a in op.args for d in (a if isinstance(a, (list, tuple)) else (a,)) if isinstance(d, int)]
    if op.name == "permute":
        return bool(dims) and dims[-1] in (-1, len(after) - 1)
    if op.name == "transpose":
        return not any(d in (-1, len(before) - 1) for d in dims[:2])
    return True


def patch_grid(tokens: Tokens, act: torch.Tensor) -> torch.Tensor:
    """A token tensor ``(N, T, C)`` as its patch tokens on their grid, ``(N, C, rows, cols)`` (a view, no copy):
    the prefix tokens (class token) are left out, patch ``P + r * cols + c`` is at row r, column c."""
    n, count, c = act.shape
    rows, cols = token_grid(tokens, count)
    return act[:, tokens.prefix :, :].reshape(n, rows, cols, c).permute(0, 3, 1, 2)


def token_grid(tokens: Tokens, count: int) -> tuple[int, int]:
    """(rows, cols) of the patch tokens of a tensor of ``count`` tokens: the layout's grid when it fits,
    else a square, else one row."""
    patches = count - tokens.prefix
    if tokens.grid and tokens.grid[0] * tokens.grid[1] == patches:
        return tokens.grid
    return _square_grid(patches)


# --- resolution ----------------------------------------------------------------------------------


def resolve_target(
    model: nn.Module, layer: str, objective: str | None = None, *, size: int | tuple[int, int] | None = None
) -> Target:
    """The :class:`Target` for ``layer`` (alias or module path) under ``objective``.

    ``objective``: ``"pre_relu"`` (the input of the activation that follows, see the module
    docstring), ``"post_relu"`` (that activation's output), or None (the module's own output as is,
    its first call: what feature maps show). ``size``: the input size to trace the network at
    (default: the first of 64, 224, 299 px that the network accepts).
    """
    if objective not in OBJECTIVE_KINDS:
        raise FiltvizError(f"unknown objective {objective!r}; valid: pre_relu, post_relu")
    path = module_path(model, layer)
    if path is None:
        raise unknown_layer(model, str(layer))
    module = model.get_submodule(path)
    trace = any_trace(model) if size is None else model_trace(model, size)
    if objective is None:
        calls = trace.module_calls(path)
        out = calls[0].output if calls else None
        shape = calls[0].shape if calls else None
        dim = value_channel_dim(trace, out, shape) if out is not None else 1
        return Target(layer, path, module, "output", channel_dim=dim, tokens=token_layout(trace, out, shape))
    return Resolver(model, trace).resolve(layer, path, module, objective)


# --- where the units are -------------------------------------------------------------------------


def value_channel_dim(trace: Trace, value: Key | None, shape: tuple[int, ...] | None) -> int:
    """Where the units of a traced value are: -1 for a 4-d map made channels last (``linear`` /
    ``layer_norm`` on (N, H, W, C), through activations, channel-preserving and layout steps) and for a
    (N, T, C) token tensor (:func:`token_layout`), else 1."""
    if shape is not None and len(shape) == 3:
        return -1 if token_layout(trace, value, shape) is not None else 1
    if shape is None or len(shape) != 4:
        return 1
    return -1 if layout_walk(trace, value) == -1 else 1


def channel_axis(channel_dim: int, ndim: int) -> int:
    """The axis holding the units of an ``ndim``-d tensor whose :attr:`Target.channel_dim` is ``channel_dim``:
    the last one of a channels-last 4-d map or of a (N, T, C) token tensor, else axis 1. The one rule
    every count and map view uses."""
    if ndim == 4 and channel_dim in (-1, 3):
        return 3
    return 2 if ndim == 3 and channel_dim in (-1, 2) else 1


def channel_count(shape: tuple[int, ...] | torch.Size, channel_dim: int) -> int:
    """How many units (filters) a tensor of ``shape`` holds."""
    return int(shape[channel_axis(channel_dim, len(shape))])


def target_channels(target: Target, act: torch.Tensor) -> int:
    """How many filters a captured tensor of ``target`` holds (its channel dim, wherever the target says it is)."""
    return channel_count(tuple(act.shape), target.channel_dim)


def channels_first(target: Target, act: torch.Tensor) -> torch.Tensor:
    """A captured tensor of ``target`` as (N, C, ...): channels-last maps are viewed as NCHW (no copy); a
    vision transformer's (N, T, C) tokens as their patch tokens on the patch grid, (N, C, rows, cols)
    (:func:`patch_grid`: the class token is left out)."""
    if target.tokens is not None and act.ndim == 3:
        return patch_grid(target.tokens, act)
    axis = channel_axis(target.channel_dim, act.ndim)
    return act if axis == 1 else act.movedim(axis, 1)


class Resolver:
    """Walks one trace to the tensor a (layer, objective) pair denotes."""

    def __init__(self, model: nn.Module, trace: Trace) -> None:
        self.model, self.trace = model, trace
        self.shapes: dict[Key, tuple[int, ...] | None] = {}
        for op in trace.ops:
            if op.output is not None:
                self.shapes.setdefault(op.output, op.shape)

    # -- public -----------------------------------------------------------------------------------

    def resolve(self, layer: str, path: str, module: nn.Module, objective: str) -> Target:
        calls = self.trace.module_calls(path)
        if not calls and self.trace.error is not None:
            raise describe_failure(self.trace.error, "probe", input_channels(self.model))
        if not calls:
            raise FiltvizError(
                f"layer {layer!r} ({display_path(self.model, path)}) is not reached by the forward pass of the model"
            )
        if len(calls) > 1:
            raise FiltvizError(self._reused_message(layer, path, calls))
        op = calls[0]
        if op.output is None:
            raise FiltvizError(f"layer {layer!r} outputs no tensor")
        out = op.output
        made_by = self.trace.producer(out)
        if made_by is not None and made_by.activation and made_by.inputs:
            if objective == "post_relu":
                return self._target(layer, path, module, "output", out, note="the layer's output, already activated")
            own = path if isinstance(module, ACTIVATION_MODULES) else None
            return self._capture(
                layer,
                made_by.inputs[0],
                made_by,
                "input",
                own_call=op.call if own else None,
                note=f"the input of the {made_by.name} that ends {display_path(self.model, path)}",
            )
        if made_by is not None and made_by.name in POOLING:
            return self._target(
                layer,
                path,
                module,
                "output",
                out,
                note="a pooling layer's output: pooling has no pre-activation of its own",
            )
        if made_by is not None and made_by.name in CONCAT:
            branches = [self._branch(v) for v in made_by.inputs if v in self.shapes]
            if any(b is not None for b in branches):
                if objective == "pre_relu":
                    raise FiltvizError(self._concat_message(layer, branches))
                return self._target(
                    layer,
                    path,
                    module,
                    "output",
                    out,
                    note="the layer's output: concatenated branches, already activated",
                )
        after = self._activation_after(out)
        if after is None:
            return self._target(
                layer, path, module, "output", out, note="no activation follows this layer: its output is used"
            )
        if objective == "pre_relu":
            if after.inputs[0] == out:
                return self._target(
                    layer,
                    path,
                    module,
                    "output",
                    out,
                    note=f"the layer's output, which the {after.name} after it takes",
                )
            return self._capture(
                layer,
                after.inputs[0],
                after,
                "input",
                note=f"the input of the {after.name} that follows {display_path(self.model, path)}",
            )
        if after.inputs[0] == out and after.name in ("relu", "relu_"):
            return self._target(
                layer,
                path,
                module,
                "output",
                out,
                relu=True,
                note="relu of the layer's output, as the ReLU after it computes",
            )
        return self._capture(
            layer,
            after.output,
            after,
            "output",
            note=f"the output of the {after.name} that follows {display_path(self.model, path)}",
        )

    # -- walking ----------------------------------------------------------------------------------

    def _activation_after(self, start: Key):
        """The first activation reached from ``start`` through channel-preserving steps (or None)."""
        frontier, seen, found = [start], {start}, None
        while frontier:
            value = frontier.pop(0)
            for op in self.trace.consumers(value):
                if op.activation and op.inputs and op.inputs[0] == value:
                    if found is None or op.index < found.index:
                        found = op
                elif (
                    op.name in CHANNEL_PRESERVING
                    and op.output is not None
                    and op.output not in seen
                    and op.shape == self.shapes.get(value)
                ):
                    seen.add(op.output)
                    frontier.append(op.output)
        return found

    def _activated_by(self, value: Key):
        """The activation whose output ``value`` is, through channel-preserving or pooling steps (or None)."""
        op = self.trace.producer(value)
        while op is not None:
            if op.activation:
                return op
            if (op.name in CHANNEL_PRESERVING or op.name in POOLING) and op.inputs:
                op = self.trace.producer(op.inputs[0])
                continue
            return None
        return None

    def _channel_dim(self, value: Key) -> int:
        return value_channel_dim(self.trace, value, self.shapes.get(value))

    # -- building targets -------------------------------------------------------------------------

    def _tokens(self, value: Key) -> Tokens | None:
        return token_layout(self.trace, value, self.shapes.get(value))

    def _target(self, layer, path, module, where, value, *, relu=False, call=0, note="") -> Target:
        return Target(
            layer,
            path,
            module,
            where,
            relu,
            call,
            channel_dim=self._channel_dim(value),
            note=note,
            tokens=self._tokens(value),
        )

    def _capture(
        self, layer: str, value: Key, fn, where: Literal["input", "output"], *, own_call: int | None = None, note: str
    ) -> Target:
        """A target for ``value`` (an activation function's input or output), hooked where it is simplest."""
        dim = self._channel_dim(value)
        tokens = self._tokens(value)
        activation_module = self._module_op_around(fn)
        own = self.model.get_submodule  # trace ops may come from a meta copy: hook the caller's modules
        if own_call is not None and activation_module is not None:  # the user named the activation module itself
            return Target(
                layer,
                activation_module.name,
                own(activation_module.name),
                "input",
                False,
                own_call,
                channel_dim=dim,
                note=note,
                tokens=tokens,
            )
        holders = self.trace.modules_with_output(value)
        if holders:  # a module's output is exactly this value: hook that module (innermost first)
            m = holders[0]
            return Target(
                layer, m.name, own(m.name), "output", False, m.call, channel_dim=dim, note=note, tokens=tokens
            )
        if activation_module is not None and where == "input" and activation_module.inputs[:1] == [value]:
            m = activation_module
            return Target(layer, m.name, own(m.name), "input", False, m.call, channel_dim=dim, note=note, tokens=tokens)
        parent = fn.parent
        holder = self.model.get_submodule(parent) if parent else self.model
        return Target(layer, parent, holder, where, False, 0, fn.name, fn.call, dim, note, tokens)

    def _module_op_around(self, fn):
        """The activation module call inside which the activation function ``fn`` ran, if any."""
        if not fn.parent:
            return None
        for op in self.trace.ops[fn.index + 1 :]:
            if op.kind == "module" and op.name == fn.parent:
                return op if op.activation else None
        return None

    # -- messages ---------------------------------------------------------------------------------

    def _feeders(self, activation) -> list[str]:
        """Module paths whose pre-activation is the input of this activation call (for messages)."""
        names: list[str] = []
        for op in self.trace.ops:
            if op.kind != "module" or op.activation or op.output is None or op.index > activation.index:
                continue
            if len(self.trace.module_calls(op.name)) != 1:
                continue
            after = self._activation_after(op.output)
            if (
                after is not None
                and after.index == activation.index
                and not any(n.startswith(op.name + ".") for n in names)
            ):
                names.append(display_path(self.model, op.name))
        return names

    def _reused_message(self, layer: str, path: str, calls) -> str:
        shown = display_path(self.model, path)
        named = f"{layer!r}" if shown == layer else f"{layer!r} ({shown})"
        text = f"{named} is called {len(calls)} times in one forward pass, so it names no single tensor"
        if calls[0].activation:
            options = []
            for i, call in enumerate(calls):
                fn = self.trace.producer(call.output) if call.output else None
                feeders = self._feeders(fn) if fn is not None and fn.activation else []
                if feeders:
                    options.append(f"call {i + 1}: {' or '.join(feeders[-2:])}")
            if options:
                return text + "; name the layer before the call you mean (" + "; ".join(options) + ")"
        return text + "; name one of the modules it is applied to instead"

    def _branch(self, value: Key):
        """(pre-activation module path, channels) of one concatenated branch, or None if not activated."""
        act = self._activated_by(value)
        if act is None:
            return None
        shape = self.shapes.get(value)
        holders = self.trace.modules_with_output(act.inputs[0]) if act.inputs else []
        path = display_path(self.model, holders[0].name) if holders else None
        return (path, shape[1] if shape and len(shape) > 1 else None)

    def _concat_message(self, layer: str, branches) -> str:
        parts, start = [], 0
        for branch in branches:
            if branch is None or branch[1] is None:
                continue
            path, count = branch
            parts.append(f"{path or '(functional)'} (channels {start}-{start + count - 1})")
            start += count
        return (
            f"{layer!r} concatenates {len(branches)} activated branches, so it has no single pre-activation; "
            f"name one branch instead: {', '.join(parts)} (or use objective post_relu)"
        )
