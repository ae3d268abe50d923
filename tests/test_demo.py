"""`make demo` in miniature: every file the demo promises, written by its --quick pipeline."""

import json

import numpy as np

from torch_filtviz import demo


def test_demo_quick_writes_every_promised_file(tmp_path, capsys, weights_file):
    assert demo.main(["--out", str(tmp_path), "--quick", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 14,714,688" in (tmp_path / "summary.txt").read_text()
    for name in ("block1_conv1_kernels.png", "feature_maps.png", "index.md"):
        assert (tmp_path / name).is_file() and str(tmp_path / name) in out
    for layer, _ in demo.FILTER_PLAN:
        folder = tmp_path / "filters" / layer
        assert (folder / f"{layer}_grid.png").is_file() and (folder / f"{layer}_iterations.png").is_file()
        record = json.loads((folder / "run.json").read_text())
        assert record["layer"] == layer
        assert np.array(record["losses"]).shape == (demo.QUICK["filters"], demo.QUICK["steps"] + 1)
    index = (tmp_path / "index.md").read_text()
    links = [part.split(")")[0] for part in index.split("](")[1:]]
    assert len(links) == 3 + 3 * len(demo.FILTER_PLAN) and all((tmp_path / link).is_file() for link in links)


def test_demo_plan_is_the_notebooks():
    assert [layer for layer, _ in demo.FILTER_PLAN] == [
        "block1_conv2",
        "block2_conv1",
        "block3_conv1",
        "block4_conv1",
        "block5_conv1",
    ]
    assert demo.STEPS == 100 and demo.SNAPSHOTS == (10, 100)
