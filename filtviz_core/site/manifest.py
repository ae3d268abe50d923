"""The atlas manifest: per-chunk parts and per-run records on disk, merged into ``atlas.json``.

Why parts: every chunk's results land in their own file (``parts/<layer>/<kind>/<first>-<last>.json``),
written atomically after the chunk's pictures, so several processes can render chunks at the same
time without sharing a file, and a crash loses only the chunks in flight. ``atlas.json`` is derived
from the parts and run records (``runs/<id>.json``) by :func:`merge_manifest`; the parts are the truth.

A filter is *done* for a kind (a method, or "examples") when the merged manifest has an entry for
it whose ``settings`` equal the ones asked for now and every file it names exists with the size
it recorded. When several parts hold the same filter, the most recently written one wins.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core import atomic
from filtviz_core.errors import FiltvizError
from filtviz_core.site.chunks import Chunk

FORMAT = "filtviz-atlas"
SCHEMA = 1
MANIFEST = "atlas.json"
EXAMPLES = "examples"  # the part kind that holds dataset examples
UPSTREAM = "upstream"  # the part kind that holds each unit's strongest inputs of the layer before
VIEWS = ("diversity", "negative")  # kinds "<method>.<view>": more pictures of a method, folded into its entry
#: The method a site shows first when it holds several, best measured first: the fourier method's pictures
#: score a median robust z of 158 against the pixel method's 93 and beat it on 12 of 12 filters, with a
#: spectral slope nearer natural photos' (1.64 vs 1.21), in ``benchmarks/quality/quality.json``
#: (``make quality``; tests/test_atlas_views.py reads it back). MACO follows them until a quality run measures it.
PREFERENCE = ("fourier", "pixel", "maco")


def default_method(methods: Iterable[str]) -> str | None:
    """The method of :data:`PREFERENCE` a site with these methods shows first (others: alphabetically after)."""
    ranked = sorted(set(methods), key=lambda m: (PREFERENCE.index(m) if m in PREFERENCE else len(PREFERENCE), m))
    return ranked[0] if ranked else None


#: What an atlas folder holds besides one ``<layer>.html`` per layer: only these are ever removed.
OWNED = (MANIFEST, "index.html", "assets", "data", "parts", "runs", "pictures", "examples", "photos")


def short_float(value: float) -> float | None:
    """A float32 value as the shortest float that round-trips it (compact JSON); None for NaN/inf."""
    v = np.float32(value)
    return float(str(v)) if np.isfinite(v) else None


def identity_text(identity: Mapping[str, Any]) -> str:
    weights = identity.get("weights") or {}
    mark = weights.get("sha256") or weights.get("source") or "?"
    return f"{identity.get('name', '?')} with weights {mark[:16] if weights.get('sha256') else mark}"


def same_identity(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Same network: same model name and same weights (SHA-256 when known, else their source)."""
    wa, wb = a.get("weights") or {}, b.get("weights") or {}
    key_a = wa.get("sha256") or wa.get("source")
    key_b = wb.get("sha256") or wb.get("source")
    return a.get("name") == b.get("name") and key_a == key_b


