#!/usr/bin/env python
"""The speed benchmark (``make bench``); the code is :mod:`filtviz_bench.speed`, this is its old entry point.

``filtviz_bench`` is not part of the wheel: it runs from the repository (this script puts the repository
root on the path), with the project's dependencies installed (``make install``).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    from filtviz_bench.speed import cli
except ImportError as exc:
    print(
        f"benchmark.py: error: {exc}; run `make install` first (it installs what the benchmarks need)", file=sys.stderr
    )
    sys.exit(1)

if __name__ == "__main__":
    sys.exit(cli(prog="benchmark.py"))
