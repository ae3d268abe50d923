"""scripts/benchmark.py on a tiny job: the methods it times compute the same thing, its figures are
consistent, bench.json has its schema; plus the GPU path's no-host-sync rule, checked on CPU."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench_mod():
    spec = importlib.util.spec_from_file_location("filtviz_benchmark", ROOT / "scripts" / "benchmark.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def tiny(bench_mod, tmp_path_factory):
    """block1_conv2, 3 filters, 32 px, 4 steps, 2 repeats; TF, torch one/batched/bf16/channels_last (+ Lucent
    if installed). One-at-a-time methods time 2 of the 3 filters, to exercise the scaling."""
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp("bench")
    methods = "tf_eager,tf_compiled,torch_one,torch_fp32,torch_fp32_nchw,torch_fp32_cl,torch_bf16,lucent"
    bench = bench_mod.main(["--layer", "block1_conv2", "--filters", "3", "--size", "32", "--steps", "4",
                            "--repeats", "2", "--baseline-filters", "2", "--methods", methods, "--out", str(out)])
    return bench, json.loads((out / "bench.json").read_text())


def test_bench_json_schema(tiny):
    bench, on_disk = tiny
    for key in ("schema", "created", "command", "job", "device", "versions", "threads", "env", "load_average", "repeats",
                "baseline_filters", "flops_per_job", "methods", "ratios", "skipped", "targets"):
        assert key in on_disk, key
    assert on_disk["job"]["n_filters"] == 3 and on_disk["job"]["image_steps"] == 12
    assert on_disk["job"]["filters"] == {"block1_conv2": "0-2"}
    assert on_disk["device"]["type"] == "cpu" and on_disk["device"]["name"]
    assert on_disk["threads"]["torch_threads"] == torch.get_num_threads()
    assert on_disk["threads"]["tf_intra_op_threads"] == on_disk["threads"]["torch_threads"]
    ran = set(on_disk["methods"])
    assert {"tf_eager", "tf_compiled", "torch_one", "torch_fp32", "torch_fp32_cl"} <= ran
    assert ran | set(on_disk["skipped"]) == set(bench["methods"]) | set(bench["skipped"])
    assert len(on_disk["targets"]) == 4  # the four CPU targets


def test_methods_compute_the_same_losses(tiny):
    """Same init, same objective: TF and torch (fp32) final losses agree to float rounding on block1."""
    ms = tiny[1]["methods"]
    for name in ("tf_eager", "tf_compiled", "torch_one", "torch_fp32_nchw", "torch_fp32_cl"):
        diff = ms[name]["final_loss_rel_diff_vs_torch_fp32"]
        assert diff["filters"] == (2 if ms[name]["one_at_a_time"] else 3)
        assert diff["max"] < 1e-5, (name, diff)
    if "torch_bf16" in ms:  # bf16 convs: visibly different, still close
        assert 1e-7 < ms["torch_bf16"]["final_loss_rel_diff_vs_torch_fp32"]["max"] < 0.05
    if "lucent" in ms:  # Adam, whole-map objective: a different ascent, but it must ascend
        assert ms["lucent"]["final_loss_mean"] > 0


def test_figures_are_consistent(tiny, bench_mod):
    bench = tiny[1]
    job = bench["job"]
    for name, m in bench["methods"].items():
        s = m["seconds"]
        assert 0 < s["min"] <= s["median"] <= s["max"] and len(m["seconds_timed"]) == 2
        assert m["image_steps_per_s"]["median"] == pytest.approx(job["image_steps"] / s["median"])
        assert m["tflops"] == pytest.approx(bench["flops_per_job"] / s["median"] / 1e12)
        # one-at-a-time methods timed 2 of 3 filters of one layer: scaled by exactly 3/2
        scale = 1.5 if m["one_at_a_time"] else 1.0
        assert s["median"] == pytest.approx(scale * float(np.median(m["seconds_timed"])))
        assert m["scaled_to_job"] == m["one_at_a_time"]
    r = bench["ratios"]
    assert r["torch_fp32"]["tf_compiled"] == pytest.approx(
        bench["methods"]["tf_compiled"]["seconds"]["median"] / bench["methods"]["torch_fp32"]["seconds"]["median"])
    assert r["torch_fp32"]["tf_compiled"] * r["tf_compiled"]["torch_fp32"] == pytest.approx(1.0)
    targets = {(t["method"], t["baseline"]): t for t in bench["targets"]}
    t = targets[("torch_fp32", "tf_eager")]
    assert t["ratio"] == pytest.approx(r["torch_fp32"]["tf_eager"]) and t["met"] == (t["ratio"] >= 2.5)
    table = bench_mod.markdown(bench)
    assert table.count("\n| ") == len(bench["methods"]) + 1 and "x tf_compiled" in table


def test_flops_match_vgg16_arithmetic(bench_mod):
    from torch_filtviz import load_vgg16

    model = load_vgg16("random")
    # block1_conv2 at 32 px: conv1 3->64 and conv2 64->64, 3x3, on 32x32, 2 FLOPs per multiply-add
    assert bench_mod.conv_flops(model, "block1_conv2", 32) == 2 * 9 * 32 * 32 * (3 * 64 + 64 * 64)
    job = bench_mod.make_job("cpu", ["block1_conv2"], "2", 32, 5)
    assert bench_mod.job_flops(model, job) == 2 * (2 * 5 + 1) * bench_mod.conv_flops(model, "block1_conv2", 32)


def test_presets_and_peaks(bench_mod):
    b5 = bench_mod.make_job("block5")
    assert b5.filters == {"block5_conv3": list(range(512))} and (b5.size, b5.steps) == (128, 100)
    assert b5.inits["block5_conv3"].shape == (512, 128, 128, 3)
    atlas = bench_mod.JOBS["atlas"]
    assert len(atlas["layers"]) == 13 and atlas["filters"] is None
    assert sum(bench_mod.vgg_spec.FILTER_COUNTS[name] for name in atlas["layers"]) == 4224
    assert bench_mod.make_job("cpu", filters="0-3,9").filters == {"block3_conv1": [0, 1, 2, 3, 9]}
    assert bench_mod.gpu_peak("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4)
    assert bench_mod.gpu_peak("NVIDIA H100 PCIe", "bf16") == pytest.approx(756.0)
    assert bench_mod.gpu_peak("NVIDIA H200", "tf32") == pytest.approx(494.7)
    assert bench_mod.gpu_peak("Some CPU", "bf16") is None
    with pytest.raises(ValueError, match="unknown job"):
        bench_mod.make_job("nope")
    with pytest.raises(ValueError, match="unknown conv layer"):
        bench_mod.make_job("cpu", ["block9_conv1"])


def test_ascent_loop_never_syncs_with_the_host_per_step(monkeypatch):
    """The CUDA path reads results back once per chunk, never per step: the number of device->host
    reads (.cpu/.item/.tolist/bool) must not grow with the number of steps."""
    from torch_filtviz import ascent, load_vgg16

    model = load_vgg16("random")
    counts = {"n": 0}
    for name in ("cpu", "item", "tolist", "__bool__", "__float__", "__int__", "numpy"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            counts["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)

    def reads(steps):
        counts["n"] = 0
        ascent.visualize_filters(model, "block1_conv1", [0, 1], steps=steps, size=32, snapshots=[steps],
                                 progress=False, device="cpu")
        return counts["n"]

    assert 0 < reads(2) == reads(9)  # counted at all (the end of the chunk reads back), and not per step
