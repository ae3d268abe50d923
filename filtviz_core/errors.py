"""User-facing errors: one line that says what is wrong and what is valid.

Two kinds, because a command line must tell them apart (exit status 2 vs 1):

* :class:`FiltvizError` (a ``ValueError``): the input is wrong — an unknown layer, a filter out of
  range, a weights file that does not fit the model. The user fixes the command. Exit status 2.
* :class:`FiltvizRuntimeError` (a ``RuntimeError``): the input is fine but something failed while
  running — weights not found or a download failed, a device error, a package that is not installed
  (:class:`MissingPackage`, whose message ends with the exact ``pip install`` line). Exit status 1.
"""


class FiltvizError(ValueError):
    """Bad user input (unknown layer, filter out of range, unreadable image, ...)."""


class WeightsError(FiltvizError):
    """A weights file or source that is corrupt, or not the expected network."""


class FiltvizRuntimeError(RuntimeError):
    """A failure while running with valid input (weights unavailable, download failed, device error)."""


class WeightsUnavailable(WeightsError, FiltvizRuntimeError):
    """Weights that cannot be found or fetched here (a missing file, no network, no cache).

    Both a :class:`WeightsError` (code that catches weights problems catches it) and a
    :class:`FiltvizRuntimeError` (the command lines exit with status 1: the input was fine).
    """


# --- missing packages: one message, one exit status (1), one pip line --------------------------------------

#: The distribution name on PyPI, as a ``pip install`` line spells it.
DISTRIBUTION = "torch-filtviz"

#: Import name -> the extra of :data:`DISTRIBUTION` that installs it. A package that is a plain requirement of
#: torch-filtviz (and so should already be there) is installed by its own name instead (:data:`PIP_NAMES`).
EXTRAS = {"tensorflow": "tf", "keras": "tf", "pytest": "parity"}

#: Import name -> PyPI name, for the packages whose absence the command lines report with a pip line.
PIP_NAMES = {
    "h5py": "h5py",
    "onnx": "onnx",
    "torch": "torch",
    "torchvision": "torchvision",
    "torchinfo": "torchinfo",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
    "PIL": "pillow",
    "tqdm": "tqdm",
    "playwright": "playwright",
    "lucent": "torch-lucent",
}


def install_line(module: str) -> str | None:
    """The exact ``pip install`` line that brings ``module`` (an import name), or None for an unknown one."""
    top = module.split(".")[0]
    if top in EXTRAS:
        return f'pip install "{DISTRIBUTION}[{EXTRAS[top]}]"'
    if top in PIP_NAMES:
        return f"pip install {PIP_NAMES[top]}"
    return None


class MissingPackage(FiltvizRuntimeError, ImportError):
    """A package that is not installed: the input was fine, the environment lacks it (exit status 1).

    Its message names the package and the exact ``pip install`` line. Also an :class:`ImportError`, so
    code that tests for an importable package still catches it.
    """

    def __init__(self, module: str, purpose: str | None = None):
        self.module = module
        self.pip_line = install_line(module) or f"pip install {module.split('.')[0]}"
        need = f"{purpose} needs" if purpose else "this needs"
        super().__init__(f"{need} the {module.split('.')[0]!r} package, which is not installed: {self.pip_line}")
        self.name = module.split(".")[0]


def missing_package(exc: ImportError, purpose: str | None = None) -> MissingPackage | None:
    """The :class:`MissingPackage` an ImportError stands for, when it names a package we know how to install
    (``exc.name``: set by ``import x`` for a missing ``x`` and for ``sys.modules['x'] = None``); else None."""
    if isinstance(exc, MissingPackage):
        return exc
    name = getattr(exc, "name", None)
    if not name or install_line(name) is None:
        return None
    return MissingPackage(name, purpose)


def require(module: str, purpose: str):
    """``import module`` and return it, or raise :class:`MissingPackage` naming ``purpose`` and the pip line.

    ``require("h5py", f"reading {path}")`` -> "reading PATH needs the 'h5py' package, which is not installed:
    pip install h5py". A package that is there but fails to import for another reason raises as it is.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        found = missing_package(exc, purpose)
        if found is None or found.name != module.split(".")[0]:
            raise
        raise found from exc
