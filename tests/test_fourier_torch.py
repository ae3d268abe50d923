"""The fourier method in torch_filtviz: its pieces against the numpy reference, the API, batch independence,
and other networks than VGG16 (ResNet-18, GoogLeNet)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

import torch_filtviz as fv
from filtviz_core import fourier, methods, transforms
from filtviz_core.errors import FiltvizError
from filtviz_core.methods import FourierOptions, fourier_options
from torch_filtviz.optimizers import Adam
from torch_filtviz.parameterizations import FourierImage
from torch_filtviz.transforms import resample

FAST = dict(size=32, progress=False, device="cpu")


@pytest.fixture(scope="module")
def vgg(weights_file):
    return fv.load_vgg16(weights_file.path)


def test_picture_matches_the_numpy_reference():
    spectra = np.random.default_rng(0).normal(0, 0.5, (2, *fourier.spectrum_shape(30, 21))).astype(np.float32)
    for options in (FourierOptions(), fourier_options({"decorrelate": False, "decay": 0.5, "divisor": 3.0})):
        got = FourierImage(30, 21, options, torch.device("cpu"))(torch.from_numpy(spectra))
        assert got.shape == (2, 30, 21, 3) and got.is_contiguous()
        ref = fourier.spectrum_to_image(
            spectra, 30, 21, decay=options.decay, divisor=options.divisor, decorrelate=options.decorrelate
        )
        assert np.abs(got.numpy() - ref).max() <= 1e-6 * np.ptp(ref) + 2e-5  # + float32 resolution near 255


def test_transform_matches_the_numpy_reference():
    o = fourier_options({"rotate": 45.0, "scale": (0.7, 1.4)})
    images = np.random.default_rng(1).uniform(0, 255, (3, 20, 24, 3)).astype(np.float32)
    out_h, out_w = transforms.output_size(20, 24, o)
    mats = transforms.affines(2, [0, 1, 2], [4], 20, 24, o)[0]
    got = resample(torch.from_numpy(images), torch.from_numpy(mats), out_h, out_w, o.pad_value).numpy()
    ref = np.stack([transforms.resample(images[i], mats[i], out_h, out_w, o.pad_value) for i in range(3)])
    assert got.shape == (3, out_h, out_w, 3)
    assert np.abs(got - ref).max() <= 1e-5 * 255
    assert np.any(got == o.pad_value) and np.any(np.abs(got - o.pad_value) > 50)  # border and picture both seen


def test_adam_is_the_papers_formula_ascending():
    """Same numbers as torch.optim.Adam(maximize=True) (which orders the operations differently), to float rounding."""
    torch.manual_seed(0)
    p = torch.randn(50)
    q = p.clone().requires_grad_(True)
    ours = Adam(p, lr=0.05)
    theirs = torch.optim.Adam([q], lr=0.05, maximize=True)
    for _ in range(20):
        g = torch.randn(50)
        ours.ascend(p, g)
        q.grad = g.clone()
        theirs.step()
    torch.testing.assert_close(p, q.detach(), rtol=1e-5, atol=1e-6)
    assert not torch.equal(p, torch.zeros(50))


def test_visualize_filters_fourier_defaults_and_record(vgg):
    res = fv.visualize_filters(vgg, "block2_conv1", [3, 7], method="fourier", steps=6, snapshots=[0, 3, 6], **FAST)
    assert res.method == "fourier" and res.raw.shape == (2, 32, 32, 3) and res.raw.dtype == np.float32
    assert res.losses.shape == (2, 7) and sorted(res.snapshots) == [0, 3, 6]
    assert res.raw.min() > 0 and res.raw.max() < 255
    np.testing.assert_array_equal(res.images, fourier.to_uint8(res.raw))  # the picture as it is, no stretch
    np.testing.assert_array_equal(res.snapshots[6], res.raw)
    start = fourier.spectrum_to_image(fourier.initial_spectra([3, 7], 32, 32), 32, 32)
    assert np.abs(res.snapshots[0] - start).max() < 1e-4
    assert np.all(res.losses[:, -1] > res.losses[:, 0]) and not res.dead.any()
    params = res.params
    assert params["method"] == "fourier" and params["lr"] == methods.FOURIER_LR and params["seen_size"] == [44, 44]
    assert {k: params[k] for k in methods.OPTION_NAMES} == FourierOptions().as_params()
    record = res.run_record()
    assert record["method"] == "fourier" and record["params"]["scale"] == [0.9, 1.1]
    shown = fv.plot_iterations(res).axes[0].images[0].get_array()  # the grey start, not contrast-stretched
    np.testing.assert_array_equal(np.asarray(shown), fourier.to_uint8(res.snapshots[0][0]))
    default = fv.visualize_filters(vgg, "block1_conv1", 0, method="fourier", steps=0, **FAST)
    assert default.losses.shape == (1, 1)
    assert fv.visualize_filters(vgg, "block1_conv1", 0, steps=0, **FAST).run_record()["method"] == "pixel"


def test_fourier_default_steps_and_lr(vgg, monkeypatch):
    seen = {}
    import dataclasses

    import torch_filtviz.job as jobs

    real = jobs.run_chunk

    def spy(job, *args):  # records what the loop was asked for, then runs 0 steps of it
        seen.update(steps=job.setting.steps, lr=job.setting.lr)
        return real(dataclasses.replace(job, setting=dataclasses.replace(job.setting, steps=0), snaps=()), *args)

    monkeypatch.setattr(jobs, "run_chunk", spy)
    res = fv.visualize_filters(vgg, "block1_conv1", 0, method="fourier", snapshots=[], **FAST)
    assert seen == {"steps": methods.FOURIER_STEPS, "lr": methods.FOURIER_LR}
    assert res.params["steps"] == methods.FOURIER_STEPS


def test_a_filters_result_does_not_depend_on_its_batch(vgg):
    """Filter 5 alone and among three others (another batch size, other neighbours, chunks of 2):
    the same draws, the same start; losses within 1e-5 (the conv kernels round differently per batch size)."""
    kw = dict(method="fourier", steps=12, **FAST)
    alone = fv.visualize_filters(vgg, "block1_conv2", [5], **kw)
    batched = fv.visualize_filters(vgg, "block1_conv2", [9, 5, 2, 40], **kw)
    chunked = fv.visualize_filters(vgg, "block1_conv2", [9, 5, 2, 40], batch_size=2, **kw)
    for other in (batched, chunked):
        rel = np.abs(other.losses[1] - alone.losses[0]) / np.abs(alone.losses[0]).max()
        assert rel.max() <= 1e-5
        assert np.abs(other.raw[1] - alone.raw[0]).max() < 0.05
    assert np.abs(batched.losses[0] - alone.losses[0]).max() > 1e-3  # another filter really differs


def test_transforms_can_be_switched_off(vgg):
    res = fv.visualize_filters(
        vgg, "block1_conv2", [1], method="fourier", steps=3, method_options={"transforms": False}, **FAST
    )
    assert res.params["seen_size"] == [32, 32] and res.params["transforms"] is False
    from torch_filtviz.objectives import filter_objective

    with torch.no_grad():
        value = filter_objective(vgg, "block1_conv2", [1], torch.from_numpy(res.raw).permute(0, 3, 1, 2))
    assert float(value) == pytest.approx(res.losses[0, -1], rel=1e-5)  # the network saw the picture itself


def test_bf16_runs_and_stays_close(vgg):
    kw = dict(method="fourier", steps=4, **FAST)
    fp32 = fv.visualize_filters(vgg, "block1_conv2", [0, 1], **kw)
    bf16 = fv.visualize_filters(vgg, "block1_conv2", [0, 1], precision="bf16", **kw)
    assert bf16.params["precision"] == "bf16" and bf16.raw.dtype == np.float32
    assert np.abs(bf16.losses - fp32.losses).max() <= 0.05 * np.abs(fp32.losses).max()


def test_fourier_refuses_pixel_options_and_bad_sizes(vgg):
    with pytest.raises(FiltvizError, match="init applies to the pixel method"):
        fv.visualize_filters(vgg, "block1_conv1", 0, method="fourier", init=np.zeros((1, 32, 32, 3)), **FAST)
    with pytest.raises(FiltvizError, match="clip applies to the pixel method"):
        fv.visualize_filters(vgg, "block1_conv1", 0, method="fourier", clip=True, **FAST)
    with pytest.raises(FiltvizError, match="unknown fourier option 'zoom'"):
        fv.visualize_filters(vgg, "block1_conv1", 0, method="fourier", method_options={"zoom": 2}, **FAST)
    with pytest.raises(FiltvizError, match="unknown method"):
        fv.visualize_filters(vgg, "block1_conv1", 0, method="lucid", **FAST)
    with pytest.raises(FiltvizError, match=r"size 16 px shows the network 12 px .* too small for block5_conv1"):
        fv.visualize_filters(
            vgg,
            "block5_conv1",
            0,
            method="fourier",
            size=16,
            method_options={"pad": 0, "jitter": 2, "jitter2": 2},
            progress=False,
        )


def _random(name: str) -> fv.PixelModel:
    if name == "resnet18":
        return fv.load_model("resnet18", "random")  # as the command line loads it
    with torch.random.fork_rng():  # GoogLeNet's own init takes seconds; PyTorch's default init is enough here
        torch.manual_seed(0)
        net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    return fv.wrap_model(net, "imagenet", name=name)


@pytest.mark.parametrize("name,layer", [("resnet18", "layer4.1.conv2"), ("googlenet", "inception4c.branch2.1.conv")])
def test_other_networks(name, layer):
    """The same target as the pixel method (ResNet: the second call of a shared ReLU; GoogLeNet: a
    functional F.relu) and a working gradient path: without transforms every filter's objective rises.
    (With transforms, a randomly initialised network at 48 px responds to the grey border as much as to
    the picture, so its loss history need not rise within a few steps; the run must still work.)"""
    model = _random(name)
    kw = dict(method="fourier", steps=8, size=48, progress=False, device="cpu")
    res = fv.visualize_filters(model, layer, [0, 1], **kw)
    pixel = fv.visualize_filters(model, layer, [0, 1], steps=0, size=48, progress=False, device="cpu")
    assert res.target == pixel.target and res.model == pixel.model
    assert res.raw.shape == (2, 48, 48, 3) and not res.dead.any() and np.all(np.isfinite(res.losses))
    bare = fv.visualize_filters(
        model,
        layer,
        [0, 1],
        method_options={"transforms": False},
        **{k: v for k, v in kw.items() if k != "method"},
        method="fourier",
    )
    assert np.all(bare.losses[:, -1] > bare.losses[:, 0])
