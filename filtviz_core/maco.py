"""The MACO method, framework-free (SPEC.md §17): Fel et al., NeurIPS 2023, as Xplique 2.0.2 defines it.

MACO optimizes only the phase of the picture's spectrum; its magnitude is fixed to that of natural
images (Xplique's ImageNet spectrum, or the mean magnitude of the user's photos). Every step the
network sees ``crops`` random crops of the picture, resized to the picture's size, with noise.

Both frameworks take from here: the magnitude (:func:`magnitude`: Xplique's ``spectrum_decorrelated.npy``
read from the installed xplique wheel, never imported, SHA-256 pinned, resized by :func:`resize_bilinear`
the way ``tf.image.resize`` does), the seeded phases (:func:`initial_phases`), the crops and noise keys of
every step (:func:`step_views`, numpy seeded by ``(seed, key, MACO_STREAM, step)``; the noise from numpy
on a CPU, from a counter-based hash on an accelerator, :func:`noise_field`) and NAdam's
constants (:func:`nadam_constants`). :func:`phase_to_image` and :func:`apply_crops` are the float64
numpy references of the picture and of the views.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from filtviz_core.algorithm import Key, seed_entropy
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError
from filtviz_core.fourier import PIXEL_MAX, color_matrix, spectrum_width

# The crops and noise of step k come from default_rng((seed, *key, MACO_STREAM, k)), apart from the
# transform stream (1) and the diversity stream (2); rng((seed, *key)) is the phase's.
MACO_STREAM = 3

XPLIQUE_DISTRIBUTION = "xplique"
XPLIQUE_VERSION = "2.0.2"
XPLIQUE_INSTALL = f"pip install --no-deps xplique=={XPLIQUE_VERSION}"
SPECTRUM_MEMBER = "xplique/features_visualizations/spectrum_decorrelated.npy"
SPECTRUM_SHA256 = "a4810ea049ef9a0fe4e3f26660188e53222281879b333e8fd61377f7491aafc8"
SPECTRUM_SHAPE = (3, 512, 257)

STD_EPS = 1e-5  # added to the standard deviation of the phase and of the image (Xplique)
HALF_RANGE = PIXEL_MAX / 2.0  # Xplique's default values_range (-1, 1) is 0-255 here: v_px = 127.5 (v + 1)
NADAM_DECAY = 0.96  # Keras' NAdam momentum schedule: u_t = beta1 (1 - 0.5 * 0.96^t)


# --- magnitude ---------------------------------------------------------------------------------------


class SpectrumUnavailable(FiltvizError, FiltvizRuntimeError):
    """The xplique wheel (its ImageNet spectrum) is missing or not the pinned one: a :class:`FiltvizError`
    for the API's callers, and a runtime failure for the command lines (exit status 1: the input was fine)."""


