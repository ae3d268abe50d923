"""Natural photos for the atlas's dataset examples: a default set that works offline, or a user's folder.

The default set is the colour photographs that installed packages ship inside their wheels
(nothing is downloaded): scikit-image's ``skimage/data`` (astronaut, chelsea, coffee, rocket,
motorcycle), scikit-learn's ``sklearn/datasets/images`` (china, flower) and matplotlib's Grace
Hopper. The packages are located, never imported. A photo whose package is missing is left out.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from filtviz_core.errors import FiltvizError


@dataclass(frozen=True)
class Photo:
    """One photo: a short ``name`` (unique in a set), its ``path``, and who made it under which terms."""

    name: str
    path: Path
    credit: str = ""


# (name, package, file inside the package, credit) — credits as the packages state them.
DEFAULT_PHOTOS: tuple[tuple[str, str, str, str], ...] = (
    (
        "astronaut",
        "skimage",
        "data/astronaut.png",
        "Eileen Collins, NASA astronaut; NASA, public domain (scikit-image)",
    ),
    ("chelsea", "skimage", "data/chelsea.png", "Chelsea the cat; Stefan van der Walt, CC0 (scikit-image)"),
    (
        "coffee",
        "skimage",
        "data/coffee.png",
        "Coffee cup, courtesy of Pikolo Espresso Bar; Rachel Michetti, CC0 (scikit-image)",
    ),
    ("rocket", "skimage", "data/rocket.jpg", "Falcon 9 launching DSCOVR; SpaceX, public domain (scikit-image)"),
    (
        "motorcycle",
        "skimage",
        "data/motorcycle_left.png",
        (
            "Motorcycle, Middlebury 2014 stereo benchmark; N. Nesic, P. Westling, X. Wang, Y. Kitajima, G. Krathwohl, "
            "D. Scharstein (scikit-image)"
        ),
    ),
    (
        "china",
        "sklearn",
        "datasets/images/china.jpg",
        "Summer Palace, Beijing; danielbuechele, CC BY 2.0 (scikit-learn)",
    ),
    ("flower", "sklearn", "datasets/images/flower.jpg", "Flower; vultilion, CC BY 2.0 (scikit-learn)"),
    (
        "grace_hopper",
        "matplotlib",
        "mpl-data/sample_data/grace_hopper.jpg",
        "Rear Admiral Grace Hopper; U.S. Navy, public domain (matplotlib)",
    ),
)


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_photos() -> list[Photo]:
    """The default photos that are installed here, in a fixed order."""
    found = []
    for name, package, relative, credit in DEFAULT_PHOTOS:
        root = _package_dir(package)
        if root is not None and (root / relative).is_file():
            found.append(Photo(name, root / relative, credit))
    if not found:
        raise FiltvizError(
            "no default photo is installed (scikit-image, scikit-learn or matplotlib); "
            "give a folder of photos with --photos DIR"
        )
    return found


def folder_photos(folder: str | os.PathLike[str], warn=None) -> list[Photo]:
    """Every image file directly in ``folder`` (sorted by name; hidden files ignored).

    A file that is not an image is skipped with one warning line (``warn``, default: stderr);
    a folder with no image at all is an error.
    """
    from filtviz_core.images import probe_image

    root = Path(folder)
    if not root.is_dir():
        raise FiltvizError(f"photo folder not found: {root}")
    warn = warn or (lambda line: print(line, file=sys.stderr))
    photos: list[Photo] = []
    names: set[str] = set()
    for path in sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            probe_image(path)
        except FiltvizError as exc:
            warn(f"warning: skipping {path.name}: {exc}")
            continue
        name = _unique(path.stem, names)
        photos.append(Photo(name, path, f"{path.name} (your photo)"))
    if not photos:
        raise FiltvizError(f"no readable image in photo folder {root}")
    return photos


def _unique(stem: str, taken: set[str]) -> str:
    base = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem) or "photo"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def load_photo(photo: Photo, short_side: int) -> np.ndarray:
    """(H, W, 3) uint8 pixels of ``photo``, resized so its short side is ``short_side`` (nothing cropped)."""
    from filtviz_core.images import open_rgb, resize_short_side

    return np.asarray(resize_short_side(open_rgb(photo.path), short_side), dtype=np.uint8).copy()
