"""Reading user images as people have them: RGB uint8 arrays, with one clear error for anything else.

What a photo folder holds in practice, and what :func:`load_image` does with it:

- a phone JPEG stored sideways with an EXIF orientation tag: turned the way every viewer shows it;
- 16-bit PNG/TIFF (scientific cameras, scans): scaled from 0-65535 to 0-255, not clipped;
  float images (mode F): [0, 1] scaled to 0-255, any other range stretched min-max to 0-255;
- transparency (RGBA, LA, palette with a transparent colour): composited over ``background``
  (white by default), never dropped, so a transparent logo does not turn into its hidden colours;
- a decompression bomb (a small file that claims gigapixels): refused before it is decoded;
- a fixed size: the aspect ratio is kept. ``fit="crop"`` (the default, as torchvision's
  ``Resize`` + ``CenterCrop`` and Keras' ``load_img(keep_aspect_ratio=True)``) resizes the short
  side and crops the centre; ``fit="pad"`` resizes the long side and pads with ``background``;
  ``fit="stretch"`` is the old squash to the size.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from filtviz_core.errors import FiltvizError
from filtviz_core.vgg16 import MIN_IMAGE_SIZE

SAMPLE_IMAGE = "grace_hopper.jpg"  # ships with matplotlib
FITS = ("crop", "pad", "stretch")
DEFAULT_BACKGROUND = (255, 255, 255)
#: Largest image accepted, in pixels (Pillow's own warning limit: 89,478,485 = 0.25 GiB of RGBA).
MAX_PIXELS = 89_478_485


def sample_image_path() -> Path:
    """matplotlib's bundled photo of Grace Hopper, the default image for feature maps."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data(SAMPLE_IMAGE, asfileobj=False))


def load_image(
    path: str | os.PathLike[str] | None = None,
    size: int | tuple[int, int] | None = None,
    *,
    fit: str = "crop",
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """An (H, W, 3) uint8 RGB image from ``path`` (default: the sample photo), as a viewer shows it.

    ``size``: None keeps the image's own size; an int gives a square, (height, width) a rectangle,
    reached as ``fit`` says (``"crop"``: short side resized, centre cropped; ``"pad"``: long side
    resized, padded with ``background``; ``"stretch"``: resized, aspect ratio lost).
    Transparent pixels are composited over ``background``. Raises FiltvizError for a missing,
    unreadable or oversized (``max_pixels``) file.
    """

    if fit not in FITS:
        raise FiltvizError(f"unknown fit {fit!r}; valid: {', '.join(FITS)}")
    path = sample_image_path() if path is None else Path(path)
    if not path.is_file():
        raise FiltvizError(f"image not found: {path}")
    img = open_rgb(path, background=background, max_pixels=max_pixels)
    if size is not None:
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if height < 1 or width < 1:
            raise FiltvizError(f"image size must be at least 1x1 px, got {height}x{width}")
        img = fit_image(img, (height, width), fit=fit, background=background)
    return np.asarray(img, dtype=np.uint8).copy()


def open_rgb(
    path: str | os.PathLike[str], *, background: tuple[int, int, int] = DEFAULT_BACKGROUND, max_pixels: int = MAX_PIXELS
):
    """A PIL RGB image from ``path``: EXIF orientation applied, high bit depths scaled, alpha composited."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                pixels = img.size[0] * img.size[1]
                if pixels > max_pixels:
                    raise _bomb(path, img.size, max_pixels)
                img.load()
                img = ImageOps.exif_transpose(img)  # a copy, turned as the EXIF tag says
                return _to_rgb(img, background)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(path, _claimed(exc), max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, FiltvizError):
            raise
        raise FiltvizError(f"not a readable image file: {path} ({type(exc).__name__})") from None


def probe_image(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding it; FiltvizError for a non-image or a bomb."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                size = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(path, _claimed(exc), max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FiltvizError(f"not a readable image file: {path} ({type(exc).__name__})") from None
    if size[0] * size[1] > max_pixels:
        raise _bomb(path, size, max_pixels)
    return size


def _claimed(exc: BaseException) -> int | None:
    """The pixel count in Pillow's decompression-bomb message ("Image size (N pixels) exceeds ...")."""
    import re

    found = re.search(r"\((\d+) pixels\)", str(exc))
    return int(found.group(1)) if found else None


def _bomb(path: Path, size: tuple[int, int] | int | None, limit: int) -> FiltvizError:
    if isinstance(size, tuple):
        claimed = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} px"
    else:
        claimed = f"{size:,} px" if size else "more pixels"
    return FiltvizError(f"refusing {path}: it claims {claimed}, over the limit of {limit:,} px (a decompression bomb?)")


