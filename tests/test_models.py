"""Models from the API and the command line: torchvision networks, state-dict files, your own factory,
preprocessing recorded in run.json, and the exit status of every way it can go wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import torch_filtviz as fv
from filtviz_core.errors import FiltvizError, WeightsError, WeightsUnavailable
from torch_filtviz.cli import build_parser, main
from torch_filtviz.preprocessing import TorchvisionPreprocess

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "2", "--size", "32", "--no-progress"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


FACTORY = """
import torch
from torch import nn

def build():
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                         nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())

def not_a_module():
    return 42
"""


@pytest.fixture
def factory_project(tmp_path, monkeypatch):
    """A user's project folder with mypkg/nets.py, as the current directory (how the CLI finds it)."""
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        del sys.modules[name]


def test_wrap_model_records_its_preprocessing():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    model = fv.wrap_model(net, "imagenet", name="tiny")
    assert isinstance(model.preprocess, TorchvisionPreprocess) and model.features is net
    x = torch.full((1, 3, 8, 8), 255.0)
    torch.testing.assert_close(
        model(x),
        net(
            (x / 255 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        ),
    )
    res = fv.visualize_filters(model, "0", [0, 1], steps=1, size=8, progress=False)
    record = res.run_record()
    assert record["model"] == {"name": "tiny", "class": "Sequential", "preprocess": "imagenet"}
    assert record["target"]["module"] == "0" and record["target"]["layer"] == "0"  # the network's own path
    assert fv.layer_names(model) == ["0", "1"]
    none = fv.wrap_model(nn.Sequential(nn.Conv2d(3, 4, 3)), "none")
    assert fv.visualize_filters(none, "0", 0, steps=0, size=8, progress=False).model["preprocess"] == "none"
    with pytest.raises(FiltvizError, match="unknown preprocessing 'rgb'; valid: imagenet, caffe, none"):
        fv.wrap_model(net, "rgb")


def test_load_model_torchvision_random_is_seeded():
    a = fv.load_model("resnet18", "random", seed=1)
    b = fv.load_model("resnet18", "random", seed=1)
    c = fv.load_model("resnet18", "random", seed=2)
    assert torch.equal(a.features.conv1.weight, b.features.conv1.weight)
    assert not torch.equal(a.features.conv1.weight, c.features.conv1.weight)
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    assert a.weights_info["source"] == "random(seed=1)" and a.describe()["preprocess"] == "imagenet"


def test_state_dict_files_are_checked(tmp_path):
    source = fv.load_model("resnet18", "random", seed=5)
    good = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.features.state_dict().items()}}, good)
    loaded = fv.load_model("resnet18", good)
    assert torch.equal(loaded.features.layer4[1].conv2.weight, source.features.layer4[1].conv2.weight)
    assert loaded.weights_info["sha256"] and loaded.weights_info["source"] == f"file:{good}"

    from filtviz_core.safetensors_io import encode

    st = tmp_path / "resnet18.safetensors"
    st.write_bytes(
        encode({k: v.numpy() for k, v in source.features.state_dict().items() if v.dtype == torch.float32}, {})
    )
    with pytest.raises(WeightsError, match="missing"):  # BN counters (int64) left out on purpose
        fv.load_model("resnet18", st)

    with pytest.raises(
        WeightsError, match=r"do not fit resnet34 from .*: \d+ missing \(first: layer1.2.conv1.weight\)"
    ):
        fv.load_model("resnet34", good)
    bad = dict(source.features.state_dict().items())
    bad["fc.weight"] = torch.zeros(10, 512)
    wrong = tmp_path / "wrong.pth"
    torch.save(bad, wrong)
    with pytest.raises(WeightsError, match=r"fc.weight has shape \(10, 512\) in the file, \(1000, 512\) in the model"):
        fv.load_model("resnet18", wrong)
    evil = tmp_path / "evil.pth"
    torch.save({"fn": print}, evil)  # a pickle that would run code: weights_only refuses it
    with pytest.raises(WeightsError, match="weights_only=True"):
        fv.load_model("resnet18", evil)
    with pytest.raises(WeightsUnavailable, match="weights file not found"):
        fv.load_model("resnet18", tmp_path / "missing.pth")