class AtlasFolder:
    """One atlas output folder: opens it safely, records parts and runs, merges the manifest.

    Parts already read are cached (by modification time), so merging after every chunk reads
    only the new part.
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self._parts: dict[Path, tuple[int, dict]] = {}

    # --- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, out: str | os.PathLike[str], identity: Mapping[str, Any], *, force: bool = False) -> AtlasFolder:
        """The folder ``out`` for an atlas of ``identity`` (``{"name", "weights": {"source", "sha256"}}``).

        A new or empty folder becomes an atlas. A folder that holds anything but an atlas is
        refused (nothing in it is touched, ``force`` or not). An atlas of another network is
        refused unless ``force``, which then removes the old atlas's own files first.
        """
        from filtviz_core.outputs import check_writable

        path = Path(out)
        existing = check_folder(path)
        if existing is not None and not same_identity(existing.get("model", {}), identity):
            if not force:
                raise FiltvizError(
                    f"{path} holds an atlas of {identity_text(existing.get('model', {}))}, not "
                    f"{identity_text(identity)}: use --force to replace it, or another folder"
                )
            folder = cls(path)
            folder.clear()
        check_writable(path)
        if read_manifest(path) is None:  # the folder is an atlas from its first file on
            atomic.write_json(
                path / MANIFEST,
                {"format": FORMAT, "schema": SCHEMA, "model": dict(identity), "runs": [], "photos": [], "layers": []},
            )
        return cls(path)

    def clear(self) -> None:
        """Remove this atlas's own files (never anything else in the folder)."""
        layer_pages = set()
        manifest = read_manifest(self.out)
        for layer in (manifest or {}).get("layers", []):
            layer_pages.add(f"{layer.get('name')}.html")
        for name in (*OWNED, *layer_pages):
            target = self.out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        self._parts.clear()

    # --- writing ---------------------------------------------------------------------------------

    def part_path(self, chunk: Chunk) -> Path:
        return self.out / "parts" / f"{chunk.key}.json"

    def write_part(self, chunk: Chunk, entries: Mapping[int, Mapping[str, Any]], run: str) -> Path:
        """Record a finished chunk: ``entries`` maps each filter to its entry (written after its files)."""
        part = {
            "format": FORMAT,
            "schema": SCHEMA,
            "key": chunk.key,
            "layer": chunk.layer,
            "kind": chunk.kind,
            "filters": list(chunk.filters),
            "run": run,
            "written": time.time(),
            "entries": {str(int(f)): dict(e) for f, e in entries.items()},
        }
        path = self.part_path(chunk)
        atomic.write_bytes(path, json.dumps(part, separators=(",", ":")).encode())
        return path

    def write_run(self, record: Mapping[str, Any]) -> Path:
        """Write (or update) one run's record, ``runs/<id>.json``."""
        path = self.out / "runs" / f"{record['id']}.json"
        atomic.write_json(path, dict(record))
        return path

    # --- reading ---------------------------------------------------------------------------------

    def parts(self) -> list[dict]:
        """Every readable part, oldest first (a part that cannot be read is ignored: it is redone)."""
        found = []
        root = self.out / "parts"
        paths = sorted(root.rglob("*.json")) if root.is_dir() else []
        for path in paths:
            try:
                stamp = path.stat().st_mtime_ns
            except OSError:
                continue
            cached = self._parts.get(path)
            if cached is None or cached[0] != stamp:
                try:
                    data = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if data.get("format") != FORMAT:
                    continue
                cached = self._parts[path] = (stamp, data)
            found.append(cached[1])
        return sorted(found, key=lambda p: (p.get("written", 0), p.get("key", "")))

    def runs(self) -> list[dict]:
        root = self.out / "runs"
        records = []
        for path in sorted(root.glob("*.json")) if root.is_dir() else []:
            try:
                records.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return sorted(records, key=lambda r: (r.get("started", ""), r.get("id", "")))

    def manifest(self) -> dict:
        """The merged manifest (what ``atlas.json`` holds) from the parts and runs on disk now."""
        return merge_manifest(self.runs(), self.parts())

    def is_done(
        self, manifest: Mapping[str, Any], layer: str, kind: str, index: int, settings: Mapping[str, Any]
    ) -> bool:
        """Whether ``manifest`` holds ``index`` of ``layer`` for ``kind`` with these ``settings``,
        and every file its entry names is on disk with the recorded size."""
        entry = find_entry(manifest, layer, kind, index)
        if entry is None or entry.get("settings") != _plain(settings):
            return False
        for rel, size in entry.get("bytes", {}).items():
            target = self.out / rel
            try:
                if target.stat().st_size != size:
                    return False
            except OSError:
                return False
        return True


