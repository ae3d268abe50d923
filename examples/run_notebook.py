"""Execute the example notebook top to bottom, as its users run it, and save the executed copy.

    python examples/run_notebook.py                       # -> outputs/visualizing_filters.ipynb (`make notebook`)
    python examples/run_notebook.py --size 128 --steps 200  # the publication-size pictures

Any cell that raises fails the run (exit status 1, the cell and its error on one line). The
committed notebook keeps no outputs (a few kB in git instead of a few MB of pictures); this is
how to get them. The test suite calls :func:`execute` the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "visualizing_filters.ipynb"


def execute(
    path: str | os.PathLike[str] = NOTEBOOK, *, size: int | None = None, steps: int | None = None, timeout: int = 600
):
    """Run every cell of the notebook at ``path`` in a fresh kernel (working folder: the notebook's own);
    returns the executed notebook (nbformat). Raises ``nbclient``'s CellExecutionError if a cell fails."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {"NOTEBOOK_SIZE": str(size)} if size else {}
    if steps:
        env["NOTEBOOK_STEPS"] = str(steps)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(Path(path).resolve().parent)}},
        ).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def image_outputs(nb) -> int:
    """How many figures the executed notebook shows."""
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", default=str(NOTEBOOK), help="notebook to run; default: the example")
    parser.add_argument(
        "--out", default="outputs/visualizing_filters.ipynb", help="executed copy; default: %(default)s"
    )
    parser.add_argument("--size", type=int, default=None, help="image side (the notebook's SIZE; default: its own)")
    parser.add_argument("--steps", type=int, default=None, help="ascent steps (the notebook's STEPS)")
    args = parser.parse_args(argv)
    from nbclient.exceptions import CellExecutionError

    started = time.perf_counter()
    try:
        nb = execute(args.notebook, size=args.size, steps=args.steps)
    except CellExecutionError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        print(f"run_notebook: error: a cell failed: {lines[-1] if lines else exc}", file=sys.stderr)
        return 1
    import nbformat

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, out)
    print(f"executed {args.notebook} in {time.perf_counter() - started:.0f} s: {image_outputs(nb)} figures -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
