"""A unit's other views in the atlas: diverse pictures, the negative, the maco
transparency, and the upstream connections, on real structures (VGG16, ResNet-50, ConvNeXt-T, random weights)
and through the real build (a small net, 32 px, a few steps). The browser side is in test_atlas_browser.py."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from filtviz_core.site.chunks import Chunk
from filtviz_core.site.manifest import UPSTREAM, AtlasFolder, merge_manifest
from torch_filtviz import load_model, wrap_model
from torch_filtviz.atlas import build_atlas
from torch_filtviz.atlas.upstream import FIRST, connections, upstream

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atlas_nets import small

TINY = {"steps": 3, "size": 32, "progress": False}


# --- upstream connections -----------------------------------------------------------------------------


def test_connections_rank_inputs_by_the_l2_norm_of_their_kernel_slice():
    w = np.zeros((2, 10, 3, 3), np.float32)
    for c in range(10):
        w[0, c] = (c - 4.5) / 9  # |slice| grows away from the middle; sign flips at c = 5
    w[1, 3, 0, 0], w[1, 7, 2, 2] = -5.0, 5.0  # a tie: the lower channel first
    w[1, 1] = 1.0  # norm 3, sum +9
    found = connections(w, "feeder", [0, 1])
    assert [c["filter"] for c in found[0]] == [0, 9, 1, 8, 2, 7, 3, 6]
    assert [c["sign"] for c in found[0]] == [-1, 1, -1, 1, -1, 1, -1, 1]
    assert found[0][0]["weight"] == pytest.approx(3 * 4.5 / 9)  # L2 norm of 9 equal entries
    assert [(c["filter"], c["weight"], c["sign"]) for c in found[1][:3]] == [(3, 5.0, -1), (7, 5.0, 1), (1, 3.0, 1)]
    assert all(c["layer"] == "feeder" for c in found[1]) and len(found[1]) == 8


@pytest.fixture(scope="module")
def random_vgg():
    return load_model("vgg16", weights="random")


def test_upstream_of_vgg16_through_in_place_relu_and_pooling(random_vgg):
    got = upstream(random_vgg, "block4_conv1", [0, 5])  # fed by block3_conv3 through ReLU(inplace) and a max-pool
    conv = random_vgg.features[17]
    want = conv.weight.detach().flatten(2).norm(dim=2)
    for f in (0, 5):
        links = got[f]["upstream"]
        assert [c["layer"] for c in links] == ["block3_conv3"] * 8
        channels = [c["filter"] for c in links]
        assert channels == torch.argsort(want[f], descending=True, stable=True)[:8].tolist()
        assert [c["weight"] for c in links] == pytest.approx(want[f, channels].tolist(), rel=1e-6)
        sums = conv.weight.detach()[f, channels].sum((1, 2))
        assert [c["sign"] for c in links] == [1 if s >= 0 else -1 for s in sums.tolist()]
    assert upstream(random_vgg, "block1_conv2", [0])[0]["upstream"][0]["layer"] == "block1_conv1"
    assert upstream(random_vgg, "block1_conv1", [0]) == {0: {"upstream_note": FIRST}}


def test_upstream_of_resnet50_and_convnext_or_why_not():
    resnet = load_model("resnet50", weights="random")
    links = upstream(resnet, "layer1.0.conv2", [3])[3]["upstream"]  # conv1 -> bn1 -> the block's reused ReLU
    assert {c["layer"] for c in links} == {"layer1.0.conv1"} and len(links) == 8
    assert upstream(resnet, "layer1.0.conv1", [0])[0]["upstream"][0]["layer"] == "conv1"  # stem: bn, relu, max-pool
    assert "residual add" in upstream(resnet, "layer1.1.conv1", [0])[0]["upstream_note"]
    assert upstream(resnet, "conv1", [0])[0]["upstream_note"] == FIRST
    convnext = load_model("convnext_tiny", weights="random")
    assert "depthwise" in upstream(convnext, "features.1.0.block.0", [0])[0]["upstream_note"]
    assert "not a conv layer" in upstream(convnext, "features.1.0.block.3", [0])[0]["upstream_note"]  # nn.Linear
    assert "fed through" in upstream(convnext, "features.2.1", [0])[0]["upstream_note"]  # after a LayerNorm
    assert upstream(convnext, "features.0.0", [0])[0]["upstream_note"] == FIRST


# --- the manifest -------------------------------------------------------------------------------------


def test_merge_folds_views_into_their_method_and_links_upstream_thumbnails(tmp_path):
    folder = AtlasFolder.open(tmp_path / "site", {"name": "net", "weights": {"source": "x", "sha256": None}})
    main = {"files": {"picture": "p.png", "thumb": "t.jpg"}, "settings": {}}
    folder.write_part(Chunk("a", "pixel", (0, 1)), {0: main, 1: main}, "r")
    folder.write_part(Chunk("b", "pixel", (0,)), {0: main}, "r")
    div = {"files": {"diversity": ["d0.png", "d1.png"]}, "final_losses": [1.0, 2.0], "settings": {"view": "diversity"}}
    folder.write_part(Chunk("b", "pixel.diversity", (0, 1)), {0: div, 1: div}, "r")  # filter 1 has no picture yet
    folder.write_part(Chunk("b", "fourier.negative", (0,)), {0: {"files": {"negative": "n.png"}}}, "r")
    links = [
        {"layer": "a", "filter": 1, "weight": 2.0, "sign": -1},
        {"layer": "a", "filter": 7, "weight": 1.0, "sign": 1},
    ]
    folder.write_part(Chunk("b", UPSTREAM, (0, 1)), {0: {"upstream": links}, 1: {"upstream": links}}, "r")
    folder.write_part(Chunk("a", UPSTREAM, (0, 1)), {0: {"upstream_note": "first"}, 1: {"upstream_note": "first"}}, "r")
    doc = merge_manifest([], folder.parts())
    a, b = doc["layers"]
    assert [u["filter"] for u in b["units"]] == [0] and b["rendered"] == {"pixel": 1}  # views are not units
    entry = b["units"][0]["methods"]["pixel"]
    assert entry["files"] == {"picture": "p.png", "thumb": "t.jpg", "diversity": ["d0.png", "d1.png"]}
    assert entry["diversity"]["final_losses"] == [1.0, 2.0] and "fourier" not in b["units"][0]["methods"]
    got = b["units"][0]["upstream"]
    assert got[0] == {**links[0], "page": "a.html#1", "thumb": "t.jpg"}  # rendered: its thumbnail
    assert got[1] == {**links[1], "page": "a.html#7"}  # not rendered: a link only
    assert [u["upstream_note"] for u in a["units"]] == ["first", "first"]
    part = next(p for p in folder.parts() if p["key"] == "b/pixel/0000-0000")
    assert "diversity" not in part["entries"]["0"]["files"]  # the part as read stays as it was


# --- the build ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net():
    return wrap_model(small(), preprocess="none")


def parts_written(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in (out / "parts").rglob("*.json")}


def test_diversity_and_negative_are_rendered_recorded_and_resumed(net, tmp_path):
    out = tmp_path / "site"
    kwargs = dict(layers=["5"], per_layer=2, method="fourier", params=TINY, examples=0, chunk_size=2, progress=False)
    report = build_atlas(net, out, diversity=2, negative=True, **kwargs)
    assert report.rendered == 2
    doc = json.loads((out / "atlas.json").read_text())
    layer = next(x for x in doc["layers"] if x["name"] == "5")
    for unit in layer["units"]:
        entry = unit["methods"]["fourier"]
        pictures = [np.asarray(Image.open(out / p)) for p in entry["files"]["diversity"]]
        assert len(pictures) == 2 and pictures[0].shape == (32, 32, 3) and not np.array_equal(*pictures)
        assert (out / entry["files"]["negative"]).is_file()
        # the negative maximizes minus the unit: its value ends below the picture's
        assert -entry["negative"]["final_losses"][0] < entry["final_loss"]
        assert unit["upstream"][0]["layer"] == "2" and len(unit["upstream"]) == 8
    before = parts_written(out)
    again = build_atlas(net, out, diversity=2, negative=True, **kwargs)
    assert again.rendered == 0 and parts_written(out) == before  # nothing redone, nothing rewritten
    gone = out / layer["units"][1]["methods"]["fourier"]["files"]["diversity"][1]
    kept = np.asarray(Image.open(gone))
    gone.unlink()
    build_atlas(net, out, diversity=2, **kwargs)  # without --negative: the negatives stay
    doc = json.loads((out / "atlas.json").read_text())
    run = doc["runs"][-1]
    assert run["rendered"] == 0 and run["views_rendered"] == 1  # only unit 1's diversity (its chunk padded to 2)
    assert np.array_equal(np.asarray(Image.open(gone)), kept)  # the same pictures again, bit for bit
    entry = next(x for x in doc["layers"] if x["name"] == "5")["units"][1]["methods"]["fourier"]
    assert (out / entry["files"]["negative"]).is_file()


def test_maco_transparency_is_saved_beside_the_picture(net, tmp_path):
    out = tmp_path / "site"
    params = {**TINY, "steps": 2, "method_options": {"crops": 2}}
    build_atlas(net, out, layers=["5"], per_layer=1, method="maco", params=params, examples=0, progress=False)
    entry = json.loads((out / "atlas.json").read_text())["layers"][2]["units"][0]["methods"]["maco"]
    alpha = np.asarray(Image.open(out / entry["files"]["alpha"]))
    cutout = np.asarray(Image.open(out / entry["files"]["cutout"]))
    picture = np.asarray(Image.open(out / entry["files"]["picture"]))
    assert alpha.shape == (32, 32) and alpha.dtype == np.uint8 and alpha.max() == 255 and alpha.min() < 255
    assert cutout.shape == (32, 32, 4) and np.array_equal(cutout[..., 3], alpha)
    assert np.array_equal(cutout[..., :3], picture)
    assert {entry["files"]["alpha"], entry["files"]["cutout"]} <= set(entry["bytes"])  # a deleted one is redone


def test_the_site_shows_the_best_measured_method_first():
    from filtviz_core.site.manifest import PREFERENCE, default_method

    quality = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/quality/quality.json").read_text())
    runs = quality["runs"]
    assert runs["fourier"]["summary"]["median_z"] > runs["pixel"]["summary"]["median_z"]  # 158 vs 93
    beats = next(t for t in quality["targets"] if t["target"] == "fourier robust z above the pixel method's")
    assert beats["detail"] == "12 of 12 filters"
    assert PREFERENCE.index("fourier") < PREFERENCE.index("pixel")
    assert default_method(["pixel", "maco", "fourier"]) == "fourier" and default_method(["maco", "pixel"]) == "pixel"
    assert default_method(["twin", "maco"]) == "maco" and default_method(["b", "a"]) == "a"
    assert default_method([]) is None


@pytest.mark.parametrize(
    "name, layer, size, units, upstream_of",
    [
        ("resnet50", "layer1.0.conv2", 64, 64, "layer1.0.conv1"),  # conv -> BatchNorm -> ReLU -> conv
        ("convnext_tiny", "features.1.0.block.3", 64, 384, None),  # nn.Linear on channels-last maps
        ("vit_b_16", "encoder.layers.encoder_layer_0.mlp.0", 224, 3072, None),  # tokens
    ],
)
def test_a_site_of_any_model_counts_its_units(tmp_path, name, layer, size, units, upstream_of):
    model = load_model(name, weights="random")
    out = tmp_path / "site"
    params = {"steps": 1, "size": size, "progress": False}
    build_atlas(model, out, layers=[layer], per_layer=1, params=params, examples=0, chunk_size=1, progress=False)
    doc = json.loads((out / "atlas.json").read_text())
    found = next(x for x in doc["layers"] if x["name"] == layer)
    assert found["filters"] == units and found["rendered"] == {"pixel": 1}
    unit = found["units"][0]
    assert unit["methods"]["pixel"]["files"]["picture"].endswith("0000.png")
    if upstream_of:
        assert [c["layer"] for c in unit["upstream"]] == [upstream_of] * 8
    else:
        assert "not a conv layer" in unit["upstream_note"]
    assert (out / "data" / f"{layer}.js").is_file()
