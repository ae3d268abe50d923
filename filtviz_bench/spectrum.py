"""How natural a picture looks, by numbers anyone can recompute (numpy only): its power spectrum.

The luminance power of natural photos falls off as ``1 / f**alpha`` with ``alpha`` close to 2; the
high-frequency textures that plain gradient ascent produces on deep filters are much flatter
(``alpha`` near 1 or below) and put a large share of their power above 0.25 cycles/pixel.

Recipe (:func:`spectral_slope`): luminance (Rec. 601 weights) of the uint8 picture, its mean
removed, times a 2-D Hann window (so the picture's edges do not add a cross of spurious power),
``|FFT|**2``, averaged in log-spaced radial frequency bins from ``4 / size`` (below that the window's
own main lobe dominates) to 0.5 cycles/pixel; ``alpha`` is minus the least-squares slope of
log power against log frequency over those bins.
"""

from __future__ import annotations

import numpy as np

LUMA = (0.299, 0.587, 0.114)  # Rec. 601
N_BINS = 12
LOWEST_CYCLES = 4.0  # the lowest bin starts at this many cycles per picture
HIGHEST = 0.5  # cycles/pixel: the Nyquist frequency along an axis
HIGH_CUTOFF = 0.25  # cycles/pixel: "high frequency" for the power share
FLAT_STD = 2.0  # grey levels: a picture whose luminance varies less than this shows nothing


def luminance(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) RGB (any scale) -> (..., H, W) float64 luminance, same scale."""
    x = np.asarray(images, dtype=np.float64)
    if x.shape[-1] != 3:
        raise ValueError(f"expected RGB pictures (..., H, W, 3), got shape {x.shape}")
    return x @ np.asarray(LUMA)


def radial_power(lum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequency in cycles/pixel, power) of every FFT coefficient of one (H, W) luminance picture,
    mean removed and Hann-windowed; the DC term is dropped."""
    h, w = lum.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    spectrum = np.fft.fft2((lum - lum.mean()) * window)
    power = np.abs(spectrum) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    keep = f > 0
    return f[keep], power[keep]


def bin_edges(size: int, n_bins: int = N_BINS) -> np.ndarray:
    """Log-spaced radial bin edges from ``LOWEST_CYCLES / size`` to 0.5 cycles/pixel."""
    return np.geomspace(LOWEST_CYCLES / size, HIGHEST, n_bins + 1)


def binned_spectrum(image: np.ndarray, n_bins: int = N_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(geometric-mean frequency, mean power) per non-empty log-spaced bin of one (H, W, 3) picture."""
    lum = luminance(image)
    f, p = radial_power(lum)
    edges = bin_edges(min(lum.shape), n_bins)
    which = np.digitize(f, edges) - 1
    freqs, powers = [], []
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            freqs.append(np.exp(np.log(f[sel]).mean()))
            powers.append(p[sel].mean())
    return np.asarray(freqs), np.asarray(powers)


def spectral_slope(image: np.ndarray, n_bins: int = N_BINS) -> float:
    """``alpha`` of one (H, W, 3) picture: its luminance power falls off as ``1 / f**alpha``.
    NaN for a picture with no variation at all."""
    freqs, powers = binned_spectrum(image, n_bins)
    ok = powers > 0
    if ok.sum() < 3:
        return float("nan")
    slope = np.polyfit(np.log(freqs[ok]), np.log(powers[ok]), 1)[0]
    return float(-slope)


def high_frequency_share(image: np.ndarray, cutoff: float = HIGH_CUTOFF) -> float:
    """Share of the (windowed, mean-removed) luminance power above ``cutoff`` cycles/pixel; NaN if flat."""
    f, p = radial_power(luminance(image))
    total = p.sum()
    return float(p[f > cutoff].sum() / total) if total > 0 else float("nan")


def is_flat(image: np.ndarray, threshold: float = FLAT_STD) -> bool:
    """Whether a uint8 picture shows nothing: its luminance standard deviation is below ``threshold`` grey levels."""
    return bool(luminance(image).std() < threshold)


def power_law_noise(size: int, beta: float, rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    """(size, size, channels) float64 noise whose power spectrum falls off as ``1 / f**beta``
    (white Gaussian noise shaped in the Fourier domain; zero mean, unit standard deviation per channel)."""
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    amplitude = np.zeros_like(f)
    amplitude[f > 0] = f[f > 0] ** (-beta / 2.0)
    white = rng.standard_normal((channels, size, size))
    x = np.real(np.fft.ifft2(np.fft.fft2(white) * amplitude)).transpose(1, 2, 0)
    x -= x.mean(axis=(0, 1))
    return x / x.std(axis=(0, 1))


def noise_pictures(count: int, size: int, seed: int, beta: float = 2.0, std: float = 0.15 * 255) -> np.ndarray:
    """(count, size, size, 3) uint8 1/f-noise pictures (power ``1 / f**beta``), mean 128, ``std`` grey
    levels per channel (default: the pixel method's display contrast), each from rng((seed, i))."""
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        x = power_law_noise(size, beta, np.random.default_rng((seed, i)))
        out[i] = np.clip(np.round(128.0 + std * x), 0, 255).astype(np.uint8)
    return out
