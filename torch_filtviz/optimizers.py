"""Optimizers: how the loop moves ``theta`` given its gradient (SPEC.md §6, §15.6, §16.1). Both ascend.

Each has ``step(theta, grad, frozen)``, in place; ``frozen`` marks the dead elements (SPEC §9), which
never move. :class:`NormalizedStep` is the pixel method's RMS-normalised step (SPEC §6).

:class:`Adam` is written out (SPEC §15.6), so that both frameworks run the same formula.

``torch.optim.Adam`` and Keras' Adam differ in where epsilon goes and fuse operations differently;
this class and tf_reference's twin compute, in float32 and in this order,
``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g g``, ``p = p + lr (m / c1) / (sqrt(v / c2) + eps)``
with ``c1 = 1 - b1^t``, ``c2 = 1 - b2^t`` (``t`` = 1, 2, ...), every constant rounded once to float32.
It ascends (``+``): the objective is maximized. Elementwise, so no filter's step depends on another's.
"""

from __future__ import annotations

import numpy as np
import torch

from filtviz_core import maco
from filtviz_core.algorithm import RMS_FLOOR


def f32(x: float) -> float:
    """``x`` rounded to float32 (and back to a Python float, exactly), as both frameworks use it."""
    return float(np.float32(x))


class Adam:
    """Adam state for one parameter tensor; :meth:`ascend` applies one step in place."""

    def __init__(
        self, param: torch.Tensor, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps

    @torch.no_grad()
    def ascend(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        self.t += 1
        b1, b2 = f32(self.beta1), f32(self.beta2)
        c1, c2 = f32(1.0 - self.beta1**self.t), f32(1.0 - self.beta2**self.t)
        self.m = b1 * self.m + f32(1.0 - self.beta1) * grad
        self.v = b2 * self.v + f32(1.0 - self.beta2) * (grad * grad)
        param.add_(f32(self.lr) * (self.m / c1) / (torch.sqrt(self.v / c2) + f32(self.eps)))

    def step(self, param: torch.Tensor, grad: torch.Tensor, frozen: torch.Tensor) -> None:
        """One ascending step; a dead element's gradient is taken as 0, so it stays put (SPEC §15.8)."""
        self.ascend(param, torch.where(frozen, torch.zeros_like(grad), grad))


class NAdam:
    """Keras 3's NAdam (the maco method, SPEC §17.4), written out as tf_reference writes it, ascending:
    ``m += (g - m)(1 - b1)``, ``v += (g g - v)(1 - b2)``, ``m_hat = (a m) / b + (c g) / d``, ``v_hat = v / e``,
    ``p += (m_hat lr) / (sqrt(v_hat) + eps)`` with ``filtviz_core.maco.nadam_constants`` (Keras' momentum
    schedule ``u_t = b1 (1 - 0.5 * 0.96^t)``), every constant rounded once to float32. Elementwise."""

    def __init__(
        self, param: torch.Tensor, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7
    ) -> None:
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps

    @torch.no_grad()
    def step(self, param: torch.Tensor, grad: torch.Tensor, frozen: torch.Tensor) -> None:
        """One ascending step; a dead element's gradient is taken as 0, so it stays put."""
        g = torch.where(frozen, torch.zeros_like(grad), grad)
        self.t += 1
        c = maco.nadam_constants(self.beta1, self.beta2, self.t)
        self.m = self.m + (g - self.m) * f32(1.0 - self.beta1)
        self.v = self.v + (g * g - self.v) * f32(1.0 - self.beta2)
        m_hat = (c["a"] * self.m) / c["b"] + (c["c"] * g) / c["d"]
        v_hat = self.v / c["e"]
        param.add_((m_hat * f32(self.lr)) / (torch.sqrt(v_hat) + f32(self.eps)))


class NormalizedStep:
    """``x += lr * g / max(rms(g), 1e-12)``, the RMS over each element's own values; optionally
    clipped to 0-255 (dead elements are never clipped: they stay exactly at their start)."""

    def __init__(self, lr: float, clip: bool = False) -> None:
        self.lr, self.clip = lr, clip

    def step(self, param: torch.Tensor, grad: torch.Tensor, frozen: torch.Tensor) -> None:
        rms = grad.square().mean(dim=tuple(range(1, grad.ndim)), keepdim=True).sqrt().clamp_min(RMS_FLOOR)
        with torch.no_grad():
            param.add_(self.lr * grad / rms)  # a dead element's gradient is 0: it stays put
            if self.clip:
                param.copy_(torch.where(frozen, param, param.clamp(0.0, 255.0)))
