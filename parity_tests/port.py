"""Validate a Keras -> PyTorch port: ``python -m parity_tests.port``.

    python -m parity_tests.port --keras MODEL.keras --torch package.module:build \\
        [--transfer-weights] [--map map.json|auto] [--inputs photos|noise|FILE.npy] [--gradients] \\
        [--ascent LAYER:FILTERS [--method pixel|fourier] [--steps N] [--size PX]] --out DIR

Loads the Keras model and the torch module (``build`` is called without arguments; a module
instance is taken as it is), optionally carries the Keras weights into the module
(:mod:`parity_tests.port_weights`), maps the layers (:mod:`parity_tests.port_map`, printed),
runs both in inference mode on the same inputs and checks the activations of every mapped layer;
with ``--gradients`` also the input gradient of a channel objective per layer (the mean of one
channel over the interior of its map, for a few channels); with ``--ascent LAYER:FILTERS`` also
runs the gradient ascent of those filters in both frameworks from the same start and compares the
loss histories against the noise floor (:mod:`parity_tests.port_ascent`). Writes ``report.json``,
``report.md`` and ``activations.png`` (and ``ascent.json``, ``ascent.png``) to ``--out``.

Exit status: 0 when every check is within its bound; 1 when one is not — the first layer that
diverges, in the Keras model's order, is named; 2 for bad input (one line on stderr).

Input conventions: the inputs are NHWC arrays in the Keras model's own input space; the torch
module receives the same array transposed to NCHW (other ranks as they are). ``photos`` are
matplotlib's two bundled photos and their mirror images, 0-255 RGB, resized to the model's
input size (``--size`` when the Keras input leaves it open); ``noise`` is seeded uniform noise
over the same range; ``FILE.npy`` is your own batch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core.cli_common import run_guarded
from filtviz_core.errors import FiltvizError
from parity_tests.checks import (
    ACTIVATION_RTOL,
    FIXED_NOTE,
    STAT_RTOL,
    Check,
    Report,
    check_activations,
    check_gradients,
    fmt,
)
from parity_tests.metrics import relative_max_diff
from parity_tests.port_map import LayerPair

PROG = "python -m parity_tests.port"
DEFAULT_SIZE = 64  # px, for Keras models whose input size is left open
NOISE_BATCH = 4
GRADIENT_CHANNELS = 3  # per layer: first, middle and last channel
OBJECTIVE_RTOL = 1e-5
PHOTO_FILES = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")  # matplotlib's sample photos


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other bad input
        raise FiltvizError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--keras", required=True, metavar="MODEL", help="the Keras model: a .keras, .h5 or .hdf5 file (Keras 3 or 2)"
    )
    p.add_argument(
        "--torch",
        required=True,
        metavar="MODULE:BUILD",
        help="the port: package.module:build, a function (or class) called without arguments, or an nn.Module instance",
    )
    p.add_argument(
        "--transfer-weights",
        action="store_true",
        help="carry the Keras weights into the torch module first (Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, "
        "SeparableConv2D, Dense, BatchNormalization, LayerNormalization)",
    )
    p.add_argument(
        "--map",
        default="auto",
        metavar="map.json|auto",
        help='layer map: a JSON object {"keras_layer": "torch.module.path"} or auto (layers in graph order '
        "paired with modules in call order by kind and output shape; default)",
    )
    p.add_argument(
        "--inputs",
        default="photos",
        metavar="photos|noise|FILE.npy",
        help="what both models see: photos (default), noise, or an .npy batch in the Keras layout",
    )
    p.add_argument(
        "--gradients",
        action="store_true",
        help="also compare the input gradient of a channel objective at every mapped layer",
    )
    p.add_argument(
        "--ascent",
        default=None,
        metavar="LAYER:FILTERS",
        help="also run the gradient ascent of these filters of a mapped Keras layer in both frameworks from the "
        "same start, e.g. sep1:0-3, and compare the loss histories against the noise floor",
    )
    p.add_argument("--method", choices=("pixel", "fourier"), default="pixel", help="--ascent's method (default pixel)")
    p.add_argument("--steps", type=int, default=None, help="--ascent's steps (default: the method's own)")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder (created)")
    p.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        help=f"image side in px when the Keras input size is open, and --ascent's picture side (default "
        f"{DEFAULT_SIZE}; with a fixed Keras input size, that size)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the noise inputs (default 0)")
    p.add_argument(
        "--rtol",
        type=float,
        default=ACTIVATION_RTOL,
        help=f"activation bound: max abs diff / max abs activation (default {ACTIVATION_RTOL:g}); deeper "
        "networks and larger inputs accumulate more float32 round-off and may need more",
    )
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    keras_path = Path(args.keras)
    if keras_path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise FiltvizError(f"--keras {args.keras}: expected a .keras, .h5 or .hdf5 model file")
    if not keras_path.is_file():
        raise FiltvizError(f"--keras {args.keras}: no such file")
    if args.torch.count(":") != 1 or not all(args.torch.split(":")):
        raise FiltvizError(f"--torch {args.torch!r}: expected package.module:build")
    if args.inputs not in ("photos", "noise"):
        if not args.inputs.endswith(".npy"):
            raise FiltvizError(f"--inputs {args.inputs!r}: valid: photos, noise, or a FILE.npy")
        if not Path(args.inputs).is_file():
            raise FiltvizError(f"--inputs {args.inputs}: no such file")
    if args.map != "auto" and not Path(args.map).is_file():
        raise FiltvizError(f"--map {args.map}: no such file (use a JSON file or auto)")
    if args.size < 1:
        raise FiltvizError(f"--size must be at least 1 px, got {args.size}")
    if args.seed < 0:
        raise FiltvizError(f"--seed must be >= 0, got {args.seed}")
    if args.ascent is not None:
        from parity_tests.port_ascent import parse_spec

        parse_spec(args.ascent)
    if args.steps is not None and args.steps < 1:
        raise FiltvizError(f"--steps must be at least 1, got {args.steps}")
    if not (np.isfinite(args.rtol) and 0 < args.rtol < 1):
        raise FiltvizError(f"--rtol must be a number between 0 and 1, got {args.rtol}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FiltvizError(f"--out {out} exists and is not a folder")
    return args


# --- loading ---------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_keras(path: str | os.PathLike[str]) -> Any:
    """A Keras model file (.keras, or legacy .h5), without its training configuration."""
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds for unreadable files
        raise FiltvizError(f"--keras {path}: cannot load the model ({_first_line(exc)})") from None
    if not hasattr(model, "layers") or not getattr(model, "inputs", None):
        raise FiltvizError(
            f"--keras {path}: not a model with a defined input (save a built Functional or Sequential model)"
        )
    if len(model.inputs) != 1:
        raise FiltvizError(
            f"--keras {path}: the model has {len(model.inputs)} inputs; the port command compares single-input models"
        )
    return model


def load_torch(spec: str) -> Any:
    """``package.module:build`` -> an nn.Module (``build()`` if callable, else the object itself)."""
    from torch import nn

    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FiltvizError(f"--torch {spec}: cannot import {module_name} ({_first_line(exc)})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FiltvizError(f"--torch {spec}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, nn.Module) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001 - the user's build() may raise anything
            raise FiltvizError(f"--torch {spec}: {attr}() failed ({_first_line(exc)})") from None
    if not isinstance(obj, nn.Module):
        raise FiltvizError(f"--torch {spec}: {attr} gave a {type(obj).__name__}, not a torch.nn.Module")
    return obj


# --- inputs ----------------------------------------------------------------------------------------


def _input_shape(keras_model: Any, size: int) -> tuple[int, ...]:
    shape = keras_model.inputs[0].shape
    return tuple(size if d is None else int(d) for d in shape[1:])


def photos(shape: tuple[int, ...]) -> np.ndarray:
    """matplotlib's sample photos and their mirror images, (4, H, W, C) float32, 0-255."""
    from matplotlib import cbook

    from filtviz_core.images import load_image

    if len(shape) != 3 or shape[2] not in (1, 3):
        raise FiltvizError(
            f"--inputs photos needs an image model (H, W, 1 or 3 channels); this Keras model takes "
            f"{shape}: use --inputs noise or FILE.npy"
        )
    height, width, channels = shape
    images = []
    for name in PHOTO_FILES:
        img = load_image(cbook.get_sample_data(name, asfileobj=False), size=(height, width), fit="stretch").astype(
            np.float32
        )
        if channels == 1:
            img = img @ np.array([[0.299], [0.587], [0.114]], np.float32)
        images += [img, img[:, ::-1]]
    return np.ascontiguousarray(np.stack(images), dtype=np.float32)


