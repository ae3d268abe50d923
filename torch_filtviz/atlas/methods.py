"""The rendering methods an atlas can show, by name: each turns (layer, filters, parameters) into pictures.

A method is registered in :data:`METHODS` with the parameters that decide its pictures
(``settings``: a rerun with equal settings skips a filter; speed-only options such as the batch
size or the device are not part of them) and a ``render`` function returning an object with
``images`` (F, H, W, 3) uint8, ``losses`` (F, steps + 1), ``snapshots`` {step: (F, H, W, 3) raw
pixels}, ``dead`` (F,), ``seconds``, ``device`` and ``params`` — what :class:`FilterResults` holds.
Several methods can be rendered into one atlas; the layer page then offers a method switch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from filtviz_core.errors import FiltvizError


@dataclass(frozen=True)
class Method:
    name: str
    settings_keys: tuple[str, ...]  # the parameters that decide the pictures
    render: Callable[[nn.Module, str, Sequence[int], Mapping[str, Any]], Any]

    def settings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {k: params.get(k) for k in self.settings_keys}


def _render_pixel(model: nn.Module, layer: str, filters: Sequence[int], params: Mapping[str, Any]):
    from torch_filtviz.ascent import visualize_filters

    return visualize_filters(model, layer, list(filters), **params)


PIXEL = Method("pixel", ("steps", "size", "lr", "seed", "snapshots", "objective", "clip", "precision"), _render_pixel)
METHODS: dict[str, Method] = {PIXEL.name: PIXEL}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise FiltvizError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]
