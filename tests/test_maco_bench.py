"""The MACO benchmark's pieces: the Xplique and Horama runners (tiny runs; skipped with the reason when a
contender is missing), its comparison rule, the CPU preset and ``--crops`` on both command lines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from filtviz_bench import maco_bench, maco_runners
from filtviz_core.errors import FiltvizError
from filtviz_core.options import MacoOptions

LAYER, SIZE = "block1_conv2", 32


@pytest.fixture(scope="module")
def model(weights_file):
    import torch_filtviz as fv

    return fv.load_vgg16(weights_file.path)


def test_horama_runs_offline_on_its_spectrum_and_our_objective(model, monkeypatch):
    why = maco_runners.horama_available()
    if why:
        pytest.skip(why)
    horama_fv = maco_runners.horama_maco_module()

    def no_download(*args, **kwargs):
        raise AssertionError("horama tried to download its spectrum")

    monkeypatch.setattr(horama_fv, "download_url", no_download)
    render = maco_runners.horama_renderer(model, size=SIZE, crops=2, seed=0, device=torch.device("cpu"))
    got = render(LAYER, [3, 5], 2)
    assert got.images.shape == (2, SIZE, SIZE, 3) and got.images.dtype == np.uint8
    assert got.images.reshape(2, -1).std(1).min() > 5  # a picture, not a flat field
    assert not np.array_equal(got.images[0], got.images[1])  # each filter its own seeded phase
    again = render(LAYER, [3], 2)
    np.testing.assert_array_equal(again.images[0], got.images[0])  # seeded per filter, not per batch


def test_xplique_model_computes_the_pre_activation_our_objective_reads(model, weights_file):
    why = maco_runners.xplique_available()
    if why:
        pytest.skip(why)
    from torch_filtviz import filter_objective

    keras_model = maco_runners.xplique_model(weights_file.path, LAYER, SIZE)
    pictures = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    theirs = np.asarray(keras_model(pictures))  # (2, 32, 32, 64) NHWC, the whole map
    assert theirs.min() < 0  # pre-activation: the target's ReLU was dropped
    x = torch.from_numpy(pictures).permute(0, 3, 1, 2)
    for f in (3, 5):
        ours = filter_objective(model, LAYER, [f, f], x).detach().numpy()  # interior means (2 px border)
        np.testing.assert_allclose(theirs[:, 2:-2, 2:-2, f].mean((1, 2)), ours, rtol=1e-4, atol=1e-3)


def test_xplique_renderer_gives_a_picture_per_filter(weights_file):
    why = maco_runners.xplique_available()
    if why:
        pytest.skip(why)
    got = maco_runners.xplique_renderer(weights_file.path, size=SIZE, crops=2, seed=0)(LAYER, [3, 5], 2)
    assert got.images.shape == (2, SIZE, SIZE, 3) and got.images.dtype == np.uint8
    assert got.images.reshape(2, -1).std(1).min() > 5
    assert not np.array_equal(got.images[0], got.images[1])


def _scores(zs):
    return [{"layer": layer, "filter": f, "z": z} for (layer, f), z in zs.items()]


def test_share_at_least_counts_ties_and_missing_scores():
    a = _scores({("l", 0): 5.0, ("l", 1): 2.0, ("l", 2): None, ("l", 3): 1.0})
    b = _scores({("l", 0): 5.0, ("l", 1): 3.0, ("l", 2): 1.0, ("l", 3): None, ("l", 9): 0.0})
    assert maco_bench.share_at_least(a, b) == (0.5, 4)  # tie wins, 2 < 3 loses, None loses, beats None


def test_targets_say_met_only_at_75_percent():
    ours = _scores({("b3", i): float(i) for i in range(4)})
    anchor = _scores({("b3", i): (1.5 if i == 0 else float(i)) for i in range(4)})  # ours loses filter 0 only
    worse = _scores({("b3", i): 10.0 for i in range(4)})
    runs = {
        name: {"scores": s, "summary": {"median_z": 0.0}}
        for name, s in (("maco", ours), ("xplique", anchor), ("horama", worse), ("fourier", anchor))
    }
    t = {x["target"].split(" (")[0]: x for x in maco_bench.quality_targets(runs, ["b3"])}
    assert t["maco >= xplique"]["share"] == 0.75 and t["maco >= xplique"]["met"] is True
    assert t["maco >= horama"]["share"] == 0.0 and t["maco >= horama"]["met"] is False
    assert t["maco vs fourier"]["per_layer"]["b3"]["share"] == 0.75 and t["maco vs fourier"]["met"] is None


def test_bench_refuses_unknown_names_and_equalizes_passes():
    with pytest.raises(FiltvizError, match="unknown run or contender 'lucid'"):
        maco_bench.parse_args(["--contenders", "ours,lucid"], "p")
    args = maco_bench.parse_args(["--steps", "6", "--crops", "4"], "p")
    assert [maco_bench.run_steps(r, args) for r in ("maco", "xplique", "fourier", "lucent")] == [6, 6, 24, 24]


def test_reseed_run_is_our_maco_at_the_next_seed(model):
    """maco_reseed, the chance level of the same-method targets: our MACO exactly as --seed + 1 renders it,
    not the seed's own picture, and reported beside the anchors as "not a target"."""
    args = maco_bench.parse_args(["--quick", "--size", str(SIZE), "--steps", "2", "--crops", "2"], "p")
    cpu = torch.device("cpu")
    reseed = maco_bench.make_renderer("maco_reseed", args, model, cpu)(LAYER, [3], 2).images
    args.seed = 1
    next_seed = maco_bench.make_renderer("maco", args, model, cpu)(LAYER, [3], 2).images
    args.seed = 0
    own = maco_bench.make_renderer("maco", args, model, cpu)(LAYER, [3], 2).images
    np.testing.assert_array_equal(reseed, next_seed)
    assert np.abs(reseed.astype(np.int16) - own.astype(np.int16)).max() > 16
    scores = _scores({("b3", 0): 1.0, ("b3", 1): 2.0})
    runs = {n: {"scores": scores, "summary": {"median_z": 0.0}} for n in ("maco", "maco_reseed")}
    (t,) = maco_bench.quality_targets(runs, ["b3"])
    assert t["target"] == "maco vs maco_reseed (not a target: the same method, another seed: chance level)"
    assert t["share"] == 1.0 and t["met"] is None


