"""Feature accentuation, framework-free (SPEC.md §19): Hamblin et al. 2024, as Horama writes it.

Instead of starting from noise, every filter's picture starts from one real photo and the objective
gains a penalty that ties the picture to that start, so the result shows what *in this photo* drives
the filter. Both frameworks take from here:

* the photo at the picture's size (:func:`load_photo`: a JPEG/PNG path or an ``(H, W, 3)`` array in
  pixel units, resized and centre-cropped by ``filtviz_core.images``, as ``load_image`` does);
* the start of each method's parameters (:func:`start`): the photo itself (pixel), the exact inverse of
  the fourier picture function (:func:`spectrum_from_picture`), or the photo's phase under the maco
  method's own magnitude (:func:`phase_from_picture`);
* the penalty (:func:`distance`, the float64 numpy reference): the mean squared difference between the
  picture and the start picture in ``[0, 1]`` units, weighted by ``strength``
  (:data:`DEFAULT_STRENGTH`, chosen by ``scripts/accentuate_strength.py``).

Why the clip: the fourier picture is ``255 sigmoid(u)``, which never reaches 0 or 255, so a photo's
black and white pixels have no finite spectrum; the photo is clipped to ``[CLIP_LOW, CLIP_HIGH]``
(1 and 254) before the logit, which moves those pixels by at most one level.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from filtviz_core import fourier
from filtviz_core.errors import FiltvizError
from filtviz_core.options import FourierOptions, MacoOptions

CLIP_LOW = 1.0  # the photo is clipped to [1, 254] pixel units before the logit (255 sigmoid never reaches 0, 255)
CLIP_HIGH = 254.0
#: The penalty's weight when none is given: scripts/accentuate_strength.py measures the choice (docs/accentuate.md).
DEFAULT_STRENGTH = 100000.0

PhotoInput = str | os.PathLike[str] | np.ndarray


def check_strength(strength: float | None) -> float:
    """The penalty's weight: :data:`DEFAULT_STRENGTH` for None, else a finite number >= 0."""
    if strength is None:
        return DEFAULT_STRENGTH
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating, np.integer)):
        raise FiltvizError(f"strength must be a finite number >= 0, got {strength!r}")
    value = float(strength)
    if not np.isfinite(value) or value < 0:
        raise FiltvizError(f"strength must be a finite number >= 0, got {strength!r}")
    return value


def load_photo(photo: PhotoInput, size: int) -> np.ndarray:
    """The photo as a ``(size, size, 3)`` float32 picture in pixel units (0-255).

    ``photo``: a path to an image file (JPEG, PNG, anything Pillow reads; read by
    ``filtviz_core.images.load_image``: EXIF orientation, alpha over white), or an ``(H, W, 3)`` array
    in pixel units (uint8, or float in ``[0, 255]``). Either is resized so its short side is ``size``
    and centre-cropped to a square (``fit="crop"``); a float array is resized channel by channel in
    float32, so its values are not rounded to levels first.
    """
    from filtviz_core.images import fit_image, load_image

    if int(size) != size or size < 1:
        raise FiltvizError(f"size must be a whole number of pixels >= 1, got {size}")
    size = int(size)
    if isinstance(photo, (str, os.PathLike)):
        return load_image(photo, size).astype(np.float32)
    arr = np.asarray(photo)
    if arr.ndim != 3 or arr.shape[-1] != 3 or min(arr.shape[:2]) < 1:
        raise FiltvizError(
            f"photo must be an image file or an (H, W, 3) RGB array in pixel units, got shape {arr.shape}"
        )
    if arr.dtype == np.uint8:
        from PIL import Image

        return np.asarray(fit_image(Image.fromarray(arr, "RGB"), (size, size)), np.float32).copy()
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise FiltvizError(f"photo must hold real numbers (uint8 or float pixel units), got dtype {arr.dtype}")
    values = arr.astype(np.float32)
    if not np.isfinite(values).all():
        raise FiltvizError("photo holds NaN or infinite values; give pixel units in [0, 255]")
    lo, hi = float(values.min()), float(values.max())
    if lo < 0.0 or hi > 255.0:
        raise FiltvizError(
            f"photo values must be pixel units in [0, 255], got {lo:g} to {hi:g} (a [0, 1] image: multiply it by 255)"
        )
    if 0.0 < hi <= 1.0:
        raise FiltvizError(
            f"photo values lie in [0, {hi:g}]: a [0, 1] image? give pixel units in [0, 255] (multiply by 255)"
        )
    if values.shape[:2] == (size, size):
        return np.ascontiguousarray(values)
    from PIL import Image

    planes = [np.asarray(fit_image(Image.fromarray(values[..., c], "F"), (size, size)), np.float32) for c in range(3)]
    return np.clip(np.stack(planes, axis=-1), 0.0, 255.0).astype(np.float32)


