"""``python -m parity_tests.port``: validates any Keras -> PyTorch port, offline.

Worked examples: the small CNN saved as .keras (and .h5), its port with its own weights, an untrained
copy with the weights transferred, two broken ports (one transposed kernel, one missing ReLU) that
exit 1 naming the right layer; VGG16 in both frameworks (torch_filtviz's port, and torchvision's
architecture with the Keras weights transferred); every layer kind the transfer converts; bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity_tests import port, port_examples

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = "parity_tests.port_examples"


@pytest.fixture(scope="module")
def small_keras(tmp_path_factory):
    return port_examples.save_small_cnn(tmp_path_factory.mktemp("models") / "small_cnn.keras")


@pytest.fixture(scope="module")
def vgg_keras(tmp_path_factory, weights_file):
    return port_examples.save_vgg16(tmp_path_factory.mktemp("models") / "vgg16.keras", weights_file.path)


def run_port(capsys, *argv) -> tuple[int, str, str]:
    code = port.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_small_cnn_port_agrees_with_gradients(small_keras, tmp_path, capsys):
    code, out, _ = run_port(
        capsys, "--keras", small_keras, "--torch", f"{EXAMPLES}:small_cnn", "--gradients", "--out", tmp_path
    )
    assert code == 0, out
    # The auto map is printed, with where each pair is compared (the fused ReLUs: before it).
    assert "layer map (auto, by graph order, kind and output shape)" in out
    assert "conv1  -> conv1  [conv2d; before relu]" in out and "conv3  -> conv3  [conv2d; output]" in out
    assert "logits -> logits  [dense; output]" in out
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["passed"] and doc["first_diverging_layer"] is None
    # the weightless max-pool has a torch module of its kind and shape: paired too (gap's torch output is 4-d)
    assert [m["keras"] for m in doc["map"]] == ["conv1", "pool1", "conv2", "conv3", "logits"]
    assert [m["compared_at"] for m in doc["map"]] == ["before relu", "output", "before relu", "output", "output"]
    groups = {c["group"] for c in doc["checks"]}
    assert groups == {"activations", "gradients", "objective"}
    assert doc["inputs"] == {"label": "photos", "shape": [4, 32, 32, 3]}
    for name in ("report.md", "activations.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_transferred_weights_make_an_untrained_port_agree(small_keras, tmp_path, capsys):
    code, out, _ = run_port(
        capsys, "--keras", small_keras, "--torch", f"{EXAMPLES}:small_cnn_untrained", "--out", tmp_path / "without"
    )
    assert code == 1 and "first diverging layer: conv1" in out
    code, out, _ = run_port(
        capsys,
        "--keras",
        small_keras,
        "--torch",
        f"{EXAMPLES}:small_cnn_untrained",
        "--transfer-weights",
        "--inputs",
        "noise",
        "--gradients",
        "--out",
        tmp_path / "with",
    )
    assert code == 0, out
    assert "logits -> logits: bias, weight" in out


@pytest.mark.parametrize("builder,layer", [("small_cnn_transposed", "conv2"), ("small_cnn_missing_relu", "conv3")])
def test_broken_ports_exit_1_naming_the_first_diverging_layer(builder, layer, small_keras, tmp_path, capsys):
    """A transposed kernel shows at its own layer; a missing ReLU after conv2 shows at conv3, the first
    compared value it changes (conv2 itself is compared before its activation, where it still agrees)."""
    code, out, _ = run_port(
        capsys, "--keras", small_keras, "--torch", f"{EXAMPLES}:{builder}", "--gradients", "--out", tmp_path
    )
    assert code == 1
    assert f"FAIL: first diverging layer: {layer} (torch {layer}" in out
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["first_diverging_layer"] == layer and not doc["passed"]
    order = ["conv1", "conv2", "conv3", "logits"]
    failed_layers = {c["name"].split("/")[-2] for c in doc["checks"] if not c["passed"]}
    assert not failed_layers & set(order[: order.index(layer)]), "layers before the bug still agree"
    assert f"**{layer}**" in (tmp_path / "report.md").read_text()


def test_h5_files_and_an_explicit_map_with_pools_and_activation_modules(tmp_path, capsys):
    """A legacy .h5 file; a JSON map naming non-parameterised layers (pool, global pooling) and a torch
    activation module (then both sides are compared after the activation); an .npy input batch."""
    h5 = port_examples.save_small_cnn(tmp_path / "small_cnn.h5")
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"conv1": "relu1", "pool1": "pool1", "conv2": "conv2", "gap": "flatten"}))
    batch = np.random.default_rng(5).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "batch.npy", batch)
    code, out, _ = run_port(
        capsys,
        "--keras",
        h5,
        "--torch",
        f"{EXAMPLES}:small_cnn",
        "--map",
        mapping,
        "--inputs",
        tmp_path / "batch.npy",
        "--out",
        tmp_path / "r",
    )
    assert code == 0, out
    assert "conv1 -> relu1  [conv2d; output]" in out and "conv2 -> conv2  [conv2d; before relu]" in out
    assert json.loads((tmp_path / "r" / "report.json").read_text())["inputs"]["label"] == "batch"


# --- every layer kind the transfer converts -----------------------------------------------------------


def _mixed_keras(path: Path, bn_epsilon: float = 1e-5) -> Path:
    """Conv2D(relu) -> DepthwiseConv2D(x2) -> BatchNormalization -> ReLU -> Flatten -> Dense(relu) -> Dense."""
    import keras

    inp = keras.Input((12, 10, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid", name="depthwise")(x)
    x = keras.layers.BatchNormalization(epsilon=bn_epsilon, name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(6, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(3, name="out")(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(11)
    for layer in model.layers:
        values = [rng.standard_normal(w.shape).astype(np.float32) * 0.3 for w in layer.weights]
        if layer.name == "bn":  # gamma, beta, moving mean, moving variance (> 0)
            values[3] = np.abs(values[3]) + 0.5
        if values:
            layer.set_weights(values)
    model.save(path)
    return path


def mixed_torch(eps: float = 1e-5):
    """The same network in torch, untrained, in training mode (the command runs it in eval mode)."""
    import torch
    from torch import nn

    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, groups=4),
        nn.BatchNorm2d(8, eps=eps),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 10 * 8, 6),
        nn.ReLU(),
        nn.Linear(6, 3),
    )


def test_transfer_converts_depthwise_batchnorm_and_dense_after_flatten(tmp_path, capsys):
    keras_file = _mixed_keras(tmp_path / "mixed.keras")
    code, out, _ = run_port(
        capsys,
        "--keras",
        keras_file,
        "--torch",
        "parity_tests.test_port:mixed_torch",
        "--transfer-weights",
        "--inputs",
        "noise",
        "--gradients",
        "--out",
        tmp_path / "r",
    )
    assert code == 0, out
    assert "depthwise -> 2  [depthwise; output]" in out and "bn        -> 3  [batchnorm; output]" in out
    assert "hidden    -> 6  [dense; before relu]" in out
    assert "(inputs reordered from Keras' (h, w, c) flattening to torch's (c, h, w))" in out


def mixed_torch_default_eps():
    """The same port built with torch's default BatchNorm epsilon (1e-5 vs the Keras layer's 1e-3)."""
    return mixed_torch(eps=1e-5)


def test_a_batchnorm_epsilon_mismatch_is_reported_and_caught(tmp_path, capsys):
    keras_file = _mixed_keras(tmp_path / "mixed.keras", bn_epsilon=1e-3)
    code, out, _ = run_port(
        capsys,
        "--keras",
        keras_file,
        "--torch",
        "parity_tests.test_port:mixed_torch_default_eps",
        "--transfer-weights",
        "--inputs",
        "noise",
        "--out",
        tmp_path / "r",
    )
    assert (
        "bn -> 3: bias, running_mean, running_var, weight (epsilon differs: Keras 0.001, torch 1e-05; not carried)"
        in out
    )
    assert code == 1 and "first diverging layer: bn" in out


def test_dense_after_flatten_without_the_reordering_is_caught(tmp_path, capsys, monkeypatch):
    """The classic Flatten bug: the same weights, rows left in Keras' (h, w, c) order."""
    from parity_tests import port_weights

    keras_file = _mixed_keras(tmp_path / "mixed.keras")
    monkeypatch.setattr(port_weights, "_flatten_source_shape", lambda layer: None)
    code, out, _ = run_port(
        capsys,
        "--keras",
        keras_file,
        "--torch",
        "parity_tests.test_port:mixed_torch",
        "--transfer-weights",
        "--inputs",
        "noise",
        "--out",
        tmp_path / "r",
    )
    assert code == 1 and "first diverging layer: hidden" in out


