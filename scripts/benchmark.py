#!/usr/bin/env python
"""The speed benchmark (``make bench``); the code is :mod:`filtviz_bench.speed`, this is its old entry point.

Needs the project installed (``make install``); from a source tree without installing, run
``python -m filtviz_bench.speed`` in the repository root instead.
"""

import sys

try:
    from filtviz_bench.speed import cli
except ImportError as exc:
    print(f"benchmark.py: error: {exc}; run `make install`, or `python -m filtviz_bench.speed` from the "
          "repository root", file=sys.stderr)
    sys.exit(1)

if __name__ == "__main__":
    sys.exit(cli(prog="benchmark.py"))
