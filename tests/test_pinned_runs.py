"""The recorded runs of tests/pinned/ come out bitwise equal: refactoring the loop changed no number.

Golden files are keyed by the machine (CPU and library versions, ``record.machine_key``): bitwise
equality across processors is not expected, so another machine skips with the reason, and
``python tests/pinned/record.py`` records its own set from a commit known to be right.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("pinned_record", Path(__file__).parent / "pinned" / "record.py")
record = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(record)


def _check(framework, results):
    folder = record.folder(framework)
    for name, arrays in results.items():
        golden = np.load(folder / f"{name}.npz")
        assert sorted(golden.files) == sorted(arrays), name
        for key in golden.files:
            assert golden[key].dtype == arrays[key].dtype, (name, key)
            np.testing.assert_array_equal(arrays[key], golden[key], err_msg=f"{framework} {name} {key}")


def _needs(framework):
    if not record.folder(framework).is_dir():
        pytest.skip(
            f"no pinned {framework} runs for this machine ({record.folder(framework).name}); "
            "record them with python tests/pinned/record.py from a commit known to be right"
        )


def test_torch_runs_bitwise(weights_file):
    _needs("torch")
    _check("torch", record.torch_results(str(weights_file.path)))


def test_tf_runs_bitwise(weights_file):
    pytest.importorskip("tensorflow")
    _needs("tf")
    _check("tf", record.tf_results(str(weights_file.path)))
