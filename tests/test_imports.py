"""Each framework's package works with the other framework made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A None entry in sys.modules makes "import x" raise ImportError, as if x were not installed.
BLOCK = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
"""


def run_without(blocked: set[str], code: str) -> subprocess.CompletedProcess:
    script = BLOCK.format(blocked=blocked) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def test_torch_filtviz_imports_and_loads_without_tensorflow(weights_file):
    result = run_without({"tensorflow", "keras"}, """
        import torch_filtviz as f
        m = f.load_vgg16()
        print(len(f.layer_names(m)), sum(p.numel() for p in m.parameters()))
        assert sys.modules['tensorflow'] is None and sys.modules['keras'] is None
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["18", "14714688"]


def test_tf_reference_imports_and_loads_without_torch(weights_file):
    result = run_without({"torch", "torchvision"}, """
        import tf_reference as r
        m = r.load_vgg16()
        print(m.count_params())
        assert sys.modules['torch'] is None
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "14714688"


def test_weights_file_needs_neither_framework(tmp_path):
    result = run_without({"torch", "torchvision", "tensorflow", "keras"}, f"""
        import os
        os.environ['FILTVIZ_HOME'] = {str(tmp_path)!r}
        from filtviz_core.weights import resolve_weights
        print(resolve_weights('auto').sha256)
    """)
    assert result.returncode == 0, result.stderr
    from filtviz_core.weights import CANONICAL_SHA256

    assert result.stdout.strip() == CANONICAL_SHA256


@pytest.mark.parametrize("package", ["torch_filtviz", "filtviz_core"])
def test_no_tensorflow_import_in_source(package):
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / package
    offenders = [p.name for p in root.glob("*.py") if any(
        line.lstrip().startswith(("import tensorflow", "from tensorflow", "import keras", "from keras"))
        for line in p.read_text().splitlines())]
    assert offenders == []
