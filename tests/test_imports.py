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
    result = run_without(
        {"tensorflow", "keras"},
        """
        import torch_filtviz as f
        m = f.load_vgg16()
        print(len(f.layer_names(m)), sum(p.numel() for p in m.parameters()))
        assert sys.modules['tensorflow'] is None and sys.modules['keras'] is None
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["18", "14714688"]


def test_tf_reference_imports_and_loads_without_torch(weights_file):
    result = run_without(
        {"torch", "torchvision"},
        """
        import tf_reference as r
        m = r.load_vgg16()
        print(m.count_params())
        assert sys.modules['torch'] is None
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "14714688"


def test_weights_file_needs_neither_framework(tmp_path):
    result = run_without(
        {"torch", "torchvision", "tensorflow", "keras"},
        f"""
        import os
        os.environ['FILTVIZ_HOME'] = {str(tmp_path)!r}
        from filtviz_core.weights import resolve_weights
        print(resolve_weights('auto').sha256)
    """,
    )
    assert result.returncode == 0, result.stderr
    from filtviz_core.weights import CANONICAL_SHA256

    assert result.stdout.strip() == CANONICAL_SHA256


def framework_imports(root, frameworks: tuple[str, ...]) -> list[str]:
    """The .py files under ``root``, subpackages included, that import any of ``frameworks`` (anywhere in the file)."""
    import ast

    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(name.split(".")[0] in frameworks for name in names):
                found.append(path.relative_to(root).as_posix())
                break
    return found


def test_source_scan_looks_into_subpackages(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "top.py").write_text("import numpy\n")
    (tmp_path / "sub" / "deeper" / "late.py").write_text("def f():\n    from keras import ops\n")
    (tmp_path / "sub" / "mod.py").write_text("import tensorflow.experimental as tfe\n")
    assert framework_imports(tmp_path, ("tensorflow", "keras")) == ["sub/deeper/late.py", "sub/mod.py"]


@pytest.mark.parametrize("package", ["torch_filtviz", "filtviz_core"])
def test_no_tensorflow_import_in_source(package):
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / package
    assert framework_imports(root, ("tensorflow", "keras")) == []


@pytest.mark.parametrize("package", ["tf_reference", "filtviz_core"])
def test_no_torch_import_in_source(package):
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / package
    assert framework_imports(root, ("torch", "torchvision")) == []


# --- no import cycles ---------------------------------------------------------------------------------

PACKAGES = ("torch_filtviz", "filtviz_core", "tf_reference")


def _module_name(path, root) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: the project modules it imports}``, from the source (module-level and function-level
    ``import``/``from`` statements alike: an import hidden in a function still ties the two modules).
    ``from package import name`` depends on ``package.name`` when that is a module, else on ``package``."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    files = {_module_name(p, root): p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))}

    def owner(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in files]
                names = subs if len(subs) == len(node.names) else [base, *subs]
            else:
                continue
            deps.update(found for found in map(owner, names) if found is not None and found != module)
        graph[module] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_import_graph_sees_the_project():
    graph = import_graph()
    assert "torch_filtviz.atlas.build" in graph and "filtviz_core.site.chunks" in graph["torch_filtviz.atlas.build"]
    assert "torch_filtviz.targets" in graph["torch_filtviz.hooks"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    graph = import_graph()
    cycles = []
    while (cycle := find_cycle(graph)) is not None and len(cycles) < 20:  # each cycle, by cutting its last edge
        cycles.append(" -> ".join(cycle))
        graph[cycle[-2]].discard(cycle[-1])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_tf_reference_all_lists_every_lazy_export():
    """``tf_reference.__all__`` is written out (for linters and type checkers): it must keep up with ``_EXPORTS``."""
    import tf_reference

    assert set(tf_reference._EXPORTS) <= set(tf_reference.__all__)
    assert len(set(tf_reference.__all__)) == len(tf_reference.__all__)
