"""``python -m tf_reference``: the notebook's three cells as subcommands (summary, maps, filters).

All user input is checked before TensorFlow is imported or any long work starts, so a typo costs
a second, prints one line on stderr and exits with status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

from filtviz_core import __version__, algorithm, methods, outputs
from filtviz_core.accentuate_cli import accentuate_kwargs, add_accentuate_options
from filtviz_core.cli_common import (
    SNAPSHOTS_HELP,
    OneLineParser,
    add_in_channels,
    add_map_options,
    add_method_options,
    add_progress,
    add_unit_options,
    check_map_options,
    examples,
    method_options,
    parse_names,
    parse_steps,
    progress_wanted,
    run_guarded,
    unit_kwargs,
)
from filtviz_core.errors import FiltvizError
from filtviz_core.vgg16 import CONV_NAMES, FILTER_COUNTS, min_size_for
from filtviz_core.weights import check_weights_choice
from tf_reference.filter_options import DEFAULT_UNIT, check_diversity, check_unit

PROG = "python -m tf_reference"
DEFAULT_OUT = Path("outputs") / "tf_reference"
LAYER_NAMES = tuple(
    name
    for block in range(1, 6)
    for name in [n for n in CONV_NAMES if n.startswith(f"block{block}_")] + [f"block{block}_pool"]
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Keras/TensorFlow reference: VGG16 summary, feature maps, filter visualization.",
        epilog=examples(
            f"{PROG} filters block1_conv2 --filters 0-7 --steps 100",
            f"{PROG} maps --layers block1_conv2,block3_conv3 --out outputs/tf_maps",
            "exit status: 0 done, 2 bad input, 1 failure while running, 130 interrupted",
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser, metavar="COMMAND")

    def add(name: str, help_text: str, *lines: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=examples(*lines),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def add_weights(p: argparse.ArgumentParser) -> None:
        from filtviz_core.preprocessing import HELP as PREPROCESS_HELP
        from filtviz_core.preprocessing import PREPROCESSING

        p.add_argument(
            "--model",
            default="vgg16",
            help="vgg16 (the canonical spec; default), a Keras model file (.keras, .h5, .hdf5), or a "
            "keras.applications name (MobileNetV2, ResNet50, ...: include_top=False, random or --weights FILE)",
        )
        p.add_argument(
            "--weights",
            default=None,
            help="vgg16: keras (verified file, offline; default), imagenet (Keras download), random, or a path; "
            "a keras.applications name: random (default) or a local weights file; a model file: its own",
        )
        p.add_argument(
            "--preprocess",
            choices=PREPROCESSING,
            default=None,
            help=f"{PREPROCESS_HELP}; default: caffe for vgg16, none (0-255 pixels) for any other model",
        )

    p = add("summary", "print Keras' model.summary() of VGG16 (include_top=False)", f"{PROG} summary")
    add_weights(p)

    p = add(
        "maps",
        "feature maps of an image at some layers",
        f"{PROG} maps",
        f"{PROG} maps photo.jpg --layers block1_conv1,block3_pool --size 128 --channels 16",
    )
    add_map_options(p)
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder; default: {DEFAULT_OUT}")
    add_weights(p)

    p = add(
        "filters",
        "gradient-ascent pictures of filters of one conv layer (SPEC.md)",
        f"{PROG} filters block1_conv2 --filters 0-7 --steps 100 --snapshots 10,100",
        f"{PROG} filters block5_conv3 --filters 0-3 --size 96 --objective post_relu",
        f"{PROG} filters block5_conv3 --filters 0-3 --method fourier",
        f"{PROG} filters block4_conv3 --filters 12 --method fourier --diversity 4",
        f"{PROG} filters block3_conv1 --filters 0-7 --unit neuron",
    )
    p.add_argument("layer", help="conv layer, e.g. block1_conv2")
    p.add_argument("--filters", default="0-15", help="indices and ranges, e.g. 0-15,20; default: 0-15")
    add_method_options(p)
    p.add_argument("--snapshots", default=None, help=SNAPSHOTS_HELP)
    p.add_argument(
        "--size", type=int, default=algorithm.DEFAULT_SIZE, help="image side in pixels; default: %(default)s"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=algorithm.DEFAULT_SEED,
        help="seed of the starting noise (and of --weights random); default: %(default)s",
    )
    p.add_argument(
        "--objective",
        default=algorithm.DEFAULT_OBJECTIVE,
        choices=algorithm.OBJECTIVES,
        help="pre_relu (conv output before the ReLU, no dead filters) or post_relu (the Keras layer "
        "output, as the original notebook); default: %(default)s",
    )
    add_in_channels(p)
    add_unit_options(p.add_argument_group("what each picture maximizes"))
    p.add_argument("--clip", action="store_true", help="clip the images to 0-255 after every step")
    p.add_argument("--eager", action="store_true", help="run the step eagerly instead of in tf.function")
    p.add_argument("--no-filter-pngs", action="store_true", help="skip the per-filter PNGs")
    add_progress(p)
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder; default: {DEFAULT_OUT}")
    add_weights(p)

    p = add(
        "accentuate",
        "feature accentuation: a photo changed to excite filters of a layer, tied to the photo (SPEC.md §19)",
        f"{PROG} accentuate photo.jpg block4_conv3 --filters 0-7",
        f"{PROG} accentuate photo.jpg block5_conv1 --filters 12 --strength 100 --steps 256",
    )
    add_accentuate_options(p, default_out=str(DEFAULT_OUT / "accentuate"))
    add_method_options(p)
    p.set_defaults(method="fourier")  # the API's default
    p.add_argument("--snapshots", default=None, help=SNAPSHOTS_HELP)
    p.add_argument(
        "--size", type=int, default=algorithm.DEFAULT_SIZE, help="image side in pixels; default: %(default)s"
    )
    p.add_argument("--seed", type=int, default=algorithm.DEFAULT_SEED, help="seed of the draws; default: %(default)s")
    p.add_argument("--objective", default=algorithm.DEFAULT_OBJECTIVE, choices=algorithm.OBJECTIVES)
    p.add_argument("--clip", action="store_true", help="clip the images to 0-255 after every step (pixel method)")
    p.add_argument("--eager", action="store_true", help="run the step eagerly instead of in tf.function")
    add_progress(p)
    add_weights(p)
    return parser


def _is_vgg16(args: argparse.Namespace) -> bool:
    return str(getattr(args, "model", "vgg16")).lower() == "vgg16"


def _check_model_args(args: argparse.Namespace) -> None:
    """--model/--weights/--preprocess checked before TensorFlow is imported."""
    from filtviz_core.preprocessing import check_preprocess

    if _is_vgg16(args):
        check_weights_choice(args.weights or "keras")
        if args.preprocess is not None:
            check_preprocess(args.preprocess, 3)
        return
    suffix = Path(args.model).suffix.lower()
    if suffix in (".keras", ".h5", ".hdf5") and not Path(args.model).is_file():
        raise FiltvizError(f"--model {args.model}: no such file")
    if suffix and suffix not in (".keras", ".h5", ".hdf5"):
        raise FiltvizError(
            f"--model {args.model}: expected vgg16, a .keras/.h5/.hdf5 file or a keras.applications name"
        )


def _load_model(args: argparse.Namespace):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _is_vgg16(args):
        from tf_reference.model import load_vgg16

        model = load_vgg16(args.weights or "keras")
        if args.preprocess is not None:
            model.filtviz_preprocess = args.preprocess
        return model
    from tf_reference.keras_model import load_model

    weights = None if args.weights in (None, "random") else args.weights
    return load_model(args.model, weights=weights, preprocess=args.preprocess)


def cmd_summary(args: argparse.Namespace) -> None:
    _check_model_args(args)
    from tf_reference.model import summary

    print(summary(_load_model(args)))


def cmd_maps(args: argparse.Namespace) -> None:
    from filtviz_core.images import as_image_batch, load_image

    layers = parse_names(args.layers)
    bad = [name for name in layers if name not in LAYER_NAMES]
    if bad and _is_vgg16(args):
        raise FiltvizError(f"unknown layer {bad[0]!r}; valid: {', '.join(LAYER_NAMES)}")
    check_map_options(args)
    _check_model_args(args)
    out = outputs.check_writable(args.out, create=False)
    image = load_image(args.image, size=args.size or None)
    as_image_batch(image)  # size check before the model loads

    from filtviz_core import atomic
    from tf_reference.model import feature_maps
    from tf_reference.plots import plot_feature_maps

    model = _load_model(args)
    if not _is_vgg16(args):
        from tf_reference.model import get_layer

        for name in layers:
            get_layer(model, name)
    maps = feature_maps(model, image, layers)
    path = out / "feature_maps.png"
    atomic.save_figure(plot_feature_maps(maps, channels=args.channels), path)
    for name, fmap in maps.items():
        print(f"{name}: {tuple(fmap.shape)}")
    print(f"wrote {path}")


def cmd_filters(args: argparse.Namespace) -> None:
    vgg = _is_vgg16(args)
    if vgg and args.layer not in CONV_NAMES:
        raise FiltvizError(f"unknown conv layer {args.layer!r}; valid: {', '.join(CONV_NAMES)}")
    if vgg:
        filters = algorithm.parse_filters(args.filters, FILTER_COUNTS[args.layer], args.layer)
    chosen = method_options(args)  # --crops (maco only)
    steps, lr, options = methods.resolve(args.method, args.steps, args.lr, chosen)
    methods.check_pixel_only(options, init_given=False, clip=args.clip)
    if args.size < 1:
        raise FiltvizError(f"--size must be at least 1 px, got {args.size}")
    if vgg:
        seen = min(methods.seen_size(args.size, args.size, options))
        methods.check_seen_size(args.size, seen, min_size_for(args.layer), args.layer, options)
    if args.seed < 0:
        raise FiltvizError(f"--seed must be >= 0, got {args.seed}")
    units = unit_kwargs(args)
    if "tokens" in units:
        raise FiltvizError(
            f"--tokens {units['tokens']}: tf_reference has no vision-transformer token layers; "
            "only the default, --tokens patches"
        )
    check_unit(units.get("unit", DEFAULT_UNIT))
    copies, _ = check_diversity(units.get("diversity", 1), units.get("diversity_weight"))
    snapshots = parse_steps(args.snapshots)
    algorithm.snapshot_steps(snapshots, steps)
    _check_model_args(args)
    if args.in_channels is not None:
        algorithm.check_channels(args.in_channels)
    out = outputs.check_writable(args.out, create=False)  # before any long work; created when results exist

    from tf_reference.ascent import _filter_count, visualize_filters

    model = _load_model(args)
    if not vgg:  # another model's layers are known once it is loaded
        filters = algorithm.parse_filters(args.filters, _filter_count(model, args.layer, args.objective), args.layer)
    from tf_reference.model import input_channels

    algorithm.check_given_channels(args.in_channels, input_channels(model), "input")  # --in-channels
    start = time.perf_counter()
    results = visualize_filters(
        model,
        args.layer,
        filters,
        **_ascent_kwargs(args, steps, lr, snapshots, chosen),
        **units,
    )
    written = _write_results(out, args, model, results, start, per_filter_png=not args.no_filter_pngs)
    dead = [r.filter_index for r in results if r.dead]
    count = f"{len(filters)} filters x {copies} pictures" if copies > 1 else f"{len(results)} filters"
    print(
        f"{args.layer}: {count}, {args.method} method, {steps} steps, final loss "
        f"min {min(r.losses[-1] for r in results):.4g} max {max(r.losses[-1] for r in results):.4g}"
        + (f", dead: {dead}" if dead else "")
    )
    for path in written.values():
        print(f"wrote {path}")


def cmd_accentuate(args: argparse.Namespace) -> None:
    vgg = _is_vgg16(args)
    if vgg and args.layer not in CONV_NAMES:
        raise FiltvizError(f"unknown conv layer {args.layer!r}; valid: {', '.join(CONV_NAMES)}")
    if vgg:
        algorithm.parse_filters(args.filters, FILTER_COUNTS[args.layer], args.layer)
    chosen = method_options(args)  # --crops (maco only)
    steps, lr, options = methods.resolve(args.method, args.steps, args.lr, chosen)
    methods.check_pixel_only(options, init_given=False, clip=args.clip)
    if args.size < 1:
        raise FiltvizError(f"--size must be at least 1 px, got {args.size}")
    if vgg:
        seen = min(methods.seen_size(args.size, args.size, options))
        methods.check_seen_size(args.size, seen, min_size_for(args.layer), args.layer, options)
    algorithm.check_seed(args.seed)
    kwargs = accentuate_kwargs(args)  # the photo, --strength, --unit
    snapshots = parse_steps(args.snapshots)
    algorithm.snapshot_steps(snapshots, steps)
    _check_model_args(args)
    out = outputs.check_writable(args.out or DEFAULT_OUT / "accentuate", create=False)

    from tf_reference.accentuate import accentuate

    model = _load_model(args)
    start = time.perf_counter()
    results = accentuate(
        model,
        args.layer,
        args.filters,
        args.photo,
        **_ascent_kwargs(args, steps, lr, snapshots, chosen),
        **kwargs,
    )
    written = _write_results(out, args, model, results, start)
    print(
        f"{args.layer}: {len(results)} filters accentuated from {args.photo}, {args.method} method, {steps} steps, "
        f"strength {kwargs['strength']:g}"
    )
    for path in written.values():
        print(f"wrote {path}")


def _ascent_kwargs(args: argparse.Namespace, steps: int, lr: float, snapshots, chosen) -> dict:
    """The ascent arguments ``filters`` and ``accentuate`` both pass from their command line."""
    return {
        "method": args.method,
        "steps": steps,
        "size": args.size,
        "lr": lr,
        "seed": args.seed,
        "snapshots": snapshots,
        "objective": args.objective,
        "clip": args.clip,
        "compiled": not args.eager,
        "progress": progress_wanted(args.progress),
        **({"method_options": chosen} if chosen else {}),
    }


def _write_results(out, args: argparse.Namespace, model, results, start: float, per_filter_png: bool = True) -> dict:
    """The files of a filters or accentuate run (pictures, losses, snapshots, record, alpha), as both
    commands write them; the record holds the wall time since ``start``."""
    import numpy as np

    from tf_reference.ascent import run_record

    record = run_record(model, results, extra={"wall_seconds": time.perf_counter() - start})
    return outputs.write_filter_outputs(
        out,
        layer=args.layer,
        filters=[r.filter_index for r in results],
        images=np.stack([r.image for r in results]),
        losses=np.stack([r.losses for r in results]),
        snapshots={k: np.stack([r.snapshots[k] for r in results]) for k in results[0].snapshots},
        record=record,
        per_filter_png=per_filter_png,
        method=args.method,
        alpha=None if results[0].alpha is None else np.stack([r.alpha for r in results]),
    )


COMMANDS = {"summary": cmd_summary, "maps": cmd_maps, "filters": cmd_filters, "accentuate": cmd_accentuate}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; 0 on success, 2 on bad input (one line on stderr), 1 on a failure while
    running, 130 on Ctrl-C."""

    def run() -> int:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        COMMANDS[args.command](args)
        return 0

    return run_guarded(PROG, run)