def spectrum_path() -> Path:
    """Where the installed xplique wheel keeps ``spectrum_decorrelated.npy`` (found in the wheel's file
    list, never imported); one line with the pip command when the wheel is missing."""
    try:
        dist = importlib.metadata.distribution(XPLIQUE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for member in dist.files or ():
            if str(member).replace("\\", "/") == SPECTRUM_MEMBER:
                path = Path(str(dist.locate_file(member)))
                if path.is_file():
                    return path
    raise SpectrumUnavailable(
        "the maco method's ImageNet magnitude spectrum comes from the xplique wheel, which is not "
        f"installed: {XPLIQUE_INSTALL} (or give method_options={{'magnitude': DIR}}, a folder of photos)"
    )


@functools.lru_cache(maxsize=2)
def _load_spectrum(path: str) -> np.ndarray:
    blob = Path(path).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != SPECTRUM_SHA256:
        raise SpectrumUnavailable(
            f"{path} is not xplique {XPLIQUE_VERSION}'s ImageNet spectrum (SHA-256 {digest[:16]}…, "
            f"expected {SPECTRUM_SHA256[:16]}…); reinstall it: {XPLIQUE_INSTALL}"
        )
    import io

    arr = np.load(io.BytesIO(blob), allow_pickle=False)
    if arr.shape != SPECTRUM_SHAPE or arr.dtype != np.float32:
        raise FiltvizError(f"{path}: expected a {SPECTRUM_SHAPE} float32 spectrum, got {arr.shape} {arr.dtype}")
    arr.setflags(write=False)
    return arr


def imagenet_spectrum() -> np.ndarray:
    """Xplique's ImageNet magnitude spectrum, (3, 512, 257) float32, verified by its SHA-256."""
    return _load_spectrum(str(spectrum_path()))


def resize_bilinear(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``tf.image.resize(x, (height, width))`` of (C, h, w) planes (TF 2's default: bilinear, half-pixel
    centres, no antialiasing), in numpy. As TensorFlow's kernel does, the source coordinate is computed in
    float32, ``s = (d + 0.5) * float32(in / out) - 0.5``, its neighbours ``floor(s)``, ``ceil(s)`` clamped to
    the array, ``w = s - floor(s)``; the interpolation ``a + (b - a) w`` (columns, then rows) is float64."""
    a = np.asarray(array, np.float64)
    f = np.float32

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = ((np.arange(n_out, dtype=f) + f(0.5)) * f(n_in / n_out) - f(0.5)).astype(f)
        lo = np.floor(s)
        frac = (s - lo).astype(np.float64)
        return np.clip(lo, 0, n_in - 1).astype(np.int64), np.clip(np.ceil(s), 0, n_in - 1).astype(np.int64), frac

    r0, r1, fr = axis(a.shape[-2], int(height))
    c0, c1, fc = axis(a.shape[-1], int(width))
    top_left, top_right = a[..., r0, :][..., c0], a[..., r0, :][..., c1]
    bottom_left, bottom_right = a[..., r1, :][..., c0], a[..., r1, :][..., c1]
    top = top_left + (top_right - top_left) * fc
    bottom = bottom_left + (bottom_right - bottom_left) * fc
    return top + (bottom - top) * fr[:, None]


def _photo_planes(folder: str | os.PathLike[str], height: int, width: int, channels: int) -> list[np.ndarray]:
    """The (C, H, W) float64 planes of every picture in ``folder``: its ``.npy`` arrays (H', W', C) when it
    holds any (multispectral data has no common image format), resized bilinearly; else its photos, fitted
    (centre crop) to ``H x W`` in [0, 1], as RGB (C = 3) or grey (C = 1, PIL's ITU-R 601 luminance)."""
    from filtviz_core.images import fit_image, open_rgb
    from filtviz_core.photos import folder_photos

    c, size = int(channels), (int(height), int(width))
    root = Path(folder)
    if not root.is_dir():
        raise FiltvizError(f"maco option magnitude: folder not found: {root}")
    arrays = []
    for path in sorted(root.glob("*.npy")):
        arr = np.load(path, allow_pickle=False)
        arr = arr[..., None] if arr.ndim == 2 and c == 1 else arr
        if arr.ndim != 3 or arr.shape[-1] != c or not np.all(np.isfinite(arr)):
            raise FiltvizError(
                f"maco option magnitude: {path.name} is {arr.shape}, expected a finite (H, W, {c}) array"
            )
        arrays.append(resize_bilinear(np.moveaxis(arr.astype(np.float64), -1, 0), *size))
    if arrays:
        return arrays
    if c not in (1, 3):
        raise FiltvizError(
            f"maco option magnitude: a {c}-channel model needs (H, W, {c}) .npy arrays in {root} "
            "(photos give 1 or 3 channels); found none"
        )
    planes = []
    for photo in folder_photos(folder):
        img = fit_image(open_rgb(photo.path), size)
        arr = np.asarray(img.convert("L") if c == 1 else img, np.float64) / 255.0
        planes.append(arr[None] if c == 1 else np.moveaxis(arr[..., :3], -1, 0))
    return planes


def photos_magnitude(folder: str | os.PathLike[str], height: int, width: int, channels: int = 3) -> np.ndarray:
    """(C, H, W // 2 + 1) float64: the mean of ``|rfft2|`` of the photos in ``folder``, each fitted
    (centre crop) to ``H x W`` pixels in [0, 1] (Xplique's ``maco_dataset`` path, at the picture's size):
    RGB for C = 3, grey for C = 1, or the folder's ``.npy`` arrays (any C; :func:`_photo_planes`)."""
    planes = _photo_planes(folder, height, width, channels)
    if not planes:
        raise FiltvizError(f"maco option magnitude: no photos in {folder}")
    total = np.zeros((int(channels), int(height), spectrum_width(width)), np.float64)
    for plane in planes:
        total += np.abs(np.fft.rfft2(plane))
    return total / len(planes)


def magnitude(height: int, width: int, source: str | os.PathLike[str] | None = None, channels: int = 3) -> np.ndarray:
    """The fixed magnitude of every filter's spectrum, (C, H, W // 2 + 1) float32: Xplique's ImageNet
    spectrum resized like ``tf.image.resize`` (RGB only), or the photos' mean magnitude when ``source``
    is a folder (any channel count C)."""
    if source is not None:
        return photos_magnitude(source, height, width, channels).astype(np.float32)
    check_channels(channels, source)
    return resize_bilinear(imagenet_spectrum(), int(height), spectrum_width(width)).astype(np.float32)


def check_channels(channels: int, source: str | os.PathLike[str] | None) -> None:
    """A model whose input is not RGB needs the magnitude of the user's photos (the ImageNet one is RGB)."""
    if int(channels) != 3 and source is None:
        what = "a folder of photos" if int(channels) == 1 else f"a folder of (H, W, {int(channels)}) .npy arrays"
        raise FiltvizError(
            f"the maco method needs method_options={{'magnitude': DIR}} ({what}) for a "
            f"{int(channels)}-channel model: xplique's ImageNet magnitude spectrum is RGB"
        )


# --- phase and picture -------------------------------------------------------------------------------


def phase_shape(height: int, width: int, channels: int = 3) -> tuple[int, int, int]:
    return int(channels), int(height), spectrum_width(width)


def initial_phase(key: Key, height: int, width: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """One filter's start, (C, H, W // 2 + 1) float32: ``default_rng((seed, *key)).standard_normal(...)``."""
    rng = np.random.default_rng(seed_entropy(seed, key))
    return rng.standard_normal(phase_shape(height, width, channels)).astype(np.float32)


def initial_phases(keys: Sequence[Key], height: int, width: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """(F, C, H, W // 2 + 1) float32, one seeded phase per element key."""
    if not len(keys):
        return np.zeros((0, *phase_shape(height, width, channels)), np.float32)
    return np.stack([initial_phase(k, height, width, seed, channels) for k in keys])


def phase_to_image(phase: np.ndarray, mag: np.ndarray, height: int, width: int) -> np.ndarray:
    """The numpy reference of SPEC.md §17.2, float64: phases (..., 3, H, W//2+1) -> pictures (..., H, W, 3).

    ``p = (phase - mean) / (std + 1e-5)`` over each element's whole phase; ``S = mag (cos p + i sin p)``;
    ``t = irfft2(S, s=(H, W))`` (1/(HW) normalisation, as ``tf.signal.irfft2d``); ``t = (t - mean) / (std + 1e-5)``
    over the whole image; ``u[d] = sum_c M[d, c] t[c]`` (Lucid's matrix, max column norm 1); ``255 sigmoid(u)``.
    """
    ph = np.asarray(phase, np.float64)
    axes = (-3, -2, -1)
    ph = (ph - ph.mean(axis=axes, keepdims=True)) / (ph.std(axis=axes, keepdims=True) + STD_EPS)
    m = np.asarray(mag, np.float64)
    t = np.fft.irfft2(m * np.cos(ph) + 1j * (m * np.sin(ph)), s=(int(height), int(width)))
    t = (t - t.mean(axis=axes, keepdims=True)) / (t.std(axis=axes, keepdims=True) + STD_EPS)
    u = np.einsum("dc,...chw->...hwd", color_matrix(True, ph.shape[-3]), t)
    return PIXEL_MAX / (1.0 + np.exp(-u))


# --- crops and noise ---------------------------------------------------------------------------------


def box_size(step: int, steps: int, start: float, end: float) -> float:
    """The mean crop size of step k: ``linspace(start, end, steps)[k]`` (Xplique: 50 % -> 5 %); the extra
    forward after the last step (k = steps) uses the last value."""
    if steps <= 1:
        return float(start)
    k = min(int(step), steps - 1)
    return float(np.linspace(start, end, steps)[k])


@dataclass(frozen=True)
class Views:
    """One step's crops of one or more elements: ``rows`` (..., V, 4, H) and ``cols`` (..., V, 4, W)
    float32 hold, per output row/column, the two source indices, the weight of the second and 1/0 for
    inside/outside the picture; ``noise_keys`` (..., 3) int64 are the keys of the noise added after the crop
    (:meth:`noise` on a CPU, :func:`noise_field` on an accelerator); ``sigma`` its scale, pixel units;
    ``channels`` the picture's."""

    rows: np.ndarray
    cols: np.ndarray
    noise_keys: np.ndarray
    sigma: float
    channels: int = 3

    @property
    def noise_count(self) -> int:
        """Noise values per element: V * H * W * C."""
        return int(self.rows.shape[-3] * self.rows.shape[-1] * self.cols.shape[-1] * self.channels)

    def noise(self) -> np.ndarray:
        """The noise as numpy draws it, (..., V, H, W, C) float32: per element ``r = default_rng(noise_keys)``,
        ``g = r.standard_normal(shape, float32)``, ``u = r.random(shape, float32)``, ``sigma g + sigma (u - 0.5)``
        (Xplique: N(0, sigma) then U(-sigma/2, sigma/2)). What the CPU paths of both frameworks add."""
        lead, v, h, w = self.rows.shape[:-3], self.rows.shape[-3], self.rows.shape[-1], self.cols.shape[-1]
        shape = (v, h, w, self.channels)
        s = np.float32(self.sigma)
        keys = np.asarray(self.noise_keys, np.int64).reshape(-1, 3)
        out = np.empty((len(keys), *shape), np.float32)
        for i, k in enumerate(keys):
            r = np.random.default_rng([int(x) for x in k])
            g = r.standard_normal(shape, dtype=np.float32)
            u = r.random(shape, dtype=np.float32)
            out[i] = s * g + s * (u - np.float32(0.5))
        return out.reshape(*lead, *shape)


# --- noise on an accelerator: a counter-based generator evaluated on the device ------------------------
# numpy's draws of every value, copied over, cost more than the whole step on a GPU (SPEC.md §17.3 has the
# measurement), so there value j of an element is a hash of (j, key): integer multiplies and shifts that numpy
# (this reference) and torch compute alike, bit for bit, on any device. On a CPU numpy's draws are cheaper
# than this hash, so the CPU keeps them (:meth:`Views.noise`).

NOISE_MULTIPLIERS = (0x61C88647, 0x7FEB352D, 0x2C1B3C6D, 0x297A2D39)  # odd, < 2**31: no int64 overflow
MASK32 = 0xFFFFFFFF


def hash32(index: np.ndarray, key: np.ndarray) -> np.ndarray:
    """32-bit mix of ``index`` (int64, < 2**32) under ``key`` (int64, < 2**32), in int64 arithmetic:
    ``x = (index m0 + key) & M``, then three rounds ``x ^= x >> s; x = (x m) & M`` and a last ``x ^= x >> 16``
    (shifts 16, 15, 16; multipliers :data:`NOISE_MULTIPLIERS`). Every product stays below 2**63."""
    m0, m1, m2, m3 = NOISE_MULTIPLIERS
    x = (index * m0 + key) & MASK32
    x = ((x ^ (x >> 16)) * m1) & MASK32
    x = ((x ^ (x >> 15)) * m2) & MASK32
    x = ((x ^ (x >> 16)) * m3) & MASK32
    return x ^ (x >> 16)


def unit_interval(bits: np.ndarray) -> np.ndarray:
    """The top 24 of 32 hash bits as float32 in (0, 1): ``(bits >> 8 + 0.5) / 2**24``, exact in float32."""
    return ((bits >> 8).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-24)


def noise_field(keys: np.ndarray, count: int, sigma: float) -> np.ndarray:
    """(..., count) float32 noise of elements with ``keys`` (..., 3) int64: ``u_i = unit_interval(hash32(j,
    key_i))``; ``g = sqrt(-2 ln u_0) cos(2 pi u_1)`` (Box-Muller, N(0, 1)); ``noise = sigma g + sigma (u_2 - 0.5)``
    (Xplique: N(0, sigma) then U(-sigma/2, sigma/2)), every operation in float32 in this order."""
    k = np.asarray(keys, np.int64)[..., None, :]
    j = np.arange(int(count), dtype=np.int64)
    u0, u1, u2 = (unit_interval(hash32(j, k[..., i])) for i in range(3))
    f = np.float32
    g = np.sqrt(f(-2.0) * np.log(u0)) * np.cos(f(2.0 * np.pi) * u1)
    s = f(sigma)
    return (s * g + s * (u2 - f(0.5))).astype(np.float32)


def _axis(lo: np.ndarray, hi: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    """(V, 4, n_out): ``tf.image.crop_and_resize``'s sampling of one axis, in its float32 arithmetic:
    ``s = lo (n_in - 1) + i (hi - lo) (n_in - 1) / (n_out - 1)``; outside ``[0, n_in - 1]`` the crop is ``fill``."""
    f = np.float32
    lo, hi = lo.astype(f), hi.astype(f)
    if n_out > 1:
        scale = (hi - lo) * f(n_in - 1) / f(n_out - 1)
        s = lo[:, None] * f(n_in - 1) + np.arange(n_out, dtype=f)[None, :] * scale[:, None]
    else:
        s = (f(0.5) * (lo + hi) * f(n_in - 1))[:, None]
    s = s.astype(f)
    inside = (s >= 0) & (s <= f(n_in - 1))
    first = np.floor(s)
    out = np.stack(
        [np.clip(first, 0, n_in - 1), np.clip(np.ceil(s), 0, n_in - 1), (s - first).astype(f), inside.astype(f)], axis=1
    )
    return out.astype(f)


def boxes(rng: np.random.Generator, views: int, mean_size: float, center_std: float, size_std: float) -> np.ndarray:
    """(V, 4) float64 ``[y1, x1, y2, x2]`` in [0, 1] units (``tf.image.crop_and_resize``'s order): centres
    ``0.5 + N(0, center_std)`` (rows, then columns), square sides ``clip(N(mean_size, size_std), 0.05, 1)``."""
    cy = 0.5 + rng.normal(0.0, center_std, views)
    cx = 0.5 + rng.normal(0.0, center_std, views)
    d = np.clip(rng.normal(mean_size, size_std, views), 0.05, 1.0)
    return np.stack([cy - d * 0.5, cx - d * 0.5, cy + d * 0.5, cx + d * 0.5], axis=1)


def draw_views(
    seed: int, key: Key, step: int, steps: int, height: int, width: int, options, channels: int = 3
) -> Views:
    """Step ``step``'s ``options.crops`` views of one element, from ``default_rng((seed, *key, 3, step))``:
    the boxes (:func:`boxes`), then the three keys of its noise (``rng.integers(0, 2**32, 3)``); the noise
    itself (``sigma = noise * 127.5``) is drawn where the crops are taken (:meth:`Views.noise` on a CPU,
    :func:`noise_field` on an accelerator)."""
    rng = np.random.default_rng(seed_entropy(seed, key, MACO_STREAM, int(step)))
    v = int(options.crops)
    b = boxes(rng, v, box_size(step, steps, options.box[0], options.box[1]), options.center_std, options.box_std)
    noise_keys = rng.integers(0, 2**32, size=3, dtype=np.int64)
    return Views(
        _axis(b[:, 0], b[:, 2], int(height), int(height)),
        _axis(b[:, 1], b[:, 3], int(width), int(width)),
        noise_keys,
        float(options.noise) * HALF_RANGE,
        int(channels),
    )


def step_views(
    seed: int, keys: Sequence[Key], step: int, steps: int, height: int, width: int, options, channels: int = 3
) -> Views:
    """Step ``step``'s views of every element, stacked: (B, V, ...)."""
    parts = [draw_views(seed, k, step, steps, height, width, options, channels) for k in keys]
    return Views(
        np.stack([p.rows for p in parts]),
        np.stack([p.cols for p in parts]),
        np.stack([p.noise_keys for p in parts]),
        float(options.noise) * HALF_RANGE,
        int(channels),
    )


def apply_crops(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, noise: np.ndarray, fill: float) -> np.ndarray:
    """The numpy reference of SPEC.md §17.3, float64: one (H, W, 3) picture -> its (V, H, W, 3) views.

    ``top = tl + (tr - tl) fx``, ``bottom = bl + (br - bl) fx``, ``crop = top + (bottom - top) fy`` inside
    the picture, ``fill`` outside (``tf.image.crop_and_resize``'s bilinear rule), then ``+ noise``."""
    img = np.asarray(image, np.float64)
    r0, r1, fy = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2].astype(np.float64)
    c0, c1, fx = cols[:, 0].astype(np.int64), cols[:, 1].astype(np.int64), cols[:, 2].astype(np.float64)
    inside = (rows[:, 3][:, :, None] * cols[:, 3][:, None, :])[..., None] > 0

    def at(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return img[i[:, :, None], j[:, None, :]]  # (V, H, W, 3)

    fx3, fy3 = fx[:, None, :, None], fy[:, :, None, None]
    top = at(r0, c0) + (at(r0, c1) - at(r0, c0)) * fx3
    bottom = at(r1, c0) + (at(r1, c1) - at(r1, c0)) * fx3
    crop = top + (bottom - top) * fy3
    return np.where(inside, crop, float(fill)) + np.asarray(noise, np.float64)


# --- NAdam -------------------------------------------------------------------------------------------


def nadam_constants(beta1: float, beta2: float, t: int) -> dict[str, float]:
    """Keras 3's NAdam constants of step ``t`` (1, 2, ...), in float64, each rounded once to float32:
    ``u_t = beta1 (1 - 0.5 * 0.96^t)``; ``a = u_{t+1}``, ``b = 1 - prod_{i <= t+1} u_i``, ``c = 1 - u_t``,
    ``d = 1 - prod_{i <= t} u_i``, ``e = 1 - beta2^t``."""

    def u(i: int) -> float:
        return beta1 * (1.0 - 0.5 * NADAM_DECAY**i)

    prod = float(np.prod([u(i) for i in range(1, t + 1)]))
    f = np.float32
    return {
        "a": float(f(u(t + 1))),
        "b": float(f(1.0 - prod * u(t + 1))),
        "c": float(f(1.0 - u(t))),
        "d": float(f(1.0 - prod)),
        "e": float(f(1.0 - beta2**t)),
    }


def alpha(transparency: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) accumulated ``|d objective / d picture|`` -> (F, H, W) float32 in [0, 1]: summed over the
    colours, divided by each picture's largest value (all zeros when it is 0)."""
    t = np.asarray(transparency, np.float64).sum(axis=-1)
    top = t.reshape(len(t), -1).max(axis=1) if t.size else np.zeros(len(t))
    out = np.divide(t, top[:, None, None], out=np.zeros_like(t), where=top[:, None, None] > 0)
    return out.astype(np.float32)
