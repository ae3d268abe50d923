"""tf_reference: the original Keras notebook as a tested TensorFlow 2.17 package.

It is the canonical specification (see SPEC.md): when torch_filtviz disagrees, this is right.
Never imports torch.
"""

from filtviz_core.errors import FiltvizError, WeightsError
from tf_reference.model import conv_layer_names, load_vgg16

__all__ = ["FiltvizError", "WeightsError", "conv_layer_names", "load_vgg16"]