def make_inputs(kind: str, keras_model: Any, size: int, seed: int) -> tuple[str, np.ndarray]:
    """(label, batch) in the Keras layout for ``--inputs``."""
    shape = _input_shape(keras_model, size)
    if kind == "photos":
        return "photos", photos(shape)
    if kind == "noise":
        return "noise", np.random.default_rng(seed).uniform(0, 255, (NOISE_BATCH, *shape)).astype(np.float32)
    try:
        arr = np.load(kind, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FiltvizError(f"--inputs {kind}: not a readable .npy array ({_first_line(exc)})") from None
    if arr.ndim == len(shape):
        arr = arr[None]
    fixed = [(i, d) for i, d in enumerate(keras_model.inputs[0].shape[1:]) if d is not None]
    if arr.ndim != len(shape) + 1 or any(arr.shape[i + 1] != d for i, d in fixed):
        want = "(N, " + ", ".join("?" if d is None else str(d) for d in keras_model.inputs[0].shape[1:]) + ")"
        raise FiltvizError(f"--inputs {kind}: shape {arr.shape} does not fit the Keras input {want}")
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise FiltvizError(f"--inputs {kind}: needs finite numbers")
    return Path(kind).stem, np.ascontiguousarray(arr, dtype=np.float32)


# --- the comparison --------------------------------------------------------------------------------


@dataclass
class PortComparison:
    """The outcome: checks in the Keras model's layer order, per-layer statistics for the figure."""

    report: Report
    by_layer: dict[str, list[Check]]
    stats: dict[str, dict[str, float]] = field(default_factory=dict)

    def first_diverging(self) -> str | None:
        for name, checks in self.by_layer.items():
            if any(not c.passed for c in checks):
                return name
        return None


def spread(count: int, n: int = GRADIENT_CHANNELS) -> list[int]:
    """Up to ``n`` channel indices spread over ``count`` (first, middle, last)."""
    return sorted({round(i * (count - 1) / max(1, n - 1)) for i in range(min(n, count))})


def compare_port(
    keras_model: Any,
    torch_model: Any,
    pairs: list[LayerPair],
    label: str,
    inputs: np.ndarray,
    *,
    gradients: bool = False,
    rtol: float = ACTIVATION_RTOL,
) -> PortComparison:
    """Activations (and with ``gradients`` the channel objectives' input gradients) of every pair;
    ``rtol`` bounds the activations' max difference and channel statistics."""
    from parity_tests.runners import (
        keras_channel_gradients,
        keras_layer_values,
        to_nchw,
        to_nhwc,
        torch_activations,
        torch_channel_gradients,
    )

    before = [p.keras for p in pairs if p.before_activation]
    k_vals = keras_layer_values(keras_model, [p.keras for p in pairs], inputs, before)
    t_vals = torch_activations(torch_model, [p.torch for p in pairs], to_nchw(inputs))
    by_layer: dict[str, list[Check]] = {}
    stats: dict[str, dict[str, float]] = {}
    for p in pairs:
        k, t = k_vals[p.keras], to_nhwc(t_vals[p.torch])
        by_layer[p.keras] = check_activations(f"{label}/{p.keras}", k, t, rtol=rtol, stat_rtol=max(rtol, STAT_RTOL))
        stats[p.keras] = {
            "ref_mean": float(np.mean(np.abs(k))),
            "other_mean": float(np.mean(np.abs(t))),
            "ref_max": float(np.max(np.abs(k))) if k.size else 0.0,
            "other_max": float(np.max(np.abs(t))) if t.size else 0.0,
            "rel_max_diff": relative_max_diff(k, t),
        }
    if gradients:
        for p in pairs:
            if by_layer[p.keras][0].value == float("inf"):
                continue  # shapes differ: nothing to differentiate like for like
            count = k_vals[p.keras].shape[-1]
            channels = spread(count)
            images = np.repeat(inputs[:1], len(channels), axis=0)
            kv, kg = keras_channel_gradients(keras_model, p.keras, channels, images, bool(p.before_activation))
            tv, tg = torch_channel_gradients(torch_model, p.torch, channels, to_nchw(images))
            by_layer[p.keras] += check_gradients(p.keras, kg, to_nhwc(tg))
            by_layer[p.keras].append(
                Check(
                    f"objective/{p.keras}/rel_max_diff",
                    relative_max_diff(kv, tv),
                    OBJECTIVE_RTOL,
                    "<=",
                    "objective",
                    f"{FIXED_NOTE}; channels {', '.join(map(str, channels))}",
                )
            )
    report = Report([c for checks in by_layer.values() for c in checks])
    return PortComparison(report, by_layer, stats)


# --- the report folder -----------------------------------------------------------------------------


def write_report(
    out: Path, doc: dict[str, Any], comparison: PortComparison, pairs: list[LayerPair], ascent: Any = None
) -> list[str]:
    from filtviz_core import atomic
    from parity_tests import figures

    figs = {}
    if comparison.stats:
        figs["activations.png"] = figures.plot_activation_stats(
            comparison.stats, doc["config"]["rtol"], title=f"Activations per mapped layer ({doc['inputs']['label']})"
        )
    if ascent is not None:
        from parity_tests.port_ascent import plot_curves

        figs["ascent.png"] = plot_curves(ascent)
        atomic.write_json(out / "ascent.json", ascent.to_dict())
    for name, fig in figs.items():
        atomic.save_figure(fig, out / name)
    doc = {**doc, "figures": sorted(figs)}
    atomic.write_json(out / "report.json", doc)
    atomic.write_bytes(out / "report.md", markdown(doc, comparison, pairs).encode())
    return sorted(figs)


def markdown(doc: dict[str, Any], comparison: PortComparison, pairs: list[LayerPair]) -> str:
    report = comparison.report
    first = doc["first_diverging_layer"]
    verdict = (
        "**PASS**: every check within its bound"
        if report.passed
        else (
            f"**FAIL**: {len(report.failures())} of {len(report.checks)} checks out of bounds; first diverging layer: "
            f"**{first}**"
        )
    )
    lines = [
        "# Port parity report: Keras vs PyTorch",
        "",
        verdict,
        "",
        f"Keras model `{doc['config']['keras']}`; torch `{doc['config']['torch']}`"
        + ("; Keras weights transferred" if doc["config"]["transfer_weights"] else "")
        + f"; inputs {doc['inputs']['label']} {tuple(doc['inputs']['shape'])}.",
        ", ".join(f"{k} {v}" for k, v in doc["versions"].items()) + ".",
        "",
        (
            "Keras is the reference: relative differences are measured against its values. A Keras layer with a "
            'fused activation (e.g. `Conv2D(activation="relu")`) is compared before that activation, with the '
            "torch module's output, unless the torch module is itself the activation."
        ),
        "",
        f"## Layer map ({doc['map_source']})",
        "",
        "| keras | torch | kind | compared at | result |",
        "|---|---|---|---|:---:|",
    ]
    for p in pairs:
        ok = all(c.passed for c in comparison.by_layer.get(p.keras, []))
        lines.append(f"| {p.keras} | {p.torch} | {p.keras_kind} | {p.compared_at} | {'ok' if ok else '**NO**'} |")
    if doc.get("transferred"):
        lines += ["", "## Weights transferred", "", "```", *doc["transferred"], "```"]
    if report.failures():
        lines += ["", "## Failed checks", "", Report(report.failures()).to_markdown()]
    lines += ["", "## All checks", "", report.to_markdown(), "", "## Figures", ""]
    lines += [f"![{f}]({f})" for f in doc.get("figures", [])] + [""]
    return "\n".join(lines)


# --- the command -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import keras
    import torch

    from parity_tests.port_map import build_map, format_map
    from parity_tests.port_weights import transfer_weights
    from parity_tests.runners import to_nchw

    started = time.perf_counter()
    out = Path(args.out)
    keras_model = load_keras(args.keras)
    torch_model = load_torch(args.torch)
    label, inputs = make_inputs(args.inputs, keras_model, args.size, args.seed)
    try:
        pairs = build_map(keras_model, torch_model, args.map, to_nchw(inputs[:1]))
    except RuntimeError as exc:  # the auto map runs the torch model once to learn its call order
        print(f"FAIL: the torch model cannot run on the inputs {inputs.shape[1:]} ({_first_line(exc)})")
        return 1
    how = "auto, by graph order, kind and output shape" if args.map == "auto" else f"from {args.map}"
    print(format_map(pairs, how))
    if args.ascent is not None:  # before any long work: the layer must be mapped
        from parity_tests.port_ascent import check_layer

        check_layer(args.ascent, pairs)
    transferred = transfer_weights(keras_model, torch_model, pairs) if args.transfer_weights else []
    if transferred:
        print("weights transferred (Keras -> torch):\n" + "\n".join(transferred))
    try:
        comparison = compare_port(
            keras_model, torch_model, pairs, label, inputs, gradients=args.gradients, rtol=args.rtol
        )
    except RuntimeError as exc:  # a port whose shapes do not fit its own layers
        print(f"FAIL: the torch model cannot run on the inputs ({_first_line(exc)})")
        return 1
    except FiltvizError:
        raise
    except (ValueError, AttributeError) as exc:  # a mapped torch module never called, a shared Keras layer
        raise FiltvizError(f"the layer map cannot be compared: {_first_line(exc)}") from None
    ascent = None
    if args.ascent is not None:
        from parity_tests.checks import Report
        from parity_tests.port_ascent import run_ascent

        fixed = keras_model.inputs[0].shape[1]
        ascent = run_ascent(
            keras_model,
            torch_model,
            pairs,
            args.ascent,
            method=args.method,
            steps=args.steps,
            size=int(fixed) if fixed is not None and args.method == "pixel" else args.size,
            seed=args.seed,
        )
        comparison.by_layer.setdefault(ascent.layer, [])
        comparison.by_layer[ascent.layer] += ascent.checks
        comparison.report = Report(comparison.report.checks + ascent.checks)
    report = comparison.report
    first = comparison.first_diverging()
    doc = {
        "passed": report.passed,
        "first_diverging_layer": first,
        "config": {
            "keras": str(args.keras),
            "torch": args.torch,
            "transfer_weights": bool(args.transfer_weights),
            "map": args.map,
            "inputs": args.inputs,
            "gradients": bool(args.gradients),
            "size": args.size,
            "seed": args.seed,
            "rtol": args.rtol,
            "ascent": args.ascent,
            "method": args.method,
            "steps": args.steps,
        },
        "map_source": how,
        "map": [p.to_dict() for p in pairs],
        "transferred": transferred,
        "inputs": {"label": label, "shape": list(inputs.shape)},
        "versions": {
            "tensorflow": __import__("tensorflow").__version__,
            "keras": keras.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "seconds": round(time.perf_counter() - started, 2),
        **report.to_dict(),
    }
    if ascent is not None:
        doc["ascent"] = {k: v for k, v in ascent.to_dict().items() if not k.endswith("losses")}
    write_report(out, doc, comparison, pairs, ascent)
    if report.passed:
        print(f"PASS: {report.summary()}; {len(pairs)} layers agree; report in {out}/")
        return 0
    pair = next(p for p in pairs if p.keras == first)
    worst = next(c for c in comparison.by_layer[first] if not c.passed)  # activations come first
    print(
        f"FAIL: first diverging layer: {first} (torch {pair.torch}, compared at {pair.compared_at}): "
        f"{worst.name} = {fmt(worst.value)} (bound {worst.op} {fmt(worst.bound)}); "
        f"{len(report.failures())} of {len(report.checks)} checks failed; report in {out}/"
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_guarded(PROG, lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