def test_factory_model(factory_project):
    model = fv.load_model("mypkg.nets:build")
    assert model.name == "mypkg.nets:build" and model.describe()["preprocess"] == "imagenet"
    target = fv.resolve_target(model, "0", "pre_relu")
    assert (target.path, target.where) == ("features.1", "output")  # conv -> BN -> ReLU: the BN's output
    with pytest.raises(FiltvizError, match=r"returned a int, not an nn.Module"):
        fv.load_model("mypkg.nets:not_a_module")
    with pytest.raises(FiltvizError, match="has no function 'nope'"):
        fv.load_model("mypkg.nets:nope")
    with pytest.raises(FiltvizError, match=r"cannot import 'nopkg.nets'"):
        fv.load_model("nopkg.nets:build")


def test_factory_from_the_command_line(capsys, factory_project):
    out = factory_project / "out"
    code, _printed, err = run(
        capsys, "filters", "0", "--model", "mypkg.nets:build", "--filters", "0-3", *TINY, "--out", out
    )
    assert code == 0, err
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["name"] == "mypkg.nets:build" and record["target"]["module"] == "1"
    assert len(list((out / "filters").glob("filter_*.png"))) == 4


@pytest.mark.parametrize(
    "model, layer, module, tensor",
    [
        ("resnet18", "layer4.1.conv2", "layer4.1.relu", "input"),
        ("googlenet", "inception4c.branch2.1.conv", "inception4c.branch2.1.bn", "output"),
    ],
)
def test_done_when_commands(capsys, tmp_path, model, layer, module, tensor):
    code, _printed, err = run(
        capsys,
        "filters",
        layer,
        "--model",
        model,
        "--weights",
        "random",
        "--filters",
        "0-3",
        "--steps",
        "5",
        "--size",
        "64",
        "--no-progress",
        "--out",
        tmp_path,
    )
    assert code == 0, err
    record = json.loads((tmp_path / "run.json").read_text())
    assert (record["target"]["module"], record["target"]["tensor"]) == (module, tensor)
    assert record["params"]["objective"] == "pre_relu" and record["model"]["preprocess"] == "imagenet"
    losses = np.array(record["losses"])
    assert losses.shape == (4, 6) and not any(record["dead"])
    assert np.all(losses[:, -1] > losses[:, 0])  # every filter climbed
    assert sorted(p.name for p in (tmp_path / "filters").iterdir()) == [f"filter_{i:04d}.png" for i in range(4)]


def test_bad_models_and_weights_exit_codes(capsys, tmp_path):
    code, _, err = run(capsys, "filters", "conv1", "--model", "resnet99", "--out", tmp_path / "o")
    assert code == 2 and err.count("\n") == 1 and "unknown model 'resnet99'; valid: vgg16" in err
    source = fv.load_model("resnet18", "random")
    torch.save(source.features.state_dict(), tmp_path / "r18.pth")
    code, _, err = run(
        capsys, "filters", "conv1", "--model", "resnet34", "--weights", tmp_path / "r18.pth", "--out", tmp_path / "o"
    )
    assert code == 2 and err.count("\n") == 1 and "do not fit resnet34" in err
    code, _, err = run(
        capsys, "filters", "conv1", "--model", "resnet18", "--weights", tmp_path / "nope.pth", "--out", tmp_path / "o"
    )
    assert code == 1 and err.count("\n") == 1 and "weights file not found" in err  # a runtime failure
    code, _, err = run(
        capsys, "filters", "block1_conv1", "--weights", tmp_path / "nope.safetensors", "--out", tmp_path / "o"
    )
    assert code == 1 and "weights file not found" in err
    code, _, err = run(capsys, "filters", "conv1", "--model", "resnet18", "--out", tmp_path / "o")
    assert code == 1 and err.count("\n") == 1 and "weights" in err and "not" in err  # offline: cannot download
    code, _, err = run(capsys, "filters", "nope", "--model", "resnet18", "--weights", "random", "--out", tmp_path / "o")
    assert code == 2 and "unknown layer 'nope'" in err
    assert not (tmp_path / "o").exists()  # nothing created for any of these


