"""``filtviz layers`` for any network: every module you can target, with its kind, filters and smallest input.

Filter counts come from one traced forward pass (shapes only, on a "meta" copy of the model);
the smallest input from :func:`torch_filtviz.probe.smallest_sizes`. Paths are the wrapped
network's own (``layer4.1.conv2``), as the other commands take them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from torch_filtviz.probe import smallest_sizes
from torch_filtviz.targets import any_trace, channel_count, display_path, value_channel_dim
from torch_filtviz.trace import Op


@dataclass
class LayerRow:
    """One targetable module: its path, class, filters (channels of its output), smallest input, calls per pass."""

    path: str
    kind: str
    filters: int | None
    min_size: int | None
    calls: int


def layer_rows(model: nn.Module, kind: str = "all") -> list[LayerRow]:
    """The modules of ``model``'s network in definition order, as ``print(model)`` shows them
    (``kind="conv"``: Conv2d only)."""
    trace = any_trace(model)
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
        filters = None
        if found is not None and found.shape and len(found.shape) >= 2:
            filters = channel_count(found.shape, value_channel_dim(trace, found.output, found.shape))
        rows.append(
            LayerRow(
                display_path(model, path), type(modules[path]).__name__, filters, sizes.get(path), calls.get(path, 0)
            )
        )
    return rows


def print_layers(model: nn.Module, kind: str = "all", print_fn: Callable[[str], object] = print) -> None:
    rows = layer_rows(model, kind)
    width = max([len(r.path) for r in rows] + [6]) + 2
    print_fn(f"{'module':<{width}}{'kind':<24}{'filters':>8}  {'min size':>8}  note")
    for r in rows:
        note = (
            f"called {r.calls}x per pass: name the layer before it"
            if r.calls > 1
            else ("not reached" if r.calls == 0 else "")
        )
        size = f"{r.min_size:>5} px" if r.min_size else "    -   "
        filters = r.filters if r.filters is not None else "-"
        print_fn(f"{r.path:<{width}}{r.kind:<24}{filters:>8}  {size:>8}  {note}".rstrip())
    convs = [r for r in rows if r.kind == "Conv2d"]
    print_fn(
        f"{len(rows)} modules, {len(convs)} Conv2d layers with {sum(r.filters or 0 for r in convs):,} filters. "
        "pre_relu takes the input of the activation after a layer (see docs/networks.md)."
    )
