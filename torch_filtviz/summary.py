"""A Keras-like ``model.summary()`` for PyTorch models, so the notebook's first table reads the same.

Shapes and parameter counts come from torchinfo's forward pass (not counted by hand here). For a
model with Keras aliases (VGG16 from :func:`torch_filtviz.load_vgg16`), each row is one Keras layer:
``block1_conv1`` gathers the conv ``features.0`` and its ReLU ``features.1`` exactly as Keras'
``Conv2D(activation="relu")`` does, so the rows, shapes and counts match Keras' table. Other models
get one row per leaf module, named by its module path.

Output shapes are printed the Keras way, ``(None, H, W, C)`` (``None`` = the batch), because that
is the table Keras users know; ``shape_style="torch"`` prints PyTorch's ``(N, C, H, W)`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

WIDTHS = (34, 26, 13)  # layer (type) | output shape | param #
SHAPE_STYLES = ("keras", "torch")


@dataclass
class Row:
    """One table row: layer name, module type(s), output shape (batch first), parameters."""

    name: str
    kind: str
    shape: tuple[int, ...]
    params: int


def summary(
    model: nn.Module,
    input_size: Sequence[int] = (3, 224, 224),
    print_fn: Callable[[str], object] | None = print,
    shape_style: str = "keras",
) -> str:
    """The Keras-like table of ``model`` for one input of ``input_size`` (C, H, W), as text.

    Printed through ``print_fn`` (``None``: only returned). Totals are torchinfo's; trainable means
    ``requires_grad`` (``load_vgg16`` freezes its parameters, so they show as non-trainable).
    """
    if shape_style not in SHAPE_STYLES:
        raise ValueError(f"unknown shape_style {shape_style!r}; valid: {', '.join(SHAPE_STYLES)}")
    if len(input_size) == 3:  # a vision transformer takes one size: one line naming it, not torchinfo's traceback
        from torch_filtviz.probe import check_fixed_size

        h, w = int(input_size[1]), int(input_size[2])
        check_fixed_size(model, h, w, h, w, option="--input-size")
    stats, rows = _rows(model, tuple(int(s) for s in input_size))
    text = _render(
        _model_name(model),
        rows,
        int(stats.total_params),
        int(stats.trainable_params),
        tuple(int(s) for s in input_size),
        shape_style,
    )
    if print_fn is not None:
        print_fn(text)
    return text


def _model_name(model: nn.Module) -> str:
    name = getattr(model, "name", None)
    return name if isinstance(name, str) and name else type(model).__name__


def _rows(model: nn.Module, input_size: tuple[int, ...]):
    """torchinfo's statistics and the table rows (leaves grouped under Keras aliases if any)."""
    import torchinfo

    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    # mode="eval": no dropout/batch-norm updates; torchinfo restores the model's own mode afterwards.
    stats = torchinfo.summary(
        model,
        input_size=(1, *input_size),
        depth=1_000,
        device=device,
        mode="eval",
        verbose=0,
        col_names=("output_size", "num_params"),
    )
    from torch_filtviz.targets import display_path

    paths = {id(module): display_path(model, path) for path, module in model.named_modules()}
    leaves = [(paths.get(info.layer_id, info.var_name), info) for info in stats.summary_list if info.is_leaf_layer]
    aliases: dict[str, str] = dict(getattr(model, "aliases", {}) or {})
    by_path = {path: alias for alias, path in aliases.items()}
    rows = [Row("input_layer", "Input", (-1, *input_size), 0)]
    pending: list[tuple[str, Any]] = []  # (path, torchinfo's LayerInfo)
    for path, info in leaves:
        params = 0 if info.is_recursive else max(int(info.num_params), 0)
        if not aliases or path.split(".")[0] == "preprocess":
            rows.append(Row(path, info.class_name, _shape(info.output_size), params))
            continue
        pending.append((path, info))
        if path in by_path:  # an alias closes the group of leaves that lead up to it
            rows.append(_group(by_path[path], pending))
            pending = []
    rows.extend(Row(p, i.class_name, _shape(i.output_size), max(int(i.num_params), 0)) for p, i in pending)
    return stats, rows


def _group(alias: str, members: list[tuple[str, Any]]) -> Row:
    """One Keras layer from its torch leaves: the type of the leaf holding weights (or the last)."""
    params = sum(0 if info.is_recursive else max(int(info.num_params), 0) for _, info in members)
    kinds = [info.class_name for _, info in members]
    weighted = [info.class_name for _, info in members if info.num_params > 0]
    kind = "+".join(kinds) if len(kinds) <= 2 and weighted else (weighted[0] if weighted else kinds[-1])
    return Row(alias, kind, _shape(members[-1][1].output_size), params)


def _shape(size: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(s) for s in size) if size else ()


def _format_shape(shape: tuple[int, ...], style: str) -> str:
    if not shape:
        return "?"
    dims = list(shape[1:])
    if style == "keras" and len(dims) == 3:  # (C, H, W) -> (H, W, C)
        dims = dims[1:] + dims[:1]
    head = "None" if style == "keras" else "N"
    return "(" + ", ".join([head, *map(str, dims)]) + ")"


def _render(name: str, rows: list[Row], total: int, trainable: int, input_size: tuple[int, ...], style: str) -> str:
    w_name, w_shape, w_params = WIDTHS
    width = w_name + w_shape + w_params
    line = [
        f'Model: "{name}"',
        "_" * width,
        f"{'Layer (type)':<{w_name}}{'Output Shape':<{w_shape}}{'Param #':>{w_params}}",
        "=" * width,
    ]
    for row in rows:
        label = f"{row.name} ({row.kind})"
        line.append(f"{label:<{w_name - 1}} {_format_shape(row.shape, style):<{w_shape}}{row.params:>{w_params},}")
    line += [
        "=" * width,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        "_" * width,
    ]
    if style == "keras":
        line.append(f"Input (C, H, W) = {input_size}; shapes printed as Keras does, (batch, H, W, C).")
    return "\n".join(line)
