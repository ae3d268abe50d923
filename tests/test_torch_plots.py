"""Figures from torch objects: right number of panels, right data in them, kernels in the right colours."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from filtviz_core.errors import FiltvizError
from torch_filtviz import (
    load_vgg16,
    plot_atlas,
    plot_feature_maps,
    plot_filter_grid,
    plot_iterations,
    plot_kernels,
    visualize_filters,
)
from torch_filtviz.models import PixelModel, TorchvisionPreprocess


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


@pytest.fixture(scope="module")
def vgg():
    return load_vgg16("random")  # what is drawn is checked against the same model's numbers


@pytest.fixture(scope="module")
def results(vgg):
    return visualize_filters(vgg, "block1_conv2", [0, 3, 7], steps=4, size=32, snapshots=(0, 2, 4), progress=False)


def test_feature_maps_from_nchw_tensors_are_drawn_transposed_correctly():
    maps = {"a": torch.arange(2 * 5 * 6 * 7, dtype=torch.float32).reshape(2, 5, 6, 7), "b": torch.rand(1, 3, 4, 4)}
    figures_before = plt.get_fignums()
    fig = plot_feature_maps(maps, channels=4)
    assert isinstance(fig, Figure) and plt.get_fignums() == figures_before  # not registered with pyplot
    assert len(fig.axes) == 2 * 4
    drawn = image_axes(fig)
    assert len(drawn) == 4 + 3  # layer b has only 3 channels
    np.testing.assert_array_equal(drawn[2].images[0].get_array(), maps["a"][0, 2].numpy())  # (H, W) = (6, 7)
    nhwc = plot_feature_maps({"a": maps["a"].permute(0, 2, 3, 1).numpy()}, channels=4)
    np.testing.assert_array_equal(image_axes(nhwc)[2].images[0].get_array(), maps["a"][0, 2].numpy())


def test_filter_grid_and_iterations_panels(results):
    grid = plot_filter_grid(results, columns=2)
    assert len(grid.axes) == 2 * 2 and len(image_axes(grid)) == 3
    np.testing.assert_array_equal(image_axes(grid)[1].images[0].get_array(), results.images[1])
    assert image_axes(grid)[2].get_title().startswith("#7")
    iters = plot_iterations(results)
    assert len(iters.axes) == 3 * (3 + 1)  # three snapshots and a loss curve per filter
    curve = iters.axes[3].lines[0].get_ydata()
    np.testing.assert_allclose(curve, results.losses[0])
    assert len(plot_atlas([results, results]).axes) == 2 * 3


def kernel_pictures(fig):
    return np.stack([ax.images[0].get_array() for ax in image_axes(fig)])  # (64, 3, 3, 3) RGB


def rgb_gradient(model, channel):
    """d(pre-activation of block1_conv1 `channel` at the centre of a 3x3 input) / d(RGB pixels)."""
    x = torch.full((1, 3, 3, 3), 128.0, requires_grad=True)
    out = model.features[0](model.preprocess(x))
    (grad,) = torch.autograd.grad(out[0, channel, 1, 1], x)
    return grad[0].permute(1, 2, 0).numpy()  # (3, 3, RGB)


def test_kernels_show_the_colours_that_excite_each_filter(vgg):
    """Keras weights see BGR: the picture must be flipped back, so that it matches the gradient wrt RGB."""
    fig = plot_kernels(vgg)
    pictures = kernel_pictures(fig)
    assert pictures.shape == (64, 3, 3, 3)
    for channel in (0, 17, 63):
        # the picture is an affine map of the kernel: its correlation with the RGB gradient is 1
        corr = np.corrcoef(pictures[channel].ravel(), rgb_gradient(vgg, channel).ravel())[0, 1]
        assert corr > 0.9999
        flipped = np.corrcoef(pictures[channel][..., ::-1].ravel(), rgb_gradient(vgg, channel).ravel())[0, 1]
        assert flipped < 0.999


def test_kernels_of_an_rgb_model_are_not_flipped(vgg):
    rgb_model = PixelModel(TorchvisionPreprocess(), vgg.features, "vgg16", vgg.aliases)
    pictures = kernel_pictures(plot_kernels(rgb_model, "features.0"))
    kernel = vgg.features[0].weight.detach().permute(0, 2, 3, 1).numpy()  # (64, 3, 3, RGB)
    assert np.corrcoef(pictures.ravel(), kernel.ravel())[0, 1] > 0.9999


def test_kernel_and_snapshot_errors(vgg, results):
    with pytest.raises(FiltvizError, match="unknown layer 'nope'; valid: block1_conv1"):
        plot_kernels(vgg, "nope")
    with pytest.raises(FiltvizError, match="64 input channels"):
        plot_kernels(vgg, "block1_conv2")
    empty = visualize_filters(vgg, "block1_conv1", 0, steps=1, size=8, snapshots=(), progress=False)
    with pytest.raises(FiltvizError, match="no snapshots"):
        plot_iterations(empty)
