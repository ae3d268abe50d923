"""Parameterizations: what the loop optimizes (``theta``) and how it becomes a picture (SPEC.md §16.1).

Every parameterization has ``theta`` (the leaf tensor the gradient is taken of, one row per batch
element) and ``picture(theta)``: ``(n, C, H, W)`` in pixel units (0-255, the units the model's
own preprocessing expects), NCHW as the network takes it; C is the model's input channel count (3 RGB,
1 grey, N multispectral; colours are decorrelated for C = 3 only).

* :class:`PixelParam` (the pixel method, SPEC §2-§3): theta is the picture itself.
* :class:`FourierParam` (SPEC §15.2): theta is one spectrum per element; :class:`FourierImage` turns
  it into a picture: scaled by ``1 / f``, inverse real FFT (orthonormal), divided by a constant,
  colour-decorrelated, squashed by a sigmoid. The constants come from ``filtviz_core.fourier``, so
  tf_reference builds the identical picture.
* :class:`MacoParam` (SPEC §17.2): theta is one phase per element; the magnitude is fixed
  (``filtviz_core.maco.magnitude``); :class:`MacoImage` makes the picture. It asks the loop for the
  picture's gradient (``transparency = True``), accumulated into the transparency map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from filtviz_core import fourier, maco
from filtviz_core.algorithm import Key
from filtviz_core.methods import FourierOptions, MacoOptions


class FourierImage:
    """Spectra ``(n, 2, C, H, W // 2 + 1)`` float32 -> pictures ``(n, H, W, C)`` float32, NHWC, contiguous.

    NHWC on purpose: the transform gathers whole pixels, and an NHWC batch permuted to NCHW is
    already in the ``channels_last`` layout the CPU convolutions prefer.
    """

    def __init__(
        self, height: int, width: int, options: FourierOptions, device: torch.device, channels: int = 3
    ) -> None:
        self.height, self.width = int(height), int(width)
        scale = fourier.frequency_scale(height, width, options.decay).astype(np.float32)
        self.scale = torch.from_numpy(scale).to(device)  # (H, W // 2 + 1)
        matrix = fourier.color_matrix(options.decorrelate, channels).astype(np.float32)
        self.matrix = torch.from_numpy(matrix).to(device)
        self.divisor = float(np.float32(options.divisor))

    def __call__(self, spectrum: torch.Tensor) -> torch.Tensor:
        real = spectrum[:, 0] * self.scale
        imag = spectrum[:, 1] * self.scale
        t = torch.fft.irfftn(torch.complex(real, imag), s=(self.height, self.width), dim=(-2, -1), norm="ortho")
        t = t / self.divisor  # (n, C, H, W)
        u = torch.einsum("dc,nchw->nhwd", self.matrix, t)
        return (torch.sigmoid(u) * fourier.PIXEL_MAX).contiguous()


class PixelParam:
    """The picture is the parameter: ``theta`` (n, C, H, W) float32 pixels from NHWC starts ``x0``,
    in the ``channels_last`` memory format when asked (the CPU convolutions' faster layout)."""

    def __init__(self, x0: np.ndarray, device: torch.device, channels_last: bool) -> None:
        # clone(): a CPU tensor from_numpy shares the caller's init array, which must never be updated in place.
        x = torch.from_numpy(np.ascontiguousarray(x0)).to(device).permute(0, 3, 1, 2)
        self.theta = x.clone(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self.theta.requires_grad_(True)

    def picture(self, theta: torch.Tensor) -> torch.Tensor:
        return theta


class FourierParam:
    """One seeded spectrum per element (``filtviz_core.fourier.initial_spectra`` of the elements' keys);
    the picture is :class:`FourierImage`'s NHWC result viewed as NCHW (no copy: channels_last layout)."""

    def __init__(
        self,
        keys: Sequence[Key],
        seed: int,
        height: int,
        width: int,
        options: FourierOptions,
        device: torch.device,
        channels: int = 3,
    ) -> None:
        spectra = fourier.initial_spectra(list(keys), height, width, seed, options.init_std, channels)
        self.theta = torch.from_numpy(spectra).to(device)
        self.theta.requires_grad_(True)
        self.image = FourierImage(height, width, options, device, channels)

    def picture(self, theta: torch.Tensor) -> torch.Tensor:
        return self.image(theta).permute(0, 3, 1, 2)


class MacoImage:
    """Phases ``(n, C, H, W // 2 + 1)`` float32 -> pictures ``(n, H, W, C)`` float32, NHWC (SPEC §17.2):
    phase standardized, ``magnitude (cos + i sin)``, inverse real FFT, image standardized, colours
    recorrelated, ``255 sigmoid``; written as tf_reference writes it."""

    def __init__(self, magnitude: np.ndarray, height: int, width: int, device: torch.device) -> None:
        self.height, self.width = int(height), int(width)
        self.magnitude = torch.from_numpy(np.asarray(magnitude, np.float32)).to(device)  # (C, H, W // 2 + 1)
        matrix = fourier.color_matrix(True, self.magnitude.shape[0]).astype(np.float32)
        self.matrix = torch.from_numpy(matrix).to(device)

    def __call__(self, phase: torch.Tensor) -> torch.Tensor:
        dims = (1, 2, 3)
        p = (phase - phase.mean(dim=dims, keepdim=True)) / (
            phase.std(dim=dims, keepdim=True, correction=0) + maco.STD_EPS
        )
        spectrum = torch.complex(torch.cos(p) * self.magnitude, torch.sin(p) * self.magnitude)
        t = torch.fft.irfftn(spectrum, s=(self.height, self.width), dim=(-2, -1))  # (n, C, H, W), 1/(HW)
        t = (t - t.mean(dim=dims, keepdim=True)) / (t.std(dim=dims, keepdim=True, correction=0) + maco.STD_EPS)
        u = torch.einsum("dc,nchw->nhwd", self.matrix, t)
        return (torch.sigmoid(u) * fourier.PIXEL_MAX).contiguous()


class MacoParam:
    """One seeded phase per element (``filtviz_core.maco.initial_phases``) and the fixed magnitude; the
    picture is :class:`MacoImage`'s NHWC result viewed as NCHW."""

    transparency = True  # the loop accumulates |d objective / d picture| (SPEC §17.5)

    def __init__(
        self,
        keys: Sequence[Key],
        seed: int,
        height: int,
        width: int,
        options: MacoOptions,
        device: torch.device,
        channels: int = 3,
    ) -> None:
        self.theta = torch.from_numpy(maco.initial_phases(list(keys), height, width, seed, channels)).to(device)
        self.theta.requires_grad_(True)
        mag = maco.magnitude(height, width, options.magnitude, channels)
        self.image = MacoImage(mag, height, width, device)

    def picture(self, theta: torch.Tensor) -> torch.Tensor:
        return self.image(theta).permute(0, 3, 1, 2)
