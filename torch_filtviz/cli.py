"""The ``filtviz`` command line: a thin layer over the torch_filtviz API.

Each subcommand parses its options, checks the output folder is writable before any long work,
calls the API, writes files (all atomically, via ``filtviz_core``) and prints where they are.
Bad input ends with ONE line on stderr (``filtviz: error: ...``) and exit status 2, never a
traceback; Ctrl-C ends with exit status 130 and leaves no half-written file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from filtviz_core import algorithm as alg
from filtviz_core.cli_common import EXIT_INTERRUPTED, EXIT_USAGE, parse_names, parse_steps, run_guarded
from filtviz_core.errors import FiltvizError

PROG = "filtviz"
NOTEBOOK_MAP_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (raised, printed by :func:`main`) instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FiltvizError(f"{message} (see '{self.prog} --help')")


# --- option groups -------------------------------------------------------------------------------------


def _model_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model")
    g.add_argument("--weights", default="keras",
                   help="keras (verified Keras ImageNet weights, offline), torchvision, random, or a weights file "
                        "(.safetensors, Keras .h5, .onnx); default: keras")
    g.add_argument("--no-verify", dest="verify", action="store_false",
                   help="accept a weights file with VGG16 shapes but not the pinned ImageNet SHA-256 (your own weights)")
    g.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    g.add_argument("--seed", type=int, default=alg.DEFAULT_SEED,
                   help="seed of the starting noise (and of --weights random); default: %(default)s")
    return p


def _ascent_options(size: int = alg.DEFAULT_SIZE) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("gradient ascent")
    g.add_argument("--steps", type=int, default=alg.DEFAULT_STEPS, help="ascent steps; default: %(default)s")
    g.add_argument("--size", type=int, default=size, help="image side in pixels; default: %(default)s")
    g.add_argument("--lr", type=float, default=alg.DEFAULT_LR,
                   help="step length in pixel units (RMS-normalised); default: %(default)s")
    g.add_argument("--snapshots", default=",".join(map(str, alg.DEFAULT_SNAPSHOTS)),
                   help="steps to keep pictures of for the comparison figure, e.g. 10,100 ('' for none); "
                        "default: %(default)s")
    g.add_argument("--objective", choices=alg.OBJECTIVES, default=alg.DEFAULT_OBJECTIVE,
                   help="pre_relu (conv output before the ReLU, no dead filters) or post_relu (the Keras "
                        "layer output, as the original notebook); default: %(default)s")
    g.add_argument("--clip", action="store_true", help="clip the images to 0-255 after every step")
    g.add_argument("--batch-size", type=int, default=None,
                   help="filters optimized together (default: all on CPU, memory-sized on CUDA)")
    g.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32",
                   help="fp32 follows the spec exactly; tf32 (CUDA convs on TF32 tensor cores) and bf16 autocast "
                        "are faster on recent GPUs; default: %(default)s")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory format (default: on for CPU, where it is faster; off elsewhere)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def build_parser() -> argparse.ArgumentParser:
    model, ascent = _model_options(), _ascent_options()
    parser = _Parser(prog=PROG, description="See what the filters of VGG16 respond to (PyTorch, no TensorFlow).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("summary", parents=[model], help="Keras-like table of the layers, shapes and parameters")
    p.add_argument("--input-size", type=int, default=224, help="input side in pixels; default: %(default)s")
    p.add_argument("--shapes", choices=("keras", "torch"), default="keras",
                   help="print shapes as Keras (None, H, W, C) or PyTorch (N, C, H, W); default: keras")
    p.set_defaults(run=cmd_summary)

    p = sub.add_parser("layers", help="the layer names to use, with module paths and filter counts")
    p.set_defaults(run=cmd_layers)

    p = sub.add_parser("maps", parents=[model], help="feature maps of an image at some layers, in one figure")
    p.add_argument("image", nargs="?", default=None, help="image file (default: the sample photo of Grace Hopper)")
    p.add_argument("--layers", default=",".join(NOTEBOOK_MAP_LAYERS), help="comma-separated; default: %(default)s")
    p.add_argument("--image-size", type=int, default=224, help="resize the image to this square first (0: keep)")
    p.add_argument("--channels", type=int, default=8, help="maps shown per layer; default: %(default)s")
    p.add_argument("--out", default="outputs/maps", help="output folder; default: %(default)s")
    p.set_defaults(run=cmd_maps)

    p = sub.add_parser("filters", parents=[model, ascent], help="the pictures that most excite filters of a layer")
    p.add_argument("layer", help="layer name (e.g. block3_conv1; see 'filtviz layers') or module path")
    p.add_argument("--filters", default="0-15", help="indices and ranges, e.g. 0-63 or 0,5,9-12; default: %(default)s")
    p.add_argument("--out", default=None, help="output folder; default: outputs/filters/LAYER")
    p.set_defaults(run=cmd_filters)

    p = sub.add_parser("atlas", parents=[model, _ascent_options(size=64)],
                       help="the first filters of every conv layer: a grid per layer and an index")
    p.add_argument("--per-layer", type=int, default=8, help="filters per layer (from 0); default: %(default)s")
    p.add_argument("--layers", default=None, help="comma-separated subset (default: every conv layer)")
    p.add_argument("--out", default="outputs/atlas", help="output folder; default: %(default)s")
    p.set_defaults(run=cmd_atlas)

    p = sub.add_parser("weights", help="where the weights come from, their SHA-256, and whether they verify")
    p.add_argument("--weights", default="keras", help="keras or a weights file; default: keras")
    p.add_argument("--verify", action="store_true", help="hash the file again and compare with the pinned SHA-256")
    p.set_defaults(run=cmd_weights)
    return parser


# --- helpers -------------------------------------------------------------------------------------------


def _load(args: argparse.Namespace):
    from torch_filtviz.models import load_vgg16

    return load_vgg16(args.weights, device=args.device, seed=args.seed, verify=args.verify)


def _ascent_kwargs(args: argparse.Namespace) -> dict:
    if args.size < 1:
        raise FiltvizError(f"--size must be at least 1 px, got {args.size}")
    return dict(steps=args.steps, size=args.size, lr=args.lr, seed=args.seed, snapshots=parse_steps(args.snapshots),
                objective=args.objective, clip=args.clip, batch_size=args.batch_size, device=args.device,
                precision=args.precision, channels_last=args.channels_last, progress=args.progress)


def write_results(results, out: str | Path) -> dict[str, Path]:
    """Per-filter PNGs, the grid, the iteration comparison and run.json of one run (atomic writes)."""
    from filtviz_core.outputs import write_filter_outputs

    return write_filter_outputs(out, layer=results.layer, filters=results.filters, images=results.images,
                                losses=results.losses, snapshots=results.snapshots, record=results.run_record())


def _report(results, written: dict[str, Path]) -> None:
    dead = int(sum(results.dead))
    print(f"{results.layer}: {len(results.filters)} filters, {results.params['steps']} steps at "
          f"{results.params['size']} px in {results.seconds:.1f} s on {results.device}"
          + (f"; {dead} dead (zero gradient at the start)" if dead else ""))
    labels = {"grid": "grid", "iterations": "iterations", "filters": "filter PNGs", "run": "run record"}
    for key, path in written.items():
        print(f"  {labels.get(key, key):<12} {path}{'/' if key == 'filters' else ''}")


# --- subcommands ---------------------------------------------------------------------------------------


def cmd_summary(args: argparse.Namespace) -> int:
    from torch_filtviz.summary import summary

    if args.input_size < 1:
        raise FiltvizError(f"--input-size must be at least 1 px, got {args.input_size}")
    model = _load(args)
    from filtviz_core.vgg16 import MIN_IMAGE_SIZE

    if args.input_size < MIN_IMAGE_SIZE:
        raise FiltvizError(f"--input-size {args.input_size} is too small: VGG16 needs at least {MIN_IMAGE_SIZE} px")
    summary(model, (3, args.input_size, args.input_size), shape_style=args.shapes)
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    from filtviz_core import vgg16 as spec
    from torch_filtviz.models import vgg16_aliases

    aliases = vgg16_aliases()  # no weights needed to list the layers
    print(f"{'layer':<14}{'module':<14}{'filters':>8}  {'min size':>8}")
    for name, path in aliases.items():
        filters = spec.FILTER_COUNTS.get(name, "-")
        print(f"{name:<14}{path:<14}{filters:>8}  {spec.min_size_for(name):>5} px")
    print(f"{len(spec.CONV_NAMES)} conv layers, {spec.TOTAL_FILTERS:,} filters. A conv name is its post-ReLU Keras "
          "output; its conv module (e.g. features.0) is the pre-activation.")
    return 0


def cmd_maps(args: argparse.Namespace) -> int:
    from filtviz_core import atomic, images
    from filtviz_core.outputs import check_writable
    from torch_filtviz.maps import feature_maps
    from torch_filtviz.plots import plot_feature_maps

    layers = parse_names(args.layers)
    if args.channels < 1:
        raise FiltvizError(f"--channels must be at least 1, got {args.channels}")
    if args.image_size < 0:
        raise FiltvizError(f"--image-size must be 0 (keep) or a number of pixels, got {args.image_size}")
    out = check_writable(args.out)
    path = Path(args.image) if args.image else images.sample_image_path()
    picture = images.load_image(path, size=args.image_size or None)
    model = _load(args)
    maps = feature_maps(model, picture, layers)
    target = out / "feature_maps.png"
    atomic.save_figure(plot_feature_maps(maps, channels=args.channels), target)
    print(f"feature maps of {path} ({picture.shape[0]}x{picture.shape[1]} px):")
    for name, fmap in maps.items():
        print(f"  {name:<14} {tuple(fmap.shape)}")
    print(f"  figure       {target}")
    return 0


def cmd_filters(args: argparse.Namespace) -> int:
    from filtviz_core.outputs import check_writable
    from torch_filtviz.ascent import visualize_filters

    kwargs = _ascent_kwargs(args)
    out = check_writable(args.out or Path("outputs") / "filters" / args.layer)
    model = _load(args)
    results = visualize_filters(model, args.layer, args.filters, **kwargs)
    _report(results, write_results(results, out))
    return 0


def cmd_atlas(args: argparse.Namespace) -> int:
    from filtviz_core import atomic
    from filtviz_core import vgg16 as spec
    from filtviz_core.outputs import check_writable
    from torch_filtviz.ascent import visualize_filters
    from torch_filtviz.hooks import layer_channels, resolve_target
    from torch_filtviz.models import layer_names, min_input_size
    from torch_filtviz.plots import plot_atlas

    if args.per_layer < 1:
        raise FiltvizError(f"--per-layer must be at least 1, got {args.per_layer}")
    kwargs = _ascent_kwargs(args)
    out = check_writable(args.out)
    model = _load(args)
    layers = parse_names(args.layers) if args.layers else layer_names(model, "conv")
    plan = []
    for layer in layers:  # every check before the first long run
        resolve_target(model, layer, args.objective)
        alg.check_image_size(args.size, min_input_size(model, layer), layer)
        plan.append((layer, min(args.per_layer, layer_channels(model, layer))))
    started = time.perf_counter()
    done = []
    for layer, count in plan:
        results = visualize_filters(model, layer, list(range(count)), **kwargs)
        written = write_results(results, out / layer)
        _report(results, written)
        done.append((results, written))
    figure = out / "atlas.png"
    atomic.save_figure(plot_atlas([r for r, _ in done]), figure)
    index = out / "index.md"
    atomic.write_bytes(index, _atlas_index([(r, w) for r, w in done], out, args).encode())
    print(f"atlas of {len(done)} layers in {time.perf_counter() - started:.1f} s:\n  figure       {figure}\n"
          f"  index        {index}")
    return 0


def _atlas_index(done, out: Path, args: argparse.Namespace) -> str:
    lines = [f"# Filter atlas ({args.weights} weights, {args.steps} steps at {args.size} px, objective "
             f"{args.objective}, seed {args.seed})", "", "![atlas](atlas.png)", "",
             "| layer | filters | final loss (mean) | dead | grid | iterations | run |", "|---|---|---|---|---|---|---|"]
    for results, written in done:
        rel = {k: Path(v).relative_to(out).as_posix() for k, v in written.items()}
        iters = f"[png]({rel['iterations']})" if "iterations" in rel else "-"
        lines.append(f"| {results.layer} | {results.filters[0]}-{results.filters[-1]} | "
                     f"{float(results.losses[:, -1].mean()):.4g} | {int(sum(results.dead))} | "
                     f"[png]({rel['grid']}) | {iters} | [run.json]({rel['run']}) |")
    return "\n".join(lines) + "\n"


def cmd_weights(args: argparse.Namespace) -> int:
    from filtviz_core import weights as W

    if args.weights in ("random", "torchvision"):
        raise FiltvizError(f"'{args.weights}' weights have no file to verify; use keras or a weights file path")
    started = time.perf_counter()
    found = W.resolve_weights(args.weights)  # hashes the file and checks the 13 layer shapes
    print(f"source:   {found.source}")
    print(f"path:     {found.path}")
    print(f"sha256:   {found.sha256}")
    if args.verify:
        again = W.sha256_of(found.path)
        if again != W.CANONICAL_SHA256:
            raise FiltvizError(f"{found.path} no longer matches the pinned SHA-256 (got {again[:16]}…)")
        print(f"verified: yes (re-hashed in {time.perf_counter() - started:.1f} s; matches the pinned "
              "Keras ImageNet VGG16 SHA-256, 13 layers, 14,714,688 parameters)")
    else:
        print("verified: yes (SHA-256 matches the pinned Keras ImageNet VGG16 file; 13 layers, 14,714,688 parameters)")
    return 0


# --- entry point ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``filtviz`` with ``argv`` (default: the process arguments); returns the exit status."""

    def run() -> int:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, or argparse's own exit
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
        try:
            return int(args.run(args) or 0)
        except BrokenPipeError:  # output piped into `head` and closed: not an error worth a message
            sys.stderr.close()
            return 1
        except OSError as exc:  # a full disk or a folder removed mid-run: the environment, not a bug
            print(f"{PROG}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
            return 1

    return run_guarded(PROG, run)


if __name__ == "__main__":
    sys.exit(main())
