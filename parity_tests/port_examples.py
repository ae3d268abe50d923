"""Worked examples for ``python -m parity_tests.port``: Keras models saved to files, and torch ports.

    python -m parity_tests.port_examples --out examples/     # writes small_cnn.keras and vgg16.keras

Torch builders (``--torch parity_tests.port_examples:NAME``), each called without arguments:

==========================  ==============================================================================
``small_cnn``               the port of :mod:`parity_tests.small_cnn`, carrying its own converted weights
``small_cnn_untrained``     the same architecture, default torch init: use with ``--transfer-weights``
``small_cnn_transposed``    broken: conv2's kernel transposed (rows and columns exchanged)
``small_cnn_missing_relu``  broken: no ReLU after conv2 (the divergence shows at conv3, the next layer)
``vgg16``                   torch_filtviz's own VGG16 port (its ``features``: caffe-preprocessed input, as
                            ``keras.applications.VGG16`` takes), with the genuine weights it converts itself
``vgg16_untrained``         torchvision's ``vgg16().features`` without weights: use with ``--transfer-weights``
==========================  ==============================================================================
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from parity_tests import small_cnn as cnn

SMALL_CNN_SEED = 0  # the seeded weights both the saved Keras file and the ported torch net carry


def small_cnn() -> Any:
    """The small CNN's port with its own weights (converted from the same seeded Keras weights)."""
    return cnn.torch_model(cnn.neutral_weights(SMALL_CNN_SEED))


def small_cnn_untrained() -> Any:
    """The small CNN's architecture with torch's default (seeded) init: its weights must be transferred."""
    import torch

    torch.manual_seed(0)
    return cnn.torch_architecture().eval()


def small_cnn_transposed() -> Any:
    """A broken port: conv2's kernel with rows and columns exchanged (OIWH instead of OIHW)."""
    import torch

    model = small_cnn()
    with torch.no_grad():
        model.conv2.weight.copy_(model.conv2.weight.transpose(2, 3).clone())
    return model


def small_cnn_missing_relu() -> Any:
    """A broken port: the ReLU after conv2 left out."""
    from torch import nn

    model = small_cnn()
    model.relu2 = nn.Identity()
    return model


def vgg16() -> Any:
    """torch_filtviz's VGG16 (its conv base ``features``; the Keras model takes caffe input, so the
    port is compared without torch_filtviz's built-in preprocessing)."""
    from torch_filtviz.models import load_vgg16

    return load_vgg16().features


def vgg16_untrained() -> Any:
    """torchvision's VGG16 conv base (``vgg16().features``, built alone), untrained: carry the Keras
    weights with ``--transfer-weights``."""
    import torch
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    return make_layers(cfgs["D"]).eval()


def save_small_cnn(path: str | os.PathLike[str]) -> Path:
    """The Keras small CNN (seeded weights) as a model file (.keras or .h5)."""
    path = Path(path)
    cnn.keras_model(cnn.neutral_weights(SMALL_CNN_SEED)).save(path)
    return path


def save_vgg16(path: str | os.PathLike[str], weights: str = "keras") -> Path:
    """Keras VGG16 (``include_top=False``, the verified weights) as a model file."""
    from tf_reference.model import load_vgg16

    path = Path(path)
    load_vgg16(weights).save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    from filtviz_core.cli_common import run_guarded

    parser = argparse.ArgumentParser(prog="python -m parity_tests.port_examples", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="examples", help="folder for small_cnn.keras and vgg16.keras")
    parser.add_argument("--only", choices=("small_cnn", "vgg16"), help="write one of the two")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def write() -> int:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "small_cnn"):
            print(save_small_cnn(out / "small_cnn.keras"))
        if args.only in (None, "vgg16"):
            print(save_vgg16(out / "vgg16.keras"))
        return 0

    return run_guarded("python -m parity_tests.port_examples", write)


if __name__ == "__main__":
    sys.exit(main())
