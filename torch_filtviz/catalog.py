"""``filtviz layers`` for any network: every module you can target, with its kind, filters and smallest input.

Filter counts come from one traced forward pass (shapes only, on a "meta" copy of the model);
the smallest input from :func:`torch_filtviz.probe.smallest_sizes`. Paths are the wrapped
network's own (``layer4.1.conv2``), as the other commands take them. A model with a fixed input size
(a vision transformer) is probed at that size, and its token layers say so: ``tokens: class + 14x14
patches``. A forward pass that fails for another reason than the size is raised as what it is
(one line with the model's error), never listed as modules that are "not reached".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from torch_filtviz.probe import fixed_input_size, smallest_sizes
from torch_filtviz.targets import channel_count, display_path, probe_trace, token_layout, value_channel_dim
from torch_filtviz.trace import Op, Tokens


@dataclass
class LayerRow:
    """One targetable module: its path, class, filters (channels of its output), smallest input, calls per pass."""

    path: str
    kind: str
    filters: int | None
    min_size: int | None
    calls: int
    tokens: Tokens | None = None  # a vision transformer's (N, T, C) token tensor: its layout
    shape: tuple[int, ...] | None = None  # the output's shape for one picture


def layer_rows(model: nn.Module, kind: str = "all", size: int | None = None) -> list[LayerRow]:
    """The modules of ``model``'s network in definition order, as ``print(model)`` shows them
    (``kind="conv"``: Conv2d only). ``size``: the input side to probe at (default: the model's fixed
    size, else the first of 64, 224, 299 px it accepts); a fixed-size model refuses another in one line."""
    trace = probe_trace(model, size)
    prefix = getattr(model, "network_prefix", "") or ""
    first: dict[str, Op] = {}
    calls: dict[str, int] = {}
    for op in trace.ops:
        if op.kind == "module":
            calls[op.name] = calls.get(op.name, 0) + 1
            first.setdefault(op.name, op)
    paths = [p for p, _ in model.named_modules() if p and (not prefix or p.startswith(prefix))]
    modules = dict(model.named_modules())
    if kind == "conv":
        paths = [p for p in paths if isinstance(modules[p], nn.Conv2d)]
    sizes = smallest_sizes(model, paths)
    rows = []
    for path in paths:
        found = first.get(path)
        filters, tokens = None, None
        if found is not None and found.shape and len(found.shape) >= 2:
            filters = channel_count(found.shape, value_channel_dim(trace, found.output, found.shape))
            tokens = token_layout(trace, found.output, found.shape)
        rows.append(
            LayerRow(
                display_path(model, path),
                type(modules[path]).__name__,
                filters,
                sizes.get(path),
                calls.get(path, 0),
                tokens,
                found.shape if found is not None else None,
            )
        )
    return rows


def token_note(tokens: Tokens) -> str:
    """``tokens: class + 14x14 patches`` (what a token row holds, prefix first)."""
    grid = f"{tokens.grid[0]}x{tokens.grid[1]} patches" if tokens.grid else "patches"
    if tokens.prefix == 0:
        return f"tokens: {grid}"
    first = "class" if tokens.class_token else "prefix"
    extra = tokens.prefix - 1
    head = first if extra == 0 else f"{first} + {extra} more prefix"
    return f"tokens: {head} + {grid}"


def print_layers(
    model: nn.Module, kind: str = "all", print_fn: Callable[[str], object] = print, size: int | None = None
) -> None:
    """The ``filtviz layers`` table of ``model`` (see :func:`layer_rows`), one line per module, then totals."""
    rows = layer_rows(model, kind, size)
    width = max([len(r.path) for r in rows] + [6]) + 2
    kinds = max([len(r.kind) for r in rows] + [22]) + 2
    print_fn(f"{'module':<{width}}{'kind':<{kinds}}{'filters':>8}  {'min size':>8}  note")
    for r in rows:
        note = (
            f"called {r.calls}x per pass: name the layer before it"
            if r.calls > 1
            else (
                "not reached (its parent may use its weights without calling it)"
                if r.calls == 0
                else (token_note(r.tokens) if r.tokens is not None else "")
            )
        )
        smallest = f"{r.min_size:>5} px" if r.min_size else "    -   "
        filters = r.filters if r.filters is not None else "-"
        print_fn(f"{r.path:<{width}}{r.kind:<{kinds}}{filters:>8}  {smallest:>8}  {note}".rstrip())
    convs = [r for r in rows if r.kind == "Conv2d"]
    print_fn(
        f"{len(rows)} modules, {len(convs)} Conv2d layers with {sum(r.filters or 0 for r in convs):,} filters. "
        "pre_relu takes the input of the activation after a layer (see docs/networks.md)."
    )
    fixed = fixed_input_size(model)
    token_rows = [r for r in rows if r.tokens is not None]
    if fixed is not None:
        print_fn(f"input: {fixed}x{fixed} px only (the model's fixed input size; give --size {fixed}).")
    if token_rows:
        print_fn(
            f"{len(token_rows)} token layers (N, T, C): a channel is averaged over the patch tokens "
            "(--tokens cls: the class token; all: every token)."
        )
