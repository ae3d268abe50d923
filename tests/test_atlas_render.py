"""The atlas writes each method's snapshots with that method's own display rule, like its final picture."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from filtviz_core import methods
from filtviz_core.site.chunks import Chunk
from torch_filtviz.atlas.methods import get_method
from torch_filtviz.atlas.render import Worker, write_pictures


def rendered(method: str, raw: np.ndarray, steps: int = 4) -> SimpleNamespace:
    """What a method's render returns for one filter, with one snapshot before the last step."""
    final = methods.display(method)(raw)
    return SimpleNamespace(
        images=final,
        losses=np.zeros((len(raw), steps + 1)),
        snapshots={2: raw, steps: raw},
        dead=np.zeros(len(raw), bool),
        seconds=1.0,
        device="cpu",
        params={"steps": steps},
    )


@pytest.mark.parametrize("method", ["pixel", "fourier"])
def test_snapshots_use_the_methods_display_rule(tmp_path, method):
    # a low-contrast picture (pixels 100-140): the pixel method stretches it, the fourier method shows it as it is
    ramp = np.add.outer(np.linspace(0, 20, 48), np.linspace(0, 20, 48))  # smooth: JPEG keeps it
    raw = np.repeat((100 + ramp)[None, :, :, None], 3, axis=3).astype(np.float32)
    result = rendered(method, raw)
    entries = write_pictures(tmp_path, Chunk("conv", method, (0,)), get_method(method), result, {}, Worker(run="r"))
    snapshot = np.asarray(Image.open(tmp_path / entries[0]["files"]["snapshots"]["2"]).convert("RGB"), np.float64)
    wanted = methods.display(method)(raw[0]).astype(np.float64)
    assert np.abs(snapshot - wanted).mean() < 4  # JPEG: close, not bitwise
    assert abs(np.ptp(snapshot) - np.ptp(wanted)) < 20
