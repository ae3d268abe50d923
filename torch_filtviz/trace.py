"""One traced forward pass: which module and which torch function produced every tensor, in order.

Why: the tensor a user means by "the pre-activation of ``layer4.1.conv2``" is often not any
module's output. GoogLeNet applies ``F.relu`` inside ``BasicConv2d.forward``; ResNet adds the
shortcut and then calls the *same* ``nn.ReLU`` module a second time; ConvNeXt runs an
``nn.Linear`` on channels-last maps. Module hooks alone cannot see those. A ``TorchFunctionMode``
sees every torch function call (module activations call ``F.relu`` too), and module hooks say
which module was running; together they give the data flow that :mod:`torch_filtviz.targets`
walks to find the tensor the network really computes.

Tensors are identified by ``(id(tensor), tensor._version)``: an in-place op (``relu_``,
``out += identity``) keeps the object but bumps its version, so the value before and after are
told apart. Every traced tensor is kept alive until the trace ends, so ids are never reused.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

Key = tuple[int, int]

#: torch functions (by ``__name__``) that are activations: their input is a "pre-activation".
ACTIVATION_FUNCTIONS = frozenset(
    {
        "relu",
        "relu_",
        "relu6",
        "hardtanh",
        "hardtanh_",
        "leaky_relu",
        "leaky_relu_",
        "elu",
        "elu_",
        "selu",
        "selu_",
        "celu",
        "celu_",
        "gelu",
        "silu",
        "mish",
        "hardswish",
        "hardsigmoid",
        "sigmoid",
        "sigmoid_",
        "tanh",
        "tanh_",
        "softplus",
        "prelu",
        "rrelu",
        "rrelu_",
        "logsigmoid",
        "softsign",
        "tanhshrink",
    }
)

#: Functions that keep channel ``c`` of their input in channel ``c`` of their output (per-channel affine maps,
#: elementwise arithmetic, dropout, copies): a walk from a layer to the activation after it may pass them.
CHANNEL_PRESERVING = frozenset(
    {
        "batch_norm",
        "instance_norm",
        "dropout",
        "dropout1d",
        "dropout2d",
        "dropout3d",
        "alpha_dropout",
        "feature_alpha_dropout",
        "add",
        "add_",
        "__add__",
        "__iadd__",
        "__radd__",
        "sub",
        "sub_",
        "__sub__",
        "__isub__",
        "mul",
        "mul_",
        "__mul__",
        "__imul__",
        "__rmul__",
        "div",
        "div_",
        "__truediv__",
        "__itruediv__",
        "clone",
        "contiguous",
        "to",
        "float",
        "half",
        "bfloat16",
        "type_as",
        "neg",
        "__neg__",
    }
)

#: Functions whose output puts channels last (``nn.Linear`` / ``nn.LayerNorm`` on (N, H, W, C) maps).
CHANNELS_LAST_MAKERS = frozenset({"linear", "layer_norm"})
#: Functions that move positions around (slicing, reshaping, padding, rolling, permuting) and may keep the
#: channels in the last axis: a walk back from a channels-last value passes them when the last axis keeps its
#: size (and, for ``permute``/``transpose``, stays last). Swin's window attention ends with such steps.
LAYOUT_OPS = frozenset(
    {
        "__getitem__",
        "reshape",
        "view",
        "roll",
        "pad",
        "flatten",
        "unflatten",
        "permute",
        "transpose",
    }
)

#: Functions that define channels in dim 1 (convolutions, pooling, batch norm of NCHW maps).
CHANNELS_FIRST_MAKERS = frozenset(
    {
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose2d",
        "batch_norm",
        "max_pool2d",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "adaptive_max_pool2d",
        "group_norm",
        "instance_norm",
        "cat",
        "concat",
    }
)


@dataclass
class Op:
    """One traced call: a module's forward (``kind="module"``) or a torch function (``kind="function"``).

    ``name`` is the module path or the function's ``__name__``; ``call`` counts calls of the same
    module (modules) or of activation functions in the whole pass (functions, for :attr:`activation`
    ones; -1 otherwise); ``parent`` is the path of the innermost module running when it happened.
    """

    index: int
    kind: str
    name: str
    inputs: list[Key]
    output: Key | None
    shape: tuple[int, ...] | None
    parent: str
    call: int = 0
    module: nn.Module | None = field(default=None, repr=False)
    activation: bool = False
    args: tuple = field(default=(), repr=False)


@dataclass(frozen=True)
class Tokens:
    """How a vision transformer lays out its (N, T, C) token tensors: ``prefix`` tokens first (the class
    token, and distillation or register tokens where the model has them), then the patch tokens in
    row-major order on ``grid`` (rows, columns). ``source`` says where the prefix was read from the model;
    ``class_token``: whether the first token is a class token (timm models may have register tokens only)."""

    prefix: int
    grid: tuple[int, int] | None
    source: str
    class_token: bool = True

    def describe(self) -> dict:
        return {
            "prefix": self.prefix,
            "class_token": self.class_token and self.prefix > 0,
            "grid": list(self.grid) if self.grid else None,
            "source": self.source,
        }


@dataclass
class Trace:
    """The ops of one forward pass in completion order (a module op completes after its inner ops).

    ``tokens``: the model's token layout at the traced size (vision transformers; None: the model
    declares no class token or patch grid), set by :func:`torch_filtviz.targets.model_trace`."""

    ops: list[Op]
    paths: dict[int, str]  # id(module) -> path
    error: BaseException | None = None  # why the pass ended early (e.g. a map too small deeper down)
    tokens: Tokens | None = None

    def module_calls(self, path: str) -> list[Op]:
        return [op for op in self.ops if op.kind == "module" and op.name == path]

    def producer(self, key: Key | None, kinds: tuple[str, ...] = ("function",)) -> Op | None:
        """The op that made this value (the innermost: the first to complete with it as output)."""
        for op in self.ops:
            if op.output == key and op.kind in kinds:
                return op
        return None

    def modules_with_output(self, key: Key) -> list[Op]:
        """Module calls whose output is this value, innermost (leaf) first."""
        return [op for op in self.ops if op.kind == "module" and op.output == key]

    def consumers(self, key: Key) -> list[Op]:
        return [op for op in self.ops if op.kind == "function" and key in op.inputs]


def _key(t: torch.Tensor) -> Key:
    return (id(t), int(t._version))


def _tensors(value, out: list[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _tensors(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _tensors(v, out)
    return out


def function_name(func) -> str:
    """``__name__`` of a torch function or Tensor method (``F.relu`` -> "relu", ``Tensor.__iadd__`` -> "__iadd__")."""
    name = getattr(func, "__name__", None)
    if name is None:
        name = getattr(getattr(func, "__func__", None), "__name__", None) or str(func)
    if name in ("__get__", "__set__"):  # property access such as Tensor.shape: not data flow
        return ""
    return name


class _Recorder(TorchFunctionMode):
    """Records every torch function call with its tensor inputs and output."""

    def __init__(self, trace: Trace, stack: list[str], keep: list[torch.Tensor]) -> None:
        super().__init__()
        self.trace, self.stack, self.keep = trace, stack, keep
        self.activation_calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = function_name(func)
        if not name:
            return func(*args, **kwargs)
        inputs = _tensors(args, []) + _tensors(kwargs, [])
        keys = [_key(t) for t in inputs]
        result = func(*args, **kwargs)
        outputs = _tensors(result, [])
        self.keep.extend(inputs + outputs)
        activation = name in ACTIVATION_FUNCTIONS
        call = self.activation_calls if activation else -1
        if activation:
            self.activation_calls += 1
        first = outputs[0] if outputs else None
        self.trace.ops.append(
            Op(
                len(self.trace.ops),
                "function",
                name,
                keys,
                _key(first) if first is not None else None,
                tuple(first.shape) if first is not None else None,
                self.stack[-1] if self.stack else "",
                call,
                None,
                activation,
                tuple(a for a in args if not isinstance(a, torch.Tensor)),
            )
        )
        return result


@contextmanager
def _module_hooks(model: nn.Module, trace: Trace, stack: list[str], keep: list[torch.Tensor]) -> Iterator[None]:
    calls: dict[str, int] = {}
    pending: dict[int, list[tuple[list[Key], str]]] = {}
    handles = []

    def pre(module, args, _path):
        tensors = _tensors(args, [])
        keep.extend(tensors)
        pending.setdefault(id(module), []).append(([_key(t) for t in tensors], stack[-1] if stack else ""))
        stack.append(_path)

    def post(module, args, output, _path):
        stack.pop()
        inputs, parent = pending[id(module)].pop()
        outs = _tensors(output, [])
        keep.extend(outs)
        first = outs[0] if outs else None
        call = calls.get(_path, 0)
        calls[_path] = call + 1
        trace.ops.append(
            Op(
                len(trace.ops),
                "module",
                _path,
                inputs,
                _key(first) if first is not None else None,
                tuple(first.shape) if first is not None else None,
                parent,
                call,
                module,
                isinstance(module, ACTIVATION_MODULES),
            )
        )

    for path, module in model.named_modules():
        if not path:
            continue
        handles.append(module.register_forward_pre_hook(lambda m, a, _p=path: pre(m, a, _p)))
        handles.append(module.register_forward_hook(lambda m, a, o, _p=path: post(m, a, o, _p)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


#: Modules that are activations (their input is the pre-activation of the layer they follow).
ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.RReLU,
    nn.LogSigmoid,
    nn.Softsign,
    nn.Tanhshrink,
)


HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def _torch_owned(hook) -> bool:
    """Hooks torch itself installs to compute a module (weight norm, spectral norm) must stay on a copy."""
    owner = type(hook) if not callable(getattr(hook, "__func__", None)) else type(hook.__self__)
    return getattr(owner, "__module__", "").startswith("torch.") and not isinstance(hook, type(lambda: 0))


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the "meta" device (shapes, no data).

    Running it costs no arithmetic and touches nothing of the caller's: the caller's modules keep
    their state (a module that counts its calls does not count this one) and the caller's own hooks
    are not on the copy.
    """
    memo: dict[int, object] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    copy_ = copy.deepcopy(model, memo)
    for module in copy_.modules():
        for name in HOOK_DICTS:
            hooks = getattr(module, name, None)
            if isinstance(hooks, dict):
                for key in [k for k, h in hooks.items() if not _torch_owned(h)]:
                    del hooks[key]
    return copy_


#: What a failing forward pass raises: kept in ``Trace.error`` and reported as what it is. ``AssertionError``
#: included: torchvision's and timm's vision transformers assert their fixed input size.
FORWARD_ERRORS = (
    RuntimeError,
    ValueError,
    IndexError,
    TypeError,
    ZeroDivisionError,
    NotImplementedError,
    AssertionError,
    KeyError,
    AttributeError,
)


def trace_forward(model: nn.Module, x: torch.Tensor) -> Trace:
    """Run ``model(x)`` once without gradients and record its data flow (see the module docstring).

    A pass that fails part-way (a map too small for a deep pooling layer) keeps the ops recorded up
    to the failure, with the exception in ``Trace.error``: layers before it are still resolvable.
    """
    trace = Trace([], {id(m): p for p, m in model.named_modules()})
    stack: list[str] = []
    keep: list[torch.Tensor] = []
    try:
        with torch.no_grad(), _module_hooks(model, trace, stack, keep), _Recorder(trace, stack, keep):
            model(x)
    except FORWARD_ERRORS as exc:
        trace.error = exc
    finally:
        keep.clear()
    return trace
