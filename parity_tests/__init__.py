"""parity_tests: proof that tf_reference (Keras, the canonical spec) and torch_filtviz agree.

``parity_tests.compare(keras_model, torch_model, layer_map, inputs, ...) -> Report`` is the
reusable comparison core for any Keras/torch model pair (``metrics``, ``checks``, ``runners``;
see ``parity_tests/README.md``), and ``python -m parity_tests.port`` its command line for any
Keras -> PyTorch port. Importing the package loads numpy only; the frameworks load on use.
"""

from parity_tests.checks import Check, CurveBounds, FloorRule, Report
from parity_tests.compare import compare

__all__ = ["Check", "CurveBounds", "FloorRule", "Report", "compare"]
