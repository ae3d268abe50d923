"""Are two atlas folders the same, bit for bit, on the filters both hold?

Compares every (layer, filter, method) the two merged manifests share: the loss at every step,
the picture (decoded pixels, and the PNG file's bytes), the thumbnail and snapshot files, and the
dataset examples. What may differ between two runs of the same filter is ignored: seconds, rank,
host, run, device. Use it for the reproducibility claims: one process vs several ranks, a full run
vs a killed-and-resumed one, a filter rendered in a full chunk vs alone.

    python scripts/atlas_compare.py outputs/one outputs/two          # exit 0: every shared filter bitwise equal
    python scripts/atlas_compare.py A B --json report.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

PER_RUN = {"seconds", "rank", "host", "run", "device", "chunk"}


def entries(folder: Path) -> dict[tuple[str, int, str], dict]:
    doc = json.loads((folder / "atlas.json").read_text())
    found = {}
    for layer in doc["layers"]:
        for unit in layer["units"]:
            for method, entry in unit["methods"].items():
                found[(layer["name"], int(unit["filter"]), method)] = entry
            if unit.get("examples"):
                found[(layer["name"], int(unit["filter"]), "examples")] = {"examples": unit["examples"]}
    return found


def pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def compare(a: Path, b: Path) -> dict:
    ea, eb = entries(a), entries(b)
    shared = sorted(set(ea) & set(eb))
    report = {
        "a": str(a),
        "b": str(b),
        "only_a": len(set(ea) - set(eb)),
        "only_b": len(set(eb) - set(ea)),
        "shared": len(shared),
        "pictures": 0,
        "losses_equal": 0,
        "pictures_equal": 0,
        "files_equal": 0,
        "examples": 0,
        "examples_equal": 0,
        "max_loss_diff": 0.0,
        "max_grey_levels": 0,
        "settings_differ": 0,
        "differ": [],
    }
    for key in shared:
        x, y = ea[key], eb[key]
        if key[2] == "examples":
            report["examples"] += 1
            same = x == y and all((a / e["file"]).read_bytes() == (b / e["file"]).read_bytes() for e in x["examples"])
            report["examples_equal"] += same
            if not same:
                report["differ"].append(list(key))
            continue
        report["pictures"] += 1
        la, lb = np.asarray(x["losses"], dtype=np.float64), np.asarray(y["losses"], dtype=np.float64)
        losses = la.shape == lb.shape and bool(np.array_equal(la, lb))
        diff = float(np.max(np.abs(la - lb))) if la.shape == lb.shape else float("inf")
        report["max_loss_diff"] = max(report["max_loss_diff"], diff)
        report["settings_differ"] += x.get("settings") != y.get("settings")
        pa, pb = pixels(a / x["files"]["picture"]), pixels(b / y["files"]["picture"])
        grey = int(np.max(np.abs(pa - pb))) if pa.shape == pb.shape else 255
        report["max_grey_levels"] = max(report["max_grey_levels"], grey)
        names = sorted(set(x["bytes"]) | set(y["bytes"]))
        files = x["bytes"] == y["bytes"] and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
        rest = {k: v for k, v in x.items() if k not in PER_RUN} == {k: v for k, v in y.items() if k not in PER_RUN}
        report["losses_equal"] += losses
        report["pictures_equal"] += grey == 0
        report["files_equal"] += files
        if not (losses and grey == 0 and files and rest):
            report["differ"].append(list(key))
    report["bitwise"] = not report["differ"] and report["shared"] > 0
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    report = compare(args.a, args.b)
    print(
        f"{report['shared']} shared entries ({report['pictures']} pictures, {report['examples']} example sets); "
        f"only in A: {report['only_a']}, only in B: {report['only_b']}"
    )
    print(
        f"losses bitwise equal: {report['losses_equal']}/{report['pictures']} (max abs diff "
        f"{report['max_loss_diff']:.3g}); pictures equal: {report['pictures_equal']}/{report['pictures']} (max "
        f"{report['max_grey_levels']} grey levels); files byte-equal: {report['files_equal']}/{report['pictures']}; "
        f"examples equal: {report['examples_equal']}/{report['examples']}"
        + (f"; rendered with other settings: {report['settings_differ']}" if report["settings_differ"] else "")
    )
    print(
        "bitwise: yes"
        if report["bitwise"]
        else f"bitwise: NO ({len(report['differ'])} differ, e.g. {report['differ'][:3]})"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["bitwise"] else 1


if __name__ == "__main__":
    sys.exit(main())
