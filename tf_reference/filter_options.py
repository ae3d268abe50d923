"""``unit`` and ``diversity`` of ``visualize_filters`` (SPEC.md §16.5), checked without TensorFlow.

The API and the command line share these checks, so ``python -m tf_reference filters`` refuses a bad
value in one line before TensorFlow is imported.
"""

from __future__ import annotations

import math
import numbers

from filtviz_core.errors import FiltvizError
from filtviz_core.objectives import DIVERSITY_WEIGHT, UNITS

DEFAULT_UNIT = "channel"


def check_unit(unit: str) -> str:
    if unit not in UNITS:
        raise FiltvizError(f"unknown unit {unit!r}; valid: {', '.join(UNITS)}")
    return unit


def check_diversity(diversity: int, diversity_weight: float | None) -> tuple[int, float]:
    """(K, w): K pictures per filter (a whole number >= 1) and the diversity weight (default
    ``filtviz_core.objectives.DIVERSITY_WEIGHT``; with K = 1 there is no penalty and the weight is 0)."""
    if isinstance(diversity, bool) or not isinstance(diversity, numbers.Integral) or diversity < 1:
        raise FiltvizError(f"diversity must be a whole number >= 1 (pictures per filter), got {diversity!r}")
    if diversity_weight is not None:
        ok = (
            not isinstance(diversity_weight, bool)
            and isinstance(diversity_weight, numbers.Real)
            and math.isfinite(float(diversity_weight))
            and diversity_weight >= 0
        )
        if not ok:
            raise FiltvizError(f"diversity_weight must be a finite number >= 0, got {diversity_weight!r}")
    if diversity == 1:
        return 1, 0.0
    return int(diversity), float(DIVERSITY_WEIGHT if diversity_weight is None else diversity_weight)