def logit_picture(picture: np.ndarray) -> np.ndarray:
    """``u = logit(p / 255)`` of a picture clipped to ``[CLIP_LOW, CLIP_HIGH]``, float64 ``(..., H, W, 3)``:
    the inverse of the sigmoid both spectral parameterizations end with."""
    p = np.clip(np.asarray(picture, np.float64), CLIP_LOW, CLIP_HIGH) / fourier.PIXEL_MAX
    return np.log(p) - np.log1p(-p)


def _decorrelated(picture: np.ndarray, decorrelate: bool) -> np.ndarray:
    """(H, W, 3) picture -> (3, H, W) float64 ``t`` with ``M t = logit(p / 255)``: the colour mixing undone."""
    u = logit_picture(picture)
    t = np.einsum("dc,hwc->dhw", np.linalg.inv(fourier.color_matrix(decorrelate)), u)
    return t


def spectrum_from_picture(picture: np.ndarray, options: FourierOptions | None = None) -> np.ndarray:
    """The fourier parameterization's spectrum whose picture is ``picture`` (clipped to [1, 254]): the exact
    inverse of ``filtviz_core.fourier.spectrum_to_image``, ``(2, 3, H, W // 2 + 1)`` float32.

    ``pixel -> logit(pixel / 255) -> M^-1 (colour decorrelation undone) -> * divisor -> rfft2 (ortho)
    -> / frequency scale``, in float64.
    """
    o = options or FourierOptions()
    arr = _check_picture(picture)
    height, width = arr.shape[:2]
    t = _decorrelated(arr, o.decorrelate) * float(np.float32(o.divisor))
    spec = np.fft.rfft2(t, norm="ortho") / fourier.frequency_scale(height, width, o.decay)
    return np.stack([spec.real, spec.imag]).astype(np.float32)


