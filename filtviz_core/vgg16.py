"""Facts about the VGG16 convolutional base (Keras ``include_top=False``), shared by both frameworks.

Keras layer names are the shared vocabulary; torchvision's ``vgg16().features`` indices map onto them.
"""

from __future__ import annotations

# (Keras name, input channels, filters), in network order.
CONV_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("block1_conv1", 3, 64),
    ("block1_conv2", 64, 64),
    ("block2_conv1", 64, 128),
    ("block2_conv2", 128, 128),
    ("block3_conv1", 128, 256),
    ("block3_conv2", 256, 256),
    ("block3_conv3", 256, 256),
    ("block4_conv1", 256, 512),
    ("block4_conv2", 512, 512),
    ("block4_conv3", 512, 512),
    ("block5_conv1", 512, 512),
    ("block5_conv2", 512, 512),
    ("block5_conv3", 512, 512),
)
CONV_NAMES: tuple[str, ...] = tuple(name for name, _, _ in CONV_LAYERS)
FILTER_COUNTS: dict[str, int] = {name: out for name, _, out in CONV_LAYERS}
POOL_NAMES: tuple[str, ...] = tuple(f"block{b}_pool" for b in range(1, 6))

# torchvision ``vgg16().features`` index of each conv (its ReLU sits at index + 1) and each max-pool.
TORCH_CONV_INDEX: dict[str, int] = dict(zip(CONV_NAMES, (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)))
TORCH_POOL_INDEX: dict[str, int] = dict(zip(POOL_NAMES, (4, 9, 16, 23, 30)))

TOTAL_PARAMS = 14_714_688  # 13 conv layers, kernels + biases
TOTAL_FILTERS = 4_224

# Keras "caffe" preprocessing: RGB -> BGR, then subtract these per-channel means (BGR order), 0-255 scale.
CAFFE_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)

# Smallest input the whole conv base accepts (block5_pool needs a 1x1 map) — the notebook's 32 px.
MIN_IMAGE_SIZE = 32


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape in the neutral file: ``<layer>/kernel`` (HWIO) and ``<layer>/bias``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, cin, cout in CONV_LAYERS:
        shapes[f"{name}/kernel"] = (3, 3, cin, cout)
        shapes[f"{name}/bias"] = (cout,)
    return shapes


def block_of(layer: str) -> int:
    """Block number (1-5) of a Keras VGG16 layer name."""
    return int(layer[len("block")])


def min_size_for(layer: str) -> int:
    """Smallest square input (px) whose feature map at ``layer`` is at least 1x1."""
    pools_before = block_of(layer) - (0 if layer.endswith("_pool") else 1)
    return 2**pools_before
