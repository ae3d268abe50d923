"""The ``accentuate`` command's own options, spelled alike in both command lines (``filtviz accentuate`` and
``python -m tf_reference accentuate``), and their checks, done before any model loads.

The model, method, steps, size, lr, seed and output options come from each command line's existing
option builders; this adds what accentuation alone has: the photo, the layer, the filters, ``--strength``
and ``--unit``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from filtviz_core.errors import FiltvizError

DEFAULT_FILTERS = "0-7"


def add_accentuate_options(parser: argparse.ArgumentParser, default_out: str | None = None) -> None:
    """PHOTO LAYER --filters --strength --unit --out."""
    from filtviz_core.accentuate import DEFAULT_STRENGTH
    from filtviz_core.objectives import UNITS

    parser.add_argument("photo", help="the photo every picture starts from (JPEG, PNG, ...)")
    parser.add_argument("layer", help="layer name (e.g. block4_conv3) or module path")
    parser.add_argument(
        "--filters", default=DEFAULT_FILTERS, help="indices and ranges, e.g. 0-7 or 0,5,9-12; default: %(default)s"
    )
    g = parser.add_argument_group("accentuation")
    g.add_argument(
        "--strength",
        type=float,
        default=None,
        help="weight of the penalty tying each picture to the photo (mean squared difference in [0, 1] units); "
        f"0 lets the picture go where the method takes it; default: {DEFAULT_STRENGTH:g}",
    )
    g.add_argument(
        "--unit",
        choices=UNITS,
        default="channel",
        help="channel (the mean of the filter's map over its interior) or neuron (the filter at the "
        "centre of its map); default: %(default)s",
    )
    where = default_out or "outputs/accentuate/LAYER"
    parser.add_argument("--out", default=default_out, help=f"output folder; default: {where}")


def accentuate_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``strength`` and ``unit`` for the API, after checking them and that the photo is a readable image."""
    from filtviz_core.accentuate import check_strength
    from filtviz_core.images import probe_image

    photo = Path(args.photo)
    if not photo.is_file():
        raise FiltvizError(f"photo not found: {photo}")
    probe_image(photo)  # one line for a file that is not an image
    try:
        strength = check_strength(args.strength)
    except FiltvizError:
        raise FiltvizError(f"--strength must be a finite number >= 0, got {args.strength}") from None
    kwargs: dict[str, Any] = {"strength": strength}
    if args.unit != "channel":
        kwargs["unit"] = args.unit
    return kwargs
