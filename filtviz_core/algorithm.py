"""The framework-free parts of the filter-visualization algorithm (tf_reference/SPEC.md).

Both frameworks take their starting images, border rule, snapshot rule, filter parsing and
display deprocessing from here, so these pieces cannot drift apart between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from filtviz_core.errors import FiltvizError

DEFAULT_STEPS = 100
DEFAULT_SIZE = 128
DEFAULT_LR = 1.0  # pixel units per step (the step is RMS-normalised)
DEFAULT_SEED = 0
DEFAULT_SNAPSHOTS: tuple[int, ...] = (10, 100)
OBJECTIVES = ("pre_relu", "post_relu")
DEFAULT_OBJECTIVE = "pre_relu"

INIT_MEAN = 128.0  # grey
INIT_SPREAD = 20.0  # uniform noise of +-10 pixel units around it
BORDER = 2  # feature-map positions dropped at each edge by the objective ...
BORDER_MIN_SIDE = 4  # ... when both sides of the map exceed this
RMS_FLOOR = 1e-12
DEPROCESS_STD = 0.15
DEPROCESS_EPS = 1e-5
DEFAULT_CHANNELS = 3  # RGB; a grey or multispectral model's pictures have its own input channel count


Key = int | tuple[int, ...]  # what seeds one batch element: a filter index, or (filter, stream, k)
DIVERSITY_STREAM = 2  # element k of a diversity group of filter f is seeded by (seed, f, 2, k)


def seed_entropy(seed: int, key: Key, *more: int) -> tuple[int, ...]:
    """The entropy of ``numpy.random.default_rng`` for one element: ``(seed, *key, *more)``."""
    return (
        int(seed),
        *((int(key),) if isinstance(key, (int, np.integer)) else tuple(int(k) for k in key)),
        *(int(m) for m in more),
    )


def element_keys(filters: Sequence[int], group: int = 1) -> list[Key]:
    """The seeding key of each batch element: the filter itself (one picture per filter), or
    ``(f, DIVERSITY_STREAM, k)`` for the k-th of ``group`` pictures of filter f (stacked filter by filter)."""
    if group <= 1:
        return [int(f) for f in filters]
    return [(int(f), DIVERSITY_STREAM, k) for f in filters for k in range(int(group))]


def check_channels(channels: int) -> int:
    """A picture's channel count: a whole number >= 1 (1 grey, 3 RGB, N multispectral)."""
    if isinstance(channels, bool) or int(channels) != channels or channels < 1:
        raise FiltvizError(f"input channels must be a whole number >= 1 (1 grey, 3 RGB, ...), got {channels!r}")
    return int(channels)


def check_given_channels(given: int | None, found: int, where: str) -> int:
    """The model's channel count ``found`` (read from ``where``), checked against a ``given`` one (None: not given)."""
    if given is None:
        return int(found)
    if check_channels(given) != int(found):
        raise FiltvizError(
            f"in_channels {given} given, but the model's {where} takes {int(found)} "
            f"channel{'s' if int(found) != 1 else ''}: give {int(found)} or leave it out"
        )
    return int(found)


def initial_image(
    filter_index: Key, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED, channels: int = DEFAULT_CHANNELS
) -> np.ndarray:
    """The seeded start of one filter: ``128 + 20 * (u - 0.5)``, u ~ U[0,1) of shape (size, size, channels)
    from rng((seed, filter)).

    Seeding by ``(seed, filter_index)`` makes a filter's start independent of its batch. A tuple key
    (a diversity group's element, :func:`element_keys`) seeds by ``(seed, *key)``. The same rule for any
    channel count; 3 (RGB) is the canonical one.
    """
    u = np.random.default_rng(seed_entropy(seed, filter_index)).uniform(size=(size, size, int(channels)))
    return (INIT_MEAN + INIT_SPREAD * (u - 0.5)).astype(np.float32)


def initial_images(
    filters: Sequence[Key], size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED, channels: int = DEFAULT_CHANNELS
) -> np.ndarray:
    """(F, size, size, channels) float32 starting images, one per filter (or element key), in pixel units."""
    return (
        np.stack([initial_image(f, size, seed, channels) for f in filters])
        if len(filters)
        else np.zeros((0, size, size, int(channels)), np.float32)
    )


