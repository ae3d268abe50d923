"""The speed benchmark (filtviz_bench.speed, `make bench`) on a tiny job: the methods it times compute the
same thing, its figures are consistent, bench.json has its schema; the range rule for speed targets; the
entry points; plus the GPU path's no-host-sync rule, checked on CPU."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from filtviz_bench import flops, jobs, speed, timing
from filtviz_core.vgg16 import FILTER_COUNTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """block1_conv2, 3 filters, 32 px, 4 steps, 2 repeats; TF, torch one/batched/bf16/channels_last (+ Lucent
    if installed). One-at-a-time methods time 2 of the 3 filters, to exercise the scaling."""
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp("bench")
    methods = "tf_eager,tf_compiled,torch_one,torch_fp32,torch_fp32_nchw,torch_fp32_cl,torch_bf16,lucent"
    # A subprocess, as `make bench` runs it: the benchmark sets TensorFlow's thread pools, which only a
    # process that has not started TensorFlow yet can do (in this suite, earlier tests have).
    args = ["--layer", "block1_conv2", "--filters", "3", "--size", "32", "--steps", "4", "--repeats", "2"]
    args += ["--baseline-filters", "2", "--methods", methods, "--out", str(out)]
    done = subprocess.run([sys.executable, "-m", "filtviz_bench", "speed", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return methods.split(","), json.loads((out / "bench.json").read_text())


def test_bench_json_schema(tiny):
    requested, on_disk = tiny
    for key in (
        "schema",
        "created",
        "command",
        "job",
        "device",
        "versions",
        "threads",
        "env",
        "load_average",
        "repeats",
        "baseline_filters",
        "flops_per_job",
        "methods",
        "ratios",
        "skipped",
        "targets",
    ):
        assert key in on_disk, key
    assert on_disk["job"]["n_filters"] == 3 and on_disk["job"]["image_steps"] == 12
    assert on_disk["job"]["filters"] == {"block1_conv2": "0-2"}
    assert on_disk["device"]["type"] == "cpu" and on_disk["device"]["name"]
    assert on_disk["threads"]["torch_threads"] == torch.get_num_threads()
    assert on_disk["threads"]["tf_intra_op_threads"] == on_disk["threads"]["torch_threads"]
    ran = set(on_disk["methods"])
    assert {"tf_eager", "tf_compiled", "torch_one", "torch_fp32", "torch_fp32_cl"} <= ran
    assert ran | set(on_disk["skipped"]) == set(requested) and not ran & set(on_disk["skipped"])
    assert len(on_disk["targets"]) == 4  # the four CPU speed targets


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


def test_figures_are_consistent(tiny):
    bench = tiny[1]
    job = bench["job"]
    for _name, m in bench["methods"].items():
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
        bench["methods"]["tf_compiled"]["seconds"]["median"] / bench["methods"]["torch_fp32"]["seconds"]["median"]
    )
    assert r["torch_fp32"]["tf_compiled"] * r["tf_compiled"]["torch_fp32"] == pytest.approx(1.0)
    targets = {(t["method"], t["baseline"]): t for t in bench["targets"]}
    t = targets[("torch_fp32", "tf_eager")]
    assert t["ratio"] == pytest.approx(r["torch_fp32"]["tf_eager"])
    # the range rule: the slowest fp32 repeat against the fastest eager repeat, both for the whole job
    worst = (
        min(bench["methods"]["tf_eager"]["seconds_timed"]) * 1.5 / max(bench["methods"]["torch_fp32"]["seconds_timed"])
    )
    assert t["ratio_range"][0] == pytest.approx(worst) and t["met"] == (worst >= 2.5)
    assert t["verdict"] == (
        "met" if worst >= 2.5 else "not met (ranges overlap)" if t["ratio_range"][1] >= 2.5 else "not met"
    )
    table = speed.markdown(bench)
    assert table.count("\n| ") == len(bench["methods"]) + 1 and "x tf_compiled" in table


def test_flops_match_vgg16_arithmetic():
    from torch_filtviz import load_vgg16

    model = load_vgg16("random")
    # block1_conv2 at 32 px: conv1 3->64 and conv2 64->64, 3x3, on 32x32, 2 FLOPs per multiply-add
    assert flops.conv_flops(model, "block1_conv2", 32) == 2 * 9 * 32 * 32 * (3 * 64 + 64 * 64)
    job = jobs.make_job("cpu", ["block1_conv2"], "2", 32, 5)
    assert flops.job_flops(model, job) == 2 * (2 * 5 + 1) * flops.conv_flops(model, "block1_conv2", 32)


def test_presets_and_peaks():
    b5 = jobs.make_job("block5")
    assert b5.filters == {"block5_conv3": list(range(512))} and (b5.size, b5.steps) == (128, 100)
    assert b5.inits["block5_conv3"].shape == (512, 128, 128, 3)
    atlas = jobs.JOBS["atlas"]
    assert len(atlas["layers"]) == 13 and atlas["filters"] is None
    assert sum(FILTER_COUNTS[name] for name in atlas["layers"]) == 4224
    assert jobs.make_job("cpu", filters="0-3,9").filters == {"block3_conv1": [0, 1, 2, 3, 9]}
    assert flops.gpu_peak("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4)
    assert flops.gpu_peak("NVIDIA H100 PCIe", "bf16") == pytest.approx(756.0)
    assert flops.gpu_peak("NVIDIA H200", "tf32") == pytest.approx(494.7)
    assert flops.gpu_peak("Some CPU", "bf16") is None
    with pytest.raises(ValueError, match="unknown job"):
        jobs.make_job("nope")
    with pytest.raises(ValueError, match="unknown conv layer"):
        jobs.make_job("cpu", ["block9_conv1"])


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
        ascent.visualize_filters(
            model, "block1_conv1", [0, 1], steps=steps, size=32, snapshots=[steps], progress=False, device="cpu"
        )
        return counts["n"]

    assert 0 < reads(2) == reads(9)  # counted at all (the end of the chunk reads back), and not per step


def test_speed_verdict_needs_the_ranges_apart():
    # method 1.0-1.2 s vs baseline 2.3-2.6 s: even the slowest pairing is 2.3/1.2 = 1.92x
    v = timing.speed_verdict([1.0, 1.1, 1.2], [2.3, 2.4, 2.6], 1.9)
    assert v["verdict"] == "met" and v["met"] and v["ratio"] == pytest.approx(2.4 / 1.1)
    assert v["ratio_range"] == pytest.approx([2.3 / 1.2, 2.6 / 1.0])
    # same medians, wider spread: the ranges overlap at 2x, so a 2.18x median ratio does not count
    v = timing.speed_verdict([1.0, 1.1, 1.4], [2.3, 2.4, 2.6], 2.0)
    assert v["ratio"] > 2.0 and v["verdict"] == "not met (ranges overlap)" and v["met"] is False
    # the fastest pairing is below the target: plainly not met
    assert timing.speed_verdict([1.0, 1.1, 1.2], [2.3, 2.4, 2.6], 3.0)["verdict"] == "not met"


def _docs_target_lines() -> list[str]:
    """The target lines of the docs' Benchmarks page (the CPU run's verdicts), as the built site shows them: the
    page's markers expanded by the site's own hook (docs/hooks.py), without building the site."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    text = hooks.expand((ROOT / "docs" / "benchmarks.md").read_text())
    section = text[text.index("## The CPU run") : text.index("## GPU")]
    return [line for line in section.splitlines() if line.startswith("- target ")]


