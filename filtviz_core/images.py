"""Reading user images: RGB uint8 arrays, with one clear error for anything that is not an image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from filtviz_core.errors import FiltvizError
from filtviz_core.vgg16 import MIN_IMAGE_SIZE

SAMPLE_IMAGE = "grace_hopper.jpg"  # ships with matplotlib


def sample_image_path() -> Path:
    """matplotlib's bundled photo of Grace Hopper, the default image for feature maps."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data(SAMPLE_IMAGE, asfileobj=False))


def load_image(path: str | os.PathLike[str] | None = None, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """An (H, W, 3) uint8 RGB image from ``path`` (default: the sample photo), optionally resized.

    ``size``: an int for a square, or (height, width). Raises FiltvizError for a missing or
    unreadable file.
    """
    from PIL import Image, UnidentifiedImageError

    path = sample_image_path() if path is None else Path(path)
    if not path.is_file():
        raise FiltvizError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if size is not None:
                height, width = (size, size) if isinstance(size, int) else size
                img = img.resize((width, height), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise FiltvizError(f"not a readable image file: {path} ({type(exc).__name__})") from None


def as_image_batch(images: np.ndarray, minimum: int = MIN_IMAGE_SIZE) -> np.ndarray:
    """(N, H, W, 3) float32 pixel images from one image or a batch (uint8 or float, 0-255 scale)."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise FiltvizError(f"images must be (H, W, 3) or (N, H, W, 3) RGB arrays, got shape {np.shape(images)}")
    if min(arr.shape[1:3]) < minimum:
        raise FiltvizError(f"image of {arr.shape[1]}x{arr.shape[2]} px is too small: VGG16 needs at least {minimum} px")
    return arr.astype(np.float32)
