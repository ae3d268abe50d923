"""The example notebook runs top to bottom as its users run it (a fresh kernel, every cell), and shows its
figures; a cell that raises fails the run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "visualizing_filters.ipynb"
FIGURES = 8  # display() calls: maps, two grids, iterations, whole layer, fourier grid, TF | torch, resnet

pytest.importorskip("nbclient", reason="nbclient is installed by `make test` (the dev extra)")
spec = importlib.util.spec_from_file_location("run_notebook", ROOT / "examples" / "run_notebook.py")
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)


def test_committed_notebook_has_no_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    assert NOTEBOOK.stat().st_size < 50_000


def test_notebook_runs_and_shows_its_figures(weights_file, monkeypatch):
    # every cell as users run it, with fewer ascent steps (its parameters cell reads them from the environment):
    # about 2 of the 5 minutes `make notebook` takes on 2 cores
    monkeypatch.setenv("NOTEBOOK_FOURIER_STEPS", "32")
    nb = runner.execute(NOTEBOOK, steps=30)
    errors = [
        out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"
    ]
    assert not errors
    assert runner.image_outputs(nb) >= FIGURES
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "Total params: 14,714,688" in text
    assert "pre_relu : 0 of 32 filters dead" in text and "post_relu: 0 of 32" not in text
    assert "largest relative loss difference TF vs torch" in text
    assert "layer4.1.relu input call 1" in text
    assert "fourier: 4 filters" in text and "dead: 0" in text
    assert "8 filters rendered into" in text and "second call: 0 rendered, 8 already done" in text


def test_a_failing_cell_fails_the_run(tmp_path):
    import nbformat
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(NOTEBOOK, as_version=4)
    planted = nbformat.v4.new_code_cell('raise RuntimeError("planted failure")')
    after = nbformat.v4.new_code_cell('print("never reached")')
    nb.cells = nb.cells[:3] + [planted, after]  # install, parameters and imports, then the failure
    broken = tmp_path / "broken.ipynb"
    nbformat.write(nb, broken)
    with pytest.raises(CellExecutionError, match="planted failure"):
        runner.execute(broken)
    assert runner.main(["--notebook", str(broken), "--out", str(tmp_path / "out.ipynb")]) == 1
    assert not (tmp_path / "out.ipynb").exists()
