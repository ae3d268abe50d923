"""The filtviz command line: end to end on tiny sizes, every bad input as one line and exit 2, and
atomic output (an interrupted run leaves no partial file). Mostly in-process via main([...])."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from filtviz_core.runrecord import FIELDS
from torch_filtviz.cli import main

TINY = ["--steps", "3", "--size", "32", "--no-progress"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


_MODELS = {}


@pytest.fixture
def fast_load(monkeypatch):
    """Load each model once per test session (the CLI loads one per command; that takes seconds).
    Anything but the plain "random"/"keras" models on the default device goes to the real loader."""
    import torch_filtviz.models as models

    real = models.load_vgg16

    def load(weights="keras", *, device=None, seed=0, verify=True):
        if weights not in ("random", "keras") or device not in (None, "auto") or seed != 0 or not verify:
            return real(weights, device=device, seed=seed, verify=verify)
        if weights not in _MODELS:
            _MODELS[weights] = real(weights)
        return _MODELS[weights]

    monkeypatch.setattr(models, "load_vgg16", load)


def test_filters_end_to_end(capsys, tmp_path, weights_file):
    code, out, err = run(capsys, "filters", "block1_conv2", "--filters", "0-1", *TINY, "--out", tmp_path)
    assert code == 0, err
    assert files_under(tmp_path) == [
        "block1_conv2_grid.png",
        "block1_conv2_iterations.png",
        "filters/filter_0000.png",
        "filters/filter_0001.png",
        "run.json",
    ]
    record = json.loads((tmp_path / "run.json").read_text())
    assert set(FIELDS) <= set(record)
    assert record["framework"] == "torch" and record["layer"] == "block1_conv2" and record["filters"] == [0, 1]
    assert record["weights"]["sha256"] == weights_file.sha256
    assert np.array(record["losses"]).shape == (2, 3 + 1)
    assert record["params"]["steps"] == 3 and record["params"]["size"] == 32
    assert record["model"] == {"name": "vgg16", "class": "Sequential", "preprocess": "caffe"}
    assert record["target"]["module"] == "features.3" and record["target"]["tensor"] == "input"  # the ReLU's input
    with Image.open(tmp_path / "filters" / "filter_0001.png") as img:
        assert img.size == (32, 32) and img.mode == "RGB"
    assert str(tmp_path / "block1_conv2_grid.png") in out and str(tmp_path / "run.json") in out


def test_maps_summary_layers_weights(capsys, tmp_path, weights_file, fast_load):
    code, out, err = run(
        capsys,
        "maps",
        "--layers",
        "block1_conv2,block3_conv1",
        "--size",
        "64",
        "--channels",
        "3",
        "--weights",
        "random",
        "--out",
        tmp_path,
    )
    assert code == 0, err
    assert files_under(tmp_path) == ["feature_maps.png"]
    assert "(1, 64, 64, 64)" in out and "(1, 256, 16, 16)" in out

    code, out, _ = run(capsys, "summary", "--weights", "random", "--input-size", "64")
    assert code == 0 and 'Model: "vgg16"' in out and "Total params: 14,714,688" in out
    assert "(None, 2, 2, 512)" in out  # block5_pool at 64 px

    code, out, _ = run(capsys, "layers")
    assert code == 0 and sum(line.startswith("block") for line in out.splitlines()) == 18

    code, out, _ = run(capsys, "weights", "--verify")
    assert code == 0 and weights_file.sha256 in out and "verified: yes" in out


def test_atlas_end_to_end(capsys, tmp_path, fast_load):
    code, _out, err = run(
        capsys,
        "atlas",
        "--layers",
        "block1_conv1,block2_conv1",
        "--per-layer",
        "2",
        "--weights",
        "random",
        *TINY,
        "--out",
        tmp_path,
    )
    assert code == 0, err
    files = files_under(tmp_path)
    for layer in ("block1_conv1", "block2_conv1"):
        assert f"{layer}/run.json" in files and f"{layer}/{layer}_grid.png" in files
        assert f"{layer}/filters/filter_0001.png" in files
        assert json.loads((tmp_path / layer / "run.json").read_text())["filters"] == [0, 1]
    assert "atlas.png" in files and "index.md" in files
    index = (tmp_path / "index.md").read_text()
    links = [part.split(")")[0] for part in index.split("](")[1:]]
    assert len(links) == 1 + 2 * 3 and all((tmp_path / link).is_file() for link in links)


@pytest.fixture
def not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    return path


BAD = {
    "unknown layer": (["filters", "block9_conv1"], "unknown layer 'block9_conv1'; valid: block1_conv1"),
    "filter out of range": (["filters", "block5_conv1", "--filters", "600"], "filter 600 is out of range"),
    "bad filter list": (["filters", "block1_conv1", "--filters", "a-b"], "bad filter list"),
    "size too small": (["filters", "block5_conv1", "--size", "8"], "too small for block5_conv1"),
    "snapshot past the end": (["filters", "block1_conv1", "--steps", "5", "--snapshots", "10"], "outside 0..5"),
    "bad snapshots": (["filters", "block1_conv1", "--snapshots", "x"], "bad --snapshots"),
    "bad weights name": (["filters", "block1_conv1", "--weights", "bogus"], "unknown weights 'bogus'"),
    "bad device": (["filters", "block1_conv1", "--device", "tpu"], "unknown device 'tpu'"),
    "missing image": (["maps", "no_such_photo.jpg"], "image not found: no_such_photo.jpg"),
    "non-image file": (["maps", "{not_an_image}"], "not a readable image file"),
    "unknown map layer": (["maps", "--layers", "block1_conv2,nope"], "unknown layer 'nope'"),
    "unknown command": (["paint"], "invalid choice: 'paint'"),
    "unknown option": (["filters", "block1_conv1", "--colour", "red"], "unrecognized arguments: --colour"),
    "bad number": (["filters", "block1_conv1", "--steps", "many"], "argument --steps: invalid int value"),
    "negative steps": (["filters", "block1_conv1", "--steps", "-1"], "steps must be a whole number >= 0"),
    "atlas per-layer": (["atlas", "--per-layer", "0"], "--per-layer must be at least 1"),
    "random has no file": (["weights", "--weights", "random"], "no file to verify"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case, capsys, tmp_path, not_an_image, fast_load):
    argv, message = BAD[case]
    argv = [a.format(not_an_image=not_an_image) for a in argv]
    if argv[0] in ("filters", "maps", "atlas") and "--weights" not in argv:
        argv += ["--weights", "random"]
    if argv[0] in ("filters", "maps", "atlas"):
        argv += (
            ["--out", str(tmp_path / "out"), "--no-progress"] if argv[0] != "maps" else ["--out", str(tmp_path / "out")]
        )
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("filtviz: error: ") and message in err, err
    assert "Traceback" not in err + out
    assert not (tmp_path / "out").exists()  # nothing is created before the input is validated


def test_unwritable_out_is_refused_before_any_work(capsys, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    import torch_filtviz.models

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the output folder was checked")

    monkeypatch.setattr(torch_filtviz.models, "load_vgg16", must_not_load)
    for command in (["filters", "block1_conv1"], ["maps"], ["atlas"]):
        code, _, err = run(capsys, *command, "--out", blocker / "sub")
        assert code == 2 and err.startswith("filtviz: error: cannot write to output folder") and err.count("\n") == 1


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "filters", "--help")
    assert code == 0 and "--snapshots" in out and "--batch-size" in out


def interrupt_on_call(n, write):
    """A writer that works n-1 times, then writes half a file and is interrupted (Ctrl-C mid-write)."""
    calls = []

    def writer(self, target, *args, **kwargs):
        calls.append(target)
        if len(calls) == n:
            Path(target).write_bytes(b"\x89PNG\r\n\x1a\n half a picture")
            raise KeyboardInterrupt
        return write(self, target, *args, **kwargs)

    return writer


@pytest.mark.parametrize("where", ["second filter PNG", "grid figure"])
def test_interrupted_write_leaves_no_partial_file(where, capsys, tmp_path, monkeypatch, fast_load):
    if where == "second filter PNG":
        monkeypatch.setattr(Image.Image, "save", interrupt_on_call(2, Image.Image.save))
    else:
        monkeypatch.setattr(Figure, "savefig", interrupt_on_call(1, Figure.savefig))
    code, _, err = run(
        capsys, "filters", "block1_conv1", "--filters", "0-2", "--weights", "random", *TINY, "--out", tmp_path
    )
    assert code == 130 and err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err
    files = files_under(tmp_path)
    assert not [f for f in files if f.endswith(".tmp") or "/." in f or f.startswith(".")], files
    if where == "second filter PNG":
        assert files == ["filters/filter_0000.png"]  # the one written before is complete
        with Image.open(tmp_path / files[0]) as img:
            img.load()
    else:
        assert "block1_conv1_grid.png" not in files and "run.json" not in files
        assert len(files) == 3  # the three complete filter PNGs written before the grid


def test_console_script_entry(tmp_path):
    """The installed `filtviz` command (a real process): bad input gives exit 2 and one line, no traceback."""
    script = Path(sys.executable).with_name("filtviz")
    result = subprocess.run(
        [str(script), "filters", "nope", "--weights", "random", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("filtviz: error: unknown layer 'nope'") and result.stderr.count("\n") == 1
