"""MkDocs hooks: the measured numbers, committed reports and API names of the docs pages, read at build time.

Nothing measured is typed into a page by hand. A page writes

* ``{{ cpu:methods.torch_fp32.seconds.median | .2f }}``: one value of a benchmark JSON (the sources are
  ``SOURCES`` below; a dotted path; ``_`` in a key may stand for a space; an integer indexes a list), with an
  optional format spec;
* ``<!-- measured: NAME -->``: a block made by one of the ``BLOCKS`` functions below (a table or the
  verdict lines, as the benchmark's own ``--report`` prints them);
* ``<!-- include: PATH -->``, with ``from="TEXT"`` and/or ``until="TEXT"``: a committed markdown report,
  whole, or from / up to the first line that starts with TEXT, its headings moved two levels down (``optional``
  after it: nothing when the file is not there);
* ``<!-- if-exists: PAGE.md TEXT -->``: TEXT (e.g. a link to PAGE.md) only when docs/PAGE.md exists;
* ``<!-- api: PACKAGE -->``: one mkdocstrings entry per public name of the package (``__all__`` of
  ``torch_filtviz``; ``_EXPORTS`` and the other ``__all__`` names of ``tf_reference``), each pointed at the
  module that defines it.

An unknown source, path, block or file fails the build (mkdocs build --strict turns every such error
into a failure anyway). The pages stay readable on GitHub: the markers are HTML comments there, and
every marker sits next to a sentence naming the file it comes from.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SOURCES = {
    "cpu": "benchmarks/cpu/bench.json",
    "batching": "benchmarks/cpu/batching_check.json",
    "atlas": "benchmarks/cpu/atlas_measure.json",
    "examples": "benchmarks/examples/throughput.json",
    "maco": "benchmarks/maco/maco.json",
    "maco32": "benchmarks/maco/crops32/maco.json",
    "macoseeds": "benchmarks/maco/seeds/maco.json",
    "macobox": "benchmarks/maco/box/maco.json",
    "quality": "benchmarks/quality/quality.json",
    "steps": "benchmarks/quality/steps_sweep.json",
    "heldout": "benchmarks/quality/heldout/quality.json",
    "decay": "benchmarks/quality/decay_sweep.json",
    "decayq": "benchmarks/quality/decay_sweep_quality_filters.json",
    "macor50": "benchmarks/maco/resnet50/maco.json",
    "fourier": "benchmarks/fourier_check/check.json",
    "sweep": "parity_tests/results/sweep.json",
}

VALUE = re.compile(r"\{\{\s*(\w+):([^|}\s\\]+)\s*(?:\\?\|\s*([^}]*?))?\s*\}\}")  # \| inside a table cell
MARKER = re.compile(r"<!--\s*(measured|include|api|if-exists):\s*(.*?)\s*-->", flags=re.S)


class DocsDataError(Exception):
    """A page asks for a value, block or file that is not there."""


@cache
def load(source: str) -> Any:
    if source not in SOURCES:
        raise DocsDataError(f"unknown data source {source!r} (known: {', '.join(SOURCES)})")
    return json.loads((ROOT / SOURCES[source]).read_text())


def lookup(source: str, path: str) -> Any:
    value = load(source)
    keys = path.split(".")
    while keys:
        if isinstance(value, list):
            try:
                value = value[int(keys.pop(0))]
                continue
            except (ValueError, IndexError):
                raise DocsDataError(f"{SOURCES[source]}: no list item in {path!r}") from None
        if not isinstance(value, dict):
            raise DocsDataError(f"{SOURCES[source]}: {path!r} goes below a value")
        for n in range(len(keys), 0, -1):  # a key may hold dots itself ("lr0.1_256"): the longest that exists
            key = ".".join(keys[:n])
            found = next((c for c in (key, key.replace("_", " ")) if c in value), None)
            if found is not None:
                value, keys = value[found], keys[n:]
                break
        else:
            raise DocsDataError(f"{SOURCES[source]}: no key {keys[0]!r} in {path!r}")
    return value


# computed values: the name a page uses -> the reports it counts over (run A's, run B's)
WINS = {  # "6 of 12": A beats B per filter
    "qwins": ("quality", "quality"),
    "hwins": ("heldout", "heldout"),
    "dwins": ("decay", "decay"),
    "dqwins": ("decayq", "quality"),  # a decay-sweep variant on the quality filters against a quality run
}
COUNTED = {**WINS, "qzrange": ("quality", "quality")}


def quality_scores(run: str, layers: list[str] | None = None, source: str = "quality") -> dict[tuple[str, int], float]:
    """Robust z by (layer, filter) of one run of a quality report (``runs``) or sweep (``variants``)."""
    runs = "variants" if "variants" in load(source) else "runs"
    scores = lookup(source, f"{runs}.{run}.scores")
    return {(s["layer"], s["filter"]): s["z"] for s in scores if not layers or s["layer"] in layers}


def computed(source: str, path: str) -> str:
    """Counts over the quality benchmark's per-filter scores (``benchmarks/quality/quality.json``).

    ``qwins:A.B`` or ``qwins:A.B.LAYER+LAYER``: on how many filters run A's robust z beats run B's ("6 of 12");
    ``qzrange:RUN.LAYER``: the lowest and highest robust z of a run on one layer ("-3 to 6");
    ``hwins:A.B[.LAYER]``: as ``qwins`` over the held-out filters' report (``benchmarks/quality/heldout/``);
    ``dwins:A.B[.LAYER]``: the same over the variants of the fourier decay sweep on those filters;
    ``dqwins:A.B[.LAYER]``: variant A of the decay sweep on the quality filters against run B of the quality report.
    """
    parts, (report, other) = path.split("."), COUNTED[source]
    if source in WINS and len(parts) in (2, 3):
        layers = parts[2].split("+") if len(parts) == 3 else None
        a, b = quality_scores(parts[0], layers, report), quality_scores(parts[1], layers, other)
        if not a or set(a) != set(b):
            raise DocsDataError(f"{source}:{path}: the two runs do not score the same filters")
        return f"{sum(a[k] > b[k] for k in a)} of {len(a)}"
    if source == "qzrange" and len(parts) == 2:
        z = list(quality_scores(parts[0], [parts[1]], report).values())
        if not z:
            raise DocsDataError(f"qzrange:{path}: no scores")
        return f"{min(z):.0f} to {max(z):.0f}"
    raise DocsDataError(f"bad computed value {source}:{path}")


def value_text(match: re.Match[str]) -> str:
    source, path, spec = match.group(1), match.group(2), match.group(3)
    if source in COUNTED:
        return computed(source, path)
    value = lookup(source, path)
    if spec:
        if spec == "len":
            return str(len(value))
        if spec == "x":  # a ratio: 2.34x
            return f"{value:.2f}×"
        if spec == "range":  # a [lo, hi] pair: 2.08–2.71
            return f"{value[0]:.2f}–{value[1]:.2f}"
        return format(value, spec)
    return str(value)


# --- blocks -----------------------------------------------------------------------------------------------


def _speed():
    from filtviz_bench import speed  # the benchmark's own formatting: the docs print what --report prints

    return speed


def cpu_bench() -> dict[str, Any]:
    bench = json.loads(json.dumps(load("cpu")))
    bench["targets"] = _speed().check_targets(bench)
    return bench


def block_speed_table() -> str:
    """The table of ``python -m filtviz_bench speed --report benchmarks/cpu/bench.json`` (without its verdicts)."""
    text = _speed().markdown(cpu_bench())
    return "\n".join(line for line in text.splitlines() if line.startswith("|"))


def block_speed_targets() -> str:
    """The verdict lines, recomputed from the committed run under the range rule (as ``--report`` prints them)."""
    return "\n".join(_speed().target_line(t) for t in cpu_bench()["targets"])


BATCHING_ROWS = [
    ("reversed", "the batch reversed (every filter at another position)"),
    ("neighbours", "2 of them with 2 other filters in a batch of 4"),
    ("padded", "each alone, padded to 4 with copies of itself (what the atlas does)"),
    ("one thread", "one CPU thread instead of two"),
    ("halves", "batches of 2"),
    ("one at a time", "batches of 1 (one at a time)"),
]


def block_batching_table() -> str:
    rows = load("batching")["rows"]
    out = [
        (
            "| compared with the same 4 filters in one batch of 4 | bitwise | image (0–255), max "
            "| display picture, max | losses (relative), max |"
        ),
        "|---|---|---|---|---|",
    ]
    for key, label in BATCHING_ROWS:
        r = rows[key]
        loss = "0" if r["max_loss_rel"] == 0 else f"{r['max_loss_rel']:.1e}"
        out.append(
            f"| {label} | {'yes' if r['bitwise'] else '**no**'} | {r['max_pixel_units']:.3g} | "
            f"{r['max_grey_levels']} grey levels | {loss} |"
        )
    missing = set(rows) - {k for k, _ in BATCHING_ROWS}
    if missing:
        raise DocsDataError(f"{SOURCES['batching']}: rows the page does not describe: {sorted(missing)}")
    return "\n".join(out)


def block_atlas_layers() -> str:
    data = load("atlas")
    est = {row["layer"]: row for row in data["flop_estimate"]["layers"]}
    ratio = data["flop_estimate"]["measured_over_estimate"]
    out = [
        (
            "| layer | filters | seconds per filter | layer, extrapolated | KB per filter | PFLOP "
            "| measured / FLOP estimate |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in data["render"]["layers"]:
        secs = row["layer_seconds_extrapolated"]
        when = f"{secs:.0f} s" if secs < 120 else f"{secs / 60:.0f} min"
        out.append(
            f"| {row['layer']} | {row['filters']} | {row['seconds_per_filter']:.2f} | {when} | "
            f"{row['bytes_per_filter'] / 1000:.0f} | {est[row['layer']]['pflop']:.4f} | {ratio[row['layer']]}× |"
        )
    return "\n".join(out)


def block_quality_summary() -> str:
    """One row per run of the quality benchmark: what ``benchmarks/quality/quality.md`` tabulates, fewer columns."""
    q = load("quality")
    out = [
        "| run | steps | robust z, median [q1–q3] | activation kept | α | flat pictures |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, run in q["runs"].items():
        s = run["summary"]
        lo, hi = s["z_quartiles"]
        out.append(
            f"| {name}: {run['label']} | {run['steps']} | {s['median_z']:.0f} [{lo:.0f}–{hi:.0f}] | "
            f"{s['median_kept']:.2f} | {s['median_alpha']:.2f} | {s['flat']} |"
        )
    return "\n".join(out)


def block_quality_targets() -> str:
    """The quality benchmark's targets with its verdicts, from ``benchmarks/quality/quality.json``."""
    return "\n".join(
        f"- {t['target']} ({t['needed']}): {t['detail']} -> **{t['verdict']}**" for t in load("quality")["targets"]
    )


