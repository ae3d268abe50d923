"""The options of ``filtviz atlas --html OUT`` read and checked, and the run's closing report.

Shared by the one-process command (:mod:`torch_filtviz.atlas.command`) and the torchrun driver
(:mod:`torch_filtviz.atlas.distributed`), which both read the same options.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from filtviz_core.errors import FiltvizError


def parse_per_layer(text: str | int | None) -> int | None:
    """``--per-layer``: a number of filters from 0, or ``all`` (None)."""
    if text is None or str(text).strip().lower() == "all":
        return None
    try:
        value = int(str(text))
    except ValueError:
        raise FiltvizError(f"--per-layer must be a number or 'all', got {text!r}") from None
    if value < 1:
        raise FiltvizError(f"--per-layer must be at least 1, got {value}")
    return value


def add_site_options(parser: argparse.ArgumentParser) -> None:
    """The options of the website form of ``filtviz atlas``."""
    g = parser.add_argument_group("website (--html)")
    g.add_argument(
        "--html",
        metavar="OUT",
        default=None,
        help="write the atlas as an offline website into OUT (index.html, one page per layer, a view "
        "per filter at LAYER.html#N, atlas.json); a rerun skips what is done",
    )
    g.add_argument(
        "--photos",
        metavar="DIR",
        default=None,
        help="folder of photos for the dataset examples, searched recursively (JPEG, PNG, WebP; any number: "
        "one streaming, resumable pass; unreadable files are skipped and counted) (default: the offline "
        "sample photos of scikit-image, scikit-learn and matplotlib)",
    )
    g.add_argument(
        "--examples",
        type=int,
        default=6,
        metavar="K",
        help="dataset examples per filter: its top K and bottom K photo crops (0: none); default: %(default)s",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that decode the photos while the network runs (0: decode in this process); "
        "default: the CPU count - 1, at most 4",
    )
    g.add_argument(
        "--photo-size",
        type=int,
        default=224,
        help="photos are resized to this short side (aspect ratio kept, nothing cropped); default: %(default)s",
    )
    g.add_argument(
        "--diversity",
        type=int,
        default=0,
        metavar="K",
        help="also K diverse pictures of each unit (one diversity group per unit: a penalty couples them); "
        "0: none; default: %(default)s",
    )
    g.add_argument(
        "--negative",
        action="store_true",
        help="also the picture that minimizes each unit (the method's ascent on minus its value, from the same start)",
    )
    g.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="filters rendered and recorded together, the most an interruption loses "
        "(default: 4 on CPU, 128 on a GPU); each chunk is one batch of exactly this many images",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="redo the requested filters even if done (and replace an atlas of other weights in OUT)",
    )
    g.add_argument(
        "--dist-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="under torchrun: the longest wait for another rank (joining, the plan, a rank that stops "
        "answering) before the job ends with an error; default: %(default)g",
    )


def check_site_folder(out: str) -> Path:
    """Before the model loads: refuse a file, or a folder that holds something other than an atlas."""
    from filtviz_core.outputs import check_writable
    from filtviz_core.site.manifest import check_folder

    check_folder(out)
    return check_writable(out, create=False)  # created once the model and layers are known to be valid


def site_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The build arguments that the one-process command and the torchrun ranks both read from the options
    (``build_atlas`` and ``prepare`` take them by these names)."""
    from filtviz_core.cli_common import parse_names

    per_layer = parse_per_layer(args.per_layer)  # first: its error comes before the others, as always
    return {
        "layers": parse_names(args.layers) if args.layers else None,
        "per_layer": per_layer,
        "method": args.method,
        "examples": args.examples,
        "photo_size": args.photo_size,
        "chunk_size": args.chunk_size,
        "force": args.force,
        "diversity": getattr(args, "diversity", 0) or 0,
        "negative": bool(getattr(args, "negative", False)),
    }


def site_params(args: argparse.Namespace, ascent_kwargs) -> tuple[dict, bool]:
    """(the method's parameters, whether a progress bar is wanted) from the options. A chunk is
    one batch of --chunk-size images, so --batch-size does not apply to the website."""
    if getattr(args, "batch_size", None) is not None:
        raise FiltvizError(
            "--batch-size does not apply to --html: each chunk runs as one batch of --chunk-size "
            "filters (a fixed shape, so pictures do not depend on their neighbours); set --chunk-size"
        )
    from torch_filtviz.atlas.methods import ascent_params

    params = ascent_params(args.method, ascent_kwargs(args))
    progress = bool(params.get("progress", True))
    params["progress"] = False  # one bar for the whole atlas, not one per chunk
    return params, progress


def print_report(report) -> None:
    """The closing lines of ``filtviz atlas --html`` (an :class:`~torch_filtviz.atlas.build.AtlasReport`)."""
    rate = getattr(report, "images_per_s", None)
    skipped = getattr(report, "photos_skipped", 0)
    examples = (
        f"; dataset examples for {report.examples} ({report.passes} forward passes"
        f"{f', {rate:.1f} photos/s' if rate else ''}, {skipped} unreadable photo{'s' * (skipped != 1)} skipped)"
        if report.examples
        else ""
    )
    ranks = f" on {len(report.ranks)} ranks" if len(report.ranks) > 1 else ""
    print(
        f"atlas: {report.rendered} filter{'s' * (report.rendered != 1)} rendered, {report.skipped} already done"
        f"{examples}, in {report.seconds:.1f} s{ranks}"
    )
    for rank in report.ranks if len(report.ranks) > 1 else []:
        took = f" in {rank['seconds']:.1f} s" if rank.get("seconds") is not None else ""
        print(
            f"  rank {rank.get('rank'):<7} {rank.get('rendered', 0)} filters on {rank.get('device')} at "
            f"{rank.get('host')}{took}"
        )
    print(f"  site         {report.index}")
    print(f"  manifest     {report.out / 'atlas.json'}")
    print(f"  serve it     python -m http.server -d {report.out}")
