"""Dataset examples at scale: the streaming pass keeps every unit's true top-k and bottom-k, in batches
of one forward pass each, resumes where it stopped, skips and counts unreadable photos, puts boxes in
the photo's own pixels, and works on VGG16, ResNet-50 and ConvNeXt-T; the atlas writes
``examples.top`` / ``examples.bottom`` per unit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import torch_filtviz as fv
from filtviz_core.photos import fit_photo, fitted_shape, folder_photos, load_photo
from torch_filtviz import models
from torch_filtviz.atlas.dataset import Extremes, stream_examples
from torch_filtviz.hooks import capture, channels_first, resolve_target

SHAPES = [(60, 60), (40, 90), (90, 40), (50, 70), (70, 50), (45, 45), (80, 44)]  # (height, width)


def photo_folder(root, count=14, seed=0):
    """``count`` photos of mixed shapes and formats, some in a subfolder."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    for i in range(count):
        h, w = SHAPES[i % len(SHAPES)]
        pixels = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        where = root / "sub" if i % 3 == 0 else root
        fmt = ("png", "jpg", "webp")[i % 3]
        Image.fromarray(pixels).save(where / f"p{i:02d}.{fmt}")
    return root


def brute_force(model, layer, photos, short_side, objective="pre_relu"):
    """Per photo and channel: (max, argmax, min, argmin) over the map, one separate pass per photo."""
    target = resolve_target(model, layer, objective)
    found = []
    for photo in photos:
        pixels, _ = fit_photo(photo, short_side)
        x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
        with torch.no_grad(), capture(model, target) as cap:
            act = channels_first(target, cap(x)[layer])[0]
        flat = act.flatten(1)
        found.append((flat.max(1), flat.min(1), act.shape[-1]))
    return found


