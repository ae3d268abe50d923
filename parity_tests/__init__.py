"""parity_tests: proof that tf_reference (Keras, the canonical spec) and torch_filtviz agree.

``parity_tests.compare(keras_model, torch_model, layer_map, inputs, ...) -> Report`` is the
reusable comparison core for any Keras/torch model pair (see ``parity_tests/compare.py`` and
``parity_tests/README.md``). Importing the package loads numpy only; the frameworks load on use.
"""

from parity_tests.compare import Check, CurveBounds, Report, compare

__all__ = ["Check", "CurveBounds", "Report", "compare"]
