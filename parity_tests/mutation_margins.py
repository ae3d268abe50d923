"""How loudly each planted bug fails: ``python -m parity_tests.mutation_margins``.

For every mutation of :mod:`parity_tests.mutations`, prints the check that fails worst (value /
bound: how far past its bound it lands) in the family that catches it: the activations of all 13
conv layers on the 64 px sample photo, else the objective's input gradient (block2_conv1, or
block3_conv1 for the objective after the ReLU, filters 0-2), else the ascent's first update
(block2_conv1, filters 0-1, 3 steps).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    from filtviz_core.algorithm import initial_images
    from parity_tests.checks import Report
    from parity_tests.mutations import MUTATIONS
    from parity_tests.vgg_parity import (
        activation_checks,
        activation_reference,
        ascent_checks,
        gradient_checks,
        layer_reference,
        run_side,
    )
    from tf_reference.model import load_vgg16 as keras_load
    from torch_filtviz.models import load_vgg16 as torch_load

    keras_model, torch_model = keras_load(), torch_load()
    act_ref = activation_reference(keras_model, seed=0, size=64)
    filters = [0, 1, 2]
    step_ref = layer_reference(keras_model, "block2_conv1", [0, 1], steps=3, size=64, seed=0)

    def worst(report: Report) -> str:
        def past(c):
            return c.value / c.bound if c.op == "<=" else (1 - c.value) / (1 - c.bound)

        c = max(report.failures() or report.checks, key=past)
        return f"{c.name} = {c.value:.3g} (bound {c.op} {c.bound:g}; {past(c):.3g}x past it)"

    print("| mutation (torch side) | caught by | worst check | failed checks |")
    print("|---|---|---|---:|")
    for name, mutation in MUTATIONS.items():
        side = mutation.apply(torch_model)
        family, report = "activations", Report(activation_checks(act_ref, side))
        if report.passed:
            layer = "block3_conv1" if name == "objective_after_relu" else "block2_conv1"
            family = "gradients"
            report = Report(gradient_checks(keras_model, side, layer, filters, initial_images(filters, 64, 0)))
        if report.passed:
            family = "first update"
            run = run_side(side, "block2_conv1", [0, 1], step_ref.init, steps=3)
            report = Report(ascent_checks(step_ref.run, run, step_ref.again))
        verdict = family if not report.passed else "**not caught**"
        print(f"| {name} | {verdict} | {worst(report)} | {len(report.failures())}/{len(report.checks)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