def sequential_torch():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 3, 5), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 6 * 6, 4), nn.Softmax(dim=1)
    )


def test_a_sequential_model_with_other_fused_activations(tmp_path, capsys):
    """keras.Sequential, one input channel (photos turned grey), tanh and softmax fused into their layers."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((16, 16, 1)),
            keras.layers.Conv2D(3, 5, activation="tanh", name="c"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="softmax", name="d"),
        ]
    )
    model.save(tmp_path / "seq.keras")
    code, out, _ = run_port(
        capsys,
        "--keras",
        tmp_path / "seq.keras",
        "--torch",
        "parity_tests.test_port:sequential_torch",
        "--transfer-weights",
        "--gradients",
        "--out",
        tmp_path / "r",
    )
    assert code == 0, out
    assert "c             -> 0  [conv2d; before tanh]" in out and "d             -> 4  [dense; before softmax]" in out
    assert "max_pooling2d -> 2  [pool; output]" in out


# --- VGG16, both frameworks ----------------------------------------------------------------------------


def test_vgg16_port_of_torch_filtviz_agrees(vgg_keras, tmp_path, capsys):
    code, out, _ = run_port(capsys, "--keras", vgg_keras, "--torch", f"{EXAMPLES}:vgg16", "--out", tmp_path)
    assert code == 0, out
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [m["keras"] for m in doc["map"]] == [
        name
        for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
        for name in [f"block{b}_conv{c}" for c in range(1, n + 1)] + [f"block{b}_pool"]
    ]
    assert {m["compared_at"] for m in doc["map"] if "conv" in m["keras"]} == {"before relu"}
    assert doc["map"][0]["torch"] == "0" and doc["map"][-2]["torch"] == "28" and doc["map"][-1]["torch"] == "30"


def test_vgg16_architecture_with_transferred_weights_agrees(vgg_keras, tmp_path, capsys):
    code, out, _ = run_port(
        capsys,
        "--keras",
        vgg_keras,
        "--torch",
        f"{EXAMPLES}:vgg16_untrained",
        "--transfer-weights",
        "--size",
        "48",
        "--out",
        tmp_path,
    )
    assert code == 0, out
    assert out.count(": bias, weight") == 13


@pytest.mark.slow
def test_vgg16_gradients_agree(vgg_keras, tmp_path, capsys):
    code, out, _ = run_port(
        capsys, "--keras", vgg_keras, "--torch", f"{EXAMPLES}:vgg16", "--gradients", "--out", tmp_path
    )
    assert code == 0, out


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--keras", "missing.keras", "--torch", "a.b:c"], "--keras missing.keras: no such file"),
        (["--keras", "SMALL", "--torch", "nocolon"], "expected package.module:build"),
        (["--keras", "SMALL", "--torch", "no_such_module_xyz:build"], "cannot import no_such_module_xyz"),
        (["--keras", "SMALL", "--torch", "parity_tests.port_examples:nothing"], "has no attribute 'nothing'"),
        (["--keras", "SMALL", "--torch", "parity_tests.port:PROG"], "gave a str, not a torch.nn.Module"),
        (["--keras", "SMALL", "--torch", f"{EXAMPLES}:small_cnn", "--inputs", "pictures"], "valid: photos, noise"),
        (
            ["--keras", "SMALL", "--torch", f"{EXAMPLES}:small_cnn", "--map", "nope.json"],
            "--map nope.json: no such file",
        ),
        (
            ["--keras", "SMALL", "--torch", f"{EXAMPLES}:vgg16_untrained"],
            (
                "--map auto: cannot pair Keras layer conv1 (conv2d, output (32, 32, 8)): no torch module of that kind "
                "and output shape; the next torch module with parameters is 0 (conv2d, output (32, 32, 64))"
            ),
        ),
        (["--keras", "SMALL", "--torch", f"{EXAMPLES}:small_cnn", "--bogus"], "unrecognized arguments"),
        (["--keras", "SMALL", "--torch", f"{EXAMPLES}:small_cnn", "--rtol", "nan"], "--rtol must be a number between"),
        (["--keras", "SMALL", "--torch", f"{EXAMPLES}:small_cnn", "--ascent", "conv1"], "expected LAYER:FILTERS"),
        (["--keras", "SMALL", "--torch", f"{EXAMPLES}:small_cnn", "--ascent", "gap:0"], "gap is not in the layer map"),
        (["--keras", "SMALL.h4", "--torch", "a.b:c"], "expected a .keras, .h5 or .hdf5 model file"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, expected, small_keras, tmp_path, capsys):
    argv = [str(small_keras) if a == "SMALL" else a.replace("SMALL", str(small_keras)) for a in argv]
    code, out, err = run_port(capsys, *argv, "--out", tmp_path / "r")
    assert code == 2, out + err
    assert err.startswith("python -m parity_tests.port: error: ") and len(err.strip().splitlines()) == 1, err
    assert expected in err
    assert not (tmp_path / "r").exists()


def test_bad_map_and_input_files(small_keras, tmp_path, capsys):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"conv1": 3}')
    code, _, err = run_port(
        capsys, "--keras", small_keras, "--torch", f"{EXAMPLES}:small_cnn", "--map", bad_json, "--out", tmp_path / "r"
    )
    assert code == 2 and "must be a JSON object of Keras layer name -> torch module path" in err
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"conv1": "features.0"}')
    code, _, err = run_port(
        capsys, "--keras", small_keras, "--torch", f"{EXAMPLES}:small_cnn", "--map", wrong, "--out", tmp_path / "r"
    )
    assert code == 2 and "the torch model has no module 'features.0'" in err
    np.save(tmp_path / "small.npy", np.zeros((2, 16, 16, 3), np.float32))
    code, _, err = run_port(
        capsys,
        "--keras",
        small_keras,
        "--torch",
        f"{EXAMPLES}:small_cnn",
        "--inputs",
        tmp_path / "small.npy",
        "--out",
        tmp_path / "r",
    )
    assert code == 2 and "does not fit the Keras input (N, 32, 32, 3)" in err
    spare = tmp_path / "spare.json"
    spare.write_text('{"conv1": "spare"}')
    code, _, err = run_port(
        capsys,
        "--keras",
        small_keras,
        "--torch",
        "parity_tests.test_port:with_spare_module",
        "--map",
        spare,
        "--out",
        tmp_path / "r",
    )
    assert code == 2 and "never ran in the forward pass: ['spare']" in err
    not_a_model = tmp_path / "junk.keras"
    not_a_model.write_bytes(b"not a zip")
    code, _, err = run_port(capsys, "--keras", not_a_model, "--torch", f"{EXAMPLES}:small_cnn", "--out", tmp_path / "r")
    assert code == 2 and "cannot load the model" in err and len(err.strip().splitlines()) == 1


def with_spare_module():
    """The small CNN's port inside a wrapper that also holds a module its forward never calls."""
    from torch import nn

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = port_examples.small_cnn()
            self.spare = nn.ReLU()

        def forward(self, x):
            return self.body(x)

    return Wrapped()


