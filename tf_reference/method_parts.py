"""Each method of ``filtviz_core.methods.REGISTRY`` assembled from the loop's parts (SPEC.md §16).

``pixel`` (§1-§14): the picture itself is optimized, the network sees it as it is, §6's
RMS-normalised step (clipped to 0-255 with ``clip=True``). ``fourier`` (§15): a decorrelated
spectrum (§15.2), the affine transforms of §15.3-§15.4 drawn by numpy (or none with
``transforms=False``), Adam (§15.6). ``maco`` (§17): a phase under a fixed natural-image magnitude
(§17.2), ``crops`` noisy random crops per step (§17.3: V views per picture), NAdam (§17.4).
:data:`PARTS` holds one entry per registered method name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from filtviz_core import algorithm, methods
from filtviz_core import fourier as core_fourier
from filtviz_core import maco as core_maco
from filtviz_core import transforms as draws
from filtviz_core.algorithm import RMS_FLOOR, Key
from filtviz_core.errors import FiltvizError
from filtviz_core.methods import FourierOptions, MacoOptions
from tf_reference.fourier import adam_constants, f32, resample, spectrum_to_image
from tf_reference.loop import Optimizer, Parameterization, Transform
from tf_reference.maco import crop_views, phase_to_image

# --- parameterizations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pixels:
    """§2-§3: the (B, H, W, C) picture in pixel units is the parameter; seeded grey noise, or ``init``."""

    height: int
    width: int
    init: np.ndarray | None = None  # (B, H, W, C): given starts instead of the seeded ones
    identity: bool = True
    channels: int = 3  # the model's input channels (1 grey, 3 RGB, N multispectral)

    def start(self, keys: Sequence[Key], seed: int) -> np.ndarray:
        if self.init is not None:
            return np.asarray(self.init, np.float32)
        return algorithm.initial_images(list(keys), self.height, seed, self.channels)

    def picture(self, params: tf.Tensor) -> tf.Tensor:
        return params


@dataclass(frozen=True)
class Spectrum:
    """§15.2: (B, 2, C, H, W // 2 + 1) spectra -> pictures; seeded N(0, init_std^2) starts."""

    height: int
    width: int
    options: FourierOptions
    identity: bool = False
    channels: int = 3

    def start(self, keys: Sequence[Key], seed: int) -> np.ndarray:
        return core_fourier.initial_spectra(
            list(keys), self.height, self.width, seed, self.options.init_std, self.channels
        )

    def picture(self, params: tf.Tensor) -> tf.Tensor:
        return spectrum_to_image(params, self.height, self.width, self.options)


@dataclass(frozen=True, eq=False)
class Phase:
    """§17.2: (B, C, H, W // 2 + 1) phases under the fixed magnitude -> pictures; seeded N(0, 1) starts.
    Asks the loop for the picture's gradient (the transparency, §17.5)."""

    height: int
    width: int
    options: MacoOptions
    magnitude: np.ndarray  # (C, H, W // 2 + 1) float32, filtviz_core.maco.magnitude
    identity: bool = False
    transparency: bool = True

    def start(self, keys: Sequence[Key], seed: int) -> np.ndarray:
        return core_maco.initial_phases(list(keys), self.height, self.width, seed, int(self.magnitude.shape[0]))

    def picture(self, params: tf.Tensor) -> tf.Tensor:
        return phase_to_image(params, tf.constant(self.magnitude), self.height, self.width)


# --- transforms ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """The network sees the picture as it is."""

    identity: bool = True

    def matrices(self, keys: Sequence[Key], steps: int, seed: int) -> np.ndarray:
        return np.zeros((steps + 1, len(keys), 2, 3), np.float32)  # unused

    def apply(self, picture: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
        return picture


@dataclass(frozen=True)
class Affine:
    """§15.3-§15.4: element i of step k through the affine map of the numpy draw (seed, key i, 1, k)."""

    height: int
    width: int
    options: FourierOptions
    identity: bool = False

    def matrices(self, keys: Sequence[Key], steps: int, seed: int) -> np.ndarray:
        return draws.affines(seed, list(keys), range(steps + 1), self.height, self.width, self.options)

    def apply(self, picture: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
        out_h, out_w = draws.output_size(self.height, self.width, self.options)
        return resample(picture, matrix, out_h, out_w, f32(self.options.pad_value))


class _StepViews:
    """Step k's crops and noise of every element (``filtviz_core.maco.step_views``, numpy's noise: the CPU
    path of SPEC §17.3), drawn when asked."""

    def __init__(
        self,
        keys: Sequence[Key],
        steps: int,
        seed: int,
        height: int,
        width: int,
        options: MacoOptions,
        channels: int = 3,
    ) -> None:
        self.keys, self.steps, self.seed = list(keys), int(steps), int(seed)
        self.height, self.width, self.options, self.channels = height, width, options, int(channels)

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = core_maco.step_views(
            self.seed, self.keys, k, self.steps, self.height, self.width, self.options, self.channels
        )
        return d.rows, d.cols, d.noise()


@dataclass(frozen=True)
class Crops:
    """§17.3: ``crops`` noisy random crops of each element's picture per step, view-major (row v * B + i)."""

    height: int
    width: int
    options: MacoOptions
    identity: bool = False
    channels: int = 3

    @property
    def views(self) -> int:
        return int(self.options.crops)

    def matrices(self, keys: Sequence[Key], steps: int, seed: int) -> _StepViews:  # type: ignore[override]
        return _StepViews(keys, steps, seed, self.height, self.width, self.options, self.channels)

    def apply(self, picture: tf.Tensor, matrix) -> tf.Tensor:
        rows, cols, noise = matrix
        crops = crop_views(picture, rows, cols, noise, f32(self.options.fill))  # (B, V, H, W, C)
        crops = tf.transpose(crops, [1, 0, 2, 3, 4])
        return tf.reshape(crops, [-1, self.height, self.width, self.channels])


# --- optimizers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RmsStep:
    """§6: ``x + lr * g / max(rms, 1e-12)``, the rms over each element's own values; then clip if asked."""

    lr: float
    clip: bool = False

    def state(self, params: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return ()

    def constants(self, k: int) -> tuple[tf.Tensor, ...]:
        return (tf.constant(self.lr, dtype=tf.float32),)

    def update(self, params, g, state, consts):
        (lr,) = consts
        if int(params.shape[0]) == 1:
            rms = tf.sqrt(tf.reduce_mean(tf.square(g)))  # one element: §6 exactly as the one-filter step
        else:
            rms = tf.sqrt(tf.reduce_mean(tf.square(g), axis=list(range(1, params.shape.rank)), keepdims=True))
        params_next = params + lr * g / tf.maximum(rms, RMS_FLOOR)
        if self.clip:
            params_next = tf.clip_by_value(params_next, 0.0, 255.0)
        return params_next, state


@dataclass(frozen=True)
class Adam:
    """§15.6: Adam as in its paper, ascending, every constant rounded once to float32."""

    lr: float
    options: FourierOptions

    def state(self, params: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return tf.zeros_like(params), tf.zeros_like(params)

    def constants(self, k: int) -> tuple[tf.Tensor, ...]:
        c = adam_constants(self.options, self.lr, k + 1)
        return tf.constant(c["lr"]), tf.constant(c["c1"]), tf.constant(c["c2"])

    def update(self, params, g, state, consts):
        o = self.options
        b1, b2, one_b1, one_b2 = f32(o.beta1), f32(o.beta2), f32(1 - o.beta1), f32(1 - o.beta2)
        eps = f32(o.eps)
        lr, c1, c2 = consts
        m, v = state
        m = b1 * m + one_b1 * g
        v = b2 * v + one_b2 * (g * g)
        return params + lr * (m / c1) / (tf.sqrt(v / c2) + eps), (m, v)


@dataclass(frozen=True)
class NAdam:
    """§17.4: Keras 3's NAdam, ascending, written out as torch_filtviz writes it, every constant float32."""

    lr: float
    options: MacoOptions

    def state(self, params: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return tf.zeros_like(params), tf.zeros_like(params)

    def constants(self, k: int) -> tuple[tf.Tensor, ...]:
        c = core_maco.nadam_constants(self.options.beta1, self.options.beta2, k + 1)
        return tuple(tf.constant(v, tf.float32) for v in (f32(self.lr), c["a"], c["b"], c["c"], c["d"], c["e"]))

    def update(self, params, g, state, consts):
        o = self.options
        lr, a, b, c, d, e = consts
        m, v = state
        m = m + (g - m) * f32(1.0 - o.beta1)
        v = v + (g * g - v) * f32(1.0 - o.beta2)
        m_hat = (a * m) / b + (c * g) / d
        v_hat = v / e
        return params + (m_hat * lr) / (tf.sqrt(v_hat) + f32(o.eps)), (m, v)


# --- the methods -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parts:
    """One method's parameterization, transform and optimizer for one picture size."""

    method: str
    parameterization: Parameterization
    transform: Transform
    optimizer: Optimizer
    seen_size: tuple[int, int]  # what the network sees: (Ho, Wo)


def pixel_parts(
    height: int,
    width: int,
    lr: float,
    options: FourierOptions | None = None,
    *,
    clip: bool = False,
    init: np.ndarray | None = None,
    channels: int = 3,
) -> Parts:
    if options is not None:
        raise FiltvizError("the pixel method takes no method options")
    return Parts(
        "pixel",
        Pixels(int(height), int(width), init, channels=int(channels)),
        Identity(),
        RmsStep(float(lr), bool(clip)),
        (int(height), int(width)),
    )


def fourier_parts(
    height: int,
    width: int,
    lr: float,
    options: FourierOptions | None = None,
    *,
    clip: bool = False,
    init: np.ndarray | None = None,
    channels: int = 3,
) -> Parts:
    options = methods.fourier_options(options)
    methods.check_pixel_only(options, init_given=init is not None, clip=clip)
    transform: Transform = Affine(int(height), int(width), options) if options.transforms else Identity()
    return Parts(
        "fourier",
        Spectrum(int(height), int(width), options, channels=int(channels)),
        transform,
        Adam(float(lr), options),
        draws.output_size(int(height), int(width), options),
    )


def maco_parts(
    height: int,
    width: int,
    lr: float,
    options: MacoOptions | None = None,
    *,
    clip: bool = False,
    init: np.ndarray | None = None,
    channels: int = 3,
) -> Parts:
    options = methods.maco_options(options)
    methods.check_pixel_only(options, init_given=init is not None, clip=clip)
    mag = core_maco.magnitude(int(height), int(width), options.magnitude, int(channels))
    return Parts(
        "maco",
        Phase(int(height), int(width), options, mag),
        Crops(int(height), int(width), options, channels=int(channels)),
        NAdam(float(lr), options),
        (int(height), int(width)),
    )


PARTS: dict[str, Callable[..., Parts]] = {"pixel": pixel_parts, "fourier": fourier_parts, "maco": maco_parts}
assert set(PARTS) == set(methods.REGISTRY), "every registered method needs its parts here"


def assemble(
    method: str,
    height: int,
    width: int,
    lr: float,
    options: FourierOptions | MacoOptions | None = None,
    *,
    clip: bool = False,
    init: np.ndarray | None = None,
    channels: int = 3,
) -> Parts:
    """The parts of ``method`` (a name of ``filtviz_core.methods.REGISTRY``) for ``height x width`` pictures
    of ``channels`` channels (the model's input: 3 RGB, 1 grey, N multispectral)."""
    return PARTS[methods.check_method(method)](height, width, lr, options, clip=clip, init=init, channels=channels)