def test_maco_options_reach_our_runs_only_and_crops_stay_with_crops(model):
    """--maco-option tunes our MACO runs (the picture is visualize_filters' with those options), is recorded,
    and leaves --crops the one way to set crops (it sets the anchors' too)."""
    import torch_filtviz as fv

    argv = ["--quick", "--size", str(SIZE), "--steps", "2", "--crops", "2", "--maco-option", "box=[0.3,0.25]"]
    args = maco_bench.parse_args(argv, "p")
    assert args.maco_options == {"box": [0.3, 0.25]}
    got = maco_bench.make_renderer("maco", args, model, torch.device("cpu"))(LAYER, [3], 2).images
    want = fv.visualize_filters(
        model,
        LAYER,
        [3],
        method="maco",
        steps=2,
        size=SIZE,
        seed=0,
        snapshots=None,
        method_options={"crops": 2, "box": (0.3, 0.25)},
    )
    np.testing.assert_array_equal(got, np.asarray(want.images, np.uint8))
    args.maco_options = {}
    default = maco_bench.make_renderer("maco", args, model, torch.device("cpu"))(LAYER, [3], 2).images
    assert np.abs(default.astype(np.int16) - got.astype(np.int16)).max() > 16
    with pytest.raises(FiltvizError, match="use --crops"):
        maco_bench.parse_args(["--maco-option", "crops=4"], "p")
    with pytest.raises(FiltvizError, match="--maco-option takes NAME=VALUE, got 'box'"):
        maco_bench.parse_args(["--maco-option", "box"], "p")


def test_cpu_preset_is_eight_crops_through_the_registry():
    from filtviz_core import methods

    assert MacoOptions.cpu_preset() == MacoOptions(crops=8)
    assert methods.resolve("maco", None, None, MacoOptions.cpu_preset())[2].crops == 8