def test_the_module_runs_as_a_command(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "parity_tests.port",
            "--keras",
            str(tmp_path / "x.keras"),
            "--torch",
            "a:b",
            "--out",
            str(tmp_path / "r"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"python -m parity_tests.port: error: --keras {tmp_path / 'x.keras'}: no such file"


# --- a Functional graph: SeparableConv2D, BatchNorm, residual Add, 'same' pooling, 1 channel ---------------------

FIXTURES = "parity_tests.port_fixtures"


@pytest.fixture(scope="module")
def residual_hdf5(tmp_path_factory):
    """The residual SeparableConv2D model (1-channel 64x64, seeded random weights) in Keras' legacy HDF5 layout."""
    from parity_tests import port_fixtures

    return port_fixtures.save_keras(tmp_path_factory.mktemp("models") / "residual.hdf5")


def test_residual_separable_port_passes_with_auto_map_transferred_weights_and_ascent(residual_hdf5, tmp_path, capsys):
    code, out, err = run_port(
        capsys,
        "--keras",
        residual_hdf5,
        "--torch",
        f"{FIXTURES}:residual_port",
        "--transfer-weights",
        "--map",
        "auto",
        "--ascent",
        "sep1:0-3",
        "--steps",
        "6",
        "--out",
        tmp_path,
    )
    assert code == 0, out + err
    # graph order, kinds and shapes: the separable convs as one module, the weightless pool and add paired too
    assert "sep1     -> sep1 (sep1.depthwise + sep1.pointwise)  [separable; before relu]" in out
    assert "pool     -> pool.pool  [pool; output]" in out and "add      -> add  [add; output]" in out
    assert "shortcut -> shortcut  [conv2d; output]" in out
    assert "sep1 -> sep1: depthwise.weight, pointwise.bias, pointwise.weight" in out
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [m["keras"] for m in doc["map"]] == [
        "stem", "stem_bn", "pool", "sep1", "sep2", "sep2_bn", "shortcut", "add", "gap", "logits"
    ]  # fmt: skip
    ascent = [c for c in doc["checks"] if c["group"] == "ascent"]
    assert [c["name"] for c in ascent] == [f"ascent/sep1/{f}/divergence" for f in range(4)]
    assert all(c["passed"] and c["value"] <= c["bound"] for c in ascent)
    curves = json.loads((tmp_path / "ascent.json").read_text())
    tf_losses, torch_losses = np.array(curves["tensorflow_losses"]), np.array(curves["torch_losses"])
    assert tf_losses.shape == torch_losses.shape == (4, 7)
    assert np.all(tf_losses[:, -1] > tf_losses[:, 0])  # the ascent climbed
    np.testing.assert_allclose(torch_losses[:, 0], tf_losses[:, 0], rtol=1e-5)  # the same start, the same model
    assert (tmp_path / "ascent.png").stat().st_size > 0 and "ascent.png" in doc["figures"]


def test_the_padding_bug_fails_and_names_the_pool(residual_hdf5, tmp_path, capsys):
    """``MaxPool2d(3, 2, padding=1)`` for Keras' 'same' pooling (0 before, 1 after): same shape, shifted values."""
    code, out, _ = run_port(
        capsys,
        "--keras",
        residual_hdf5,
        "--torch",
        f"{FIXTURES}:residual_port_padding_bug",
        "--transfer-weights",
        "--inputs",
        "noise",
        "--out",
        tmp_path,
    )
    assert code == 1
    assert "FAIL: first diverging layer: pool (torch pool, compared at output)" in out
    doc = json.loads((tmp_path / "report.json").read_text())
    failed = {c["name"].split("/")[-2] for c in doc["checks"] if not c["passed"]}
    assert doc["first_diverging_layer"] == "pool" and not failed & {"stem", "stem_bn"}


def test_a_keras_3_file_and_a_separable_conv_mapped_as_a_list(tmp_path, capsys):
    """The same network as a Keras 3 .keras file, 3 channels; a JSON map giving sep2 as [depthwise, pointwise];
    the fourier ascent of two filters."""
    from parity_tests import port_fixtures

    path = port_fixtures.save_keras(tmp_path / "residual.keras", channels=3, size=None)  # open input size
    mapping = tmp_path / "map.json"
    names = ("stem", "stem_bn", "sep1", "sep2", "sep2_bn", "shortcut", "logits")
    mapping.write_text(json.dumps({**{n: n for n in names}, "sep2": ["sep2.depthwise", "sep2.pointwise"]}))
    code, out, err = run_port(
        capsys,
        "--keras",
        path,
        "--torch",
        f"{FIXTURES}:residual_port_rgb",
        "--transfer-weights",
        "--map",
        mapping,
        "--inputs",
        "noise",
        "--ascent",
        "sep2:0-1",
        "--method",
        "fourier",
        "--steps",
        "4",
        "--size",
        "32",
        "--out",
        tmp_path / "r",
    )
    assert code == 0, out + err
    assert "sep2     -> sep2.pointwise (sep2.depthwise + sep2.pointwise)  [separable; output]" in out, out + err
    assert "sep2 -> sep2.pointwise: depthwise.weight, pointwise.bias, pointwise.weight" in out
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["map"][3]["torch_parts"] == ["sep2.depthwise", "sep2.pointwise"]
    assert doc["ascent"]["method"] == "fourier" and doc["ascent"]["floor"].startswith("reference run eagerly")
    assert [c["passed"] for c in doc["checks"] if c["group"] == "ascent"] == [True, True]


def short_port():
    """The residual port without its shortcut conv's partner: a 1x1 conv of the wrong width."""
    from torch import nn

    from parity_tests import port_fixtures

    model = port_fixtures.residual_port()
    model.shortcut = nn.Conv2d(8, 12, 1)
    model.add = nn.Identity()
    model.forward = lambda x: model.logits(  # the shortcut branch dropped, as a broken port would
        model.gap(model.add_relu(model.sep2_bn(model.sep2(model.sep1_relu(model.sep1(model.pool(model.stem_relu(
            model.stem_bn(model.stem(x))))))))))
    )  # fmt: skip
    return model


def test_auto_map_failure_names_the_layer_its_kind_and_the_next_module(residual_hdf5, tmp_path, capsys):
    code, _, err = run_port(capsys, "--keras", residual_hdf5, "--torch", "parity_tests.test_port:short_port",
                            "--out", tmp_path / "r")  # fmt: skip
    assert code == 2
    line = err.strip()
    assert len(line.splitlines()) == 1 and len(line) < 400, line
    assert "cannot pair Keras layer shortcut (conv2d, output (32, 32, 16))" in line
    assert "the next torch module with parameters is logits (dense, output (5))" in line


# --- the layer kinds the transfer converts, each against Keras' own output -------------------------------------


def _transfer_and_compare(keras_layer, torch_module, x_keras, to_torch, from_torch):
    import keras
    import torch

    from parity_tests.port_map import pair
    from parity_tests.port_weights import transfer_weights

    inp = keras.Input(x_keras.shape[1:])
    model = keras.Model(inp, keras_layer(inp))
    rng = np.random.default_rng(3)
    keras_layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in keras_layer.weights])
    holder = torch.nn.Sequential(torch_module)
    lines = transfer_weights(model, holder, [pair(model, holder, keras_layer.name, "0")])
    with torch.no_grad():
        got = from_torch(holder(torch.from_numpy(to_torch(x_keras))).numpy())
    want = np.asarray(model(x_keras))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    return lines


