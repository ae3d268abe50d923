"""Summarise measured margins from one or more report.json files (scripts/compare_frameworks.py).

    python -m parity_tests.margins report/report.json [more/report.json ...]

Prints a Markdown table: for each kind of check (per block for the loss histories), the worst
measured value over every layer and filter in the reports, its bound, and the margin (how many
times the value could grow, or its distance to 1 for cosine/Pearson, before the check fails).
parity_tests/README.md's margins table is this command's output.
"""

from __future__ import annotations

import json
import math
import sys

from parity_tests.compare import Check


def kind_of(check: dict) -> str:
    parts = check["name"].split("/")
    group, metric = parts[0], parts[-1]
    if group in ("losses", "update"):
        layer = parts[1]
        return f"{group} block{layer[len('block')]} {metric}"
    if group == "images":
        return f"images {parts[1].split('_')[0]} {metric}"
    return f"{group} {metric}"


def summarise(reports: list[dict]) -> list[tuple[str, Check, int]]:
    worst: dict[str, tuple[Check, int]] = {}
    for report in reports:
        for raw in report["checks"]:
            check = Check(raw["name"], raw["value"], raw["bound"], raw["op"], raw["group"])
            key = kind_of(raw)
            seen, count = worst.get(key, (None, 0))
            if seen is None or check.margin < seen.margin:
                seen = check
            worst[key] = (seen, count + 1)
    return [(key, check, count) for key, (check, count) in worst.items()]


def fmt(x: float) -> str:
    if 0.999 < x < 1.0:  # cosines and correlations: show the gap to 1
        return f"1-{1.0 - x:.1e}"
    if math.isinf(x):
        return "inf"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 or x == 0 else f"{x:.2e}"


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m parity_tests.margins REPORT.json [...]", file=sys.stderr)
        return 2
    reports = []
    for path in paths:
        with open(path) as fh:
            reports.append(json.load(fh))
    print("| check (worst over all layers/filters) | n | worst measured | bound | margin | worst case |")
    print("|---|---:|---:|---:|---:|---|")
    for key, check, count in sorted(summarise(reports)):
        print(
            f"| {key} | {count} | {fmt(check.value)} | {check.op} {fmt(check.bound)} | {fmt(check.margin)}x | "
            f"{check.name} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
