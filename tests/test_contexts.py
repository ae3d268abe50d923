"""No surprises on any device or in any context: grad modes, precision APIs, the caller's model handed
back as it came, memory-sized chunks, allocation failures, and probe errors named for what they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import torch_filtviz as fv
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError
from torch_filtviz import job as jobs
from torch_filtviz import placement
from torch_filtviz.hooks import StopForward

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(steps=3, size=16, progress=False, device="cpu")


class Small(nn.Module):
    """conv -> BN -> ReLU -> conv -> Dropout: BN and Dropout behave differently in training mode."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.conv2(self.relu(self.bn(self.conv(x / 255)))))


def test_inside_no_grad_and_inference_mode():
    model = Small().eval()
    ref = fv.visualize_filters(model, "conv", [0, 1], **FAST)
    with torch.no_grad():
        quiet = fv.visualize_filters(model, "conv", [0, 1], **FAST)
    with torch.inference_mode():
        inference = fv.visualize_filters(model, "conv", [0, 1], **FAST)
    np.testing.assert_array_equal(quiet.losses, ref.losses)
    np.testing.assert_array_equal(inference.raw, ref.raw)
    assert np.all(np.diff(ref.losses, axis=1) > 0)  # it really climbed


def test_model_handed_back_in_its_modes_and_flags():
    model = Small().train()
    model.bn.eval()  # mixed modes must come back exactly
    model.conv2.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fv.visualize_filters(model, "conv2", [0], **FAST)
    assert model.training and model.drop.training and not model.bn.training
    assert model.conv.weight.requires_grad and not model.conv2.weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics untouched (it ran in eval)


def test_model_moved_for_the_call_goes_back(monkeypatch):
    model = Small()
    moves = []
    real_to = nn.Module.to

    def recording_to(self, *args, **kwargs):
        moves.append(torch.device(args[0]) if args else kwargs.get("device"))
        return self  # pretend: the tensors stay where they are

    with placement.placed(model, torch.device("cpu")):
        pass
    assert moves == []  # already there: not touched
    monkeypatch.setattr(nn.Module, "to", recording_to)
    with placement.placed(model, torch.device("cuda")):
        assert moves == [torch.device("cuda")]
    assert moves == [torch.device("cuda"), torch.device("cpu")]
    monkeypatch.setattr(nn.Module, "to", real_to)


def test_no_float64_tensor_on_the_device(monkeypatch):
    """MPS has no float64: results are widened on the host only (the old code called .double() on the device)."""
    real_double, real_to = torch.Tensor.double, torch.Tensor.to

    def double(self, *a, **k):
        raise AssertionError("float64 on the device")

    def to(self, *a, **k):
        if torch.float64 in a or k.get("dtype") == torch.float64:
            raise AssertionError("float64 on the device")
        return real_to(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "double", double)
    monkeypatch.setattr(torch.Tensor, "to", to)
    res = fv.visualize_filters(Small(), "conv", [0, 1], **FAST)
    assert res.losses.dtype == np.float64
    monkeypatch.setattr(torch.Tensor, "double", real_double)


def test_mps_gets_no_cuda_calls(monkeypatch):
    def cuda_only(*a, **k):
        raise AssertionError("a CUDA call for an MPS device")

    monkeypatch.setattr(torch.cuda, "empty_cache", cuda_only)
    monkeypatch.setattr(torch.cuda, "mem_get_info", cuda_only)
    emptied = []
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: emptied.append(1), raising=False)
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 8 << 30, raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 6 << 30, raising=False)
    mps = torch.device("mps")
    placement.release_cache(mps)
    assert emptied == [1]
    assert placement.free_memory(mps) == 2 << 30
    assert placement.chunk_size(mps, 1000, 10 << 20) == int((2 << 30) * placement.MEMORY_SHARE // (10 << 20))


def test_chunks_follow_free_memory(monkeypatch):
    monkeypatch.setattr(placement, "free_memory", lambda device: 1 << 40)
    assert fv.visualize_filters(Small(), "conv2", "0-3", **FAST).params["batch_size"] == 4
    monkeypatch.setattr(placement, "free_memory", lambda device: 40_000)
    res = fv.visualize_filters(Small(), "conv2", "0-3", **FAST)
    assert 1 <= res.params["batch_size"] < 4  # 20 kB of planned memory does not hold 4 images' activations
    whole = fv.visualize_filters(Small(), "conv2", "0-3", batch_size=4, **FAST)
    np.testing.assert_allclose(res.losses, whole.losses, rtol=1e-5)


@pytest.mark.parametrize(
    "message",
    [
        "cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
        "MPS backend out of memory (x)",
        "CUDA out of memory. Tried to allocate 2.00 GiB",
    ],
)
def test_allocation_failures_halve_the_chunk(monkeypatch, message):
    real = jobs.run_chunk
    sizes = []

    def flaky(job, cap, keys, rows, objective, pbar):
        sizes.append(len(keys))
        if len(keys) > 1:
            raise RuntimeError(message)
        return real(job, cap, keys, rows, objective, pbar)

    monkeypatch.setattr(jobs, "run_chunk", flaky)
    res = fv.visualize_filters(Small(), "conv", "0-1", batch_size=2, **FAST)
    assert sizes == [2, 1, 1] and res.params["batch_size"] == 1
    monkeypatch.setattr(jobs, "run_chunk", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("other")))
    with pytest.raises(RuntimeError, match="other"):  # any other error is not retried
        fv.visualize_filters(Small(), "conv", "0-1", batch_size=2, **FAST)