def test_transfer_converts_conv1d_conv2d_transpose_and_layer_normalization():
    import keras
    from torch import nn

    x = np.random.default_rng(0).standard_normal((2, 10, 3)).astype(np.float32)
    lines = _transfer_and_compare(
        keras.layers.Conv1D(4, 3, name="c1"), nn.Conv1d(3, 4, 3), x, lambda a: a.transpose(0, 2, 1).copy(),
        lambda a: a.transpose(0, 2, 1),
    )  # fmt: skip
    assert lines == ["  c1 -> 0: bias, weight"]
    x = np.random.default_rng(1).standard_normal((2, 5, 6, 3)).astype(np.float32)
    _transfer_and_compare(
        keras.layers.Conv2DTranspose(4, 3, strides=2, name="t"), nn.ConvTranspose2d(3, 4, 3, stride=2), x,
        lambda a: a.transpose(0, 3, 1, 2).copy(), lambda a: a.transpose(0, 2, 3, 1),
    )  # fmt: skip
    x = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    ln = keras.layers.LayerNormalization(epsilon=1e-5, name="ln")
    lines = _transfer_and_compare(ln, nn.LayerNorm(6), x, lambda a: a, lambda a: a)
    assert lines == ["  ln -> 0: bias, weight"]


def branches_swapped():
    """Two branches of one output shape, called by the port in the other order than Keras lists them."""
    import torch
    from torch import nn

    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.wide = nn.Conv2d(3, 8, 1)  # Keras' second branch, called first here
            self.narrow = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            w = self.wide(x)
            return self.narrow(x) + w

    return Branches()


def test_auto_map_tells_branches_of_one_shape_apart_by_their_kernels(tmp_path, capsys):
    import keras

    inp = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", name="narrow_k")(inp)
    b = keras.layers.Conv2D(8, 1, name="wide_k")(inp)
    keras.Model(inp, keras.layers.Add(name="sum")([a, b])).save(tmp_path / "branches.keras")
    code, out, err = run_port(capsys, "--keras", tmp_path / "branches.keras", "--torch",
                              "parity_tests.test_port:branches_swapped", "--transfer-weights", "--inputs", "noise",
                              "--out", tmp_path / "r")  # fmt: skip
    assert code == 0, out + err
    assert "narrow_k -> narrow  [conv2d; output]" in out and "wide_k   -> wide  [conv2d; output]" in out
