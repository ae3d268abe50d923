"""The README's Python examples run against the current API (shrunk to tiny sizes so they are fast).

Catches the drift that matters: a renamed function, argument or attribute in a documented example.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def shrink(code: str) -> str:
    """Same calls, tiny work: few steps, small images."""
    code = re.sub(r"steps=\d+", "steps=2", code)
    return re.sub(r"size=128\b", "size=32", code)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch, weights_file):
    monkeypatch.chdir(tmp_path)  # examples save figures to the working folder
    code = shrink(BLOCKS[index])
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "readme_example"})
