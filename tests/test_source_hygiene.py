"""What the sources must not carry: leftovers nothing calls, Makefile aliases, measured figures in docstrings."""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "module, name",
    [
        ("torch_filtviz.placement", "device_error"),
        ("torch_filtviz.atlas.render", "render_pictures"),
        ("torch_filtviz.hooks", "_StopForward"),
        ("filtviz_bench.speed", "ONE_AT_A_TIME"),
    ],
)
def test_unused_leftovers_are_gone(module, name):
    assert not hasattr(importlib.import_module(module), name)


def makefile_targets() -> dict[str, list[str]]:
    """``{target: its prerequisites}`` of the Makefile's rules."""
    rules = {}
    for line in (ROOT / "Makefile").read_text().splitlines():
        found = re.match(r"^([A-Za-z][\w.-]*)\s*:(?!=)([^#]*)", line)
        if found:
            rules[found.group(1)] = found.group(2).split()
    return rules


def test_benchmarks_depend_on_install_not_an_alias():
    rules = makefile_targets()
    assert "lucent" not in rules
    assert rules["bench"] == ["install"] and rules["quality"] == ["install"]
    phony = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith(".PHONY"))
    assert "lucent" not in phony.split()


# --- measured figures live in benchmarks/ and the README, not in the code ---------------------------------

SPEED_FIGURES = re.compile(
    r"\d+\.\d+\s?(?:x|×)(?![\w])"  # "1.24x", "3.2 x", "1.14×"
    r"|\d+(?:\.\d+)?\s?(?:x|×|times)\s+(?:as\s+)?(?:fast|faster|slow|slower|quick|quicker)\b"  # "3x faster"
    r"|\b(?:speed-?up|faster|slower)\s+(?:of\s+|by\s+)?~?\d"  # "a speedup of 3", "faster by 2"
    r"|\d+(?:\.\d+)?\s?(?:s|ms|seconds)\s+per\s+(?:filter|step|image|layer|chunk)\b"  # "5.6 s per filter"
    r"|\bmeasured\s+~?\d",  # "measured 80-92 s"
    re.IGNORECASE,
)
SCANNED = ("torch_filtviz", "tf_reference", "filtviz_core")


def speed_figures(path: pathlib.Path) -> list[str]:
    """``"file:line: text"`` for each measured speed or time figure in a comment or string (docstrings, help texts)."""
    import tokenize

    hits = []
    with open(path, "rb") as handle:
        for tok in tokenize.tokenize(handle.readline):
            if tok.type not in (tokenize.COMMENT, tokenize.STRING):
                continue
            for offset, line in enumerate(tok.string.splitlines()):
                if SPEED_FIGURES.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{tok.start[0] + offset}: {line.strip()}")
    return hits


def test_speed_figure_pattern():
    for text in (
        "ran 1.24x as fast",
        "channels_last 1.14x",
        "bf16 3.2x",
        "3x faster",
        "batching 1.24 x",
        "a speedup of 3",
        "2 times as fast",
        "1.5× faster",
        "took 5.6 s per filter",
        "measured 80-92 s",
    ):
        assert SPEED_FIGURES.search(text), text
    for text in (
        "a 3x3 kernel",
        "64x64 maps",
        "7.9 times the FLOPs",
        "measured in the README's Performance section",
        "x 2",
        "version 1.14",
    ):
        assert not SPEED_FIGURES.search(text), text


def test_no_measured_speed_figures_in_the_code():
    """Numbers measured on one machine go stale and disagree with the README; the code points there instead."""
    hits = [
        hit for package in SCANNED for path in sorted((ROOT / package).rglob("*.py")) for hit in speed_figures(path)
    ]
    assert not hits, "measured figures (keep them in benchmarks/ or the README):\n" + "\n".join(hits)
