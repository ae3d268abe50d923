"""The wheel as users install it: scripts/wheel_check.sh builds it, installs it into clean virtualenvs (plain, so
numpy 2 resolves there, and [tf]) without the constraints file, and runs the quickstart and both commands there.

The venvs are kept, keyed on the wheel's SHA-256 (a changed wheel gets new ones). FILTVIZ_SKIP_WHEEL_CHECK=1 skips
this test on a developer's machine; CI never sets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "wheel_check.sh"


@pytest.mark.wheel
@pytest.mark.skipif(bool(os.environ.get("FILTVIZ_SKIP_WHEEL_CHECK")), reason="FILTVIZ_SKIP_WHEEL_CHECK is set")
def test_the_wheel_installs_and_runs_in_clean_venvs(weights_file):
    for tool in ("git", "flock", "tar"):
        assert shutil.which(tool), f"scripts/wheel_check.sh needs {tool}"
    env = {**os.environ, "PYTHON": sys.executable, "FILTVIZ_WEIGHTS_FILE": str(weights_file.path)}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 0, "\n".join(lines[-40:])
    assert lines[-1].startswith("wheel check: passed: torch_filtviz-"), lines[-1]
    print(lines[-1])
