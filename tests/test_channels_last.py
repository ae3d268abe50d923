"""Layers whose maps are channels last (ConvNeXt's ``nn.Linear`` on (N, H, W, C)) count and show their units.

``features.1.0.block.3`` of ConvNeXt-tiny is an ``nn.Linear`` 96 -> 384 applied to NHWC maps: 384
units on a 16 x 16 map for a 64 px input. Every place that counts filters or reads a map must say so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torch_filtviz as fv
from filtviz_core.algorithm import interior
from torch_filtviz.atlas.build import prepare
from torch_filtviz.atlas.examples import photo_peaks
from torch_filtviz.atlas.receptive import probe_layers, receptive_field
from torch_filtviz.catalog import layer_rows
from torch_filtviz.hooks import target_channels

LAYER = "features.1.0.block.3"  # nn.Linear(96, 384) on (N, H, W, C)
UNITS = 384


@pytest.fixture(scope="module")
def convnext():
    return fv.load_model("convnext_tiny", weights="random")


def grey(size: int) -> np.ndarray:
    return np.full((size, size, 3), 128, np.uint8)


def hand_maps(model, pixels: np.ndarray) -> torch.Tensor:
    """The layer's output computed by hand, as (N, C, H, W)."""
    net = model.features
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        h = net.features[0](model.preprocess(x))
        block = net.features[1][0].block
        return block[3](block[2](block[1](block[0](h)))).permute(0, 3, 1, 2)


def test_targets_say_where_the_channels_are(convnext):
    assert fv.resolve_target(convnext, LAYER).channel_dim == -1  # the module's own output, too
    assert fv.resolve_target(convnext, LAYER, "pre_relu").channel_dim == -1
    assert fv.resolve_target(convnext, "features.1.0.block.0").channel_dim == 1  # the depthwise conv: NCHW
    target = fv.resolve_target(convnext, LAYER)
    assert target_channels(target, torch.empty(2, 16, 16, UNITS)) == UNITS


@pytest.mark.parametrize("size", [64, 96])
def test_layer_channels_counts_the_units_not_the_map_height(convnext, size):
    assert fv.layer_channels(convnext, LAYER, size=size) == UNITS


def test_feature_maps_are_nchw(convnext):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    maps = fv.feature_maps(convnext, pixels, LAYER)[LAYER]
    assert tuple(maps.shape) == (1, UNITS, 16, 16)
    torch.testing.assert_close(maps, hand_maps(convnext, pixels), rtol=1e-5, atol=1e-5)


def test_probe_counts_units_and_measures_the_map(convnext):
    geometry, map_size, channels = probe_layers(convnext, [LAYER], 64)[LAYER]
    assert (map_size, channels) == ((16, 16), UNITS)
    # stem: 4x4 conv, stride 4; then the block's 7x7 depthwise conv (padding 3): a chain, so exact
    assert (geometry.stride, geometry.size, geometry.exact) == ((4, 4), (28, 28), True)
    assert receptive_field(convnext, LAYER, 64, objective="pre_relu")[1] == (16, 16)


def test_atlas_plans_every_unit(convnext, tmp_path):
    job = prepare(
        convnext, tmp_path / "site", layers=[LAYER], per_layer=None, params={"steps": 1, "size": 64}, examples=0
    )
    assert job.wanted == [(LAYER, list(range(UNITS)))]
    entry = next(e for e in job.run["model"]["layers"] if e["name"] == LAYER)
    assert entry["filters"] == UNITS and entry["geometry"]["stride"] == [4, 4]


def test_dataset_examples_peak_per_unit(convnext):
    rng = np.random.default_rng(1)
    pixels = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    peaks = photo_peaks(convnext, [LAYER], [None, None], pixels, objective=None).peaks[LAYER]
    assert peaks.values.shape == (2, UNITS)
    maps = torch.cat([hand_maps(convnext, p) for p in pixels])  # (2, C, 16, 16)
    flat = maps.flatten(2)
    np.testing.assert_allclose(peaks.values, flat.max(dim=2).values.numpy(), rtol=1e-5, atol=1e-5)
    where = flat.argmax(dim=2).numpy()
    np.testing.assert_array_equal(peaks.rows, where // 16)
    np.testing.assert_array_equal(peaks.cols, where % 16)


def test_layers_table_counts_units(convnext):
    rows = {r.path: r for r in layer_rows(convnext)}
    assert rows[LAYER].filters == UNITS
    assert rows["features.1.0.block.0"].filters == 96


def test_quality_benchmark_scores_every_unit(convnext):
    from filtviz_bench.evaluator import all_channel_objectives

    rng = np.random.default_rng(2)
    pixels = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float()
    got = all_channel_objectives(convnext, LAYER, images)
    maps = torch.cat([hand_maps(convnext, p) for p in pixels])
    rows, cols = interior(16, 16)
    torch.testing.assert_close(got, maps[:, :, rows, cols].mean(dim=(2, 3)), rtol=1e-5, atol=1e-5)