def test_running_top_and_bottom_k_are_the_true_extremes(random_vgg, tmp_path):
    photos = folder_photos(photo_folder(tmp_path / "photos"))
    layers = ["block1_conv2", "block2_conv1"]
    calls = []
    handle = random_vgg.features[0].register_forward_hook(lambda *a: calls.append(a[1][0].shape[0]))
    try:
        found = stream_examples(random_vgg, layers, photos, 3, short_side=32, batch_size=4, workers=0, progress=False)
    finally:
        handle.remove()
    # a grey probe (sizes, unit counts), then one forward pass per batch for both layers (batches of one
    # shape, at most 4 photos), every photo once
    probe, calls = calls[0], calls[1:]
    assert probe == 1 and found.passes == len(calls) < len(photos) and max(calls) <= 4
    assert sum(calls) == len(photos) == found.images
    for layer in layers:
        truth = brute_force(random_vgg, layer, photos, 32)
        ex = found.extremes[layer]
        units = truth[0][0].values.shape[0]
        assert ex.top_value.shape == ex.bottom_value.shape == (units, 3)  # O(units * k), whatever the photo count
        for c in (0, 7, units - 1):
            tops = np.array([t[0].values[c] for t in truth])
            lows = np.array([t[1].values[c] for t in truth])
            best = np.argsort(-tops, kind="stable")[:3]
            worst = np.argsort(lows, kind="stable")[:3]
            assert ex.top_photo[c].tolist() == best.tolist() and ex.bottom_photo[c].tolist() == worst.tolist()
            np.testing.assert_allclose(ex.top_value[c], tops[best], rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(ex.bottom_value[c], lows[worst], rtol=1e-5, atol=1e-4)
            p = best[0]
            where, width = int(truth[p][0].indices[c]), truth[p][2]
            assert (ex.top_row[c, 0], ex.top_col[c, 0]) == (where // width, where % width)
            p = worst[0]
            where, width = int(truth[p][1].indices[c]), truth[p][2]
            assert (ex.bottom_row[c, 0], ex.bottom_col[c, 0]) == (where // width, where % width)


def test_pass_resumes_where_it_stopped_and_force_starts_over(random_vgg, tmp_path):
    photos = folder_photos(photo_folder(tmp_path / "photos"))
    kw = dict(short_side=32, batch_size=2, workers=1, progress=False, every=1)
    whole = stream_examples(random_vgg, ["block2_conv1"], photos, 2, **kw)
    state = tmp_path / "pass.npz"

    def stop(n):
        if n == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stream_examples(random_vgg, ["block2_conv1"], photos, 2, checkpoint=state, after_batch=stop, **kw)
    assert state.is_file()
    again = stream_examples(random_vgg, ["block2_conv1"], photos, 2, checkpoint=state, **kw)
    assert 0 < again.resumed < len(photos) and again.resumed + again.images == len(photos)
    for name, array in whole.extremes["block2_conv1"].arrays().items():
        np.testing.assert_allclose(array, again.extremes["block2_conv1"].arrays()[name], rtol=1e-5, err_msg=name)
    done = stream_examples(random_vgg, ["block2_conv1"], photos, 2, checkpoint=state, **kw)
    assert (done.resumed, done.images, done.passes) == (len(photos), 0, 0)  # finished: nothing redone
    swapped = stream_examples(random_vgg, ["block2_conv1"], photos[::-1], 2, checkpoint=state, **kw)
    assert swapped.resumed == 0 and swapped.images == len(photos)  # other photos (same count): from scratch
    other = stream_examples(random_vgg, ["block2_conv1"], photos, 3, checkpoint=state, **kw)  # other k
    assert other.resumed == 0 and other.images == len(photos)
    fresh = stream_examples(random_vgg, ["block2_conv1"], photos, 3, checkpoint=state, resume=False, **kw)
    assert fresh.resumed == 0 and fresh.images == len(photos)


def test_unreadable_files_are_skipped_and_counted(random_vgg, tmp_path):
    root = photo_folder(tmp_path / "photos", count=4)
    (root / "sub" / "notes.txt").write_text("not a picture")
    good = root / "p01.jpg"
    (root / "sub" / "broken.jpg").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])  # header fine
    (root / ".hidden").mkdir()
    Image.new("RGB", (40, 40)).save(root / ".hidden" / "x.png")
    lines = []
    photos = folder_photos(root, warn=lines.append)
    assert photos.skipped == ["sub/notes.txt"] and len(lines) == 1
    assert [p.name for p in photos] == ["p01", "p02", "sub__broken", "sub__p00", "sub__p03"]
    found = stream_examples(random_vgg, ["block1_conv1"], photos, 2, short_side=32, workers=0, progress=False)
    assert [photos[i].name for i in found.skipped] == ["sub__broken"] and found.images == 4
    assert photos.index(next(p for p in photos if p.name == "sub__broken")) not in found.used()


def test_fitted_shapes_are_few_and_boxes_are_in_the_photos_own_pixels(tmp_path):
    assert fitted_shape(224, 298, 224) == (224, 288, 0, 5)  # 4:3, long side trimmed to 224 + 2 * 32
    assert fitted_shape(700, 224, 224) == (448, 224, 126, 0)  # beyond 2:1: the ends are not scanned
    assert len({fitted_shape(224, w, 224)[:2] for w in range(224, 1000)}) == 8
    # a 1x1 conv that reads the red channel: its top example is the red dot, its bottom the black one
    net = nn.Sequential(nn.Conv2d(3, 1, 1))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[0, 0] = 1.0
        net[0].bias.zero_()
    wide = np.full((60, 160, 3), 128, np.uint8)  # short side 60 -> 30 x 80, trimmed to 30 x 60 from x = 10
    wide[40:46, 120:126] = (255, 0, 0)  # the red dot, near the right end of what is seen
    wide[6:12, 30:36] = 0  # the black dot, near its left end
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    photos = folder_photos(tmp_path)
    found = stream_examples(net, ["0"], photos, 2, short_side=30, objective=None, workers=0, progress=False)
    resized = load_photo(photos[1], 30)
    assert resized.shape == (30, 80, 3) and fitted_shape(30, 80, 30) == (30, 60, 0, 10)
    (p, value, box), _ = found.examples("0", 0, "top")
    x0, y0, x1, y1 = box
    assert photos[p].name == "wide" and (x1 - x0, y1 - y0) == (1, 1) and value > 200
    assert 10 <= x0 < 70 and resized[y0, x0, 0] > 200 and resized[y0, x0, 1] < 60  # red, in the photo's own pixels
    assert found.crop(p, box)[0, 0].tolist() == resized[y0, x0].tolist()
    (p, value, (x0, y0, x1, y1)), _ = found.examples("0", 0, "bottom")
    assert photos[p].name == "wide" and resized[y0, x0, 0] < 60 and value < 60


@pytest.mark.parametrize(("name", "layer"), [("resnet50", "layer2.0.conv2"), ("convnext_tiny", "features.1.0.block.3")])
def test_any_model_counts_its_units(name, layer, tmp_path):
    model = fv.load_model(name, weights="random")
    photos = folder_photos(photo_folder(tmp_path / "photos", count=5))
    found = stream_examples(model, [layer], photos, 2, short_side=64, objective=None, workers=0, progress=False)
    truth = brute_force(model, layer, photos, 64, objective=None)
    units = truth[0][0].values.shape[0]
    assert found.extremes[layer].top_value.shape == (units, 2) and units == {"resnet50": 128}.get(name, 384)
    tops = np.array([t[0].values.numpy() for t in truth])  # (photos, units)
    np.testing.assert_allclose(found.extremes[layer].top_value[:, 0], tops.max(0), rtol=1e-4, atol=1e-4)
    _, _, (x0, y0, x1, y1) = found.examples(layer, units - 1, "bottom")[0]
    assert 0 <= x0 < x1 and 0 <= y0 < y1


def test_atlas_writes_top_and_bottom_examples_from_a_folder(cli, tmp_path):
    root = photo_folder(tmp_path / "photos", count=9)
    (root / "sub" / "broken.png").write_bytes((root / "p01.jpg").read_bytes()[:200])
    (root / "readme.txt").write_text("x")
    out = tmp_path / "site"
    argv = ["atlas", "--html", out, "--layers", "block1_conv2,block2_conv1", "--per-layer", "2", "--weights", "random"]
    argv += ["--examples", "3", "--photos", root, "--workers", "0", "--photo-size", "32", "--size", "32"]
    argv += ["--steps", "1", "--no-progress", "--chunk-size", "2"]
    code, stdout, err = cli(*argv)
    assert code == 0, err
    assert "2 unreadable photos skipped" in stdout and "readme.txt" in err
    doc = json.loads((out / "atlas.json").read_text())
    run = doc["runs"][-1]
    assert run["examples_pass"]["photos"] == 11 and run["examples_pass"]["skipped"] == 2
    assert run["examples_pass"]["images"] == 9 and run["examples_pass"]["forward_passes"] >= 1
    used = {p["name"] for p in doc["photos"]}
    for layer in doc["layers"][1:3]:
        assert len(layer["units"]) == 2
        for unit in layer["units"]:
            top, bottom = unit["examples"]["top"], unit["examples"]["bottom"]
            assert len(top) == len(bottom) == 3
            for x in top + bottom:
                assert set(x) >= {"photo", "box", "activation", "file"} and (out / x["file"]).is_file()
                assert x["photo"] in used and x["box"][0] < x["box"][2] and x["box"][1] < x["box"][3]
            highs, lows = [x["activation"] for x in top], [x["activation"] for x in bottom]
            assert highs == sorted(highs, reverse=True) and lows == sorted(lows) and lows[0] <= highs[-1]
    assert (out / "parts" / "examples-pass.npz").is_file()
    code, stdout, _ = cli(*argv)  # a rerun: everything done, no pass
    assert code == 0 and "0 filters rendered, 4 already done" in stdout and "forward passes" not in stdout
    bad = tmp_path / "bad"
    code, _, err = cli(*[bad if a == out else a for a in argv], "--workers", "-1")
    assert code == 2 and "--workers must be a whole number >= 0, got -1" in err and not bad.exists()
    code, stdout, _ = cli(*argv, "--force")  # redone, the pass too
    assert code == 0 and json.loads((out / "atlas.json").read_text())["runs"][-1]["examples_pass"]["resumed"] == 0


def test_extremes_found_lists_only_real_photos():
    ex = Extremes.empty(2, 3)
    assert ex.found(0, "top") == [] and ex.found(1, "bottom") == []


def test_throughput_benchmark_makes_photos_and_writes_its_report(tmp_path, monkeypatch, random_vgg):
    from filtviz_bench.examples import cli, make_photos

    monkeypatch.setattr(models, "load_vgg16", lambda weights="keras", **kw: random_vgg)

    made = make_photos(tmp_path / "photos", 12, seed=1)
    assert made == {"made": 12, "photos": 12, "unreadable": 3}
    photos = folder_photos(tmp_path / "photos", warn=lambda line: None)
    assert len(photos) == 13 and sorted(photos.skipped) == ["unreadable/empty.webp", "unreadable/text.png"]
    assert {p.path.suffix for p in photos} == {".jpg", ".png", ".webp"}  # 12 photos + the truncated JPEG
    argv = ["--photos", tmp_path / "photos", "--images", 0, "--repeats", 1, "--size", 32, "--weights", "random"]
    argv += ["--workers", 0, "--quiet", "--out", tmp_path / "bench", "--peak-seconds", 0.2]
    assert cli([str(a) for a in argv]) == 0
    report = json.loads((tmp_path / "bench" / "throughput.json").read_text())
    run = report["repeats"][0]
    assert run["images"] == 12 and run["skipped"] == 1 and report["photos_found"] == 15
    assert report["images_per_s"]["min"] == pytest.approx(12 / run["seconds"])
    assert report["achieved_tflops"]["max"] == pytest.approx(report["useful_tflop"] / run["seconds"])
    fraction = report["achieved_tflops"]["max"] / report["peak"]["measured_matmul_tflops"]
    assert report["peak"]["fraction_of_matmul"]["max"] == pytest.approx(fraction) and fraction > 0
    assert len(report["layers"]) == 13


def test_ties_go_to_the_first_photo_whatever_the_batch_order():
    from torch_filtviz.atlas.dataset import RunningExtremes

    tops = []
    for batches in ([[3, 1], [0], [2]], [[2], [0, 3], [1]]):
        running = RunningExtremes({"x": 1}, 2)
        for ids in batches:
            running.update("x", torch.full((len(ids), 1, 2, 2), 5.0), torch.tensor(ids))
        ex = running.extremes("x")
        tops.append((ex.top_photo.tolist(), ex.bottom_photo.tolist(), ex.top_value.tolist()))
    assert tops[0] == tops[1] == ([[0, 1]], [[0, 1]], [[5.0, 5.0]])
