"""Networks from the user's own factory (``package.module:function``) leave the interpreter as they found it."""

from __future__ import annotations

import sys

import pytest

import torch_filtviz as fv
from filtviz_core.errors import FiltvizError

FACTORY = """
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project folder holding ``mynets/small.py``, as the current folder; its modules forgotten after."""
    (tmp_path / "mynets").mkdir()
    (tmp_path / "mynets" / "__init__.py").write_text("")
    (tmp_path / "mynets" / "small.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield tmp_path
    for name in [m for m in sys.modules if m == "mynets" or m.startswith("mynets.")]:
        del sys.modules[name]


def test_factory_from_the_current_folder_restores_sys_path(project):
    before = list(sys.path)
    model = fv.load_model("mynets.small:build")
    assert sys.path == before
    assert model.name == "mynets.small:build" and fv.layer_names(model, "conv") == ["0"]


def test_factory_that_fails_to_import_restores_sys_path(project):
    before = list(sys.path)
    with pytest.raises(FiltvizError, match=r"cannot import 'mynets.missing'"):
        fv.load_model("mynets.missing:build")
    assert sys.path == before