def check_init(init: np.ndarray, n_filters: int | None = None, channels: int = DEFAULT_CHANNELS) -> np.ndarray:
    """Validate an explicit init: (H, W, C) for one filter or (F, H, W, C), finite; returns float32."""
    arr = np.asarray(init, dtype=np.float32)
    c = int(channels)
    expected = f"(F, H, W, {c})" if n_filters is not None else f"(H, W, {c})"
    if arr.ndim != (4 if n_filters is not None else 3) or arr.shape[-1] != c:
        more = f" (the model takes {c} input channel{'s' if c != 1 else ''})" if c != DEFAULT_CHANNELS else ""
        raise FiltvizError(f"init must be a {expected} float32 array in pixel units{more}, got shape {arr.shape}")
    if n_filters is not None and arr.shape[0] != n_filters:
        raise FiltvizError(f"init holds {arr.shape[0]} images for {n_filters} filters")
    if not np.all(np.isfinite(arr)):
        raise FiltvizError("init holds NaN or infinite values")
    return arr


def interior(height: int, width: int) -> tuple[slice, slice]:
    """Feature-map positions the objective averages: drop BORDER at each edge if both sides > 4."""
    if height > BORDER_MIN_SIDE and width > BORDER_MIN_SIDE:
        return slice(BORDER, height - BORDER), slice(BORDER, width - BORDER)
    return slice(0, height), slice(0, width)


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise FiltvizError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    return objective


def check_steps(steps: int, lr: float) -> None:
    if int(steps) != steps or steps < 0:
        raise FiltvizError(f"steps must be a whole number >= 0, got {steps}")
    if not np.isfinite(lr) or lr <= 0:
        raise FiltvizError(f"lr must be a positive number, got {lr}")


def check_seed(seed: int) -> None:
    """Seeds feed ``numpy.random.default_rng((seed, filter))``, which takes whole numbers >= 0 only."""
    if int(seed) != seed or seed < 0:
        raise FiltvizError(f"seed must be a whole number >= 0, got {seed}")


def snapshot_steps(snapshots: Iterable[int] | None, steps: int) -> tuple[int, ...]:
    """Which steps to keep images of.

    The default (None, or the :data:`DEFAULT_SNAPSHOTS` object itself, which the functions take as
    their default argument) keeps those of ``(10, 100)`` within ``0..steps`` plus the last step, so
    a short run needs no snapshot list of its own. Any list given explicitly, even one equal to the
    default, must lie in ``0..steps``: a snapshot the caller asked for is never dropped silently.
    """
    if snapshots is None or snapshots is DEFAULT_SNAPSHOTS:
        return tuple(sorted({s for s in DEFAULT_SNAPSHOTS if s <= steps} | {steps}))
    wanted = sorted({int(s) for s in snapshots})
    bad = [s for s in wanted if not 0 <= s <= steps]
    if bad:
        raise FiltvizError(f"snapshots {bad} lie outside 0..{steps} (the number of steps)")
    return tuple(wanted)


def parse_filters(spec: str | int | Iterable[int], count: int, layer: str = "the layer") -> list[int]:
    """Filter indices from ``"0-15"``, ``"0,3,7-9"``, an int or a list, checked against ``count``."""
    if isinstance(spec, str):
        indices: list[int] = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            lo, sep, hi = part.partition("-")
            try:
                indices.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
            except ValueError:
                raise FiltvizError(f"bad filter list {spec!r}: use indices and ranges like 0-15,20") from None
    elif isinstance(spec, (int, np.integer)):
        indices = [int(spec)]
    else:
        indices = [int(i) for i in spec]
    if not indices:
        raise FiltvizError(f"no filters selected by {spec!r}")
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise FiltvizError(f"filter {bad[0]} is out of range: {layer} has {count} filters (0-{count - 1})")
    return indices


def deprocess(raw: np.ndarray, crop: int = 0) -> np.ndarray:
    """Display image(s) from raw pixel-space result(s): (…, H, W, C) float -> uint8 (any channel count).

    Per image: subtract its mean, divide by (std + 1e-5), times 0.15, plus 0.5, clip to [0, 1],
    times 255, truncated to uint8 (the Keras example's recipe). ``crop`` drops that many pixels
    at each border first.
    """
    x = np.asarray(raw, dtype=np.float64)
    if x.ndim not in (3, 4) or x.shape[-1] < 1:
        raise FiltvizError(f"deprocess expects (H, W, C) or (F, H, W, C) images, got shape {x.shape}")
    if crop:
        x = x[..., crop:-crop, crop:-crop, :]
    axes = (-3, -2, -1)
    x = x - x.mean(axis=axes, keepdims=True)
    x = x / (x.std(axis=axes, keepdims=True) + DEPROCESS_EPS)
    x = np.clip(x * DEPROCESS_STD + 0.5, 0.0, 1.0)
    return (x * 255.0).astype(np.uint8)


def check_image_size(size: int, minimum: int, layer: str) -> None:
    if size < minimum:
        raise FiltvizError(f"size {size} px is too small for {layer}: it needs at least {minimum} px")
