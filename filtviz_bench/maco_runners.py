"""The two published MACO implementations, run as their users run them, one objective at a time.

* **Xplique 2.0.2** (TensorFlow, by the paper's authors): ``Objective.channel`` + ``maco`` on the Keras
  VGG16 of :func:`tf_reference.load_vgg16`. Xplique asserts a batch of one objective, so each filter is
  one ``maco`` call. The wheel is installed ``--no-deps`` (its declared dependencies conflict with this
  TensorFlow, and its package ``__init__`` imports OpenCV and more that MACO never uses): only the
  ``features_visualizations``, ``commons`` and ``types`` package paths are set up and the two modules
  MACO needs are imported from the installed files, never copied.
* **Horama 0.3.0** (PyTorch): ``horama.maco`` with an objective function over its crops. Horama
  downloads its magnitude spectrum into the working folder when ``spectrum_decorrelated.npy`` is not
  there; the runner copies the spectrum from the xplique wheel (:func:`filtviz_core.maco.spectrum_path`,
  SHA-256 pinned) into its own working folder first, so nothing is downloaded.

Both are given the benchmark's objective (the filter's pre-activation; for Xplique the target conv is
rebuilt with a linear activation, as tf-keras-vis does, since Xplique's channel objective otherwise
reads the post-ReLU map; for Horama :func:`torch_filtviz.filter_objective` on each crop), the
picture's size as the network's input size, and pixel units (``values_range=(0, 255)``) so the model's
own preprocessing applies. Their noise and crop sizes stay at each library's defaults: Xplique's crops shrink
from 50% to 5% of the picture over the run (as ours do), Horama's are 25-30% of it at every step (its default
``box_size=(0.20, 0.25)`` draws ``uniform(0, 0.05) + 0.25``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from filtviz_bench.renderers import Pictures, Renderer

XPLIQUE_INSTALL = "pip install --no-deps xplique==2.0.2"
HORAMA_INSTALL = "pip install --no-deps horama==0.3.0"
# Each library's default noise, in pixel units (0-255): Xplique 0.08 of its (-1, 1) range (half-width 127.5),
# Horama 0.05 of its (-2.5, 2.5) range (255 / 5 pixels per unit).
XPLIQUE_NOISE_PX = 0.08 * 127.5
HORAMA_NOISE_PX = 0.05 * 255.0 / 5.0
HORAMA_BOX = (0.20, 0.25)  # horama.maco's default box_size


def xplique_available() -> str | None:
    """None when Xplique's MACO can run here (TensorFlow and the xplique wheel), else why not."""
    if importlib.util.find_spec("tensorflow") is None:
        return "TensorFlow is not installed (pip install -e '.[tf]')"
    try:
        importlib.metadata.distribution("xplique")
    except importlib.metadata.PackageNotFoundError:
        return f"xplique is not installed: {XPLIQUE_INSTALL}"
    return None


def horama_available() -> str | None:
    """None when Horama's MACO can run here, else why not."""
    try:
        importlib.metadata.distribution("horama")
    except importlib.metadata.PackageNotFoundError:
        return f"horama is not installed: {HORAMA_INSTALL}"
    return None


@lru_cache(maxsize=1)
def horama_maco_module() -> Any:
    """``horama.maco_fv`` from the installed wheel, without the package ``__init__`` (its feature accentuation
    and plots import einops and matplotlib, which MACO never uses)."""
    root = Path(str(importlib.metadata.distribution("horama").locate_file("horama")))
    if "horama" not in sys.modules:
        pkg = types.ModuleType("horama")
        pkg.__path__ = [str(root)]
        sys.modules["horama"] = pkg
    return importlib.import_module("horama.maco_fv")


@lru_cache(maxsize=1)
def xplique_maco() -> tuple[Any, Any]:
    """(``Objective``, ``maco``) from the installed xplique wheel, without running its package ``__init__``s."""
    root = Path(str(importlib.metadata.distribution("xplique").locate_file("xplique")))
    for name, path in (
        ("xplique", root),
        ("xplique.features_visualizations", root / "features_visualizations"),
        ("xplique.commons", root / "commons"),
    ):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(path)]
            sys.modules[name] = pkg
    commons = sys.modules["xplique.commons"]
    if not hasattr(commons, "find_layer"):  # what objectives.py takes from the package __init__
        commons.find_layer = importlib.import_module("xplique.commons.model_override").find_layer  # type: ignore[attr-defined]
    objectives = importlib.import_module("xplique.features_visualizations.objectives")
    maco = importlib.import_module("xplique.features_visualizations.maco")
    return objectives.Objective, maco.maco


