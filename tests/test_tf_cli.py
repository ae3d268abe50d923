"""python -m tf_reference: end to end at tiny sizes, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from filtviz_core.runrecord import FIELDS
from tf_reference.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "tf_reference", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_filters_end_to_end_writes_figures_and_run_json(weights_file, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "filters",
            "block1_conv2",
            "--filters",
            "0-2",
            "--steps",
            "3",
            "--size",
            "32",
            "--snapshots",
            "1,3",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    for name in ("block1_conv2_grid.png", "block1_conv2_iterations.png", "run.json"):
        assert (out / name).stat().st_size > 1000 or name == "run.json"
    assert sorted(p.name for p in (out / "filters").iterdir()) == [f"filter_{i:04d}.png" for i in range(3)]
    record = json.loads((out / "run.json").read_text())
    assert set(FIELDS) <= set(record)
    assert record["framework"] == "tensorflow" and record["layer"] == "block1_conv2"
    assert record["filters"] == [0, 1, 2] and record["dead"] == [False] * 3
    assert [len(row) for row in record["losses"]] == [4, 4, 4]
    assert record["params"] == {
        "steps": 3,
        "size": 32,
        "lr": 1.0,
        "seed": 0,
        "snapshots": [1, 3],
        "objective": "pre_relu",
        "init": "seeded",
        "clip": False,
        "compiled": True,
    }
    assert record["weights"]["sha256"] == weights_file.sha256
    assert "block1_conv2: 3 filters" in capsys.readouterr().out
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_maps_and_summary(weights_file, tmp_path, capsys):
    assert (
        main(
            ["maps", "--size", "48", "--layers", "block1_conv1,block3_pool", "--channels", "4", "--out", str(tmp_path)]
        )
        == 0
    )
    assert (tmp_path / "feature_maps.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "block1_conv1: (1, 48, 48, 64)" in printed and "block3_pool: (1, 6, 6, 256)" in printed
    assert main(["summary"]) == 0
    text = capsys.readouterr().out
    assert text.startswith('Model: "vgg16"') and "14,714,688" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["filters", "block9_conv1"], "unknown conv layer 'block9_conv1'; valid: block1_conv1"),
        (["filters", "block1_conv2", "--filters", "0-64"], "filter 64 is out of range: block1_conv2 has 64 filters"),
        (["filters", "block4_conv1", "--size", "4"], "too small for block4_conv1: it needs at least 8 px"),
        (["filters", "block1_conv2", "--steps", "5", "--snapshots", "2,9"], "outside 0..5"),
        (["maps", "/no/such/image.png"], "image not found"),
        (["maps", "--layers", "block1_conv1,fc1"], "unknown layer 'fc1'"),
        (["filters", "block1_conv2", "--objective", "relu"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    result = run_module(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_out_fails_before_work(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    rc = main(
        ["filters", "block1_conv2", "--filters", "0", "--steps", "1", "--size", "32", "--out", str(blocker / "sub")]
    )
    assert rc == 2
    assert "cannot write to output folder" in capsys.readouterr().err


def test_filters_unit_and_diversity(weights_file, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "filters",
            "block1_conv2",
            "--filters",
            "3,5",
            "--steps",
            "2",
            "--size",
            "32",
            "--unit",
            "neuron",
            "--diversity",
            "2",
            "--diversity-weight",
            "50",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in (out / "filters").iterdir()) == [
        "filter_0003_0.png",
        "filter_0003_1.png",
        "filter_0005_0.png",
        "filter_0005_1.png",
    ]
    record = json.loads((out / "run.json").read_text())
    assert record["filters"] == [3, 3, 5, 5] and record["copies"] == [0, 1, 0, 1]
    assert record["params"]["unit"] == "neuron" and record["params"]["diversity"] == 2
    assert record["params"]["diversity_weight"] == 50.0
    assert "block1_conv2: 2 filters x 2 pictures" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--diversity", "0"], "--diversity must be a whole number >= 1"),
        (["--diversity", "2", "--diversity-weight", "-1"], "--diversity-weight must be a finite number >= 0"),
        (["--unit", "pixel"], "invalid choice: 'pixel'"),
    ],
)
def test_bad_unit_options_are_one_line_exit_2(args, message, capsys):
    assert main(["filters", "block1_conv2", "--steps", "1", "--size", "32", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