BLOCKS = {name[len("block_") :]: fn for name, fn in globals().items() if name.startswith("block_")}


def include(args: str) -> str:
    m = re.fullmatch(r'(\S+)(?:\s+from="([^"]*)")?(?:\s+until="([^"]*)")?(\s+optional)?', args)
    if not m:
        raise DocsDataError(f"bad include marker: {args!r}")
    path = ROOT / m.group(1)
    if not path.is_file():
        if m.group(4):  # a report another change is still adding: nothing until it is there
            return ""
        raise DocsDataError(f"include: no file {m.group(1)}")
    lines = path.read_text().splitlines()
    for bound, keep_after in ((m.group(2), True), (m.group(3), False)):
        if bound:
            at = next((i for i, line in enumerate(lines) if line.startswith(bound)), None)
            if at is None:
                raise DocsDataError(f"include: no line of {m.group(1)} starts with {bound!r}")
            lines = lines[at:] if keep_after else lines[:at]
    text = "\n".join(lines)
    # its headings go below the page's (## and deeper)
    text = re.sub(r"^(#+) ", r"##\1 ", text, flags=re.M)
    # brackets of numbers ("[1.5, 3.0] [1.5, 3.0]") are text, not reference links
    text = re.sub(r"\[([^\]]*)\](?!\()", r"\\[\1\\]", text)
    return text.strip() + "\n"


