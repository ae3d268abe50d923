"""The Python examples of the README and of the docs pages run against the current API (shrunk to tiny sizes so
they are fast).

Catches the drift that matters: a renamed function, argument or attribute in a documented example.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


BLOCKS = [
    (path.relative_to(ROOT).as_posix(), i, code)
    for path in [README, *DOCS]
    for i, code in enumerate(python_blocks(path))
]


def shrink(code: str) -> str:
    """Same calls, tiny work: few steps, small images."""
    code = re.sub(r"steps=\d+", "steps=2", code)
    return re.sub(r"size=128\b", "size=32", code)


def test_readme_has_python_examples():
    assert len(python_blocks(README)) >= 1
    assert len(BLOCKS) >= 6  # the README's quickstart and the docs' examples


def test_readme_quickstart_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200
    assert len(python_blocks(README)[0].strip().splitlines()) <= 10


def example_files(code: str, folder: Path) -> None:
    """The input files an example names, made small in its working folder: a photo, a Keras model file."""
    if "photo.jpg" in code:
        from PIL import Image

        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(folder / "photo.jpg")
    if "my_model.hdf5" in code:
        from parity_tests.port_fixtures import save_keras

        save_keras(folder / "my_model.hdf5")


@pytest.mark.parametrize("where,index,code", BLOCKS, ids=[f"{w}:{i}" for w, i, _ in BLOCKS])
def test_readme_example_runs(where, index, code, tmp_path, monkeypatch, weights_file):
    monkeypatch.chdir(tmp_path)  # examples save figures to the working folder
    example_files(code, tmp_path)
    exec(compile(shrink(code), f"{where} python block {index}", "exec"), {"__name__": "readme_example"})
