"""How loudly each planted bug fails: ``python -m parity_tests.mutation_margins``.

For every mutation of test_mutations.py, prints the activation check that fails worst (value /
bound: how far past its bound it lands) and, for the objective mutations, the gradient check.
"""

from __future__ import annotations

import copy
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    import numpy as np

    from filtviz_core.algorithm import initial_images
    from filtviz_core.images import load_image
    from filtviz_core.vgg16 import CONV_NAMES
    from parity_tests.compare import Report, compare
    from parity_tests.spec import caffe_numpy
    from parity_tests.test_mutations import MUTATIONS
    from parity_tests.vgg_parity import gradient_checks
    from tf_reference.model import load_vgg16 as keras_load
    from torch_filtviz.models import load_vgg16 as torch_load

    keras_model, torch_model = keras_load(), torch_load()
    photo = load_image(size=64, fit="stretch")[None].astype(np.float32)  # as when the margins were measured
    layer_map = {n: torch_model.aliases[n] for n in CONV_NAMES}

    def worst(report: Report) -> str:
        c = max(report.checks, key=lambda c: c.value / c.bound if c.op == "<=" else (1 - c.value) / (1 - c.bound))
        ratio = c.value / c.bound if c.op == "<=" else (1 - c.value) / (1 - c.bound)
        return f"{c.name} = {c.value:.3g} (bound {c.op} {c.bound:g}; {ratio:.3g}x past it)"

    print("| mutation (torch side) | worst check | failed checks |")
    print("|---|---|---:|")
    for name, mutate in MUTATIONS.items():
        mutant = copy.deepcopy(torch_model)
        mutate(mutant)
        report = compare(keras_model, mutant, layer_map, photo, keras_preprocess=caffe_numpy)
        print(f"| {name} | {worst(report)} | {len(report.failures())}/{len(report.checks)} |")
    filters = [0, 1, 2]
    x = initial_images(filters, 64, 0)
    for label, kwargs, layer in (("border crop 1 instead of 2", {"border": 1}, "block2_conv1"),
                                 ("border crop 3 instead of 2", {"border": 3}, "block2_conv1"),
                                 ("objective after the ReLU", {"relu_before": True}, "block3_conv1")):
        report = Report(gradient_checks(keras_model, torch_model, layer, filters, x, **kwargs))
        print(f"| {label} | {worst(report)} | {len(report.failures())}/{len(report.checks)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
