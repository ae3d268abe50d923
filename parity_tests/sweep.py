"""False alarms and detection, measured: the parity checks over many configurations, with every planted bug.

    python -m parity_tests.sweep --out parity_tests/results/          # the whole sweep (long)
    python -m parity_tests.sweep --configs fast --out /tmp/sweep/     # the slice `make test` runs

For each configuration (layer, filters, steps, image size, seed) the Keras reference is computed
once (:mod:`parity_tests.vgg_parity`); then

* the **correct port** (torch_filtviz's VGG16 as it is) runs every check — any failure is a
  false alarm (the activation checks see the sample photo and seeded noise at the configuration's
  image size; ``scripts/compare_frameworks.py`` always uses 128 px);
* each **planted bug** of :mod:`parity_tests.mutations` runs the checks family by family,
  cheapest first (activations, gradients, ascent), and counts as caught at the first family with a
  failed check — the same verdict as ``scripts/compare_frameworks.py``'s exit status, which runs
  them all. A bug that changes nothing in a configuration (e.g. a border rule on a map too small to
  have a border: the torch side's results are bit-for-bit those of the correct port) is reported
  as not applicable there, not as missed.

Prints a Markdown table (false alarms, detection per bug, per-configuration margins) and writes
it with every measured number to ``--out`` (``sweep.md``, ``sweep.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core.vgg16 import block_of


@dataclass(frozen=True)
class Config:
    layer: str
    filters: tuple[int, ...]
    steps: int
    size: int
    seed: int

    @property
    def name(self) -> str:
        f = self.filters
        filters = f"{f[0]}-{f[-1]}" if len(f) > 2 and list(f) == list(range(f[0], f[-1] + 1)) else ",".join(map(str, f))
        return f"{self.layer} [{filters}] {self.steps} steps {self.size} px seed {self.seed}"


def _c(layer: str, filters, steps: int, size: int, seed: int) -> Config:
    return Config(layer, tuple(filters), steps, size, seed)


# Every block, 1-8 filters, 10-100 steps, 48-128 px, seeds 0-7. The calibration that chose the
# noise-floor factor k (python -m parity_tests.noise_floor) used other seeds (100+) and filters.
CONFIGS: tuple[Config, ...] = (
    _c("block1_conv1", [0, 17, 42, 63], 100, 64, 0),
    _c("block1_conv2", [5], 50, 128, 1),
    _c("block1_conv2", range(8), 20, 48, 2),
    _c("block1_conv1", [3, 9], 10, 96, 3),
    _c("block1_conv2", [0, 1], 100, 80, 4),
    _c("block1_conv2", [33, 34, 35], 60, 64, 5),
    _c("block2_conv1", [0, 1, 2, 3], 100, 64, 0),
    _c("block2_conv2", [7], 100, 128, 6),
    _c("block2_conv1", range(8, 16), 30, 48, 1),
    _c("block2_conv2", [100, 101], 80, 96, 2),
    _c("block2_conv1", [50, 51, 52], 10, 112, 7),
    _c("block2_conv2", range(4), 100, 48, 3),
    _c("block3_conv1", [0, 1], 20, 64, 0),
    _c("block3_conv3", [4, 5, 6, 7], 100, 64, 0),
    _c("block3_conv2", [9], 60, 128, 4),
    _c("block3_conv1", range(16, 24), 40, 48, 5),
    _c("block3_conv3", [200, 201], 100, 80, 6),
    _c("block3_conv2", [120, 121, 122], 25, 96, 1),
    _c("block3_conv1", [250], 10, 128, 2),
    _c("block4_conv1", [0, 1], 100, 64, 0),
    _c("block4_conv2", [11, 12, 13], 50, 48, 3),
    _c("block4_conv3", [300], 80, 96, 7),
    _c("block4_conv1", range(40, 48), 20, 64, 4),
    _c("block4_conv3", [5, 6], 10, 128, 5),
    _c("block4_conv2", [400], 100, 80, 6),
    _c("block5_conv1", [0], 100, 64, 0),
    _c("block5_conv3", [1, 2], 40, 96, 1),
    _c("block5_conv2", range(8), 10, 48, 2),
    _c("block5_conv1", [77, 78, 79], 30, 80, 3),
    _c("block5_conv3", [500], 60, 112, 4),
    _c("block5_conv2", [20, 21], 25, 128, 5),
    _c("block5_conv3", range(4), 50, 64, 6),
)
# The slice `make test` runs: two small configurations, every planted bug.
FAST: tuple[Config, ...] = (
    _c("block1_conv2", [3], 10, 48, 0),
    _c("block3_conv1", [0, 1], 12, 48, 1),
)


@dataclass
class Outcome:
    """One torch side in one configuration: which family failed first (None: all passed), and
    the worst check of each family that ran (name, value, bound, margin)."""

    caught_by: str | None
    worst: dict[str, dict[str, Any]]
    effect: bool = True  # False: the torch side's results equal the correct port's, bit for bit
    failed: list[str] | None = None
    curves_failed: bool = False  # a loss-curve check failed (reported for bugs the ascent family catches)


def _worst(checks) -> dict[str, Any]:
    graded = [c for c in checks if c.op != "=="] or list(checks)  # exact checks (flags) have no margin
    c = min(graded, key=lambda c: c.margin)
    return {"name": c.name, "value": c.value, "bound": c.bound, "op": c.op, "margin": c.margin, "note": c.note}


def run_side(keras_refs, layer_ref, side, *, stop_early: bool) -> tuple[Outcome, dict[str, Any]]:
    """Run the families in order for one torch side; ``stop_early`` stops at the first failure."""
    from parity_tests import vgg_parity

    worst: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    caught = None
    torch_results: dict[str, Any] = {}
    for family in vgg_parity.FAMILIES:
        if family == "activations":
            checks = vgg_parity.activation_checks(keras_refs, side)
        else:
            checks, run = vgg_parity.layer_checks(layer_ref, side, family)
            torch_results[family] = run
        worst[family] = _worst(checks)
        bad = [c.name for c in checks if not c.passed]
        failed += bad
        if bad and caught is None:
            caught = family
            if stop_early:
                break
    return Outcome(caught, worst, True, failed), torch_results


def _same_as_correct(keras_refs, layer_ref, side, correct_side) -> bool:
    """Whether a bug changed nothing here: its torch results equal the correct port's bit for bit
    (activations of both inputs, objective values and gradients, loss histories)."""
    from parity_tests import vgg_parity
    from parity_tests.runners import to_nchw, torch_activations

    paths = list(side.model.aliases.values())
    for x in keras_refs.inputs.values():
        a = torch_activations(side.model, paths, to_nchw(x))
        b = torch_activations(correct_side.model, paths, to_nchw(x))
        if any(not np.array_equal(a[p], b[p]) for p in paths):
            return False
    g_side = vgg_parity.torch_gradients(side, layer_ref.layer, layer_ref.filters, layer_ref.init)
    g_ok = vgg_parity.torch_gradients(correct_side, layer_ref.layer, layer_ref.filters, layer_ref.init)
    if not all(np.array_equal(u, v) for u, v in zip(g_side, g_ok)):
        return False
    r_side = vgg_parity.run_side(side, layer_ref.layer, layer_ref.filters, layer_ref.init, steps=layer_ref.steps)
    r_ok = vgg_parity.run_side(correct_side, layer_ref.layer, layer_ref.filters, layer_ref.init, steps=layer_ref.steps)
    return bool(np.array_equal(r_side.losses, r_ok.losses))


def sweep(
    keras_model,
    torch_model,
    configs,
    mutation_names=None,
    log=print,
    on_record=None,
    done: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the sweep; returns everything measured (the JSON document). The activation checks see the
    sample photo and seeded noise at the configuration's own image size. ``done``: records of an
    interrupted run (its ``sweep.partial.json``); their configurations are not run again."""
    from parity_tests import vgg_parity
    from parity_tests.mutations import MUTATIONS, torch_side

    names = list(MUTATIONS) if mutation_names is None else list(mutation_names)
    act_refs: dict[tuple[int, int], Any] = {}
    results = list(done or [])
    finished = {r["name"] for r in results}
    for config in configs:
        if config.name in finished:
            log(f"{config.name}: kept from the interrupted run")
            continue
        started = time.perf_counter()
        key = (config.seed, config.size)
        if key not in act_refs:
            act_refs[key] = vgg_parity.activation_reference(keras_model, config.seed, config.size)
        layer_ref = vgg_parity.layer_reference(
            keras_model, config.layer, config.filters, steps=config.steps, size=config.size, seed=config.seed
        )
        correct = torch_side(torch_model)
        outcome, torch_runs = run_side(act_refs[key], layer_ref, correct, stop_early=False)
        record: dict[str, Any] = {
            "config": {
                "layer": config.layer,
                "filters": list(config.filters),
                "steps": config.steps,
                "size": config.size,
                "seed": config.seed,
            },
            "name": config.name,
            "correct": outcome.__dict__,
            "mutations": {},
        }
        if block_of(config.layer) > 1:
            from parity_tests.metrics import curve_relative_diff

            ref, port = layer_ref.run.losses, torch_runs["ascent"].losses
            record["floor"] = [
                curve_relative_diff(r, a) for rerun in layer_ref.again for r, a in zip(ref, rerun.losses)
            ]
            record["port_divergence"] = [curve_relative_diff(r, p) for r, p in zip(ref, port)]
        for name in names:
            side = MUTATIONS[name].apply(torch_model)
            m_outcome, _ = run_side(act_refs[key], layer_ref, side, stop_early=True)
            if m_outcome.caught_by is None:
                m_outcome.effect = not _same_as_correct(act_refs[key], layer_ref, side, correct)
            m_outcome.curves_failed = any(f.startswith("losses/") for f in m_outcome.failed or [])
            m_outcome.failed = (m_outcome.failed or [])[:3]
            record["mutations"][name] = m_outcome.__dict__
        record["seconds"] = round(time.perf_counter() - started, 1)
        results.append(record)
        if on_record is not None:
            on_record(results)
        missed = [n for n, m in record["mutations"].items() if m["caught_by"] is None and m["effect"]]
        log(
            f"{config.name}: correct port {'FALSE ALARM ' + str(outcome.failed[:3]) if outcome.caught_by else 'ok'}"
            f"; missed {missed or 'none'} ({record['seconds']:.0f} s)"
        )
    return {"configs": results, "mutations": {n: MUTATIONS[n].description for n in names}}