# --- API reference ------------------------------------------------------------------------------------------


def _module_ast(module: str) -> ast.Module:
    return ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())


def _literal(tree: ast.Module, name: str) -> Any:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
    raise DocsDataError(f"no {name} found")


def _imported_from(tree: ast.Module) -> dict[str, str]:
    """name -> the module it is imported from (top-level imports of an __init__)."""
    where = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                where[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return where


def public_names(package: str) -> dict[str, str]:
    """Every public name of the package -> the object's path in the module that defines it (read statically)."""
    tree = _module_ast(f"{package}/__init__")
    where = _imported_from(tree)
    if package == "tf_reference":
        exports = ast.literal_eval(_literal(tree, "_EXPORTS"))
        extra = [n for n in ast.literal_eval(_literal(tree, "__all__")) if n not in exports]
        names = {n: (m if m == f"{package}.{n}" else f"{m}.{n}") for n, m in exports.items()}
        names.update({n: where[n] for n in extra})
    else:
        names = {n: where.get(n, f"{package}.{n}") for n in ast.literal_eval(_literal(tree, "__all__"))}
    return dict(sorted(names.items(), key=lambda kv: kv[0].lower()))


def api(package: str) -> str:
    names = public_names(package.strip())
    out = []
    for name, target in names.items():
        out.append(
            f"### `{package.strip()}.{name}` {{#{package.strip()}.{name}}}\n\n::: {target}\n    options:\n"
            "      show_root_heading: true\n      show_root_toc_entry: false\n"
            "      show_root_full_path: false\n      heading_level: 4\n"
        )
    return "\n".join(out)


# --- the hook functions MkDocs calls -------------------------------------------------------------------------


def expand(markdown: str) -> str:
    def marker(m: re.Match[str]) -> str:
        kind, args = m.group(1), m.group(2)
        if kind == "measured":
            if args not in BLOCKS:
                raise DocsDataError(f"unknown measured block {args!r} (known: {', '.join(sorted(BLOCKS))})")
            return BLOCKS[args]()
        if kind == "include":
            return include(args)
        if kind == "if-exists":  # a page another change may add: linked once it is there
            name, _, text = args.partition(" ")
            return text if (ROOT / "docs" / name).is_file() else ""
        return api(args)

    out = VALUE.sub(value_text, MARKER.sub(marker, markdown))
    left = re.search(r"\{\{\s*\w+:[^}]*\}\}", out)
    if left:
        raise DocsDataError(f"a value marker the hook cannot read: {left.group(0)!r}")
    return out


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """The docstrings' Sphinx roles (``:func:`x` ``) shown as plain code, and their doctest examples (``>>>``
    lines, which Markdown reads as a blockquote three deep) as a code block, as a reader expects."""
    html = re.sub(r":(?:func|class|meth|mod|data|attr|obj|exc):(?=<code>)", "", html)
    return re.sub(
        r"<blockquote>\s*<blockquote>\s*<blockquote>\s*<p>(.*?)</p>\s*</blockquote>\s*</blockquote>\s*</blockquote>",
        r"<pre><code>\1</code></pre>",
        html,
        flags=re.S,
    )


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    try:
        return expand(markdown)
    except DocsDataError as exc:
        raise SystemExit(f"docs/{page.file.src_path}: {exc}") from None