def test_layers_of_any_network(capsys):
    code, out, err = run(capsys, "layers", "--model", "resnet18", "--weights", "random")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert rows["layer4.1.conv2"].split()[1:3] == ["Conv2d", "512"]
    assert "called 2x per pass" in rows["layer4.1.relu"]
    code, out, _ = run(capsys, "layers", "--model", "googlenet", "--weights", "random", "--kind", "conv")
    rows = [line.split() for line in out.splitlines()[1:-1]]
    assert rows and all(r[1] == "Conv2d" for r in rows)
    sizes = {r[0]: int(r[3]) for r in rows}
    assert sizes["conv1.conv"] == 1 and sizes["inception5b.branch1.conv"] > sizes["conv1.conv"]


def test_version_and_examples_in_every_help(capsys):
    from filtviz_core import __version__

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"filtviz {__version__}"
    toml = (ROOT / "pyproject.toml").read_text()
    assert 'version = { attr = "filtviz_core._version.__version__" }' in toml  # the one place (test_packaging.py)
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        text = sub.format_help()
        assert "examples:" in text and f"filtviz {name}" in text, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"


def test_both_command_lines_spell_the_same_things_alike():
    from tf_reference.cli import build_parser as tf_parser

    def options(parser, command):
        sub = parser._subparsers._group_actions[0].choices[command]
        return {opt: action for action in sub._actions for opt in action.option_strings}

    torch_maps, tf_maps = options(build_parser(), "maps"), options(tf_parser(), "maps")
    for flag in ("--size", "--layers", "--channels", "--out", "--weights"):
        assert flag in torch_maps and flag in tf_maps, flag
    assert torch_maps["--size"].default == tf_maps["--size"].default == 224
    torch_f, tf_f = options(build_parser(), "filters"), options(tf_parser(), "filters")
    for flag in (
        "--filters",
        "--steps",
        "--size",
        "--lr",
        "--seed",
        "--snapshots",
        "--objective",
        "--clip",
        "--progress",
        "--no-progress",
        "--out",
        "--weights",
    ):
        assert flag in torch_f and flag in tf_f, flag
        if flag not in ("--out", "--weights", "--progress", "--no-progress"):
            assert torch_f[flag].default == tf_f[flag].default, flag
    assert torch_f["--progress"].default is None and tf_f["--progress"].default is None  # only on a terminal
    for action in tf_parser()._subparsers._group_actions[0].choices["filters"]._actions:
        assert action.help, action.option_strings


def test_maps_default_layers_are_the_same_in_both():
    from filtviz_core.cli_common import NOTEBOOK_MAP_LAYERS
    from tf_reference.cli import build_parser as tf_parser

    sub = tf_parser()._subparsers._group_actions[0].choices["maps"]
    layers = {a.dest: a.default for a in sub._actions}["layers"]
    assert layers == ",".join(NOTEBOOK_MAP_LAYERS)


def test_runtime_failure_is_one_line_exit_1(capsys, monkeypatch, tmp_path):
    import torch_filtviz.job as jobs

    def boom(*a, **k):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore detail")

    monkeypatch.setattr(jobs, "run_chunk", boom)
    code, _out, err = run(
        capsys, "filters", "conv1", "--model", "resnet18", "--weights", "random", *TINY, "--out", tmp_path
    )
    assert code == 1 and err.count("\n") == 1 and "illegal memory access" in err and "Traceback" not in err


def test_console_entry_version():
    result = subprocess.run(
        [sys.executable, "-m", "torch_filtviz", "--version"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0 and result.stdout.startswith("filtviz ")
