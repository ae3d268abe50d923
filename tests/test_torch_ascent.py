"""Batched gradient ascent: batching-independence, determinism, init, dead filters, snapshots, checks."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from filtviz_core import algorithm as alg
from filtviz_core.errors import FiltvizError
from torch_filtviz import job as jobs
from torch_filtviz import load_vgg16, visualize_filters

FAST = dict(size=32, progress=False)


@pytest.fixture(scope="module")
def vgg(weights_file):
    return load_vgg16(weights_file.path)


@pytest.fixture(scope="module")
def batched(vgg):
    """block1_conv2, 4 filters in one batch, 100 steps at 32 px (the reference for several tests)."""
    return visualize_filters(vgg, "block1_conv2", [0, 5, 17, 40], steps=100, **FAST)


class Probe(nn.Module):
    """Conv(3->3) + ReLU on raw pixels; filter 0 fires everywhere, filter 1 never (bias -1e4)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        with torch.no_grad():
            self.conv.weight[0].abs_()
            self.conv.bias[0] = 1.0
            self.conv.weight[1] = 0.01
            self.conv.bias[1] = -1e4

    def forward(self, x):
        return self.relu(self.conv(x))


def test_shapes_and_params(batched):
    r = batched
    assert r.filters == [0, 5, 17, 40] and r.layer == "block1_conv2"
    assert r.raw.shape == (4, 32, 32, 3) and r.raw.dtype == np.float32
    assert r.images.shape == (4, 32, 32, 3) and r.images.dtype == np.uint8
    assert r.losses.shape == (4, 101) and r.losses.dtype == np.float64
    assert sorted(r.snapshots) == [10, 100] and r.snapshots[10].shape == (4, 32, 32, 3)
    assert r.dead.tolist() == [False] * 4
    np.testing.assert_array_equal(r.snapshots[100], r.raw)
    np.testing.assert_array_equal(r.images, alg.deprocess(r.raw))
    assert r.params == {
        "steps": 100,
        "size": 32,
        "lr": 1.0,
        "seed": 0,
        "snapshots": [10, 100],
        "objective": "pre_relu",
        "init": "seeded",
        "clip": False,
        "precision": "fp32",
        "channels_last": True,
        "batch_size": 4,
    }
    assert r.device == "cpu" and r.seconds > 0


def test_losses_increase(batched):
    assert np.all(np.diff(batched.losses[:, :11], axis=1) > 0)
    assert np.all(batched.losses[:, 100] > 2 * batched.losses[:, 0])


def test_batched_equals_one_at_a_time(vgg, batched):
    """The conv kernels round a little differently for other batch sizes (1 ulp at step 1), so not
    bitwise; measured: losses within 2.4e-7, images within 2e-6 of their change from x0 at step 100."""
    x0 = alg.initial_images(batched.filters, 32, 0)
    for i, f in enumerate(batched.filters):
        one = visualize_filters(vgg, "block1_conv2", [f], steps=100, **FAST)
        np.testing.assert_allclose(batched.losses[i], one.losses[0], rtol=1e-5)
        for got, want in ((batched.raw[i], one.raw[0]), (batched.snapshots[10][i], one.snapshots[10][0])):
            assert np.linalg.norm(got - want) <= 1e-5 * np.linalg.norm(want - x0[i])
        assert np.abs(batched.images[i].astype(int) - one.images[0]).max() <= 1


def test_chunks_and_determinism(vgg):
    a = visualize_filters(vgg, "block2_conv1", "3-7", steps=5, batch_size=2, **FAST)
    b = visualize_filters(vgg, "block2_conv1", "3-7", steps=5, batch_size=2, **FAST)
    assert a.filters == [3, 4, 5, 6, 7] and a.params["batch_size"] == 2
    np.testing.assert_array_equal(a.raw, b.raw)  # bitwise
    np.testing.assert_array_equal(a.losses, b.losses)
    whole = visualize_filters(vgg, "block2_conv1", "3-7", steps=5, **FAST)
    np.testing.assert_allclose(a.losses, whole.losses, rtol=1e-5)


def test_init_is_honoured(vgg):
    rng = np.random.default_rng(7)
    init = rng.uniform(60, 200, size=(2, 40, 36, 3)).astype(np.float32)
    init_copy = init.copy()
    r = visualize_filters(vgg, "block1_conv2", [1, 2], steps=3, init=init, snapshots=(0, 3), seed=99, progress=False)
    np.testing.assert_array_equal(r.snapshots[0], init)
    np.testing.assert_array_equal(init, init_copy)  # the caller's array is never updated in place
    assert r.raw.shape == (2, 40, 36, 3) and r.params["init"] == "given" and r.params["size"] == [40, 36]
    with torch.no_grad():  # the objective by hand: conv features.2 (pre-ReLU), interior mean
        x = torch.from_numpy(init).permute(0, 3, 1, 2)
        pre = vgg.features[:3](vgg.preprocess(x))
    expected = [pre[i, f, 2:-2, 2:-2].mean().item() for i, f in enumerate([1, 2])]
    np.testing.assert_allclose(r.losses[:, 0], expected, rtol=1e-5)
    single = visualize_filters(vgg, "block1_conv2", 2, steps=3, init=init[1], progress=False)  # (H, W, 3)
    np.testing.assert_allclose(single.raw[0], r.raw[1], rtol=0, atol=1e-4)  # batch of 1 vs 2: ulps
    seeded = visualize_filters(vgg, "block1_conv2", [1, 2], steps=0, seed=99, **FAST)
    np.testing.assert_array_equal(seeded.raw, alg.initial_images([1, 2], 32, 99))


