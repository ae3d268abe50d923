"""What pip installs: one version everywhere, the packages the wheel ships, and a missing package reported
as exit status 1 with the exact ``pip install`` line (never a traceback, never "bad input")."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from filtviz_core import cli_common
from filtviz_core._version import __version__
from filtviz_core.errors import FiltvizRuntimeError, MissingPackage, install_line, missing_package, require

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SHIPPED = {"filtviz_core", "torch_filtviz", "tf_reference", "parity_tests"}


def run_python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "FILTVIZ_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=cwd or ROOT, env=env
    )


# --- one version --------------------------------------------------------------------------------------------


def test_version_is_written_once_and_everything_agrees():
    project = PYPROJECT["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "filtviz_core._version.__version__"}
    import filtviz_core
    import torch_filtviz

    assert filtviz_core.__version__ == torch_filtviz.__version__ == __version__
    assert importlib.metadata.version("torch-filtviz") == __version__, "reinstall: make install"
    versions = run_python(
        "import subprocess, sys\n"
        "for m in ('torch_filtviz', 'tf_reference'):\n"
        "    print(subprocess.run([sys.executable, '-m', m, '--version'], capture_output=True,"
        " text=True, check=True).stdout.strip())"
    )
    assert versions.returncode == 0, versions.stderr
    assert versions.stdout.splitlines() == [f"filtviz {__version__}", f"python -m tf_reference {__version__}"]


def test_changelog_has_this_version_and_an_unreleased_section():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## Unreleased" in text and f"## {__version__}" in text and "## 0.1.0" in text


# --- what the wheel ships -----------------------------------------------------------------------------------


def test_the_wheel_lists_every_subpackage_of_what_it_ships_and_no_other_top_level():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert {name.split(".")[0] for name in listed} == SHIPPED  # filtviz_bench runs from a checkout only
    on_disk = {
        path.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for top in SHIPPED
        for path in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert on_disk - listed == set(), "a subpackage the wheel would leave out"
    assert PYPROJECT["project"]["scripts"] == {
        "filtviz": "torch_filtviz.cli:main",
        "filtviz-port": "parity_tests.port:main",
    }
    assert (ROOT / "LICENSE").is_file() and PYPROJECT["project"]["license-files"] == ["LICENSE"]


def test_weights_sources_are_core_dependencies_and_tf_caps_onnx():
    deps = {d.split(">")[0].split("=")[0].split("<")[0] for d in PYPROJECT["project"]["dependencies"]}
    assert {"h5py", "onnx"} <= deps  # Keras' .h5 download and local files; the offline ONNX copy
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "tensorflow==2.17.1" in extras["tf"] and "onnx<1.19" in extras["tf"]
    assert "torch-filtviz[tf]" in extras["parity"]


def test_parity_tests_and_tf_reference_import_without_tensorflow_or_torch():
    result = run_python(
        "import sys\n"
        "for n in ('tensorflow', 'keras', 'torch', 'torchvision'):\n"
        "    sys.modules[n] = None\n"
        "import parity_tests, parity_tests.port, tf_reference, tf_reference.cli\n"
        "print('ok')"
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# --- a missing package: exit 1, the exact pip line ----------------------------------------------------------


def test_install_lines():
    assert install_line("tensorflow") == install_line("keras.models") == 'pip install "torch-filtviz[tf]"'
    assert install_line("pytest") == 'pip install "torch-filtviz[parity]"'
    assert install_line("h5py") == "pip install h5py" and install_line("onnx.numpy_helper") == "pip install onnx"
    assert install_line("skimage") == "pip install scikit-image" and install_line("my_own_module") is None
    exc = MissingPackage("tensorflow", "python -m tf_reference")
    assert isinstance(exc, FiltvizRuntimeError) and isinstance(exc, ImportError) and exc.name == "tensorflow"
    assert str(exc) == (
        "python -m tf_reference needs the 'tensorflow' package, which is not installed: "
        'pip install "torch-filtviz[tf]"'
    )
    assert missing_package(ModuleNotFoundError("x", name="my_own_module")) is None


def test_require_names_the_package_and_passes_other_import_errors_through(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(
        MissingPackage,
        match=r"reading w\.h5 needs the 'h5py' package, which is not installed: "
        r"pip install h5py$",
    ):
        require("h5py", "reading w.h5")
    assert require("json", "x") is sys.modules["json"]


@pytest.mark.parametrize(
    "module, suffix, line", [("h5py", ".h5", "pip install h5py"), ("onnx", ".onnx", "pip install onnx")]
)
def test_filtviz_without_a_weights_reader_exits_1_with_the_pip_line(
    module, suffix, line, tmp_path, monkeypatch, capsys
):
    from torch_filtviz.cli import main

    weights = tmp_path / f"vgg16{suffix}"
    weights.write_bytes(b"not read: the package is missing first")
    monkeypatch.setenv("FILTVIZ_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    code = main(["weights", "--weights", str(weights)])
    err = capsys.readouterr().err
    assert code == cli_common.EXIT_RUNTIME == 1
    assert err.count("\n") == 1 and err.rstrip().endswith(
        f"needs the '{module}' package, which is not installed: {line}"
    ), err


def test_tf_reference_without_tensorflow_exits_1_with_the_pip_line(tmp_path):
    result = run_python(
        "import sys\n"
        "sys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "from tf_reference.cli import main\n"
        "sys.exit(main(sys.argv[1:]))",
        "filters",
        "block1_conv2",
        "--filters",
        "0",
        "--steps",
        "1",
        "--size",
        "32",
        "--weights",
        "random",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 1, result.stderr
    assert re.fullmatch(
        r"python -m tf_reference: error: python -m tf_reference needs the '(tensorflow|keras)' package, "
        r'which is not installed: pip install "torch-filtviz\[tf\]"\n',
        result.stderr,
    )


def test_port_validator_without_tensorflow_exits_1_with_the_pip_line(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    result = run_python(
        "import sys\n"
        "sys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "from parity_tests.port import main\n"
        "sys.exit(main(sys.argv[1:]))",
        "--keras",
        str(tmp_path / "model.keras"),
        "--torch",
        "parity_tests.port_examples:vgg16_untrained",
        "--out",
        str(tmp_path / "report"),
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.rstrip().endswith('pip install "torch-filtviz[tf]"'), (
        result.stderr
    )


def test_an_unknown_import_error_stays_an_unexpected_failure(capsys):
    def broken():
        raise ModuleNotFoundError("No module named 'my_own_module'", name="my_own_module")

    assert cli_common.run_guarded("filtviz", broken) == 1
    assert "ModuleNotFoundError" in capsys.readouterr().err
