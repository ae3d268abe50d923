"""How far apart do two *correct* implementations drift? The round-off floor of the ascent parity.

    python -m parity_tests.chaos --layer block2_conv1 --filters 0-3 --steps 100

Runs, from the identical init, four implementations of the same spec: tf_reference, torch_filtviz,
and the independent TF and torch versions of :mod:`parity_tests.spec`. It prints the largest
per-step relative loss difference for each pair. When tf_reference and the independent TF code
(same framework, same ops, different but equivalent arithmetic order) already drift apart by as
much as TF and torch do, the drift is float32 round-off amplified by the ascent, not a porting
bug: that is what the per-block bounds of ``vgg_parity.ASCENT_BOUNDS`` must allow.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    from filtviz_core.algorithm import parse_filters
    from filtviz_core.errors import FiltvizError
    from filtviz_core.vgg16 import CONV_NAMES, FILTER_COUNTS

    p = argparse.ArgumentParser(prog="python -m parity_tests.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--layer", default="block2_conv1", choices=CONV_NAMES, metavar="LAYER")
    p.add_argument("--filters", default="0-3")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--size", type=int, default=64)
    args = p.parse_args(argv)
    try:
        filters = parse_filters(args.filters, FILTER_COUNTS[args.layer], args.layer)
    except FiltvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from parity_tests import spec
    from parity_tests.compare import curve_relative_diff
    from parity_tests.vgg_parity import init_for, run_keras, run_torch
    from tf_reference.model import load_vgg16 as keras_load
    from torch_filtviz.models import load_vgg16 as torch_load

    keras_model, torch_model = keras_load(), torch_load()
    x0 = init_for(filters, args.size, 0)
    curves = {
        "tf_reference": run_keras(keras_model, args.layer, filters, x0, steps=args.steps).losses,
        "torch_filtviz": run_torch(torch_model, args.layer, filters, x0, steps=args.steps).losses,
        "spec_tf": spec.ascent(lambda x: spec.keras_objective_grad(keras_model, args.layer, filters, x), x0,
                               args.steps)[0],
        "spec_torch": spec.ascent(lambda x: spec.torch_objective_grad(torch_model, args.layer, filters, x), x0,
                                  args.steps)[0],
    }
    pairs = [("tf_reference", "spec_tf"), ("torch_filtviz", "spec_torch"), ("spec_tf", "spec_torch"),
             ("tf_reference", "torch_filtviz")]
    print(f"{args.layer}, {args.size} px, {args.steps} steps: max per-step relative loss difference")
    print("filter  " + "  ".join(f"{a} vs {b}" for a, b in pairs))
    for i, f in enumerate(filters):
        cells = [f"{curve_relative_diff(curves[a][i], curves[b][i]):.2e}".rjust(len(a) + len(b) + 4) for a, b in pairs]
        print(f"{f:>6}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
