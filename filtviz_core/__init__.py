"""Framework-neutral core shared by ``torch_filtviz`` and ``tf_reference``.

Only numpy (plus Pillow/matplotlib for images and figures) lives here, so a user with just
TensorFlow, or just PyTorch, can import it: the weights file, the seeded initial images,
the deprocessing for display, the run.json record and the figures are written once.
"""

from filtviz_core._version import __version__  # the one version number (pyproject.toml reads it)
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError, WeightsError, WeightsUnavailable

__all__ = ["FiltvizError", "FiltvizRuntimeError", "WeightsError", "WeightsUnavailable", "__version__"]
