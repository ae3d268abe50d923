"""torch_filtviz: see what the filters of a convolutional network respond to, in PyTorch.

Never imports TensorFlow. The weights and the framework-free parts of the algorithm come from
``filtviz_core``; the canonical algorithm is ``tf_reference/SPEC.md``.
"""

from filtviz_core import __version__ as __version__
from filtviz_core.algorithm import deprocess, initial_images
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError, WeightsError, WeightsUnavailable
from filtviz_core.methods import METHODS, FourierOptions
from torch_filtviz import objectives
from torch_filtviz.accentuate import accentuate
from torch_filtviz.ascent import FilterResults, visualize_filters
from torch_filtviz.hooks import Target, capture, layer_channels, resolve_target
from torch_filtviz.maps import feature_maps
from torch_filtviz.models import PixelModel, layer_names, load_vgg16, resolve_device, wrap_model
from torch_filtviz.objectives import filter_objective
from torch_filtviz.plots import plot_atlas, plot_feature_maps, plot_filter_grid, plot_iterations, plot_kernels
from torch_filtviz.render import render
from torch_filtviz.summary import summary
from torch_filtviz.zoo import load_model

__all__ = [
    "METHODS",
    "FilterResults",
    "FiltvizError",
    "FiltvizRuntimeError",
    "FourierOptions",
    "PixelModel",
    "Target",
    "WeightsError",
    "WeightsUnavailable",
    "accentuate",
    "capture",
    "deprocess",
    "feature_maps",
    "filter_objective",
    "initial_images",
    "layer_channels",
    "layer_names",
    "load_model",
    "load_vgg16",
    "objectives",
    "plot_atlas",
    "plot_feature_maps",
    "plot_filter_grid",
    "plot_iterations",
    "plot_kernels",
    "render",
    "resolve_device",
    "resolve_target",
    "summary",
    "visualize_filters",
    "wrap_model",
]
