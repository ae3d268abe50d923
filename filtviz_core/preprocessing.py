"""The input scalings a network can sit behind, named once for both frameworks (``--preprocess``).

Pictures are optimized in pixel units (0-255) whatever the network; the network sees them through
the scaling it was trained with. Two are RGB-only (they hold one constant per colour); the others
scale every channel alike, so they fit grey (1-channel) and multispectral (N-channel) models:

* ``imagenet``: /255, then ImageNet's mean/std per RGB channel (torchvision's weights);
* ``caffe``: RGB -> BGR, minus the ImageNet BGR means, 0-255 scale (Keras' VGG16 weights);
* ``none``: 0-255 as it is;
* ``unit``: ``x / 255`` in [0, 1] (``ToTensor()``, Keras ``Rescaling(1/255)``);
* ``symmetric``: ``x / 127.5 - 1`` in [-1, 1] (``Normalize(0.5, 0.5)`` after ``ToTensor()``; GANs, Inception);
* ``mnist``: ``(x / 255 - 0.1307) / 0.3081`` (the MNIST mean and std, as the PyTorch MNIST example).

>>> import numpy as np
>>> from filtviz_core.preprocessing import apply
>>> apply("symmetric", np.array([0.0, 127.5, 255.0]))
array([-1.,  0.,  1.])
"""

from __future__ import annotations

import numpy as np

from filtviz_core.errors import FiltvizError

PREPROCESSING = ("imagenet", "caffe", "none", "unit", "symmetric", "mnist")
RGB_ONLY = ("imagenet", "caffe")
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
CHANNEL_FREE = tuple(k for k in PREPROCESSING if k not in RGB_ONLY)
HELP = (
    "how the network sees 0-255 pixels: imagenet (/255, ImageNet mean/std; RGB), caffe (BGR minus means; "
    "RGB), none (0-255), unit (/255), symmetric (/127.5 - 1), mnist ((x/255 - 0.1307)/0.3081)"
)


def check_preprocess(kind: str, channels: int = 3) -> str:
    """``kind`` if it is a known name that fits a ``channels``-channel input; else one line saying what does."""
    if kind not in PREPROCESSING:
        raise FiltvizError(f"unknown preprocessing {kind!r}; valid: {', '.join(PREPROCESSING)}, or a function")
    if kind in RGB_ONLY and int(channels) != 3:
        raise FiltvizError(
            f"preprocessing {kind!r} is for RGB (3-channel) pictures, but the model takes {int(channels)} "
            f"channel{'s' if int(channels) != 1 else ''}; choose {', '.join(CHANNEL_FREE)} (or a function)"
        )
    return kind


def apply(kind: str, x: np.ndarray) -> np.ndarray:
    """The numpy reference of a channel-free scaling (``none``, ``unit``, ``symmetric``, ``mnist``), float64."""
    arr = np.asarray(x, np.float64)
    if kind == "none":
        return arr
    if kind == "unit":
        return arr / 255.0
    if kind == "symmetric":
        return arr / 127.5 - 1.0
    if kind == "mnist":
        return (arr / 255.0 - MNIST_MEAN) / MNIST_STD
    raise FiltvizError(f"apply() covers {', '.join(CHANNEL_FREE)}; got {kind!r}")
