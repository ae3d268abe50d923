"""What the sources must not carry: leftovers nothing calls, Makefile aliases, measured figures in docstrings."""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module, name", [
    ("torch_filtviz.placement", "device_error"),
    ("torch_filtviz.atlas.render", "render_pictures"),
    ("torch_filtviz.hooks", "_StopForward"),
    ("filtviz_bench.speed", "ONE_AT_A_TIME"),
])
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
