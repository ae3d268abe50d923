"""What the fourier method optimizes, and how it becomes a picture (tf_reference/SPEC.md §15.2).

:class:`FourierImage` turns a batch of spectra, one per filter, into RGB pixel images (0-255, the
units the model's own preprocessing expects): scaled by ``1 / f``, inverse real FFT (orthonormal),
divided by a constant, colour-decorrelated, squashed by a sigmoid. The constants come from
``filtviz_core.fourier``, so tf_reference builds the identical picture.
"""

from __future__ import annotations

import numpy as np
import torch

from filtviz_core import fourier
from filtviz_core.methods import FourierOptions


class FourierImage:
    """Spectra ``(n, 2, 3, H, W // 2 + 1)`` float32 -> pictures ``(n, H, W, 3)`` float32, NHWC, contiguous.

    NHWC on purpose: the transform gathers whole pixels, and an NHWC batch permuted to NCHW is
    already in the ``channels_last`` layout the CPU convolutions prefer.
    """

    def __init__(self, height: int, width: int, options: FourierOptions, device: torch.device) -> None:
        self.height, self.width = int(height), int(width)
        scale = fourier.frequency_scale(height, width, options.decay).astype(np.float32)
        self.scale = torch.from_numpy(scale).to(device)  # (H, W // 2 + 1)
        self.matrix = torch.from_numpy(fourier.color_matrix(options.decorrelate).astype(np.float32)).to(device)
        self.divisor = float(np.float32(options.divisor))

    def __call__(self, spectrum: torch.Tensor) -> torch.Tensor:
        real = spectrum[:, 0] * self.scale
        imag = spectrum[:, 1] * self.scale
        t = torch.fft.irfftn(torch.complex(real, imag), s=(self.height, self.width), dim=(-2, -1), norm="ortho")
        t = t / self.divisor  # (n, 3, H, W)
        u = torch.einsum("dc,nchw->nhwd", self.matrix, t)
        return (torch.sigmoid(u) * fourier.PIXEL_MAX).contiguous()
