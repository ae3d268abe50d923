"""The fourier method's parameterization, framework-free (SPEC.md §15.1-§15.2).

Each filter's picture is a complex spectrum of its RGB image. Scaling it by ``1 / f`` makes a
unit step of the optimizer change every frequency band by about the same amount of image energy,
so the pictures start out (and tend to stay) with natural-image statistics instead of the
high-frequency textures that plain pixel ascent makes for deep filters. The colours are mixed by
the square root of ImageNet's colour correlation, so the optimizer works in decorrelated colours.

Both frameworks take the frequency scale, the colour matrix and the seeded starting spectra from
here; :func:`spectrum_to_image` is the float64 numpy reference of the image they build from a
spectrum (the parity suite and the unit tests compare both against it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from filtviz_core.algorithm import Key, seed_entropy
from filtviz_core.errors import FiltvizError

# Lucid's square root of the ImageNet colour correlation (rows: R, G, B output; columns: the
# decorrelated components), lucid/optvis/param/color.py.
COLOR_CORRELATION_SVD_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float64)
PIXEL_MAX = 255.0  # sigmoid output (0, 1) -> pixel units


def spectrum_width(width: int) -> int:
    """Columns of the half spectrum of a real image ``width`` px wide (``rfft``'s ``W // 2 + 1``)."""
    return int(width) // 2 + 1


def spectrum_shape(height: int, width: int, channels: int = 3) -> tuple[int, int, int, int]:
    """One filter's parameters: (real/imaginary, channel, row frequency, column frequency)."""
    return 2, int(channels), int(height), spectrum_width(width)


def frequencies(height: int, width: int) -> np.ndarray:
    """(H, W // 2 + 1) float64: the radial frequency in cycles per pixel of each spectrum entry."""
    fy = np.fft.fftfreq(int(height))[:, None]
    fx = np.fft.rfftfreq(int(width))[None, :]
    return np.sqrt(fx * fx + fy * fy)


def frequency_scale(height: int, width: int, decay: float = 1.0) -> np.ndarray:
    """(H, W // 2 + 1) float64: ``1 / max(f, 1 / max(H, W)) ** decay``.

    The floor keeps the constant term finite: it is scaled like the lowest frequency that fits.
    """
    floor = 1.0 / max(int(height), int(width))
    return 1.0 / np.maximum(frequencies(height, width), floor) ** float(decay)


def color_matrix(decorrelate: bool = True, channels: int = 3) -> np.ndarray:
    """(C, C) float64 ``M`` with ``rgb[d] = sum_c M[d, c] * t[c]``: Lucid's matrix divided by its
    largest column norm (so no decorrelated component is amplified), or the identity.

    The decorrelation is ImageNet's RGB statistics, so it applies to 3 channels only: a grey (1) or
    multispectral (N != 3) picture's channels are used as they are (the (C, C) identity)."""
    if not decorrelate or int(channels) != 3:
        return np.eye(int(channels))
    norms = np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0)
    return COLOR_CORRELATION_SVD_SQRT / norms.max()


def initial_spectrum(
    filter_index: Key, height: int, width: int, seed: int = 0, std: float = 0.01, channels: int = 3
) -> np.ndarray:
    """One filter's seeded start, (2, C, H, W // 2 + 1) float32: N(0, std^2) from rng((seed, filter)).

    Seeded by ``(seed, filter_index)`` like the pixel method's start, so it does not depend on the
    batch; drawn in float64 by ``numpy.random.default_rng((seed, filter_index)).normal(0, std, shape)``.
    """
    rng = np.random.default_rng(seed_entropy(seed, filter_index))
    return rng.normal(0.0, float(std), spectrum_shape(height, width, channels)).astype(np.float32)


def initial_spectra(
    filters: Sequence[Key], height: int, width: int, seed: int = 0, std: float = 0.01, channels: int = 3
) -> np.ndarray:
    """(F, 2, C, H, W // 2 + 1) float32, one seeded spectrum per filter."""
    if not len(filters):
        return np.zeros((0, *spectrum_shape(height, width, channels)), np.float32)
    return np.stack([initial_spectrum(f, height, width, seed, std, channels) for f in filters])


def check_spectrum(spectrum: np.ndarray, height: int, width: int) -> np.ndarray:
    """Spectra (..., 2, C, H, W // 2 + 1) for an ``height x width`` picture of any channel count C."""
    arr = np.asarray(spectrum)
    channels = arr.shape[-3] if arr.ndim >= 4 else 3
    if arr.shape[-4:] != spectrum_shape(height, width, channels):
        raise FiltvizError(
            f"a {height}x{width} px picture needs spectra of shape (..., "
            f"{', '.join(map(str, spectrum_shape(height, width, channels)))}), got {arr.shape}"
        )
    return arr


def spectrum_to_image(
    spectrum: np.ndarray, height: int, width: int, *, decay: float = 1.0, divisor: float = 4.0, decorrelate: bool = True
) -> np.ndarray:
    """The numpy reference of SPEC.md §15.2, in float64: spectra (..., 2, C, H, W//2+1) -> pixel
    images (..., H, W, C) in (0, 255) (C = 3: RGB, colour-decorrelated; other C: no colour mixing).

    ``t = irfft2((re + i im) * scale, s=(H, W), norm="ortho") / divisor``; ``u[d] = sum_c M[d, c] t[c]``;
    ``x = 255 * sigmoid(u)``. Where the half spectrum is not Hermitian (the imaginary parts of the
    constant and Nyquist terms) the inverse transform keeps the real part, as numpy, torch and
    TensorFlow all do.
    """
    spec = check_spectrum(spectrum, height, width).astype(np.float64)
    scale = frequency_scale(height, width, decay)
    complex_spec = (spec[..., 0, :, :, :] + 1j * spec[..., 1, :, :, :]) * scale
    t = np.fft.irfft2(complex_spec, s=(int(height), int(width)), norm="ortho") / float(divisor)  # (..., C, H, W)
    u = np.einsum("dc,...chw->...hwd", color_matrix(decorrelate, spec.shape[-3]), t)
    return PIXEL_MAX / (1.0 + np.exp(-u))


def to_uint8(raw: np.ndarray) -> np.ndarray:
    """The fourier method's display image: its pixels as they are, rounded to the nearest level.

    No contrast stretch (unlike the pixel method's deprocess): the sigmoid already keeps every
    value in (0, 255), so the picture is shown in the colours the network saw.
    """
    return np.clip(np.floor(np.asarray(raw, np.float64) + 0.5), 0, 255).astype(np.uint8)