def test_committed_cpu_bench_verdicts(capsys):
    """The docs' Benchmarks verdicts are exactly those recomputed from the committed run under the range
    rule; a "met" there has a slowest-vs-fastest ratio at or above the target."""
    bench = speed.main(["--report", str(ROOT / "benchmarks" / "cpu" / "bench.json")])
    out = capsys.readouterr().out
    printed = [line for line in out.splitlines() if line.startswith("- target ")]
    assert len(printed) == 4 and printed == _docs_target_lines()
    for t in bench["targets"]:
        assert (t["verdict"] == "met") == (t["ratio_range"][0] >= t["needed"]), t


def test_entry_points(tmp_path):
    """python -m filtviz_bench speed|quality and the scripts/ wrapper; bad input is one line and exit 2."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # what an installed package gives the wrapper

    def run(*a):
        return subprocess.run([sys.executable, *a], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)

    got = run("scripts/benchmark.py", "--report", "benchmarks/cpu/bench.json")
    assert got.returncode == 0, got.stderr
    assert [line for line in got.stdout.splitlines() if line.startswith("- target ")] == _docs_target_lines()
    got = run("-m", "filtviz_bench", "speed", "--report", str(tmp_path / "missing.json"))
    assert got.returncode == 2 and got.stderr.count("\n") == 1 and "cannot read" in got.stderr
    got = run("-m", "filtviz_bench", "nope")
    assert got.returncode == 2 and "valid: speed, quality" in got.stderr
