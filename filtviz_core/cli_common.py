"""What the three command lines (``filtviz``, ``python -m tf_reference``, ``make demo``) share:
parsing of comma lists, and the rule that bad input ends in one line on stderr, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from filtviz_core.errors import FiltvizError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def parse_steps(text: str) -> tuple[int, ...]:
    """Snapshot steps from ``"10,100"``."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise FiltvizError(f"bad --snapshots {text!r}: use step numbers such as 10,100") from None


def parse_names(text: str | None) -> list[str]:
    """Layer names from ``"block1_conv2,block2_conv2"``."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        raise FiltvizError("no layer given: use a comma-separated list such as block1_conv2,block2_conv2")
    return names


def run_guarded(prog: str, action: Callable[[], int | None]) -> int:
    """Run ``action``; bad input -> one ``prog: error: ...`` line and exit 2, Ctrl-C -> 130.

    Every file is written atomically, so an interrupted run leaves only complete files.
    """
    try:
        return int(action() or 0)
    except FiltvizError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; every file written so far is complete, none is half-written", file=sys.stderr)
        return EXIT_INTERRUPTED
