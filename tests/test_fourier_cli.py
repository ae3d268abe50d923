"""``--method pixel|fourier`` on both command lines (filtviz filters/atlas, python -m tf_reference filters)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from filtviz_core import methods
from torch_filtviz.cli import main as torch_main

TINY = ["--steps", "3", "--size", "32", "--no-progress"]
_MODELS: dict = {}


@pytest.fixture
def cached_vgg(monkeypatch, weights_file):
    """The CLI loads VGG16 once per command; load it once for this file."""
    import torch_filtviz.models as models

    real = models.load_vgg16

    def load(weights="keras", **kwargs):
        if (
            weights != "keras"
            or kwargs.get("device") not in (None, "auto")
            or kwargs.get("seed", 0) != 0
            or not kwargs.get("verify", True)
        ):
            return real(weights, **kwargs)
        if "vgg" not in _MODELS:
            _MODELS["vgg"] = real(weights_file.path)
        return _MODELS["vgg"]

    monkeypatch.setattr(models, "load_vgg16", load)


def test_filtviz_filters_fourier(capsys, tmp_path, cached_vgg):
    code = torch_main(
        ["filters", "block1_conv2", "--filters", "0-1", "--method", "fourier", *TINY, "--out", str(tmp_path)]
    )
    assert code == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["method"] == "fourier" and record["params"]["method"] == "fourier"
    assert record["params"]["lr"] == methods.FOURIER_LR and record["params"]["pad"] == 12
    assert np.array(record["losses"]).shape == (2, 4)
    assert (tmp_path / "filters" / "filter_0001.png").is_file()


def test_filtviz_atlas_fourier(capsys, tmp_path, cached_vgg):
    code = torch_main(
        ["atlas", "--layers", "block1_conv1", "--per-layer", "2", "--method", "fourier", *TINY, "--out", str(tmp_path)]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "block1_conv1" / "run.json").read_text())["method"] == "fourier"
    assert "fourier method, 3 steps" in (tmp_path / "index.md").read_text()


def test_tf_reference_filters_fourier(capsys, tmp_path, weights_file):
    from tf_reference.cli import main as tf_main

    code = tf_main(
        [
            "filters",
            "block1_conv2",
            "--filters",
            "0",
            "--method",
            "fourier",
            "--steps",
            "2",
            "--size",
            "32",
            "--snapshots",
            "0,2",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["framework"] == "tensorflow" and record["method"] == "fourier"
    params = record["params"]
    assert params["method"] == "fourier" and params["steps"] == 2 and params["seen_size"] == [44, 44]
    assert {k: params[k] for k in methods.OPTION_NAMES if k != "scale"} == {
        k: v for k, v in methods.FourierOptions().as_params().items() if k != "scale"
    }
    assert "fourier method, 2 steps" in capsys.readouterr().out


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "lucid"], "invalid choice: 'lucid'"),
        (["--method", "fourier", "--clip"], "clip applies to the pixel method"),
        (["--method", "fourier", "--lr", "0"], "lr must be a positive number"),
    ],
)
def test_bad_method_input_is_one_line_exit_2(framework, args, message, capsys, tmp_path):
    from tf_reference.cli import main as tf_main

    main = torch_main if framework == "torch" else tf_main
    code = main(["filters", "block1_conv2", "--filters", "0", *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "out").exists()


def test_both_command_lines_default_steps_and_lr_by_method():
    from tf_reference.cli import build_parser as tf_parser
    from torch_filtviz.cli import build_parser as torch_parser

    for parser in (torch_parser(), tf_parser()):
        sub = parser._subparsers._group_actions[0].choices["filters"]
        actions = {opt: a for a in sub._actions for opt in a.option_strings}
        assert actions["--method"].default == "pixel" and tuple(actions["--method"].choices) == (
            "pixel",
            "fourier",
            "maco",
        )
        assert actions["--steps"].default is None and actions["--lr"].default is None
        assert f"{methods.FOURIER_STEPS} (fourier)" in actions["--steps"].help
