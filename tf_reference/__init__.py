"""tf_reference: the original Keras notebook as a tested TensorFlow 2.17 package.

It is the canonical specification (see SPEC.md): when torch_filtviz disagrees, this is right.
Never imports torch. The public names load lazily, so ``python -m tf_reference`` can check its
arguments (and fail in a second) before TensorFlow is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from filtviz_core.algorithm import deprocess
from filtviz_core.errors import FiltvizError, WeightsError
from filtviz_core.methods import METHODS, FourierOptions

_EXPORTS = {
    "accentuate": "tf_reference.accentuate",
    "FilterResult": "tf_reference.ascent",
    "make_loss_fn": "tf_reference.ascent",
    "make_objective": "tf_reference.ascent",
    "make_step_fn": "tf_reference.ascent",
    "render": "tf_reference.ascent",
    "run_record": "tf_reference.ascent",
    "visualize_filter": "tf_reference.ascent",
    "visualize_filters": "tf_reference.ascent",
    "caffe_preprocess": "tf_reference.model",
    "conv_layer_names": "tf_reference.model",
    "feature_maps": "tf_reference.model",
    "get_layer": "tf_reference.model",
    "load_model": "tf_reference.keras_model",
    "load_vgg16": "tf_reference.model",
    "submodel": "tf_reference.model",
    "summary": "tf_reference.model",
    "plot_feature_maps": "tf_reference.plots",
    "plot_filter_grid": "tf_reference.plots",
    "plot_iterations": "tf_reference.plots",
    "objectives": "tf_reference.objectives",  # the module: tf_reference.objectives.channel(...), ...
}

# _EXPORTS' names and the framework-free ones above, written out so that linters and type checkers can read it
__all__ = [
    "METHODS",
    "FilterResult",
    "FiltvizError",
    "FourierOptions",
    "WeightsError",
    "accentuate",
    "caffe_preprocess",
    "conv_layer_names",
    "deprocess",
    "feature_maps",
    "get_layer",
    "load_model",
    "load_vgg16",
    "make_loss_fn",
    "make_objective",
    "make_step_fn",
    "objectives",
    "plot_feature_maps",
    "plot_filter_grid",
    "plot_iterations",
    "render",
    "run_record",
    "submodel",
    "summary",
    "visualize_filter",
    "visualize_filters",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from tf_reference import objectives
    from tf_reference.accentuate import accentuate
    from tf_reference.ascent import (
        FilterResult,
        make_loss_fn,
        make_objective,
        make_step_fn,
        render,
        run_record,
        visualize_filter,
        visualize_filters,
    )
    from tf_reference.keras_model import load_model
    from tf_reference.model import (
        caffe_preprocess,
        conv_layer_names,
        feature_maps,
        get_layer,
        load_vgg16,
        submodel,
        summary,
    )
    from tf_reference.plots import plot_feature_maps, plot_filter_grid, plot_iterations


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(_EXPORTS[name])
        value = module if _EXPORTS[name] == f"{__name__}.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tf_reference' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