class Swallower(nn.Module):
    """A model whose forward catches Exception: it must not swallow the early stop."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.tail = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        try:
            y = self.conv(x)
        except Exception:  # noqa: BLE001
            return torch.zeros(1)
        return self.tail(y)


def test_stop_is_not_swallowed_by_except_exception():
    assert issubclass(StopForward, BaseException) and not issubclass(StopForward, Exception)
    model = Swallower()
    res = fv.visualize_filters(model, "conv", [0, 1], **FAST)
    assert res.losses.shape == (2, 4) and np.all(np.diff(res.losses, axis=1) > 0)


def test_probe_errors_are_named_for_what_they_are():
    class Hidden(nn.Module):  # a 1-channel model whose first convolution is not a module: the count is not read
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(2, 1, 3, 3))
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(torch.nn.functional.conv2d(x, self.weight))

    with pytest.raises(FiltvizError, match=r"does not take 3-channel images .*in_channels="):
        fv.visualize_filters(Hidden(), "act", 0, **FAST)
    grey = fv.wrap_model(Hidden(), in_channels=1, preprocess="none")
    assert fv.visualize_filters(grey, "act", 0, **FAST).images.shape[-1] == 1

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)

        def forward(self, x):
            raise RuntimeError("CUDA error: device-side assert triggered")

    with pytest.raises(FiltvizRuntimeError, match=r"device failed.*device-side assert"):
        fv.visualize_filters(Broken(), "conv", 0, **FAST)


def test_too_small_only_when_the_size_is_the_cause():
    import torchvision

    net = fv.wrap_model(torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False))
    with pytest.raises(
        FiltvizError, match=r"size 8 px is too small for inception5b.branch1.conv: it needs at least (\d+) px"
    ) as err:
        fv.visualize_filters(net, "inception5b.branch1.conv", 0, steps=0, size=8, progress=False)
    needed = int(err.value.args[0].rsplit(" ", 2)[-2])
    fv.visualize_filters(net, "inception5b.branch1.conv", 0, steps=0, size=needed, progress=False)  # works
    with pytest.raises(FiltvizError, match="too small"):
        fv.visualize_filters(net, "inception5b.branch1.conv", 0, steps=0, size=needed - 1, progress=False)


def test_a_bf16_model_runs_in_its_dtype():
    model = Small().to(torch.bfloat16)
    res = fv.visualize_filters(model, "conv", [0, 1], **FAST)
    assert res.raw.dtype == np.float32 and not res.dead.any() and np.all(np.diff(res.losses, axis=1) > 0)
    assert next(model.parameters()).dtype == torch.bfloat16


class Recorder(nn.Module):
    """Records, at every forward, the fp32 math in force for convolutions (what the call really ran with)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.seen: list[tuple[str, str]] = []

    def forward(self, x):
        from torch_filtviz.precision import effective

        self.seen.append((effective("cuda", "conv"), effective("mkldnn", "conv")))
        return self.conv(x)


PRECISION_SCRIPT = """
import torch, torch_filtviz as fv, json, sys
sys.path.insert(0, {tests!r})
from test_contexts import Recorder
{setup}
def state():
    from torch_filtviz import precision as P
    return {{"api": P.api_in_use(), "new": [torch._C._get_fp32_precision_getter(*k) for k in P.NEW_API_KEYS],
             "legacy": [torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32]
                       if P.legacy_readable() else None}}
before = state()
out = {{}}
for precision in ("fp32", "tf32"):
    m = Recorder()
    fv.visualize_filters(m, "conv", [0], steps=1, size=8, precision=precision, device="cpu", progress=False)
    out[precision] = sorted(set(map(tuple, m.seen)))
    assert state() == before, (precision, state(), before)
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    "setup",
    [
        "",  # defaults
        "torch.backends.cudnn.allow_tf32 = False",  # the legacy API
        "torch.backends.cudnn.conv.fp32_precision = 'ieee'",  # the new API: reading allow_tf32 now raises
        "torch.backends.fp32_precision = 'tf32'",  # the new API, generic level
    ],
)
def test_precision_through_whichever_api_is_in_use(setup):
    import json

    code = PRECISION_SCRIPT.format(tests=str(ROOT / "tests"), setup=setup)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["fp32"] == [["ieee", "ieee"]]  # IEEE convolutions on cuDNN and oneDNN during an fp32 call
    assert seen["tf32"] == [["tf32", "ieee"]]  # TF32 is a cuDNN option; CPU convolutions stay IEEE


def test_channels_last_really_is_nhwc_and_matches_nchw():
    formats = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            formats.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
            return self.conv2(torch.relu(self.conv(x)))

    model = Spy()
    nchw = fv.visualize_filters(model, "conv2", [0, 1], channels_last=False, **FAST)
    assert not any(formats)
    formats.clear()
    nhwc = fv.visualize_filters(model, "conv2", [0, 1], channels_last=True, **FAST)
    assert formats and all(formats)
    assert nhwc.params["channels_last"] and not nchw.params["channels_last"]
    np.testing.assert_allclose(nhwc.losses, nchw.losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nhwc.raw, nchw.raw, rtol=0, atol=1e-3)
