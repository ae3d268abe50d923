"""The atlas website without a browser: its files and manifest, resuming, --force, refusing a foreign
folder, an interrupted run, chunk planning and merging, receptive fields and dataset examples."""

import json

import numpy as np
import pytest
import torch

import torch_filtviz.models as models
from filtviz_core.errors import FiltvizError
from filtviz_core.photos import default_photos, load_photo
from filtviz_core.site.chunks import Chunk, plan_chunks
from filtviz_core.site.manifest import AtlasFolder, merge_manifest
from torch_filtviz.atlas import photo_peaks, receptive_field
from torch_filtviz.atlas.methods import METHODS, Method
from torch_filtviz.hooks import capture, resolve_target

TINY = ["--size", "32", "--steps", "3", "--no-progress", "--chunk-size", "2", "--photo-size", "48"]
LAYERS = "block1_conv1,block2_conv1"


def snapshot_of(folder):
    """Modification times of every picture, crop and manifest part."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for top in ("pictures", "examples", "parts")
        for p in (folder / top).rglob("*")
        if p.is_file()
    }


def test_site_files_and_manifest(cli, tmp_path):
    out = tmp_path / "site"
    code, stdout, err = cli(
        "atlas", "--html", out, "--layers", LAYERS, "--per-layer", "3", "--weights", "random", "--examples", "2", *TINY
    )
    assert code == 0, err
    assert "atlas: 6 filters rendered, 0 already done" in stdout
    doc = json.loads((out / "atlas.json").read_text())
    assert doc["format"] == "filtviz-atlas" and doc["model"]["name"] == "vgg16"
    assert [layer["name"] for layer in doc["layers"]][:3] == ["block1_conv1", "block1_conv2", "block2_conv1"]
    assert len(doc["layers"]) == 13 and sum(layer["filters"] for layer in doc["layers"]) == 4224
    run = doc["runs"][-1]
    assert run["command"].startswith("filtviz atlas --html ") and "--per-layer 3" in run["command"]
    assert run["status"] == "done" and run["versions"]["torch"] == torch.__version__ and run["device"] == "cpu"
    assert run["model"]["weights"]["source"] == "random(seed=0)"
    for name in LAYERS.split(","):
        layer = next(layer for layer in doc["layers"] if layer["name"] == name)
        assert layer["rendered"] == {"pixel": 3} and [u["filter"] for u in layer["units"]] == [0, 1, 2]
        assert (out / f"{name}.html").is_file() and (out / "data" / f"{name}.js").is_file()
        data = (out / "data" / f"{name}.js").read_text()
        page = json.loads(data[data.index("{") : data.rindex("}") + 1])
        assert page["units"] == layer["units"]  # the page reads exactly the manifest's slice
        for unit in layer["units"]:
            entry = unit["methods"]["pixel"]
            assert len(entry["losses"]) == 4 and entry["final_loss"] == entry["losses"][-1]
            assert entry["gain"] == pytest.approx(entry["losses"][-1] - entry["losses"][0], rel=1e-6)
            assert entry["params"]["size"] == 32 and entry["settings"]["steps"] == 3 and entry["seconds"] > 0
            assert entry["rank"] == 0 and entry["host"] and entry["chunk"].startswith(f"{name}/pixel/")
            for rel, size in entry["bytes"].items():
                assert (out / rel).stat().st_size == size
            assert entry["files"]["thumb"].endswith(".jpg") and entry["files"]["picture"].endswith(".png")
            top, bottom = unit["examples"]["top"], unit["examples"]["bottom"]
            assert len(top) == len(bottom) == 2 and all((out / x["file"]).is_file() for x in top + bottom)
            assert top[0]["activation"] >= top[1]["activation"] >= bottom[1]["activation"] >= bottom[0]["activation"]
    # 2 layers x {pixel, examples} x 2 chunks, and each layer's upstream connections
    assert len(list((out / "parts").rglob("*.json"))) == 2 * 2 * 2 + 2
    index = (out / "index.html").read_text()
    assert "3/64" in index and "3/128" in index and "0/512" in index and "6/4,224" in index
    assert "http" not in index.replace("https://", "").split("<body")[0]  # nothing fetched from a network


def test_rerun_skips_everything_and_force_redoes(cli, tmp_path):
    out = tmp_path / "site"
    argv = [
        "atlas",
        "--html",
        out,
        "--layers",
        LAYERS,
        "--per-layer",
        "2",
        "--weights",
        "random",
        "--examples",
        "1",
        *TINY,
    ]
    assert cli(*argv)[0] == 0
    before = snapshot_of(out)
    assert any(k.endswith(".png") for k in before)
    code, stdout, _ = cli(*argv)
    assert code == 0 and "atlas: 0 filters rendered, 4 already done" in stdout
    assert snapshot_of(out) == before  # not one picture, crop or part written again
    assert len(json.loads((out / "atlas.json").read_text())["runs"]) == 2

    picture = out / "pictures" / "block2_conv1" / "pixel" / "0001.png"
    picture.unlink()  # a file the manifest names is gone: that filter is redone, nothing else
    code, stdout, _ = cli(*argv)
    assert code == 0 and "atlas: 1 filter rendered, 3 already done" in stdout and picture.is_file()

    code, stdout, _ = cli(*argv, "--per-layer", "3")  # one more filter per layer: only those
    assert code == 0 and "atlas: 2 filters rendered, 4 already done" in stdout

    code, stdout, _ = cli(*argv, "--force")
    assert code == 0 and "atlas: 4 filters rendered, 0 already done" in stdout


def test_other_settings_are_not_done(cli, tmp_path):
    out = tmp_path / "site"
    base = [
        "atlas",
        "--html",
        out,
        "--layers",
        "block1_conv1",
        "--per-layer",
        "2",
        "--weights",
        "random",
        "--examples",
        "0",
        "--no-progress",
    ]
    assert cli(*base, "--size", "32", "--steps", "2")[0] == 0
    _code, stdout, _ = cli(*base, "--size", "32", "--steps", "3")
    assert "atlas: 2 filters rendered, 0 already done" in stdout
    unit = json.loads((out / "atlas.json").read_text())["layers"][0]["units"][0]
    assert len(unit["methods"]["pixel"]["losses"]) == 4  # the newer run's entry wins


def test_a_folder_with_other_things_is_refused(cli, tmp_path, monkeypatch):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    monkeypatch.setattr(models, "load_vgg16", lambda *a, **k: pytest.fail("loaded the model before checking OUT"))
    code, _, err = cli("atlas", "--html", foreign, "--weights", "random", "--force", *TINY)
    assert code == 2 and err.count("\n") == 1 and "holds other files and no filtviz atlas" in err
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]
    code, _, err = cli("atlas", "--html", foreign / "thesis.tex", "--weights", "random", *TINY)
    assert code == 2 and "is a file, not a folder" in err


def test_an_atlas_of_other_weights_needs_force(cli, tmp_path, weights_file):
    out = tmp_path / "site"
    argv = ["atlas", "--html", out, "--layers", "block1_conv1", "--per-layer", "1", "--examples", "0", *TINY]
    assert cli(*argv, "--weights", "random")[0] == 0
    code, _, err = cli(*argv, "--weights", "keras")
    assert code == 2 and err.count("\n") == 1 and "holds an atlas of vgg16 with weights random(seed=0)" in err
    code, _, err = cli(*argv, "--weights", "keras", "--force")
    assert code == 0, err
    doc = json.loads((out / "atlas.json").read_text())
    assert doc["model"]["weights"]["sha256"] == weights_file.sha256 and len(doc["runs"]) == 1


def test_interrupted_run_keeps_finished_chunks_and_resumes(cli, tmp_path, monkeypatch):
    out = tmp_path / "site"
    calls = []
    real = METHODS["pixel"]

    def stop_on_second_chunk(model, layer, filters, params):
        calls.append(list(filters))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real.render(model, layer, filters, params)

    monkeypatch.setitem(METHODS, "pixel", Method("pixel", real.settings_keys, stop_on_second_chunk))
    argv = [
        "atlas",
        "--html",
        out,
        "--layers",
        "block1_conv1",
        "--per-layer",
        "6",
        "--weights",
        "random",
        "--examples",
        "1",
        *TINY,
    ]
    code, _, err = cli(*argv)
    assert code == 130 and "interrupted" in err
    doc = json.loads((out / "atlas.json").read_text())
    layer = doc["layers"][0]
    assert layer["rendered"] == {"pixel": 2} and [u["filter"] for u in layer["units"]] == [0, 1]
    assert doc["runs"][-1]["status"] == "interrupted"
    assert "2/64" in (out / "index.html").read_text()  # the site shows what is done
    monkeypatch.setitem(METHODS, "pixel", real)
    code, stdout, _ = cli(*argv)
    assert code == 0 and "atlas: 4 filters rendered, 2 already done" in stdout


def test_per_layer_and_output_options(cli, tmp_path):
    from torch_filtviz.atlas.command import parse_per_layer

    assert parse_per_layer("all") is None and parse_per_layer("ALL") is None and parse_per_layer("12") == 12
    for bad, message in (("0", "at least 1"), ("some", "a number or 'all'")):
        code, _, err = cli("atlas", "--html", tmp_path / "a", "--per-layer", bad, "--weights", "random", *TINY)
        assert code == 2 and message in err and err.count("\n") == 1
    code, _, err = cli("atlas", "--html", tmp_path / "a", "--out", tmp_path / "b", "--weights", "random", *TINY)
    assert code == 2 and "give one of them" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_plan_chunks_are_aligned_blocks_of_missing_filters():
    done = {("a", 0), ("a", 1), ("a", 5)}
    chunks = plan_chunks([("a", range(8)), ("b", [9, 3])], "pixel", 4, lambda layer, f: (layer, f) in done)
    assert chunks == [
        Chunk("a", "pixel", (2, 3)),
        Chunk("a", "pixel", (4, 6, 7)),
        Chunk("b", "pixel", (3,)),
        Chunk("b", "pixel", (9,)),
    ]
    assert chunks[1].key == "a/pixel/0004-0007"
    with pytest.raises(FiltvizError):
        plan_chunks([("a", [0])], "pixel", 0)


def test_merge_keeps_the_newest_part_of_each_filter():
    run = {"id": "r", "started": "t", "model": {"name": "m", "layers": [{"name": "a", "filters": 4}]}}
    old = {
        "key": "a/pixel/0000-0001",
        "layer": "a",
        "kind": "pixel",
        "written": 1.0,
        "entries": {"0": {"final_loss": 1.0}, "1": {"final_loss": 1.0, "dead": True}},
    }
    new = {
        "key": "a/pixel/0001-0001",
        "layer": "a",
        "kind": "pixel",
        "written": 2.0,
        "entries": {"1": {"final_loss": 2.0}},
    }
    doc = merge_manifest([run], [new, old])
    units = doc["layers"][0]["units"]
    assert [u["methods"]["pixel"]["final_loss"] for u in units] == [1.0, 2.0]
    assert doc["layers"][0]["rendered"] == {"pixel": 2} and doc["layers"][0]["dead"] == {"pixel": 0}


def test_atlas_folder_refuses_foreign_folders(tmp_path):
    (tmp_path / "x.txt").write_text("mine")
    with pytest.raises(FiltvizError, match="holds other files"):
        AtlasFolder.open(tmp_path, {"name": "m", "weights": {}})
    new = AtlasFolder.open(tmp_path / "new", {"name": "m", "weights": {"source": "s"}}).out
    (new / "photos").mkdir()  # files written before the first chunk finished (then a crash)...
    (new / "photos" / "a.jpg").write_bytes(b"x")
    assert AtlasFolder.open(new, {"name": "m", "weights": {"source": "s"}}).out == new  # ...still an atlas


VGG_RECEPTIVE_FIELDS = {
    "block1_conv1": (1, 3),
    "block1_conv2": (1, 5),
    "block2_conv1": (2, 10),
    "block2_conv2": (2, 14),
    "block3_conv1": (4, 24),
    "block3_conv3": (4, 40),
    "block4_conv1": (8, 60),
    "block4_conv3": (8, 92),
    "block5_conv1": (16, 132),
    "block5_conv3": (16, 196),
}


def test_receptive_fields_of_vgg16(random_vgg):
    for layer, (stride, size) in VGG_RECEPTIVE_FIELDS.items():
        geometry, _ = receptive_field(random_vgg, layer, 64, 64, "pre_relu")
        assert geometry.exact and geometry.stride == (stride, stride) and geometry.size == (size, size), layer


@pytest.mark.parametrize("layer,row,col", [("block2_conv2", 5, 9), ("block3_conv1", 3, 7)])
def test_receptive_field_box_holds_every_pixel_the_unit_sees(random_vgg, layer, row, col):
    """The gradient of one map position reaches only input pixels inside its box, and spans most of it."""
    geometry, _ = receptive_field(random_vgg, layer, 48, 64, "pre_relu")
    target = resolve_target(random_vgg, layer, "pre_relu")
    x = (128 + 60 * torch.randn(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    with capture(random_vgg, target) as cap:
        act = cap(x)[layer]
    (grad,) = torch.autograd.grad(act[0, :, row, col].sum(), x)
    seen = grad[0].abs().sum(0).numpy() > 0
    top, left, bottom, right = geometry.box(row, col, 48, 64)
    inside = np.zeros_like(seen)
    inside[top:bottom, left:right] = True
    assert seen.any() and not (seen & ~inside).any()
    rows, cols = np.nonzero(seen)
    assert rows.max() - rows.min() + 1 >= 0.7 * (bottom - top) and cols.max() - cols.min() + 1 >= 0.7 * (right - left)


def test_dataset_examples_one_pass_per_photo_and_true_maxima(random_vgg):
    photos = default_photos()[:3]
    pixels = [load_photo(p, 48) for p in photos]
    layers = ["block1_conv2", "block3_conv1"]
    passes = []
    handle = random_vgg.register_forward_hook(lambda *a: passes.append(1))
    try:
        found = photo_peaks(random_vgg, layers, photos, pixels, "pre_relu")
    finally:
        handle.remove()
    assert found.passes == 3
    for layer in layers:  # checked against one separate pass per layer and photo
        target = resolve_target(random_vgg, layer, "pre_relu")
        for p, image in enumerate(pixels):
            x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
            with torch.no_grad(), capture(random_vgg, target) as cap:
                act = cap(x)[layer][0]
            flat = act.flatten(1)
            np.testing.assert_array_equal(found.peaks[layer].values[p], flat.max(1).values.numpy())
            c = 5
            r, q = found.peaks[layer].rows[p, c], found.peaks[layer].cols[p, c]
            assert act[c, r, q] == flat[c].max()
        best = found.top(layer, 5, 2)
        assert best[0][1] >= best[1][1] and best[0][1] == found.peaks[layer].values[:, 5].max()


def test_ctrl_c_of_the_real_command_keeps_a_site_of_what_is_done(tmp_path, cli):
    """SIGINT (Ctrl-C) to `python -m torch_filtviz atlas --html` once its first chunk is recorded."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    out = tmp_path / "site"
    # 12 chunks of 2 filters at 64 px, 100 steps: seconds of work after the first chunk, so the signal always
    # lands mid-run (12 filters at 32 px could all finish between the first part and the signal on a quiet machine)
    argv = [
        sys.executable,
        "-m",
        "torch_filtviz",
        "atlas",
        "--html",
        str(out),
        "--layers",
        "block1_conv1",
        "--per-layer",
        "24",
        "--chunk-size",
        "2",
        "--size",
        "64",
        "--steps",
        "100",
        "--weights",
        "random",
        "--examples",
        "0",
        "--no-progress",
    ]
    root = Path(__file__).resolve().parents[1]
    # A job started in the background (`make test &`, nohup) inherits SIGINT ignored, and Python then keeps
    # ignoring it; the command must see Ctrl-C as a terminal delivers it, so the child gets the default back.
    proc = subprocess.Popen(
        argv,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    parts = out / "parts" / "block1_conv1" / "pixel"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not (parts.is_dir() and any(parts.iterdir())):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    doc = json.loads((out / "atlas.json").read_text())
    done = doc["layers"][0]["rendered"].get("pixel", 0)
    assert 2 <= done < 24 and doc["runs"][-1]["status"] == "interrupted"
    assert done == 2 * len(list(parts.iterdir()))  # the site shows every recorded chunk
    assert not list(out.rglob("*.tmp"))  # no half-written file
    code, stdout, _ = cli(*argv[3:])  # the same command again (in-process: the model is loaded already)
    assert code == 0 and f"rendered, {done} already done" in stdout and f"atlas: {24 - done} filter" in stdout


def test_fourier_method_beside_pixel_in_one_site(cli, tmp_path):
    """--method fourier renders with the fourier method (its own 128-step default recorded, not None),
    next to the pixel pictures of the same filters; a rerun of either method skips its own filters only."""
    out = tmp_path / "site"
    base = [
        "atlas",
        "--html",
        out,
        "--layers",
        "block2_conv1",
        "--per-layer",
        "2",
        "--weights",
        "random",
        "--examples",
        "0",
        "--size",
        "32",
        "--no-progress",
        "--chunk-size",
        "2",
    ]
    code, stdout, err = cli(*base, "--method", "fourier", "--steps", "4")
    assert code == 0, err
    assert "atlas: 2 filters rendered, 0 already done" in stdout
    code, stdout, err = cli(*base, "--steps", "3")  # pixel, same folder
    assert code == 0 and "atlas: 2 filters rendered, 0 already done" in stdout, err
    code, stdout, _ = cli(*base, "--method", "fourier", "--steps", "4")
    assert code == 0 and "atlas: 0 filters rendered, 2 already done" in stdout
    doc = json.loads((out / "atlas.json").read_text())
    layer = next(entry for entry in doc["layers"] if entry["name"] == "block2_conv1")
    assert layer["rendered"] == {"fourier": 2, "pixel": 2}
    fourier, pixel = (next(r for r in doc["runs"] if r["method"] == m) for m in ("fourier", "pixel"))
    assert fourier["params"]["steps"] == 4 and fourier["params"]["lr"] == 0.05 and "method" not in fourier["params"]
    assert pixel["params"]["lr"] == 1.0
    unit = layer["units"][0]["methods"]
    assert len(unit["fourier"]["losses"]) == 5 and len(unit["pixel"]["losses"]) == 4
    assert unit["fourier"]["losses"] != unit["pixel"]["losses"][:4]
    code, _, err = cli(*base, "--method", "fourier", "--clip")
    assert code == 2 and "clip" in err