def check_folder(out: str | os.PathLike[str]) -> dict | None:
    """Refuse (FiltvizError) a path that is a file, or a folder holding anything but an atlas; return
    the atlas's manifest if there is one. Creates nothing (callers check before loading a model)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise FiltvizError(f"--html {path} is a file, not a folder: give a new or empty folder")
    existing = read_manifest(path)
    if existing is None and path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir()):
        raise FiltvizError(
            f"{path} holds other files and no filtviz atlas (no valid {MANIFEST}): "
            "give a new or empty folder, or an atlas folder to resume"
        )
    return existing


def read_manifest(out: str | os.PathLike[str]) -> dict | None:
    """The atlas.json in ``out`` if it is a filtviz atlas manifest, else None."""
    path = Path(out) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def find_entry(manifest: Mapping[str, Any], layer: str, kind: str, index: int) -> dict | None:
    """The entry of filter ``index`` of ``layer`` for ``kind`` (a method or "examples") in a manifest
    made by :func:`merge_manifest` in this process."""
    return manifest["_lookup"].get((layer, kind, int(index)))


def merge_manifest(runs: Iterable[Mapping[str, Any]], parts: Iterable[Mapping[str, Any]]) -> dict:
    """``atlas.json`` from run records and parts (newest part wins per filter and kind).

    Layout: ``{"format", "schema", "model", "runs", "photos", "layers": [{"name", "filters",
    "rendered": {method: n}, "dead": {method: n}, "units": [{"filter", "methods": {method: entry},
    "examples": {"top": [...], "bottom": [...]}}]}]}``. Layers are listed in the model's order (latest
    run), each with every unit rendered so far, sorted by filter.
    """
    runs = sorted(runs, key=lambda r: (r.get("started", ""), r.get("id", "")))
    latest = runs[-1] if runs else {}
    model = dict(latest.get("model", {}))
    order = [dict(layer) for layer in model.pop("layers", [])]
    known = {layer["name"] for layer in order}
    table: dict[tuple[str, str, int], dict] = {}
    for part in sorted(parts, key=lambda p: (p.get("written", 0), p.get("key", ""))):
        layer, kind = part["layer"], part["kind"]
        if layer not in known:
            order.append({"name": layer, "filters": None})
            known.add(layer)
        for f, entry in part.get("entries", {}).items():
            table[(layer, kind, int(f))] = entry
    photos: dict[str, dict] = {}
    for run in runs:
        for photo in run.get("photos", []):
            photos[photo["name"]] = photo
    layers = []
    for layer in order:
        name = layer["name"]
        units: dict[int, dict] = {}
        views: list[tuple[int, str, str, dict]] = []
        connections: dict[int, dict] = {}
        for (lname, kind, f), entry in table.items():
            if lname != name:
                continue
            if kind == UPSTREAM:
                connections[f] = entry
                continue
            method, _, view = kind.partition(".")
            if view in VIEWS:
                views.append((f, method, view, entry))
                continue
            unit = units.setdefault(f, {"filter": f, "methods": {}, "examples": {"top": [], "bottom": []}})
            if kind == EXAMPLES:
                unit["examples"] = examples_of(entry)
            else:
                unit["methods"][kind] = entry
        for f, method, view, entry in views:  # shown once the unit's picture of that method is there
            main = units.get(f, {}).get("methods", {}).get(method)
            if main is not None:
                units[f]["methods"][method] = fold_view(main, view, entry)
        for f, entry in connections.items():
            if f in units:
                units[f].update({k: v for k, v in entry.items() if k in ("upstream", "upstream_note")})
        rendered: dict[str, int] = {}
        dead: dict[str, int] = {}
        for unit in units.values():
            for kind, entry in unit["methods"].items():
                rendered[kind] = rendered.get(kind, 0) + 1
                dead[kind] = dead.get(kind, 0) + bool(entry.get("dead"))
        layers.append({**layer, "rendered": rendered, "dead": dead, "units": [units[f] for f in sorted(units)]})
    link_upstream(layers)
    present = {m for layer in layers for m in layer["rendered"]}
    manifest = {
        "format": FORMAT,
        "schema": SCHEMA,
        "model": model,
        "runs": runs,
        "photos": list(photos.values()),
        "default_method": default_method(present),
        "layers": layers,
    }
    manifest["_lookup"] = table  # in memory only (not JSON): fast is_done; dropped by write_site
    return manifest


def fold_view(main: Mapping[str, Any], view: str, entry: Mapping[str, Any]) -> dict:
    """A method's entry with a view's pictures added: ``files[view]`` (``diversity``: a list of paths;
    ``negative``: one path) and ``entry[view]``: the view's ``final_losses`` and ``seconds`` (the pages load
    every unit of a layer: the whole curves stay in the view's part).
    A new dict: the part's own entries stay as read."""
    folded = dict(main)
    folded["files"] = {**main.get("files", {}), **entry.get("files", {})}
    folded[view] = {k: entry[k] for k in ("final_losses", "seconds") if k in entry}  # curves: in the part
    return folded


def link_upstream(layers: list[dict]) -> None:
    """Give each upstream connection the thumbnail of its input unit where the atlas has one
    (``thumb``: the first method's, in the order the pages list methods) and its page (``page``)."""
    from filtviz_core.site.chunks import safe_name

    thumbs: dict[tuple[str, int], str] = {}
    for layer in layers:
        for unit in layer["units"]:
            for method in sorted(unit["methods"], key=lambda m: (m != "pixel", m)):
                thumb = unit["methods"][method].get("files", {}).get("thumb")
                if thumb:
                    thumbs[(layer["name"], unit["filter"])] = thumb
                    break
    for layer in layers:
        for unit in layer["units"]:
            if "upstream" not in unit:
                continue
            unit["upstream"] = [
                {
                    **c,
                    "page": f"{safe_name(c['layer'])}.html#{int(c['filter'])}",
                    **(
                        {"thumb": thumbs[(c["layer"], int(c["filter"]))]}
                        if (c["layer"], int(c["filter"])) in thumbs
                        else {}
                    ),
                }
                for c in unit["upstream"]
            ]


def examples_of(entry: Mapping[str, Any]) -> dict[str, list]:
    """A unit's dataset examples as ``{"top": [...], "bottom": [...]}``, each ``{"photo", "box",
    "activation", "file", ...}``; an entry of the older layout (one ``examples`` list, ``value``) reads
    as its top examples."""
    if "top" in entry or "bottom" in entry:
        return {"top": list(entry.get("top", [])), "bottom": list(entry.get("bottom", []))}
    old = [{**x, "activation": x.get("value")} for x in entry.get("examples", [])]
    return {"top": old, "bottom": []}


def _plain(value: Any) -> Any:
    """As the value reads back from JSON: tuples become lists, numpy scalars plain numbers."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


#: Public name of :func:`_plain`: a value as it reads back from a part (to compare with a recorded entry).
plain = _plain
