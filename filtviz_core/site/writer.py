"""The static site of an atlas: plain HTML, CSS and JavaScript, no framework, every link relative.

Files (all written atomically): ``index.html`` (the model, the runs, every layer with a strip of
its pictures and how much is rendered), one ``<layer>.html`` per layer (a grid of its filters, a
search box, and the view of one filter at ``<layer>.html#<filter>``), ``data/<layer>.js`` (that
layer's part of ``atlas.json``, which the layer page reads), ``assets/atlas.css`` and
``assets/atlas.js``, and ``atlas.json`` itself.

Why ``data/*.js`` and not ``fetch("atlas.json")``: browsers refuse ``fetch`` of a local file for a
page opened from ``file://``, but load a ``<script src>`` beside it; the data files carry the same
JSON as ``atlas.json`` (a layer's slice each, so a page never loads the whole network's manifest).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from filtviz_core import atomic
from filtviz_core.site.chunks import safe_name
from filtviz_core.site.manifest import MANIFEST

ASSETS = Path(__file__).resolve().parent / "assets"
ASSET_FILES = ("atlas.css", "atlas.js")
STRIP = 8  # pictures per layer on the index page


def page_of(layer: str) -> str:
    return f"{safe_name(layer)}.html"


def data_of(layer: str) -> str:
    return f"data/{safe_name(layer)}.js"


def public(manifest: Mapping[str, Any]) -> dict:
    """The manifest without its in-memory helpers (what ``atlas.json`` holds)."""
    return {k: v for k, v in manifest.items() if not k.startswith("_")}


def write_site(
    out: str | os.PathLike[str], manifest: Mapping[str, Any], *, layers: Iterable[str] | None = None
) -> Path:
    """Write the site of ``manifest`` into ``out``; ``layers``: only these layers' data changed
    (None: all). Returns the path of ``index.html``."""
    out = Path(out)
    doc = public(manifest)
    _write_if_changed(out / MANIFEST, json.dumps(doc, separators=(",", ":")).encode() + b"\n")
    for name in ASSET_FILES:
        _write_if_changed(out / "assets" / name, (ASSETS / name).read_bytes())
    names = [layer["name"] for layer in doc["layers"]]
    changed = None if layers is None else set(layers)
    shared = {
        "model": doc["model"].get("name", "model"),
        "layers": [[n, page_of(n)] for n in names],
        "default_method": doc.get("default_method"),
        "photos": {p["name"]: p for p in doc.get("photos", [])},
    }
    for layer in doc["layers"]:
        if changed is None or layer["name"] in changed:
            body = json.dumps({**layer, **shared}, separators=(",", ":"))
            _write_if_changed(out / data_of(layer["name"]), f"window.FILTVIZ_LAYER = {body};\n".encode())
        _write_if_changed(out / page_of(layer["name"]), layer_page(layer["name"], shared["model"]).encode())
    index = out / "index.html"
    _write_if_changed(index, index_page(doc).encode())
    return index


def _write_if_changed(path: Path, blob: bytes) -> None:
    try:
        if path.read_bytes() == blob:
            return
    except OSError:
        pass
    atomic.write_bytes(path, blob)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _head(title: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<title>{_e(title)}</title>\n<link rel="icon" href="data:,">\n'
        '<link rel="stylesheet" href="assets/atlas.css">\n</head>\n'
    )


def layer_page(layer: str, model: str) -> str:
    """The page of one layer: an empty frame that ``assets/atlas.js`` fills from ``data/<layer>.js``."""
    return (
        _head(f"{layer} · {model} filter atlas") + f'<body data-page="layer" data-layer="{_e(layer)}">\n'
        '<header class="top"><a href="index.html">' + _e(model) + ' atlas</a> <span class="sep">›</span> '
        f'<strong id="layer-name">{_e(layer)}</strong> <nav id="layer-nav"></nav></header>\n'
        '<main>\n<section id="grid-view">\n<div class="toolbar">\n'
        '<input id="search" type="search" autocomplete="off" placeholder="filter: 117, 100-120 or dead" '
        'aria-label="show filters: an index, a range such as 100-120, or dead">\n'
        '<span id="count" role="status"></span>\n'
        '<label id="method-switch" hidden>method <select id="method"></select></label>\n</div>\n'
        '<p id="search-message" class="message" role="status"></p>\n'
        '<div id="grid" class="grid"></div>\n</section>\n'
        '<section id="filter-view" hidden></section>\n</main>\n'
        '<noscript><p class="message">This page draws its grid with JavaScript; the pictures themselves are '
        "in the <code>pictures/</code> folder.</p></noscript>\n"
        f'<script src="{_e(data_of(layer))}"></script>\n<script src="assets/atlas.js"></script>\n'
        "</body>\n</html>\n"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def index_page(doc: Mapping[str, Any]) -> str:
    """The front page: the model, how the atlas was made, and every layer with a strip of pictures."""
    model = doc.get("model", {})
    name = model.get("name", "model")
    runs = doc.get("runs", [])
    latest = runs[-1] if runs else {}
    weights = model.get("weights", {})
    parts = [
        _head(f"{name} filter atlas"),
        '<body data-page="index">\n<main class="index">\n',
        f"<h1>What the filters of {_e(name)} respond to</h1>\n",
        (
            "<p>Each picture is the input that most excites one filter (gradient ascent from noise); each "
            "layer page shows all of a layer's filters, and each filter's view its pictures, loss curve and "
            "the crops of natural photos that excite it most.</p>\n"
        ),
    ]
    total = sum(layer.get("filters") or 0 for layer in doc.get("layers", []))
    methods = sorted({m for layer in doc.get("layers", []) for m in layer.get("rendered", {})}) or ["pixel"]
    parts.append(
        '<h2>Layers</h2>\n<table class="layers" id="layers">\n<thead><tr><th>layer</th><th>filters</th>'
        + "".join(f"<th>rendered ({_e(m)})</th>" for m in methods)
        + "<th>dead</th><th>pictures</th></tr></thead>\n<tbody>\n"
    )
    rendered_total = dict.fromkeys(methods, 0)
    for layer in doc.get("layers", []):
        lname, count = layer["name"], layer.get("filters")
        cells = []
        for m in methods:
            done = layer.get("rendered", {}).get(m, 0)
            rendered_total[m] += done
            cells.append(
                f'<td class="rendered" data-method="{_e(m)}">{done}/{count if count is not None else "?"}</td>'
            )
        dead = sum(layer.get("dead", {}).values())
        strip = []
        for unit in layer.get("units", [])[:STRIP]:
            entry = unit.get("methods", {}).get(doc.get("default_method") or "") or next(
                iter(unit.get("methods", {}).values()), None
            )
            if entry and entry.get("files", {}).get("thumb"):
                strip.append(
                    f'<a href="{_e(page_of(lname))}#{unit["filter"]}"><img loading="lazy" '
                    f'src="{_e(entry["files"]["thumb"])}" alt="{_e(lname)} filter {unit["filter"]}" '
                    'width="48" height="48"></a>'
                )
        strip_html = "".join(strip) or '<span class="muted">none yet</span>'
        parts.append(
            f'<tr data-layer="{_e(lname)}"><td><a href="{_e(page_of(lname))}">{_e(lname)}</a></td>'
            f"<td>{count if count is not None else '?'}</td>{''.join(cells)}<td>{dead}</td>"
            f'<td class="strip">{strip_html}</td></tr>\n'
        )
    parts.append(
        "</tbody>\n<tfoot><tr><td>all</td><td>"
        f"{total:,}</td>"
        + "".join(f"<td>{rendered_total[m]:,}/{total:,}</td>" for m in methods)
        + "<td></td><td></td></tr></tfoot>\n"
        "</table>\n"
    )
    parts.append(
        '<h2>Model</h2>\n<dl class="facts">\n'
        f'<dt>weights</dt><dd id="weights-source">{_e(weights.get("source"))}</dd>\n'
        '<dt>SHA-256</dt><dd><code id="weights-sha256">'
        f"{_e(weights.get('sha256') or 'none (not a file)')}</code></dd>\n"
    )
    for key, value in (latest.get("versions") or {}).items():
        parts.append(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>\n")
    parts.append("</dl>\n")
    if model.get("summary"):
        parts.append(f'<pre class="summary">{_e(model["summary"])}</pre>\n')
    parts.append(
        '<h2>How this atlas was made</h2>\n<table class="runs"><thead><tr><th>started</th><th>status</th>'
        "<th>rendered</th><th>device</th><th>command</th></tr></thead><tbody>\n"
    )
    for run in runs:
        device = run.get("device", "")
        if run.get("device_name"):
            device += f" ({run['device_name']})"
        parts.append(
            f"<tr><td>{_e(str(run.get('started', ''))[:19])}</td><td>{_e(run.get('status', ''))}</td>"
            f"<td>{_e(run.get('rendered', 0))}</td><td>{_e(device)}</td>"
            f'<td><code class="command">{_e(run.get("command", ""))}</code></td></tr>\n'
        )
    parts.append("</tbody></table>\n")
    if latest.get("params"):
        params = ", ".join(f"{k} {_fmt(v)}" for k, v in latest["params"].items())
        parts.append(f"<p>Latest run: method <strong>{_e(latest.get('method', ''))}</strong>; {_e(params)}.</p>\n")
    photos = doc.get("photos", [])
    if photos:
        parts.append('<h2>Photos for the dataset examples</h2>\n<ul class="photos">\n')
        for photo in photos:
            thumb = (
                f'<img loading="lazy" src="{_e(photo["thumb"])}" alt="{_e(photo["name"])}" height="48"> '
                if photo.get("thumb")
                else ""
            )
            parts.append(f"<li>{thumb}<strong>{_e(photo['name'])}</strong>: {_e(photo.get('credit', ''))}</li>\n")
        parts.append("</ul>\n")
    parts.append(
        '<p class="muted">Files: <a href="atlas.json">atlas.json</a> (the manifest: every filter\'s '
        "files, losses, gain, dead flag, method and parameters, seconds; every run's versions, weights, "
        "command and device).</p>\n</main>\n</body>\n</html>\n"
    )
    return "".join(parts)