def _cli(main, argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


def test_crops_on_the_torch_command_line(weights_file, tmp_path, capsys):
    from torch_filtviz.cli import main

    base = [
        "filters",
        LAYER,
        "--filters",
        "0-1",
        "--weights",
        str(weights_file.path),
        "--size",
        str(SIZE),
        "--steps",
        "2",
    ]
    code, err = _cli(main, [*base, "--method", "maco", "--crops", "2", "--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "a" / "run.json").read_text())["params"]["crops"] == 2
    code, err = _cli(main, [*base, "--method", "fourier", "--crops", "2", "--out", str(tmp_path / "b")], capsys)
    assert code == 2 and err.strip().endswith("--crops belongs to --method maco, not --method fourier")
    assert not (tmp_path / "b").exists()


def test_crops_on_the_tf_command_line(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from tf_reference.cli import main

    code, err = _cli(main, ["filters", LAYER, "--filters", "0", "--crops", "0", "--method", "maco"], capsys)
    assert code == 2 and "crops must be a whole number >= 1, got 0" in err and "Traceback" not in err
    code, err = _cli(main, ["filters", LAYER, "--filters", "0", "--crops", "3", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--crops belongs to --method maco, not --method pixel" in err


def test_readme_maco_rows_are_the_committed_runs():
    """The README's MACO table rows hold the numbers of benchmarks/maco/maco.json (VGG16) and
    benchmarks/maco/resnet50/maco.json (rerun a bench: update both)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    lines = (root / "README.md").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| network | maco (ours) |"))
    runs = ("maco", "xplique", "horama", "fourier", "lucent")
    reports = {
        p: json.loads((root / p).read_text())
        for p in ("benchmarks/maco/maco.json", "benchmarks/maco/resnet50/maco.json")
    }
    for row, (path, report) in enumerate(reports.items(), start=2):
        cells = [c.strip() for c in lines[at + row].strip("|").split("|")][1:]
        medians = [f"{report['runs'][r]['summary']['median_z']:.1f}" if r in report["runs"] else "–" for r in runs]
        v = report["speed"]["verdict"]
        assert cells[:5] == medians, path
        assert cells[5] == f"{v['ratio']:.2f}× ({v['ratio_range'][0]:.2f}–{v['ratio_range'][1]:.2f})", path
    text = " ".join(lines)

    def of(target):
        return f"{round(target['share'] * target['filters'])} of {target['filters']}"

    assert f"ResNet-50 ≥ Horama on {of(reports['benchmarks/maco/resnet50/maco.json']['targets'][0])}" in text
    seeds = json.loads((root / "benchmarks/maco/seeds/maco.json").read_text())["targets"]
    box = json.loads((root / "benchmarks/maco/box/maco.json").read_text())["targets"]
    assert [t["target"].split(" (")[0] for t in seeds] == ["maco >= xplique", "maco >= horama", "maco vs maco_reseed"]
    assert f"≥ itself at the next seed on {of(seeds[2])} (chance level), ≥ Xplique on {of(seeds[0])}" in text
    assert f"≥ Horama on {of(seeds[1])}, and on {of(box[0])} with Horama's crop size" in text


def test_another_model_runs_the_torch_contenders_and_names_what_it_skips(tmp_path, capsys):
    """``--model`` (the issue's second architecture): our MACO and Horama's on a non-VGG network, scored; Xplique
    and Lucent, which rebuild the Keras VGG16, skipped with the reason, in the report and the speed run."""
    if maco_runners.horama_available():
        pytest.skip(maco_runners.horama_available())
    with pytest.raises(FiltvizError, match=r"--model tests\.atlas_nets:small needs --layers"):
        maco_bench.parse_args(["--model", "tests.atlas_nets:small"], "p")
    argv = ["--quick", "--model", "tests.atlas_nets:small", "--layers", "5", "--filters", "3,60"]
    argv += ["--runs", "maco,horama,xplique", "--contenders", "ours,horama,xplique", "--out", str(tmp_path)]
    report = maco_bench.main(argv)
    capsys.readouterr()
    assert report["config"]["model"] == "tests.atlas_nets:small" and report["config"]["weights"] == "random"
    assert set(report["runs"]) == {"maco", "horama"}
    assert report["skipped"]["xplique"] == "runs the Keras VGG16 only (--model vgg16), not tests.atlas_nets:small"
    assert [(s["layer"], s["filter"]) for s in report["runs"]["maco"]["scores"]] == [("5", 3), ("5", 60)]
    assert all(np.isfinite(s["z"]) for run in report["runs"].values() for s in run["scores"])
    assert set(report["speed"]["filters_per_second"]) == {"ours", "horama"} and "xplique" in report["speed"]["skipped"]
    text = (tmp_path / "maco.md").read_text()
    assert "tests.atlas_nets:small (random weights): 5; filters 3,60" in text
    with pytest.raises(FiltvizError, match="5 has 64 filters"):  # counts come from the network
        maco_bench.main([*argv[:-2], "--filters", "0,70", "--out", str(tmp_path / "bad")])