def xplique_model(weights: str, layer: str, size: int) -> Any:
    """A Keras model from RGB pixels (size, size, 3) to ``layer``'s pre-activation: caffe preprocessing as a
    layer, then VGG16's layers up to ``layer`` (copies with the same weights; the target's ReLU dropped)."""
    import keras

    from tf_reference import caffe_preprocess, load_vgg16

    vgg = load_vgg16(weights)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Lambda(caffe_preprocess, name="caffe_preprocess")(inputs)
    for old in vgg.layers[1:]:
        config = old.get_config()
        if old.name == layer:
            config["activation"] = "linear"
        new = type(old).from_config(config)
        x = new(x)
        new.set_weights(old.get_weights())
        if old.name == layer:
            break
    return keras.Model(inputs, x)


def xplique_renderer(weights: str, *, size: int, crops: int, seed: int) -> Renderer:
    """Xplique's ``maco`` per filter: ``nb_steps`` = steps, ``nb_crops`` = crops, ``custom_shape`` = the picture's
    size, its default noise and box schedule, NAdam(1.0); TensorFlow's global seed set per filter."""
    import tensorflow as tf

    objective_type, maco = xplique_maco()
    models: dict[str, Any] = {}

    def render(layer: str, filters: list[int], steps: int) -> Pictures:
        if layer not in models:
            models[layer] = xplique_model(weights, layer, size)
        start = time.perf_counter()
        images = []
        for f in filters:
            tf.random.set_seed(seed * 100_003 + int(f))
            image, _transparency = maco(
                objective_type.channel(models[layer], layer, int(f)),
                nb_steps=steps,
                nb_crops=crops,
                noise_intensity=XPLIQUE_NOISE_PX,
                values_range=(0.0, 255.0),
                custom_shape=(size, size),
            )
            images.append(np.asarray(image))
        return Pictures(to_uint8(images), np.zeros(len(filters), bool), time.perf_counter() - start)

    return render


@contextlib.contextmanager
def horama_folder() -> Iterator[Path]:
    """A working folder holding the spectrum Horama looks for (copied from the xplique wheel), as the cwd."""
    from filtviz_core import maco as core_maco

    before = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="horama-") as folder:
        shutil.copyfile(core_maco.spectrum_path(), Path(folder) / "spectrum_decorrelated.npy")
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(before)


def horama_renderer(model: torch.nn.Module, *, size: int, crops: int, seed: int, device: torch.device) -> Renderer:
    """Horama's ``maco`` per filter: ``total_steps`` = steps, ``crops_per_iteration`` = crops, ``image_size`` =
    ``model_input_size`` = the picture's size, its default noise and boxes, NAdam(1.0); torch seeded per filter.
    ``model``: a torch_filtviz model (RGB pixels 0-255 in, its preprocessing inside)."""
    from torch_filtviz import filter_objective

    horama_fv = horama_maco_module()

    def render(layer: str, filters: list[int], steps: int) -> Pictures:
        start = time.perf_counter()
        images = []
        with horama_folder(), _quiet_tqdm(horama_fv):
            for f in filters:
                torch.manual_seed(seed * 100_003 + int(f))

                def objective(crops_: torch.Tensor, f: int = int(f)) -> torch.Tensor:
                    return filter_objective(model, layer, [f] * len(crops_), crops_).mean()

                image, _transparency = horama_fv.maco(
                    objective,
                    total_steps=steps,
                    image_size=size,
                    model_input_size=size,
                    noise=HORAMA_NOISE_PX,
                    values_range=(0.0, 255.0),
                    crops_per_iteration=crops,
                    box_size=HORAMA_BOX,
                    device=str(device),
                )
                images.append(image.detach().permute(1, 2, 0).cpu().numpy())
        return Pictures(to_uint8(images), np.zeros(len(filters), bool), time.perf_counter() - start)

    return render


@contextlib.contextmanager
def _quiet_tqdm(horama_fv: Any) -> Iterator[None]:
    """Horama draws a tqdm bar per call; a benchmark's log has no use for it."""
    original = horama_fv.tqdm
    horama_fv.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        horama_fv.tqdm = original


def to_uint8(images: list[np.ndarray]) -> np.ndarray:
    """(F, H, W, 3) pixel-unit pictures rounded to uint8 as our own fourier and maco pictures are shown."""
    from filtviz_core.fourier import to_uint8 as round_pixels

    return round_pixels(np.stack(images).astype(np.float32))
