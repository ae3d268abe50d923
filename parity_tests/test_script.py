"""scripts/compare_frameworks.py: writes the report, exits 0 when the frameworks agree (also on the
configuration a new user tried first, which the old fixed loss-curve bounds failed), 1 when the
torch weights are perturbed, 2 (one line) on bad input."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_frameworks.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("compare_frameworks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--layers", "block9_conv1"], "unknown layer 'block9_conv1'; valid: block1_conv1"),
        (["--layers", "block1_conv1", "--filters", "70"], "filter 70 is out of range"),
        (["--steps", "0"], "steps must be at least 1"),
        (["--size", "8"], "too small"),
        (["--perturb-torch", "nan"], "--perturb-torch must be a number >= 0"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, expected, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *argv, "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "r").exists()


def test_agreeing_frameworks_exit_0_with_full_report(script, keras_vgg, torch_vgg, tmp_path):
    args = script.parse_args(["--layers", "block1_conv1", "--filters", "0,5", "--steps", "12", "--out", str(tmp_path)])
    assert script.run(args, models=(keras_vgg, torch_vgg)) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["passed"] and doc["n_failed"] == 0
    assert all({"name", "value", "bound", "op", "passed"} <= set(c) for c in doc["checks"])
    assert len(doc["losses"]["block1_conv1"]["torch"][0]) == 13
    for name in ["report.md", "activations.png", "losses_block1_conv1.png", "images_block1_conv1.png"]:
        assert (tmp_path / name).stat().st_size > 0
    assert "**PASS**" in (tmp_path / "report.md").read_text()


def test_perturbed_torch_weights_exit_1(script, keras_vgg, torch_vgg, tmp_path):
    args = script.parse_args(
        [
            "--layers",
            "block1_conv1",
            "--filters",
            "0",
            "--steps",
            "12",
            "--out",
            str(tmp_path),
            "--perturb-torch",
            "1e-3",
        ]
    )
    assert script.run(args, models=(keras_vgg, copy.deepcopy(torch_vgg))) == 1
    doc = json.loads((tmp_path / "report.json").read_text())
    failed = {c["name"] for c in doc["checks"] if not c["passed"]}
    assert "activations/photo/block1_conv1/rel_max_diff" in failed
    assert "losses/block1_conv1/0/max_rel_diff" in failed
    assert "**FAIL**" in (tmp_path / "report.md").read_text()


def test_the_configuration_a_new_user_tried_passes_with_explained_bounds(script, keras_vgg, torch_vgg, tmp_path):
    """block1_conv2,block3_conv1, filters 0-1, 20 steps, 64 px: exited 1 with the old fixed block-3 bound
    (median 2.2e-3 > 2e-3 on the machine it was tried on). Now block 3's curves are held to k x the
    noise floor measured in the same run, and the report says so for every curve."""
    from parity_tests.vgg_parity import FLOOR_RULE

    args = script.parse_args(
        [
            "--layers",
            "block1_conv2,block3_conv1",
            "--filters",
            "0-1",
            "--steps",
            "20",
            "--size",
            "64",
            "--out",
            str(tmp_path),
        ]
    )
    assert script.run(args, models=(keras_vgg, torch_vgg)) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    curves = [c for c in doc["checks"] if c["name"].startswith("losses/block3_conv1/")]
    assert [c["name"] for c in curves] == ["losses/block3_conv1/0/divergence", "losses/block3_conv1/1/divergence"]
    for c in curves:
        assert c["passed"] and c["note"].startswith("floor measured ") and f"allowed {FLOOR_RULE.k:g}x = " in c["note"]
        assert c["bound"] <= FLOOR_RULE.cap
    assert len(doc["losses"]["block3_conv1"]["tensorflow_reruns_1ulp"]) == 2  # 2 filters x 2 reruns >= 4 samples
    assert any(c["name"] == "update/block3_conv1/norm_ratio_diff" for c in doc["checks"])
    assert "why this bound" in (tmp_path / "report.md").read_text()
