"""The project's one version number. pyproject.toml reads it (setuptools ``dynamic``), the package
metadata and both command lines' ``--version`` carry it; tests/test_packaging.py checks they agree."""

__version__ = "0.2.0"