def test_steps_zero(vgg):
    r = visualize_filters(vgg, "block1_conv1", "0-2", steps=0, **FAST)
    x0 = alg.initial_images([0, 1, 2], 32, 0)
    np.testing.assert_array_equal(r.raw, x0)
    assert r.losses.shape == (3, 1) and list(r.snapshots) == [0]
    np.testing.assert_array_equal(r.snapshots[0], x0)


def test_snapshot_rule(vgg):
    r = visualize_filters(vgg, "block1_conv1", [0, 1], steps=12, **FAST)
    assert sorted(r.snapshots) == [10, 12]
    r = visualize_filters(vgg, "block1_conv1", [0, 1], steps=4, snapshots=(0, 3), **FAST)
    short = visualize_filters(vgg, "block1_conv1", [0, 1], steps=3, **FAST)
    assert sorted(r.snapshots) == [0, 3]
    np.testing.assert_array_equal(r.snapshots[3], short.raw)
    np.testing.assert_array_equal(r.losses[:, :4], short.losses)
    with pytest.raises(FiltvizError, match=r"outside 0..4"):
        visualize_filters(vgg, "block1_conv1", 0, steps=4, snapshots=(5,), **FAST)


def test_dead_filters_flagged():
    model = Probe().train()
    x0 = np.full((2, 8, 8, 3), 128.0, np.float32)
    x0 += np.random.default_rng(0).uniform(-10, 10, size=x0.shape).astype(np.float32)
    post = visualize_filters(model, "relu", [0, 1], steps=3, init=x0, objective="post_relu", progress=False)
    assert post.dead.tolist() == [False, True]
    np.testing.assert_array_equal(post.losses[1], 0.0)
    np.testing.assert_array_equal(post.raw[1], x0[1])  # a dead filter never moves, and is kept
    assert not np.array_equal(post.raw[0], x0[0])
    zero = visualize_filters(model, "relu", [0, 1], steps=0, init=x0, objective="post_relu", progress=False)
    assert zero.dead.tolist() == [False, True]  # decided at x0 whatever the number of steps
    wild = x0 + np.array([0, 300], np.float32)[:, None, None, None]  # filter 1 starts beyond 255
    clipped = visualize_filters(
        model, "relu", [0, 1], steps=2, init=wild, objective="post_relu", clip=True, progress=False
    )
    np.testing.assert_array_equal(clipped.raw[1], wild[1])  # frozen (SPEC §9), not clipped
    assert clipped.raw[0].max() <= 255
    pre = visualize_filters(model, "relu", [0, 1], steps=3, init=x0, progress=False)
    assert pre.dead.tolist() == [False, False] and np.all(np.diff(pre.losses[1]) > 0)
    # the model is handed back in the training mode it came in (it ran in eval mode), and its
    # parameters as they were (no gradient stored)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_conv_path_and_alias_agree(vgg):
    for objective in ("pre_relu", "post_relu"):
        alias = visualize_filters(vgg, "block1_conv2", [3], steps=2, objective=objective, **FAST)
        path = visualize_filters(vgg, "features.2", [3], steps=2, objective=objective, **FAST)
        np.testing.assert_array_equal(alias.losses, path.losses)
    relu_pre = visualize_filters(vgg, "features.3", [3], steps=2, **FAST)  # a ReLU path: its input
    conv_pre = visualize_filters(vgg, "features.2", [3], steps=2, **FAST)
    np.testing.assert_array_equal(relu_pre.losses, conv_pre.losses)
    np.testing.assert_array_equal(relu_pre.raw, conv_pre.raw)
    assert not np.array_equal(conv_pre.losses, alias.losses)  # pre and post differ for this filter


def test_fake_oom_halves_the_chunk(vgg, monkeypatch):
    real = jobs.run_chunk
    sizes = []

    def flaky(job, cap, keys, rows, objective, pbar):
        sizes.append(len(keys))
        if len(keys) > 2:
            raise torch.OutOfMemoryError("fake: CUDA out of memory")
        return real(job, cap, keys, rows, objective, pbar)

    monkeypatch.setattr(jobs, "run_chunk", flaky)
    r = visualize_filters(vgg, "block1_conv2", "0-4", steps=3, batch_size=5, **FAST)
    assert sizes == [5, 2, 2, 1] and r.params["batch_size"] == 2
    monkeypatch.setattr(jobs, "run_chunk", real)
    whole = visualize_filters(vgg, "block1_conv2", "0-4", steps=3, **FAST)
    np.testing.assert_allclose(r.losses, whole.losses, rtol=1e-5)
    assert r.filters == whole.filters

    def broke(*a, **kw):
        raise torch.OutOfMemoryError("fake: CUDA out of memory")

    monkeypatch.setattr(jobs, "run_chunk", broke)
    with pytest.raises(torch.OutOfMemoryError):
        visualize_filters(vgg, "block1_conv2", "0-4", steps=3, batch_size=4, **FAST)


