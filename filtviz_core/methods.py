"""The methods a filter picture can be made with, and every default of each, in one place.

A method is a named combination of a parameterization (what is optimized), transforms (what the
network sees of it) and an optimizer, run by each framework's one optimization loop
(``torch_filtviz/loop.py``, ``tf_reference/loop.py``). ``pixel`` is the canonical ascent of SPEC.md
§1-§14 (its numbers never change); ``fourier`` is SPEC.md §15 (a Lucid-style decorrelated spectrum,
random transforms at every step, Adam); ``maco`` is SPEC.md §17 (Fel et al. 2023 as Xplique 2.0.2
defines it: the phase of a spectrum under a fixed natural-image magnitude, noisy random crops, NAdam). Each is
one entry of :data:`REGISTRY` (defaults, options type,
display rule, the parameters that decide its pictures); the API, both command lines, the atlas and the
benchmarks read it, so a default changed here changes everywhere (API, command lines, run.json).
Each framework assembles a method's parts in its own ``method_parts.py``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from filtviz_core import algorithm as alg
from filtviz_core.errors import FiltvizError
from filtviz_core.options import MACO_OPTION_NAMES, OPTION_NAMES, FourierOptions, MacoOptions, MethodOptions

__all__ = [
    "DEFAULT_METHOD",
    "MACO_OPTION_NAMES",
    "METHODS",
    "OPTION_NAMES",
    "REGISTRY",
    "FourierOptions",
    "MacoOptions",
    "Method",
    "MethodOptions",
]  # the options types are re-exported from filtviz_core.options

DEFAULT_METHOD = "pixel"

# The fourier method's schedule (SPEC.md §15.6). Lucid's Adam learning rate; the step count was
# chosen with scripts/fourier_check.py (see SPEC.md §15.9 for the measurement and the reason).
FOURIER_STEPS = 128
FOURIER_LR = 0.05
# The MACO method's schedule (SPEC.md §17): Xplique 2.0.2's defaults, nb_steps=256 and Nadam(1.0).
MACO_STEPS = 256
MACO_LR = 1.0


# The call parameters that decide a method's pictures (an atlas rerun with equal values skips a filter;
# speed-only parameters such as the batch size or the device are not among them).
_COMMON_SETTINGS = ("steps", "size", "lr", "seed", "snapshots", "objective", "precision")


@dataclass(frozen=True)
class Method:
    """One registered method: its defaults, its options type (None: it takes none), how its raw
    pictures are shown, and the parameters that decide its pictures."""

    name: str
    steps: int
    lr: float
    options: type | None
    display: Callable[[np.ndarray], np.ndarray]
    settings: tuple[str, ...]
    spec: str  # the SPEC.md sections that state it
    pixel_options: bool = False  # takes the pixel method's own init and clip


def _fourier_display(raw: np.ndarray) -> np.ndarray:
    from filtviz_core.fourier import to_uint8

    return to_uint8(raw)


REGISTRY: dict[str, Method] = {
    "pixel": Method(
        "pixel",
        alg.DEFAULT_STEPS,
        alg.DEFAULT_LR,
        None,
        alg.deprocess,
        _COMMON_SETTINGS + ("clip",),
        "§1-§14",
        pixel_options=True,
    ),
    "fourier": Method(
        "fourier",
        FOURIER_STEPS,
        FOURIER_LR,
        FourierOptions,
        _fourier_display,
        _COMMON_SETTINGS + ("method_options",),
        "§15",
    ),
    "maco": Method(
        "maco", MACO_STEPS, MACO_LR, MacoOptions, _fourier_display, _COMMON_SETTINGS + ("method_options",), "§17"
    ),
}
METHODS = tuple(REGISTRY)


def check_method(method: str) -> str:
    if method not in REGISTRY:
        raise FiltvizError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return method


def get(method: str) -> Method:
    """The registry entry of ``method`` (one line naming the valid ones when unknown)."""
    return REGISTRY[check_method(method)]


def default_steps(method: str) -> int:
    return get(method).steps


def default_lr(method: str) -> float:
    return get(method).lr


def resolve(
    method: str, steps: int | None, lr: float | None, options: Mapping[str, Any] | MethodOptions | None = None
) -> tuple[int, float, Any]:
    """(steps, lr, options) of a call: ``None`` takes the method's default; everything is checked.

    ``options`` overrides fourier parameters by name (a mapping or a :class:`FourierOptions`); the
    pixel method takes none.
    """
    entry = get(method)
    steps = entry.steps if steps is None else steps
    lr = entry.lr if lr is None else lr
    alg.check_steps(steps, lr)
    if entry.options is None:
        if options:
            takers = [m.name for m in REGISTRY.values() if m.options is not None]
            given = options.as_params() if isinstance(options, (FourierOptions, MacoOptions)) else dict(options)
            raise FiltvizError(
                f"the {method} method takes no method options, got {sorted(given)}; "
                f"they belong to method={' or '.join(repr(t) for t in takers)}"
            )
        return int(steps), float(lr), None
    if entry.options is MacoOptions:
        return int(steps), float(lr), maco_options(options)
    if isinstance(options, MacoOptions):
        raise FiltvizError(f"MacoOptions belong to method='maco', not {method!r}")
    return int(steps), float(lr), fourier_options(options)


def maco_options(options: Mapping[str, Any] | MethodOptions | None = None) -> MacoOptions:
    """A checked :class:`MacoOptions` from overrides by name (unknown names are refused)."""
    if isinstance(options, MacoOptions):
        given = options.as_params()
    elif isinstance(options, FourierOptions):
        raise FiltvizError("FourierOptions belong to method='fourier', not 'maco'")
    else:
        given = dict(options or {})
    unknown = sorted(set(given) - set(MACO_OPTION_NAMES))
    if unknown:
        raise FiltvizError(f"unknown maco option {unknown[0]!r}; valid: {', '.join(MACO_OPTION_NAMES)}")
    if "box" in given:
        try:
            lo, hi = (float(v) for v in given["box"])
        except (TypeError, ValueError):
            raise FiltvizError(f"maco option box must be a (first, last) pair, got {given['box']!r}") from None
        given["box"] = (lo, hi)
    if given.get("magnitude") is not None:
        given["magnitude"] = str(given["magnitude"])
    o = dataclasses.replace(MacoOptions(), **given)
    crops = o.crops
    if isinstance(crops, bool) or not isinstance(crops, int) or crops < 1:
        raise FiltvizError(f"maco option crops must be a whole number >= 1, got {crops!r}")
    for name in ("noise", "box_std", "center_std", "eps", "fill"):
        value = getattr(o, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or (value < 0 if name != "eps" else value <= 0)
        ):
            raise FiltvizError(
                f"maco option {name} must be a finite number {'> 0' if name == 'eps' else '>= 0'}, got {value!r}"
            )
    if not all(math.isfinite(v) and 0 < v <= 1 for v in o.box):
        raise FiltvizError(f"maco option box must hold two shares of the picture in (0, 1], got {o.box!r}")
    for name in ("beta1", "beta2"):
        value = getattr(o, name)
        if not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise FiltvizError(f"maco option {name} must lie in [0, 1), got {value!r}")
    if o.magnitude is not None and not os.path.isdir(o.magnitude):
        raise FiltvizError(f"maco option magnitude must be a folder of photos, got {o.magnitude!r}")
    return o


def seen_size(height: int, width: int, options: MethodOptions | None) -> tuple[int, int]:
    """What the network sees: the picture's size (pixel, maco: crops resized to it) or the fourier method's
    transformed canvas (SPEC §15.3)."""
    if options is None or isinstance(options, MacoOptions):
        return int(height), int(width)
    from filtviz_core.transforms import output_size

    return output_size(height, width, options)


def fourier_options(options: Mapping[str, Any] | FourierOptions | None = None) -> FourierOptions:
    """A checked :class:`FourierOptions` from overrides by name (unknown names are refused)."""
    if isinstance(options, FourierOptions):
        chosen = dataclasses.replace(options, scale=_pair(options.scale))  # a list would not hash
    else:
        given = dict(options or {})
        unknown = sorted(set(given) - set(OPTION_NAMES))
        if unknown:
            raise FiltvizError(f"unknown fourier option {unknown[0]!r}; valid: {', '.join(OPTION_NAMES)}")
        if "scale" in given:
            given["scale"] = _pair(given["scale"])
        chosen = dataclasses.replace(FourierOptions(), **given)
    _check(chosen)
    return chosen


def _pair(value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise FiltvizError(f"fourier option scale must be a (low, high) pair, got {value!r}") from None
    return lo, hi


def _check(o: FourierOptions) -> None:
    def positive(name: str, allow_zero: bool = False) -> None:
        value = getattr(o, name)
        ok = isinstance(value, (int, float)) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
        if not ok:
            raise FiltvizError(
                f"fourier option {name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}"
            )

    for name in ("init_std", "divisor", "eps"):
        positive(name)
    for name in ("decay", "rotate"):
        positive(name, allow_zero=True)
    for name in ("pad", "jitter", "jitter2"):
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FiltvizError(f"fourier option {name} must be a whole number of pixels >= 0, got {value!r}")
    lo, hi = o.scale
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise FiltvizError(f"fourier option scale must satisfy 0 < low <= high, got {o.scale!r}")
    for name in ("beta1", "beta2"):
        value = getattr(o, name)
        if not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise FiltvizError(f"fourier option {name} must lie in [0, 1), got {value!r}")
    if not (isinstance(o.pad_value, (int, float)) and math.isfinite(o.pad_value)):
        raise FiltvizError(f"fourier option pad_value must be a finite number, got {o.pad_value!r}")
    for name in ("decorrelate", "transforms"):
        if not isinstance(getattr(o, name), bool):
            raise FiltvizError(f"fourier option {name} must be True or False, got {getattr(o, name)!r}")


def run_params(method: str, options: MethodOptions | None) -> dict[str, Any]:
    """What run.json's params add for a method: nothing for pixel (its params are SPEC §14's, as
    before methods existed), ``method`` and every option for fourier."""
    if method == "pixel":
        return {}
    assert options is not None
    return {"method": method, **options.as_params()}


def check_pixel_only(options: MethodOptions | None, *, init_given: bool, clip: bool) -> None:
    """Refuse the pixel method's own options on the fourier and maco methods (one line saying why)."""
    if options is None:
        return
    if isinstance(options, MacoOptions):
        if init_given:
            raise FiltvizError(
                "init applies to the pixel method; the maco method starts from the seeded phases "
                "of filtviz_core.maco.initial_phases"
            )
        if clip:
            raise FiltvizError("clip applies to the pixel method; the maco method's sigmoid keeps pixels in 0-255")
        return
    if init_given:
        raise FiltvizError(
            "init applies to the pixel method; the fourier method starts from the seeded spectra "
            "of filtviz_core.fourier.initial_spectra"
        )
    if clip:
        raise FiltvizError("clip applies to the pixel method; the fourier method's sigmoid keeps pixels in 0-255")


def display(method: str) -> Callable[[np.ndarray], np.ndarray]:
    """Raw pictures -> uint8 as each method shows them: the pixel method's contrast stretch (SPEC §10),
    the fourier picture as it is (SPEC §15.7)."""
    return get(method).display


def check_seen_size(size: int, seen: int, minimum: int, layer: str, options: MethodOptions | None) -> None:
    """The network must see at least ``minimum`` px: the picture itself (pixel), or the fourier method's
    transformed canvas ``size + 2 pad - jitter - jitter2`` (SPEC §15.3), named as such in the error."""
    if options is None or not getattr(options, "transforms", False):
        alg.check_image_size(size, minimum, layer)
    elif seen < minimum:
        raise FiltvizError(
            f"size {size} px shows the network {seen} px (size + 2 pad - jitter - jitter2), too small "
            f"for {layer}: it needs at least {minimum} px"
        )
