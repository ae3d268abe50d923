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


#: Warning lines printed for skipped files before the rest are only counted.
WARN_LIMIT = 5


class PhotoList(list):
    """The photos of a folder (a list of :class:`Photo`), with ``skipped``: the relative paths of the
    files that could not be read, so whoever runs the photos can report how many were left out."""

    skipped: list[str]

    def __init__(self, photos=(), skipped=()) -> None:
        super().__init__(photos)
        self.skipped = list(skipped)


def folder_photos(folder: str | os.PathLike[str], warn=None) -> PhotoList:
    """Every image file in ``folder`` and its subfolders (JPEG, PNG, WebP or any image Pillow reads),
    sorted by relative path; hidden files and folders ignored.

    Each file's header is read (not its pixels): a file that is not an image is skipped, with a
    warning line (``warn``, default: stderr) for the first :data:`WARN_LIMIT` and one line counting
    the rest; the result's ``skipped`` lists the relative path of every skipped file. A folder with
    no image at all is an error. A photo's ``name`` is its relative path without the suffix (``/``
    becomes ``__``), made unique.
    """
    from filtviz_core.images import probe_image

    root = Path(folder)
    if not root.is_dir():
        raise FiltvizError(f"photo folder not found: {root}")
    warn = warn or (lambda line: print(line, file=sys.stderr))
    photos: list[Photo] = []
    names: set[str] = set()
    bad: list[str] = []
    for path in _walk(root):
        rel = path.relative_to(root)
        try:
            probe_image(path)
        except FiltvizError as exc:
            bad.append(rel.as_posix())
            if len(bad) <= WARN_LIMIT:
                warn(f"warning: skipping {rel.as_posix()}: {exc}")
            continue
        name = _unique("__".join(rel.with_suffix("").parts), names)
        photos.append(Photo(name, path, f"{rel.as_posix()} (your photo)"))
    if len(bad) > WARN_LIMIT:
        warn(f"warning: skipped {len(bad) - WARN_LIMIT} more unreadable files ({len(bad)} in all)")
    if not photos:
        raise FiltvizError(f"no readable image in photo folder {root}")
    return PhotoList(photos, bad)


def _walk(root: Path) -> list[Path]:
    """Every non-hidden file under ``root`` (hidden folders skipped), sorted by relative path."""
    found: list[Path] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(here) / f for f in files if not f.startswith("."))
    return sorted(found, key=lambda p: p.relative_to(root).parts)


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


#: The long side of a photo the network sees is trimmed to ``short side + a multiple of this``, so
#: photos of any size fall into few shapes that batch together (see :func:`fit_photo`).
LONG_SIDE_STEP = 32
#: ... and to at most this many times the short side (a panorama's ends are not scanned).
MAX_ASPECT = 2.0


def fitted_shape(height: int, width: int, short_side: int) -> tuple[int, int, int, int]:
    """(rows, cols, top, left): the part of a photo already resized to ``height`` x ``width`` (short
    side ``short_side``) that the network sees: its long side trimmed, centred, to ``short_side`` plus
    a multiple of :data:`LONG_SIDE_STEP` and at most :data:`MAX_ASPECT` times ``short_side``.

    Why: batches need equal shapes; trimming (at most ``LONG_SIDE_STEP - 1`` px, plus beyond the
    aspect cap) keeps every photo at its own scale and aspect with no padding the network would
    respond to, and leaves at most ``2 * (MAX_ASPECT - 1) * short_side / LONG_SIDE_STEP + 1`` shapes.
    """
    short = min(height, width)
    long_ = max(height, width)
    cap = max(short, int(MAX_ASPECT * short))
    kept = min(cap, short + ((long_ - short) // LONG_SIDE_STEP) * LONG_SIDE_STEP)
    if height >= width:
        rows, cols = kept, width
    else:
        rows, cols = height, kept
    return rows, cols, (height - rows) // 2, (width - cols) // 2


def fit_photo(photo: Photo, short_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(pixels the network sees, (top, left) of them in the resized photo): the photo resized to
    ``short_side`` (:func:`load_photo`), then trimmed as :func:`fitted_shape` says."""
    pixels = load_photo(photo, short_side)
    rows, cols, top, left = fitted_shape(pixels.shape[0], pixels.shape[1], short_side)
    return np.ascontiguousarray(pixels[top : top + rows, left : left + cols]), (top, left)


def photo_set_key(photos: list[Photo]) -> str:
    """First 16 hex digits of a SHA-256 over every photo's name and file contents, in order: what
    makes two runs' photo sets the same (on any machine, whatever the files' times)."""
    import hashlib

    digest = hashlib.sha256()
    for photo in photos:
        digest.update(photo.name.encode() + b"\0")
        with open(photo.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()[:16]
