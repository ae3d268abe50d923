"""Framework-neutral core shared by ``torch_filtviz`` and ``tf_reference``.

Only numpy (plus Pillow/matplotlib for images and figures) lives here, so a user with just
TensorFlow, or just PyTorch, can import it: the weights file, the seeded initial images,
the deprocessing for display, the run.json record and the figures are written once.
"""

from filtviz_core.errors import FiltvizError, FiltvizRuntimeError, WeightsError, WeightsUnavailable

__version__ = "0.2.0"  # the project's one version number (pyproject.toml carries the same; a test checks)

__all__ = ["FiltvizError", "FiltvizRuntimeError", "WeightsError", "WeightsUnavailable", "__version__"]
