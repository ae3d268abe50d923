"""The options types of the methods: every parameter of a method other than steps, lr and seed.

Their own module so that the framework-free parts of a method (``transforms``, ``maco``) and the method
registry (``methods``, which re-exports them) can all read them without importing each other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FourierOptions:
    """Every parameter of the fourier method other than steps, lr and seed (SPEC.md §15).

    Lucid's values are the starting point; SPEC.md §15.9 says which were measured and why.
    """

    # parameterization (§15.2)
    init_std: float = 0.01  # std of the seeded N(0, std^2) real and imaginary parts (Lucid: 0.01)
    decay: float = 1.0  # spectrum scale 1 / max(f, 1/max(H, W)) ** decay (Lucid: 1)
    divisor: float = 4.0  # the inverse FFT's image is divided by this before the colours (Lucid: 4)
    decorrelate: bool = True  # Lucid's ImageNet colour-correlation square root, max column norm 1
    # transformation robustness (§15.3); transforms=False hands the image to the network as it is
    transforms: bool = True
    pad: int = 12  # grey border around the image, pixels (Lucid: 12)
    pad_value: float = 127.5  # the border's grey, pixel units (Lucid: 0.5 of the [0, 1] range)
    jitter: int = 8  # first random crop: 0..jitter pixels off, per axis (Lucid: 8)
    scale: tuple[float, float] = (0.9, 1.1)  # uniform zoom about the centre (Lucid: 0.90 ... 1.10)
    rotate: float = 10.0  # uniform rotation in [-rotate, rotate] degrees about the centre (Lucid: +-10)
    jitter2: int = 4  # second random crop (Lucid: 4)
    # optimizer (§15.6): Adam, written out in both frameworks
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def as_params(self) -> dict[str, Any]:
        """The options as plain values for run.json (tuples become lists there)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


OPTION_NAMES = tuple(f.name for f in dataclasses.fields(FourierOptions))


@dataclass(frozen=True)
class MacoOptions:
    """Every parameter of the MACO method other than steps, lr and seed (SPEC.md §17): Xplique 2.0.2's values."""

    crops: int = 32  # views per step (Xplique's nb_crops); fewer are cheaper, e.g. method_options={"crops": 8}
    noise: float = 0.08  # noise std in Xplique's (-1, 1) units (x 127.5 in pixels), plus uniform +-noise/2
    box: tuple[float, float] = (0.5, 0.05)  # mean crop side, a share of the picture, from step 0 to the last
    box_std: float = 0.05  # std of the crop side around that mean, clipped to [0.05, 1]
    center_std: float = 0.15  # crop centres ~ 0.5 + N(0, center_std), in picture units
    fill: float = 127.5  # what a crop sees outside the picture (Xplique's 0 in (-1, 1))
    magnitude: str | None = None  # a folder of photos: their mean magnitude instead of xplique's ImageNet one
    # optimizer: Keras 3's NAdam, written out in both frameworks
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-7

    def as_params(self) -> dict[str, Any]:
        """The options as plain values for run.json (tuples become lists there)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def cpu_preset(cls) -> MacoOptions:
        """The cheaper setting for CPUs: 8 crops per step instead of 32, a quarter of the image passes
        (docs/methods.md gives its measured quality beside the default's; ``--crops 8`` on the command line).

        >>> MacoOptions.cpu_preset().crops
        8
        """
        return cls(crops=MACO_CPU_CROPS)


MACO_CPU_CROPS = 8  # MacoOptions.cpu_preset(): crops per step
MACO_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(MacoOptions))
MethodOptions = FourierOptions | MacoOptions