def _to_rgb(img, background: tuple[int, int, int]):
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(img), mode)).convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """0-255 from a 16-bit, 32-bit integer or float single-channel image (scaled, never clipped)."""
    arr = arr.astype(np.float64)
    if mode == "F":
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if lo >= 0.0 and hi <= 1.0:
            lo, hi = 0.0, 1.0  # a [0, 1] image keeps its brightness
        arr = np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo)
    else:
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 65535:
            lo, hi = 0.0, 65535.0  # 16-bit data (Pillow opens 16-bit PNG/TIFF as I;16 or I)
    scaled = (arr - lo) * (255.0 / max(hi - lo, 1e-12))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def fit_image(img, size: tuple[int, int], *, fit: str = "crop", background: tuple[int, int, int] = DEFAULT_BACKGROUND):
    """``img`` (PIL RGB) brought to ``size`` = (height, width) as ``fit`` says (see :func:`load_image`)."""
    from PIL import Image

    height, width = size
    w, h = img.size
    if fit == "stretch" or (w, h) == (width, height):
        return img.resize((width, height), Image.Resampling.BILINEAR) if (w, h) != (width, height) else img
    scale = (max if fit == "crop" else min)(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    if fit == "crop":
        left, top = (new_w - width) // 2, (new_h - height) // 2
        return resized.crop((left, top, left + width, top + height))
    canvas = Image.new("RGB", (width, height), tuple(background))
    canvas.paste(resized, ((width - new_w) // 2, (height - new_h) // 2))
    return canvas


def resize_short_side(img, short: int):
    """``img`` (PIL) resized so its shorter side is ``short`` px, aspect ratio kept (nothing cropped)."""
    from PIL import Image

    w, h = img.size
    scale = short / min(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)


GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luminance, as PIL's convert("L")


def as_image_batch(images: np.ndarray, minimum: int = MIN_IMAGE_SIZE, channels: int = 3) -> np.ndarray:
    """(N, H, W, C) float32 pixel images from one image or a batch (uint8 or float, 0-255 scale), C = ``channels``
    (the model's input channels). For a grey model (C = 1) an RGB photo is turned into its luminance."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    c = int(channels)
    if c == 1 and arr.ndim == 4 and arr.shape[-1] == 3:
        arr = np.tensordot(arr.astype(np.float64), np.asarray(GREY_WEIGHTS), axes=([-1], [0]))[..., None]
    if arr.ndim != 4 or arr.shape[-1] != c:
        kind = "RGB" if c == 3 else ("grey (or RGB)" if c == 1 else f"{c}-channel")
        raise FiltvizError(f"images must be (H, W, {c}) or (N, H, W, {c}) {kind} arrays, got shape {np.shape(images)}")
    if min(arr.shape[1:3]) < minimum:
        raise FiltvizError(f"image of {arr.shape[1]}x{arr.shape[2]} px is too small: VGG16 needs at least {minimum} px")
    return arr.astype(np.float32)


def channel_grid(image: np.ndarray, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """An (H, W, C) picture's C channels side by side as one grey (H', W') image, row by row (about square),
    ``gap`` pixels of white between them: how a multispectral (C > 3) picture is shown and saved."""
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise FiltvizError(f"channel_grid expects an (H, W, C) picture, got shape {arr.shape}")
    h, w, c = arr.shape
    cols = int(columns) if columns else int(np.ceil(np.sqrt(c)))
    rows = int(np.ceil(c / cols))
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap), 255, dtype=arr.dtype)
    for k in range(c):
        r, q = divmod(k, cols)
        out[r * (h + gap) : r * (h + gap) + h, q * (w + gap) : q * (w + gap) + w] = arr[..., k]
    return out


def displayable(image: np.ndarray) -> np.ndarray:
    """A picture (H, W, C) as it is shown and saved as PNG: grey (H, W) for C = 1, itself for C = 3 (RGB),
    the :func:`channel_grid` of its channels for any other C (2, or more than 3: multispectral)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] == 3:
        return arr
    return arr[..., 0] if arr.shape[-1] == 1 else channel_grid(arr)
