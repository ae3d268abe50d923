"""``filtviz atlas --html OUT``: the command of the atlas website (the CLI stays thin).

In one process it builds the site here; started by torchrun it hands over to
:mod:`torch_filtviz.atlas.distributed`. The options both read live in :mod:`torch_filtviz.atlas.options`.
"""

from __future__ import annotations

import argparse
import sys

from torch_filtviz.atlas.distributed import launched
from torch_filtviz.atlas.distributed import run_site as run_distributed
from torch_filtviz.atlas.options import (  # noqa: F401
    add_site_options,
    check_site_folder,
    parse_per_layer,
    print_report,
    site_arguments,
    site_params,
)


def run_site(args: argparse.Namespace, load_model, ascent_kwargs) -> int:
    """Build or resume the website; ``load_model(args)`` and ``ascent_kwargs(args)`` come from the CLI.
    Started by torchrun, the ranks share the work (:mod:`torch_filtviz.atlas.distributed`)."""
    launch = launched()
    if launch is not None:
        return run_distributed(args, load_model, ascent_kwargs, launch)
    from filtviz_core.photos import folder_photos
    from torch_filtviz.atlas.build import build_atlas, command_line

    arguments = site_arguments(args)
    params, progress = site_params(args, ascent_kwargs)
    out = check_site_folder(args.html)
    photos = None
    if args.examples and args.photos:
        photos = folder_photos(args.photos, warn=lambda line: print(f"filtviz: {line}", file=sys.stderr))
    model = load_model(args)
    report = build_atlas(
        model,
        out,
        **arguments,
        params=params,
        photos=photos,
        command=command_line(getattr(args, "argv", None)),
        progress=progress,
        workers=getattr(args, "workers", None),
    )
    print_report(report)
    return 0
