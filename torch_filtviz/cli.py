"""The ``filtviz`` command line: a thin layer over the torch_filtviz API.

Each subcommand parses its options, checks that the output folder could be written before any
long work (without creating it), loads the model, validates the layer, filters and size, and only
then runs, writes its files (all atomically, via ``filtviz_core``) and prints where they are.

Exit status: 0 done; 2 bad input (unknown layer or model, filter out of range, a weights file that
does not fit the model, bad flags: one line on stderr); 1 a failure while running (weights not
found, a download that failed, a device error); 130 Ctrl-C (every file written so far is complete).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from filtviz_core import algorithm as alg
from filtviz_core.accentuate_cli import accentuate_kwargs, add_accentuate_options
from filtviz_core.cli_common import (
    NOTEBOOK_MAP_LAYERS,
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

PROG = "filtviz"
MAP_LAYER_COUNT = 5  # maps of a non-VGG16 model without --layers: this many conv layers, evenly spread


# --- option groups -------------------------------------------------------------------------------------


def _model_options() -> argparse.ArgumentParser:
    from filtviz_core.preprocessing import HELP as PREPROCESS_HELP
    from torch_filtviz.preprocessing import PREPROCESSING

    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default="vgg16",
        help="vgg16 (Keras weights), a torchvision classification network (resnet50, googlenet, "
        "mobilenet_v3_large, convnext_tiny, efficientnet_b0, ...), or package.module:function "
        "returning your nn.Module; default: vgg16",
    )
    g.add_argument(
        "--weights",
        default=None,
        help="vgg16: keras (verified Keras ImageNet weights, offline; default), torchvision (downloads "
        "unless cached), random, or a file (.safetensors, Keras .h5, .onnx, or a torchvision "
        ".pth). Other models: torchvision (their published weights; downloads unless cached; "
        "default), random (seeded), or a state dict (.pth/.pt/.safetensors). "
        "package.module:function: as built (default), or a state dict",
    )
    g.add_argument(
        "--preprocess",
        choices=PREPROCESSING,
        default=None,
        help=f"{PREPROCESS_HELP}; default: caffe for the Keras VGG16 weights, imagenet for any other RGB model, "
        "unit for a grey or multispectral one (imagenet and caffe are RGB only)",
    )
    add_in_channels(g)
    g.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="accept a VGG16 weights file with VGG16 shapes but not the pinned ImageNet SHA-256 (your own weights)",
    )
    g.add_argument(
        "--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps; default: auto"
    )
    g.add_argument(
        "--seed",
        type=int,
        default=alg.DEFAULT_SEED,
        help="seed of the starting noise (and of --weights random); default: %(default)s",
    )
    return p


def _ascent_options(size: int = alg.DEFAULT_SIZE) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("gradient ascent")
    add_method_options(g)
    g.add_argument("--size", type=int, default=size, help="image side in pixels; default: %(default)s")
    g.add_argument("--snapshots", default=None, help=SNAPSHOTS_HELP)
    g.add_argument(
        "--objective",
        choices=alg.OBJECTIVES,
        default=alg.DEFAULT_OBJECTIVE,
        help="pre_relu (the input of the activation after the layer: no dead filters) or post_relu "
        "(that activation's output, as the original notebook); default: %(default)s",
    )
    g.add_argument("--clip", action="store_true", help="clip the images to 0-255 after every step")
    g.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="filters optimized together (default: as many as fit in half the free memory)",
    )
    g.add_argument(
        "--precision",
        choices=("fp32", "tf32", "bf16"),
        default="fp32",
        help="fp32 follows the spec exactly; tf32 (CUDA convs on TF32 tensor cores) and bf16 autocast "
        "trade exactness for speed; default: %(default)s",
    )
    g.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NHWC memory format (default: on for CPU, where it is faster; off elsewhere)",
    )
    add_progress(g)
    return p


def build_parser() -> argparse.ArgumentParser:
    from torch_filtviz import __version__

    model, ascent = _model_options(), _ascent_options()
    parser = OneLineParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="See what the filters of a convolutional network respond to (PyTorch, no TensorFlow).",
        epilog=examples(
            "filtviz filters block3_conv1 --filters 0-15",
            "filtviz filters layer4.1.conv2 --model resnet18 --weights random --size 64",
            "filtviz layers --model googlenet --weights random",
            "exit status: 0 done, 2 bad input, 1 failure while running, 130 interrupted",
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True

    def add(name: str, parents: list, help_text: str, *lines: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=parents,
            help=help_text,
            description=help_text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=examples(*lines),
        )

    p = add(
        "summary",
        [model],
        "Keras-like table of the layers, shapes and parameters",
        "filtviz summary",
        "filtviz summary --model resnet18 --weights random --shapes torch",
    )
    p.add_argument("--input-size", type=int, default=224, help="input side in pixels; default: %(default)s")
    p.add_argument(
        "--shapes",
        choices=("keras", "torch"),
        default="keras",
        help="print shapes as Keras (None, H, W, C) or PyTorch (N, C, H, W); default: keras",
    )
    p.set_defaults(run=cmd_summary)

    p = add(
        "layers",
        [model],
        "the layers you can target: names, module paths, kind, filters, smallest input",
        "filtviz layers",
        "filtviz layers --model resnet18 --weights random --kind conv",
    )
    p.add_argument(
        "--kind",
        choices=("all", "conv"),
        default="all",
        help="list every module, or conv layers only (non-VGG16 models); default: all",
    )
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="input side to probe at (non-VGG16 models); default: the model's fixed input size (vision "
        "transformers: 224), else the first of 64, 224, 299 px it accepts",
    )
    p.set_defaults(run=cmd_layers)

    p = add(
        "maps",
        [model],
        "feature maps of an image at some layers, in one figure",
        "filtviz maps",
        "filtviz maps photo.jpg --layers block1_conv2,block4_conv3 --channels 16",
        "filtviz maps --model resnet18 --weights random --layers layer1,layer3",
    )
    add_map_options(p, default_layers=None)
    p.add_argument("--out", default="outputs/maps", help="output folder; default: %(default)s")
    p.set_defaults(run=cmd_maps)

    p = add(
        "filters",
        [model, ascent],
        "the pictures that most excite filters of a layer",
        "filtviz filters block3_conv1 --filters 0-15 --steps 100",
        "filtviz filters block5_conv3 --filters 0,7,100-103 --size 96 --objective post_relu",
        "filtviz filters block5_conv3 --filters 0-7 --method fourier",
        "filtviz filters block4_conv3 --filters 12 --method fourier --diversity 4",
        "filtviz filters block3_conv1 --filters 0-7 --unit neuron",
        "filtviz filters layer4.1.conv2 --model resnet18 --weights random --filters 0-3 --size 64",
        "filtviz filters conv1 --model mypkg.nets:build --filters 0-7",
    )
    p.add_argument("layer", help="layer name (e.g. block3_conv1; see 'filtviz layers') or module path")
    p.add_argument("--filters", default="0-15", help="indices and ranges, e.g. 0-63 or 0,5,9-12; default: %(default)s")
    p.add_argument("--out", default=None, help="output folder; default: outputs/filters/LAYER")
    add_unit_options(p.add_argument_group("what each picture maximizes"))
    p.set_defaults(run=cmd_filters)

    p = add(
        "accentuate",
        [model, _ascent_options()],  # its own copy: the method default below must not reach 'filters'
        "feature accentuation: a photo changed to excite filters of a layer, tied to the photo (SPEC.md §19)",
        "filtviz accentuate photo.jpg block4_conv3 --filters 0-7",
        "filtviz accentuate photo.jpg block5_conv1 --filters 12 --strength 100 --steps 256",
        "filtviz accentuate photo.jpg block3_conv1 --filters 0-3 --method pixel --steps 50",
    )
    add_accentuate_options(p)
    p.set_defaults(run=cmd_accentuate, method="fourier")  # the API's default

    p = add(
        "atlas",
        [model, _ascent_options(size=64)],
        "the filters of every conv layer: an offline website "
        "(--html OUT), or a grid per layer and an index (--out DIR)",
        "filtviz atlas --html outputs/site --per-layer 4 --size 64 --steps 50",
        "filtviz atlas --html outputs/site --per-layer all --photos my_photos/",
        "filtviz atlas --html outputs/site --layers block4_conv1 --method fourier --diversity 3 --negative",
        "filtviz atlas --per-layer 8 --size 64",
        "filtviz atlas --model resnet18 --weights random --layers layer1.0.conv1,layer4.1.conv2",
    )
    p.add_argument("--per-layer", default="8", help="filters per layer (from 0), or all; default: %(default)s")
    p.add_argument("--layers", default=None, help="comma-separated subset (default: every conv layer)")
    p.add_argument("--out", default=None, help="output folder of the grids and index.md; default: outputs/atlas")
    from torch_filtviz.atlas.command import add_site_options

    add_site_options(p)
    p.set_defaults(run=cmd_atlas)

    p = add(
        "weights",
        [],
        "where the VGG16 Keras weights come from, their SHA-256, and whether they verify",
        "filtviz weights --verify",
    )
    p.add_argument("--weights", default="keras", help="keras or a weights file; default: keras")
    p.add_argument("--verify", action="store_true", help="hash the file again and compare with the pinned SHA-256")
    p.set_defaults(run=cmd_weights)
    return parser


# --- helpers -------------------------------------------------------------------------------------------


def _load(args: argparse.Namespace):
    """The model the options name (validated first: a bad --model costs no loading)."""
    from torch_filtviz.models import with_in_channels
    from torch_filtviz.zoo import check_model_name, load_model

    check_model_name(args.model)
    in_channels = getattr(args, "in_channels", None)
    if in_channels is not None:  # a bad count costs no loading either
        alg.check_channels(in_channels)
    model = load_model(
        args.model, args.weights, preprocess=args.preprocess, device=args.device, seed=args.seed, verify=args.verify
    )
    return with_in_channels(model, in_channels)


def _ascent_kwargs(args: argparse.Namespace) -> dict:
    from filtviz_core import methods

    if args.size < 1:
        raise FiltvizError(f"--size must be at least 1 px, got {args.size}")
    chosen = method_options(args)  # --crops (maco only)
    _, _, options = methods.resolve(args.method, args.steps, args.lr, chosen)  # bad values fail before the model loads
    methods.check_pixel_only(options, init_given=False, clip=args.clip)
    return dict(
        **({"method_options": chosen} if chosen else {}),
        method=args.method,
        steps=args.steps,
        size=args.size,
        lr=args.lr,
        seed=args.seed,
        snapshots=parse_steps(args.snapshots),
        objective=args.objective,
        clip=args.clip,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        channels_last=args.channels_last,
        progress=progress_wanted(args.progress),
    )


def write_results(results, out: str | Path) -> dict[str, Path]:
    """Per-filter PNGs, the grid, the iteration comparison and run.json of one run (atomic writes)."""
    from filtviz_core.outputs import write_filter_outputs

    return write_filter_outputs(
        out,
        layer=results.layer,
        filters=results.filters,
        images=results.images,
        losses=results.losses,
        snapshots=results.snapshots,
        record=results.run_record(),
        method=results.method,
        alpha=results.alpha,
    )


def _report(results, written: dict[str, Path]) -> None:
    dead = int(sum(results.dead))
    target = results.target or {}
    where = f" ({target['module']} {target['tensor']})" if target.get("module") else ""
    k = getattr(results, "diversity", 1)
    count = f"{len(results.filters) // k} filters x {k} pictures" if k > 1 else f"{len(results.filters)} filters"
    print(
        f"{results.layer}{where}: {count}, {results.params['steps']} steps at "
        f"{results.params['size']} px in {results.seconds:.1f} s on {results.device}"
        + (f"; {dead} dead (zero gradient at the start)" if dead else "")
    )
    labels = {"grid": "grid", "iterations": "iterations", "filters": "filter PNGs", "run": "run record"}
    for key, path in written.items():
        print(f"  {labels.get(key, key):<12} {path}{'/' if key == 'filters' else ''}")


def _default_map_layers(model) -> list[str]:
    from torch_filtviz.models import layer_names

    if getattr(model, "name", None) == "vgg16":
        return list(NOTEBOOK_MAP_LAYERS)
    convs = layer_names(model, "conv")
    if not convs:
        raise FiltvizError("this model has no Conv2d layer to show by default; name some with --layers")
    picks = sorted({round(i * (len(convs) - 1) / max(1, MAP_LAYER_COUNT - 1)) for i in range(MAP_LAYER_COUNT)})
    return [convs[i] for i in picks]


# --- subcommands ---------------------------------------------------------------------------------------


def cmd_summary(args: argparse.Namespace) -> int:
    from torch_filtviz.summary import summary

    if args.input_size < 1:
        raise FiltvizError(f"--input-size must be at least 1 px, got {args.input_size}")
    model = _load(args)
    from filtviz_core.vgg16 import MIN_IMAGE_SIZE

    if getattr(model, "name", None) == "vgg16" and args.input_size < MIN_IMAGE_SIZE:
        raise FiltvizError(f"--input-size {args.input_size} is too small: VGG16 needs at least {MIN_IMAGE_SIZE} px")
    from torch_filtviz.channels import input_channels

    summary(model, (input_channels(model), args.input_size, args.input_size), shape_style=args.shapes)
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    from torch_filtviz.catalog import print_layers

    if args.model == "vgg16":
        from filtviz_core import vgg16 as spec
        from torch_filtviz.models import vgg16_aliases

        aliases = vgg16_aliases()  # no weights needed to list the layers
        print(f"{'layer':<14}{'module':<14}{'filters':>8}  {'min size':>8}")
        for name, path in aliases.items():
            filters = spec.FILTER_COUNTS.get(name, "-")
            print(f"{name:<14}{path:<14}{filters:>8}  {spec.min_size_for(name):>5} px")
        print(
            f"{len(spec.CONV_NAMES)} conv layers, {spec.TOTAL_FILTERS:,} filters. A conv name is its post-ReLU "
            "Keras output; its conv module (e.g. features.0) is the pre-activation."
        )
        return 0
    if args.size is not None and args.size < 1:
        raise FiltvizError(f"--size must be at least 1 px, got {args.size}")
    print_layers(_load(args), kind=args.kind, size=args.size)
    return 0


def cmd_maps(args: argparse.Namespace) -> int:
    from filtviz_core import atomic, images
    from filtviz_core.outputs import check_writable
    from torch_filtviz.maps import feature_maps
    from torch_filtviz.plots import plot_feature_maps

    check_map_options(args)
    layers = parse_names(args.layers) if args.layers is not None else None
    out = check_writable(args.out, create=False)
    path = Path(args.image) if args.image else images.sample_image_path()
    picture = images.load_image(path, size=args.size or None)
    model = _load(args)
    layers = layers or _default_map_layers(model)
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

    kwargs = {**_ascent_kwargs(args), **unit_kwargs(args)}
    out = check_writable(args.out or Path("outputs") / "filters" / args.layer.replace("/", "_"), create=False)
    model = _load(args)
    results = visualize_filters(model, args.layer, args.filters, **kwargs)
    _report(results, write_results(results, out))
    return 0


def cmd_accentuate(args: argparse.Namespace) -> int:
    from filtviz_core.outputs import check_writable
    from torch_filtviz.accentuate import accentuate

    kwargs = {**_ascent_kwargs(args), **accentuate_kwargs(args)}
    out = check_writable(args.out or Path("outputs") / "accentuate" / args.layer.replace("/", "_"), create=False)
    model = _load(args)
    results = accentuate(model, args.layer, args.filters, args.photo, **kwargs)
    _report(results, write_results(results, out))
    return 0


def cmd_atlas(args: argparse.Namespace) -> int:
    from filtviz_core import atomic
    from filtviz_core.outputs import check_writable
    from torch_filtviz.ascent import visualize_filters
    from torch_filtviz.atlas.command import parse_per_layer, run_site
    from torch_filtviz.hooks import layer_channels, resolve_target
    from torch_filtviz.models import layer_names, min_input_size
    from torch_filtviz.plots import plot_atlas

    if args.html:
        if args.out:
            raise FiltvizError("--html OUT writes the website and --out DIR the grids: give one of them")
        return run_site(args, _load, _ascent_kwargs)
    per_layer = parse_per_layer(args.per_layer)
    kwargs = _ascent_kwargs(args)
    out = check_writable(args.out or "outputs/atlas", create=False)
    model = _load(args)
    layers = parse_names(args.layers) if args.layers else layer_names(model, "conv")
    plan = []
    for layer in layers:  # every check before the first long run
        resolve_target(model, layer, args.objective)
        alg.check_image_size(args.size, min_input_size(model, layer), layer)
        count = layer_channels(model, layer)
        plan.append((layer, count if per_layer is None else min(per_layer, count)))
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
    print(
        f"atlas of {len(done)} layers in {time.perf_counter() - started:.1f} s:\n  figure       {figure}\n"
        f"  index        {index}"
    )
    return 0


def _atlas_index(done, out: Path, args: argparse.Namespace) -> str:
    steps = done[0][0].params["steps"] if done else args.steps
    lines = [
        (
            f"# Filter atlas ({args.model}, {args.weights or 'default'} weights, {args.method} method, {steps} steps "
            f"at {args.size} px, objective {args.objective}, seed {args.seed})"
        ),
        "",
        "![atlas](atlas.png)",
        "",
        "| layer | filters | final loss (mean) | dead | grid | iterations | run |",
        "|---|---|---|---|---|---|---|",
    ]
    for results, written in done:
        rel = {k: Path(v).relative_to(out).as_posix() for k, v in written.items()}
        iters = f"[png]({rel['iterations']})" if "iterations" in rel else "-"
        lines.append(
            f"| {results.layer} | {results.filters[0]}-{results.filters[-1]} | "
            f"{float(results.losses[:, -1].mean()):.4g} | {int(sum(results.dead))} | "
            f"[png]({rel['grid']}) | {iters} | [run.json]({rel['run']}) |"
        )
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
        print(
            f"verified: yes (re-hashed in {time.perf_counter() - started:.1f} s; matches the pinned "
            "Keras ImageNet VGG16 SHA-256, 13 layers, 14,714,688 parameters)"
        )
    else:
        print("verified: yes (SHA-256 matches the pinned Keras ImageNet VGG16 file; 13 layers, 14,714,688 parameters)")
    return 0


# --- entry point ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``filtviz`` with ``argv`` (default: the process arguments); returns the exit status."""

    def run() -> int:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version, or argparse's own exit
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # the command, as recorded by the atlas site
        launch = launched()
        if launch is not None and launch.world_size > 1 and not (args.command == "atlas" and args.html):
            raise FiltvizError(
                f"torchrun started {launch.world_size} processes, but only 'filtviz atlas --html OUT' "
                "splits its work across ranks: run this command without torchrun"
            )
        return int(args.run(args) or 0)

    from torch_filtviz.atlas.distributed import launched, secondary_rank

    return run_guarded(PROG, run, quiet=secondary_rank())  # under torchrun, rank 0 says what went wrong


if __name__ == "__main__":
    sys.exit(main())
