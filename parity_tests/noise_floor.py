"""How far apart do two *correct* ascents drift, and how far may a port go? The data behind k.

    python -m parity_tests.noise_floor --out parity_tests/results/

For a set of calibration configurations (seeds and filters that the sweep does not use), runs
from the identical start: tf_reference (the reference), tf_reference again from
:data:`RERUNS` starts perturbed by 1 ulp per pixel (each a sample of the noise floor), and two
correct ports: torch_filtviz with its CPU default memory format (channels_last) and with NCHW.
Each loss curve's divergence from the reference is
:func:`~parity_tests.metrics.curve_relative_diff`.

It prints, per configuration, the floor as the checks measure it (worst of at least
``vgg_parity.FLOOR_SAMPLES`` samples) and the ports' divergence, and the ratio port / floor;
then the same ratio for each filter on its own (floor = worst of its own reruns: a 1-filter
configuration). The factor k of ``vgg_parity.FLOOR_RULE`` must sit well above the largest ratio
seen here (so a correct port never fails) while the planted bugs stay caught (the sweep).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

RERUNS = 4  # 1-ulp reruns of the reference per configuration (the checks use ceil(4 / F))

# (layer, filters, steps, size, seed): every block, seeds 100+ (the sweep uses 0-7).
CALIBRATION = (
    ("block1_conv2", (0, 1, 2, 3), 100, 64, 100),
    ("block2_conv1", (0, 1, 2, 3), 100, 64, 101),
    ("block2_conv2", (20, 21, 22, 23), 50, 96, 102),
    ("block2_conv1", (40, 41, 42, 43), 100, 48, 103),
    ("block3_conv1", (0, 1, 2, 3), 100, 64, 104),
    ("block3_conv3", (8, 9, 10, 11), 100, 64, 105),
    ("block3_conv2", (30, 31), 20, 128, 106),
    ("block4_conv1", (0, 1, 2, 3), 100, 64, 107),
    ("block4_conv3", (5, 6, 7, 8), 60, 80, 108),
    ("block4_conv2", (1,), 100, 96, 109),
    ("block5_conv1", (0, 1, 2, 3), 100, 64, 110),
    ("block5_conv3", (10, 11), 40, 96, 111),
)


def measure(keras_model, torch_model, config, log=print) -> dict[str, Any]:
    """Divergences from the reference for one configuration: per filter, the RERUNS floor samples
    and the two ports."""
    from parity_tests.metrics import curve_relative_diff
    from parity_tests.vgg_parity import init_for, perturb_ulp, run_keras, run_torch

    layer, filters, steps, size, seed = config
    started = time.perf_counter()
    x0 = init_for(filters, size, seed)
    ref = run_keras(keras_model, layer, filters, x0, steps=steps).losses
    reruns = [
        run_keras(keras_model, layer, filters, perturb_ulp(x0, s), steps=steps).losses for s in range(1, RERUNS + 1)
    ]
    ports = {
        "channels_last": run_torch(torch_model, layer, filters, x0, steps=steps).losses,
        "nchw": run_torch(torch_model, layer, filters, x0, steps=steps, channels_last=False).losses,
    }
    doc = {
        "layer": layer,
        "filters": list(filters),
        "steps": steps,
        "size": size,
        "seed": seed,
        "floor_samples": [[curve_relative_diff(ref[i], r[i]) for r in reruns] for i in range(len(filters))],
        "ports": {name: [curve_relative_diff(ref[i], p[i]) for i in range(len(filters))] for name, p in ports.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    log(f"{layer} {list(filters)} {steps} steps {size} px seed {seed}: {doc['seconds']:.0f} s")
    return doc


def layer_floor(doc: dict[str, Any]) -> float:
    """The floor as ``vgg_parity`` measures it for this configuration: ceil(4 / F) reruns, worst sample."""
    from parity_tests.vgg_parity import floor_reruns

    reruns = floor_reruns(len(doc["filters"]))
    return max(s for samples in doc["floor_samples"] for s in samples[:reruns])


def summarise(docs: list[dict[str, Any]]) -> str:
    from filtviz_core.vgg16 import block_of
    from parity_tests.checks import fmt
    from parity_tests.vgg_parity import FLOOR_RULE

    lo = FLOOR_RULE.min_floor
    lines = [
        "| configuration | floor (as checked) | port channels_last | port NCHW | worst ratio port / floor |",
        "|---|---:|---:|---:|---:|",
    ]
    layer_ratios, filter_ratios, divergences = [], [], []
    for d in docs:
        floor = layer_floor(d)
        worst = max(max(v) for v in d["ports"].values())
        ratio = worst / max(floor, lo)
        divergences += [worst, max(max(s) for s in d["floor_samples"])]
        if block_of(d["layer"]) > 1:
            layer_ratios.append(ratio)
        for i in range(len(d["filters"])):
            own = max(d["floor_samples"][i])  # a 1-filter configuration: RERUNS reruns of this filter
            for v in d["ports"].values():
                if block_of(d["layer"]) > 1:
                    filter_ratios.append(v[i] / max(own, lo))
        lines.append(
            f"| {d['layer']} {d['filters']} {d['steps']} steps {d['size']} px seed {d['seed']} | "
            f"{fmt(floor)} | {fmt(max(d['ports']['channels_last']))} | {fmt(max(d['ports']['nchw']))} | "
            f"{ratio:.2f} |"
        )
    filter_ratios = np.asarray(filter_ratios)
    single = [max(s[0] for s in d["floor_samples"]) for d in docs]  # one rerun of every filter
    spread = [max(s) / max(min(s), lo) for d in docs for s in d["floor_samples"]]
    lines += [
        "",
        (
            f"- blocks 2-5, per configuration: worst port / floor = {max(layer_ratios):.2f} "
            f"(median {np.median(layer_ratios):.2f}, {len(layer_ratios)} configurations)"
        ),
        (
            f"- blocks 2-5, each filter on its own (floor = worst of its {RERUNS} reruns), both ports: worst "
            f"{filter_ratios.max():.2f}, 95th percentile {np.percentile(filter_ratios, 95):.2f}, "
            f"{int(np.sum(filter_ratios > 1))} of {filter_ratios.size} above 1"
        ),
        (
            f"- the floor itself is noisy: largest / smallest of one filter's {RERUNS} reruns up to "
            f"{max(spread):.0f}x (why the checks take the worst of >= 4 samples)"
        ),
        (
            f"- largest divergence of any correct run (port or rerun): {fmt(max(divergences))}; "
            f"largest single-rerun floor: {fmt(max(single))}"
        ),
        f"- rule in force: bound = min({FLOOR_RULE.k:g} x max(floor, {fmt(lo)}), {FLOOR_RULE.cap:g})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="python -m parity_tests.noise_floor", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="folder for noise_floor.md and noise_floor.json")
    parser.add_argument("--only", type=int, nargs="*", help="indices of calibration configurations (default: all)")
    parser.add_argument(
        "--from",
        dest="source",
        metavar="JSON",
        help="summarise the measurements of an earlier run's noise_floor.json instead of running",
    )
    args = parser.parse_args(argv)
    if args.source:
        import json

        with open(args.source) as fh:
            stored = json.load(fh)
        print(f"measured by `{stored['command']}`\n\n" + summarise(stored["configs"]))
        return 0

    from filtviz_core import atomic
    from tf_reference.model import load_vgg16 as keras_load
    from torch_filtviz.models import load_vgg16 as torch_load

    configs = CALIBRATION if not args.only else tuple(CALIBRATION[i] for i in args.only)
    started = time.perf_counter()
    keras_model, torch_model = keras_load(), torch_load()
    docs = [measure(keras_model, torch_model, c, log=lambda s: print(s, flush=True)) for c in configs]
    table = summarise(docs)
    command = "python -m parity_tests.noise_floor " + " ".join(sys.argv[1:] if argv is None else argv)
    minutes = (time.perf_counter() - started) / 60
    print(table + f"\n\nTotal {minutes:.1f} min.")
    if args.out:
        from pathlib import Path

        out = Path(args.out)
        atomic.write_json(out / "noise_floor.json", {"command": command, "reruns": RERUNS, "configs": docs})
        atomic.write_bytes(out / "noise_floor.md", f"`{command}`\n\n{table}\n\nTotal {minutes:.1f} min.\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