def test_bf16_and_channels_last_options(vgg):
    ref = visualize_filters(vgg, "block1_conv2", [0, 1], steps=3, **FAST)
    cl = visualize_filters(vgg, "block1_conv2", [0, 1], steps=3, channels_last=True, **FAST)
    np.testing.assert_allclose(cl.losses, ref.losses, rtol=1e-4)
    bf = visualize_filters(vgg, "block1_conv2", [0, 1], steps=3, precision="bf16", **FAST)
    assert bf.raw.dtype == np.float32 and bf.losses.dtype == np.float64 and bf.params["precision"] == "bf16"
    np.testing.assert_allclose(bf.losses, ref.losses, rtol=0.05)
    clip = visualize_filters(vgg, "block1_conv2", [0], steps=3, clip=True, **FAST)
    assert clip.raw.min() >= 0 and clip.raw.max() <= 255


def test_progress_bar(vgg, capsys):
    visualize_filters(vgg, "block1_conv1", [0, 1], steps=2, size=32, progress=True)
    assert "block1_conv1" in capsys.readouterr().err


def test_run_record(batched, vgg):
    rec = batched.run_record(vgg.weights_info)
    json.dumps(rec)
    assert rec["framework"] == "torch" and rec["framework_version"].startswith(f"torch {torch.__version__}")
    assert rec["layer"] == "block1_conv2" and rec["filters"] == [0, 5, 17, 40]
    assert np.array(rec["losses"]).shape == (4, 101) and rec["dead"] == [False] * 4
    assert rec["weights"]["sha256"] == vgg.weights_info["sha256"] and rec["params"]["init"] == "seeded"
    assert batched.run_record()["weights"] == rec["weights"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(layer="block9_conv1"), "unknown layer 'block9_conv1'; valid: block1_conv1"),
        (dict(filters=64), "filter 64 is out of range: block1_conv2 has 64 filters"),
        (dict(filters="0-70"), "has 64 filters"),
        (dict(filters="a-b"), "bad filter list"),
        (dict(objective="relu"), "unknown objective"),
        (dict(steps=-1), "steps must be"),
        (dict(lr=0.0), "lr must be"),
        (dict(seed=-1), "seed must be"),
        (dict(lr=float("nan")), "lr must be"),
        (dict(precision="fp16"), "unknown precision"),
        (dict(batch_size=0), "batch size"),
        (dict(size=0), "size must be"),
        (dict(layer="block5_conv1", size=8), "size 8 px is too small for block5_conv1"),
        (dict(layer="features.28", size=8), "size 8 px is too small for features.28"),
        (dict(init=np.zeros((2, 32, 32, 3), np.float32)), "init holds 2 images for 1 filters"),
        (dict(init=np.zeros((1, 32, 32), np.float32)), "init must be"),
        (dict(init=np.zeros((32, 32, 3), np.float32), filters=[0, 1]), "init holds 1 images for 2 filters"),
        (dict(init=np.full((1, 32, 32, 3), np.nan, np.float32)), "NaN"),
        (dict(device="tpu"), "unknown device"),
    ],
)
def test_bad_input(vgg, kwargs, message):
    args = dict(layer="block1_conv2", filters=0, steps=2, size=32, progress=False)
    args.update(kwargs)
    with pytest.raises(FiltvizError, match=message.replace("(", r"\(")) as err:
        visualize_filters(vgg, args.pop("layer"), args.pop("filters"), **args)
    assert "\n" not in str(err.value)


def test_generic_model_too_small():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3))
    with pytest.raises(FiltvizError, match="size 4 px is too small for 3"):
        visualize_filters(model, "3", 0, steps=1, size=4, progress=False)
    r = visualize_filters(model, "3", [0, 1], steps=1, size=12, progress=False)
    assert r.losses.shape == (2, 2)


class _FlagRecorder(torch.nn.Module):
    """A one-conv model that records cuDNN's TF32 switch at every forward."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.seen: list[bool] = []

    def forward(self, x):
        self.seen.append(torch.backends.cudnn.allow_tf32)
        return self.conv(x)


@pytest.mark.parametrize("precision, expected", [("fp32", False), ("tf32", True)])
def test_fp32_forbids_tf32_convs_for_the_call_only(precision, expected):
    model = _FlagRecorder()
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = not expected
    try:
        visualize_filters(model, "conv", [0, 1], steps=2, size=8, precision=precision, device="cpu", progress=False)
        assert model.seen and set(model.seen) == {expected}
        assert torch.backends.cudnn.allow_tf32 is (not expected)  # restored
    finally:
        torch.backends.cudnn.allow_tf32 = saved
