"""tf_reference on any Keras model: load_model, the pre-activation wherever the activation
is, the model's own input scaling, run.json's model and target, and ``python -m tf_reference --model``.

Small Functional models built here with seeded random weights (32 px): a conv whose activation comes after a
BatchNormalization, a SeparableConv2D with a fused ReLU, a residual Add followed by an Activation layer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import tensorflow as tf  # noqa: E402

import tf_reference  # noqa: E402
from filtviz_core import algorithm  # noqa: E402
from filtviz_core.errors import FiltvizError  # noqa: E402
from tf_reference import cli  # noqa: E402
from tf_reference.keras_model import capture, resolve  # noqa: E402


def build(channels: int = 3) -> keras.Model:
    inp = keras.Input((None, None, channels))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    y = keras.layers.SeparableConv2D(6, 3, padding="same", activation="relu", name="sep")(x)
    z = keras.layers.Conv2D(6, 1, name="proj")(x)
    a = keras.layers.Add(name="add")([y, z])
    a = keras.layers.Activation("relu", name="act")(a)
    out = keras.layers.GlobalAveragePooling2D(name="gap")(a)
    model = keras.Model(inp, out, name="tiny_residual")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        values = [rng.standard_normal(w.shape).astype(np.float32) * 0.3 for w in layer.weights]
        if layer.name == "bn":
            values[3] = np.abs(values[3]) + 0.5  # moving variance > 0
        if values:
            layer.set_weights(values)
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_models")
    model = build()
    paths = {suffix: folder / f"tiny{suffix}" for suffix in (".keras", ".h5", ".hdf5")}
    for path in paths.values():
        model.save(path)
    return paths


@pytest.fixture(scope="module")
def model(files):
    return tf_reference.load_model(files[".hdf5"])


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".hdf5"])
def test_load_model_reads_every_file_kind(files, suffix):
    loaded = tf_reference.load_model(files[suffix])
    assert loaded.filtviz_preprocess == "none" and loaded.filtviz_name == "tiny"
    assert loaded.filtviz_weights["source"] == f"file:tiny{suffix}" and len(loaded.filtviz_weights["sha256"]) == 64
    np.testing.assert_array_equal(loaded.get_layer("sep").get_weights()[1], build().get_layer("sep").get_weights()[1])
    assert "SeparableConv2D" in tf_reference.summary(loaded)
    if suffix != ".keras":  # the legacy HDF5 layout Keras 2 wrote: the config and weights in HDF5 groups
        import h5py

        with h5py.File(files[suffix], "r") as f:
            assert "model_config" in f.attrs and "model_weights" in f


def test_pre_and_post_activation_wherever_the_activation_is(model):
    where = {
        (name, act): resolve(model, name, act).describe()["tensor"]
        for name in ("conv", "bn", "relu", "sep", "proj", "add", "act")
        for act in ("pre_relu", "post_relu")
    }
    assert where[("conv", "pre_relu")] == "bn output" and where[("conv", "post_relu")] == "relu output"
    assert where[("sep", "pre_relu")] == "sep before its fused activation"
    assert where[("sep", "post_relu")] == "sep output"
    assert where[("proj", "pre_relu")] == "add output" and where[("relu", "pre_relu")] == "relu input"
    assert where[("act", "post_relu")] == "act output"
    with pytest.raises(FiltvizError, match=r"needs a layer followed by an activation and gap \(GlobalAveragePooling2D"):
        resolve(model, "gap", "pre_relu")
    assert resolve(model, "gap", "post_relu").describe()["tensor"] == "gap output"


def test_captured_pre_activations_are_the_tensors_they_name(model):
    x = tf.constant(np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32))
    pre = capture(model, ["conv", "sep", "proj"], "pre_relu")(x)
    post = capture(model, ["conv", "sep"], "post_relu")(x)
    bn = keras.Model(model.input, model.get_layer("bn").output)(x, training=False)
    add = keras.Model(model.input, model.get_layer("add").output)(x, training=False)
    np.testing.assert_allclose(pre["conv"], bn, rtol=1e-6)
    np.testing.assert_allclose(pre["proj"], add, rtol=1e-6)
    np.testing.assert_allclose(post["conv"], np.maximum(bn, 0), rtol=1e-6)
    np.testing.assert_allclose(post["sep"], np.maximum(pre["sep"], 0), rtol=1e-6, atol=1e-6)
    assert np.min(pre["sep"]) < 0  # really before the fused ReLU
    assert model.get_layer("sep").activation.__name__ == "relu"  # and the layer is left as it was


@pytest.mark.parametrize("preprocess,scale", [("none", 1.0), ("unit", 1 / 255.0)])
def test_visualize_filters_on_a_user_model_sees_its_preprocessing_and_records_the_target(files, preprocess, scale):
    model = tf_reference.load_model(files[".keras"], preprocess=preprocess)
    results = tf_reference.visualize_filters(model, "conv", [1, 3], steps=3, size=32, snapshots=())
    start = algorithm.initial_images([1, 3], 32, 0)
    bn = keras.Model(model.input, model.get_layer("bn").output)(start * scale, training=False).numpy()
    rows, cols = algorithm.interior(32, 32)
    expected = [bn[i, rows, cols, f].mean() for i, f in enumerate((1, 3))]
    np.testing.assert_allclose([r.losses[0] for r in results], expected, rtol=1e-5)
    assert all(r.losses[-1] > r.losses[0] for r in results)
    record = tf_reference.run_record(model, results)
    assert record["model"] == {"name": "tiny", "class": "Functional", "preprocess": preprocess}
    assert record["target"]["tensor"] == "bn output" and record["target"]["module"] == "bn"
    assert record["weights"]["source"] == "file:tiny.keras"


def test_render_and_feature_maps_on_a_user_model(model):
    results = tf_reference.render(model, tf_reference.objectives.channel("sep", 2), steps=2, size=24)
    assert results[0].losses.shape == (3,) and results[0].losses[-1] > results[0].losses[0]
    maps = tf_reference.feature_maps(model, np.full((20, 20, 3), 128, np.uint8), ["relu", "gap"])
    assert maps["relu"].shape == (1, 20, 20, 4) and maps["gap"].shape == (1, 6)
    with pytest.raises(FiltvizError, match=r"images must be \(H, W, 3\)"):
        tf_reference.feature_maps(model, np.zeros((20, 20, 1)), ["relu"])


def test_application_names_build_offline_and_imagenet_is_refused_in_one_line():
    with pytest.raises(FiltvizError, match="MobileNetV2 with weights='imagenet' needs a download") as err:
        tf_reference.load_model("mobilenetv2", weights="imagenet")
    assert "\n" not in str(err.value)
    with pytest.raises(FiltvizError, match="unknown model 'NoSuchNet'"):
        tf_reference.load_model("NoSuchNet")
    net = tf_reference.load_model("MobileNetV2", input_shape=(32, 32, 3))
    assert net.filtviz_weights == {"source": "keras.applications.MobileNetV2:random", "sha256": None}
    assert resolve(net, "Conv1", "pre_relu").describe()["tensor"] == "bn_Conv1 output"  # conv -> BN -> ReLU6


def test_the_command_line_takes_a_model_file(files, tmp_path, capsys):
    code = cli.main(["filters", "sep", "--model", str(files[".hdf5"]), "--filters", "0-1", "--steps", "2",
                     "--size", "32", "--no-filter-pngs", "--out", str(tmp_path)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["filters"] == [0, 1] and record["model"]["preprocess"] == "none"
    assert record["target"]["tensor"] == "sep before its fused activation"
    code = cli.main(["filters", "gap", "--model", str(files[".hdf5"]), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "needs a layer followed by an activation and gap (GlobalAveragePooling2D) is not one" in err
    code = cli.main(["summary", "--model", str(tmp_path / "missing.hdf5")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().endswith("missing.hdf5: no such file")
    code = cli.main(["maps", "--model", str(files[".keras"]), "--layers", "relu,sep", "--size", "32",
                     "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "relu: (1, 32, 32, 4)" in out and "sep: (1, 32, 32, 6)" in out


def test_model_and_preprocess_are_spelled_as_filtviz_spells_them():
    from torch_filtviz.cli import build_parser as torch_parser

    def options(parser, command):
        sub = parser._subparsers._group_actions[0].choices[command]
        return {opt: action for action in sub._actions for opt in action.option_strings}

    for command in ("filters", "maps"):
        torch_opts, tf_opts = options(torch_parser(), command), options(cli.build_parser(), command)
        assert torch_opts["--model"].default == tf_opts["--model"].default == "vgg16"
        assert tuple(torch_opts["--preprocess"].choices) == tuple(tf_opts["--preprocess"].choices)
        assert torch_opts["--preprocess"].default is tf_opts["--preprocess"].default is None