def phase_from_picture(picture: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """The maco start from a photo under the method's ``magnitude`` ((3, H, W // 2 + 1)): a phase
    ``(3, H, W // 2 + 1)`` float32 whose picture keeps the photo's layout.

    The picture is brought back to the colour space the maco picture function mixes (``logit``, the
    colour matrix undone) and its phase taken, ``angle(rfft2)`` in (-pi, pi]. Xplique's picture function
    standardizes the phase over the whole tensor (mean 0, standard deviation 1), and a photo's phases,
    spread over (-pi, pi], have a standard deviation near pi / sqrt(3) = 1.8 when spread evenly: no phase
    of standard deviation 1 equals them all modulo 2 pi. So the photo's phase is kept exactly where the
    magnitude is largest, in decreasing order of magnitude for as many entries as a mean of 0 and a
    standard deviation of 1 leave room for (the low frequencies, which carry the picture); the other
    entries are given the values that make the mean 0 and the standard deviation 1 exactly (a ramp,
    standardized). The picture function's standardization then leaves the start as it is (to a factor
    ``1 / (1 + 1e-5)``). SPEC.md §19.2 says what the start picture keeps of the photo.
    """
    t = _decorrelated(_check_picture(picture), True)
    phase = np.angle(np.fft.rfft2(t))
    mag = np.asarray(magnitude, np.float64)
    if mag.shape != phase.shape:
        raise FiltvizError(f"magnitude of shape {mag.shape} does not fit a phase of shape {phase.shape}")
    n = phase.size
    order = np.argsort(-mag.ravel(), kind="stable")
    kept = phase.ravel()[order]
    sums, squares = np.cumsum(kept), np.cumsum(kept * kept)
    rest = n - np.arange(1, n + 1)  # entries left after keeping the first k + 1
    room = (rest > 0) & (squares <= n) & ((n - squares) * np.maximum(rest, 1) >= sums * sums)
    k = int(np.flatnonzero(room).max()) + 1 if room.any() else 0
    r = n - k
    fill_mean = -(sums[k - 1] if k else 0.0) / r
    fill_std = np.sqrt(max((n - (squares[k - 1] if k else 0.0)) / r - fill_mean * fill_mean, 0.0))
    ramp = np.arange(r, dtype=np.float64)
    ramp = (ramp - ramp.mean()) / ramp.std() if r > 1 else np.zeros(r)
    values = np.concatenate([kept[:k], fill_mean + fill_std * ramp])
    out = np.empty(n)
    out[order] = values
    return out.reshape(phase.shape).astype(np.float32)


def _check_picture(picture: np.ndarray) -> np.ndarray:
    arr = np.asarray(picture, np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise FiltvizError(f"expected an (H, W, 3) picture in pixel units, got shape {arr.shape}")
    return arr


def start(
    method: str,
    photo: np.ndarray,
    count: int,
    options: FourierOptions | MacoOptions | None = None,
    magnitude: np.ndarray | None = None,
) -> np.ndarray:
    """The start of ``count`` elements' parameters from ``photo`` ((H, W, 3) pixel units), float32, one
    identical row per element: the photo ``(count, H, W, 3)`` (pixel), its spectrum
    ``(count, 2, 3, H, W // 2 + 1)`` (fourier) or its phase ``(count, 3, H, W // 2 + 1)`` under ``magnitude`` (maco,
    :func:`phase_from_picture`)."""
    if method == "pixel":
        one = np.asarray(photo, np.float32)
    elif method == "fourier":
        one = spectrum_from_picture(photo, options if isinstance(options, FourierOptions) else None)
    elif method == "maco":
        if magnitude is None:
            raise FiltvizError("the maco start needs the method's magnitude")
        one = phase_from_picture(photo, magnitude)
    else:
        raise FiltvizError(f"unknown method {method!r}; valid: pixel, fourier, maco")
    return np.ascontiguousarray(np.broadcast_to(one, (int(count), *one.shape)))


def distance(pictures: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The penalty's distance, float64 numpy reference: per picture of ``(n, H, W, 3)`` pixel units, the mean of
    ``((picture - reference) / 255) ** 2`` over its pixels and colours (``[0, 1]`` units)."""
    d = (np.asarray(pictures, np.float64) - np.asarray(reference, np.float64)) / fourier.PIXEL_MAX
    return (d * d).reshape(len(d), -1).mean(axis=1)


def describe_photo(photo: PhotoInput) -> str:
    """How run.json names the photo: its path, or ``"array HxW"``."""
    if isinstance(photo, (str, os.PathLike)):
        return os.fspath(photo)
    shape = np.shape(photo)
    return f"array {shape[0]}x{shape[1]}" if len(shape) >= 2 else "array"


def run_params(photo: PhotoInput, strength: float) -> dict[str, Any]:
    """The accentuation's entries of run.json ``params`` (both frameworks): where the start came from and
    the penalty's weight."""
    return {"init": "photo", "photo": describe_photo(photo), "strength": float(strength), "distance": "mse_01"}
