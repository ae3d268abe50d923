"""Vision transformers as targets: (N, T, C) token tensors count and read their units right.

Most checks run on a tiny torchvision ViT (32 px, 8 px patches: a class token + 4 x 4 patches, 32
channels, 64 MLP units) against values computed by hand from a hooked forward pass; one real
``vit_b_16`` and one ``swin_t`` (random weights) check the structure of the real networks, and the
issue's done-when command runs on ``vit_b_16``. timm models are checked when timm is installed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import VisionTransformer

import torch_filtviz as fv
from filtviz_core import methods
from filtviz_core.algorithm import interior
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError
from torch_filtviz import cli
from torch_filtviz import objectives as obj
from torch_filtviz.catalog import layer_rows, print_layers
from torch_filtviz.objectives import objective_values
from torch_filtviz.probe import fixed_input_size
from torch_filtviz.targets import channels_first, resolve_target

SIZE = 32
BLOCK = "encoder.layers.encoder_layer_1"
MLP = "encoder.layers.encoder_layer_1.mlp.0"  # Linear 32 -> 64 on (N, 17, 32)
GRID = 4  # 32 px / 8 px patches
PREFIX = 1  # the class token


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    net = VisionTransformer(image_size=SIZE, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
    return fv.wrap_model(net, "none", name="tiny_vit")


@pytest.fixture(scope="module")
def pictures():
    return torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 255


def hooked(model, layer: str, x: torch.Tensor) -> torch.Tensor:
    """The module's output (N, T, C), computed by hand: the network's own forward with one hook."""
    got = {}
    module = model.features.get_submodule(layer)
    handle = module.register_forward_hook(lambda m, a, out: got.update(out=out[0] if isinstance(out, tuple) else out))
    try:
        with torch.no_grad():
            model.features(x)
    finally:
        handle.remove()
    return got["out"]


@pytest.mark.parametrize("layer", [MLP, BLOCK, "encoder.layers.encoder_layer_0.self_attention"])
def test_channel_averages_the_patch_tokens_and_tokens_chooses(tiny, pictures, layer):
    out = hooked(tiny, layer, pictures)
    assert out.shape[1] == PREFIX + GRID * GRID
    c = 5
    with torch.no_grad():
        patches = objective_values(tiny, obj.channel(layer, c), pictures)
        cls_token = objective_values(tiny, obj.channel(layer, c, tokens="cls"), pictures)
        every = objective_values(tiny, obj.channel(layer, c, tokens="all"), pictures)
    torch.testing.assert_close(patches, out[:, PREFIX:, c].mean(dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cls_token, out[:, 0, c], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(every, out[:, :, c].mean(dim=1), rtol=1e-5, atol=1e-5)
    # a mean that took the class token in (the planted bug) would differ from the patches' mean
    assert (out[:, :, c].mean(dim=1) - patches).abs().max() > 1e-3


def test_neuron_picks_the_centre_patch_or_the_given_one(tiny, pictures):
    out = hooked(tiny, BLOCK, pictures)
    with torch.no_grad():
        centre = objective_values(tiny, obj.neuron(BLOCK, 3), pictures)
        given = objective_values(tiny, obj.neuron(BLOCK, 3, x=3, y=1), pictures)
        cls_token = objective_values(tiny, obj.neuron(BLOCK, 3, tokens="cls"), pictures)
        along = objective_values(tiny, obj.direction(BLOCK, np.eye(32)[3] * 2), pictures)
    torch.testing.assert_close(along, out[:, PREFIX:, 3].mean(dim=1), rtol=1e-5, atol=1e-5)  # = channel 3
    # the documented rule: patch (row, col) = (rows // 2, cols // 2) is token PREFIX + row * cols + col
    torch.testing.assert_close(centre, out[:, PREFIX + (GRID // 2) * GRID + GRID // 2, 3], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(given, out[:, PREFIX + 1 * GRID + 3, 3], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cls_token, out[:, 0, 3], rtol=1e-5, atol=1e-5)
    with pytest.raises(FiltvizError, match="lies outside the map's 4 columns"):
        objective_values(tiny, obj.neuron(BLOCK, 3, x=4), pictures)
    with pytest.raises(FiltvizError, match="a neuron is one token"):
        obj.neuron(BLOCK, 3, tokens="all")
    with pytest.raises(FiltvizError, match="valid: patches, cls, all"):
        obj.channel(BLOCK, 3, tokens="class")


def test_targets_count_units_and_show_patches_as_a_grid(tiny, pictures):
    target = resolve_target(tiny, MLP, "pre_relu", size=SIZE)
    assert (target.channel_dim, target.tokens.prefix, target.tokens.grid) == (-1, 1, (GRID, GRID))
    assert target.describe(tiny)["tokens"]["source"] == "VisionTransformer.class_token"
    assert fv.layer_channels(tiny, MLP) == 64
    out = hooked(tiny, MLP, pictures)
    grid = channels_first(target, out)  # (N, C, rows, cols): the patches, class token left out
    assert grid.shape == (3, 64, GRID, GRID)
    torch.testing.assert_close(grid[:, 7, 2, 1], out[:, PREFIX + 2 * GRID + 1, 7])
    assert resolve_target(tiny, "conv_proj", size=SIZE).tokens is None  # a conv map stays a conv map


def test_visualize_filters_on_tokens_starts_from_the_patch_mean(tiny):
    x0 = np.random.default_rng(2).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    res = fv.visualize_filters(tiny, MLP, [4, 9], init=x0, steps=2, progress=False)
    out = hooked(tiny, MLP, torch.from_numpy(x0).permute(0, 3, 1, 2))
    expected = torch.stack([out[0, PREFIX:, 4].mean(), out[1, PREFIX:, 9].mean()]).double().numpy()
    np.testing.assert_allclose(res.losses[:, 0], expected, rtol=1e-4, atol=1e-5)
    assert (res.losses[:, -1] > res.losses[:, 0]).all()
    assert res.params["tokens"] == "patches" and res.target["tokens"]["grid"] == [GRID, GRID]
    cls_run = fv.visualize_filters(tiny, MLP, [4], init=x0[:1], steps=1, progress=False, tokens="cls")
    assert cls_run.losses[0, 0] == pytest.approx(float(out[0, 0, 4]), rel=1e-4, abs=1e-5)
    assert cls_run.params["tokens"] == "cls"


def test_feature_maps_show_the_patch_grid(tiny, pictures):
    from torch_filtviz.maps import feature_maps

    maps = feature_maps(tiny, pictures[:1], [BLOCK, MLP])
    out = hooked(tiny, MLP, pictures[:1])
    assert maps[BLOCK].shape == (1, 32, GRID, GRID) and maps[MLP].shape == (1, 64, GRID, GRID)
    torch.testing.assert_close(maps[MLP][0, :, 3, 2], out[0, PREFIX + 3 * GRID + 2, :])
    with pytest.raises(FiltvizError, match="takes 32x32 px pictures only"):
        feature_maps(tiny, np.zeros((48, 48, 3), np.uint8), [BLOCK])


def test_render_reads_tokens_through_the_objective(tiny):
    goal = obj.channel(BLOCK, 2, tokens="cls") - obj.neuron(BLOCK, 2, x=0, y=0)
    res = fv.render(tiny, goal, batch=1, method="pixel", steps=1, size=SIZE, progress=False)
    assert res.objective["text"] == f"channel({BLOCK}, 2, tokens=cls) - neuron({BLOCK}, 2, x=0, y=0)"
    assert res.objective["terms"][0]["tokens"] == "cls" and "tokens" not in res.objective["terms"][1]


def test_a_wrong_size_gets_one_line_naming_the_size(tiny):
    assert fixed_input_size(tiny) == SIZE
    with pytest.raises(FiltvizError, match=r"takes 32x32 px pictures only .*got 64 px: use --size 32") as info:
        fv.visualize_filters(tiny, MLP, "0", size=64, steps=1, progress=False)
    assert "\n" not in str(info.value)
    options = methods.fourier_options()
    margin = methods.seen_size(SIZE, SIZE, options)[0] - SIZE
    with pytest.raises(FiltvizError, match=f"use --size {SIZE - margin} "):
        fv.visualize_filters(tiny, MLP, "0", size=SIZE, steps=1, method="fourier", progress=False)
    res = fv.visualize_filters(tiny, MLP, "0", size=SIZE - margin, steps=1, method="fourier", progress=False)
    assert res.params["seen_size"] == [SIZE, SIZE]


def test_summary_of_a_vision_transformer(tiny):
    from torch_filtviz.summary import summary

    text = summary(tiny, (3, SIZE, SIZE), print_fn=None)
    assert "encoder.layers.encoder_layer_1.mlp.0 (Linear)" in text and "(None, 17, 64)" in text
    with pytest.raises(FiltvizError, match=r"takes 32x32 px pictures only .*use --input-size 32$"):
        summary(tiny, (3, 64, 64), print_fn=None)


def test_tokens_on_layers_without_them_are_refused(tiny):
    with pytest.raises(FiltvizError, match="conv_proj has no tokens"):
        fv.visualize_filters(tiny, "conv_proj", "0", size=SIZE, steps=1, progress=False, tokens="all")

    class NoClassToken(nn.Module):  # patch tokens only, and nothing on the model says otherwise
        def __init__(self) -> None:
            super().__init__()
            self.patches = nn.Conv2d(3, 8, 8, stride=8)
            self.mix = nn.Linear(8, 16)

        def forward(self, x):
            return self.mix(self.patches(x).flatten(2).transpose(1, 2))

    model = fv.wrap_model(NoClassToken(), "none")
    target = resolve_target(model, "mix", size=SIZE)
    assert (target.tokens.prefix, target.tokens.class_token, target.tokens.grid) == (0, False, (GRID, GRID))
    with pytest.raises(FiltvizError, match="mix has no class token"):
        fv.visualize_filters(model, "mix", "0", size=SIZE, steps=1, progress=False, tokens="cls")
    res = fv.visualize_filters(model, "mix", "0-1", size=SIZE, steps=1, progress=False)
    assert res.target["tokens"]["prefix"] == 0


def test_command_line_tokens_and_wrong_size(tiny, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_load", lambda args: tiny)
    out = tmp_path / "cls"
    argv = ["filters", MLP, "--model", "vit_b_16", "--filters", "0-1", "--size", "32", "--steps", "1"]
    assert cli.main([*argv, "--tokens", "cls", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "run.json").read_text())["params"]["tokens"] == "cls"
    capsys.readouterr()
    assert cli.main(["layers", "--model", "vit_b_16", "--size", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "takes 32x32 px" in err and "--size 32" in err


def test_tf_command_line_refuses_tokens_in_one_line(capsys):
    tf_cli = pytest.importorskip("tf_reference.cli")
    assert tf_cli.main(["filters", "block1_conv1", "--filters", "0", "--tokens", "cls"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--tokens cls" in err and "no vision-transformer token layers" in err


def test_a_failing_probe_is_reported_as_what_it_is(monkeypatch, capsys):
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            raise RuntimeError("the batch norm statistics are missing")

    model = fv.wrap_model(Broken(), "none")
    with pytest.raises(FiltvizRuntimeError, match="the batch norm statistics are missing"):
        layer_rows(model)

    class SizeLike(nn.Module):  # an error that reads like a size problem, before any module ran
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            raise ValueError("expected input of another kind")

    with pytest.raises(FiltvizRuntimeError, match="expected input of another kind"):
        layer_rows(fv.wrap_model(SizeLike(), "none"))
    monkeypatch.setattr(cli, "_load", lambda args: model)
    assert cli.main(["layers", "--model", "vit_b_16"]) == 1
    captured = capsys.readouterr()
    assert "not reached" not in captured.out and captured.out == ""
    assert captured.err.count("\n") == 1 and "the batch norm statistics are missing" in captured.err


# --- real networks (random weights) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit_b_16():
    return fv.load_model("vit_b_16", weights="random")


def test_vit_b_16_layers_listing(vit_b_16, capsys):
    rows = {r.path: r for r in layer_rows(vit_b_16)}
    expect = {  # path: (filters, tokens prefix or None)
        "conv_proj": (768, None),
        "encoder.layers.encoder_layer_5": (768, 1),
        "encoder.layers.encoder_layer_5.self_attention": (768, 1),
        "encoder.layers.encoder_layer_5.mlp.0": (3072, 1),
        "encoder.layers.encoder_layer_5.mlp.1": (3072, 1),
        "encoder.ln": (768, 1),
        "heads.head": (1000, None),
    }
    for path, (filters, prefix) in expect.items():
        row = rows[path]
        assert (row.filters, row.min_size) == (filters, 224), path
        assert (row.tokens.prefix if row.tokens else None) == prefix, path
    assert rows["encoder.layers.encoder_layer_5.mlp.0"].tokens.grid == (14, 14)
    assert rows["encoder.layers.encoder_layer_5.mlp.0"].shape == (1, 197, 3072)
    print_layers(vit_b_16)
    text = capsys.readouterr().out
    assert "encoder.layers.encoder_layer_5.mlp.0" in text and "tokens: class + 14x14 patches" in text
    assert "input: 224x224 px only" in text


def test_done_when_command(vit_b_16, monkeypatch, tmp_path, capsys):
    """The issue's command, filtviz filters encoder.layers.encoder_layer_5.mlp.0 --model vit_b_16 --weights
    random --filters 0-3 --size 224 --steps 5, with 1 step to keep the suite fast (the model loaded once, by
    the fixture, as the command loads it)."""
    monkeypatch.setattr(cli, "_load", lambda args: vit_b_16)
    layer = "encoder.layers.encoder_layer_5.mlp.0"
    argv = ["filters", layer, "--model", "vit_b_16", "--weights", "random", "--filters", "0-3", "--size", "224"]
    assert cli.main([*argv, "--steps", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["filters"] == [0, 1, 2, 3] and record["target"]["tokens"]["grid"] == [14, 14]
    assert sorted(p.name for p in (tmp_path / "filters").iterdir()) == [f"filter_{i:04d}.png" for i in range(4)]
    losses = np.asarray(record["losses"])
    assert (losses[:, -1] > losses[:, 0]).all()  # the ascent climbs


def test_swin_t_units_are_counted_in_the_last_axis():
    import torchvision

    from torch_filtviz.job import check_paths, resolve_layers

    torch.manual_seed(0)
    model = fv.wrap_model(torchvision.models.swin_t(), "none")
    expect = {
        "features.1": 96,
        "features.1.0.attn": 96,  # window attention: ends in reshape/roll/slice steps after its linear
        "features.1.0.mlp.0": 384,
        "features.2.reduction": 192,
        "features.5.3": 384,
        "features.7": 768,
        "permute": 768,  # back to (N, C, H, W)
        "head": 1000,
    }
    layers = resolve_layers(model, check_paths(model, list(expect)), "pre_relu", 64, 64, 64, 64)
    assert {path: layers.shapes[path][0] for path in expect} == expect  # what visualize_filters counts
    assert all(layers.targets[p].tokens is None for p in expect)  # (N, H, W, C) maps, not tokens
    assert layers.shapes["features.5.3"][1] == (4, 4)  # the map: 64 px / 16
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 255
    layer = "features.1.0.attn"
    target = resolve_target(model, layer, "pre_relu", size=64)
    assert target.channel_dim == -1
    with torch.no_grad():
        value = objective_values(model, obj.channel(layer, 7), x)
    out = hooked(model, layer, x)  # (N, H, W, C)
    hs, ws = interior(out.shape[1], out.shape[2])
    torch.testing.assert_close(value, out[:, hs, ws, 7].mean(dim=(1, 2)), rtol=1e-5, atol=1e-5)


def test_timm_vision_transformers():
    timm = pytest.importorskip("timm", reason="timm is not installed (pip install timm)")
    torch.manual_seed(0)
    net = timm.create_model(
        "deit_tiny_distilled_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2, embed_dim=48
    )
    model = fv.wrap_model(net, "none")
    assert fixed_input_size(model) == SIZE
    target = resolve_target(model, "blocks.1.mlp.fc1", "pre_relu")
    assert (target.tokens.prefix, target.tokens.class_token, target.tokens.grid) == (2, True, (GRID, GRID))
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4)) * 255
    out = hooked(model, "blocks.1.mlp.fc1", x)
    with torch.no_grad():
        value = objective_values(model, obj.channel("blocks.1.mlp.fc1", 11), x)
    torch.testing.assert_close(value, out[:, 2:, 11].mean(dim=1), rtol=1e-5, atol=1e-5)
    registers = fv.wrap_model(
        timm.create_model(
            "vit_tiny_patch16_224",
            pretrained=False,
            img_size=32,
            patch_size=8,
            depth=1,
            class_token=False,
            reg_tokens=2,
            global_pool="avg",
        ),
        "none",
    )
    rows = {r.path: r for r in layer_rows(registers)}
    assert rows["blocks.0"].tokens.prefix == 2 and not rows["blocks.0"].tokens.class_token
    with pytest.raises(FiltvizError, match="has no class token"):
        fv.visualize_filters(registers, "blocks.0", "0", size=SIZE, steps=1, progress=False, tokens="cls")


def test_maxvit_is_probed_at_the_size_it_was_built_for():
    from torchvision.models import MaxVit

    torch.manual_seed(0)
    net = MaxVit(
        input_size=(64, 64),
        stem_channels=8,
        partition_size=4,
        block_channels=[8, 16],
        block_layers=[1, 1],
        head_dim=4,
        stochastic_depth_prob=0.0,
    )
    model = fv.wrap_model(net, "none")
    assert fixed_input_size(model) == 64
    rows = {r.path: r for r in layer_rows(model)}
    mlp = "blocks.0.layers.0.layers.window_attention.mlp_layer.1"  # Linear 8 -> 32 on (N, windows, tokens, C)
    assert [(rows[p].filters, rows[p].min_size) for p in ("blocks.0", "blocks.1", mlp)] == [(8, 64), (16, 64), (32, 64)]
    with pytest.raises(FiltvizError, match="takes 64x64 px pictures only"):
        fv.visualize_filters(model, "blocks.1", "0", size=96, steps=1, progress=False)
