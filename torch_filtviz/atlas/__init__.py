"""The atlas: every filter of a network rendered chunk by chunk into an offline website.

``build_atlas(model, out, ...)`` does it in one process; its steps (``prepare``, ``plan``,
``run_chunks``, ``publish``) let a distributed driver hand chunks to several processes, each
writing its own manifest parts, with one process publishing the merged site.
"""

from torch_filtviz.atlas.build import (
    AtlasPlan,
    AtlasReport,
    build_atlas,
    command_line,
    load_photo_set,
    plan,
    prepare,
    publish,
    run_chunks,
)
from torch_filtviz.atlas.examples import PhotoSet, photo_peaks
from torch_filtviz.atlas.methods import METHODS, Method, get_method
from torch_filtviz.atlas.receptive import Geometry, receptive_field

__all__ = [
    "METHODS",
    "AtlasPlan",
    "AtlasReport",
    "Geometry",
    "Method",
    "PhotoSet",
    "build_atlas",
    "command_line",
    "get_method",
    "load_photo_set",
    "photo_peaks",
    "plan",
    "prepare",
    "publish",
    "receptive_field",
    "run_chunks",
]
