"""Networks by name: VGG16 with the Keras weights, any torchvision classification network, or your own factory.

``load_model("resnet50", weights="random")`` and ``filtviz ... --model resnet50 --weights random``
are the same call. A model is named by

* ``"vgg16"``: :func:`torch_filtviz.load_vgg16` (Keras ImageNet weights, verified, offline);
* a torchvision classification network (``resnet50``, ``googlenet``, ``mobilenet_v3_large``,
  ``convnext_tiny``, ``efficientnet_b0``, ...): built by ``torchvision.models.get_model``;
* ``"package.module:function"``: your own factory, called with no arguments, returning an
  ``nn.Module`` (or a :class:`~torch_filtviz.models.PixelModel` that already carries its preprocessing).

and its weights by ``"torchvision"`` (torchvision's default weights: a download unless torch's
cache has them), ``"random"`` (seeded initialisation), a state-dict file (``.pth``/``.pt`` read with
``torch.load(weights_only=True)``, or ``.safetensors``; every name and shape checked), or, for a
factory, ``None`` (the weights it builds with). Every network ends up behind its preprocessing,
recorded in run.json.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator

import torch
from torch import nn

from filtviz_core.errors import FiltvizError
from filtviz_core.weights import looks_like_path
from torch_filtviz import models as _models
from torch_filtviz.checkpoints import apply_state, load_state_file, torchvision_weights  # re-exported
from torch_filtviz.models import PixelModel, resolve_device, wrap_model

#: Constructor arguments that make a torchvision network a plain classifier without side branches.
TORCHVISION_KWARGS: dict[str, dict] = {
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "init_weights": False},
}


def torchvision_names() -> list[str]:
    """The classification networks of ``torchvision.models``, by name."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _unknown_model(name: str) -> FiltvizError:
    names = torchvision_names()
    examples = ("resnet50", "googlenet", "mobilenet_v3_large", "convnext_tiny", "efficientnet_b0")
    return FiltvizError(
        f"unknown model {name!r}; valid: vgg16, a torchvision classification network "
        f"({', '.join(n for n in names if n in examples)}, "
        f"... {len(names)} in all; see torchvision.models.list_models()), or package.module:function"
    )


def check_model_name(name: str) -> str:
    """Refuse, before any loading, a model name that is none of the three kinds."""
    if not isinstance(name, str) or not name:
        raise _unknown_model(str(name))
    if name == "vgg16" or ":" in name or name in torchvision_names():
        return name
    raise _unknown_model(name)


def load_model(
    model: str = "vgg16",
    weights: str | os.PathLike[str] | None = None,
    *,
    preprocess: str | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    verify: bool = True,
) -> PixelModel:
    """A network by name (see the module docstring), behind its preprocessing, in eval mode, frozen.

    ``weights`` None means: ``"keras"`` for vgg16, ``"torchvision"`` for a torchvision network, the
    factory's own for ``package.module:function``. ``preprocess`` None means: caffe for the Keras
    VGG16 weights, ``"imagenet"`` for any other RGB network (torchvision's convention; say ``"none"`` for a
    network that takes 0-255 pixels) and ``"unit"`` (/255, ``ToTensor()``) for a grey or multispectral one.
    """
    check_model_name(model)
    if model == "vgg16":
        loaded = _models.load_vgg16("keras" if weights is None else weights, seed=seed, verify=verify)
        if preprocess is not None:
            loaded = PixelModel(
                wrap_model(nn.Identity(), preprocess).preprocess,
                loaded.features,
                loaded.name,
                loaded.aliases,
                loaded.weights_info,
            )
    elif ":" in model:
        loaded = _from_factory(model, weights, preprocess, seed)
    else:
        loaded = _from_torchvision(model, weights, preprocess, seed)
    loaded.eval().requires_grad_(False)
    if device is not None:
        loaded.to(resolve_device(device))
    return loaded


# --- torchvision -----------------------------------------------------------------------------------------


def _from_torchvision(name: str, weights, preprocess: str | None, seed: int) -> PixelModel:
    import torchvision

    kwargs = dict(TORCHVISION_KWARGS.get(name, {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = torchvision.models.get_model(name, weights=None, **kwargs)
    choice = "torchvision" if weights is None else str(weights)
    if choice == "random":
        info = {"source": f"random(seed={seed})", "sha256": None}
    elif choice == "torchvision":
        enum = torchvision.models.get_model_weights(name).DEFAULT
        apply_state(network, torchvision_weights(name, enum.name), f"{name} ({enum})")
        info = {"source": f"torchvision:{enum}", "sha256": None}
    else:
        state, info = load_state_file(weights)
        apply_state(network, state, f"{name} from {weights}")
    return wrap_model(network, preprocess, name=name, weights_info=info)


# --- your own factory -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _project_importable() -> Iterator[None]:
    """The current folder on ``sys.path`` for the duration, as ``python -m`` has it, then taken off again:
    loading a model must not change where the caller's later imports come from."""
    folder = os.getcwd()
    if folder in sys.path:
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


def _from_factory(spec: str, weights, preprocess: str | None, seed: int) -> PixelModel:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise FiltvizError(f"bad model {spec!r}: use package.module:function")
    with _project_importable():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise FiltvizError(f"cannot import {module_name!r} for model {spec!r}: {exc}") from None
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise FiltvizError(f"{module_name} has no function {attr!r} (model {spec!r})")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = factory()  # still inside: a factory may import more of the project when called
    if not isinstance(network, nn.Module):
        raise FiltvizError(f"{spec} returned a {type(network).__name__}, not an nn.Module")
    if weights is None or str(weights) == "random":
        info = {"source": f"{spec} (as built, seed {seed})", "sha256": None}
    elif str(weights) == "torchvision" or not looks_like_path(weights):
        raise FiltvizError(
            f"unknown weights {str(weights)!r} for {spec}: use random or a state-dict file (.pth/.pt/.safetensors)"
        )
    else:
        state, info = load_state_file(weights)
        target = network.features if isinstance(network, PixelModel) else network
        apply_state(target, state, f"{spec} from {weights}")
    if isinstance(network, PixelModel):
        if preprocess is not None:
            raise FiltvizError(f"{spec} returns a PixelModel with its own preprocessing; drop --preprocess")
        network.weights_info = info
        return network
    return wrap_model(network, preprocess, name=spec, weights_info=info)
