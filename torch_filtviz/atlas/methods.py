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

from filtviz_core import methods as core_methods
from filtviz_core.errors import FiltvizError


@dataclass(frozen=True)
class Method:
    name: str
    settings_keys: tuple[str, ...]  # the parameters that decide the pictures
    render: Callable[[nn.Module, str, Sequence[int], Mapping[str, Any]], Any]

    def settings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {k: params.get(k) for k in self.settings_keys}


def _ascent(name: str) -> Callable[[nn.Module, str, Sequence[int], Mapping[str, Any]], Any]:
    """A render function running :func:`~torch_filtviz.ascent.visualize_filters` with one method."""

    def render(model: nn.Module, layer: str, filters: Sequence[int], params: Mapping[str, Any]):
        from torch_filtviz.ascent import visualize_filters

        return visualize_filters(model, layer, list(filters), method=name, **params)

    return render


# One atlas method per entry of the method registry (filtviz_core.methods.REGISTRY): registered once.
METHODS: dict[str, Method] = {
    name: Method(name, entry.settings, _ascent(name)) for name, entry in core_methods.REGISTRY.items()
}
PIXEL, FOURIER = METHODS["pixel"], METHODS["fourier"]


def ascent_params(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` without ``method`` and with the method's own default steps and lr filled in, so an
    atlas records (and compares on a rerun) the numbers that made its pictures; checked."""
    params = {k: v for k, v in params.items() if k != "method"}
    if method in core_methods.REGISTRY:
        options = params.get("method_options")
        params["steps"], params["lr"], chosen = core_methods.resolve(
            method, params.get("steps"), params.get("lr"), options
        )
        if chosen is not None:
            core_methods.check_pixel_only(
                chosen, init_given=params.get("init") is not None, clip=bool(params.get("clip"))
            )
            params.pop("clip", None)
            if options:
                params["method_options"] = chosen.as_params()
    return params


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise FiltvizError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]
