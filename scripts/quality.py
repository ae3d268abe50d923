#!/usr/bin/env python
"""The quality benchmark (``make quality``); the code is :mod:`filtviz_bench.quality`.

Needs the project installed (``make install``); from a source tree without installing, run
``python -m filtviz_bench.quality`` in the repository root instead.
"""

import sys

try:
    from filtviz_bench.quality import cli
except ImportError as exc:
    print(f"quality.py: error: {exc}; run `make install`, or `python -m filtviz_bench.quality` from the "
          "repository root", file=sys.stderr)
    sys.exit(1)

if __name__ == "__main__":
    sys.exit(cli(prog="quality.py"))