def summarise(doc: dict[str, Any]) -> str:
    """The Markdown tables: false alarms, detection per bug, per-configuration margins."""
    from parity_tests.checks import fmt

    results = doc["configs"]
    n = len(results)
    alarms = [r for r in results if r["correct"]["caught_by"] is not None]
    lines = [
        f"**Correct port: false alarms {len(alarms)} / {n} configurations**"
        + (" (" + ", ".join(r["name"] for r in alarms) + ")" if alarms else ""),
        "",
        "| planted bug | caught | of applicable | detection | caught first by | not applicable |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for name, description in doc["mutations"].items():
        outcomes = [r["mutations"][name] for r in results]
        applicable = [o for o in outcomes if o["caught_by"] is not None or o["effect"]]
        caught = [o for o in applicable if o["caught_by"] is not None]
        by: dict[str, int] = {}
        for o in caught:
            by[o["caught_by"]] = by.get(o["caught_by"], 0) + 1
        curves = sum(bool(o["curves_failed"]) for o in caught if o["caught_by"] == "ascent")
        if by.get("ascent"):
            by["ascent"] = f"{by['ascent']} (loss curves alone: {curves})"
        frac = f"{len(caught) / len(applicable):.0%}" if applicable else "n/a"
        lines.append(
            f"| {name}: {description} | {len(caught)} | {len(applicable)} | {frac} | "
            + ", ".join(f"{k} {v}" for k, v in by.items())
            + f" | {len(outcomes) - len(applicable)} |"
        )
    lines += [
        "",
        (
            "Per configuration, the correct port: the check closest to its bound in each family "
            "(value / bound), and for blocks 2-5 the noise floor and the port's loss-curve divergence "
            "(worst filter)."
        ),
        "",
        "| configuration | activations | gradients | ascent | floor | divergence | divergence / floor | s |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        w = r["correct"]["worst"]
        cells = []
        for family in ("activations", "gradients", "ascent"):
            c = w.get(family)
            cells.append("-" if c is None else f"{c['name'].split('/')[-1]} {fmt(c['value'])} / {fmt(c['bound'])}")
        if "floor" in r:
            floor, div = max(r["floor"]), max(r["port_divergence"])
            ratio = div / floor if floor > 0 else float("inf")
            extra = [fmt(floor), fmt(div), f"{ratio:.2f}"]
        else:
            extra = ["-", "-", "-"]
        lines.append(f"| {r['name']} | " + " | ".join(cells + extra) + f" | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="python -m parity_tests.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", choices=("all", "fast"), default="all")
    parser.add_argument("--only", type=int, nargs="*", help="indices of configurations to run (default: all)")
    parser.add_argument("--out", default=None, help="folder for sweep.md and sweep.json")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the configurations an interrupted run recorded in --out/sweep.partial.json",
    )
    args = parser.parse_args(argv)
    if args.resume and not args.out:
        parser.error("--resume needs --out (the folder holding sweep.partial.json)")

    from filtviz_core import atomic
    from tf_reference.model import load_vgg16 as keras_load
    from torch_filtviz.models import load_vgg16 as torch_load

    configs = CONFIGS if args.configs == "all" else FAST
    if args.only:
        configs = tuple(configs[i] for i in args.only)
    started = time.perf_counter()

    def keep(results):  # the measurements so far, in case a long run is interrupted
        if args.out:
            atomic.write_json(Path(args.out) / "sweep.partial.json", {"configs": results})

    done = None
    partial = Path(args.out) / "sweep.partial.json" if args.out else None
    if args.resume and partial.is_file():
        import json

        wanted = {c.name for c in configs}
        done = [r for r in json.loads(partial.read_text())["configs"] if r["name"] in wanted]
    doc = sweep(keras_load(), torch_load(), configs, log=lambda s: print(s, flush=True), on_record=keep, done=done)
    # a resumed run's total is the sum of its configurations' own times, not this process's
    doc["seconds"] = round(sum(r["seconds"] for r in doc["configs"]) if done else time.perf_counter() - started, 1)
    doc["command"] = "python -m parity_tests.sweep " + " ".join(sys.argv[1:] if argv is None else argv)
    import tensorflow as tf
    import torch

    doc["versions"] = {"tensorflow": tf.__version__, "torch": torch.__version__, "numpy": np.__version__}
    table = summarise(doc) + f"\n\nTotal {doc['seconds'] / 60:.1f} min.\n"
    print(table)
    if args.out:
        out = Path(args.out)
        atomic.write_json(out / "sweep.json", doc)
        atomic.write_bytes(out / "sweep.md", (f"`{doc['command']}`\n\n" + table).encode())
        (out / "sweep.partial.json").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
